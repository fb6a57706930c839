#!/usr/bin/env python3
"""A control endpoint for tests: DESIGN 3.5 / docs/control-protocol.md, plus fault knobs.

Serves the protocol on --port (plain HTTP, or HTTPS with --tls-cert/--tls-key, and mTLS
with --client-ca) and an admin API on --admin-port (always plain HTTP on 127.0.0.1):

  PUT  /admin/desired[?cluster=C&instance=I]  body served verbatim as the desired state
       (bytes as given, so a test can serve an invalid document); the ETag changes and
       every long poll waiting on that instance answers at once. Without instance=, it
       is the default for every instance of the cluster.
  PUT  /admin/fault   {"mode": M, "retryAfter": S, "delaySeconds": S}
       M: none | down (listener and open connections closed) | 500 | 429 | slow |
          garbage | oversized | 401 | 403 | wrongtype
  GET  /admin/state   registrations, last status per instance, request counters,
                      bytes received, long polls waiting now, recent requests
  POST /admin/reset-counters

Only the Python 3 standard library (Debian's python3).
"""
import argparse
import hashlib
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

OVERSIZED = 9 << 20  # the agent refuses anything over 8 MiB


class State:
    def __init__(self, token_file):
        self.lock = threading.Condition()
        self.token_file = token_file
        self.desired = {}          # (cluster, instance or None) -> bytes
        self.generation = 0
        self.registrations = {}    # "cluster/instance" -> registration body
        self.status = {}           # "cluster/instance" -> last status body
        self.status_count = {}     # "cluster/instance" -> reports received
        self.fault = {"mode": "none"}
        self.requests = {"register": 0, "desired": 0, "status": 0, "other": 0}
        self.answers = {}          # "kind status" -> count
        self.bytes_received = 0
        self.waiting = 0           # long polls held right now
        self.max_waiting = 0
        self.recent = []

    def document(self, cluster, instance):
        return self.desired.get((cluster, instance), self.desired.get((cluster, None)))

    @staticmethod
    def etag(doc):
        return '"' + hashlib.sha256(doc).hexdigest()[:16] + '"'

    def token(self):
        if not self.token_file:
            return None
        with open(self.token_file) as f:
            return f.read().strip()

    def record(self, kind, method, path, code, size):
        with self.lock:
            self.requests[kind] = self.requests.get(kind, 0) + 1
            key = "%s %s" % (kind, code)
            self.answers[key] = self.answers.get(key, 0) + 1
            self.bytes_received += size
            self.recent.append({"t": round(time.time(), 3), "method": method, "path": path, "status": code})
            del self.recent[:-200]


def make_handler(state, connections):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "daemonlet-test-control"
        sys_version = ""

        def log_message(self, fmt, *args):  # quiet: the tests print /admin/state
            pass

        def setup(self):
            super().setup()
            with state.lock:
                connections.add(self.connection)

        def finish(self):
            with state.lock:
                connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def request_size(self, body):
            return len(self.requestline) + 2 + len(str(self.headers)) + len(body)

        def send(self, code, body=b"", ctype="application/json", headers=()):
            self.send_response(code)
            if body or code not in (204, 304):
                self.send_header("Content-Type", ctype)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)) if code not in (204, 304) else "0")
            self.end_headers()
            if code not in (204, 304):
                self.wfile.write(body)
            return code

        def route(self):
            parts = urlsplit(self.path)
            seg = [unquote(s) for s in parts.path.split("/") if s]
            # v1 clusters C instances I [desired|status]
            if len(seg) >= 5 and seg[0] == "v1" and seg[1] == "clusters" and seg[3] == "instances":
                rest = seg[5:]
                kind = {(): "register", ("desired",): "desired", ("status",): "status"}.get(tuple(rest), "other")
                return kind, seg[2], seg[4], parse_qs(parts.query)
            return "other", None, None, {}

        def injected(self, kind):
            fault = dict(state.fault)
            mode = fault.get("mode", "none")
            if mode == "slow":
                time.sleep(float(fault.get("delaySeconds", 5)))
                return None
            if mode == "500":
                return self.send(500, b'{"error": "internal error (injected)"}')
            if mode == "429":
                return self.send(429, b'{"error": "slow down (injected)"}', headers=[("Retry-After", str(fault.get("retryAfter", 2)))])
            if mode in ("401", "403"):
                return self.send(int(mode), b'{"error": "credentials refused (injected)"}')
            if kind == "desired" and mode == "garbage":
                return self.send(200, b'{"generation": 9, "daemons": [ {oops', headers=[("ETag", '"garbage"')])
            if kind == "desired" and mode == "wrongtype":
                return self.send(200, b"<html>captive portal</html>", ctype="text/html")
            if kind == "desired" and mode == "oversized":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(OVERSIZED))
                self.end_headers()
                try:
                    chunk = b" " * 65536
                    for _ in range(OVERSIZED // len(chunk)):
                        self.wfile.write(chunk)
                except OSError:
                    pass
                self.close_connection = True
                return 200
            return None

        def handle_api(self, method):
            body = self.body()
            kind, cluster, instance, query = self.route()
            code = self.api(method, kind, cluster, instance, query, body)
            state.record(kind, method, self.path, code, self.request_size(body))

        def api(self, method, kind, cluster, instance, query, body):
            expected = state.token()
            if expected is not None and self.headers.get("Authorization") != "Bearer " + expected:
                return self.send(401, b'{"error": "missing or wrong bearer token"}')
            code = self.injected(kind)
            if code is not None:
                return code
            key = "%s/%s" % (cluster, instance)
            if kind == "register" and method == "PUT":
                try:
                    reg = json.loads(body)
                except ValueError:
                    return self.send(400, b'{"error": "registration is not JSON"}')
                with state.lock:
                    state.registrations[key] = reg
                return self.send(200, b"{}")
            if kind == "status" and method == "PUT":
                with state.lock:
                    if key not in state.registrations:
                        return self.send(404, b'{"error": "instance not registered"}')
                    try:
                        state.status[key] = json.loads(body)
                    except ValueError:
                        return self.send(400, b'{"error": "status is not JSON"}')
                    state.status_count[key] = state.status_count.get(key, 0) + 1
                return self.send(204)
            if kind == "desired" and method == "GET":
                return self.long_poll(cluster, instance, key, query)
            return self.send(404, b'{"error": "no such endpoint"}')

        def long_poll(self, cluster, instance, key, query):
            wait = min(float((query.get("waitSeconds") or ["0"])[0]), 300.0)
            since = self.headers.get("If-None-Match")
            deadline = time.monotonic() + wait
            with state.lock:
                if key not in state.registrations:
                    return self.send(404, b'{"error": "instance not registered"}')
                state.waiting += 1
                state.max_waiting = max(state.max_waiting, state.waiting)
                try:
                    while True:
                        doc = state.document(cluster, instance)
                        if doc is not None and state.etag(doc) != since:
                            break
                        left = deadline - time.monotonic()
                        if left <= 0 or state.fault.get("mode") == "down":
                            doc = None
                            break
                        state.lock.wait(left)
                finally:
                    state.waiting -= 1
            if state.fault.get("mode", "none") not in ("none", "slow"):
                # The fault began while this poll waited: it answers as the server is now.
                return self.injected("desired") or self.send(503, b'{"error": "going down"}')
            if doc is None:
                return self.send(304, headers=[("ETag", since)] if since else [])
            return self.send(200, doc, headers=[("ETag", state.etag(doc))])

        def do_GET(self):
            self.handle_api("GET")

        def do_PUT(self):
            self.handle_api("PUT")

        def do_POST(self):
            self.handle_api("POST")

    return Handler


class QuietServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 4096

    def handle_error(self, request, client_address):
        # A client that hung up (timeout, refused body, shutdown) is part of the tests.
        if isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)


class Endpoint:
    """The protocol listener; `down` closes it and every open connection."""

    def __init__(self, state, host, port, tls):
        self.state, self.host, self.port, self.tls = state, host, port, tls
        self.connections = set()
        self.server = None
        self.up()

    def up(self):
        if self.server:
            return
        server = QuietServer((self.host, self.port), make_handler(self.state, self.connections))
        if self.tls:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    def down(self):
        if not self.server:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None
        with self.state.lock:
            open_now = list(self.connections)
            self.state.lock.notify_all()
        for c in open_now:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_admin(state, endpoint):
    class Admin(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def reply(self, code, obj):
            body = json.dumps(obj, indent=1).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if urlsplit(self.path).path != "/admin/state":
                return self.reply(404, {"error": "no such admin endpoint"})
            with state.lock:
                self.reply(200, {
                    "port": endpoint.port, "up": endpoint.server is not None, "fault": state.fault,
                    "registrations": state.registrations, "status": state.status,
                    "statusCount": state.status_count, "requests": state.requests, "answers": state.answers,
                    "bytesReceived": state.bytes_received, "waiting": state.waiting,
                    "maxWaiting": state.max_waiting, "recent": state.recent[-50:],
                    "generation": state.generation,
                })

        def do_PUT(self):
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if parts.path == "/admin/desired":
                q = parse_qs(parts.query)
                key = ((q.get("cluster") or ["default"])[0], (q.get("instance") or [None])[0])
                with state.lock:
                    state.desired[key] = body
                    state.generation += 1
                    state.lock.notify_all()
                return self.reply(200, {"etag": state.etag(body)})
            if parts.path == "/admin/fault":
                fault = json.loads(body or b"{}")
                with state.lock:
                    state.fault = fault
                    state.lock.notify_all()
                if fault.get("mode") == "down":
                    endpoint.down()
                else:
                    endpoint.up()
                return self.reply(200, fault)
            self.reply(404, {"error": "no such admin endpoint"})

        def do_POST(self):
            if urlsplit(self.path).path != "/admin/reset-counters":
                return self.reply(404, {"error": "no such admin endpoint"})
            with state.lock:
                state.requests = {k: 0 for k in state.requests}
                state.answers = {}
                state.bytes_received = 0
                state.max_waiting = state.waiting
                state.recent = []
            self.reply(200, {})

    return Admin


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--admin-port", type=int, default=0)
    p.add_argument("--ready-file", help="written as {port, adminPort} once both listen")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (mTLS)")
    p.add_argument("--token-file", help="require 'Authorization: Bearer <file content>'; re-read on every request")
    p.add_argument("--thread-stack-kib", type=int, default=256)
    a = p.parse_args()

    threading.stack_size(a.thread_stack_kib * 1024)
    tls = None
    if a.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.tls_cert, a.tls_key)
        if a.client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(a.client_ca)
    state = State(a.token_file)
    endpoint = Endpoint(state, a.host, a.port, tls)
    admin = QuietServer(("127.0.0.1", a.admin_port), make_admin(state, endpoint))
    if a.ready_file:
        tmp = a.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": endpoint.port, "adminPort": admin.server_address[1]}, f)
        os.rename(tmp, a.ready_file)
    print("control endpoint on %s:%d, admin on 127.0.0.1:%d" % (a.host, endpoint.port, admin.server_address[1]), flush=True)
    try:
        admin.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A registry's bearer-token flow in front of a real docker-registry, for pull tests.

  token_front.py --listen PORT --upstream http://127.0.0.1:REG --log FILE

/token?service=..&scope=.. answers {"token": ...} (a fresh random token, anonymous pull);
/v2/... without `Authorization: Bearer <a token we issued>` answers 401 with the
challenge `WWW-Authenticate: Bearer realm=".../token",service="dl-test",scope="..."`,
and with one is passed on to the upstream registry (GET and HEAD). Every request is
logged as one JSON line (path, whether it carried a valid token) for the test to check.
"""
import argparse
import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = "dl-test"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    tokens = set()
    lock = threading.Lock()

    def record(entry):
        with lock, open(args.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/token":
                q = urllib.parse.parse_qs(url.query)
                token = secrets.token_hex(16)
                with lock:
                    tokens.add(token)
                record({"path": "/token", "service": q.get("service", [""])[0], "scope": q.get("scope", [""])[0], "token": token})
                return self.reply(200, json.dumps({"token": token}).encode(), [("Content-Type", "application/json")])
            auth = self.headers.get("Authorization", "")
            valid = auth.startswith("Bearer ") and auth[7:] in tokens
            record({"path": url.path, "authorized": valid})
            if not url.path.startswith("/v2/"):
                return self.reply(404)
            if not valid:
                repo = url.path[4:].split("/manifests/")[0].split("/blobs/")[0]
                challenge = 'Bearer realm="http://127.0.0.1:%d/token",service="%s",scope="repository:%s:pull"' % (
                    args.listen, SERVICE, repo)
                return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                                  [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
            req = urllib.request.Request(args.upstream + self.path, method=self.command)
            if self.headers.get("Accept"):
                req.add_header("Accept", self.headers["Accept"])
            try:
                with urllib.request.urlopen(req) as r:
                    body = r.read()
                    status, headers = r.status, r.headers
            except urllib.error.HTTPError as e:
                body, status, headers = e.read(), e.code, e.headers
            keep = [(k, headers[k]) for k in ("Content-Type", "Docker-Content-Digest") if headers.get(k)]
            self.reply(status, body, keep)

    ThreadingHTTPServer(("127.0.0.1", args.listen), Handler).serve_forever()


if __name__ == "__main__":
    main()

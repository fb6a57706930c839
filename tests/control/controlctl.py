#!/usr/bin/env python3
"""Drives control_server.py's admin API from shell tests.

  controlctl.py ADMIN_PORT desired GENERATION [--draining] [--cluster C] [--instance I]
                [--daemon FILE.json]... [--task ID=FILE.json]... [--raw FILE]
  controlctl.py ADMIN_PORT fault MODE [--retry-after S] [--delay S]
  controlctl.py ADMIN_PORT get PYTHON_EXPRESSION   # over the /admin/state document `s`
  controlctl.py ADMIN_PORT reset-counters
"""
import argparse
import json
import sys
import urllib.request


def call(port, method, path, body=None):
    req = urllib.request.Request("http://127.0.0.1:%s%s" % (port, path), data=body, method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("desired")
    d.add_argument("generation", type=int)
    d.add_argument("--draining", action="store_true")
    d.add_argument("--cluster", default="default")
    d.add_argument("--instance")
    d.add_argument("--daemon", action="append", default=[])
    d.add_argument("--task", action="append", default=[])
    d.add_argument("--raw", help="serve this file verbatim")
    f = sub.add_parser("fault")
    f.add_argument("mode")
    f.add_argument("--retry-after", type=int, default=2)
    f.add_argument("--delay", type=float, default=5)
    g = sub.add_parser("get")
    g.add_argument("expression")
    sub.add_parser("reset-counters")
    a = p.parse_args()

    if a.cmd == "desired":
        if a.raw:
            body = open(a.raw, "rb").read()
        else:
            doc = {"generation": a.generation, "instanceStatus": "DRAINING" if a.draining else "ACTIVE",
                   "daemons": [json.load(open(x)) for x in a.daemon], "tasks": []}
            for t in a.task:
                tid, path = t.split("=", 1)
                doc["tasks"].append({"id": tid, "definition": json.load(open(path))})
            body = json.dumps(doc).encode()
        q = "?cluster=" + a.cluster + ("&instance=" + a.instance if a.instance else "")
        print(call(a.port, "PUT", "/admin/desired" + q, body)["etag"])
    elif a.cmd == "fault":
        call(a.port, "PUT", "/admin/fault", json.dumps({"mode": a.mode, "retryAfter": a.retry_after, "delaySeconds": a.delay}).encode())
    elif a.cmd == "get":
        s = call(a.port, "GET", "/admin/state")
        try:
            v = eval(a.expression, {}, {"s": s})  # test-only helper: expressions come from our own scripts
        except (KeyError, IndexError, TypeError):
            return 1
        print(v if isinstance(v, str) else json.dumps(v))
    elif a.cmd == "reset-counters":
        call(a.port, "POST", "/admin/reset-counters")
    return 0


if __name__ == "__main__":
    sys.exit(main())

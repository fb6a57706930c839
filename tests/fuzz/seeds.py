#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, assembled at run time from what the repository and
the machine already hold, never copied into the repository:
  - tests/data (good and broken definitions, the broken agent config),
  - packaging/examples and packaging/etc (the example definitions and the agent config),
  - the README's yaml and json blocks,
  - ../shared/ecs-corpus (real public ECS task definitions), when present,
  - for the Docker target, inspect answers and events from the machine's dockerd when it
    answers (read-only), plus hand-written shapes,
  - for the introspection target, raw HTTP requests to every endpoint.
  seeds.py REPO OUTDIR   writes OUTDIR/<target>/<n> and prints the count per target.
"""
import glob
import json
import os
import re
import socket
import sys

repo, out = sys.argv[1], sys.argv[2]
corpus = os.path.normpath(os.path.join(repo, "..", "shared", "ecs-corpus"))
if not os.path.isdir(corpus):
    corpus = os.path.normpath(os.path.join(repo, "..", "..", "shared", "ecs-corpus"))  # a worktree under wt/


def files(*patterns):
    for p in patterns:
        for f in sorted(glob.glob(os.path.join(repo, p), recursive=True)):
            if os.path.isfile(f):
                yield f


def read(f):
    with open(f, "rb") as h:
        return h.read()


def readme_blocks(lang):
    text = read(os.path.join(repo, "README.md")).decode()
    return [m.encode() for m in re.findall(r"```%s\n(.*?)```" % lang, text, re.S)]


definitions = [read(f) for f in files("tests/data/**/*.json", "tests/data/**/*.yaml", "packaging/examples/**/*.json",
                                      "packaging/examples/**/*.yaml")]
definitions += [read(f) for f in sorted(glob.glob(os.path.join(corpus, "**", "*"), recursive=True)) if os.path.isfile(f)]
definitions += readme_blocks("json") + readme_blocks("yaml")
configs = [read(f) for f in files("packaging/etc/*.yaml", "tests/data/broken/config.yaml")] + readme_blocks("yaml")


def desired(defs):
    docs = []
    for d in defs:
        try:
            j = json.loads(d)
        except ValueError:
            continue
        if isinstance(j, dict) and "taskDefinition" in j:
            j = j["taskDefinition"]
        docs.append(json.dumps({"generation": 3, "instanceStatus": "ACTIVE", "daemons": [j], "tasks": []}).encode())
        docs.append(json.dumps({"generation": 4, "instanceStatus": "DRAINING", "daemons": [],
                                "tasks": [{"id": "web-1", "restart": "on-failure", "definition": j}]}).encode())
    return docs


def docker(path):
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(3)
        s.connect("/var/run/docker.sock")
        s.sendall(("GET %s HTTP/1.0\r\nHost: docker\r\n\r\n" % path).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return data.split(b"\r\n\r\n", 1)[1]
    except (OSError, IndexError):
        return b""


docker_seeds = [
    b'{"Id":"abc","Name":"/x","Created":"2024-01-02T03:04:05.123456789Z","Config":{"Image":"busybox","Labels":{"io.daemonlet.managed":"true"}},'
    b'"State":{"Status":"running","ExitCode":0,"OOMKilled":false,"StartedAt":"2024-01-02T03:04:05Z","FinishedAt":"0001-01-01T00:00:00Z",'
    b'"Health":{"Status":"healthy"}},"HostConfig":{"Memory":33554432,"CpuShares":512,"NanoCpus":500000000}}',
    b'{"Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","io.daemonlet.family":"web"}},"timeNano":1700000000000000000}\n'
    b'{"Type":"container","Action":"health_status: healthy","Actor":{"ID":"abc","Attributes":{}},"timeNano":1700000000000000001}\n',
    b'{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":'
    b'{"image":"busybox","name":"daemonlet-task-web-1-main-0123456789ab","io.daemonlet.kind":"task"}},"scope":"local",'
    b'"time":1700000000,"timeNano":1700000000000000000}\n{"Type":"container","Action":"oom","Actor":{"ID":"abc"}}\n'
    b'{"Type":"container","Action":"destroy","Actor":{"ID":"abc"}}\n{"Type":"container","Action":"exec_start: sh","Actor":{"ID":"abc"}}\n',
    b'{"Id":"abc","State":{"Status":"exited","ExitCode":137,"OOMKilled":true,"FinishedAt":"2024-01-02T03:04:05.5+02:00"}}',
    b'{"Id":"abc","State":{"Status":"created"},"Config":{"Labels":null},"HostConfig":{}}',
]
listed = docker("/containers/json?all=1&limit=3")
try:
    for c in json.loads(listed)[:3]:
        docker_seeds.append(docker("/containers/%s/json" % c["Id"]))
except ValueError:
    pass
docker_seeds = [bytes([i % 7 * 9]) + s for i, s in enumerate(docker_seeds) if s]

requests = []
for path in ("/healthz", "/readyz", "/metrics", "/v1/metadata", "/v1/daemons", "/v1/tasks", "/v1/tasks/web-1",
             "/v1/tasks/nope", "/v1/drain", "/nothing?x=1"):
    for method in ("GET", "POST", "DELETE"):
        requests.append(("%s %s HTTP/1.1\r\nHost: x\r\n\r\n" % (method, path)).encode())
requests.append(b"GET /v1/metadata HTTP/1.1\r\nHost: x\r\nOrigin: http://evil\r\n\r\n")
requests.append(b"POST /v1/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
requests.append(b"POST /v1/drain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")



def control_answers(bodies):
    """Inputs in the layout ControlResponseFuzzer reads with FuzzedDataProvider: each
    answer's body from the front (a backslash and another byte end a string; a doubled
    backslash is one), its numbers from the back: failure kind, then status, content type,
    ETag and Retry-After choices."""
    front, back = b"", []
    for body in bodies:
        front += body.replace(b"\\", b"\\\\") + b"\\x"
        back += [0, 1, 0, 0, 0, 0]  # no failure; a listed status: 200; application/json; no ETag; no Retry-After
    return front + bytes(reversed(back))


targets = {
    "definition": definitions,
    "agent_config": configs,
    "desired_state": desired(definitions),
    "docker_json": docker_seeds,
    "introspection": requests,
    "control_response": [control_answers([b"", d, b""]) for d in desired(definitions)],
}
for name, seeds in targets.items():
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "%03d" % i), "wb") as h:
            h.write(s)
    print("%s %d" % (name, len(seeds)))

#!/usr/bin/env python3
"""Turns one image in a plain-http registry into a manifest list of two platforms.

  make_index.py REGISTRY REPO BASE_TAG INDEX_TAG HOST_ARCH OTHER_ARCH

Two variants of BASE_TAG are pushed through the registry API (same layers, a config
with VARIANT=host or VARIANT=other in its Env), then a manifest list INDEX_TAG names
the "other" one first (OTHER_ARCH) and the host's second (HOST_ARCH): a client that
picks its platform runs VARIANT=host. Prints the list's digest.
"""
import hashlib
import json
import sys
import urllib.parse
import urllib.request

V2S2 = "application/vnd.docker.distribution.manifest.v2+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def call(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.read(), r.headers


def main():
    registry, repo, base, index_tag, host_arch, other_arch = sys.argv[1:7]
    root = "http://%s/v2/%s" % (registry, repo)
    manifest = json.loads(call("GET", "%s/manifests/%s" % (root, base), headers={"Accept": V2S2})[0])
    assert manifest.get("mediaType") == V2S2, manifest.get("mediaType")
    config = json.loads(call("GET", "%s/blobs/%s" % (root, manifest["config"]["digest"]))[0])
    entries = []
    for variant, arch in (("other", other_arch), ("host", host_arch)):
        c = json.loads(json.dumps(config))
        c["architecture"] = arch
        c.setdefault("config", {}).setdefault("Env", []).append("VARIANT=" + variant)
        blob = json.dumps(c).encode()
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        _, h = call("POST", "%s/blobs/uploads/" % root)
        location = urllib.parse.urljoin(root, h["Location"])
        call("PUT", location + ("&" if "?" in location else "?") + "digest=" + digest, blob,
             {"Content-Type": "application/octet-stream"})
        m = json.loads(json.dumps(manifest))
        m["config"]["digest"], m["config"]["size"] = digest, len(blob)
        mbytes = json.dumps(m).encode()
        call("PUT", "%s/manifests/%s-%s" % (root, base, variant), mbytes, {"Content-Type": V2S2})
        entries.append({"mediaType": V2S2, "digest": "sha256:" + hashlib.sha256(mbytes).hexdigest(), "size": len(mbytes),
                        "platform": {"architecture": arch, "os": "linux"}})
    index = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": entries}).encode()
    call("PUT", "%s/manifests/%s" % (root, index_tag), index, {"Content-Type": LIST})
    print("sha256:" + hashlib.sha256(index).hexdigest())


if __name__ == "__main__":
    main()

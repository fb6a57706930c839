#!/usr/bin/env bash
# Fixture for the containerd contract run: the test image (built into dockerd by
# packaging/dev-setup.sh) copied into containerd's "daemonlet" namespace with ctr, which
# tests may use to prepare fixtures (the adapter itself never runs ctr). Importing the
# same archive again is a no-op for content that is already there.
#   containerd-test-image.sh [ADDRESS]
set -euo pipefail
address=${1:-/run/containerd/containerd.sock}
image=daemonlet/busybox:local
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
docker image inspect "$image" >/dev/null 2>&1 || { echo "$image is missing in dockerd: run packaging/dev-setup.sh setup" >&2; exit 1; }
docker save -o "$work/image.tar" "$image"
ctr --address "$address" -n daemonlet images import "$work/image.tar" >/dev/null
ctr --address "$address" -n daemonlet images ls -q | grep -qx "docker.io/$image"

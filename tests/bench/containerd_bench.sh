#!/usr/bin/env bash
# create+start through ContainerdRuntime vs `ctr run -d`, and exit-event latency, on a
# private containerd (never the machine's: the bench creates COUNT*3 containers).
#   containerd_bench.sh BUILD_DIR [COUNT]      (COUNT default 20)
set -u
build=$1 count=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/dl-ctrd-bench-XXXXXX)
trap '"$here/../contract/private-containerd.sh" stop "$dir"' EXIT
"$here/../contract/private-containerd.sh" start "$dir" || exit 1
"$here/../contract/containerd-test-image.sh" "$dir/containerd.sock" || exit 1
nice -n 10 "$build/tests/bench/containerd_runtime_bench" "$dir/containerd.sock" "$count"

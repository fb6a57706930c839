#!/usr/bin/env bash
# A throw-away dockerd for tests that must restart or kill the engine without disturbing
# the machine's own: its own socket, data and exec roots, and containerd namespace on the
# system containerd, and a bridge of its own. Not --bridge none: dockerd then deletes the
# docker0 interface, which belongs to the machine's engine. No iptables rules either.
#   private-dockerd.sh start DIR    start and wait for DIR/docker.sock
#   private-dockerd.sh kill9 DIR    SIGKILL it (containers keep running in their shims)
#   private-dockerd.sh stop DIR     stop it and clean up everything under DIR
set -u
cmd=$1 dir=$2
pidfile=$dir/dockerd.pid
case "$cmd" in
  start)
    mkdir -p "$dir"
    rm -f "$dir/docker.sock"
    [ -f "$dir/bridge" ] || echo "dlt$(( $$ % 100000 ))" >"$dir/bridge"  # a restart keeps its bridge
    bridge=$(cat "$dir/bridge")
    ip link show "$bridge" >/dev/null 2>&1 || ip link add "$bridge" type bridge
    ip link set "$bridge" up
    setsid dockerd --host "unix://$dir/docker.sock" --data-root "$dir/data" --exec-root "$dir/exec" \
      --pidfile "$pidfile" --containerd /run/containerd/containerd.sock \
      --containerd-namespace "dltest-$(basename "$dir")" --containerd-plugins-namespace "dltest-$(basename "$dir")-plugins" \
      --bridge "$(cat "$dir/bridge")" --iptables=false --ip-masq=false >>"$dir/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      curl -sf --unix-socket "$dir/docker.sock" http://localhost/_ping >/dev/null 2>&1 && exit 0
      sleep 0.25
    done
    echo "private dockerd did not start; log:" >&2; tail -20 "$dir/dockerd.log" >&2; exit 1 ;;
  kill9)
    pid=$(cat "$pidfile")
    kill -9 "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.25; done
    exit 1 ;;
  stop)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      curl -sf --unix-socket "$dir/docker.sock" "http://localhost/containers/json?all=1" 2>/dev/null \
        | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4 \
        | while read -r id; do curl -sf -X DELETE --unix-socket "$dir/docker.sock" "http://localhost/containers/$id?force=1" >/dev/null; done
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    umount -R "$dir/exec" "$dir/data" 2>/dev/null
    for ns in "dltest-$(basename "$dir")" "dltest-$(basename "$dir")-plugins"; do
      ctr -n "$ns" images ls -q 2>/dev/null | xargs -r ctr -n "$ns" images rm >/dev/null 2>&1
      ctr namespaces rm "$ns" >/dev/null 2>&1
    done
    [ -f "$dir/bridge" ] && ip link del "$(cat "$dir/bridge")" 2>/dev/null
    rm -rf "$dir"
    exit 0 ;;
esac
echo "usage: $0 start|kill9|stop DIR" >&2; exit 2

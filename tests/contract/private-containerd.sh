#!/usr/bin/env bash
# A throw-away containerd for tests that must kill or restart the engine without
# disturbing the machine's own: its own socket, root and state directories (so its own
# shims), no CRI plugin, nothing listening on TCP.
#   private-containerd.sh start DIR    start and wait for DIR/containerd.sock
#   private-containerd.sh kill9 DIR    SIGKILL it (containers keep running in their shims)
#   private-containerd.sh stop DIR     stop it and clean up everything under DIR
set -u
cmd=$1 dir=$2
pidfile=$dir/containerd.pid
sock=$dir/containerd.sock
up() { ctr --address "$sock" version >/dev/null 2>&1; }
case "$cmd" in
  start)
    mkdir -p "$dir"
    rm -f "$sock"
    cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$dir/debug.sock"
[metrics]
  address = ""
TOML
    setsid containerd --config "$dir/config.toml" >>"$dir/containerd.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 120); do up && exit 0; sleep 0.25; done
    echo "private containerd did not start; log:" >&2; tail -20 "$dir/containerd.log" >&2; exit 1 ;;
  kill9)
    pid=$(cat "$pidfile")
    kill -9 "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.25; done
    exit 1 ;;
  stop)
    if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
      for ns in $(ctr --address "$sock" namespaces ls -q 2>/dev/null); do
        for t in $(ctr --address "$sock" -n "$ns" tasks ls -q 2>/dev/null); do
          ctr --address "$sock" -n "$ns" tasks kill -s SIGKILL "$t" >/dev/null 2>&1
          sleep 0.2
          ctr --address "$sock" -n "$ns" tasks rm -f "$t" >/dev/null 2>&1
        done
        ctr --address "$sock" -n "$ns" containers ls -q 2>/dev/null | xargs -r ctr --address "$sock" -n "$ns" containers rm >/dev/null 2>&1
      done
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
    # Shims of this engine (their -address names our socket) must not outlive it.
    for proc in /proc/[0-9]*; do
      tr '\0' ' ' 2>/dev/null <"$proc/cmdline" | grep -qF -- "-address $sock " && kill -9 "${proc#/proc/}" 2>/dev/null
    done
    grep -F "$dir/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
    rm -rf "$dir"
    exit 0 ;;
esac
echo "usage: $0 start|kill9|stop DIR" >&2; exit 2

#!/usr/bin/env bash
# A burst of task starts on a PRIVATE dockerd (never the machine's: issue 15's 1,000-task
# bench once hung the shared one): 1 daemon + TASKS tasks appear at once; how long until
# all run, and how many engine connections the agent held at most meanwhile. The agent's
# Docker client keeps one connection per call under way (idle ones are reused), plus one
# for the event stream, so that maximum bounds the calls it had in flight from outside.
#   start_burst_bench.sh DAEMONLET [TASKS=1000] [LIMIT=8]
# Prints:  burst: tasks=1000 limit=8 seconds=... max_engine_connections=... load="..."
# Needs root (a private dockerd). Everything it made is gone when it ends.
set -u
bin=$1 tasks=${2:-1000} limit=${3:-8}
here=$(cd "$(dirname "$0")" && pwd)
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-burst-XXXXXX)
engine=$work/engine
id=burst-bench-$$
agent= sampler=
cleanup() {
  [ -n "$sampler" ] && { kill "$sampler"; wait "$sampler"; } 2>/dev/null
  [ -n "$agent" ] && { kill -9 "$agent"; wait "$agent"; } 2>/dev/null
  "$here/../contract/private-dockerd.sh" stop "$engine"
  rm -rf "$work"
}
trap cleanup EXIT
"$here/../contract/private-dockerd.sh" start "$engine" || exit 1
export DOCKER_HOST=unix://$engine/docker.sock
docker -H unix:///var/run/docker.sock save "$image" | docker load >/dev/null || { echo "burst bench: cannot load $image"; exit 1; }

sleeper='"command": ["sh", "-c", "trap '"'"'exit 0'"'"' TERM; while true; do sleep 3600 & wait; done"]'
definition() { echo "{\"family\": \"$1\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": $2, $sleeper}]}"; }
mkdir -p "$work/defs/daemons" "$work/defs/tasks"
definition mon 16 >"$work/defs/daemons/mon.json"
for i in $(seq 1 "$tasks"); do definition "t$i" 6 >"$work/defs/tasks/t$i.json"; done
printf 'instance: {id: %s, capacity: {cpu: 1048576, memory: 1048576}}\nsource: {type: directory, path: %s/defs}\nruntime: {endpoint: "%s", maxCallsInFlight: %s}\nlisten: 127.0.0.1:0\napiSocket: %s/api.sock\nstateDir: %s/state\n' \
  "$id" "$work" "$DOCKER_HOST" "$limit" "$work" "$work" >"$work/config.yaml"

load=$(cut -d' ' -f1-3 /proc/loadavg)
began=$(date +%s.%N)
"$bin" run --config "$work/config.yaml" >"$work/agent.log" 2>&1 &
agent=$!
# Connections from the agent to the engine: the engine's ends (local path docker.sock)
# whose peer inode is one of the agent's sockets.
engine_connections() {
  ss -xpn 2>/dev/null | awk -v me="pid=$agent," -v sock="$engine/docker.sock" '
    { line[NR] = $0; if (index($0, me)) mine[$6] = 1 }
    END { for (i = 1; i <= NR; i++) { split(line[i], f, " +"); if (f[5] == sock && (f[8] in mine)) n++ } print n + 0 }'
}
( most=0
  while kill -0 "$agent" 2>/dev/null; do
    n=$(engine_connections)
    [ "$n" -gt "$most" ] && { most=$n; echo "$most" >"$work/most"; }
    sleep 0.05
  done ) &
sampler=$!
want=$((1 + tasks))
for _ in $(seq 1 $((600 + tasks))); do
  [ "$(docker ps -q --filter "label=io.daemonlet.instance=$id" | wc -l)" -ge "$want" ] && break
  sleep 0.5
done
ended=$(date +%s.%N)
up=$(docker ps -q --filter "label=io.daemonlet.instance=$id" | wc -l)
kill "$sampler"; wait "$sampler" 2>/dev/null; sampler=
printf 'burst: tasks=%s limit=%s running=%s seconds=%.1f max_engine_connections=%s load="%s" load_after="%s"\n' "$tasks" "$limit" \
  "$((up - 1))" "$(echo "$ended - $began" | bc)" "$(cat "$work/most" 2>/dev/null || echo 0)" "$load" "$(cut -d' ' -f1-3 /proc/loadavg)"
[ "$up" -ge "$want" ] || { echo "burst bench: only $up of $want containers run; the agent's last lines:"; tail -5 "$work/agent.log"; exit 1; }

#!/usr/bin/env bash
# Idle CPU of the agent (issue 15): 1 daemon + N tasks on the machine's dockerd, nothing
# changing. Prints the agent's user+system CPU seconds over the window as a share of one
# core, and its RSS. Usage: idle_cpu_bench.sh DAEMONLET [TASKS=20] [SECONDS=120]
set -u
bin=$1 tasks=${2:-20} window=${3:-120}
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-idle-XXXXXX)
id=idle-bench-$$
agent=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  docker ps -aq --filter "label=io.daemonlet.instance=$id" | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/defs/daemons" "$work/defs/tasks"
printf 'instance: {id: %s}\nlisten: 127.0.0.1:51719\napiSocket: %s/api.sock\nstateDir: %s/state\n' "$id" "$work" "$work" >"$work/config.yaml"
sleeper='"command": ["sh", "-c", "trap '"'"'exit 0'"'"' TERM; while true; do sleep 3600 & wait; done"]'
echo "{\"family\": \"mon\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": 16, $sleeper}]}" >"$work/defs/daemons/mon.json"
for i in $(seq 1 "$tasks"); do
  echo "{\"family\": \"app\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": 8, $sleeper}]}" >"$work/defs/tasks/t$i.json"
done
"$bin" run --config "$work/config.yaml" --source "$work/defs" >"$work/agent.log" 2>&1 &
agent=$!
running() { [ "$(docker ps -q --filter "label=io.daemonlet.instance=$id" | wc -l)" -ge $((tasks + 1)) ]; }
for _ in $(seq 1 300); do running && break; sleep 0.2; done
running || { echo "idle bench: not everything started"; tail -20 "$work/agent.log"; exit 1; }
sleep 10  # let start-up settle
ticks() { awk '{ print $14 + $15 }' "/proc/$agent/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$window"
after=$(ticks)
rss=$(awk '/VmRSS/ { print $2 }' "/proc/$agent/status")
anon=$(awk '/RssAnon/ { print $2 }' "/proc/$agent/status")
echo "idle bench: 1 daemon + $tasks tasks, ${window} s idle: $((after - before)) CPU ticks (${hz}/s) =" \
  "$(echo "scale=4; 100 * ($after - $before) / $hz / $window" | bc)% of one core; RSS ${rss} KiB (anonymous ${anon} KiB)"

#!/usr/bin/env bash
# Exit detection (issue 15): how long after a task's container dies the agent knows it
# (its "task ... STOPPED" log line), next to `docker wait` on the same container as the
# same-run baseline (the engine's own notification, what a docker-run loop would see).
# The container is killed from outside ROUNDS times (default 7); the agent replaces it
# after its 1 s backoff each time. Times are from the container's FinishedAt.
#   exit_latency_bench.sh DAEMONLET [ROUNDS]
set -u
bin=$1 rounds=${2:-7}
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-exit-XXXXXX)
id=exit-bench-$$
agent=
cleanup() {
  [ -n "$agent" ] && { kill -9 "$agent"; wait "$agent"; } 2>/dev/null
  docker ps -aq --filter "label=io.daemonlet.instance=$id" | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/defs/daemons" "$work/defs/tasks"
sleeper='"command": ["sh", "-c", "trap '"'"'exit 0'"'"' TERM; while true; do sleep 3600 & wait; done"]'
echo "{\"family\": \"mon\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": 16, $sleeper}]}" >"$work/defs/daemons/mon.json"
echo "{\"family\": \"app\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": 8, $sleeper}]}" >"$work/defs/tasks/t1.json"
printf 'instance: {id: %s}\nlisten: 127.0.0.1:0\napiSocket: %s/api.sock\nstateDir: %s/state\n' "$id" "$work" "$work" >"$work/config.yaml"
"$bin" run --config "$work/config.yaml" --source "$work/defs" --log-format json >"$work/agent.log" 2>&1 &
agent=$!
task_container() { docker ps -q --filter "label=io.daemonlet.instance=$id" --filter "label=io.daemonlet.task-id=t1"; }
epoch() { date -d "$1" +%s.%N; }
agent_ms=() wait_ms=()
for round in $(seq 1 "$rounds"); do
  cid=
  for _ in $(seq 1 150); do cid=$(task_container); [ -n "$cid" ] && break; sleep 0.2; done
  [ -n "$cid" ] || { echo "exit bench: the task never ran"; tail -20 "$work/agent.log"; exit 1; }
  sleep 2
  before=$(grep -c '"msg":"task t1 .* STOPPED' "$work/agent.log")
  ( docker wait "$cid" >/dev/null; date +%s.%N >"$work/waited" ) &
  waiter=$!
  sleep 0.5  # the waiter is attached
  docker kill "$cid" >/dev/null
  wait "$waiter"
  for _ in $(seq 1 100); do [ "$(grep -c '"msg":"task t1 .* STOPPED' "$work/agent.log")" -gt "$before" ] && break; sleep 0.1; done
  finished=$(epoch "$(docker inspect -f '{{.State.FinishedAt}}' "$cid")")
  seen=$(epoch "$(grep '"msg":"task t1 .* STOPPED' "$work/agent.log" | tail -1 | sed 's/.*"time":"\([^"]*\)".*/\1/')")
  agent_ms+=("$(printf "%.0f" "$(echo "($seen - $finished) * 1000" | bc)")")
  wait_ms+=("$(printf "%.0f" "$(echo "($(cat "$work/waited") - $finished) * 1000" | bc)")")
  until [ "$(task_container)" != "$cid" ] && [ -n "$(task_container)" ]; do sleep 0.2; done
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { printf "%.0f", a[int((NR + 1) / 2)] }'; }
echo "exit bench: $rounds kills; after FinishedAt, the agent's STOPPED line: ${agent_ms[*]} ms; docker wait returned: ${wait_ms[*]} ms"
echo "figure: exit_detect_ms agent=$(median "${agent_ms[@]}") docker_wait=$(median "${wait_ms[@]}")"

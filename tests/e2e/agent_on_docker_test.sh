#!/usr/bin/env bash
# daemonlet run end to end on the machine's dockerd (issue: the agent core):
#   boot order (P2), daemon limits (P3), RESOURCE:MEMORY (P3), a rolling update that
#   overlaps old and new and ends with one copy (P1), and a --drain-on-exit shutdown in
#   which the last application stops before any daemon, with a daemon killed mid-drain
#   restarted (P4).
set -u
bin=$1
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-e2e-XXXXXX)
defs=$work/defs
log=$work/agent.log
fail=0
name=e2e
. "$(dirname "$0")/lib.sh"
agent=

cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  docker ps -aq --filter label=io.daemonlet.instance=e2e | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
# Docker writes RFC 3339 in inspect, Go's "2006-01-02 15:04:05.9 +0000 UTC" in health logs.
epoch() {
  local t
  t=$(date -d "$(echo "$1" | sed 's/ [A-Z][A-Z]*$//')" +%s.%N 2>/dev/null)
  if [ -z "$t" ]; then echo "FAIL: cannot read time '$1'" >&2; echo "unreadable"; return 1; fi
  echo "$t"
}
before() {
  case "$1$2" in *unreadable*|"") return 1 ;; esac
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}
inspect() { docker inspect -f "$2" "$1" 2>/dev/null; }

mkdir -p "$defs/daemons" "$defs/tasks"
cat >"$work/config.yaml" <<YAML
instance:
  id: e2e
  capacity: {cpu: 4096, memory: 1024}
  reserved: {cpu: 0, memory: 0}
source:
  pollSeconds: 2
stateDir: $work/state
YAML
# A daemon that needs ~6 s to become healthy, and a plain fast one.
cat >"$defs/daemons/slow.json" <<JSON
{"family": "slow", "revision": 1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 256, "memory": 96, "memoryReservation": 64, "stopTimeout": 5,
  "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 6; touch /tmp/up; while true; do sleep 1 & wait; done"],
  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "timeout": 2, "retries": 2}}]}
JSON
fast_def() {
  cat >"$defs/daemons/fast.json" <<JSON
{"family": "fast", "revision": $1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 128, "memory": 64, "stopTimeout": 5,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
}
fast_def 1
for i in 1 2 3; do
  cat >"$defs/tasks/app-$i.json" <<JSON
{"family": "app", "revision": 1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 64, "memory": 64, "stopTimeout": 4,
  "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}]}
JSON
done
cat >"$defs/tasks/big-1.json" <<JSON
{"family": "big", "containerDefinitions": [{"name": "main", "image": "$image", "memory": 900, "command": ["sleep", "1000"]}]}
JSON

say "starting the agent"
"$bin" run --config "$work/config.yaml" --source "$defs" --drain-on-exit >"$log" 2>&1 &
agent=$!

all_apps_running() { [ "$(docker ps -q --filter label=io.daemonlet.instance=e2e --filter label=io.daemonlet.kind=task | wc -l)" = 3 ]; }
wait_for 60 all_apps_running || { bad "3 application tasks not running in 60 s"; cat "$log"; exit 1; }

# --- P2: every application started after the daemons were up -----------------------------
slow=$(docker ps -q --filter label=io.daemonlet.family=slow)
fast=$(docker ps -q --filter label=io.daemonlet.family=fast)
slow_ready=$(inspect "$slow" '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}{{"\n"}}{{end}}{{end}}' | head -1)
fast_ready=$(inspect "$fast" '{{.State.StartedAt}}')
[ -n "$slow_ready" ] || bad "slow daemon never passed its health check"
for app in $(docker ps -q --filter label=io.daemonlet.kind=task --filter label=io.daemonlet.instance=e2e); do
  started=$(inspect "$app" '{{.State.StartedAt}}')
  before "$(epoch "$slow_ready")" "$(epoch "$started")" || bad "app $app started $started before slow daemon was healthy ($slow_ready)"
  before "$(epoch "$fast_ready")" "$(epoch "$started")" || bad "app $app started $started before fast daemon ran ($fast_ready)"
done
say "boot order: apps started after slow daemon healthy at $slow_ready"

# --- P3: limits on the daemon's container, and a task that does not fit ------------------
[ "$(inspect "$slow" '{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}}')" = "100663296 67108864 256" ] \
  || bad "slow daemon limits: $(inspect "$slow" '{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}}')"
wait_for 10 grep -q "task big-1 (big r0) STOPPED: RESOURCE:MEMORY" "$log" || bad "big-1 not reported RESOURCE:MEMORY"
[ -z "$(docker ps -aq --filter name=daemonlet-task-big-1-main)" ] || bad "big-1 has a container"
say "limits applied; big-1 STOPPED: RESOURCE:MEMORY"

# --- P1 / DESIGN 4: a new revision starts before the old one stops -----------------------
t0=$(date +%s)
fast_def 2
one_new_copy() { only_revision_running fast 2 "$fast"; }
wait_for 30 one_new_copy || bad "fast r2 did not replace r1"
check_rollout_order fast "$t0" 1 2 "rollout"

# --- P4: drain on exit; a daemon killed mid-drain comes back ------------------------------
fast=$(docker ps -q --filter label=io.daemonlet.family=fast)
drain_t0=$(date +%s)
kill -TERM "$agent"
wait_for 10 grep -q "phase ACTIVE -> DRAINING" "$log" || bad "no DRAINING phase"
sleep 1
docker kill "$fast" >/dev/null
restarted() { [ "$(inspect "$fast" '{{.State.Running}}')" = true ]; }
wait_for 10 restarted || bad "daemon killed mid-drain was not restarted"
wait "$agent"; code=$?
agent=
[ "$code" = 0 ] || bad "agent exit code $code after drain"
grep -q "shutdown complete" "$log" || bad "no 'shutdown complete' in the log"
# Drained application containers are removed; their stop times are in the event log.
last_app=$(docker events --since "$drain_t0" --until "$(( $(date +%s) + 1 ))" --filter label=io.daemonlet.instance=e2e \
  --filter label=io.daemonlet.kind=task --filter event=die --format '{{.TimeNano}}' | sort -n | tail -1)
[ -n "$last_app" ] || bad "no application container died during the drain"
last_app=$(echo "$last_app / 1000000000" | bc -l)
[ -z "$(docker ps -aq --filter label=io.daemonlet.instance=e2e --filter label=io.daemonlet.kind=task)" ] || bad "drained application containers were not removed"
for d in $(docker ps -aq --filter label=io.daemonlet.kind=daemon --filter label=io.daemonlet.instance=e2e); do
  [ "$(inspect "$d" '{{.State.Running}}')" = false ] || bad "daemon $d still running after shutdown"
  f=$(epoch "$(inspect "$d" '{{.State.FinishedAt}}')")
  before "$last_app" "$f" || bad "daemon $d finished at $f, before the last application ($last_app)"
done
say "drain: last application finished before every daemon stopped; killed daemon restarted"

if [ "$fail" != 0 ]; then echo "--- agent log"; cat "$log"; fi
[ "$fail" = 0 ] && echo "e2e: all checks passed"
exit $fail

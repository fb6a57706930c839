#!/usr/bin/env bash
# daemonlet run end to end on the machine's dockerd, or its containerd with
# DAEMONLET_TEST_RUNTIME=containerd (tests/e2e/engine.sh):
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
  engine_events_end
  engine_rm_all label=io.daemonlet.instance=e2e
  rm -rf "$work"
}
trap cleanup EXIT
# A time from the engine (engine_started etc.), or "unreadable".
epoch() {
  local t
  t=$("$@")
  if [ -z "$t" ]; then echo "FAIL: no time from '$*'" >&2; echo "unreadable"; return 1; fi
  echo "$t"
}
before() {
  case "$1$2" in *unreadable*|"") return 1 ;; esac
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}

mkdir -p "$defs/daemons" "$defs/tasks"
cat >"$work/config.yaml" <<YAML
instance:
  id: e2e
  capacity: {cpu: 4096, memory: 1024}
  reserved: {cpu: 0, memory: 0}
source:
  pollSeconds: 2
stateDir: $work/state
$(engine_config)
YAML
# A daemon that needs ~6 s to become healthy, and a plain fast one.
cat >"$defs/daemons/slow.json" <<JSON
{"family": "slow", $(engine_definition_fields)"revision": 1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 256, "memory": 96, "memoryReservation": 64, "stopTimeout": 5,
  "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 6; touch /tmp/up; while true; do sleep 1 & wait; done"],
  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "timeout": 2, "retries": 2}}]}
JSON
fast_def() {
  cat >"$defs/daemons/fast.json" <<JSON
{"family": "fast", $(engine_definition_fields)"revision": $1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 128, "memory": 64, "stopTimeout": 5,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
}
fast_def 1
for i in 1 2 3; do
  cat >"$defs/tasks/app-$i.json" <<JSON
{"family": "app", $(engine_definition_fields)"revision": 1, "containerDefinitions": [{
  "name": "main", "image": "$image", "cpu": 64, "memory": 64, "stopTimeout": 4,
  "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}]}
JSON
done
cat >"$defs/tasks/big-1.json" <<JSON
{"family": "big", $(engine_definition_fields)"containerDefinitions": [{"name": "main", "image": "$image", "memory": 900, "command": ["sleep", "1000"]}]}
JSON

engine_events_begin "$work/engine-events"
say "starting the agent on $engine_kind"
"$bin" run --config "$work/config.yaml" --source "$defs" --drain-on-exit >"$log" 2>&1 &
agent=$!

all_apps_running() { [ "$(engine_count label=io.daemonlet.instance=e2e label=io.daemonlet.kind=task)" = 3 ]; }
wait_for 60 all_apps_running || { bad "3 application tasks not running in 60 s"; cat "$log"; exit 1; }

# --- P2: every application started after the daemons were up -----------------------------
slow=$(engine_ids label=io.daemonlet.instance=e2e label=io.daemonlet.family=slow)
fast=$(engine_ids label=io.daemonlet.instance=e2e label=io.daemonlet.family=fast)
slow_ready=$(epoch engine_first_healthy "$slow")
fast_ready=$(epoch engine_started "$fast")
[ "$slow_ready" != unreadable ] || bad "slow daemon never passed its health check"
for app in $(engine_ids label=io.daemonlet.kind=task label=io.daemonlet.instance=e2e); do
  started=$(epoch engine_started "$app")
  before "$slow_ready" "$started" || bad "app $app started $started before slow daemon was healthy ($slow_ready)"
  before "$fast_ready" "$started" || bad "app $app started $started before fast daemon ran ($fast_ready)"
done
say "boot order: apps started after slow daemon healthy at $slow_ready"

# --- P3: limits on the daemon's container, and a task that does not fit ------------------
[ "$(engine_limits "$slow")" = "100663296 67108864 256" ] || bad "slow daemon limits: $(engine_limits "$slow")"
wait_for 10 grep -q "task big-1 (big r0) STOPPED: RESOURCE:MEMORY" "$log" || bad "big-1 not reported RESOURCE:MEMORY"
[ -z "$(engine_ids -a name=daemonlet-task-big-1-main)" ] || bad "big-1 has a container"
say "limits applied; big-1 STOPPED: RESOURCE:MEMORY"

# --- P1 / DESIGN 4: a new revision starts before the old one stops -----------------------
t0=$(date +%s)
fast_def 2
one_new_copy() { only_revision_running fast 2 "$fast"; }
wait_for 30 one_new_copy || bad "fast r2 did not replace r1"
check_rollout_order fast "$t0" 1 2 "rollout"

# --- P4: drain on exit; a daemon killed mid-drain comes back ------------------------------
fast=$(engine_ids label=io.daemonlet.instance=e2e label=io.daemonlet.family=fast)
drain_t0=$(date +%s)
kill -TERM "$agent"
wait_for 10 grep -q "phase ACTIVE -> DRAINING" "$log" || bad "no DRAINING phase"
sleep 1
engine_kill "$fast"
restarted() { engine_running "$fast"; }
wait_for 10 restarted || bad "daemon killed mid-drain was not restarted"
wait "$agent"; code=$?
agent=
[ "$code" = 0 ] || bad "agent exit code $code after drain"
grep -q "shutdown complete" "$log" || bad "no 'shutdown complete' in the log"
# Drained application containers are removed; their stop times are in the event log.
last_app=$(engine_events "$drain_t0" | awk '$1 == "die" && $6 == "task" && $7 == "e2e" { print $2 }' | sort -n | tail -1)
[ -n "$last_app" ] || bad "no application container died during the drain"
last_app=$(echo "$last_app / 1000000000" | bc -l)
[ -z "$(engine_ids -a label=io.daemonlet.instance=e2e label=io.daemonlet.kind=task)" ] || bad "drained application containers were not removed"
for d in $(engine_ids -a label=io.daemonlet.kind=daemon label=io.daemonlet.instance=e2e); do
  engine_running "$d" && bad "daemon $d still running after shutdown"
  f=$(epoch engine_finished "$d")
  before "$last_app" "$f" || bad "daemon $d finished at $f, before the last application ($last_app)"
done
say "drain: last application finished before every daemon stopped; killed daemon restarted"

if [ "$fail" != 0 ]; then echo "--- agent log"; cat "$log"; fi
[ "$fail" = 0 ] && echo "e2e: all checks passed"
exit $fail

#!/usr/bin/env bash
# P5 on the machine's dockerd (or containerd, DAEMONLET_TEST_RUNTIME=containerd): restarting
# the agent never stops, restarts or duplicates
# a container. kill -9 during boot and in the middle of a rolling update, then a new agent
# adopts what runs and finishes the step; SIGTERM leaves everything running.
set -u
bin=$1
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-restart-XXXXXX)
defs=$work/defs
fail=0
name=restart
. "$(dirname "$0")/lib.sh"
agent=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  engine_rm_all label=io.daemonlet.instance=restart
  rm -rf "$work"
}
trap cleanup EXIT
# id name started-at for every managed container, sorted: the fingerprint of "untouched".
snapshot() {
  local id
  for id in $(engine_ids -a label=io.daemonlet.instance=restart); do engine_fingerprint "$id"; done | sort
}
running_ones() { snapshot | awk '$4 == "running"'; }
# --once gives up after 300 s; a run that has not converged in 120 s has failed, and its
# log and the engine's view are what tell why (the work dir goes at exit).
run_once() {
  local from code
  from=$(($(wc -l <"$work/once.log" 2>/dev/null || echo 0) + 1))
  timeout 120 "$bin" run --config "$work/config.yaml" --source "$defs" --once >>"$work/once.log" 2>&1
  code=$?
  if [ "$code" != 0 ]; then
    echo "--- agent --once exited $code; its log:"; tail -n +"$from" "$work/once.log" | tail -40
    echo "--- managed containers (id name started status):"; snapshot
  fi
  return "$code"
}

mkdir -p "$defs/daemons" "$defs/tasks"
{ printf 'instance: {id: restart}\nlisten: 127.0.0.1:51698\napiSocket: %s/api.sock\nstateDir: %s/state\n' "$work" "$work"; engine_config; } >"$work/config.yaml"
daemon_def() {
  cat >"$defs/daemons/agent.json" <<JSON
{"family": "agent", $(engine_definition_fields)"revision": $1, "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
}
daemon_def 1
for t in t1 t2; do
  cat >"$defs/tasks/$t.json" <<JSON
{"family": "app", $(engine_definition_fields)"containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
done

# --- kill -9 during boot ------------------------------------------------------------------
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/boot.log" 2>&1 &
agent=$!
some_container() { [ -n "$(engine_ids -a label=io.daemonlet.instance=restart)" ]; }
wait_for 30 some_container || bad "the first agent created nothing"
kill -9 "$agent"; wait "$agent" 2>/dev/null; agent=
before=$(snapshot)
run_once || bad "agent after kill -9 during boot did not converge"
after=$(snapshot)
while read -r id cname started status; do
  [ -z "$id" ] && continue
  line=$(echo "$after" | grep "^$id ")
  [ -n "$line" ] || { bad "container $cname ($id) was replaced after the restart"; continue; }
  [ "$status" = running ] && [ "$(echo "$line" | cut -d' ' -f3)" != "$started" ] && bad "container $cname was restarted"
done <<<"$before"
[ "$(running_ones | wc -l)" = 3 ] || bad "expected 1 daemon + 2 tasks running, got: $(running_ones)"
say "kill -9 during boot: $(echo "$before" | grep -c .) container(s) adopted as they were, boot finished"

# --- a second agent run changes nothing ---------------------------------------------------
before=$(snapshot)
run_once || bad "adopting agent did not converge"
[ "$(snapshot)" = "$before" ] || bad "a plain agent restart changed containers"
say "restart with everything running: no container touched"

# --- P6 across a restart: a definition broken while the agent was down -----------------
daemon_id=$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.family=agent)
cp "$defs/daemons/agent.json" "$work/agent.json.good"
echo '{"family": "agent", "containerDefinitions": [' >"$defs/daemons/agent.json"
run_once || bad "agent with a broken daemon file did not converge"
grep -q "keeping the last good version of daemon 'agent'" "$work/once.log" || bad "the saved last good version was not used"
[ "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.family=agent)" = "$daemon_id" ] || bad "the daemon was stopped or replaced over a broken file"
cp "$work/agent.json.good" "$defs/daemons/agent.json"
say "a definition broken while the agent was down: the last good version from state.json kept the daemon running"

# --- kill -9 in the middle of a rolling update ------------------------------------------
tasks_before=$(running_ones | grep daemonlet-task)
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/rollout.log" 2>&1 &
agent=$!
wait_for 20 grep -q "converged\|slot gate open" "$work/rollout.log"
sleep 1
daemon_def 2
new_copy() { [ -n "$(engine_ids -a label=io.daemonlet.instance=restart label=io.daemonlet.family=agent label=io.daemonlet.revision=2)" ]; }
wait_for 20 new_copy || bad "the rollout never created r2"
kill -9 "$agent"; wait "$agent" 2>/dev/null; agent=
new_id=$(engine_ids -a label=io.daemonlet.instance=restart label=io.daemonlet.family=agent label=io.daemonlet.revision=2)
[ -n "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.family=agent label=io.daemonlet.revision=1)" ] || say "(r1 was already stopped when the agent died)"
run_once || bad "agent after kill -9 mid-rollout did not converge"
copies=$(engine_count label=io.daemonlet.instance=restart label=io.daemonlet.family=agent)
[ "$copies" = 1 ] || bad "$copies copies of the daemon after the rollout"
[ "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.family=agent label=io.daemonlet.revision=2)" = "$new_id" ] \
  || bad "r2 was recreated instead of adopted"
[ -z "$(engine_ids -a label=io.daemonlet.instance=restart label=io.daemonlet.family=agent label=io.daemonlet.revision=1)" ] || bad "r1 left behind"
[ "$(running_ones | grep daemonlet-task)" = "$tasks_before" ] || bad "application tasks were touched by the daemon rollout"
say "kill -9 mid-rollout: r2 adopted (same id), r1 stopped and removed, tasks untouched"

# --- SIGTERM without --drain-on-exit ---------------------------------------------------
before=$(snapshot)
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/term.log" 2>&1 &
agent=$!
wait_for 20 grep -q "phase STARTING -> ACTIVE" "$work/term.log" || bad "agent did not come up: $(tail -3 "$work/term.log")"
t0=$(date +%s.%N)
kill -TERM "$agent"; wait "$agent"; code=$?; agent=
took=$(echo "$(date +%s.%N) - $t0" | bc)
[ "$code" = 0 ] || bad "SIGTERM exit code $code"
[ "$(snapshot)" = "$before" ] || bad "SIGTERM changed containers"
say "SIGTERM: agent exited 0 in ${took} s, every container still running as before"

# --- daemonlet status and drain --wait through the introspection API ------------------
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/drain.log" 2>&1 &
agent=$!
wait_for 20 grep -q "phase STARTING -> ACTIVE" "$work/drain.log" || bad "agent did not come up for the drain"
status=$("$bin" status --listen 127.0.0.1:51698)
echo "$status" | grep -q "phase ACTIVE  slot gate open" || bad "status: $status"
echo "$status" | grep -qE "^t1 +app +0 +RUNNING" || bad "status does not list t1 RUNNING: $status"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:51698/readyz)" = 200 ] || bad "/readyz not 200"
# DESIGN 3.7: a host-network application container reaches 127.0.0.1 but cannot drain.
answer=$(engine_run_host "$image" wget -q -S -O- --post-data '' http://127.0.0.1:51698/v1/drain 2>&1)
echo "$answer" | grep -q "405" || bad "a host-network container's POST /v1/drain was not refused with 405: $answer"
[ -n "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.kind=task)" ] || bad "tasks stopped after a refused drain"
[ "$(stat -c %a "$work/api.sock")" = 660 ] || bad "API socket mode is $(stat -c %a "$work/api.sock"), not 660"
"$bin" drain --socket "$work/api.sock" --wait --timeout 30 >"$work/drain.out" 2>&1 || bad "drain --wait failed: $(cat "$work/drain.out")"
[ -z "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.kind=task)" ] || bad "tasks running after drain --wait"
[ "$(engine_count label=io.daemonlet.instance=restart label=io.daemonlet.family=agent)" = 1 ] || bad "the daemon did not keep running through a drain"
"$bin" status --listen 127.0.0.1:51698 --json | grep -q '"phase": "DRAINED"' || bad "status --json does not say DRAINED"
kill -TERM "$agent"; wait "$agent"; agent=
"$bin" status --listen 127.0.0.1:51698 >/dev/null 2>"$work/status.err" && bad "status succeeded with no agent"
grep -q "cannot reach the agent at 127.0.0.1:51698" "$work/status.err" || bad "status error unclear: $(cat "$work/status.err")"
say "status shows phase and tasks; drain --wait returned with tasks stopped and the daemon running"

# --- kill -9 in the middle of a drain, then of a --drain-on-exit shutdown --------------
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/redrain.log" 2>&1 &
agent=$!
wait_for 20 grep -q "resuming the drain" "$work/redrain.log" || bad "a restarted agent forgot the drain: $(tail -3 "$work/redrain.log")"
sleep 2
[ -z "$(engine_ids label=io.daemonlet.instance=restart label=io.daemonlet.kind=task)" ] || bad "tasks started again after a restart mid-drain"
"$bin" status --listen 127.0.0.1:51698 --json | grep -q '"phase": "DRAINED"' || bad "restarted agent is not DRAINED"
kill -TERM "$agent"; wait "$agent"; agent=
rm -f "$work/state/drain"  # the operator un-drains

"$bin" run --config "$work/config.yaml" --source "$defs" --drain-on-exit >"$work/shutdown1.log" 2>&1 &
agent=$!
wait_for 30 grep -q "phase STARTING -> ACTIVE\|phase DAEMONS_PENDING -> ACTIVE" "$work/shutdown1.log" || bad "agent did not come up for the shutdown"
two_tasks() { [ "$(engine_count label=io.daemonlet.instance=restart label=io.daemonlet.kind=task)" -eq 2 ]; }
wait_for 30 two_tasks || bad "drained tasks did not start again after the un-drain"
kill -TERM "$agent"
# On containerd the whole drain takes about 100 ms (the containers exit at once on
# SIGTERM): wait_for's 0.2 s steps let the shutdown finish before the kill, and the next
# agent then had nothing to resume. So the kill follows the drain's first line closely.
for _ in $(seq 1 2000); do grep -q "phase ACTIVE -> DRAINING" "$work/shutdown1.log" && break; sleep 0.005; done
kill -9 "$agent"; wait "$agent" 2>/dev/null; agent=
grep -q "shutdown complete" "$work/shutdown1.log" && bad "the shutdown finished before kill -9 landed: nothing left to resume (test timing)"
"$bin" run --config "$work/config.yaml" --source "$defs" >"$work/shutdown2.log" 2>&1 &
agent=$!
agent_gone() { ! kill -0 "$agent" 2>/dev/null; }
if wait_for 60 agent_gone; then
  wait "$agent"; code=$?
else
  bad "the restarted agent did not finish the interrupted shutdown"; kill -9 "$agent"; code=killed
fi
agent=
[ "$code" = 0 ] || bad "resumed shutdown exit code $code"
grep -q "resuming the shutdown drain" "$work/shutdown2.log" || bad "the shutdown was not resumed"
[ -z "$(engine_ids label=io.daemonlet.instance=restart)" ] || bad "containers still running after the resumed shutdown"
[ ! -e "$work/state/drain" ] || bad "the shutdown marker was left behind"
say "kill -9 mid-drain and mid-shutdown: the restarted agent finished each step"

if [ "$fail" != 0 ]; then for f in "$work"/*.log; do echo "--- $f"; tail -40 "$f"; done; fi
[ "$fail" = 0 ] && echo "restart: all checks passed"
exit $fail

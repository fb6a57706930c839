#!/usr/bin/env bash
# The agent driven by a control endpoint (tests/control/control_server.py) on the
# machine's dockerd (or containerd, DAEMONLET_TEST_RUNTIME=containerd): registration, a
# daemon added on the server starts within one poll,
# a revision change rolls out, DRAINING drains tasks and keeps daemons, reports reach the
# server, every injected fault leaves the containers untouched and the agent alive and
# is recovered from, a restart with the server down runs the persisted state (P7), and
# HTTPS with the right CA works while a wrong CA fails closed.
set -u
bin=$1
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
ctl() { python3 "$here/../control/controlctl.py" "$admin" "$@"; }
work=$(mktemp -d /tmp/dl-control-XXXXXX)
fail=0
name=control
. "$here/lib.sh"
agent=
server=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  [ -n "$server" ] && { kill -9 "$server"; wait "$server"; } 2>/dev/null
  engine_rm_all label=io.daemonlet.instance=ctl-e2e
  engine_events_end
  if [ "$fail" != 0 ]; then rm -rf /tmp/dl-control-failed; mv "$work" /tmp/dl-control-failed && echo "logs kept in /tmp/dl-control-failed"; fi
  rm -rf "$work"
}
trap cleanup EXIT
listen=127.0.0.1:51696
log=$work/agent.log

start_server() {  # start_server [flags...]: sets port, admin, server
  rm -f "$work/ready.json"
  python3 "$here/../control/control_server.py" --ready-file "$work/ready.json" "$@" >>"$work/server.log" 2>&1 &
  server=$!
  ready() { [ -s "$work/ready.json" ]; }
  wait_for 10 ready || { bad "control server did not start"; cat "$work/server.log"; exit 1; }
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/ready.json")
  admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adminPort"])' "$work/ready.json")
}
start_agent() {
  "$bin" run --config "$work/config.yaml" >>"$log" 2>&1 &
  agent=$!
}
# name started-at status of every managed container: the fingerprint of "untouched".
snapshot() {
  local id
  for id in $(engine_ids -a label=io.daemonlet.instance=ctl-e2e); do engine_fingerprint "$id" | cut -d' ' -f2-; done | sort
}
definition() {  # definition FILE FAMILY REVISION [MEMORY]
  cat >"$1" <<JSON
{"family": "$2", $(engine_definition_fields)"revision": $3, "containerDefinitions": [{"name": "main", "image": "$image", "memory": ${4:-32}, "stopTimeout": 2,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
}
definition "$work/monitor-1.json" monitor 1
definition "$work/monitor-2.json" monitor 2
definition "$work/shipper-1.json" shipper 1
definition "$work/web.json" web 0
definition "$work/huge.json" huge 0 1000000

engine_events_begin "$work/engine-events"
start_server
cat >"$work/config.yaml" <<YAML
instance:
  id: ctl-e2e
  attributes: {rack: r12}
  capacityProvider: on-demand
  reserved: {cpu: 0, memory: 256}
source: {type: http, url: "http://127.0.0.1:$port"}
listen: $listen
stateDir: $work/state
$(engine_config)
YAML

# --- registration, first desired state, reports ------------------------------------------
ctl desired 1 --daemon "$work/monitor-1.json" --task web-1="$work/web.json" --task huge-1="$work/huge.json" >/dev/null
start_agent
registered() { ctl get 's["registrations"]["default/ctl-e2e"]["capacityProvider"]' >/dev/null 2>&1; }
wait_for 20 registered || bad "the agent did not register"
reg=$(ctl get 's["registrations"]["default/ctl-e2e"]')
echo "$reg" | grep -q '"rack": "r12"' || bad "registration lacks the attributes: $reg"
echo "$reg" | grep -q '"agentVersion": "' || bad "registration lacks agentVersion: $reg"
total_mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 ))
[ "$(ctl get 's["registrations"]["default/ctl-e2e"]["capacity"]["memory"]')" = $(( total_mem - 256 )) ] \
  || bad "registered memory is not total ($total_mem) minus reserved 256: $reg"
say "registered: $reg"
web_running() { [ -n "$(engine_ids label=io.daemonlet.instance=ctl-e2e name=daemonlet-task-web-1-main)" ]; }
wait_for 30 web_running || bad "web-1 did not start"
reported() { [ "$(ctl get "$1" 2>/dev/null)" = "$2" ]; }
wait_for 10 reported 's["status"]["default/ctl-e2e"]["phase"]' ACTIVE || bad "no ACTIVE report"
wait_for 10 reported 's["status"]["default/ctl-e2e"]["daemons"][0]["status"]' RUNNING || bad "monitor not reported RUNNING"
wait_for 10 reported '[t["status"] for t in s["status"]["default/ctl-e2e"]["tasks"] if t["id"] == "web-1"][0]' RUNNING \
  || bad "web-1 not reported RUNNING"
wait_for 10 reported '[t["stoppedReason"] for t in s["status"]["default/ctl-e2e"]["tasks"] if t["id"] == "huge-1"][0]' RESOURCE:MEMORY \
  || bad "huge-1 not reported STOPPED RESOURCE:MEMORY"
say "reports: ACTIVE, monitor RUNNING, web-1 RUNNING, huge-1 RESOURCE:MEMORY"

# --- a daemon added on the server starts within one poll (the poll waits 55 s) -----------
t0=$(date +%s%N)
ctl desired 2 --daemon "$work/monitor-1.json" --daemon "$work/shipper-1.json" --task web-1="$work/web.json" >/dev/null
shipper_up() { [ -n "$(engine_ids label=io.daemonlet.instance=ctl-e2e label=io.daemonlet.family=shipper)" ]; }
wait_for 55 shipper_up || bad "shipper did not start within one long poll"
say "daemon added on the server running after $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# --- a new revision rolls out, start-new-then-stop-old ------------------------------------
old=$(engine_ids label=io.daemonlet.instance=ctl-e2e label=io.daemonlet.family=monitor)
t0=$(date +%s)
ctl desired 3 --daemon "$work/monitor-2.json" --daemon "$work/shipper-1.json" --task web-1="$work/web.json" >/dev/null
one_new_copy() { only_revision_running monitor 2 "$old"; }
wait_for 30 one_new_copy || bad "monitor r2 did not replace r1"
check_rollout_order monitor "$t0" 1 2 "rollout from the server"
wait_for 10 reported 's["status"]["default/ctl-e2e"]["daemons"][0]["revision"]' 2 || bad "r2 not reported"

# --- instanceStatus DRAINING drains tasks and keeps daemons; ACTIVE admits again ----------
ctl desired 4 --draining --daemon "$work/monitor-2.json" --daemon "$work/shipper-1.json" --task web-1="$work/web.json" >/dev/null
web_gone() { [ -z "$(engine_ids label=io.daemonlet.instance=ctl-e2e name=daemonlet-task-web-1-main)" ]; }
wait_for 30 web_gone || bad "DRAINING did not stop web-1"
wait_for 10 reported 's["status"]["default/ctl-e2e"]["phase"]' DRAINED || bad "phase DRAINED not reported"
[ "$(engine_count label=io.daemonlet.kind=daemon label=io.daemonlet.instance=ctl-e2e)" = 2 ] \
  || bad "daemons did not keep running through DRAINING"
say "DRAINING: web-1 stopped, 2 daemons running, DRAINED reported"
ctl desired 5 --daemon "$work/monitor-2.json" --daemon "$work/shipper-1.json" --task web-1="$work/web.json" >/dev/null
wait_for 30 web_running || bad "ACTIVE again did not start web-1"
wait_for 10 reported 's["status"]["default/ctl-e2e"]["phase"]' ACTIVE || bad "ACTIVE not reported after the drain"

# --- faults: containers untouched, agent alive, recovery ----------------------------------
generation=5
healthy() { curl -sf "http://$listen/healthz" >/dev/null; }
for mode in down 500 429 slow garbage oversized wrongtype 401; do
  before=$(snapshot)
  errors_before=$(curl -s "http://$listen/metrics" | awk '/^daemonlet_control_endpoint_errors_total/ {print $2}')
  ctl fault "$mode" --retry-after 1 --delay 20
  generation=$((generation + 1))
  publish() {
    ctl desired "$generation" --daemon "$work/monitor-2.json" --daemon "$work/shipper-1.json" --task web-1="$work/web.json" \
      --task "web-$generation=$work/web.json" >/dev/null
  }
  # A change published during the fault must arrive once it clears. (A slow server
  # would deliver it, just late: publish that one after.)
  [ "$mode" != slow ] && publish
  failing() {
    [ "$(curl -s "http://$listen/metrics" | awk '/^daemonlet_control_endpoint_errors_total/ {print $2}')" -gt "${errors_before:-0}" ]
  }
  if [ "$mode" = slow ]; then sleep 3; else wait_for 30 failing || bad "fault $mode: no error counted"; fi
  sleep 2
  healthy || bad "fault $mode: the agent is not alive"
  [ "$(snapshot)" = "$before" ] || { bad "fault $mode: containers changed"; diff <(echo "$before") <(snapshot); }
  ctl fault none
  [ "$mode" = slow ] && publish
  new_task_up() { [ -n "$(engine_ids label=io.daemonlet.instance=ctl-e2e name="daemonlet-task-web-$generation-main")" ]; }
  wait_for 90 new_task_up || bad "fault $mode: did not recover (web-$generation not started)"
  say "fault $mode: containers untouched, agent alive, recovered"
done
grep -q "control endpoint REFUSED CREDENTIALS" "$log" || bad "401 was not logged loudly"
grep -q "control endpoint: back after" "$log" || bad "recovery not logged"

# --- restart with the server down: the persisted state runs (P7) --------------------------
kill -TERM "$agent"; wait "$agent" 2>/dev/null; agent=
ctl fault down
before=$(snapshot)
start_agent
wait_for 20 healthy || bad "agent did not come up with the server down"
sleep 3
grep -q "running the persisted desired state (generation $generation" "$log" || bad "persisted state not announced"
grep -q "running the desired state persisted in stateDir/state.json" "$log" || bad "unreachable endpoint with persisted state not logged"
[ "$(snapshot)" = "$before" ] || { bad "containers changed on a restart with the server down"; diff <(echo "$before") <(snapshot); }
daemons=$(curl -s "http://$listen/v1/daemons")
echo "$daemons" | grep -q '"status":"RUNNING"' || bad "daemons not RUNNING after restart with the server down: $daemons"
ready_gate() { curl -sf "http://$listen/readyz" >/dev/null; }
wait_for 10 ready_gate || bad "slot gate not open on the persisted state"
ctl fault none
wait_for 60 reported 's["status"]["default/ctl-e2e"]["generation"]' "$generation" || bad "agent did not report back after the server returned"
say "restart with the server down: persisted generation $generation ran, containers untouched, reported once back"

# --- per-task records: a task container removed while the agent was down is named --------
kill -TERM "$agent"; wait "$agent" 2>/dev/null; agent=
engine_rm_all label=io.daemonlet.instance=ctl-e2e label=io.daemonlet.task-id=web-1
start_agent
wait_for 30 web_running || bad "web-1 was not started again after its container was removed"
grep -q "task web-1 was RUNNING when the agent last saved its state, but none of its containers exists now" "$log" \
  || bad "the lost web-1 container was not reported"
say "a task container removed while the agent was down: reported from the task records, started again"
kill -TERM "$agent"; wait "$agent" 2>/dev/null; agent=
kill "$server"; wait "$server" 2>/dev/null; server=

# --- HTTPS: the right CA works, a wrong CA fails closed ----------------------------------
pki=$work/pki
"$here/../control/make-test-pki.sh" "$pki" || bad "making the test PKI failed"
start_server --tls-cert "$pki/server.pem" --tls-key "$pki/server.key"
ctl desired 1 --daemon "$work/monitor-2.json" >/dev/null
tls_run() {  # tls_run CAFILE OUTPUT: dry run against the HTTPS endpoint
  printf 'instance: {id: ctl-e2e-tls}\nsource: {type: http, url: "https://127.0.0.1:%s", caFile: "%s"}\nstateDir: %s/tls-state\n' \
    "$port" "$1" "$work" >"$work/tls.yaml"
  "$bin" run --config "$work/tls.yaml" --dry-run >"$2" 2>&1
}
tls_run "$pki/ca.pem" "$work/tls-right.out" || { bad "HTTPS with the right CA failed"; cat "$work/tls-right.out"; }
grep -q "daemon monitor r2" "$work/tls-right.out" || bad "HTTPS dry run did not show the desired state"
if tls_run "$pki/other-ca.pem" "$work/tls-wrong.out"; then bad "HTTPS with the wrong CA succeeded"; fi
grep -q "TLS failed" "$work/tls-wrong.out" || { bad "wrong CA: no TLS failure logged"; cat "$work/tls-wrong.out"; }
grep -q "daemon monitor" "$work/tls-wrong.out" && bad "wrong CA: a desired state got through"
say "HTTPS: right CA fetched the desired state; wrong CA failed closed"

[ "$fail" = 0 ] && say "PASS" || { echo "--- agent log (tail)"; tail -60 "$log"; }
exit "$fail"

#!/usr/bin/env bash
# `systemctl stop containerd` / `start` in the middle of a rolling update, on a private
# containerd (tests/contract/private-containerd.sh; never the machine's): the engine is
# stopped (SIGTERM, as systemd's KillMode=process does: shims and containers live on)
# while revision 2 of a daemon runs beside revision 1 and is not healthy yet, and started
# again with the same state directory a few seconds later. The agent stays alive, the
# rollout finishes, and no family ever has two containers of one revision: one copy of
# the daemon at the end, the r2 created before the outage adopted (same container, same
# process), both tasks never restarted. A second round does the same with SIGKILL.
set -u
bin=$1
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dl-ctrd-XXXXXX)
engine_dir=$work/engine
export DAEMONLET_TEST_RUNTIME=containerd DAEMONLET_TEST_CONTAINERD=$engine_dir/containerd.sock
defs=$work/defs
log=$work/agent.log
listen=127.0.0.1:51691
fail=0
name=containerd-restart
. "$here/lib.sh"
agent=
sampler=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  "$here/../contract/private-containerd.sh" stop "$engine_dir"
  if [ "$fail" != 0 ]; then rm -rf /tmp/dl-ctrd-failed; mv "$work" /tmp/dl-ctrd-failed && echo "logs kept in /tmp/dl-ctrd-failed"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

"$here/../contract/private-containerd.sh" start "$engine_dir" || { bad "private containerd did not start"; exit 1; }
"$here/../contract/containerd-test-image.sh" "$DAEMONLET_TEST_CONTAINERD" || { bad "test image import failed"; exit 1; }

mkdir -p "$defs/daemons" "$defs/tasks"
cat >"$work/config.yaml" <<YAML
instance: {id: ctrd-restart}
source: {pollSeconds: 1}
listen: $listen
apiSocket: $work/api.sock
stateDir: $work/state
$(engine_config)
YAML
# r2 needs ~12 s to become healthy: the engine goes away while r1 and r2 both run. The
# start period covers the outage, so a health check that cannot reach the engine there
# does not count against r2 (as on Docker).
daemon_def() {
  cat >"$work/shipper.json" <<JSON
{"family": "shipper", $(engine_definition_fields)"revision": $1, "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap 'exit 0' TERM; sleep $2; touch /tmp/up; while true; do sleep 1 & wait; done"],
  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "timeout": 2, "retries": 3, "startPeriod": 30}}]}
JSON
  mv "$work/shipper.json" "$defs/daemons/shipper.json"
}
daemon_def 1 0
for t in t1 t2; do
  cat >"$defs/tasks/$t.json" <<JSON
{"family": "app", $(engine_definition_fields)"containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
done

family() { engine_ids "$@" label=io.daemonlet.instance=ctrd-restart label=io.daemonlet.family=shipper; }
# Every 0.2 s while the engine answers: "revision count" of the family's containers
# (created or running); any count above 1 is a duplicate.
sample() {
  local ids id
  while sleep 0.2; do
    ids=$(family -a) || continue
    for id in $ids; do engine_label "$id" io.daemonlet.revision; done | sort | uniq -c | awk '{ print $2, $1 }'
  done
}
tasks_fingerprint() {
  local id
  for id in $(engine_ids label=io.daemonlet.instance=ctrd-restart label=io.daemonlet.kind=task); do engine_fingerprint "$id"; done | sort
}

"$bin" run --config "$work/config.yaml" --source "$defs" >"$log" 2>&1 &
agent=$!
booted() { [ "$(engine_count label=io.daemonlet.instance=ctrd-restart label=io.daemonlet.kind=task)" = 2 ] && [ -n "$(family)" ]; }
wait_for 60 booted || { bad "the agent did not boot on the private containerd"; tail -30 "$log"; exit 1; }
sample >"$work/samples" 2>/dev/null &
sampler=$!

round() {  # round REVISION SIGNAL
  local rev=$1 sig=$2 old_id new_id new_fp tasks_before down_at
  old_id=$(family)
  tasks_before=$(tasks_fingerprint)
  daemon_def "$rev" 12
  new_running() { [ -n "$(family label=io.daemonlet.revision="$rev")" ]; }
  wait_for 20 new_running || { bad "r$rev was not started"; return; }
  new_id=$(family label=io.daemonlet.revision="$rev")
  new_fp=$(engine_fingerprint "$new_id")
  [ -n "$(family | grep -F "$old_id")" ] || bad "r$((rev - 1)) stopped before r$rev was healthy"
  # systemctl stop containerd: SIGTERM to containerd alone (KillMode=process).
  pid=$(cat "$engine_dir/containerd.pid")
  kill -"$sig" "$pid"
  gone() { ! kill -0 "$pid" 2>/dev/null; }
  wait_for 20 gone || bad "containerd did not stop on SIG$sig"
  down_at=$(date +%s%N)
  sleep 4
  kill -0 "$agent" 2>/dev/null || bad "the agent died while containerd was down (SIG$sig)"
  "$here/../contract/private-containerd.sh" start "$engine_dir" || { bad "containerd did not start again"; return; }
  say "SIG$sig: containerd down for $(( ($(date +%s%N) - down_at) / 1000000 )) ms in the middle of r$((rev - 1)) -> r$rev"
  converged() { only_revision_running shipper "$rev" "$old_id"; }
  wait_for 60 converged || { bad "SIG$sig: the rollout to r$rev did not converge: $(family -a)"; return; }
  [ "$(family -a)" = "$new_id" ] || bad "SIG$sig: the family holds $(family -a | wc -l) container(s), not the adopted r$rev"
  [ "$(engine_fingerprint "$new_id")" = "$new_fp" ] || bad "SIG$sig: r$rev was restarted ($new_fp -> $(engine_fingerprint "$new_id"))"
  [ "$(tasks_fingerprint)" = "$tasks_before" ] || bad "SIG$sig: tasks were restarted or replaced"
  kill -0 "$agent" 2>/dev/null || bad "the agent is not alive after the outage"
  curl -sf "http://$listen/healthz" >/dev/null || bad "/healthz does not answer after the outage"
  say "SIG$sig: converged on r$rev (the same container and process as before the outage), tasks untouched"
}
round 2 TERM
round 3 KILL

kill "$sampler"; wait "$sampler" 2>/dev/null; sampler=
dups=$(awk '$2 > 1' "$work/samples" | sort -u)
[ -z "$dups" ] || bad "duplicate daemon containers seen (revision count): $dups"
[ -s "$work/samples" ] || bad "the sampler saw nothing"
say "no revision of the daemon ever had two containers ($(wc -l <"$work/samples") samples)"
grep -q "runtime events: reconnected; resyncing" "$log" || bad "the agent did not log a resync after containerd came back"
kill -TERM "$agent"; wait "$agent"; code=$?; agent=
[ "$code" = 0 ] || bad "agent exit code $code"

[ "$fail" = 0 ] && say "PASS" || { echo "--- agent log (tail)"; tail -60 "$log"; }
exit "$fail"

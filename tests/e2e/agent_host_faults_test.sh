#!/usr/bin/env bash
# Host faults end to end, on real engines (no mocks). Each scenario has its own instance id,
# listen port, state directory and definitions, and prints one result line:
#   1. engine SIGKILL: a private dockerd is killed -9 and started again (it stops what it
#      finds); the daemon and both tasks run again, the daemon HEALTHY before any task
#      starts (P2 for replacements, DESIGN 3.4), and the agent stays alive.
#   2. power loss: agent kill -9, every container of the instance killed behind its back,
#      agent started again: tasks come back only after the daemon is healthy.
#   3. directory glitches: tasks/ moved away for 3 s, then the whole tree swapped; nothing
#      is stopped or recreated, sourceProblems is reported while tasks/ is away (3.4), and a
#      file deleted from a listable directory still removes its task.
#   4. bad bytes: a Latin-1 byte in a JSON task file is a validate error at FILE:LINE:COL;
#      the agent (JSON logs, --drain-on-exit) runs the rest, stays healthy, and drains on
#      SIGTERM (tasks before the daemon) and exits 0 (P6, P4).
#   6. upgrade with a broken critical daemon: the gate forced open by its timeout stays open
#      for the restarted agent (ready at once, new tasks admitted).
#   7. a frozen engine (SIGSTOP) across the 60 s resync: /healthz stays 200.
#   5. new identity: the same host and definitions under a new instance id start their own
#      containers (behind their own daemon's gate); the old instance's are orphans: reported
#      (metadata, metrics, status), never adopted, never removed (3.6).
# FAULTS_ONLY="3 5" runs a subset; KEEP_WORK=1 keeps the logs and events under /tmp/dl-faults-*.
set -u
bin=$1
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dl-faults-XXXXXX)
fail=0
name=faults
. "$here/lib.sh"
nbad=0
bad() { echo "FAIL: $*"; fail=1; nbad=$((nbad + 1)); }  # lib.sh's, counted per scenario
tag=hf$$                      # instance ids: $tag-engine, $tag-power, ...
engine=                       # private dockerd directory (scenario 1), for dk and cleanup
agent=                        # the running agent's pid
watchers=()                   # docker events streams
results=()

cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  for w in "${watchers[@]}"; do kill "$w" 2>/dev/null; done
  docker ps -a --filter "label=io.daemonlet.managed=true" --format '{{.ID}} {{.Label "io.daemonlet.instance"}}' \
    | awk -v t="$tag-" 'index($2, t) == 1 { print $1 }' | xargs -r docker rm -f >/dev/null
  [ -n "$engine" ] && "$here/../contract/private-dockerd.sh" stop "$engine"
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap "exit 1" INT TERM  # so that EXIT runs cleanup when ctest or a user stops the script

# dk: docker on the engine of the current scenario (the private one in scenario 1).
dk() { if [ -n "$engine" ]; then docker -H "unix://$engine/docker.sock" "$@"; else docker "$@"; fi; }
now_ns() { date +%s%N; }
# as_since NS: nanoseconds since the epoch as docker's --since wants them (SECONDS.NANOS)
as_since() { echo "$1" | sed 's/\(.\{9\}\)$/.\1/'; }
# running ID [KIND]: number of running managed containers of instance ID.
running() { dk ps -q --filter "label=io.daemonlet.instance=$1" ${2:+--filter "label=io.daemonlet.kind=$2"} | wc -l; }
healthy_daemons() { dk ps -q --filter "label=io.daemonlet.instance=$1" --filter label=io.daemonlet.kind=daemon --filter health=healthy | wc -l; }
# up ID TASKS: one healthy daemon and TASKS running tasks, nothing else running.
up() { [ "$(healthy_daemons "$1")" = 1 ] && [ "$(running "$1" daemon)" = 1 ] && [ "$(running "$1" task)" = "$2" ]; }
# back ID TASKS: up, and no running container is the same run as before the fault ($pre).
back() { up "$1" "$2" && [ -z "$(comm -12 <(echo "$pre") <(fingerprint "$1"))" ]; }
# fingerprint ID: id and start time of every container of ID: the proof of "untouched".
fingerprint() {
  dk ps -aq --filter "label=io.daemonlet.instance=$1" | xargs -r docker ${engine:+-H "unix://$engine/docker.sock"} inspect \
    -f '{{.Id}} {{.Name}} {{.State.StartedAt}} {{.State.Status}}' | sort
}
api() { curl -s --max-time 5 "http://$listen$1"; }
agent_alive() { [ -n "$agent" ] && kill -0 "$agent" 2>/dev/null; }
agent_gone() { ! kill -0 "$agent" 2>/dev/null; }

# scenario ID PORT [EXTRA-CONFIG]: fresh directories and config for one instance.
scenario() {
  id=$tag-$1 listen=127.0.0.1:$2 dir=$work/$1 defs=$work/$1/defs log=$work/$1/agent.log
  mkdir -p "$defs/daemons" "$defs/tasks"
  cat >"$dir/config.yaml" <<YAML
instance: {id: $id}
source: {type: directory, path: $defs, pollSeconds: 1}
listen: $listen
apiSocket: $dir/api.sock
stateDir: $dir/state
${3:-}
YAML
  t_start=$(date +%s)
  bad_before=$nbad gate_margin='' back='' took=''
}
# start_agent [FLAGS...]: the agent of the current scenario, logging to $log (appended).
start_agent() {
  echo "=== $(date +%T.%N) daemonlet run $*" >>"$log"
  "$bin" run --config "$dir/config.yaml" "$@" >>"$log" 2>&1 &
  agent=$!
}
stop_agent() {  # SIGTERM and wait; sets $code
  code=
  [ -n "$agent" ] || return
  kill -TERM "$agent" 2>/dev/null
  wait_for 60 agent_gone || kill -9 "$agent"
  wait "$agent"; code=$?; agent=
}
# A daemon that is healthy ~5 s after each start (the check runs every 5 s; the marker is
# written 2 s after start and removed first, so a restarted container is not healthy at once).
daemon_def() {  # FAMILY [EXTRA-TASK-FIELDS]
  cat >"$defs/daemons/$1.json" <<JSON
{"family": "$1", "revision": 1, ${2:-} "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "rm -f /tmp/up; trap 'exit 0' TERM; sleep 2; touch /tmp/up; while true; do sleep 1 & wait; done"],
  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "timeout": 2, "retries": 2}}]}
JSON
}
task_def() {  # ID [EXTRA-TASK-FIELDS]
  cat >"$defs/tasks/$1.json" <<JSON
{"family": "app", "revision": 1, ${2:-} "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
}
# watch_events FILE ID [SINCE]: stream the events of instance ID as "nanos|action|kind|name".
watch_events() {
  dk events ${3:+--since "$3"} --filter "label=io.daemonlet.instance=$2" \
    --filter event=start --filter event=die --filter event=health_status --filter event=destroy \
    --format '{{.TimeNano}}|{{.Action}}|{{index .Actor.Attributes "io.daemonlet.kind"}}|{{.Actor.Attributes.name}}' >"$1" 2>&1 &
  watchers+=($!)
}
# has_event FILE SINCE_NS ACTION KIND: the watcher wrote such an event after SINCE_NS
has_event() { awk -F'|' -v s="$2" -v a="$3" -v k="$4" '$1 > s && $2 == a && $3 == k { f = 1 } END { exit !f }' "$1"; }
# check_gate_order FILE SINCE_NS WHAT: after SINCE_NS, the daemon's first healthy event
# precedes every task start event, and at least one task started (P2 for replacements).
check_gate_order() {
  local file=$1 since=$2 what=$3 healthy first_task
  healthy=$(awk -F'|' -v s="$since" '$1 > s && $2 == "health_status: healthy" && $3 == "daemon" { print $1; exit }' "$file")
  first_task=$(awk -F'|' -v s="$since" '$1 > s && $2 == "start" && $3 == "task" { print $1 }' "$file" | sort -n | head -1)
  if [ -z "$healthy" ] || [ -z "$first_task" ] || [ "$first_task" -le "$healthy" ]; then
    bad "$what: daemon healthy at ${healthy:-never}, first task start at ${first_task:-never} (must be later); events:"
    awk -F'|' -v s="$since" '$1 > s { printf "  +%d ms %s %s %s\n", ($1 - s) / 1000000, $2, $3, $4 }' "$file"
    return 1
  fi
  gate_margin=$(( (first_task - healthy) / 1000000 ))
}
# result WHAT DETAIL [MORE-IDS]: the scenario's one line, the agent log when it failed; then
# removes the containers of the scenario's instance (and of MORE-IDS).
result() {
  local secs=$(( $(date +%s) - t_start )) line
  if [ "$nbad" != "$bad_before" ]; then
    line="$1: FAILED (${secs} s)"
    echo "--- $1: agent log ($log), last 60 lines"; tail -60 "$log" 2>/dev/null | cut -c1-400
  else
    line="$1: ok (${secs} s) $2"
  fi
  say "$line"; results+=("$line")
  # Leave nothing behind for the next scenario (container names carry no instance id
  # before DESIGN 3.6's suffix, and SIGTERM without a drain leaves containers running).
  for w in "${watchers[@]}"; do kill "$w" 2>/dev/null; done
  watchers=()
  for i in "$id" ${3:-}; do dk ps -aq --filter "label=io.daemonlet.instance=$i" | xargs -r docker ${engine:+-H "unix://$engine/docker.sock"} rm -f >/dev/null; done
}

pd=$here/../contract/private-dockerd.sh
# private_engine NAME WHAT: a private dockerd at $work/NAME with the test image, and the
# scenario's agent pointed at it; false (and a failure said) when it cannot start.
private_engine() {
  engine=$work/$1$$
  if ! "$pd" start "$engine" >>"$dir/engine.out" 2>&1 || ! docker save "$image" | dk load >>"$dir/engine.out" 2>&1; then
    bad "$2: private dockerd or image load failed: $(tail -5 "$dir/engine.out")"
    return 1
  fi
  echo "runtime: {endpoint: unix://$engine/docker.sock}" >>"$dir/config.yaml"
}

# --- 1. engine SIGKILL --------------------------------------------------------------------
scenario_1() {
scenario engine 31711
if private_engine pd "engine SIGKILL"; then
  daemon_def mon '"networkMode": "none",'
  task_def t1 '"networkMode": "none",'
  task_def t2 '"networkMode": "none",'
  start_agent
  engine_up() { up "$id" 2; }
  engine_back() { back "$id" 2; }
  if ! wait_for 60 engine_up; then
    bad "engine SIGKILL: daemon + 2 tasks not up on the private engine in 60 s: $(fingerprint "$id")"
  else
    pre=$(fingerprint "$id")
    "$pd" kill9 "$engine" || bad "engine SIGKILL: private dockerd did not die"
    sleep 2
    agent_alive || bad "engine SIGKILL: the agent died with the engine"
    restarted_at=$(now_ns)
    "$pd" start "$engine" >>"$dir/engine.out" 2>&1 || bad "engine SIGKILL: private dockerd did not start again"
    watch_events "$dir/events" "$id" "$(as_since "$restarted_at")"
    if ! wait_for 60 engine_back; then
      bad "engine SIGKILL: daemon + 2 tasks not running again 60 s after the engine restart: $(fingerprint "$id")"
    fi
    back=$(( ($(now_ns) - restarted_at) / 1000000000 ))
    wait_for 10 has_event "$dir/events" "$restarted_at" start task
    check_gate_order "$dir/events" "$restarted_at" "engine SIGKILL: gate order"
    agent_alive || bad "engine SIGKILL: the agent is not running after the engine came back"
  fi
  stop_agent
fi
result "1 engine SIGKILL" "everything back ${back:-?} s after the engine restart; daemon healthy ${gate_margin:-?} ms before the first task start"
"$pd" stop "$engine"; engine=
}

# --- 2. power loss ------------------------------------------------------------------------
scenario_2() {
scenario power 31712
daemon_def mon
task_def t1
task_def t2
start_agent
power_up() { up "$id" 2; }
power_back() { back "$id" 2; }
if ! wait_for 60 power_up; then
  bad "power loss: daemon + 2 tasks not up in 60 s: $(fingerprint "$id")"
else
  kill -9 "$agent"; wait "$agent" 2>/dev/null; agent=
  pre=$(fingerprint "$id")
  lost_at=$(now_ns)
  watch_events "$dir/events" "$id" "$(as_since "$lost_at")"
  docker ps -q --filter "label=io.daemonlet.instance=$id" | xargs -r docker kill >/dev/null
  [ "$(running "$id")" = 0 ] || bad "power loss: containers still running after docker kill"
  start_agent
  wait_for 60 power_back || bad "power loss: daemon + 2 tasks not running 60 s after the agent restart: $(fingerprint "$id")"
  back=$(( ($(now_ns) - lost_at) / 1000000000 ))
  wait_for 10 has_event "$dir/events" "$lost_at" start task
  check_gate_order "$dir/events" "$lost_at" "power loss: gate order"
  agent_alive || bad "power loss: the agent died"
fi
stop_agent
result "2 power loss" "everything back in ${back:-?} s; daemon healthy ${gate_margin:-?} ms before the first task start"
}

# --- 3. directory glitches ----------------------------------------------------------------
scenario_3() {
scenario dirs 31713
daemon_def mon
task_def t1
task_def t2
start_agent
dirs_up() { up "$id" 2; }
# source_problems: the length of sourceProblems in /v1/metadata, or "absent".
source_problems() { api /v1/metadata | jq -r 'if has("sourceProblems") then (.sourceProblems | length) else "absent" end' 2>/dev/null; }
no_source_problems() { [ "$(source_problems)" = 0 ]; }
if ! wait_for 60 dirs_up; then
  bad "dir glitch: daemon + 2 tasks not up in 60 s: $(fingerprint "$id")"
else
  sleep 2  # settled
  before=$(fingerprint "$id")
  watch_events "$dir/events" "$id" "$(as_since "$(now_ns)")"
  # (a) tasks/ away for at least 3 s, and until the API has said so (at most 20 s: under
  # load the next poll can come late)
  mv "$defs/tasks" "$defs/tasks.away"
  seen=absent away_at=$(now_ns)
  away_min=$(( away_at + 3000000000 )) away_max=$(( away_at + 20000000000 ))
  while [ "$(now_ns)" -lt "$away_max" ]; do
    n=$(source_problems)
    case "$n" in ''|absent|0) ;; *) seen=$n; api /v1/metadata | jq -c .sourceProblems >"$dir/problems"; break ;; esac
    [ -n "$n" ] && seen=$n
    sleep 0.2
  done
  while [ "$(now_ns)" -lt "$away_min" ]; do sleep 0.2; done
  mv "$defs/tasks.away" "$defs/tasks"
  case "$seen" in ''|absent|0) bad "dir glitch: /v1/metadata sourceProblems was '${seen:-no answer}' while tasks/ was away (want a non-empty array)" ;;
    *) say "while tasks/ was away: sourceProblems $(cat "$dir/problems")" ;; esac
  wait_for 10 no_source_problems || bad "dir glitch: sourceProblems not empty 10 s after tasks/ came back: $(api /v1/metadata | jq -c .sourceProblems)"
  sleep 3
  after=$(fingerprint "$id")
  [ "$after" = "$before" ] || bad "dir glitch (a): containers changed while tasks/ was away:$(diff <(echo "$before") <(echo "$after") | sed 's/^/  /')"
  dies=$(grep '|die|' "$dir/events" | cut -d'|' -f4 | tr '\n' ' ')
  [ -z "$dies" ] || bad "dir glitch (a): containers died: $dies"
  # (b) the whole tree swapped for a copy
  before=$after seen_events=$(wc -l <"$dir/events")
  cp -a "$defs" "$defs.new"
  mv "$defs" "$defs.old" && mv "$defs.new" "$defs"
  sleep 4
  after=$(fingerprint "$id")
  [ "$after" = "$before" ] || bad "dir glitch (b): containers changed when the tree was swapped:$(diff <(echo "$before") <(echo "$after") | sed 's/^/  /')"
  dies=$(tail -n +"$((seen_events + 1))" "$dir/events" | grep '|die|' | cut -d'|' -f4 | tr '\n' ' ')
  [ -z "$dies" ] || bad "dir glitch (b): containers died: $dies"
  no_source_problems || bad "dir glitch (b): sourceProblems after the swap: $(api /v1/metadata | jq -c .sourceProblems)"
  # a file deleted from the (new, listable) tasks/ removes its task
  t2_box=$(docker ps -aq --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=t2)
  others=$(fingerprint "$id" | grep -v "daemonlet-task-t2-")
  rm "$defs/tasks/t2.json"
  t2_removed() { [ -z "$(docker ps -aq --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=t2)" ]; }
  wait_for 15 t2_removed || bad "dir glitch: t2's container ($t2_box) not removed 15 s after tasks/t2.json was deleted"
  [ "$(fingerprint "$id")" = "$others" ] || bad "dir glitch: deleting t2 touched other containers"
  agent_alive || bad "dir glitch: the agent died"
fi
stop_agent
result "3 directory glitches" "nothing restarted when tasks/ left for 3 s or the tree was swapped; deleting t2.json removed t2"
}

# --- 4. bad bytes -------------------------------------------------------------------------
scenario_4() {
scenario bytes 31714 "log: {format: json}
shutdown: {drainTimeoutSeconds: 40}"
daemon_def mon
task_def good1
task_def good2
badfile=$defs/tasks/latin1.json
printf '{"family": "app", "revision": 1, "containerDefinitions": [{"name": "main", "image": "%s", "memory": 32,\n  "environment": [{"name": "GREETING", "value": "caf\xe9"}],\n  "command": ["sleep", "1000"]}]}\n' "$image" >"$badfile"
"$bin" validate "$badfile" >"$dir/validate.out" 2>&1; vcode=$?
[ "$vcode" = 1 ] || bad "bad bytes: validate exit code $vcode, want 1: $(cat "$dir/validate.out")"
grep -qE "^$badfile:[0-9]+:[0-9]+: " "$dir/validate.out" || bad "bad bytes: validate does not print $badfile:LINE:COL: $(cat "$dir/validate.out")"
start_agent --drain-on-exit
bytes_up() { up "$id" 2; }
if ! wait_for 60 bytes_up; then
  bad "bad bytes: daemon + 2 good tasks not up in 60 s: $(fingerprint "$id")"
  agent_alive || bad "bad bytes: the agent exited"
else
  sleep 2
  agent_alive || bad "bad bytes: the agent exited"
  [ -z "$(docker ps -aq --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=latin1)" ] || bad "bad bytes: the bad task has a container"
  [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$listen/healthz")" = 200 ] || bad "bad bytes: /healthz is not 200"
  grep -q "latin1.json" "$log" || bad "bad bytes: the agent log does not name latin1.json"
  # every log line is one valid UTF-8 JSON object
  python3 - "$log" >"$dir/json.out" 2>&1 <<'PY' || bad "bad bytes: the JSON log is not JSON lines: $(head -3 "$dir/json.out")"
import json, sys
bad = 0
for n, raw in enumerate(open(sys.argv[1], 'rb').read().split(b'\n'), 1):
    if not raw or raw.startswith(b'=== '): continue
    try:
        if not isinstance(json.loads(raw.decode('utf-8')), dict): raise ValueError('not an object')
    except Exception as e:
        print(f'line {n}: {e}: {raw[:200]!r}'); bad += 1
sys.exit(1 if bad else 0)
PY
  t0=$(now_ns)
  watch_events "$dir/events" "$id" "$(as_since "$t0")"
  kill -TERM "$agent"
  wait_for 50 agent_gone || bad "bad bytes: the agent did not exit within 50 s of SIGTERM (drain timeout 40 s)"
  agent_alive && kill -9 "$agent"
  wait "$agent"; code=$?; agent=
  took=$(( ($(now_ns) - t0) / 1000000 ))
  [ "$code" = 0 ] || bad "bad bytes: exit code $code after the drain"
  wait_for 10 has_event "$dir/events" "$t0" die daemon
  last_task=$(awk -F'|' '$2 == "die" && $3 == "task" { print $1 }' "$dir/events" | sort -n | tail -1)
  first_daemon=$(awk -F'|' '$2 == "die" && $3 == "daemon" { print $1 }' "$dir/events" | sort -n | head -1)
  if [ -z "$last_task" ] || [ -z "$first_daemon" ] || [ "$last_task" -ge "$first_daemon" ]; then
    bad "bad bytes: drain order: last task died at ${last_task:-never}, first daemon at ${first_daemon:-never}: $(tr '\n' ' ' <"$dir/events")"
  fi
  [ "$(running "$id")" = 0 ] || bad "bad bytes: containers still running after the drain: $(fingerprint "$id")"
fi
stop_agent
result "4 bad bytes" "validate: $(head -1 "$dir/validate.out" | sed "s|$dir/||"); agent up with the rest; drained in ${took:-?} ms, exit 0"
}

# --- 5. new identity ----------------------------------------------------------------------
scenario_5() {
scenario identity 31715
a=$id b=$tag-identity-b
daemon_def mon
task_def t1
start_agent
a_up() { up "$a" 1; }
if ! wait_for 60 a_up; then
  bad "new identity: A's daemon + task not up in 60 s: $(fingerprint "$a")"
else
  stop_agent
  [ "$code" = 0 ] || bad "new identity: A's agent exit code $code on SIGTERM"
  a_before=$(fingerprint "$a")
  [ "$(running "$a")" = 2 ] || bad "new identity: A's containers did not keep running after SIGTERM"
  sed -i "s/^instance: {id: $a}/instance: {id: $b}/" "$dir/config.yaml"
  b_at=$(now_ns)
  watch_events "$dir/events" "$b" "$(as_since "$b_at")"
  start_agent
  # B shares A's stateDir, but A's "gate opened in this boot" is not B's: /readyz must
  # wait for B's own daemon (healthy no sooner than 2 s after its start).
  api_answers() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$listen/readyz")" != 000 ]; }
  wait_for 10 api_answers || bad "new identity: B's API never answered"
  ready_code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$listen/readyz")
  [ "$ready_code" = 503 ] || bad "new identity: B's /readyz said $ready_code before B's daemon was up (A's gate marker taken for B's)"
  b_up() { up "$b" 1; }
  wait_for 60 b_up || bad "new identity: B's daemon + task not running in 60 s: $(fingerprint "$b")"
  wait_for 10 has_event "$dir/events" "$b_at" start task
  check_gate_order "$dir/events" "$b_at" "new identity: B's gate order"
  [ "$(fingerprint "$a")" = "$a_before" ] || bad "new identity: A's containers were touched:$(diff <(echo "$a_before") <(fingerprint "$a") | sed 's/^/  /')"
  [ "$(running "$a")" = 2 ] || bad "new identity: A's containers are not both running"
  a_ids=$(echo "$a_before" | cut -d' ' -f1 | sort | tr '\n' ' ')
  meta=$(api /v1/metadata)
  orphans=$(echo "$meta" | jq -c '.orphans' 2>/dev/null)
  orphan_ids=$(echo "$meta" | jq -r '.orphans[]?.id' 2>/dev/null | sort | tr '\n' ' ')
  if [ -z "$orphans" ] || [ "$orphans" = null ]; then
    bad "new identity: /v1/metadata has no orphans key: $(echo "$meta" | cut -c1-300)"
  else
    echo "$meta" | jq -e --arg a "$a" '.orphans | length == 2 and all(.[]; (.id | type == "string") and (.name | type == "string") and .instance == $a)' >/dev/null \
      || bad "new identity: orphans should be A's 2 containers with id, name, instance=$a: $orphans"
    # ids may be short or full: every orphan id is a prefix of one of A's ids
    for o in $orphan_ids; do case " $a_ids" in *" $o"*) ;; *) bad "new identity: orphan $o is not one of A's containers" ;; esac; done
  fi
  metrics=$(api /metrics)
  echo "$metrics" | grep -qx "daemonlet_orphan_containers 2" || bad "new identity: /metrics: $(echo "$metrics" | grep orphan || echo 'no daemonlet_orphan_containers line')"
  "$bin" status --socket "$dir/api.sock" >"$dir/status.out" 2>&1 || bad "new identity: daemonlet status failed: $(cat "$dir/status.out")"
  grep -qi orphan "$dir/status.out" || bad "new identity: daemonlet status does not mention the orphans: $(cat "$dir/status.out")"
  agent_alive || bad "new identity: B's agent died"
fi
stop_agent
result "5 new identity" "B's task started ${gate_margin:-?} ms after B's daemon was healthy; A's 2 containers untouched, reported as orphans" "$b"
}

# --- 6. agent upgrade while a critical daemon is broken -------------------------------------
# The gate was forced open by slotGate.timeoutSeconds: the daemon runs but is never
# HEALTHY (a daemon that exits at once can look RUNNING for an instant and open the gate). An agent restarted in the same boot
# (a package upgrade) is ready at once and still admits new tasks: the gate stays forced.
scenario_6() {
scenario upgrade 31716 "slotGate: {timeoutSeconds: 3}"
cat >"$defs/daemons/broken.json" <<JSON
{"family": "broken", "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "command": ["sleep", "3600"],
  "healthCheck": {"command": ["CMD-SHELL", "false"], "interval": 5, "timeout": 2, "retries": 1}}]}
JSON
task_def t1
start_agent
t1_up() { [ -n "$(dk ps -q --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=t1)" ]; }
wait_for 30 t1_up || bad "upgrade: t1 did not start once the gate timed out"
stop_agent
task_def t2
# The restarted agent's own gate would time out only after 300 s: a 200 within 30 s (time
# enough on a loaded machine) can only be the gate remembered from this boot.
sed -i 's/^slotGate: {timeoutSeconds: 3}/slotGate: {timeoutSeconds: 300}/' "$dir/config.yaml"
grep -q '^slotGate: {timeoutSeconds: 300}' "$dir/config.yaml" || bad "upgrade: the restarted agent's gate timeout was not raised to 300 s"
restarted_at=$(now_ns)
start_agent
ready_soon() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://$listen/readyz")" = 200 ]; }
wait_for 30 ready_soon || bad "upgrade: /readyz not 200 within 30 s of the restart (the gate of this boot was not remembered)"
ready_ms=$(( ($(now_ns) - restarted_at) / 1000000 ))
t2_up() { [ -n "$(dk ps -q --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=t2)" ]; }
wait_for 15 t2_up || bad "upgrade: t2 never started after the restart (the forced gate was restored as a normal one)"
agent_alive || bad "upgrade: the agent died"
stop_agent
result "6 upgrade with a broken critical daemon" "ready ${ready_ms:-?} ms after the restart; a new task started past the broken daemon"
}

# --- 7. a frozen engine during the periodic resync ------------------------------------------
# The 60 s full listing runs beside the loop: with the engine frozen (SIGSTOP) across it,
# /healthz stays 200 every second. When the listing was awaited inline, the loop stalled
# for the whole 30 s call deadline and /healthz said 503.
scenario_7() {
scenario frozen 31717
if private_engine pf "frozen engine"; then
  task_def t1 '"networkMode": "none",'
  started=$(date +%s)
  start_agent
  frozen_up() { [ "$(running "$id" task)" = 1 ]; }
  if ! wait_for 30 frozen_up; then
    bad "frozen engine: t1 not up on the private engine: $(fingerprint "$id")"
  else
    sleep $(( started + 45 - $(date +%s) ))  # freeze from 45 s, across the resync at ~60 s
    kill -STOP "$(cat "$engine/dockerd.pid")"
    unhealthy=0
    for _ in $(seq 1 50); do  # to ~95 s: past the resync and its 30 s deadline
      [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$listen/healthz")" = 200 ] || unhealthy=$((unhealthy + 1))
      sleep 1
    done
    kill -CONT "$(cat "$engine/dockerd.pid")"
    [ "$unhealthy" = 0 ] || bad "frozen engine: /healthz was not 200 $unhealthy time(s) in 50 s while a listing hung"
    grep -q "periodic resync failed" "$log" || say "frozen engine: note: no resync failure logged (the listing may have outlived the window)"
    agent_alive || bad "frozen engine: the agent died"
  fi
  stop_agent
fi
result "7 frozen engine during the resync" "/healthz 200 for 50 s with the engine frozen across the 60 s resync"
"$pd" stop "$engine"; engine=
}

for n in ${FAULTS_ONLY:-1 2 3 4 5 6 7}; do "scenario_$n"; done  # FAULTS_ONLY="3 5": a subset
echo
for r in "${results[@]}"; do echo "$name: $r"; done
[ "$fail" = 0 ] && echo "$name: all checks passed"
exit $fail

# The end-to-end tests' view of the container engine under the agent, so that one script
# proves the same behaviour on Docker and on containerd. Sourced after lib.sh.
#   DAEMONLET_TEST_RUNTIME=docker|containerd   (default docker)
#   DAEMONLET_TEST_CONTAINERD=SOCKET           (default the machine's containerd)
# On containerd everything is read with `ctr` in namespace "daemonlet" (tests may use ctr;
# the agent never does). containerd keeps no event history, so a containerd test calls
# engine_events_begin before it starts the agent, and events are recorded from then on.
engine_kind=${DAEMONLET_TEST_RUNTIME:-docker}
engine_socket=${DAEMONLET_TEST_CONTAINERD:-/run/containerd/containerd.sock}
case "$engine_kind" in docker|containerd) ;; *) echo "DAEMONLET_TEST_RUNTIME=$engine_kind: docker or containerd" >&2; exit 2 ;; esac
engine_events_file=
engine_recorder=

ctr_() { ctr --address "$engine_socket" -n daemonlet "$@"; }

# The config.yaml lines that select this engine (none for Docker, the default).
engine_config() {
  [ "$engine_kind" = containerd ] && printf 'runtime: {type: containerd, endpoint: "unix://%s"}\n' "$engine_socket"
  return 0
}

# The task definition fields a definition needs on this engine: a bridge network is not
# built on containerd yet, so definitions that use no ports run with "host" there.
engine_definition_fields() {
  [ "$engine_kind" = containerd ] && printf '"networkMode": "host", '
  return 0
}

# A containerd filter from docker-style filters: label=K=V and name=REGEX, all of them.
ctr_filter() {
  local f out=
  for f in "$@"; do
    case "$f" in
      label=*=*) f=${f#label=}; out="$out${out:+,}labels.\"${f%%=*}\"==${f#*=}" ;;
      label=*) out="$out${out:+,}labels.\"${f#label=}\"" ;;
      name=*) out="$out${out:+,}id~=${f#name=}" ;;
      *) echo "engine_ids: unknown filter $f" >&2; return 2 ;;
    esac
  done
  echo "$out"
}
ctr_running_ids() { ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING" { print $1 }'; }

# engine_ids [-a] FILTER...: the ids of running (with -a: all) containers matching every
# FILTER (label=K=V, label=K, name=REGEX), one a line.
engine_ids() {
  local all=
  [ "${1:-}" = -a ] && { all=1; shift; }
  if [ "$engine_kind" = docker ]; then
    local args=() f
    for f in "$@"; do args+=(--filter "$f"); done
    docker ps ${all:+-a} -q --no-trunc "${args[@]}"
  else
    local ids filter
    filter=$(ctr_filter "$@") || return 2
    ids=$(ctr_ containers ls -q ${filter:+"$filter"} 2>/dev/null)
    if [ -n "$all" ]; then echo "$ids" | grep .
    else grep -Fxf <(ctr_running_ids) <<<"$ids"
    fi
  fi
  return 0
}
engine_count() { engine_ids "$@" | grep -c .; }

engine_running() {  # ID: succeeds iff its process runs
  if [ "$engine_kind" = docker ]; then [ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ]
  else ctr_running_ids | grep -qxF "$1"
  fi
}
engine_label() {  # ID KEY
  if [ "$engine_kind" = docker ]; then docker inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null
  else ctr_ containers info "$1" 2>/dev/null | jq -r --arg k "$2" '.Labels[$k] // ""'
  fi
}
# ID: "memory-limit memory-reservation cpu-shares" as the engine applies them.
engine_limits() {
  if [ "$engine_kind" = docker ]; then docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}} {{.HostConfig.CpuShares}}' "$1" 2>/dev/null
  else ctr_ containers info "$1" 2>/dev/null |
    jq -r '.Spec.linux.resources | "\(.memory.limit // 0) \(.memory.reservation // 0) \(.cpu.shares // 0)"'
  fi
}
engine_kill() {  # ID: SIGKILL its process, as an outside fault would
  if [ "$engine_kind" = docker ]; then docker kill "$1" >/dev/null
  else ctr_ tasks kill -s SIGKILL "$1"
  fi
}
# ID: one line that changes whenever the container is replaced, restarted or changes
# state: "id started status" (containerd: the task's pid stands in for the start time).
engine_fingerprint() {
  if [ "$engine_kind" = docker ]; then docker inspect -f '{{.Id}} {{.Name}} {{.State.StartedAt}} {{.State.Status}}' "$1" 2>/dev/null
  else
    local task
    task=$(ctr_ tasks ls 2>/dev/null | awk -v id="$1" '$1 == id { print $2, tolower($3) }')
    echo "$1 /$1 ${task:-- created}"
  fi
}
# engine_run_host IMAGE COMMAND...: run a throw-away container on the host's network, its
# output on ours (a client that is not the agent, as an application would be).
engine_run_host() {
  local image=$1; shift
  if [ "$engine_kind" = docker ]; then docker run --rm --network host "$image" "$@"
  else ctr_ run --rm --net-host "docker.io/$image" "dl-e2e-probe-$$" "$@"
  fi
}
engine_rm_all() {  # FILTER...: remove matching containers, running or not
  local id
  if [ "$engine_kind" = docker ]; then engine_ids -a "$@" | xargs -r docker rm -f >/dev/null; return 0; fi
  for id in $(engine_ids -a "$@"); do
    ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1
    for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_ tasks rm -f "$id" >/dev/null 2>&1 && break; ctr_ tasks ls -q | grep -qxF "$id" || break; sleep 0.2; done
    ctr_ containers rm "$id" >/dev/null 2>&1
  done
  return 0
}

# Events: engine_events SINCE prints "ACTION NANOS ID FAMILY REVISION KIND INSTANCE STATUS"
# for container starts (start), exits (die, STATUS = exit code) and, on containerd, exec
# exits (exec: health checks) since SINCE (unix seconds).
engine_events_begin() {  # FILE (containerd only; a no-op on Docker, which keeps history)
  [ "$engine_kind" = containerd ] || return 0
  engine_events_file=$1
  : >"$1"
  ctr_record_events >>"$1" 2>/dev/null &
  engine_recorder=$!
  sleep 0.5  # the subscription is in place before anything happens
}
ctr_record_events() {
  local day clock ns topic json cid eid nanos status action
  declare -A labels
  exec 3< <(exec ctr --address "$engine_socket" events)
  local source=$!
  trap 'kill $source 2>/dev/null; exit 0' TERM EXIT
  while read -r day clock _ _ ns topic json <&3; do
    [ "$ns" = daemonlet ] || continue
    case "$topic" in /tasks/start|/tasks/exit) ;; *) continue ;; esac
    nanos=$(date -d "$day $clock" +%s%N)
    read -r cid eid status < <(jq -r '"\(.container_id) \(.id // .container_id) \(.exit_status // 0)"' <<<"$json")
    [ -n "${labels[$cid]:-}" ] || labels[$cid]=$(ctr_ containers info "$cid" 2>/dev/null | jq -r '[.Labels["io.daemonlet.family"],
      .Labels["io.daemonlet.revision"], .Labels["io.daemonlet.kind"], .Labels["io.daemonlet.instance"]] | map(. // "-") | join(" ")')
    [ -n "${labels[$cid]}" ] || labels[$cid]="- - - -"
    if [ "$topic" = /tasks/start ]; then action=start status=-
    elif [ "$eid" = "$cid" ]; then action=die
    else action=exec
    fi
    echo "$action $nanos $cid ${labels[$cid]} $status"
  done
}
engine_events_end() {
  [ -n "$engine_recorder" ] && { kill "$engine_recorder" 2>/dev/null; wait "$engine_recorder" 2>/dev/null; }
  engine_recorder=
}
engine_events() {  # SINCE
  if [ "$engine_kind" = docker ]; then
    docker events --since "$1" --until "$(( $(date +%s) + 1 ))" --filter type=container --filter event=start --filter event=die \
      --format '{{.Action}} {{.TimeNano}} {{.Actor.ID}} {{index .Actor.Attributes "io.daemonlet.family"}} {{index .Actor.Attributes "io.daemonlet.revision"}} {{index .Actor.Attributes "io.daemonlet.kind"}} {{index .Actor.Attributes "io.daemonlet.instance"}} {{with index .Actor.Attributes "exitCode"}}{{.}}{{else}}-{{end}}'
  else
    sleep 0.3  # let the recorder catch up
    awk -v since="$1" '$2 / 1e9 >= since - 0.001' "$engine_events_file"
  fi
}

# Docker writes RFC 3339 in inspect, Go's "2006-01-02 15:04:05.9 +0000 UTC" in health logs.
docker_epoch() {
  [ -n "$1" ] || return 1
  date -d "$(echo "$1" | sed 's/ [A-Z][A-Z]*$//')" +%s.%N 2>/dev/null
}
last_event_epoch() {  # ACTION ID: unix seconds of the last such event of ID
  local n
  n=$(engine_events 0 | awk -v a="$1" -v id="$2" '$1 == a && $3 == id { t = $2 } END { print t }')
  [ -n "$n" ] && echo "$n" | awk '{ printf "%.9f\n", $1 / 1e9 }'
}
# ID: unix seconds (fractional) when its process last started / exited.
engine_started() {
  if [ "$engine_kind" = docker ]; then docker_epoch "$(docker inspect -f '{{.State.StartedAt}}' "$1" 2>/dev/null)"
  else last_event_epoch start "$1"
  fi
}
engine_finished() {
  if [ "$engine_kind" = docker ]; then docker_epoch "$(docker inspect -f '{{.State.FinishedAt}}' "$1" 2>/dev/null)"
  else last_event_epoch die "$1"
  fi
}
# ID: unix seconds when its health check first passed (empty if it never did).
engine_first_healthy() {
  if [ "$engine_kind" = docker ]; then
    docker_epoch "$(docker inspect -f '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}{{"\n"}}{{end}}{{end}}' "$1" 2>/dev/null | head -1)"
  else
    engine_events 0 | awk -v id="$1" '$1 == "exec" && $3 == id && $8 == 0 { printf "%.9f\n", $2 / 1e9; exit }'
  fi
}

#!/usr/bin/env bash
# Prints, on the machine's dockerd:
#  1. agent start -> slot gate open for 3 daemons, vs. creating and starting the same 3
#     containers directly through the Engine API, 3 in parallel (the raw figure) and one
#     after another; median of 7 runs of each, interleaved;
#  2. the largest gap in a daemon's heartbeat during a rolling update (the daemon appends
#     the kernel's uptime to a host file every 100 ms; old and new revision share it), vs.
#     the naive way without daemonlet: docker stop the old container, then docker run the new.
# The last lines ("figure: ...") are what tests/bench/report plots.
# Usage: agent_bench.sh path/to/daemonlet
set -u
bin=$1
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; docker ps -aq --filter label=io.daemonlet.instance=bench | xargs -r docker rm -f >/dev/null; docker ps -aq --filter name=dlbench- | xargs -r docker rm -f >/dev/null; rm -rf "$work"' EXIT
api() { curl -sf --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' "$@"; }
now() { date +%s.%N; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

cat >"$work/config.yaml" <<YAML
instance: {id: bench}
stateDir: $work/state
YAML
daemon() {
  cat >"$work/defs/daemons/$1.json" <<JSON
{"family": "$1", "revision": ${2:-1}, "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "stopTimeout": 2,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do ${3:-sleep 1} & wait; done"]${4:-}}]}
JSON
}

echo "1. slot gate open for 3 daemons (7 runs each, alternating, seconds)"
agent_times=() direct_times=() sequential_times=()
measure_agent() {
  rm -rf "$work/defs"; mkdir -p "$work/defs/daemons" "$work/defs/tasks"
  for d in a b c; do daemon "$d"; done
  local t0 t1
  t0=$(now)
  "$bin" run --config "$work/config.yaml" --source "$work/defs" --log-format json >"$work/agent.log" 2>&1 &
  pid=$!
  # Poll gently (a tight loop of forks competes with dockerd for the CPUs) and take the
  # moment from the agent's own log line.
  until grep -q '"msg":"slot gate open' "$work/agent.log"; do sleep 0.2; done
  t1=$(date -d "$(grep '"msg":"slot gate open' "$work/agent.log" | sed 's/.*"time":"\([^"]*\)".*/\1/')" +%s.%N)
  kill "$pid"; wait "$pid"; pid=
  agent_times+=("$(echo "$t1 - $t0" | bc)")
  docker ps -aq --filter label=io.daemonlet.instance=bench | xargs -r docker rm -f >/dev/null
}
measure_direct() {
  local t0 t1
  t0=$(now)
  for d in a b c; do
    ( id=$(api -X POST "http://x/v1.41/containers/create?name=dlbench-direct-$d" \
          -d "{\"Image\":\"$image\",\"Cmd\":[\"sleep\",\"100\"],\"HostConfig\":{\"Memory\":33554432}}" | sed 's/.*"Id":"\([0-9a-f]*\)".*/\1/')
      api -X POST "http://x/v1.41/containers/$id/start" ) &
  done
  wait
  t1=$(now)
  direct_times+=("$(echo "$t1 - $t0" | bc)")
  docker rm -f dlbench-direct-a dlbench-direct-b dlbench-direct-c >/dev/null
}
measure_sequential() {
  local t0 t1 d id
  t0=$(now)
  for d in a b c; do
    id=$(api -X POST "http://x/v1.41/containers/create?name=dlbench-seq-$d" \
        -d "{\"Image\":\"$image\",\"Cmd\":[\"sleep\",\"100\"],\"HostConfig\":{\"Memory\":33554432}}" | sed 's/.*"Id":"\([0-9a-f]*\)".*/\1/')
    api -X POST "http://x/v1.41/containers/$id/start"
  done
  t1=$(now)
  sequential_times+=("$(echo "$t1 - $t0" | bc)")
  docker rm -f dlbench-seq-a dlbench-seq-b dlbench-seq-c >/dev/null
}
# Rotating order, with a pause: container removal leaves dockerd busy for a moment.
for run in 1 2 3 4 5 6 7; do
  case $((run % 3)) in
    1) measure_agent; sleep 2; measure_direct; sleep 2; measure_sequential ;;
    2) measure_direct; sleep 2; measure_sequential; sleep 2; measure_agent ;;
    0) measure_sequential; sleep 2; measure_agent; sleep 2; measure_direct ;;
  esac
  sleep 2
done
a=$(printf '%s\n' "${agent_times[@]}" | median)
d=$(printf '%s\n' "${direct_times[@]}" | median)
q=$(printf '%s\n' "${sequential_times[@]}" | median)
printf '   daemonlet run, process start to gate open: median %.3f s (runs: %s)\n' "$a" "${agent_times[*]}"
printf '   the same 3 create+start over the Engine API, in parallel: median %.3f s (runs: %s)\n' "$d" "${direct_times[*]}"
printf '   the same 3 create+start over the Engine API, one after another: median %.3f s (runs: %s)\n' "$q" "${sequential_times[*]}"
printf '   ratio to the parallel calls %.2fx (target <= 1.05x)\n' "$(echo "$a / $d" | bc -l)"

echo "2. heartbeat gap during a rolling update"
rm -rf "$work/defs"; mkdir -p "$work/defs/daemons" "$work/defs/tasks" "$work/hb"
beat='cut -d\" \" -f1 /proc/uptime >> /hb/beats; sleep 0.1'
mount=', "mountPoints": [{"sourceVolume": "hb", "containerPath": "/hb"}]'
daemon_hb() {
  daemon hb "$1" "$beat" "$mount"
  sed -i "s|\"containerDefinitions\"|\"volumes\": [{\"name\": \"hb\", \"host\": {\"sourcePath\": \"$work/hb\"}}], \"containerDefinitions\"|" "$work/defs/daemons/hb.json"
}
daemon_hb 1
"$bin" run --config "$work/config.yaml" --source "$work/defs" >"$work/agent.log" 2>&1 &
pid=$!
until grep -q 'slot gate open' "$work/agent.log"; do sleep 0.05; done
sleep 2
daemon_hb 2
until grep -q 'daemon hb: daemonlet-daemon-hb-1-.* stopped' "$work/agent.log"; do sleep 0.05; done
sleep 2
kill "$pid"; wait "$pid"; pid=
largest_gap() { sort -n "$1" | awk 'NR > 1 { g = $1 - p; if (g > max) max = g } { p = $1 } END { printf "%.0f", max * 1000 }'; }
gap=$(largest_gap "$work/hb/beats")
overlap=$(grep -c 'rolling out r2 beside r1' "$work/agent.log")
echo "   daemonlet: $(wc -l <"$work/hb/beats") heartbeats; largest gap ${gap} ms (heartbeat period 100 ms, uptime resolution 10 ms); 'rolling out r2 beside r1' logged: $overlap"
# The naive rollout: what a systemd unit's ExecStart=docker run does on a restart.
mkdir -p "$work/naive"
naive_run() {
  docker run -d --name "dlbench-naive-$1" -m 32m -v "$work/naive:/hb" "$image" \
    sh -c "trap 'exit 0' TERM; while true; do cut -d' ' -f1 /proc/uptime >> /hb/beats; sleep 0.1 & wait; done" >/dev/null
}
naive_run 1
sleep 2
docker stop -t 2 dlbench-naive-1 >/dev/null && naive_run 2
sleep 2
docker rm -f dlbench-naive-1 dlbench-naive-2 >/dev/null
naive=$(largest_gap "$work/naive/beats")
echo "   naive docker stop + docker run: $(wc -l <"$work/naive/beats") heartbeats; largest gap ${naive} ms"
echo "figure: gate_open_s agent=$a parallel=$d sequential=$q"
echo "figure: heartbeat_gap_ms daemonlet=$gap naive=$naive"

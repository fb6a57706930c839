#!/usr/bin/env bash
# Memory and idle CPU of the agent (issue 15): 1 daemon + N tasks on the machine's dockerd,
# read from the outside (/proc/PID/status, smaps_rollup, stat) once everything runs and has
# settled.
#   rss_bench.sh DAEMONLET [SOURCE=dir|http] [TASKS="20"] [MAPPINGS=0] [IDLE_SECONDS=0]
# SOURCE dir reads a definition directory; http polls the test control server
# (tests/control/control_server.py). TASKS is a list: the agent is measured after each
# step ("0 100 1000" grows one agent's task set, so every step is the same process).
# One line per step:  rss: source=dir tasks=20 rss_kib=... anon_kib=... file_kib=... pss_kib=...
# With IDLE_SECONDS, each step then watches the agent's CPU for that long, nothing changing:
#   idle: source=dir tasks=20 seconds=120 ticks=3 hz=100 core_percent=0.0250
# MAPPINGS=1 also prints the resident KiB of each mapped file (where RSS goes).
set -u
bin=$1 source=${2:-dir} steps=${3:-20} mappings=${4:-0} idle=${5:-0}
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dl-rss-XXXXXX)
id=rss-bench-$$
agent= server=
cleanup() {
  [ -n "$agent" ] && { kill -9 "$agent"; wait "$agent"; } 2>/dev/null
  [ -n "$server" ] && { kill -9 "$server"; wait "$server"; } 2>/dev/null
  docker ps -aq --filter "label=io.daemonlet.instance=$id" | xargs -r -n 50 docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
sleeper='"command": ["sh", "-c", "trap '"'"'exit 0'"'"' TERM; while true; do sleep 3600 & wait; done"]'
definition() { echo "{\"family\": \"$1\", \"containerDefinitions\": [{\"name\": \"main\", \"image\": \"$image\", \"memory\": $2, $sleeper}]}"; }
mkdir -p "$work/defs/daemons" "$work/defs/tasks"
definition mon 16 >"$work/defs/daemons/mon.json"
definition app 6 >"$work/app.json"

if [ "$source" = http ]; then
  python3 "$here/../control/control_server.py" --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 50); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/ready.json")
  admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adminPort"])' "$work/ready.json")
  source_config="source: {type: http, url: \"http://127.0.0.1:$port\"}"
else
  source_config="source: {type: directory, path: $work/defs}"
fi
printf 'instance: {id: %s}\n%s\nlisten: 127.0.0.1:0\napiSocket: %s/api.sock\nstateDir: %s/state\n' \
  "$id" "$source_config" "$work" "$work" >"$work/config.yaml"

publish() {  # $1 = number of tasks
  if [ "$source" = http ]; then
    local args=(--daemon "$work/defs/daemons/mon.json")
    for i in $(seq 1 "$1"); do args+=(--task "t$i=$work/app.json"); done
    python3 "$here/../control/controlctl.py" "$admin" desired "$((1 + $1))" "${args[@]}" >/dev/null
  else
    for i in $(seq 1 "$1"); do [ -e "$work/defs/tasks/t$i.json" ] || cp "$work/app.json" "$work/defs/tasks/t$i.json"; done
  fi
}
running() { [ "$(docker ps -q --filter "label=io.daemonlet.instance=$id" | wc -l)" -ge $((1 + $1)) ]; }

first=1
for tasks in $steps; do
  publish "$tasks"
  if [ $first = 1 ]; then
    "$bin" run --config "$work/config.yaml" >"$work/agent.log" 2>&1 &
    agent=$!
    first=0
  fi
  # A thousand containers take minutes to start on a busy engine.
  for _ in $(seq 1 $((600 + tasks * 3))); do running "$tasks" && break; sleep 0.2; done
  running "$tasks" || { echo "rss bench: $tasks tasks did not all start"; tail -20 "$work/agent.log"; exit 1; }
  sleep 10  # settle: the start-up burst's buffers are freed or reused
  status=/proc/$agent/status
  printf 'rss: source=%s tasks=%s rss_kib=%s anon_kib=%s file_kib=%s pss_kib=%s\n' "$source" "$tasks" \
    "$(awk '/^VmRSS/ { print $2 }' $status)" "$(awk '/^RssAnon/ { print $2 }' $status)" \
    "$(awk '/^RssFile/ { print $2 }' $status)" "$(awk '/^Pss:/ { print $2 }' /proc/$agent/smaps_rollup)"
  if [ "$idle" -gt 0 ]; then
    ticks() { awk '{ print $14 + $15 }' "/proc/$agent/stat"; }
    hz=$(getconf CLK_TCK) before=$(ticks)
    sleep "$idle"
    used=$(( $(ticks) - before ))
    printf 'idle: source=%s tasks=%s seconds=%s ticks=%s hz=%s core_percent=%s\n' "$source" "$tasks" "$idle" "$used" "$hz" \
      "$(echo "scale=4; 100 * $used / $hz / $idle" | bc)"
  fi
done
if [ "$mappings" = 1 ]; then
  echo "resident KiB (of it anonymous) per mapping:"
  awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
       /^Rss:/ { rss[name] += $2 } /^Anonymous:/ { anon[name] += $2 }
       END { for (n in rss) if (rss[n] > 0) printf "%7d %7d %s\n", rss[n], anon[n], n }' "/proc/$agent/smaps" | sort -rn
fi

#!/usr/bin/env bash
# Requests and bytes one idle agent sends to its control endpoint, extrapolated to an
# hour (DESIGN 3.5 budget: at most 200 requests and 100 KB an hour). The agent runs on
# the machine's dockerd with 2 daemons and 2 tasks, like a real host; after it settles,
# the test server's counters are reset and it is measured for SECONDS (default 600).
#   tests/bench/control_idle_bench.sh build/agent/daemonlet [SECONDS]
set -u
bin=$1
seconds=${2:-600}
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dl-idle-bench-XXXXXX)
agent=; server=
cleanup() {
  [ -n "$agent" ] && { kill -9 "$agent"; wait "$agent"; } 2>/dev/null
  [ -n "$server" ] && { kill -9 "$server"; wait "$server"; } 2>/dev/null
  docker ps -aq --filter label=io.daemonlet.instance=idle-bench | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
python3 "$here/../control/control_server.py" --ready-file "$work/ready.json" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/ready.json")
admin=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["adminPort"])' "$work/ready.json")
ctl() { python3 "$here/../control/controlctl.py" "$admin" "$@"; }
for f in node-monitor log-shipper web worker; do
  cat >"$work/$f.json" <<JSON
{"family": "$f", "revision": 1, "containerDefinitions": [{"name": "main", "image": "$image", "memory": 32, "cpu": 64,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
done
ctl desired 1 --daemon "$work/node-monitor.json" --daemon "$work/log-shipper.json" \
  --task idle-web-1="$work/web.json" --task idle-worker-1="$work/worker.json" >/dev/null
printf 'instance: {id: idle-bench, attributes: {zone: eu-west-1a, rack: r12}}\nsource: {type: http, url: "http://127.0.0.1:%s"}\nlisten: 127.0.0.1:51694\nstateDir: %s/state\n' \
  "$port" "$work" >"$work/config.yaml"
"$bin" run --config "$work/config.yaml" >"$work/agent.log" 2>&1 &
agent=$!
sleep 15  # boots, starts 4 containers, reports
[ "$(ctl get 's["status"]["default/idle-bench"]["phase"]')" = ACTIVE ] || { echo "agent did not settle"; tail "$work/agent.log"; exit 1; }
ctl reset-counters
echo "control_idle_bench: measuring one idle agent for $seconds s ..."
sleep "$seconds"
requests=$(ctl get 'sum(s["requests"].values())')
bytes=$(ctl get 's["bytesReceived"]')
polls=$(ctl get 's["requests"]["desired"]')
reports=$(ctl get 's["requests"]["status"]')
report_size=$(ctl get 'len(__import__("json").dumps(s["status"]["default/idle-bench"], separators=(",", ":")))')
echo "over $seconds s: $requests requests ($polls long polls, $reports status reports), $bytes bytes sent (status body $report_size bytes)"
echo "per hour: $(( requests * 3600 / seconds )) requests, $(( bytes * 3600 / seconds / 1000 )) KB (budget: 200 requests, 100 KB)"

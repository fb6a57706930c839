#!/usr/bin/env bash
# `systemctl stop daemonlet` while the engine is down: SIGTERM ends the agent with exit 0
# (a stop the user asked for, nothing failed), not 1 ("runtime not reachable"), which would
# mark the unit failed. No engine needed: the endpoint is a socket nobody listens on.
set -u
bin=$1
work=$(mktemp -d)
trap 'kill -9 $pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/defs/daemons" "$work/defs/tasks" "$work/state"
cat >"$work/config.yaml" <<CONF
instance: {id: stop-without-engine, capacity: {cpu: 1024, memory: 1024}, reserved: {cpu: 0, memory: 0}}
listen: 127.0.0.1:0
apiSocket: $work/api.sock
stateDir: $work/state
runtime: {endpoint: 'unix://$work/no-engine.sock'}
source: {type: directory, path: $work/defs}
CONF
"$bin" run --config "$work/config.yaml" >"$work/log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q 'runtime: connect' "$work/log" && break; sleep 0.1; done
grep -q 'runtime: connect' "$work/log" || { echo "FAIL: the agent never tried the engine:"; cat "$work/log"; exit 1; }
kill -TERM $pid
for _ in $(seq 1 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $pid 2>/dev/null; then echo "FAIL: still running 5 s after SIGTERM:"; cat "$work/log"; exit 1; fi
wait $pid; rc=$?
if [ "$rc" != 0 ]; then echo "FAIL: SIGTERM while the engine is unreachable: exit $rc, want 0:"; cat "$work/log"; exit 1; fi
grep -q 'error' "$work/log" && { echo "FAIL: a requested stop logged an error:"; cat "$work/log"; exit 1; }
echo "ok: SIGTERM while the engine is unreachable exits 0"

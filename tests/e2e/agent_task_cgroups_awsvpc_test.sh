#!/usr/bin/env bash
# Issue 11, parts 2 and 3, on the machine's dockerd:
#   one cgroup per task (P3): a 3-container task with task memory 96 MiB has one parent
#   cgroup whose files hold the limits; together its containers never exceed it, and a
#   memory hog in one of them is OOM-killed at the task limit and reported; the parent goes
#   with the task's last container.
#   awsvpc: two busybox containers of one task talk over 127.0.0.1; the task's address is
#   in /v1/tasks; its hostPort is published; a second task asking for the same host port,
#   and one whose port a process outside daemonlet holds, are STOPPED with RESOURCE:PORTS;
#   an agent killed and restarted adopts all of it without touching a container (P5).
#   P3 fails closed: an agent whose cgroup tree is read-only creates no container for a new
#   task, reports it STOPPED with ResourceInitializationError naming the cgroup and errno,
#   and leaves the running task as it is.
# DOCKER_HOST=unix:///... runs it on another engine (a private dockerd) instead.
set -u
bin=$1
image=daemonlet/busybox:local
instance=e2e-net
work=$(mktemp -d /tmp/dl-e2e-net-XXXXXX)
defs=$work/defs
log=$work/agent.log
listen=127.0.0.1:51694
port=18480      # the awsvpc task's hostPort
foreign=18481   # held by a process outside daemonlet
cg=/sys/fs/cgroup
fail=0
name=e2e-net
. "$(dirname "$0")/lib.sh"
agent=
holder_pid=
network_existed=$(docker network inspect daemonlet0 >/dev/null 2>&1 && echo yes)

cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  [ -n "$holder_pid" ] && kill "$holder_pid" 2>/dev/null
  docker ps -aq --filter label=io.daemonlet.instance=$instance | xargs -r docker rm -f >/dev/null
  [ -z "$network_existed" ] && docker network rm daemonlet0 >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$defs/daemons" "$defs/tasks"
cat >"$work/config.yaml" <<YAML
instance:
  id: $instance
  capacity: {cpu: 4096, memory: 2048}
  reserved: {cpu: 0, memory: 0}
source:
  pollSeconds: 2
runtime:
  endpoint: ${DOCKER_HOST:-unix:///var/run/docker.sock}
listen: $listen
apiSocket: $work/api.sock
stateDir: $work/state
taskNetwork:
  name: daemonlet0
  subnet: 172.30.0.0/20
YAML
# 32 MiB held by app, a sidecar idling, and a hog that doubles a string until it is killed.
# Each alone fits in 96 MiB; together they do not.
cat >"$defs/tasks/limits.json" <<JSON
{"family": "limits", "memory": "96", "cpu": "512", "restart": "never", "containerDefinitions": [
  {"name": "app", "image": "$image", "stopTimeout": 2,
   "command": ["awk", "BEGIN { s = \"x\"; for (i = 0; i < 25; i++) s = s s; while (1) system(\"sleep 1\") }"]},
  {"name": "side", "image": "$image", "essential": false, "stopTimeout": 2, "command": ["sleep", "1000"]},
  {"name": "hog", "image": "$image", "stopTimeout": 2,
   "command": ["awk", "BEGIN { system(\"sleep 4\"); s = \"x\"; while (1) s = s s }"]}]}
JSON
pair_def() {
  cat >"$defs/tasks/$1.json" <<JSON
{"family": "pair", "networkMode": "awsvpc", "memory": "64", "containerDefinitions": [
  {"name": "web", "image": "$image", "stopTimeout": 2, "portMappings": [{"containerPort": $2, "hostPort": $2}],
   "command": ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p $2 -h /www"]},
  {"name": "client", "image": "$image", "stopTimeout": 2, "dependsOn": [{"containerName": "web", "condition": "START"}],
   "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do wget -q -O /tmp/got http://127.0.0.1:$2/ && cp /tmp/got /tmp/ok; sleep 1 & wait; done"]}]}
JSON
}
pair_def pair "$port"

task_json() { curl -sf "http://$listen/v1/tasks/$1"; }
task_field() { task_json "$1" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('$2') if d.get('$2') is not None else '')" 2>/dev/null; }
container_of() { docker ps -aq --filter label=io.daemonlet.instance=$instance --filter "label=io.daemonlet.task-id=$1" --filter "label=io.daemonlet.container=$2"; }

say "starting the agent"
"$bin" run --config "$work/config.yaml" --source "$defs" >"$log" 2>&1 &
agent=$!

# --- one cgroup per task ------------------------------------------------------------------
limits_running() { [ "$(docker ps -q --filter label=io.daemonlet.instance=$instance --filter label=io.daemonlet.task-id=limits | wc -l)" = 3 ]; }
wait_for 60 limits_running || { bad "the limits task's 3 containers did not run within 60 s"; cat "$log"; exit 1; }
app=$(container_of limits app); hog=$(container_of limits hog); side=$(container_of limits side)
parent=$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$app")
case "$parent" in /daemonlet/task-limits-????????????) say "parent cgroup $parent" ;; *) bad "app's cgroup parent is '$parent'" ;; esac
for c in "$hog" "$side"; do
  [ "$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$c")" = "$parent" ] || bad "container $c is not in $parent"
done
[ "$(cat $cg/memory$parent/memory.limit_in_bytes)" = 100663296 ] || bad "memory.limit_in_bytes of $parent: $(cat $cg/memory$parent/memory.limit_in_bytes)"
[ "$(cat $cg/cpu$parent/cpu.cfs_quota_us) $(cat $cg/cpu$parent/cpu.cfs_period_us)" = "50000 100000" ] \
  || bad "cpu quota of $parent: $(cat $cg/cpu$parent/cpu.cfs_quota_us) per $(cat $cg/cpu$parent/cpu.cfs_period_us)"
[ "$(cat $cg/cpu$parent/cpu.shares)" = 512 ] || bad "cpu.shares of $parent: $(cat $cg/cpu$parent/cpu.shares)"
full_id=$(docker inspect -f '{{.Id}}' "$hog")
[ -f "$cg/memory$parent/$full_id/memory.limit_in_bytes" ] || bad "the hog's own cgroup is not under $parent"
# No per-container cap from the task-level numbers any more.
[ "$(docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' "$hog")" = "0 0" ] \
  || bad "hog has per-container limits: $(docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' "$hog")"
say "limits: memory.limit_in_bytes 100663296, cfs_quota 50000/100000, shares 512 on $parent; none on the containers"

limits_stopped() { [ "$(task_field limits status)" = STOPPED ]; }
wait_for 60 limits_stopped || { bad "the limits task did not stop within 60 s: $(task_json limits)"; }
reason=$(task_field limits stoppedReason)
case "$reason" in *"hog exited with code 137 (OOM-killed)"*) say "reported: $reason" ;; *) bad "stoppedReason: '$reason'" ;; esac
[ "$(docker inspect -f '{{.State.OOMKilled}} {{.State.ExitCode}}' "$hog")" = "true 137" ] \
  || bad "hog: $(docker inspect -f 'OOMKilled {{.State.OOMKilled}}, exit {{.State.ExitCode}}' "$hog")"
peak=$(cat $cg/memory$parent/memory.max_usage_in_bytes)
# Together they reached the task's limit and no further (the kernel counts the OOM kill on
# the hog's own cgroup, gone with it).
[ "$peak" -le 100663296 ] || bad "the task together used $peak bytes, over its 96 MiB"
[ "$peak" -ge $(( 100663296 - 1048576 )) ] || bad "the task's peak $peak is not at its limit: what killed the hog?"
say "together at most $peak bytes of 100663296 (the limit): the hog was OOM-killed there"

rm "$defs/tasks/limits.json"
limits_gone() { [ -z "$(docker ps -aq --filter label=io.daemonlet.instance=$instance --filter label=io.daemonlet.task-id=limits)" ]; }
parent_gone() { ! ls -d $cg/*$parent >/dev/null 2>&1; }
wait_for 30 limits_gone || bad "the limits task's containers were not removed"
wait_for 10 parent_gone || bad "the parent cgroup outlived its task: $(ls -d $cg/*$parent 2>/dev/null | tr '\n' ' ')"
parent_gone && say "the parent cgroup went with the task's last container (every hierarchy)"

# --- awsvpc ---------------------------------------------------------------------------------
pair_talks() { [ "$(docker exec "$(container_of pair client)" cat /tmp/ok 2>/dev/null)" = hello-from-web ]; }
wait_for 60 pair_talks || { bad "the client never reached web on 127.0.0.1:$port"; cat "$log"; }
pair_talks && say "awsvpc: client reached web on 127.0.0.1:$port inside the task"
holder=$(container_of pair awsvpc.pause)
address=$(task_field pair address)
holder_ip=$(docker inspect -f '{{(index .NetworkSettings.Networks "daemonlet0").IPAddress}}' "$holder")
[ -n "$address" ] && [ "$address" = "$holder_ip" ] || bad "/v1/tasks/pair address '$address', network holder has '$holder_ip'"
case "$address" in 172.30.*) say "address $address on daemonlet0 ($(docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' daemonlet0))" ;; *) bad "address '$address' not in 172.30.0.0/20" ;; esac
for c in web client; do
  mode=$(docker inspect -f '{{.HostConfig.NetworkMode}}' "$(container_of pair $c)")
  [ "$mode" = "container:$(docker inspect -f '{{.Name}}' "$holder" | tr -d /)" ] || [ "$mode" = "container:$(docker inspect -f '{{.Id}}' "$holder")" ] \
    || bad "$c network mode $mode"
done
[ "$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$holder")" = "$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$(container_of pair web)")" ] \
  || bad "the network holder is not in the task's cgroup"
[ "$(curl -sf "http://127.0.0.1:$port/")" = hello-from-web ] || bad "hostPort $port not published"
say "hostPort $port published: $(curl -sf "http://127.0.0.1:$port/")"

# The same host port again: refused at admission.
pair_def pair-again "$port"
again_refused() { [ "$(task_field pair-again stoppedReason)" = RESOURCE:PORTS ]; }
wait_for 20 again_refused || bad "second task on hostPort $port: $(task_json pair-again)"
[ -z "$(container_of pair-again web)$(container_of pair-again awsvpc.pause)" ] || bad "pair-again got containers"
say "a second task on hostPort $port: STOPPED, RESOURCE:PORTS, no container"

# A port held outside daemonlet: the engine refuses it, and that reads the same.
/usr/bin/python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', $foreign)); s.listen(); time.sleep(300)" &
holder_pid=$!
sleep 0.5
pair_def pair-foreign "$foreign"
foreign_refused() { [ "$(task_field pair-foreign stoppedReason)" = RESOURCE:PORTS ]; }
wait_for 30 foreign_refused || bad "task on a port held outside daemonlet: $(task_json pair-foreign)"
say "a task on port $foreign held by another process: STOPPED, RESOURCE:PORTS ($(grep -o 'RESOURCE:PORTS: [^"]*' "$log" | head -1 | cut -c1-120))"
rm "$defs/tasks/pair-again.json" "$defs/tasks/pair-foreign.json"
others_gone() { [ -z "$(container_of pair-foreign awsvpc.pause)$(container_of pair-again awsvpc.pause)" ]; }
wait_for 30 others_gone || bad "pair-foreign's containers were not removed"

# --- P5: an agent killed and restarted adopts it all, touching nothing ---------------------
before=$(docker ps -q --no-trunc --filter label=io.daemonlet.instance=$instance | sort | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}')
pair_parent=$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$holder")
limit_before=$(cat $cg/memory$pair_parent/memory.limit_in_bytes)
kill -9 "$agent"; wait "$agent" 2>/dev/null
"$bin" run --config "$work/config.yaml" --source "$defs" >>"$log" 2>&1 &
agent=$!
pair_running() { [ "$(task_field pair status)" = RUNNING ]; }
wait_for 30 pair_running || bad "pair not RUNNING after the agent restart: $(task_json pair)"
sleep 3
after=$(docker ps -q --no-trunc --filter label=io.daemonlet.instance=$instance | sort | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}')
[ "$before" = "$after" ] || bad "containers changed across the agent restart: before '$before' after '$after'"
[ "$(cat $cg/memory$pair_parent/memory.limit_in_bytes)" = "$limit_before" ] || bad "the parent's limit changed"
pair_talks || bad "the pair stopped talking after the agent restart"
[ "$before" = "$after" ] && say "agent kill -9 and restart: $(echo "$before" | wc -l) containers adopted, none restarted; address $(task_field pair address)"

# --- P3 fails closed: a read-only cgroup tree starts nothing, and touches nothing ---------
# The agent runs in a private mount namespace in which the daemonlet subtree of the memory
# hierarchy is bind-mounted read-only (dockerd, outside it, is not affected).
kill -9 "$agent"; wait "$agent" 2>/dev/null
ro=$cg/memory/daemonlet
mkdir -p "$ro"
cat >"$defs/tasks/closed.json" <<JSON
{"family": "closed", "memory": "32", "containerDefinitions": [{"name": "app", "image": "$image", "command": ["sleep", "1000"]}]}
JSON
unshare -m --propagation private sh -c "mount --bind $ro $ro && mount -o remount,bind,ro $ro && exec \"\$0\" run --config \"\$1\" --source \"\$2\"" \
  "$bin" "$work/config.yaml" "$defs" >>"$log" 2>&1 &
agent=$!
closed_stopped() { [ "$(task_field closed status)" = STOPPED ] && [ -n "$(task_field closed stoppedReason)" ]; }
wait_for 30 closed_stopped || bad "the task with a read-only cgroup tree is not STOPPED: $(task_json closed)"
reason=$(task_field closed stoppedReason)
case "$reason" in
  "ResourceInitializationError: task cgroup /daemonlet/task-closed-"*": "*"Read-only file system") say "read-only cgroupfs: STOPPED, $reason" ;;
  *) bad "stoppedReason with a read-only cgroup tree: '$reason'" ;;
esac
sleep 3  # a retry after the 1 s backoff must not create it either
[ -z "$(docker ps -aq --filter label=io.daemonlet.instance=$instance --filter label=io.daemonlet.task-id=closed)" ] \
  || bad "the task without a cgroup got a container: $(docker ps -a --filter label=io.daemonlet.task-id=closed --format '{{.Names}} {{.HostConfig.CgroupParent}}')"
grep -q ' error task closed: .*ResourceInitializationError' "$log" || bad "no error logged for the task cgroup: $(grep ResourceInit "$log" | head -2)"
after_ro=$(docker ps -q --no-trunc --filter label=io.daemonlet.instance=$instance | sort | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}')
[ "$before" = "$after_ro" ] || bad "running containers changed while the cgroup tree was read-only: before '$before' after '$after_ro'"
[ "$(task_field pair status)" = RUNNING ] || bad "pair not RUNNING beside the refused task: $(task_json pair)"
say "the running pair kept its $(echo "$after_ro" | wc -l) containers untouched"
rm "$defs/tasks/closed.json"
kill -9 "$agent"; wait "$agent" 2>/dev/null
"$bin" run --config "$work/config.yaml" --source "$defs" >>"$log" 2>&1 &
agent=$!
wait_for 30 pair_running || bad "pair not RUNNING after the agent came back on a writable tree"

t_removed=$(date +%s)
rm "$defs/tasks/pair.json"
pair_gone() { [ -z "$(docker ps -aq --filter label=io.daemonlet.instance=$instance)" ]; }
wait_for 50 pair_gone || bad "the pair's containers were not removed"
# As on ECS, the namespace holder dies last: the apps keep their network while they stop.
# --until counts whole seconds: a bound in the future (docker events waits for it) takes in
# the deaths of the second the last container was removed in.
deaths=$(docker events --since "$t_removed" --until "$(($(date +%s) + 2))" --filter label=io.daemonlet.instance=$instance --filter event=die \
  --format '{{.TimeNano}} {{index .Actor.Attributes "io.daemonlet.container"}}' | sort -n | awk '{print $2}' | tr '\n' ' ')
case "$deaths" in
  *" awsvpc.pause ") say "stop order: $deaths(the holder last)" ;;
  *) bad "the network holder did not die last: $deaths" ;;
esac
pair_parent_gone() { ! ls -d $cg/*$pair_parent >/dev/null 2>&1; }
wait_for 10 pair_parent_gone || bad "the pair's parent cgroup outlived it"

# --- leftovers ------------------------------------------------------------------------------
# Containers removed while no agent ran (kill -9, then docker rm) leave their parent behind,
# in every hierarchy. The next agent removes it once it has been empty for 10 minutes; one
# made a moment ago (another agent's, just before its first create) stays.
leftover=/daemonlet/task-leftover-000000000000 fresh=/daemonlet/task-fresh-000000000000
hierarchies=$(for d in $cg/*/; do mountpoint -q "$d" && [ "$(stat -f -c %T "$d")" != tmpfs ] && echo "${d%/}"; done)
for h in $hierarchies; do
  mkdir -p "$h$leftover" "$h$fresh" && touch -d '-20 min' "$h$leftover"
done
kill -9 "$agent"; wait "$agent" 2>/dev/null
"$bin" run --config "$work/config.yaml" --source "$defs" >>"$log" 2>&1 &
agent=$!
leftover_gone() { ! ls -d $cg/*$leftover >/dev/null 2>&1; }
if wait_for 20 leftover_gone; then
  say "leftover parent swept from $(echo $hierarchies | wc -w) hierarchies: $(grep -o 'removed [0-9]* leftover parent cgroup.*' "$log" | tail -1)"
else
  bad "the leftover parent is still there: $(ls -d $cg/*$leftover 2>/dev/null | tr '\n' ' ')"
fi
[ "$(ls -d $cg/*$fresh 2>/dev/null | wc -l)" = "$(echo $hierarchies | wc -w)" ] || bad "a parent made a moment ago was swept too"
for h in $hierarchies; do rmdir "$h$fresh" 2>/dev/null; done

if [ "$fail" = 0 ]; then say "PASS"; else echo "--- agent log"; tail -60 "$log"; fi
exit "$fail"

#!/usr/bin/env bash
# daemonlet run on the machine's dockerd (issue 11, parts 4-6):
#   secrets from secrets.directory reach the container's environment (checked inside it),
#   and the canary value appears nowhere else the agent writes: its log, the API, the
#   status command, state.json, container and volume labels, error messages;
#   a missing secret stops its task before start with ECS's reason;
#   task-scoped Docker volumes (with driver options) are created with the task and removed
#   with it, a shared one is kept;
#   log drivers: one mapped by logDrivers runs, awslogs without AWS credentials is a task
#   error naming the driver.
set -u
bin=$1
image=daemonlet/busybox:local
work=$(mktemp -d /tmp/dl-e2e-data-XXXXXX)
defs=$work/defs
log=$work/agent.log
port=51687
instance=e2e-data
shared=e2e-data-shared-$$
canary=canary-$$-Zr8uQ1
canary2=canary-$$-json-Wm4k
fail=0
name=e2e-data
. "$(dirname "$0")/lib.sh"
agent=

cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  docker ps -aq --filter label=io.daemonlet.instance=$instance | xargs -r docker rm -f >/dev/null
  docker volume ls -q --filter label=io.daemonlet.instance=$instance | xargs -r docker volume rm >/dev/null
  docker volume rm "$shared" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
api() { curl -sf "http://127.0.0.1:$port$1"; }

mkdir -p "$defs/daemons" "$defs/tasks" "$work/secrets"
chmod 700 "$work/secrets"
echo "$canary" >"$work/secrets/db_password"
printf '{"username": "app", "password": "%s"}' "$canary2" >"$work/secrets/db-AbCdEf"
cat >"$work/config.yaml" <<YAML
instance:
  id: $instance
  capacity: {cpu: 4096, memory: 1024}
  reserved: {cpu: 0, memory: 0}
source:
  pollSeconds: 2
stateDir: $work/state
listen: 127.0.0.1:$port
apiSocket: $work/api.sock
secrets:
  directory: $work/secrets
logDrivers: {awsfirelens: json-file}
log: {level: debug}
YAML
cat >"$defs/tasks/web-1.json" <<JSON
{"family": "web", "volumes": [
   {"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local",
     "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=8m"}, "labels": {"team": "data"}}},
   {"name": "empty"},
   {"name": "$shared", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local"}}],
 "containerDefinitions": [{
  "name": "main", "image": "$image", "memory": 32, "stopTimeout": 2,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"],
  "secrets": [{"name": "DB_PASSWORD", "valueFrom": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db_password"},
              {"name": "DB_JSON", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:password::"}],
  "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch", "region": "eu-west-1"}},
  "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}, {"sourceVolume": "empty", "containerPath": "/empty"},
                  {"sourceVolume": "$shared", "containerPath": "/shared"}]}]}
JSON
cat >"$defs/tasks/missing-1.json" <<JSON
{"family": "missing", "containerDefinitions": [
  {"name": "main", "image": "$image", "memory": 16, "command": ["sleep", "600"],
   "secrets": [{"name": "API_KEY", "valueFrom": "/prod/api_key"}]},
  {"name": "sidecar", "image": "$image", "memory": 16, "command": ["sleep", "600"]}]}
JSON
cat >"$defs/tasks/cw-1.json" <<JSON
{"family": "cw", "containerDefinitions": [{"name": "main", "image": "$image", "memory": 16, "command": ["sleep", "600"],
  "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/daemonlet/e2e", "awslogs-region": "eu-west-1"}}}]}
JSON

say "starting the agent"
"$bin" run --config "$work/config.yaml" --source "$defs" >"$log" 2>&1 &
agent=$!

task_field() { api "/v1/tasks/$1" | jq -r ".$2"; }
web_running() { [ "$(task_field web-1 status)" = RUNNING ]; }
wait_for 60 web_running || { bad "web-1 not RUNNING in 60 s"; cat "$log"; exit 1; }
web=$(docker ps -q --filter label=io.daemonlet.instance=$instance --filter label=io.daemonlet.task-id=web-1)

# --- secrets: inside the container, and nowhere else ---------------------------------------
env_inside=$(docker exec "$web" env)
echo "$env_inside" | grep -qx "DB_PASSWORD=$canary" || bad "DB_PASSWORD is not the secret inside the container"
echo "$env_inside" | grep -qx "DB_JSON=$canary2" || bad "DB_JSON is not the JSON key's value inside the container"
say "secrets: DB_PASSWORD and DB_JSON reached the container's environment"

stopped_missing() { [ "$(task_field missing-1 status)" = STOPPED ]; }
wait_for 20 stopped_missing || bad "missing-1 is not STOPPED: $(api /v1/tasks/missing-1)"
reason=$(task_field missing-1 stoppedReason)
case "$reason" in "ResourceInitializationError: secret API_KEY not found"*) ;; *) bad "missing-1 reason: $reason" ;; esac
[ -z "$(docker ps -aq --filter label=io.daemonlet.task-id=missing-1)" ] || bad "missing-1 has containers: it must stop before start"
say "missing secret: STOPPED ($reason), no container created"

# --- log drivers -----------------------------------------------------------------------------
[ "$(docker inspect -f '{{.HostConfig.LogConfig.Type}}' "$web")" = json-file ] || bad "awsfirelens was not mapped to json-file"
grep -q "log driver awsfirelens is mapped to json-file" "$log" || bad "no warning naming both drivers"
stopped_cw() { [ "$(task_field cw-1 status)" = STOPPED ]; }
wait_for 30 stopped_cw || bad "cw-1 (awslogs, no AWS credentials) is not STOPPED: $(api /v1/tasks/cw-1)"
cw_reason=$(task_field cw-1 stoppedReason)
case "$cw_reason" in *"log driver awslogs of container main cannot start on this host"*) ;; *) bad "cw-1 reason: $cw_reason" ;; esac
say "log drivers: awsfirelens mapped to json-file with a warning; awslogs: $cw_reason"

# --- volumes -----------------------------------------------------------------------------
task_volumes() { docker volume ls -q --filter label=io.daemonlet.instance=$instance --filter label=io.daemonlet.task-id=web-1; }
[ "$(task_volumes | wc -l)" = 2 ] || bad "web-1 should have 2 task-scoped volumes: $(task_volumes)"
docker exec "$web" df -k /scratch | grep -q 8192 || bad "scratch is not the 8 MiB tmpfs its driverOpts ask for"
docker volume inspect "$shared" >/dev/null 2>&1 || bad "shared volume $shared was not provisioned"

# --- the canary, wherever the agent writes ----------------------------------------------------
sleep 2  # let a state save and a status cycle happen with the secrets resolved
where=""
for path in /v1/tasks /v1/tasks/web-1 /v1/tasks/missing-1 /v1/daemons /v1/metadata /metrics /healthz /readyz; do
  api "$path" | grep -qF -e "$canary" -e "$canary2" && where="$where API $path;"
done
"$bin" status --socket "$work/api.sock" --json 2>&1 | grep -qF -e "$canary" -e "$canary2" && where="$where status;"
grep -rqF -e "$canary" -e "$canary2" "$work/state" && where="$where state dir;"
grep -qF -e "$canary" -e "$canary2" "$log" && where="$where agent log;"
for c in $(docker ps -aq --filter label=io.daemonlet.instance=$instance); do
  docker inspect -f '{{json .Config.Labels}}' "$c" | grep -qF -e "$canary" -e "$canary2" && where="$where labels of $c;"
done
for v in $(docker volume ls -q --filter label=io.daemonlet.instance=$instance); do
  docker volume inspect -f '{{json .Labels}}' "$v" | grep -qF -e "$canary" -e "$canary2" && where="$where volume $v;"
done
[ -f "$work/state/state.json" ] || bad "no state.json to check"
grep -q '"valueFrom"' "$work/state/state.json" || bad "state.json does not hold the secret references"
[ -z "$where" ] && say "canary: nowhere in the API, status, state.json, the agent log, labels" || bad "secret value found in:$where"

# --- a task-scoped volume goes with its task; a shared one stays ----------------------------------
rm "$defs/tasks/web-1.json"
web_gone() { [ -z "$(docker ps -aq --filter label=io.daemonlet.task-id=web-1)" ] && [ -z "$(task_volumes)" ]; }
wait_for 30 web_gone || bad "web-1's containers or task-scoped volumes left: $(task_volumes)"
docker volume inspect "$shared" >/dev/null 2>&1 || bad "shared volume $shared was removed with the task"
say "volumes: task-scoped ones removed with web-1, shared $shared kept"

kill -TERM "$agent"; wait "$agent"; agent=
if [ "$fail" != 0 ]; then echo "--- agent log"; cat "$log"; fi
[ "$fail" = 0 ] && echo "e2e-data: all checks passed"
exit $fail

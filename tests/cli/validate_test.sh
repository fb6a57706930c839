#!/usr/bin/env bash
# `daemonlet validate` as a user runs it: exit codes and the exact FILE:LINE:COL lines.
set -u
bin=$1
data=$2
examples=$3
corpus=$4
fail=0
cd "$data"
for f in ecs/*; do
  if ! out=$("$bin" validate "$f" 2>&1); then echo "FAIL: $f should be valid: $out"; fail=1; fi
done
for f in "$examples"/definitions/daemons/* "$examples"/definitions/tasks/* "$examples"/definitions; do
  if ! out=$("$bin" validate "$f" 2>&1); then echo "FAIL: $f should be valid: $out"; fail=1; fi
done
for f in broken/*.json broken/*.yaml; do
  expected=${f%.*}.expected
  actual=$("$bin" validate "$f" 2>&1 >/dev/null); rc=$?
  if [ "$rc" != 1 ]; then echo "FAIL: $f: exit $rc, want 1"; fail=1; fi
  if [ "$actual" != "$(cat "$expected")" ]; then
    echo "FAIL: $f printed:"; echo "$actual"; echo "want:"; cat "$expected"; fail=1
  fi
done
# Warnings go to stderr and do not fail validation: a bare health check command runs as CMD.
out=$("$bin" validate ecs/otel-sidecar-describe-output.json 2>&1); rc=$?
[ "$rc" = 0 ] || { echo "FAIL: describe output: exit $rc, want 0: $out"; fail=1; }
echo "$out" | grep -qF 'ecs/otel-sidecar-describe-output.json:33:36: warning: field '"'"'taskDefinition.containerDefinitions[1].healthCheck.command'"'"': does not start with "CMD" or "CMD-SHELL"; runs as ["CMD", "/healthcheck"]' \
  || { echo "FAIL: describe output: no health check warning in: $out"; fail=1; }
"$bin" validate >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] || { echo "FAIL: validate with no file: exit $rc, want 2"; fail=1; }
"$bin" validate does-not-exist.json 2>&1 | grep -q "does-not-exist.json: no such file" || { echo "FAIL: missing file not reported"; fail=1; }
# taskPolicy: given the config, application tasks are checked as the agent would, and a
# refusal names file and field; daemons are the platform's and are not checked.
policy=$(mktemp -d)
mkdir -p "$policy/defs/tasks" "$policy/defs/daemons"
printf 'taskPolicy:\n  allowPrivileged: false\n' >"$policy/config.yaml"
priv='{"family":"p","containerDefinitions":[{"name":"a","image":"busybox","memory":32,"privileged":true}]}'
echo "$priv" >"$policy/defs/tasks/root-1.json"
echo "$priv" >"$policy/defs/daemons/agent.json"
out=$("$bin" validate "$policy/defs" "$policy/config.yaml" 2>&1); rc=$?
[ "$rc" = 1 ] || { echo "FAIL: a task outside taskPolicy: exit $rc, want 1: $out"; fail=1; }
want="$policy/defs/tasks/root-1.json: field 'containerDefinitions[0].privileged': refused by taskPolicy: privileged containers are not allowed (taskPolicy.allowPrivileged is false)"
grep -qxF "$want" <<<"$out" || { echo "FAIL: taskPolicy refusal not reported as '$want' in: $out"; fail=1; }
grep -q "daemons/agent.json: ok: daemon" <<<"$out" || { echo "FAIL: a privileged daemon was checked against taskPolicy: $out"; fail=1; }
"$bin" validate "$policy/config.yaml" "$policy/defs/tasks/root-1.json" >/dev/null 2>&1 && { echo "FAIL: a single task file outside taskPolicy passed"; fail=1; }
"$bin" validate "$policy/defs" >/dev/null 2>&1 || { echo "FAIL: without a config, validate assumed a policy"; fail=1; }
rm -rf "$policy"
# The ECS corpus as a user meets it (read in place, never copied; tests/unit/EcsCorpusTest.cpp
# holds the same list with each reason, and the README names them).
refused=" gokabot__taskdef.json aws-xray-fargate__service-b-taskdef.json nri-ecs__task_definition_example.json
  nri-ecs__fargate_sidecar_example.json ecspresso__td.json sample-cmd-task__container-definitions.json
  amazon-ecs-firelens-examples__efs-task-definition.json
  amazon-ecs-firelens-examples__appmesh-firelens-colorteller-black-ecs-task-def.json "
[ -d "$corpus/valid" ] || { echo "FAIL: no ECS corpus at $corpus"; fail=1; }
accepted=0
for f in "$corpus"/valid/*.json; do
  name=$(basename "$f")
  out=$("$bin" validate "$f" 2>&1); rc=$?
  want=0
  case "$refused" in *"$name"*) want=1 ;; esac
  [ "$rc" = "$want" ] || { echo "FAIL: corpus $name: exit $rc, want $want: $out"; fail=1; }
  [ "$rc" = 0 ] && accepted=$((accepted + 1))
  if [ "$rc" = 1 ] && ! echo "$out" | grep -qE "^$f:[0-9]+:[0-9]+: "; then echo "FAIL: corpus $name: no FILE:LINE:COL in: $out"; fail=1; fi
done
[ "$accepted" = 19 ] || { echo "FAIL: $accepted corpus files validate, the README says 19"; fail=1; }
for f in "$corpus"/templated/*.json; do
  out=$("$bin" validate "$f" 2>&1); rc=$?
  [ "$rc" = 1 ] || { echo "FAIL: templated $(basename "$f"): exit $rc, want 1"; fail=1; }
  echo "$out" | grep -qE "^$f:[0-9]+:[0-9]+: " || { echo "FAIL: templated $(basename "$f"): no FILE:LINE:COL in: $out"; fail=1; }
done
[ "$fail" = 0 ] && echo "validate: all fixtures behave"
exit $fail

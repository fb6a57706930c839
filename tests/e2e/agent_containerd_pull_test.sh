#!/usr/bin/env bash
# ensureImage on containerd pulls from a real registry: Debian's docker-registry on
# loopback, filled with skopeo from a `docker save` of the test image, behind a small
# bearer-token front (tests/registry/token_front.py: 401 + WWW-Authenticate, a token
# endpoint). The image is a manifest list whose first entry is another platform: the
# agent must pick the host's. All on a private containerd that has never seen the image.
#   1. without runtime.insecureRegistries the plain-http registry is refused (https only,
#      TLS verified): a clear pull error, nothing runs;
#   2. with it, the daemon runs from the pulled image: the host platform's config
#      (VARIANT=host), a token fetched from the challenge's realm and used, the token
#      never in the agent's log, the image unpacked, no lease left behind.
set -u
bin=$1
image=daemonlet/busybox:local
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/dl-pull-XXXXXX)
engine_dir=$work/engine
export DAEMONLET_TEST_RUNTIME=containerd DAEMONLET_TEST_CONTAINERD=$engine_dir/containerd.sock
registry_port=51692 front_port=51693 listen=127.0.0.1:51690
front=127.0.0.1:$front_port
fail=0
name=pull
. "$here/lib.sh"
agent= registry= tokens=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  [ -n "$tokens" ] && kill "$tokens" 2>/dev/null
  [ -n "$registry" ] && kill "$registry" 2>/dev/null
  "$here/../contract/private-containerd.sh" stop "$engine_dir"
  if [ "$fail" != 0 ]; then rm -rf /tmp/dl-pull-failed; mv "$work" /tmp/dl-pull-failed && echo "logs kept in /tmp/dl-pull-failed"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM

# --- the registry, filled from a local archive ----------------------------------------
cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$registry_port}
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry=$!
registry_up() { curl -sf "http://127.0.0.1:$registry_port/v2/" >/dev/null; }
wait_for 20 registry_up || { bad "docker-registry did not start: $(tail -5 "$work/registry.log")"; exit 1; }
docker save -o "$work/image.tar" "$image" || { bad "docker save $image failed"; exit 1; }
skopeo copy -q --dest-tls-verify=false "docker-archive:$work/image.tar" "docker://127.0.0.1:$registry_port/dl/busybox:base" \
  || { bad "skopeo copy failed"; exit 1; }
host_arch=$(dpkg --print-architecture)
other_arch=arm64; [ "$host_arch" = arm64 ] && other_arch=amd64
index_digest=$(python3 "$here/../registry/make_index.py" "127.0.0.1:$registry_port" dl/busybox base multi "$host_arch" "$other_arch") \
  || { bad "making the manifest list failed"; exit 1; }
python3 "$here/../registry/token_front.py" --listen "$front_port" --upstream "http://127.0.0.1:$registry_port" --log "$work/front.log" \
  >"$work/front.out" 2>&1 &
tokens=$!
front_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$front/v2/")" = 401 ]; }
wait_for 20 front_up || { bad "the token front did not start: $(cat "$work/front.out")"; exit 1; }
say "registry on 127.0.0.1:$registry_port behind a bearer-token front on $front; manifest list $index_digest"

"$here/../contract/private-containerd.sh" start "$engine_dir" || { bad "private containerd did not start"; exit 1; }
mkdir -p "$work/defs/daemons"
cat >"$work/defs/daemons/puller.json" <<JSON
{"family": "puller", $(engine_definition_fields)"revision": 1, "containerDefinitions": [{"name": "main", "image": "$front/dl/busybox:multi",
  "memory": 32, "stopTimeout": 2, "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
config() {  # config INSECURE-LIST
  cat >"$work/config.yaml" <<YAML
instance: {id: pull}
listen: $listen
apiSocket: $work/api.sock
stateDir: $work/state
runtime: {type: containerd, endpoint: "unix://$DAEMONLET_TEST_CONTAINERD", insecureRegistries: [$1]}
YAML
}
puller() { engine_ids label=io.daemonlet.instance=pull label=io.daemonlet.family=puller; }

# --- 1. plain http without the opt-in: refused ------------------------------------------
config ""
"$bin" run --config "$work/config.yaml" --source "$work/defs" >"$work/refused.log" 2>&1 &
agent=$!
refused() { grep -q "pull $front/dl/busybox:multi" "$work/refused.log"; }
wait_for 30 refused || bad "no pull error without insecureRegistries: $(tail -5 "$work/refused.log")"
grep "pull $front" "$work/refused.log" | head -1 | grep -q "https://$front/v2/" || bad "the refused pull was not over https: $(grep -m1 "pull $front" "$work/refused.log")"
[ -z "$(puller)" ] || bad "the daemon runs although its registry was refused"
kill -TERM "$agent"; wait "$agent"; agent=
say "without runtime.insecureRegistries: $(grep -m1 -o "GET https://$front[^;]*" "$work/refused.log" | head -c 160)"

# --- 2. with the opt-in: pulled, platform picked, token used --------------------------
config "\"$front\""
t0=$(date +%s%N)
"$bin" run --config "$work/config.yaml" --source "$work/defs" >"$work/agent.log" 2>&1 &
agent=$!
running() { [ -n "$(puller)" ]; }
wait_for 60 running || { bad "the daemon did not start from the pulled image"; tail -20 "$work/agent.log"; exit 1; }
say "pulled and started in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
id=$(puller)
ctr_ containers info "$id" | jq -r '.Spec.process.env[]' | grep -qx VARIANT=host \
  || bad "not the host platform's image: env $(ctr_ containers info "$id" | jq -c '.Spec.process.env')"
ctr_ images ls | grep -q "^$front/dl/busybox:multi .*$index_digest" || bad "image record missing or not the list: $(ctr_ images ls)"
chain=$(ctr_ snapshots info "$(ctr_ containers info "$id" | jq -r '.SnapshotKey')" | jq -r '.Parent')
[ "$(ctr_ snapshots info "$chain" 2>/dev/null | jq -r '.Kind')" = Committed ] || bad "the container's parent snapshot '$chain' is not a committed layer chain"
[ -z "$(ctr_ leases ls -q)" ] || bad "leases left behind: $(ctr_ leases ls)"
grep -q '"path": "/token", "service": "dl-test", "scope": "repository:dl/busybox:pull"' "$work/front.log" || bad "no token requested for the challenge's service and scope"
grep -q '"path": "/v2/dl/busybox/manifests/multi", "authorized": true' "$work/front.log" || bad "the manifest was not fetched with the token"
[ "$(grep -c '/blobs/.*"authorized": true' "$work/front.log")" -ge 2 ] || bad "blobs were not fetched with the token"
for token in $(jq -r 'select(.token) | .token' "$work/front.log"); do
  grep -qF "$token" "$work/agent.log" "$work/refused.log" && bad "a registry token is in the agent's log"
done
other=$(curl -sI -H "Accept: application/vnd.docker.distribution.manifest.v2+json" \
  "http://127.0.0.1:$registry_port/v2/dl/busybox/manifests/base-other" | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' | tr -d '\r')
[ -n "$other" ] || bad "cannot read the other platform's manifest digest"
grep -qF "$other" "$work/front.log" && bad "the other platform's ($other_arch) manifest was fetched"
say "host platform ($host_arch) picked from the list, token from the realm used ($(grep -c '"authorized": true' "$work/front.log") authorized requests), layers unpacked as $chain"
kill -TERM "$agent"; wait "$agent"; agent=

[ "$fail" = 0 ] && say "PASS" || { echo "--- agent log (tail)"; tail -40 "$work/agent.log"; }
exit "$fail"

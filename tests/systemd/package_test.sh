#!/usr/bin/env bash
# The Debian package and the image bake under a real systemd (issue 13): one box for the
# package's life (install, upgrade, remove, purge) and the journal, then two boxes booted
# from one baked root filesystem. All boxes share the machine's dockerd.
#   install   dpkg -i: enabled and active, `daemonlet status` over the socket (group daemonlet)
#   journal   `journalctl -u daemonlet -p warning` holds the provoked warning (a task outside
#             taskPolicy) and no info line; DAEMONLET_FAMILY= selects one daemon's lines
#   cgroups   under the packaged (hardened) unit the app task's containers sit in their
#             task's parent cgroup /daemonlet/..., whose memory limit on the host is the task's
#   upgrade   dpkg -i of a bumped version restarts the agent within seconds; the same
#             containers with the same StartedAt; also while the unit is still
#             "activating" (a critical daemon never healthy): the new binary runs
#   remove    apt-get remove: the agent stops, says so, every container keeps running;
#             purge removes /etc/daemonlet and /var/lib/daemonlet
#   bake      packaging/bake into the cached rootfs; two clones: own instance ids, images
#             loaded from the baked archive (no registry knows the name), daemons before
#             applications, and poweroff drains each
set -u
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/dl-package-XXXXXX)
fail=0
name=package
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../support/cache.sh"
. "$(dirname "$0")/lib.sh"
box=dl-package-$$
clones=(dl-bake-a-$$ dl-bake-b-$$)
baked_ref=daemonlet-bake-$$/busybox:baked
baked_image=daemonlet-bake-$$:rootfs
instances=()
cleanup() {
  docker rm -f "$box" "${clones[@]}" >/dev/null 2>&1
  for i in "${instances[@]}"; do
    docker ps -aq --filter "label=io.daemonlet.instance=$i" | xargs -r docker rm -f >/dev/null
  done
  docker rmi "$baked_image" "$baked_ref" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
in_box() { docker exec "$box" "$@"; }
snapshot() { docker ps -q --filter "label=io.daemonlet.instance=$1" | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}' | sort; }
started_at() {  # started_at INSTANCE KIND: when its (one) container of KIND started, in unix seconds
  date -d "$(docker ps -q --filter "label=io.daemonlet.instance=$1" --filter "label=io.daemonlet.kind=$2" | xargs docker inspect -f '{{.State.StartedAt}}')" +%s.%N
}
last_die() {  # last_die SINCE INSTANCE KIND: the engine's die times (ns) of its containers, sorted
  docker events --since "$1" --until "$(( $(date +%s) + 1 ))" --filter "label=io.daemonlet.instance=$2" \
    --filter "label=io.daemonlet.kind=$3" --filter event=die --format '{{.TimeNano}}' | sort -n
}
running_count() { docker ps -q --filter "label=io.daemonlet.instance=$1" "${@:2}" | wc -l; }

systemd_image_ready || exit 1

# ---- the package ------------------------------------------------------------------------
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
deb1=$("$top/packaging/build-deb" --build-dir "$build" --version "$version-1" --output "$work/deb1") || { bad "build-deb failed"; exit 1; }
# bumped DEB VERSION DIR: DEB again under another version. The upgrades test the maintainer
# scripts, so the payload may stay; repacked with gzip -1, because xz of an ASan+UBSan
# binary takes about two minutes a package.
bumped() {
  local raw=$work/raw-$2 out
  dpkg-deb -R "$1" "$raw" && sed -i "s/^Version: .*/Version: $2/" "$raw/DEBIAN/control" || return 1
  mkdir -p "$3" && out=$3/daemonlet_$2_$(dpkg-deb -f "$1" Architecture).deb
  dpkg-deb --root-owner-group -Zgzip -z1 --build "$raw" "$out" >/dev/null && rm -rf "$raw" && echo "$out"
}
deb2=$(bumped "$deb1" "$version-2" "$work/deb2") || { bad "repacking $deb1 as $version-2 failed"; exit 1; }
deb3=$(bumped "$deb1" "$version-3" "$work/deb3") || { bad "repacking $deb1 as $version-3 failed"; exit 1; }
say "built $(basename "$deb1") and $(basename "$deb2")"
contents=$(dpkg-deb -c "$deb1" | awk '{print $6}')
for f in ./usr/bin/daemonlet ./usr/lib/systemd/system/daemonlet.service ./usr/lib/systemd/logind.conf.d/zz-daemonlet-inhibit-delay.conf \
         ./usr/lib/tmpfiles.d/daemonlet.conf ./usr/lib/sysusers.d/daemonlet.conf ./etc/daemonlet/config.yaml \
         ./etc/daemonlet/definitions/daemons/ ./etc/daemonlet/definitions/tasks/ ./usr/share/man/man8/daemonlet.8.gz \
         ./usr/share/doc/daemonlet/README.md ./usr/share/doc/daemonlet/copyright; do
  grep -qxF "$f" <<<"$contents" || bad "the package lacks $f"
done
[ "$(dpkg-deb -f "$deb1" Depends | grep -c 'libcurl4.*docker.io | containerd$')" = 1 ] || bad "Depends: '$(dpkg-deb -f "$deb1" Depends)'"
[ "$(dpkg-deb --ctrl-tarfile "$deb1" | tar -xO ./conffiles)" = /etc/daemonlet/config.yaml ] || bad "config.yaml is not the conffile"
# Errors and warnings fail; each override in packaging/debian/lintian-overrides says why.
lint=$(lintian --tag-display-limit 0 --fail-on error,warning "$deb1" 2>/dev/null) || bad "lintian: exit $?: $lint"
[ -z "$lint" ] || bad "lintian: $lint"
say "contents, Depends and conffile as designed; lintian: ${lint:-clean}"

box_create "$box" "$systemd_image" || exit 1
box_boot "$box" || exit 1
docker cp "$deb1" "$box:/tmp/"
docker cp "$deb2" "$box:/tmp/"
docker cp "$deb3" "$box:/tmp/"
box_sanitizer_dropin "$build/agent/daemonlet" "$box" || bad "the sanitizer drop-in could not be installed"
out=$(in_box dpkg -i "/tmp/$(basename "$deb1")" 2>&1) || bad "dpkg -i failed: $out"
is_active() { [ "$(in_box systemctl is-active daemonlet)" = active ]; }
wait_for 30 is_active || bad "after dpkg -i daemonlet is $(in_box systemctl is-active daemonlet): $(in_box journalctl -u daemonlet --no-pager | tail -5)"
[ "$(in_box systemctl is-enabled daemonlet)" = enabled ] || bad "after dpkg -i daemonlet is not enabled"
in_box getent group daemonlet >/dev/null || bad "the package made no group daemonlet"
[ "$(in_box stat -c '%a %U:%G' /run/daemonlet/api.sock)" = "660 root:daemonlet" ] || bad "api.sock: $(in_box stat -c '%a %U:%G' /run/daemonlet/api.sock)"
st=$(in_box daemonlet status 2>&1) || bad "daemonlet status over the socket failed: $st"
grep -q "ACTIVE" <<<"$st" || bad "status does not say ACTIVE: $st"
id=$(in_box cat /etc/machine-id)
instances+=("$id")
say "dpkg -i: enabled, active, status over /run/daemonlet/api.sock (0660 root:daemonlet); instance $id"
exposure=$(in_box systemd-analyze security daemonlet --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for daemonlet.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || bad "systemd-analyze security gave no exposure figure: $(in_box systemd-analyze security daemonlet --no-pager 2>&1 | tail -2)"
awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }' || bad "systemd-analyze security: exposure $exposure, above 2.0"
say "hardening: systemd-analyze security exposure $exposure (at most 2.0)"

# Daemons, an application, and a task the policy refuses: the warning for the journal.
mkdir -p "$work/defs/daemons" "$work/defs/tasks" "$work/conf.d"
for d in node-monitor log-shipper; do
  cat >"$work/defs/daemons/$d.json" <<JSON
{"family": "$d", "revision": 1, "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 32, "stopTimeout": 2,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
done
cat >"$work/defs/tasks/web-1.json" <<'JSON'
{"family": "web", "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 32, "stopTimeout": 2,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
cat >"$work/defs/tasks/root-1.json" <<'JSON'
{"family": "root", "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 32, "privileged": true,
  "command": ["sleep", "600"]}]}
JSON
printf 'taskPolicy: {allowPrivileged: false}\nshutdown: {drainTimeoutSeconds: 60}\n' >"$work/conf.d/10-test.yaml"
# Stopped while the files go in, so that one agent, with the test's config, starts them all.
in_box systemctl stop daemonlet
in_box mkdir -p /etc/daemonlet/config.d
docker cp "$work/conf.d/10-test.yaml" "$box:/etc/daemonlet/config.d/10-test.yaml"
docker cp "$work/defs/." "$box:/etc/daemonlet/definitions/"
in_box systemctl start daemonlet || bad "start with definitions failed"
up() { [ "$(running_count "$id" --filter label=io.daemonlet.kind=daemon)" = 2 ] && [ "$(running_count "$id" --filter label=io.daemonlet.kind=task)" = 1 ]; }
wait_for 60 up || bad "2 daemons and web-1 not running: $(docker ps --filter "label=io.daemonlet.instance=$id" --format '{{.Names}}')"

# ---- task cgroups under the real unit (P3) -----------------------------------------------
web=$(docker ps -q --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.task-id=web-1)
parent=$(docker inspect -f '{{.HostConfig.CgroupParent}}' "$web" 2>/dev/null)
case $parent in
  /daemonlet/task-web-1-*) ;;
  *) bad "web-1's container has CgroupParent '$parent', not /daemonlet/task-web-1-...: $(in_box journalctl -u daemonlet -o cat --no-pager | grep -i cgroup | tail -3)" ;;
esac
if [ "$(docker info -f '{{.CgroupDriver}}')" = cgroupfs ] && [ ! -e /sys/fs/cgroup/cgroup.controllers ]; then
  limit=$(cat "/sys/fs/cgroup/memory$parent/memory.limit_in_bytes" 2>&1)
  [ "$limit" = $((32 * 1024 * 1024)) ] || bad "the task's parent cgroup memory$parent holds memory.limit_in_bytes '$limit', not 32 MiB"
  say "cgroups: web-1 in $parent, memory.limit_in_bytes $limit (32 MiB) written by the agent under the packaged unit"
else
  limit=$(cat "/sys/fs/cgroup$parent/memory.max" 2>&1)
  [ "$limit" = $((32 * 1024 * 1024)) ] || bad "the task's parent cgroup $parent holds memory.max '$limit', not 32 MiB"
  say "cgroups: web-1 in $parent, memory.max $limit"
fi

# ---- the journal ------------------------------------------------------------------------
refused() { in_box journalctl -u daemonlet -p warning -o cat --no-pager | grep -q "task root-1 .*STOPPED: TaskPolicy: field 'containerDefinitions\[0\].privileged'"; }
wait_for 20 refused || bad "journalctl -u daemonlet -p warning lacks the refused task: $(in_box journalctl -u daemonlet -p warning -o cat --no-pager)"
warnings=$(in_box journalctl -u daemonlet -p warning -o json --no-pager _COMM=daemonlet)
[ -n "$warnings" ] || bad "no warning from the agent in the journal"
priorities=$(jq -r .PRIORITY <<<"$warnings" | sort -u | tr '\n' ' ')
all=$(in_box journalctl -u daemonlet -o json --no-pager _COMM=daemonlet)
# Unfiltered, the agent's lines have both priorities; -p warning keeps exactly those <= 4.
[ "$(jq -r 'select(.PRIORITY == "6") | .MESSAGE' <<<"$all" | grep -c .)" -gt 3 ] || bad "the journal holds no info lines of the agent: $(jq -r .PRIORITY <<<"$all" | sort | uniq -c)"
[ "$(jq -r 'select((.PRIORITY | tonumber) <= 4) | .MESSAGE' <<<"$all" | sort)" = "$(jq -r .MESSAGE <<<"$warnings" | sort)" ] \
  || bad "-p warning is not exactly the agent's warnings: $(jq -r .MESSAGE <<<"$warnings" | head -5)"
! jq -r .MESSAGE <<<"$warnings" | grep -q "RUNNING\|admitted" || bad "-p warning shows info lines: $(jq -r .MESSAGE <<<"$warnings" | grep "RUNNING\|admitted" | head -3)"
info=$(in_box journalctl -u daemonlet -p info..info -o cat --no-pager _COMM=daemonlet)
grep -q "^daemon node-monitor r1 RUNNING" <<<"$info" || bad "the line 'daemon node-monitor r1 RUNNING' is not at priority info: $info"
stamped=$(grep -E "^[0-9]{4}-[0-9]{2}-[0-9]{2}T" <<<"$info" | head -2)
[ -z "$stamped" ] || bad "lines carry a timestamp of our own: $stamped"
family=$(in_box journalctl DAEMONLET_FAMILY=node-monitor -o cat --no-pager)
grep -q "^daemon node-monitor r1 RUNNING" <<<"$family" || bad "DAEMONLET_FAMILY=node-monitor lacks its RUNNING line: $family"
grep -q "started daemonlet-daemon-node-monitor" <<<"$family" || bad "DAEMONLET_FAMILY=node-monitor lacks its start: $family"
! grep -q "log-shipper\|web-1" <<<"$family" || bad "DAEMONLET_FAMILY=node-monitor shows other owners' lines: $family"
cid=$(docker ps -q --no-trunc --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.family=node-monitor)
[ -n "$(in_box journalctl CONTAINER_ID="$cid" -o cat --no-pager)" ] || bad "no journal line carries CONTAINER_ID=$cid"
in_box journalctl DAEMONLET_TASK_ID=root-1 -o cat --no-pager | grep -q "TaskPolicy" || bad "DAEMONLET_TASK_ID=root-1 lacks the refusal"
say "journal: -p warning holds the refused task and only priorities $priorities; DAEMONLET_FAMILY=node-monitor gives $(wc -l <<<"$family") line(s) of node-monitor alone"

# ---- upgrade ----------------------------------------------------------------------------
before=$(snapshot "$id")
pid_before=$(in_box systemctl show -p MainPID --value daemonlet)
t0=$(date +%s.%N)
out=$(in_box dpkg -i "/tmp/$(basename "$deb2")" 2>&1) || bad "dpkg -i (upgrade) failed: $out"
took=$(echo "$(date +%s.%N) - $t0" | bc)
[ "$(in_box dpkg-query -W -f '${Version}' daemonlet)" = "$version-2" ] || bad "not upgraded: $(in_box dpkg-query -W -f '${Version}' daemonlet)"
pid_after=$(in_box systemctl show -p MainPID --value daemonlet)
[ "$pid_after" != "$pid_before" ] && [ "$pid_after" != 0 ] || bad "the upgrade did not restart the agent (MainPID $pid_before -> $pid_after)"
is_active || bad "after the upgrade daemonlet is $(in_box systemctl is-active daemonlet)"
# A hang (a restart waiting on a drain or a timeout) is what this catches; 30 s is far above it.
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || bad "dpkg -i of the upgrade took $took s"
after=$(snapshot "$id")
[ "$after" = "$before" ] || bad "the upgrade touched containers: before: $before after: $after"
[ "$(wc -l <<<"$before")" = 3 ] || bad "expected 3 containers, have: $before"
say "upgrade $version-1 -> $version-2: dpkg -i took $(printf %.1f "$took") s, agent restarted (pid $pid_before -> $pid_after), the same 3 containers with the same StartedAt"

# ---- upgrade while the unit is still activating -------------------------------------------
# A critical daemon that never becomes healthy, and no slot gate of this boot: READY=1 is
# never sent and the unit stays "activating", the old binary running.
cat >"$work/sick.json" <<'JSON'
{"family": "sick", "revision": 1, "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 16, "stopTimeout": 1,
  "healthCheck": {"command": ["CMD-SHELL", "exit 1"], "interval": 5, "timeout": 2, "retries": 1},
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
in_box systemctl stop daemonlet
docker cp "$work/sick.json" "$box:/etc/daemonlet/definitions/daemons/sick.json"
in_box rm -f /var/lib/daemonlet/slot-gate
in_box systemctl --no-block start daemonlet
activating() { [ "$(in_box systemctl is-active daemonlet)" = activating ] && [ "$(running_count "$id" --filter label=io.daemonlet.family=sick)" = 1 ]; }
wait_for 30 activating || bad "the unit is $(in_box systemctl is-active daemonlet), not activating with the sick daemon up"
sleep 2
[ "$(in_box systemctl is-active daemonlet)" = activating ] || bad "the unit left activating: $(in_box systemctl is-active daemonlet)"
kept() {  # the snapshot without the sick daemon, whose container the agent may replace
  docker ps -q --filter "label=io.daemonlet.instance=$id" | xargs -r docker inspect -f '{{index .Config.Labels "io.daemonlet.family"}} {{.Id}} {{.State.StartedAt}}' \
    | awk '$1 != "sick" { print $2, $3 }' | sort
}
before_act=$(kept)
pid_before=$(in_box systemctl show -p MainPID --value daemonlet)
t0=$(date +%s.%N)
out=$(in_box dpkg -i "/tmp/$(basename "$deb3")" 2>&1) || bad "dpkg -i (upgrade while activating) failed: $out"
took=$(echo "$(date +%s.%N) - $t0" | bc)
grep -q "restarting the agent (it was still starting)" <<<"$out" || bad "postinst did not say it restarts a starting agent: $out"
new_agent() {
  local pid
  pid=$(in_box systemctl show -p MainPID --value daemonlet)
  # A new main process is a new exec of /usr/bin/daemonlet, the new binary. (readlink of
  # /proc/PID/exe from docker exec answered nothing in the box, so it cannot be the proof.)
  [ "$pid" != 0 ] && [ "$pid" != "$pid_before" ]
}
wait_for 30 new_agent || bad "after the upgrade while activating the old agent runs: MainPID $pid_before -> $(in_box systemctl show -p MainPID --value daemonlet)"
awk -v t="$took" 'BEGIN { exit !(t < 30) }' || bad "dpkg -i of the upgrade while activating took $took s"
[ "$(kept)" = "$before_act" ] || bad "the upgrade while activating touched containers: before: $before_act after: $(kept)"
[ "$before_act" = "$before" ] || bad "the containers changed while the unit was activating: $before_act"
# Back to active: without the sick daemon the gate opens.
in_box rm /etc/daemonlet/definitions/daemons/sick.json
wait_for 60 is_active || bad "after removing the sick daemon daemonlet is $(in_box systemctl is-active daemonlet)"
gone_sick() { [ "$(docker ps -aq --filter "label=io.daemonlet.instance=$id" --filter label=io.daemonlet.family=sick | wc -l)" = 0 ]; }
wait_for 30 gone_sick || bad "the sick daemon's container is still there"
say "upgrade while activating -> $version-3: dpkg -i took $(printf %.1f "$took") s, the new binary runs (pid $pid_before -> $(in_box systemctl show -p MainPID --value daemonlet)), the other 3 containers untouched"

# ---- remove, purge ----------------------------------------------------------------------
out=$(in_box apt-get remove -y daemonlet 2>&1) || bad "apt-get remove failed: $out"
grep -q "containers keep running" <<<"$out" || bad "apt-get remove did not say the containers keep running: $out"
[ "$(in_box systemctl is-active daemonlet)" != active ] || bad "the agent still runs after apt-get remove"
[ "$(snapshot "$id")" = "$before" ] || bad "apt-get remove touched containers: $(snapshot "$id")"
in_box test -f /etc/daemonlet/config.yaml || bad "apt-get remove removed the config"
out=$(in_box apt-get purge -y daemonlet 2>&1) || bad "apt-get purge failed: $out"
in_box test -e /etc/daemonlet && bad "purge left /etc/daemonlet"
in_box test -e /var/lib/daemonlet && bad "purge left /var/lib/daemonlet"
[ "$(snapshot "$id")" = "$before" ] || bad "purge touched containers"
sanitizer_report_in "the journal of install, upgrade and remove" < <(in_box journalctl -u daemonlet -o cat --no-pager)
say "apt-get remove: agent stopped, said so, 3 containers still running; purge removed /etc/daemonlet and /var/lib/daemonlet"
docker rm -f "$box" >/dev/null

# ---- bake -------------------------------------------------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs"
tar -C "$rootfs" -xf "$systemd_rootfs"
docker tag daemonlet/busybox:local "$baked_ref"
mkdir -p "$work/bake/daemons" "$work/bake/tasks"
cat >"$work/bake/daemons/node-monitor.json" <<JSON
{"family": "node-monitor", "revision": 1, "containerDefinitions": [{"name": "main", "image": "$baked_ref", "memory": 32, "stopTimeout": 2,
  "healthCheck": {"command": ["CMD-SHELL", "test -f /tmp/up"], "interval": 5, "timeout": 2, "retries": 3},
  "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 1; touch /tmp/up; while true; do sleep 1 & wait; done"]}]}
JSON
cat >"$work/bake/tasks/web-1.json" <<JSON
{"family": "web", "containerDefinitions": [{"name": "main", "image": "$baked_ref", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}]}
JSON
printf 'shutdown: {drainTimeoutSeconds: 60}\n' >"$work/bake/config.yaml"
printf 'instance:\n  id: golden-1\n' >"$work/fixed-id.yaml"
out=$("$top/packaging/bake" "$rootfs" --deb "$deb1" --config "$work/fixed-id.yaml" 2>&1) && bad "bake accepted a config with a fixed instance.id"
grep -q "fixed-id.yaml:2: instance.id is fixed" <<<"$out" || bad "bake's refusal of a fixed instance.id does not say where: $out"
[ ! -e "$rootfs/usr/bin/daemonlet" ] || bad "bake refused the config but installed the package all the same"
# Definitions as a build host may hold them: someone else's, private.
chown -R 1234:1234 "$work/bake/daemons" "$work/bake/tasks"
chmod 0700 "$work/bake/daemons"
chmod 0600 "$work/bake/daemons/node-monitor.json"
shipped=$(dpkg-deb --fsys-tarfile "$deb1" | tar -xO ./etc/daemonlet/config.yaml | sha256sum)
out=$("$top/packaging/bake" "$rootfs" --deb "$deb1" --definitions "$work/bake" --config "$work/bake/config.yaml" --image "$baked_ref" 2>&1) \
  || { bad "bake failed: $out"; exit 1; }
[ ! -s "$rootfs/etc/machine-id" ] || bad "bake left a machine-id"
[ "$(sha256sum <"$rootfs/etc/daemonlet/config.yaml")" = "$shipped" ] || bad "bake changed the conffile /etc/daemonlet/config.yaml"
cmp -s "$work/bake/config.yaml" "$rootfs/etc/daemonlet/config.d/50-bake.yaml" || bad "bake did not write the config as config.d/50-bake.yaml"
owners=$(cd "$rootfs/etc/daemonlet" && find config.d definitions -printf '%y %m %U:%G %p\n' | awk '($1 == "d" && $2 != "755") || ($1 == "f" && $2 != "644") || $3 != "0:0"')
[ -z "$owners" ] || bad "baked files not root-owned 0644/0755: $owners"
left=$(cd "$rootfs/var/lib/daemonlet" && find . -mindepth 1 | sort | tr '\n' ' ')
[ "$left" = "./images ./images/${baked_ref//[\/:]/_}.tar " ] || bad "bake left state behind: $left"
[ -L "$rootfs/etc/systemd/system/multi-user.target.wants/daemonlet.service" ] || bad "bake did not enable daemonlet.service"
docker rmi "$baked_ref" >/dev/null  # from now on only the baked archive has it
tar -C "$rootfs" -c . | docker import - "$baked_image" >/dev/null || { bad "docker import of the baked rootfs failed"; exit 1; }
say "baked: $(grep -c '^bake:' <<<"$out") steps, machine-id empty, only images/ under /var/lib/daemonlet, config as a drop-in, definitions root's; a fixed instance.id refused"

for c in "${clones[@]}"; do box_create "$c" "$baked_image" || exit 1; done
for c in "${clones[@]}"; do box_boot "$c" || exit 1; done
ids=()
for c in "${clones[@]}"; do
  mid=$(docker exec "$c" cat /etc/machine-id)
  ids+=("$mid")
  instances+=("$mid")
done
[ "${ids[0]}" != "${ids[1]}" ] && [ -n "${ids[0]}" ] && [ -n "${ids[1]}" ] || bad "the clones share a machine-id: ${ids[*]}"
clone_up() { [ "$(running_count "$1" --filter label=io.daemonlet.kind=task)" = 1 ]; }
for i in 0 1; do
  c=${clones[$i]} mid=${ids[$i]}
  wait_for 90 clone_up "$mid" || bad "$c: web-1 not running: $(docker exec "$c" journalctl -u daemonlet -o cat --no-pager | tail -8)"
  reported=$(docker exec "$c" daemonlet status --json 2>/dev/null | jq -r '.metadata.instanceId // .instanceId')
  [ "$reported" = "$mid" ] || bad "$c: the agent reports instance '$reported', its machine-id is $mid"
  docker exec "$c" journalctl -u daemonlet -o cat --no-pager | grep -q "baked images: loaded" || bad "$c: no baked image loaded"
  docker exec "$c" journalctl -u daemonlet -o cat --no-pager | grep -q "resuming" && bad "$c: resumed a baked drain"
  d_up=$(docker ps -q --filter "label=io.daemonlet.instance=$mid" --filter label=io.daemonlet.kind=daemon | xargs docker inspect -f '{{.State.Health.Status}}')
  d_start=$(started_at "$mid" daemon)
  t_start=$(started_at "$mid" task)
  # Docker runs the daemon's first health check 5 s after its start: the app came after that.
  awk -v d="$d_start" -v t="$t_start" 'BEGIN { exit !(d + 4.5 <= t) }' || bad "$c: web-1 started at $t_start, the daemon at $d_start (healthy no sooner than 5 s later)"
  [ "$d_up" = healthy ] || bad "$c: the daemon is $d_up"
done
say "two clones: instances ${ids[0]} and ${ids[1]}; images loaded from the baked archive; each daemon healthy before its app"

t0=$(date +%s)
for c in "${clones[@]}"; do docker exec -d "$c" systemctl poweroff; done
for i in 0 1; do
  c=${clones[$i]} mid=${ids[$i]}
  wait_for 120 box_powered_off "$c" || { bad "$c did not power off"; continue; }
  [ "$(running_count "$mid")" = 0 ] || bad "$c: containers still running after poweroff: $(docker ps --filter "label=io.daemonlet.instance=$mid" --format '{{.Names}}')"
  # Stopped containers of a drain are removed: the engine's die events say when each went.
  app_end=$(last_die "$t0" "$mid" task | tail -1)
  daemon_first=$(last_die "$t0" "$mid" daemon | head -1)
  box_end=$(date -d "$(docker inspect -f '{{.State.FinishedAt}}' "$c")" +%s%N)
  [ -n "$app_end" ] && [ -n "$daemon_first" ] || { bad "$c: no die events (task '$app_end', daemon '$daemon_first')"; continue; }
  [ "$app_end" -lt "$daemon_first" ] || bad "$c: a daemon died ($daemon_first) before the last app ($app_end)"
  [ "$daemon_first" -lt "$box_end" ] || bad "$c: the daemon died ($daemon_first) after the machine was gone ($box_end)"
done
say "poweroff drained each clone: apps stopped, then daemons, then the machine"

[ "$fail" = 0 ] && echo "package: all checks passed"
exit $fail

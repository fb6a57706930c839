#!/usr/bin/env bash
# The host integration under a real systemd and logind (DESIGN 5, P4, P5): a Debian
# bookworm systemd container runs daemonlet.service against the machine's dockerd through
# the mounted socket. Checks: systemd-analyze verify passes; Type=notify start returns once
# the slot gate is open; `systemctl restart daemonlet` restarts no container; and
# `systemctl poweroff` waits while the agent drains: every application container exits
# before any daemon container stops, and the daemons are stopped before the machine is gone.
set -u
bin=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
box=dl-systemd-$$
work=$(mktemp -d /tmp/dl-systemd-XXXXXX)
fail=0
name=systemd
. "$(dirname "$0")/../e2e/lib.sh"
. "$(dirname "$0")/../support/cache.sh"
. "$(dirname "$0")/lib.sh"
cleanup() {
  docker rm -f "$box" >/dev/null 2>&1
  docker ps -aq --filter label=io.daemonlet.instance=systemd-e2e | xargs -r docker rm -f >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
in_box() { docker exec "$box" "$@"; }
epoch() { date -d "$1" +%s.%N; }

systemd_image_ready || exit 1

# The install: binary, unit, logind drop-in, tmpfiles, config and definitions.
mkdir -p "$work/defs/daemons" "$work/defs/tasks" "$work/logs"
cat >"$work/config.yaml" <<YAML
instance: {id: systemd-e2e}
shutdown: {drainTimeoutSeconds: 60}
YAML
for d in metrics logs; do
  cat >"$work/defs/daemons/$d.json" <<JSON
{"family": "$d", "revision": 1, "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 32, "stopTimeout": 5,
  "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait; done"]}]}
JSON
done
for t in web-1 web-2; do
  # Slow to stop: ignores SIGTERM, killed after its 3 s stopTimeout.
  cat >"$work/defs/tasks/$t.json" <<JSON
{"family": "web", "containerDefinitions": [{"name": "main", "image": "daemonlet/busybox:local", "memory": 32, "stopTimeout": 3,
  "command": ["sh", "-c", "trap '' TERM; while true; do sleep 1; done"]}]}
JSON
done
mkdir -p "$work/dropin"
printf '[Service]\nStandardOutput=append:/logs/agent.log\nStandardError=append:/logs/agent.log\n' >"$work/dropin/test-log.conf"

box_create "$box" "$systemd_image" -v "$work/logs:/logs" || exit 1
docker cp "$bin" "$box:/usr/bin/daemonlet"
docker cp "$top/systemd/daemonlet.service" "$box:/lib/systemd/system/daemonlet.service"
docker cp "$top/systemd/logind.conf.d" "$box:/usr/lib/systemd/"
docker cp "$top/systemd/tmpfiles.d/daemonlet.conf" "$box:/usr/lib/tmpfiles.d/daemonlet.conf"
docker cp "$top/systemd/sysusers.d/daemonlet.conf" "$box:/usr/lib/sysusers.d/daemonlet.conf"
docker cp "$work/config.yaml" "$box:/etc/daemonlet-config.yaml"
box_boot "$box" || exit 1
# The rootfs recipe lists the agent's runtime libraries by package: say which one is missing
# rather than fail later with a unit that does not start.
missing=$(in_box ldd /usr/bin/daemonlet | grep "not found")
[ -z "$missing" ] || { bad "the rootfs lacks libraries of the agent; add their packages to mm_args: $missing"; exit 1; }
in_box mkdir -p /etc/daemonlet /etc/systemd/system/daemonlet.service.d
in_box cp /etc/daemonlet-config.yaml /etc/daemonlet/config.yaml
# tmpfiles made the directory at boot: copy the contents, not the folder.
docker cp "$work/defs/." "$box:/etc/daemonlet/definitions/"
docker cp "$work/dropin/test-log.conf" "$box:/etc/systemd/system/daemonlet.service.d/test-log.conf"
box_sanitizer_dropin "$bin" "$box" || bad "the sanitizer drop-in could not be installed"

verify=$(in_box systemd-analyze verify /lib/systemd/system/daemonlet.service 2>&1) || bad "systemd-analyze verify: $verify"
[ -z "$verify" ] || say "verify said: $verify"
delay=$(in_box busctl get-property org.freedesktop.login1 /org/freedesktop/login1 org.freedesktop.login1.Manager InhibitDelayMaxUSec)
[ "$delay" = "t 330000000" ] || bad "logind InhibitDelayMaxUSec is '$delay', the drop-in did not apply"
say "unit verified; logind InhibitDelayMaxSec raised to 330 s by the drop-in"

# Type=notify: start returns once READY=1, i.e. the slot gate is open.
in_box systemctl daemon-reload
in_box systemd-tmpfiles --create /usr/lib/tmpfiles.d/daemonlet.conf
timeout 90 docker exec "$box" systemctl start daemonlet || bad "systemctl start daemonlet failed: $(in_box systemctl status daemonlet --no-pager | tail -5)"
status=$(in_box systemctl show -p StatusText --value daemonlet)
echo "$status" | grep -q "^ACTIVE: 2/2 daemons" || bad "StatusText: '$status'"
apps_up() { [ "$(docker ps -q --filter label=io.daemonlet.instance=systemd-e2e --filter label=io.daemonlet.kind=task | wc -l)" = 2 ]; }
wait_for 30 apps_up || bad "application tasks not running"
grep -q "shutdown hold: logind delay lock taken" "$work/logs/agent.log" || bad "no shutdown hold taken: $(grep -i hold "$work/logs/agent.log")"
in_box systemd-inhibit --list --no-pager | grep -q "daemonlet.*delay" || bad "logind lists no daemonlet delay lock"
in_box daemonlet status >"$work/status.out" 2>&1 || bad "daemonlet status over /run/daemonlet/api.sock failed under the hardened unit: $(cat "$work/status.out")"
[ "$(in_box stat -c '%a %G' /run/daemonlet/api.sock)" = "660 daemonlet" ] || bad "the API socket is not 0660 group daemonlet: $(in_box stat -c '%a %G' /run/daemonlet/api.sock)"
say "started: status '$status', delay lock held"
say "hardening: $(in_box systemd-analyze security daemonlet --no-pager 2>/dev/null | tail -1)"

# systemctl restart: no container restarted (P5).
snapshot() { docker ps -q --filter label=io.daemonlet.instance=systemd-e2e | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}' | sort; }
before=$(snapshot)
in_box systemctl restart daemonlet || bad "systemctl restart failed"
[ "$(snapshot)" = "$before" ] || bad "systemctl restart daemonlet changed containers"
[ "$(echo "$before" | wc -l)" = 4 ] || bad "expected 4 running containers, have: $before"
say "systemctl restart daemonlet: the same 4 containers, none restarted"

# systemctl poweroff: the hold keeps the machine up while applications drain first.
poweroff_t0=$(date +%s)
docker exec -d "$box" systemctl poweroff
wait_for 120 box_powered_off "$box" || bad "the systemd container did not power off"
box_end=$(epoch "$(docker inspect -f '{{.State.FinishedAt}}' "$box")")
last_app=$(docker events --since "$poweroff_t0" --until "$(( $(date +%s) + 1 ))" --filter label=io.daemonlet.instance=systemd-e2e \
  --filter label=io.daemonlet.kind=task --filter event=die --format '{{.TimeNano}}' | sort -n | tail -1)
[ -n "$last_app" ] || bad "no application container died during the poweroff"
last_app=$(echo "$last_app / 1000000000" | bc -l)
[ -z "$(docker ps -q --filter label=io.daemonlet.instance=systemd-e2e --filter label=io.daemonlet.kind=task)" ] || bad "applications still running after poweroff"
for c in $(docker ps -aq --filter label=io.daemonlet.instance=systemd-e2e --filter label=io.daemonlet.kind=daemon); do
  [ "$(docker inspect -f '{{.State.Running}}' "$c")" = false ] || { bad "daemon $c still running: the agent did not stop it before poweroff"; continue; }
  f=$(epoch "$(docker inspect -f '{{.State.FinishedAt}}' "$c")")
  awk -v a="$last_app" -v b="$f" 'BEGIN { exit !(a < b) }' || bad "daemon $c stopped at $f, before the last application ($last_app)"
  awk -v a="$f" -v b="$box_end" 'BEGIN { exit !(a < b) }' || bad "daemon $c stopped at $f, after the machine was gone ($box_end)"
done
grep -q "system shutdown: draining application tasks" "$work/logs/agent.log" || bad "the agent never saw PrepareForShutdown"
grep -q "releasing the hold" "$work/logs/agent.log" || bad "the agent did not release the hold after draining"
say "poweroff waited: apps drained (last at $last_app), then daemons stopped, then the machine went down ($box_end)"
sanitizer_report_in "the agent's log (restart and poweroff)" <"$work/logs/agent.log"

if [ "$fail" != 0 ]; then echo "--- agent log"; tail -60 "$work/logs/agent.log"; fi
[ "$fail" = 0 ] && echo "systemd: all checks passed"
exit $fail

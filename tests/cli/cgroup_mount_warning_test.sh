#!/usr/bin/env bash
# On cgroup v1, a hierarchy this process is in but that is mounted nowhere keeps the engine
# from reporting OOM kills (agent/host/CgroupMounts.h). The agent says so at start, naming
# the hierarchy and the mount that fixes it. Proven in a private mount namespace where one
# hierarchy of the real host is unmounted; the host itself is left as it was. Needs root
# and the machine's dockerd (the warning comes once the engine answers).
set -u
bin=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/defs/daemons" "$work/defs/tasks" "$work/state"
cat >"$work/config.yaml" <<CONF
instance: {id: cgroup-mount-warning, capacity: {cpu: 1024, memory: 1024}, reserved: {cpu: 0, memory: 0}}
listen: 127.0.0.1:0
apiSocket: $work/api.sock
stateDir: $work/state
source: {type: directory, path: $work/defs}
CONF
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (unshare -m, umount)"; exit 1; }
agent() { timeout 30 "$bin" run --config "$work/config.yaml" --once --dry-run 2>&1; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  out=$(agent)
  grep -q 'cgroup v1 hierarchy' <<<"$out" && { echo "FAIL: cgroup v2 host, yet a v1 warning:"; echo "$out"; exit 1; }
  echo "ok: cgroup v2 only: no v1 hierarchy warning"; exit 0
fi
out=$(agent)
grep -q 'cgroup v1 hierarchy' <<<"$out" && { echo "FAIL: every hierarchy is mounted (dev-setup does it), yet:"; echo "$out"; exit 1; }
# Any v1 hierarchy other than memory and name=systemd, as it is mounted here.
victim=$(sed -n 's/^[0-9]*:\([^:]*\):.*/\1/p' /proc/self/cgroup | grep -vE '^(memory|name=.*)$' \
  | while read -r h; do grep -q " /sys/fs/cgroup/$h " /proc/self/mountinfo && { echo "$h"; break; }; done)
[ -n "$victim" ] || { echo "FAIL: no v1 hierarchy besides memory mounted at /sys/fs/cgroup/<controllers>"; exit 1; }
out=$(unshare -m --propagation private bash -c "umount /sys/fs/cgroup/$victim || exit 9; $(declare -f agent); bin='$bin' work='$work' agent")
rc=$?
[ "$rc" = 9 ] && { echo "FAIL: could not unmount /sys/fs/cgroup/$victim in a private namespace"; exit 1; }
grep -qF "cgroup v1 hierarchy $victim is listed in /proc/self/cgroup but mounted nowhere here" <<<"$out" \
  || { echo "FAIL: $victim unmounted, but the agent did not say so:"; echo "$out"; exit 1; }
grep -qF "mkdir -p /sys/fs/cgroup/$victim && mount -t cgroup -o $victim cgroup /sys/fs/cgroup/$victim" <<<"$out" \
  || { echo "FAIL: the warning does not give the fix:"; echo "$out"; exit 1; }
grep -q "/sys/fs/cgroup/$victim " /proc/self/mountinfo || { echo "FAIL: the host lost /sys/fs/cgroup/$victim"; exit 1; }
echo "ok: $victim unmounted: the agent warns that OOM kills will not be reported, and says how to mount it"

#!/usr/bin/env bash
# dev-setup mounts every cgroup v1 hierarchy an engine needs before any test runs, so that
# OOM kills are reported all the way through the suite (packaging/dev-setup.sh explains
# why). Its plan is checked here on the files of made-up hosts, the first one as CI's
# machine was when every OOM test failed: hugetlb in no v1 hierarchy, listed by the
# cgroup v2 root but used by no v2 cgroup, until a nested systemd took it mid-run.
set -u
setup=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0

# host NAME: writes $work/NAME/{proc,cgroupfs} from the variables below.
host() {
  local d=$work/$1
  mkdir -p "$d/proc/self" "$d/cgroupfs/unified"
  printf '%s\n' "${proc_cgroup[@]}" >"$d/proc/self/cgroup"
  printf '%s\n' "${mountinfo[@]}" >"$d/proc/self/mountinfo"
  { echo "#subsys_name	hierarchy	num_cgroups	enabled"; printf '%s\n' "${cgroups[@]}"; } >"$d/proc/cgroups"
  echo "$v2_controllers" >"$d/cgroupfs/unified/cgroup.controllers"
  echo "$v2_subtree" >"$d/cgroupfs/unified/cgroup.subtree_control"
}
# expect NAME WANT WHY: the plan for host NAME is WANT (lines joined by spaces).
expect() {
  local got code
  got=$(DEVSETUP_PROC="$work/$1/proc" DEVSETUP_CGROUPFS="$work/$1/cgroupfs" bash "$setup" cgroup-plan 2>&1)
  code=$?
  got=$(sort <<<"$got" | tr '\n' ' ')
  got=${got% }
  # A plan that failed is no plan, even where nothing was to be mounted.
  if [ "$code" != 0 ]; then echo "FAIL: $3: cgroup-plan exited $code: $got"; fails=$((fails + 1))
  elif [ "$got" = "$2" ]; then echo "ok: $3: plan '${got}'"; else echo "FAIL: $3: plan '$got', want '$2'"; fails=$((fails + 1)); fi
}

mount_line() { echo "$1 31 0:$1 / /sys/fs/cgroup/$2 rw,relatime - cgroup cgroup rw,$3"; }
base_cgroup=(0::/ 1:cpu:/ 2:cpuacct:/ 3:cpuset:/ 4:memory:/ 5:devices:/ 6:freezer:/ 7:blkio:/ 8:pids:/ 9:name=systemd:/)
base_mounts=("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs ro,mode=755"
  "$(mount_line 32 cpu cpu)" "$(mount_line 33 cpuacct cpuacct)" "$(mount_line 34 cpuset cpuset)"
  "$(mount_line 35 memory memory)" "$(mount_line 36 devices devices)" "$(mount_line 37 freezer freezer)"
  "$(mount_line 38 blkio blkio)" "$(mount_line 39 pids pids)" "$(mount_line 40 systemd name=systemd)"
  "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw")
base_cgroups=("cpuset	3	1	1" "cpu	1	1	1" "cpuacct	2	1	1" "blkio	7	1	1" "memory	4	1	1"
  "devices	5	1	1" "freezer	6	1	1" "pids	8	1	1")

# CI's machine at boot: hugetlb, net_cls, net_prio and perf_event in no v1 hierarchy; the
# v2 root lists hugetlb but no v2 cgroup enables it.
proc_cgroup=("${base_cgroup[@]}"); mountinfo=("${base_mounts[@]}")
cgroups=("${base_cgroups[@]}" "net_cls	0	1	1" "net_prio	0	1	1" "perf_event	0	1	1" "hugetlb	0	1	1")
v2_controllers=hugetlb; v2_subtree=
host fresh
expect fresh "hugetlb net_cls,net_prio perf_event" "fresh hybrid host: controllers in no v1 hierarchy, hugetlb unused by v2"

# The same host where v2 cgroups use hugetlb: it cannot move to v1, nor can systemd move it.
v2_subtree=hugetlb
host v2_uses_hugetlb
expect v2_uses_hugetlb "net_cls,net_prio perf_event" "hugetlb enabled in the v2 root's subtree_control stays with v2"

# After a nested systemd made hugetlb a v1 hierarchy of its own and went: listed, unmounted.
proc_cgroup=(13:hugetlb:/ "${base_cgroup[@]}")
cgroups=("${base_cgroups[@]}" "hugetlb	13	2	1")
v2_controllers=; v2_subtree=
host leftover
expect leftover "hugetlb" "a hierarchy this process is in but mounted nowhere"

# Everything mounted: nothing to do.
mountinfo=("${base_mounts[@]}" "$(mount_line 42 hugetlb hugetlb)")
host complete
expect complete "" "every hierarchy mounted"

# cgroup v2 only: one hierarchy, nothing to mount.
mkdir -p "$work/v2only/proc/self" "$work/v2only/cgroupfs"
echo 0::/ >"$work/v2only/proc/self/cgroup"; : >"$work/v2only/proc/self/mountinfo"; : >"$work/v2only/proc/cgroups"
echo "cpu memory hugetlb" >"$work/v2only/cgroupfs/cgroup.controllers"
expect v2only "" "cgroup v2 only"

[ "$fails" = 0 ]

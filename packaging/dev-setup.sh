#!/usr/bin/env bash
# Sets up a Debian 12 machine to build, test and run daemonlet, then does one job:
#   dev-setup.sh run    build, then run the agent on the bundled example definitions
#   dev-setup.sh test   build the ASan+UBSan tree build/asan, then run the whole test
#                       suite there with ctest (the release tree build/ is not built)
#   dev-setup.sh setup  only install packages, start the engines, build the test image
#   dev-setup.sh cgroup-plan  print the cgroup v1 hierarchies setup would mount, and do
#                       nothing (reads DEVSETUP_PROC, default /proc, and DEVSETUP_CGROUPFS,
#                       default /sys/fs/cgroup; needs no root)
#   dev-setup.sh sanitizer-findings DIR  print the sanitizer reports in DIR, where the test
#                       job has every ASan/UBSan report written; fails if there is one
#   dev-setup.sh sanitizer-options DIR  print the ASAN_OPTIONS and UBSAN_OPTIONS the test
#                       job exports, with their reports going to DIR
# Idempotent: safe to run again; what is already there and checks out is left alone (the
# test image is verified on each run and rebuilt if it is not what it should be). Needs root.
set -euo pipefail

mode=${1:-}
case "$mode" in run|test|setup) needs_root=1 ;; cgroup-plan|sanitizer-findings|sanitizer-options) needs_root= ;; *)
  echo "usage: $0 run|test|setup|cgroup-plan|sanitizer-findings DIR|sanitizer-options DIR" >&2; exit 2 ;;
esac
if [ -n "$needs_root" ] && [ "$(id -u)" != 0 ]; then
  echo "$0: must run as root (installs packages, starts dockerd/containerd)" >&2
  exit 2
fi

top=$(cd "$(dirname "$0")/.." && pwd)
build=${DAEMONLET_BUILD_DIR:-$top/build}
logs=/var/log/daemonlet-dev
proc=${DEVSETUP_PROC:-/proc}
cgroupfs=${DEVSETUP_CGROUPFS:-/sys/fs/cgroup}
say() { echo "dev-setup: $*"; }

packages=(
  build-essential cmake pkg-config git ca-certificates curl openssl
  libboost-dev libcurl4-openssl-dev libssl-dev libyaml-cpp-dev libfmt-dev nlohmann-json3-dev
  libsystemd-dev catch2 libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  docker.io containerd runc busybox-static iproute2 bc mmdebstrap python3 jq man-db groff-base
  gnuplot-nox lintian dpkg-dev
  clang-14 libclang-rt-14-dev
  docker-registry skopeo
)

install_packages() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then say "packages: all present"; return; fi
  say "packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >"$logs/apt-update.log" 2>&1 || { cat "$logs/apt-update.log"; exit 1; }
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$logs/apt-install.log" 2>&1 \
    || { tail -30 "$logs/apt-install.log"; exit 1; }
}

# Waits until `probe` succeeds, up to 60 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 120); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "$what did not come up; see $logs"
  return 1
}

# On cgroup v1 every hierarchy the kernel lists in /proc/self/cgroup must be mounted:
# containerd's shim loads a container's cgroups through every listed hierarchy and, when
# one has no mount ("cgroups: cannot find cgroup mount destination"), never watches for
# OOM, so Docker reports OOMKilled false and containerd sends no TaskOOM. A hierarchy that
# a nested systemd (the systemd-box tests) mounted in its own namespace outlives it without
# a mount here. On a fresh machine that hierarchy does not exist yet: the first systemd-box
# test creates it mid-run, and every OOM test after it fails. So controllers the kernel has
# but no hierarchy holds are mounted too, grouped as systemd groups them, which makes the
# nested systemd find them mounted and create nothing. A host booted by systemd mounts them
# all, so this does what it would. The agent checks the first rule again when it starts
# (agent/host/CgroupMounts.h) and names any hierarchy still unmounted.
#
# Prints the hierarchies to mount, one per line, as mount's -o wants them.
cgroup_hierarchies_to_mount() {
  [ -f "$cgroupfs/cgroup.controllers" ] && return 0   # v2 only: one hierarchy
  # The super options of each cgroup v1 mount, one line each (after mountinfo's " - ").
  local mounted id controllers rest missing=()
  mounted=$(sed -n 's/.* - cgroup [^ ]* \(.*\)$/,\1,/p' "$proc/self/mountinfo")
  while IFS=: read -r id controllers rest; do
    if [ "$id" = 0 ] || [ -z "$controllers" ]; then continue; fi
    local c all=1
    for c in ${controllers//,/ }; do
      grep -qF ",$c," <<<"$mounted" || { all=; break; }
    done
    [ -n "$all" ] || missing+=("$controllers")
  done <"$proc/self/cgroup"
  # Enabled controllers in no v1 hierarchy. On a hybrid host such a controller sits in the
  # cgroup v2 root's cgroup.controllers, yet while no v2 cgroup enables it (the root's
  # cgroup.subtree_control) the nested systemd takes it into a new v1 hierarchy all the
  # same: hugetlb did, and every OOM test after that systemd-box test failed in CI. Only a
  # controller v2 uses cannot move, so only those are left alone.
  local in_use=" $(cat "$cgroupfs/unified/cgroup.subtree_control" 2>/dev/null) " name hier enabled
  local -A free=()
  while read -r name hier _ enabled; do
    [[ "$name" == \#* ]] && continue
    if [ "$hier" = 0 ] && [ "$enabled" = 1 ] && [[ "$in_use" != *" $name "* ]]; then free[$name]=1; fi
  done <"$proc/cgroups"
  local pair
  for pair in cpu,cpuacct net_cls,net_prio; do
    if [ -n "${free[${pair%,*}]:-}" ] && [ -n "${free[${pair#*,}]:-}" ]; then
      missing+=("$pair"); unset "free[${pair%,*}]" "free[${pair#*,}]"
    fi
  done
  for name in "${!free[@]}"; do missing+=("$name"); done
  if [ ${#missing[@]} -gt 0 ]; then printf '%s\n' "${missing[@]}"; fi
}

mount_cgroup_hierarchies() {
  local missing=() controllers
  mapfile -t missing < <(cgroup_hierarchies_to_mount)
  [ ${#missing[@]} -eq 0 ] && return 0
  # /sys/fs/cgroup is often a read-only tmpfs: make it writable for the mkdir, then put
  # both its superblock and mount flags back as they were.
  local line sb_ro= mnt_ro=
  line=$(grep -E '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ /sys/fs/cgroup ' /proc/self/mountinfo | tail -1)
  [[ " $(cut -d' ' -f6 <<<"$line" | tr , ' ') " == *" ro "* ]] && mnt_ro=1
  [[ " $(sed 's/.* - [^ ]* [^ ]* //' <<<"$line" | tr , ' ') " == *" ro "* ]] && sb_ro=1
  if [ -n "$line" ] && { [ -n "$sb_ro" ] || [ -n "$mnt_ro" ]; }; then
    mount -o remount,rw /sys/fs/cgroup || {
      say "WARNING: cannot remount /sys/fs/cgroup rw to mount ${missing[*]}: OOM kills may not be reported"; return 0; }
  fi
  for controllers in "${missing[@]}"; do
    if mkdir -p "/sys/fs/cgroup/$controllers" && mount -t cgroup -o "$controllers" cgroup "/sys/fs/cgroup/$controllers"; then
      say "cgroup v1 hierarchy $controllers had no mount (OOM events need one); mounted it at /sys/fs/cgroup/$controllers"
    else
      say "WARNING: cgroup v1 hierarchy $controllers has no mount and could not get one: OOM kills will not be reported"
    fi
  done
  if [ -n "$sb_ro" ]; then mount -o remount,ro /sys/fs/cgroup; fi
  if [ -n "$sb_ro" ] && [ -z "$mnt_ro" ]; then mount -o remount,bind,rw /sys/fs/cgroup; fi
  if [ -z "$sb_ro" ] && [ -n "$mnt_ro" ]; then mount -o remount,bind,ro /sys/fs/cgroup; fi
  return 0
}

docker_up() { curl -sf --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }
containerd_up() { ctr --address /run/containerd/containerd.sock version >/dev/null 2>&1; }

start_engines() {
  if [ -d /run/systemd/system ]; then
    systemctl start containerd docker
  else
    # No systemd as PID 1 (containers, CI): run the engines in the background, as
    # containerd.service and docker.service would.
    if ! containerd_up; then
      say "starting containerd (log: $logs/containerd.log)"
      setsid containerd >"$logs/containerd.log" 2>&1 </dev/null &
    fi
    wait_for containerd containerd_up
    if ! docker_up; then
      if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
      fi
      say "starting dockerd (log: $logs/dockerd.log)"
      setsid dockerd --containerd=/run/containerd/containerd.sock >"$logs/dockerd.log" 2>&1 </dev/null &
    fi
  fi
  wait_for dockerd docker_up
  wait_for containerd containerd_up
  say "engines: dockerd $(curl -s --unix-socket /var/run/docker.sock http://localhost/version | sed -n 's/.*"ApiVersion":"\([^"]*\)".*/API \1/p'), containerd up"
}

# The image every example and test uses: busybox-static with its applets linked, built
# locally because there is no registry here. It is a cache outside build/, so it is checked
# on every run (tests/support/cache.sh) and rebuilt unless its recipe label matches and a
# probe runs in it. The recipe is the layout below (busybox_rootfs's body, comments
# aside), the import changes, and the installed busybox binary: an upgrade of
# busybox-static, an edit of the layout, or an image that is not ours rebuilds it.
. "$top/tests/support/cache.sh"
busybox_rootfs() {  # busybox_rootfs DIR
  local root=$1
  mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/www"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
  echo 'daemonlet example' >"$root/www/index.html"
}
busybox_import=(--change 'ENV PATH=/bin')
# What the examples and tests run in it.
busybox_probe=(/bin/sh -c 'for a in sh sleep date test touch httpd; do command -v $a >/dev/null || exit 1; done
  test "$(cat /www/index.html)" = "daemonlet example" && echo ok')

build_test_image() {
  local image=daemonlet/busybox:local hash work
  hash=$(cache_hash "$(declare -f busybox_rootfs)" "${busybox_import[*]}" "$(sha256sum </bin/busybox)")
  cache_lock /run/lock/daemonlet-busybox-image.lock
  if cache_image_ok "$image" "$hash" "${busybox_probe[@]}"; then
    cache_unlock; say "image $image: verified (recipe $hash)"; return
  fi
  if [ "$cache_why" = missing ]; then say "image $image: missing; building"
  else say "image $image: stale/corrupt ($cache_why); rebuilding"; fi
  work=$(mktemp -d)
  busybox_rootfs "$work/root"
  tar -C "$work/root" -cf "$work/busybox.tar" .
  cache_image_import "$work/busybox.tar" "$image" "$hash" "${busybox_import[@]}" \
    || { rm -rf "$work"; say "image $image: docker import failed"; exit 1; }
  rm -rf "$work" "$logs/busybox-image.tar"  # the latter: where older versions kept the tar
  cache_image_ok "$image" "$hash" "${busybox_probe[@]}" \
    || { say "image $image: built, but fails its check ($cache_why)"; exit 1; }
  cache_unlock
  say "image $image: built from busybox-static $(dpkg-query -W -f='${Version}' busybox-static) and verified (recipe $hash)"
}

build() {  # build DIR [CMAKE-ARGS...]: configure and build every target of DIR
  local dir=$1 name; shift
  name=$(basename "$dir")
  say "building in $dir"
  cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$logs/cmake-$name.log" 2>&1 \
    || { cat "$logs/cmake-$name.log"; exit 1; }
  cmake --build "$dir" -j"$(nproc)" >"$logs/build-$name.log" 2>&1 || { tail -60 "$logs/build-$name.log"; exit 1; }
  say "built $dir/agent/daemonlet"
}

# sanitizer_options DIR: the test job's options, one VAR=VALUE a line. Every report goes to a
# file named after its program and pid in DIR, not to stderr: tests that keep only part of a
# log, drop an exit code, or kill their agent would lose it there.
sanitizer_options() {
  echo "ASAN_OPTIONS=detect_leaks=1:log_path=$1/report:log_exe_name=1"
  echo "UBSAN_OPTIONS=print_stacktrace=1:log_path=$1/report:log_exe_name=1"
}

# report_sanitizer_findings DIR: prints the head of each report in DIR; fails if there is one.
report_sanitizer_findings() {
  local dir=$1 f n
  [ -d "$dir" ] || { echo "FAIL: no sanitizer report directory $dir: reports may be lost"; return 1; }
  n=$(find "$dir" -type f | wc -l)
  [ "$n" = 0 ] && { say "sanitizer reports: none"; return 0; }
  echo "=== sanitizer reports: $n (full text in $dir) ==="
  for f in "$dir"/*; do
    # The file says the program and pid; its time, next to the ctest log's, says the test.
    echo "--- $(basename "$f"), written $(date -r "$f" +%T)"
    grep -m1 -E "SUMMARY: |Sanitizer has encountered a fatal error" "$f" || true
    head -30 "$f"
  done
  echo "FAIL: $n sanitizer report(s) above: the run fails, whatever ctest says below"
  return 1
}

if [ "$mode" = cgroup-plan ]; then cgroup_hierarchies_to_mount; exit 0; fi
if [ "$mode" = sanitizer-findings ]; then report_sanitizer_findings "${2:?usage: $0 sanitizer-findings DIR}"; exit; fi
if [ "$mode" = sanitizer-options ]; then sanitizer_options "${2:?usage: $0 sanitizer-options DIR}"; exit 0; fi
mkdir -p "$logs"
install_packages
mount_cgroup_hierarchies
start_engines
build_test_image
case "$mode" in
  setup) build "$build" ;;
  test)
    # Every suite runs on an ASan+UBSan tree, so each unit, contract, e2e, systemd and chaos
    # test is a sanitizer run too. -O0 -g1 because it compiles in about 1.2x a release
    # build's time, where -O1 takes 3x (docs/reliability.md). The ThreadSanitizer tree of
    # the HTTP worker thread's suite (control_endpoint_tests) is built by its own test,
    # niced, beside the engine tests; so is the fuzz tree of the 30 s fuzz smoke.
    tree=$build/asan
    build "$tree" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -g1" -DDAEMONLET_SANITIZE=ON \
      -DDAEMONLET_FUZZ_BUILD="$build/fuzz" -DDAEMONLET_TSAN_BUILD="$build/tsan"
    # Every sanitizer report of the run goes to a file (sanitizer_options); the run fails on
    # any report, whatever the tests said.
    reports=$tree/sanitizer-reports
    rm -rf "$reports" && mkdir -p "$reports"
    while IFS= read -r option; do export "${option?}"; done < <(sanitizer_options "$reports")
    cd "$tree"
    # ctest's own output streams as it runs; the digest after it names each failed check
    # even where a log is kept only in part, and ends with ctest's summary again.
    set +e
    # -j3: the engine tests hold the lock "engines" one at a time and mostly wait; the two
    # other slots keep both cores busy with the unit suites, the TSan tree and the fuzz smoke.
    ctest --output-on-failure --timeout 900 -j3 2>&1 | tee "$logs/ctest.log"
    code=${PIPESTATUS[0]}
    report_sanitizer_findings "$reports" || code=1
    # The run ends with ctest's summary line, after the findings too.
    awk -v reprint=1 -f "$top/tests/ctest_failure_digest.awk" "$logs/ctest.log"
    exit "$code"
    ;;
  run)
    build "$build"
    say "running the agent on the bundled examples ($top/packaging/examples/definitions); Ctrl-C stops it"
    exec "$build/agent/daemonlet" run --source "$top/packaging/examples/definitions" \
      --state-dir /var/lib/daemonlet "${@:2}"
    ;;
esac

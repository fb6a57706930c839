# Shared by the real-systemd tests: a Debian bookworm systemd rootfs, built once with
# mmdebstrap and kept (self-checking) under /var/cache/daemonlet-test, the docker image
# imported from it, and boxes booted from that image against the machine's dockerd
# through its mounted socket. Source after tests/e2e/lib.sh and tests/support/cache.sh,
# with `work` set to the test's scratch directory.
#
# Both caches live outside build/, so both are checked before each use
# (tests/support/cache.sh): the image against its recipe label and a probe on every run,
# the tar, when the image must be imported from it, against its stamp (recipe hash,
# sha256) and its listing. What fails is rebuilt. The recipe is the mmdebstrap command
# line: change it, or bump its "v4" to take newer packages, and both are rebuilt.
# The output name must end in .tar: mmdebstrap picks its format from the name, and
# anything else gives a directory (--format=tar says it twice).
# containerd is there for the package's dependency (docker.io | containerd); it is masked,
# since the boxes use the machine's dockerd. The gRPC libraries are the containerd
# adapter's: the agent built on the host runs in the box. libatomic1 is what the ASan+UBSan
# build of the containerd module needs (the test command's tree is that build).
systemd_image=daemonlet-test/systemd:bookworm-v5
systemd_cache=/var/cache/daemonlet-test
mm_args=(--variant=apt --format=tar
  --include=systemd,systemd-sysv,dbus,libyaml-cpp0.7,libfmt9,libcurl4,libssl3,libsystemd0,libgrpc++1.51,libgrpc29,libprotobuf32,libabsl20220623,libatomic1,ca-certificates,curl,containerd
  '--customize-hook=chroot "$1" systemctl mask containerd.service'
  bookworm)
systemd_recipe="systemd rootfs v5: mmdebstrap ${mm_args[*]}"
systemd_hash=$(cache_hash "$systemd_recipe")
systemd_rootfs=$systemd_cache/rootfs-v5.tar
rootfs_has=('lib/systemd/systemd|usr/lib/systemd/systemd' 'bin/systemctl|usr/bin/systemctl' usr/bin/busctl
  usr/bin/systemd-analyze usr/bin/systemd-inhibit 'bin/systemd-tmpfiles|usr/bin/systemd-tmpfiles'
  usr/bin/dbus-daemon usr/bin/curl usr/bin/ldd etc/ssl/certs/ca-certificates.crt usr/bin/containerd
  usr/bin/deb-systemd-helper usr/bin/systemd-sysusers)

_rootfs_ok() { cache_file_ok "$systemd_rootfs" "$systemd_hash" && cache_tar_has "$systemd_rootfs" "${rootfs_has[@]}"; }
_image_ok() {
  cache_image_ok "$systemd_image" "$systemd_hash" /bin/sh -c \
    'test -x /lib/systemd/systemd || exit 1; for c in systemctl busctl systemd-analyze systemd-inhibit curl dpkg deb-systemd-helper; do command -v $c >/dev/null || exit 1; done; echo ok'
}
_untrusted() {  # _untrusted WHAT VERB
  if [ "$cache_why" = missing ]; then say "cache $1: missing; $2"; else say "cache $1: stale/corrupt ($cache_why); $2"; fi
}

# systemd_image_ready: the image exists and verifies, built from the rootfs as needed.
systemd_image_ready() {
  local t0 partial=$systemd_cache/rootfs-v5.partial.tar
  t0=$(date +%s)
  mkdir -p "$systemd_cache"
  cache_lock "$systemd_cache/.lock" || return 1
  if _image_ok; then
    say "cache $systemd_image: verified (recipe $systemd_hash)"
  else
    _untrusted "$systemd_image" "importing it from $systemd_rootfs"
    if _rootfs_ok; then
      say "cache $systemd_rootfs: verified (recipe $systemd_hash)"
    else
      _untrusted "$systemd_rootfs" "building it with mmdebstrap (1-3 min)"
      # Leftovers of an interrupted build, or of the old .tar.partial name (a directory).
      rm -rf "$partial" "$systemd_cache/rootfs.tar.partial"
      mmdebstrap "${mm_args[@]}" "$partial" >"$work/mmdebstrap.log" 2>&1 \
        || { tail -20 "$work/mmdebstrap.log"; rm -rf "$partial"; bad "mmdebstrap failed"; cache_unlock; return 1; }
      cache_tar_has "$partial" "${rootfs_has[@]}" \
        || { rm -rf "$partial"; bad "mmdebstrap's rootfs fails its check ($cache_why): see the recipe above"; cache_unlock; return 1; }
      cache_file_commit "$partial" "$systemd_rootfs" "$systemd_hash" "$systemd_recipe"
      say "cache $systemd_rootfs: built and verified (recipe $systemd_hash)"
    fi
    cache_image_import "$systemd_rootfs" "$systemd_image" "$systemd_hash" || { bad "docker import $systemd_rootfs failed"; cache_unlock; return 1; }
    _image_ok || { bad "the image just imported from $systemd_rootfs fails its check ($cache_why)"; cache_unlock; return 1; }
    say "cache $systemd_image: imported and verified (recipe $systemd_hash)"
  fi
  cache_unlock
  say "caches ready in $(( $(date +%s) - t0 )) s"
}

# box_create NAME IMAGE [DOCKER CREATE ARGS...]: a systemd box, not started yet. The flags
# are the ones that work here (--privileged is refused): systemd needs SYS_ADMIN, the
# host's cgroup tree and its own /run; the agent gets the machine's dockerd.
box_create() {
  local box=$1 image=$2
  shift 2
  docker create --name "$box" --cap-add SYS_ADMIN --security-opt seccomp=unconfined --cgroupns=host \
    -v /sys/fs/cgroup:/sys/fs/cgroup --tmpfs /run --tmpfs /run/lock \
    -v /var/run/docker.sock:/var/run/docker.sock "$@" "$image" /lib/systemd/systemd >/dev/null
}

# box_boot NAME: starts it and waits until systemd is up.
box_boot() {
  local box=$1
  docker start "$box" >/dev/null || return 1
  _booted() { local s; s=$(docker exec "$box" systemctl is-system-running 2>/dev/null); [ "$s" = running ] || [ "$s" = degraded ]; }
  wait_for 60 _booted || { bad "$box: systemd did not boot: $(docker exec "$box" systemctl is-system-running 2>&1)"; return 1; }
}

# box_powered_off NAME: the box has stopped.
box_powered_off() { [ "$(docker inspect -f '{{.State.Running}}' "$1")" = false ]; }

# box_sanitizer_dropin BIN BOX: for an ASan build of BIN, a drop-in for daemonlet.service in
# BOX that turns its exit-time leak check off. LeakSanitizer stops the agent's threads with
# ptrace, which the unit's SystemCallFilter= refuses; every stop would end in "LeakSanitizer
# has encountered a fatal error" and exit 1. ASan and UBSan errors still stop the agent and
# reach its log, which the tests read (sanitizer_report_in). Nothing for a release binary.
box_sanitizer_dropin() {
  local bin=$1 box=$2 conf
  grep -qa __asan_init "$bin" || return 0
  conf=$(mktemp) && printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' >"$conf"
  docker exec "$box" mkdir -p /etc/systemd/system/daemonlet.service.d &&
    docker cp "$conf" "$box:/etc/systemd/system/daemonlet.service.d/zz-test-sanitizer.conf" >/dev/null
  local rc=$?
  rm -f "$conf"
  return $rc
}

# sanitizer_report_in WHAT < TEXT: fails the test if TEXT (a box agent's stderr or journal)
# holds a sanitizer report. The test job's report directory is not in the box, so the
# reports of agents there go to their stderr.
sanitizer_report_in() {
  local found
  found=$(grep -E -m 20 "==[0-9]+==.*Sanitizer|Sanitizer has encountered|runtime error:|SUMMARY: [A-Za-z]+Sanitizer")
  [ -z "$found" ] || bad "a sanitizer report in $1:
$found"
}

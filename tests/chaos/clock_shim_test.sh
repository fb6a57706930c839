#!/usr/bin/env bash
# The chaos driver's clock_step fault is only as real as its shim: a step written while a
# process runs moves that process's wall clock by exactly the step, and its monotonic
# clock not at all (what a real clock step does; libfaketime moved timerfd deadlines too).
set -u
shim=$1
file=$(mktemp /tmp/dl-clock-XXXXXX)
trap 'rm -f "$file"' EXIT
echo "+0" >"$file"
out=$(DAEMONLET_CLOCK_SHIFT_FILE=$file LD_PRELOAD=$shim python3 - "$file" <<'PY'
import sys, time  # clock 5: CLOCK_REALTIME_COARSE
path = sys.argv[1]
r0, m0, s0 = time.time(), time.monotonic(), time.clock_gettime(5)
with open(path, "w") as f:
    f.write("-86400\n")
time.sleep(0.3)  # the shim re-reads the file at most every 50 ms
r1, m1, s1 = time.time(), time.monotonic(), time.clock_gettime(5)
# the step alone: what each wall clock moved beyond the monotonic clock (the sleep, however
# long a loaded machine makes it)
print("%d %d %.1f" % (round((r1 - r0) - (m1 - m0)), round((s1 - s0) - (m1 - m0)), m1 - m0))
PY
)
echo "clock shim: wall clock stepped $(echo "$out" | cut -d' ' -f1) s (coarse $(echo "$out" | cut -d' ' -f2) s), monotonic $(echo "$out" | cut -d' ' -f3) s over a 0.3 s sleep"
read -r wall coarse mono <<<"$out"
# the monotonic clock moves by the sleep and whatever a loaded machine adds, never by the step
if [ "$wall" = -86400 ] && [ "$coarse" = -86400 ] && awk -v m="$mono" 'BEGIN { exit !(m >= 0.2 && m < 60) }'; then
  echo "clock shim: ok"
  exit 0
fi
echo "FAIL: clock shim: want wall and coarse -86400 s and monotonic about 0.3 s, got '$out'"
exit 1

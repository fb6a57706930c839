#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 and runs them on seeds assembled at run time
# (tests/fuzz/seeds.py) plus a corpus kept in the build directory.
#   fuzz.sh [-B BUILD] [-j JOBS] all|TARGET... SECONDS
# Each target runs SECONDS (niced), JOBS of them at a time (default 1). A crash, a leak, a timeout (10 s per input) or
# an out-of-memory (2 GiB) fails the run; the input is left in BUILD/artifacts/ and its
# name printed: turn it into a unit test, fix, and run again. Per target, one line:
#   fuzz: TARGET: N executions in S s, corpus C inputs (from K seeds), ok
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-fuzz
jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    -B) build=$2; shift 2 ;;
    -j) jobs=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: $0 [-B BUILD] all|TARGET... SECONDS" >&2; exit 2; }
seconds=${*: -1}
set -- "${@:1:$#-1}"
all=(definition agent_config desired_state docker_json introspection control_response)
[ "$1" = all ] && set -- "${all[@]}"

mkdir -p "$build"
CXX=clang++-14 cmake -S "$top" -B "$build" -DDAEMONLET_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >"$build/fuzz-cmake.log" 2>&1 \
  || { cat "$build/fuzz-cmake.log"; exit 1; }
targets=()
for t in "$@"; do targets+=("${t}_fuzzer"); done
nice -n 19 cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$build/fuzz-build.log" 2>&1 \
  || { tail -40 "$build/fuzz-build.log"; exit 1; }
seeds=$build/seeds
python3 "$top/tests/fuzz/seeds.py" "$top" "$seeds" >"$build/seeds.txt"
mkdir -p "$build/artifacts" "$build/stats"
# run_target TARGET: one fuzzing run; its one result line goes to $build/stats/TARGET.result
run_target() {
  local t=$1 corpus=$build/corpus/$1 log=$build/stats/$1.log code execs size nseeds
  mkdir -p "$corpus"
  # One process (no -fork), so that the final stats are the whole run's. Leak detection on.
  nice -n 19 "$build/tests/fuzz/${t}_fuzzer" "$corpus" "$seeds/$t" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" >"$log" 2>&1
  code=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  size=$(find "$corpus" -type f | wc -l)
  nseeds=$(awk -v t="$t" '$1 == t { print $2 }' "$build/seeds.txt")
  if [ "$code" = 0 ]; then
    echo "fuzz: $t: ${execs:-?} executions in $seconds s, corpus $size inputs (from $nseeds seeds), ok" >"$build/stats/$t.result"
  else
    { echo "fuzz: $t: FAILED (exit $code) after ${execs:-?} executions; log $log"
      grep -E "^==[0-9]+==ERROR|SUMMARY|Test unit written|runtime error|deadly signal" "$log" | head -8; } >"$build/stats/$t.result"
  fi
  return "$code"
}

fail=0
pids=()
for t in "$@"; do
  run_target "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}" || fail=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
for t in "$@"; do cat "$build/stats/$t.result"; done
exit $fail

#!/usr/bin/env bash
# Builds a ThreadSanitizer tree of control_endpoint_tests, the suite of the agent's HTTP
# worker thread (libcurl's HttpWorker, against a real HTTP server), then runs it. The
# build is niced so that it takes only what the engine tests leave idle, and only the
# targets that suite links are built. -O1: TSan at -O0 is too slow to run the suite.
#   tsan_suite.sh SOURCE_DIR TREE
set -uo pipefail
src=$1 tree=$2
mkdir -p "$tree"
t0=$(date +%s)
if ! nice -n 19 cmake -S "$src" -B "$tree" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
     -DDAEMONLET_TSAN=ON >"$tree/configure.log" 2>&1; then
  echo "FAIL: configuring the TSan tree in $tree:"; tail -40 "$tree/configure.log"; exit 1
fi
if ! nice -n 19 cmake --build "$tree" -j2 --target control_endpoint_tests >"$tree/build.log" 2>&1; then
  echo "FAIL: building control_endpoint_tests under TSan:"; tail -60 "$tree/build.log"; exit 1
fi
echo "tsan: built control_endpoint_tests in $(( $(date +%s) - t0 )) s"
# halt_on_error: the first race fails the run, with both stacks.
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$tree/tests/control/control_endpoint_tests"

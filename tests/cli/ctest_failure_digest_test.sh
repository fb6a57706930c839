#!/usr/bin/env bash
# The test job's digest (tests/ctest_failure_digest.awk) on made-up ctest logs: each failed
# or timed-out test is named with its FAIL lines and its last lines, a passed one is not,
# and the output ends with ctest's summary line either way.
#   ctest_failure_digest_test.sh DIGEST_AWK
set -uo pipefail
digest=$1
name=digest fail=0
bad() { echo "FAIL: $*"; fail=1; }
failed_log() {
  cat <<'LOG'
      Start 2: executor: a
  1/3 Test #2: executor: a ..........***Failed    1.0 sec
setting up
==123==ERROR: AddressSanitizer: heap-use-after-free
more context
      Start 3: e2e: b
  2/3 Test #3: e2e: b ...........   Passed  1 sec
FAIL: not a failed test's line
  3/3 Test #4: e2e: c ...........***Timeout  900 sec
waiting for the agent

67% tests passed, 2 tests failed out of 3

Total Test time (real) = 901 sec
LOG
}
out=$(failed_log | awk -f "$digest")
grep -q -- "--- executor: a (failed)" <<<"$out" || bad "the failed test is not named: $out"
grep -q "==123==ERROR: AddressSanitizer" <<<"$out" || bad "its sanitizer line is not shown: $out"
grep -q "    more context" <<<"$out" || bad "its last lines are not shown: $out"
grep -q -- "--- e2e: c (timed out)" <<<"$out" || bad "the timed-out test is not named: $out"
grep -q "not a failed test's line" <<<"$out" && bad "a passed test's output is in the digest: $out"
[ "$(tail -1 <<<"$out")" = "Total Test time (real) = 901 sec" ] || bad "does not end with ctest's summary: $(tail -2 <<<"$out")"

passed=$'  1/1 Test #1: a ....   Passed 1 sec\n\n100% tests passed, 0 tests failed out of 1\n\nTotal Test time (real) =   1.00 sec'
[ -z "$(awk -f "$digest" <<<"$passed")" ] || bad "a passing run got a digest"
[ "$(awk -v reprint=1 -f "$digest" <<<"$passed" | tail -1)" = "Total Test time (real) =   1.00 sec" ] \
  || bad "reprint=1 does not end a passing run with ctest's summary"
[ "$fail" = 0 ] && echo "digest: failed and timed-out tests named with their lines; ends with ctest's summary"
exit $fail

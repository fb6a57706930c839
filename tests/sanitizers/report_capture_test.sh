#!/usr/bin/env bash
# The test job fails on a sanitizer report that no test read (dev-setup.sh test): a leak and
# an undefined behaviour, from a program run as the tests run theirs, each land in a file
# named after the program, and `dev-setup.sh sanitizer-findings` fails on them and names them.
#   report_capture_test.sh SOURCE_DIR PROGRAM
set -uo pipefail
top=$1 program=$2
name=sanitizers fail=0
. "$top/tests/e2e/lib.sh"
dir=$(mktemp -d /tmp/dl-sanitizer-XXXXXX)
trap 'rm -rf "$dir"' EXIT
findings() { "$top/packaging/dev-setup.sh" sanitizer-findings "$1"; }
# The options the test job exports, aimed at a directory of this test's own.
options_for() {
  local option
  mkdir "$1" && while IFS= read -r option; do export "${option?}"; done < <("$top/packaging/dev-setup.sh" sanitizer-options "$1")
}

mkdir "$dir/none"
out=$(findings "$dir/none") || bad "no report, yet sanitizer-findings failed: $out"

options_for "$dir/leak"
"$program" 2>"$dir/leak.stderr" && bad "a leak, yet the program exited 0"
grep -q "LeakSanitizer" "$dir/leak.stderr" && bad "the leak report went to stderr, not to the file"
out=$(findings "$dir/leak") && bad "a leak report, yet sanitizer-findings passed: $out"
grep -q "report.$(basename "$program").[0-9]*" <<<"$out" || bad "the report's file is not named after the program: $out"
grep -q "ERROR: LeakSanitizer: detected memory leaks" <<<"$out" || bad "the leak is not shown: $out"
grep -q "FAIL: 1 sanitizer report" <<<"$out" || bad "the failure is not said: $out"

options_for "$dir/ub"
"$program" overflow 2>/dev/null && bad "a signed overflow, yet the program exited 0"
out=$(findings "$dir/ub") && bad "an overflow report, yet sanitizer-findings passed: $out"
grep -q "runtime error: signed integer overflow" <<<"$out" || bad "the overflow is not shown: $out"

[ "$fail" = 0 ] && say "leak and overflow reports reach their files; sanitizer-findings fails on them"
exit $fail

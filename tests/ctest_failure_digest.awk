# Reads ctest's output (run with --output-on-failure) and prints, for each test that failed
# or timed out, its first FAIL lines and its last lines (where a crash or a sanitizer's exit
# shows); then ctest's summary again, so that a log cut to its
# head and tail (as CI records keep it) still says which check failed, and still ends with
# the summary line. With -v reprint=1 the summary comes again even when no test failed
# (the test job printed something of its own after ctest).
/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: / {
  current = ""
  if ($0 ~ /\*\*\*(Failed|Timeout|Exception)|Not Run/) {
    current = $0
    sub(/^ *[0-9]+\/[0-9]+ Test +#[0-9]+: /, "", current)
    sub(/ \.+.*$/, "", current)
    order[++failed] = current
    status[current] = ($0 ~ /\*\*\*Timeout/) ? "timed out" : "failed"
  }
  next
}
/^ *Start +[0-9]+: / { current = ""; next }
/^[0-9]+% tests passed/ { summary = 1; current = "" }
summary { tail = tail $0 "\n"; next }
current != "" && $0 != "" {
  last[current, ++seen[current] % 8] = substr($0, 1, 300)
}
current != "" && /FAIL|FAILED|failed:|Error|error:|==[0-9]+==ERROR|SUMMARY: [A-Za-z]+Sanitizer|WARNING: ThreadSanitizer|Sanitizer has encountered/ && lines[current] < 12 {
  lines[current]++
  digest[current] = digest[current] "    " substr($0, 1, 300) "\n"
}
END {
  if (failed == 0) {
    if (reprint) printf "\n%s", tail
    exit
  }
  print ""
  print "=== failure digest: the first FAIL lines and the last lines of each failed test ==="
  for (i = 1; i <= failed; i++) {
    t = order[i]
    print "--- " t " (" status[t] ")"
    printf "%s", (digest[t] == "" ? "    (no FAIL line in its output)\n" : digest[t])
    n = seen[t] < 8 ? seen[t] : 8
    if (n > 0) print "  its last " n " line(s):"
    for (k = seen[t] - n + 1; k <= seen[t]; k++) print "    " last[t, k % 8]
  }
  print ""
  printf "%s", tail
}

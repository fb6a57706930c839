# Shared by the shell end-to-end tests: messages, failures, polling.
# Each test sets `name` (the prefix of its messages) and `fail=0` before sourcing.
say() { echo "$name: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
# wait_for SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds or time is up.
# COMMAND is run anew each time: pass a function, not "test $(...)".
wait_for() {
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  until "$@"; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.2
  done
}

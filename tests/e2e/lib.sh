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
# only_revision_running FAMILY REV OLD_ID: one container of FAMILY runs, at revision REV,
# and the container OLD_ID is gone.
only_revision_running() {
  local ids
  ids=$(engine_ids "label=io.daemonlet.family=$1")
  [ "$(echo "$ids" | grep -c .)" = 1 ] &&
  [ "$(engine_label "$ids" io.daemonlet.revision)" = "$2" ] &&
  [ -z "$(engine_ids -a "label=io.daemonlet.family=$1" | grep -F "$3")" ]
}
# check_rollout_order FAMILY SINCE OLD NEW [WHAT]: from the engine's events since SINCE
# (unix seconds), revision NEW of FAMILY must have started before revision OLD died (P1).
check_rollout_order() {
  local family=$1 since=$2 old=$3 new=$4 what=${5:-rollout} events new_start old_die
  events=$(engine_events "$since" | awk -v f="$family" '$4 == f { print $1, $5, $2 }')
  new_start=$(echo "$events" | awk -v r="$new" '$1 == "start" && $2 == r { print $3; exit }')
  old_die=$(echo "$events" | awk -v r="$old" '$1 == "die" && $2 == r { print $3; exit }')
  if [ -z "$new_start" ] || [ -z "$old_die" ] || [ "$new_start" -ge "$old_die" ]; then
    bad "$what order: r$new start $new_start, r$old die $old_die"; echo "$events"
  else
    say "$what: r$new started $(( (old_die - new_start) / 1000000 )) ms before r$old stopped; one copy left"
  fi
}
. "$(dirname "${BASH_SOURCE[0]}")/engine.sh"

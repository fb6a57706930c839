#!/usr/bin/env bash
# daemonlet(8) against the binary's own --help: the man page is hand-written, so this is
# what keeps it true. Fails when
#   - a flag that `daemonlet --help` or a command's --help prints is missing from the page;
#   - the page's SYNOPSIS, COMMANDS or OPTIONS name a flag no --help prints;
#   - a command of `daemonlet --help` has no SYNOPSIS line, or its SYNOPSIS line differs
#     from the command's --help usage line (for run: in its flags or their arguments);
#   - a `daemonlet run` flag has no entry in OPTIONS;
#   - the page does not render cleanly (`man --warnings`), or man is not installed.
# Usage: manpage_test.sh DAEMONLET_BINARY PAGE
set -u
bin=${1:?usage: $0 DAEMONLET_BINARY PAGE}
page=${2:?usage: $0 DAEMONLET_BINARY PAGE}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

[ -x "$bin" ] || { echo "FAIL: $bin is not an executable"; exit 1; }
[ -r "$page" ] || { echo "FAIL: $page is not readable"; exit 1; }
# Not a skip: a page nobody can render is not checked (packaging/dev-setup.sh installs it).
command -v man >/dev/null || { echo "FAIL: man not found: apt-get install man-db groff-base"; exit 1; }

export MANPAGER=cat PAGER=cat MANWIDTH=200 LC_ALL=C.UTF-8
unset MAN_KEEP_FORMATTING
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. Renders without a warning.
if ! man --warnings -l -E UTF-8 "$page" >"$work/page.txt" 2>"$work/warnings"; then
  bad "man --warnings -l -E UTF-8 $page failed:"; cat "$work/warnings"
fi
if [ -s "$work/warnings" ]; then bad "$page renders with warnings:"; cat "$work/warnings"; fi
[ -s "$work/page.txt" ] || { echo "FAIL: $page rendered to nothing"; exit 1; }
# Options written with bare '-' render as U+2010 hyphens outside Debian's groff and
# cannot be pasted into a shell.
if grep -n -- '--' "$page" | grep -v '^[0-9]*:\.\\"' >"$work/bare"; then
  bad "write options as \\-\\-flag in the roff source:"; cat "$work/bare"
fi

# 2. What the binary says.
commands=$("$bin" --help | sed -nE 's/^  daemonlet ([a-z]+).*/\1/p')
[ -n "$commands" ] || { echo "FAIL: no commands found in '$bin --help'"; exit 1; }
"$bin" --help >"$work/help.main" || bad "$bin --help exited $?"
for c in $commands; do
  [ "$c" = version ] && continue  # `version --help` prints the version
  "$bin" "$c" --help >"$work/help.$c" || bad "$bin $c --help exited $?"
done
flags_in() { grep -ohE -- '--[a-z][a-z0-9-]*' "$@" | sort -u; }
flags_in "$work"/help.* >"$work/help.flags"

# Sections of the rendered page (headings start in column 0).
section() { awk -v want="$1" '/^[A-Z]/ { on = ($0 == want); next } on' "$work/page.txt"; }
section SYNOPSIS >"$work/synopsis"
{ section SYNOPSIS; section COMMANDS; section OPTIONS; } >"$work/documented"
flags_in "$work/page.txt" >"$work/page.flags"
flags_in "$work/documented" >"$work/documented.flags"

# 3. Every flag the binary prints is on the page, and the page invents none.
while read -r f; do bad "'$f' is printed by --help but not on $page"; done \
  < <(comm -23 "$work/help.flags" "$work/page.flags")
while read -r f; do bad "'$f' is in the SYNOPSIS, COMMANDS or OPTIONS of $page but no --help prints it"; done \
  < <(comm -13 "$work/help.flags" "$work/documented.flags")

# 4. Each command's SYNOPSIS entry says what its --help usage line says. For run, whose
# usage line is "[flags]", its flags with their arguments: a flag's argument is the word
# right after it ("--config PATH", "--log-format text|json"); a flag followed by two
# spaces (the description column) takes none.
pairs() { grep -oE -- '--[a-z][a-z0-9-]*( [^] ]+)?' | grep -v -- '^--help$' | sort -u; }
for c in $commands; do
  entry=$(awk -v c="$c" '
    { line = $0; sub(/^ +/, "", line) }
    line ~ /^daemonlet / { split(line, w, " "); on = (w[2] == c) }
    on && line != "" { printf "%s ", line }' "$work/synopsis" | tr -s ' ' | sed 's/ $//')
  if [ -z "$entry" ]; then bad "command '$c' (from --help) has no SYNOPSIS line 'daemonlet $c ...'"; continue; fi
  [ "$c" = version ] && continue
  if [ "$c" = run ]; then
    want=$(grep -E '^ +--' "$work/help.run" | pairs)  # one option a line
    have=$(pairs <<<"$entry")
  else
    want=$(sed -n 's/^Usage: //p' "$work/help.$c" | tr -s ' ')
    have=$entry
  fi
  if [ -z "$want" ]; then bad "'$bin $c --help' shows no usage"; continue; fi
  if [ "$want" != "$have" ]; then
    bad "SYNOPSIS of '$c' disagrees with '$bin $c --help':"
    diff <(echo "$want") <(echo "$have") | sed -n 's/^</  --help: /p; s/^>/  page:   /p'
  fi
done

# 5. OPTIONS has an entry (a tag line) for every flag of `daemonlet run`.
section OPTIONS >"$work/options"
for f in $(grep -E '^ +--' "$work/help.run" | flags_in /dev/stdin); do
  grep -qE -- "^ +$f( |$)" "$work/options" || bad "OPTIONS has no entry for 'daemonlet run $f'"
done

[ "$fail" = 0 ] && echo "ok: $page agrees with --help ($(wc -l <"$work/help.flags") flags, $(wc -w <<<"$commands") commands)"
exit "$fail"

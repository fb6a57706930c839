# Self-checking caches for the test set-up (sourced by packaging/dev-setup.sh and the
# shell tests). A cache kept across runs outside build/ is trusted only when it verifies
# against the recipe that would rebuild it; anything else is rebuilt, never used:
#
#   file cache   FILE + FILE.stamp. The stamp is written only after the new file passed
#                its content check, and records the recipe hash and the file's sha256,
#                so a changed recipe, a truncated, edited or half-written file, or a
#                file with no stamp (an interrupted build) is rebuilt.
#   docker image carries the label io.daemonlet.test.recipe=<recipe hash> and must pass
#                a probe (a command run in a throw-away container).
#
# Builders write to a temporary name and rename into place only after verification.
# Checks return 1 and leave the reason in $cache_why. Safe under `set -euo pipefail`.

cache_label=io.daemonlet.test.recipe
cache_why=

# cache_hash TEXT...: a short, stable hash of a recipe.
cache_hash() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

# cache_lock FILE: holds an exclusive lock on FILE (fd 9) until cache_unlock or the shell
# exits, so two runs never check and build the same cache at once. Waits up to 15 minutes
# for the other run.
cache_lock() {
  exec 9>"$1"
  flock -w 900 9 || { echo "cache: could not lock $1 (another run is building?)" >&2; return 1; }
}
cache_unlock() { exec 9>&-; }

# cache_file_ok FILE HASH: FILE is a regular, non-empty file whose stamp names HASH and
# FILE's current sha256.
cache_file_ok() {
  local file=$1 hash=$2 stamp=$1.stamp sum
  if [ -d "$file" ]; then cache_why="a directory, not a file"; return 1; fi
  if [ ! -e "$file" ]; then cache_why="missing"; return 1; fi
  if [ ! -f "$file" ]; then cache_why="not a regular file"; return 1; fi
  if [ ! -s "$file" ]; then cache_why="empty"; return 1; fi
  if [ ! -f "$stamp" ]; then cache_why="no stamp $stamp (interrupted build?)"; return 1; fi
  if [ "$(sed -n 's/^recipe //p' "$stamp")" != "$hash" ]; then
    cache_why="built from recipe $(sed -n 's/^recipe //p' "$stamp"), want $hash"; return 1
  fi
  sum=$(sha256sum <"$file" | cut -d' ' -f1)
  if [ "$(sed -n 's/^sha256 //p' "$stamp")" != "$sum" ]; then
    cache_why="sha256 differs from its stamp: truncated or modified"; return 1
  fi
}

# cache_file_commit PARTIAL FILE HASH [RECIPE TEXT]: stamps the verified PARTIAL and
# renames it to FILE. The old stamp goes first: a crash in between leaves a file with
# no stamp, which is rebuilt.
cache_file_commit() {
  local partial=$1 file=$2 hash=$3 text=${4:-}
  rm -f "$file.stamp"
  { echo "recipe $hash"
    echo "sha256 $(sha256sum <"$partial" | cut -d' ' -f1)"
    echo "built $(date -u +%FT%TZ)"
    [ -z "$text" ] || echo "recipe-text $text"
  } >"$file.stamp.partial"
  rm -rf "$file"
  mv -f "$partial" "$file"
  mv -f "$file.stamp.partial" "$file.stamp"
}

# cache_tar_has TAR PATH...: TAR reads to the end without error and lists every PATH
# (relative, no leading ./). A PATH may name alternatives as "a|b" (merged /usr or not).
cache_tar_has() {
  local tar=$1 listing status=0 want alt found
  shift
  listing=$(tar -tf "$tar" 2>&1) || status=$?
  if [ "$status" != 0 ]; then
    cache_why="tar -tf fails: $(grep -m1 '^tar:' <<<"$listing")"; return 1
  fi
  listing=$(sed 's|^\./||' <<<"$listing")
  for want in "$@"; do
    found=
    for alt in ${want//|/ }; do
      if grep -qxF -e "$alt" -e "$alt/" <<<"$listing"; then found=1; break; fi
    done
    [ -n "$found" ] || { cache_why="has no $want"; return 1; }
  done
}

# cache_image_ok IMAGE HASH PROBE...: IMAGE exists, is labelled with HASH, and
# `docker run IMAGE PROBE...` succeeds and prints "ok".
cache_image_ok() {
  local image=$1 hash=$2 label out
  shift 2
  if ! label=$(docker image inspect -f "{{index .Config.Labels \"$cache_label\"}}" "$image" 2>/dev/null); then
    cache_why="missing"; return 1
  fi
  case "$label" in
    "$hash") ;;
    ""|"<no value>") cache_why="no $cache_label label: not built by this recipe"; return 1 ;;
    *) cache_why="label $cache_label=$label, want $hash"; return 1 ;;
  esac
  # A named container removed here rather than --rm, whose removal may still be under
  # way when the caller goes on to remove the image.
  local probe=dl-cache-probe-$$-$RANDOM status=0 line
  out=$(docker run --name "$probe" --network none "$image" "$@" 2>&1) || status=$?
  docker rm -f "$probe" >/dev/null 2>&1 || true
  if [ "$status" != 0 ] || [ "$(tail -1 <<<"$out")" != ok ]; then
    # docker's own errors (125-127) say what is wrong on the first line, the probe's on the last.
    if [ "$status" -ge 125 ]; then line=$(head -1 <<<"$out"); else line=$(tail -1 <<<"$out"); fi
    cache_why="the probe in it fails (exit $status${line:+: ${line:0:300}})"; return 1
  fi
}

# cache_image_import TAR IMAGE HASH [--change ARG]...: imports TAR as IMAGE labelled
# with HASH, then removes the image the tag pointed at before, if that one is left with
# no tag (another image tagged as IMAGE keeps its own tags) and no container uses it.
cache_image_import() {
  local tar=$1 image=$2 hash=$3 old
  shift 3
  old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  docker import --change "LABEL $cache_label=$hash" "$@" "$tar" "$image" >/dev/null || return 1
  if [ -n "$old" ] && [ "$old" != "$(docker image inspect -f '{{.Id}}' "$image")" ] &&
     [ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
    docker rmi "$old" >/dev/null 2>&1 || true  # fails while a container uses it: then it stays
  fi
}

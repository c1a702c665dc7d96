#!/usr/bin/env bash
# The README's test command from a copy of the repository with nothing beside it, as on a
# fresh clone: proves that no test reads a file outside the repository (or an untracked one).
#
#   bash scripts/fresh-clone-test.sh [cargo test arguments]   # default: --workspace
#
# The copy holds the tracked files (`git ls-files`) as they are in the working tree, with their
# modification times, and builds into the real target directory, so cargo rebuilds only what
# differs and the run costs about as long as the tests take.
#
# Cached test binaries have the checkout's absolute paths compiled in (`CARGO_MANIFEST_DIR`),
# so running them from a copy somewhere else would still read the checkout. Instead, the test
# runs in a private mount namespace (`unshare`; root, or unprivileged user namespaces) in which
# the repository's own path shows the copy and its parent folder holds nothing else (the cargo
# and rustup homes and the target directory are mounted back in). Where namespaces are not
# available, it falls back to a copy at a fixed temporary path with its own target directory
# (`<target>/fresh-clone`: the first such run compiles everything).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
TARGET="$(cargo_target_dir)"
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--workspace)
say() { printf 'fresh-clone: %s\n' "$*" >&2; }

# copy_tracked DEST: the tracked files that exist in the working tree, times and modes kept.
copy_tracked() {
  mkdir -p "$1"
  git ls-files -z --cached | while IFS= read -r -d '' f; do
    [ -e "$f" ] || [ -L "$f" ] || continue # deleted in the working tree, not yet committed
    printf '%s\0' "$f"
  done | xargs -0 -r cp -a --parents -t "$1"
}

PARENT="$(dirname "$ROOT")"
if [ "$PARENT" != / ] && { [ "$(id -u)" = 0 ] && unshare --mount true 2>/dev/null \
  || unshare --user --map-root-user --mount true 2>/dev/null; }; then
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-fresh-clone.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  copy_tracked "$WORK/copy"
  say "$(git ls-files | wc -l) tracked files copied; running 'cargo test ${ARGS[*]}' at $ROOT with nothing else in $PARENT"
  if [ "$(id -u)" = 0 ]; then NS=(unshare --mount --propagation private); else NS=(unshare --user --map-root-user --mount --propagation private); fi
  # Inside: build the new parent folder on a tmpfs (the copy at the repository's name, and
  # every folder the build needs that lives under the parent), then move it over the parent.
  "${NS[@]}" env ROOT="$ROOT" PARENT="$PARENT" WORK="$WORK" TARGET="$TARGET" \
    KEEP="${CARGO_HOME:-$HOME/.cargo}:${RUSTUP_HOME:-$HOME/.rustup}" \
    bash -s -- "${ARGS[@]}" <<'EOF'
set -euo pipefail
NEW="$WORK/parent"
mkdir -p "$NEW"
mount -t tmpfs budget-fresh-clone "$NEW"
name="$(basename "$ROOT")"
mkdir -p "$NEW/$name"
mount --bind "$WORK/copy" "$NEW/$name"
keep() { # keep PATH: make PATH (when it is under the parent) visible at the same place
  local path="$1" rel
  [ -e "$path" ] || return 0
  path="$(cd "$path" && pwd -P)"
  case "$path" in "$PARENT"/*) ;; *) return 0 ;; esac
  rel="${path#"$PARENT"/}"
  mkdir -p "$NEW/$rel"
  mount --bind "$path" "$NEW/$rel"
}
IFS=: read -r -a keeps <<<"$KEEP"
for k in "${keeps[@]}"; do keep "$k"; done
keep "$TARGET"
mount --move "$NEW" "$PARENT"
cd "$ROOT"
if [ -n "$(ls -A "$PARENT" | grep -vx "$name" || true)" ]; then
  echo "fresh-clone: note: $PARENT also shows: $(ls -A "$PARENT" | grep -vx "$name" | tr '\n' ' ')(kept for the toolchain)" >&2
fi
exec cargo test "$@"
EOF
else
  COPY="${TMPDIR:-/tmp}/budget-fresh-clone/$(basename "$ROOT")"
  say "no mount namespace here: testing a copy at $COPY with target dir $TARGET/fresh-clone"
  rm -rf "$COPY"
  copy_tracked "$COPY"
  cd "$COPY"
  CARGO_TARGET_DIR="$TARGET/fresh-clone" cargo test "${ARGS[@]}"
fi

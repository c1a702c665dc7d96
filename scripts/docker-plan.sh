#!/bin/sh
# The Dockerfile's dependency layer: copy the workspace's manifests and lock file to DEST, with
# an empty source for every target, so that `cargo build` there compiles only the
# dependencies. The layer built from DEST changes only when a manifest or Cargo.lock does, so
# a code change does not rebuild every crate. Run from the workspace root:
#
#   sh scripts/docker-plan.sh DEST
#
# (CI runs it on a copy and checks that cargo accepts the result: scripts/docker-check.sh.)
set -eu
dest="$1"
mkdir -p "$dest"
cp Cargo.toml Cargo.lock "$dest/"
# Every package of the workspace (the fuzz crate is a workspace of its own, left out).
find . -name Cargo.toml -not -path ./Cargo.toml -not -path './target/*' -not -path './fuzz/*' \
  -not -path '*/node_modules/*' | while read -r manifest; do
  dir="$(dirname "$manifest")"
  mkdir -p "$dest/$dir/src"
  cp "$manifest" "$dest/$dir/"
  : >"$dest/$dir/src/lib.rs"
  echo 'fn main() {}' >"$dest/$dir/src/main.rs"
  # Targets a manifest names by path ([[bench]] name = "x" → benches/x.rs) must exist.
  for bench in $(sed -n '/^\[\[bench\]\]/,/^$/s/^name *= *"\(.*\)"/\1/p' "$manifest"); do
    mkdir -p "$dest/$dir/benches"
    echo 'fn main() {}' >"$dest/$dir/benches/$bench.rs"
  done
done

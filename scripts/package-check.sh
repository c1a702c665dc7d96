#!/usr/bin/env bash
# The library crates package cleanly: each package holds its sources, README and licence
# files (budget-core its price data, budget-store-sqlite its migrations) and no tests,
# benches or helper binaries; budget-core, which depends on no other crate of the workspace,
# is built from its package (the others would need budget-core on a registry first).
#
#   bash scripts/package-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail() { printf 'package-check: %s\n' "$*" >&2; exit 1; }
for crate in budget-core budget-tower budget-store-sqlite budget-store-postgres; do
  list="$(cargo package --list --allow-dirty -p "$crate" 2>/dev/null)" || fail "cargo package --list -p $crate failed"
  for need in Cargo.toml README.md LICENSE-MIT LICENSE-APACHE src/lib.rs; do
    grep -qx "$need" <<<"$list" || fail "$crate: the package lacks $need"
  done
  junk="$(grep -E '^(tests|benches|proptest-regressions|src/bin)/' <<<"$list" || true)"
  [ -z "$junk" ] || fail "$crate: the package holds test files: $junk"
  grep -q 'publish = false' "$crate/Cargo.toml" && fail "$crate: publish = false"
  echo "package-check: $crate: $(wc -l <<<"$list") files, no tests"
done
list="$(cargo package --list --allow-dirty -p budget-core 2>/dev/null)"
grep -qx data/prices.json <<<"$list" && grep -qx data/LICENSE-litellm-prices <<<"$list" \
  || fail "budget-core: the package lacks its price data or its licence"
list="$(cargo package --list --allow-dirty -p budget-store-sqlite 2>/dev/null)"
grep -q '^migrations/.*\.sql$' <<<"$list" || fail "budget-store-sqlite: the package lacks its migrations"
list="$(cargo package --list --allow-dirty -p budget-store-postgres 2>/dev/null)"
grep -q '^migrations/.*\.sql$' <<<"$list" || fail "budget-store-postgres: the package lacks its migrations"
cargo package -q --allow-dirty --offline -p budget-core >/dev/null \
  || fail "budget-core does not build from its package"
echo "package-check: budget-core builds from its package"

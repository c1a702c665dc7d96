#!/usr/bin/env bash
# The dashboard's end-to-end suite in Debian's chromium: starts the mock upstream and
# budget-server (SQLite in a temp dir), then drives the dashboard with playwright-core.
# Usage: bash scripts/e2e-dashboard.sh   (needs chromium and node; builds the binaries)
# Screenshots go to $ARTIFACTS_DIR (default .ci/artifacts/dashboard).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
ART="${ARTIFACTS_DIR:-$ROOT/.ci/artifacts/dashboard}"
mkdir -p "$ART"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-e2e.XXXXXX")"
PIDS=()
die() { printf 'e2e: error: %s\n' "$*" >&2; exit 1; }
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

build_bins
BIN="$(cargo_target_dir)/debug"

"$BIN/budget-mock-upstream" --addr 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
PIDS+=($!)
MOCK_URL="$(wait_listening "$WORK/mock.out" "${PIDS[-1]}" budget-mock-upstream)"

PORT="$(free_port)"
# The server stores upstream credentials only with a secrets key (32 random bytes, base64);
# a fresh one per run, as `openssl rand -base64 32` would give.
SECRETS_KEY="$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
# Alerts are signed with ALERT_WEBHOOK_SECRET; with it set, a limiter may name its own webhook
# (the suite's receiver on 127.0.0.1).
ALERT_WEBHOOK_SECRET="$(head -c 24 /dev/urandom | base64 | tr -d '\n')"
(cd "$WORK" && exec env HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite:$WORK/e2e.db" SECRETS_KEY="$SECRETS_KEY" \
  ALERT_WEBHOOK_SECRET="$ALERT_WEBHOOK_SECRET" JWT_SECRET=e2e-secret-e2e-secret-e2e-secret-e2e ADMIN_USERNAME=admin ADMIN_PASSWORD=e2e-password \
  "$BIN/budget-server") >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=($!)
BASE_URL="$(wait_listening "$WORK/server.out" "${PIDS[-1]}" budget-server)"

(cd budget-server/dashboard && { [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error; })
BASE_URL="$BASE_URL" MOCK_UPSTREAM_URL="$MOCK_URL" \
  ADMIN_USERNAME=admin ADMIN_PASSWORD=e2e-password ARTIFACTS_DIR="$ART" \
  node budget-server/dashboard/e2e/dashboard.e2e.mjs || { show_logs; exit 1; }

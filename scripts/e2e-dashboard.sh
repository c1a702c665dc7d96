#!/usr/bin/env bash
# The dashboard's end-to-end suite in Debian's chromium: starts the mock upstream and
# budget-server (SQLite in a temp dir), then drives the dashboard with playwright-core.
# Usage: bash scripts/e2e-dashboard.sh   (needs: chromium, node; built binaries in target/debug)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ART=${ARTIFACTS_DIR:-$ROOT/.ci/artifacts/dashboard}
mkdir -p "$ART"
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

cargo build -q -p budget-server -p budget-mock-upstream
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

target/debug/budget-mock-upstream --addr 127.0.0.1:0 > "$TMP/mock.out" 2> "$TMP/mock.err" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^listening on ' "$TMP/mock.out" 2>/dev/null && break; sleep 0.1; done
MOCK_URL=$(sed -n 's/^listening on //p' "$TMP/mock.out" | head -1)

PORT=$(free_port)
(cd "$TMP" && HOST=127.0.0.1 PORT=$PORT DATABASE_URL="sqlite:$TMP/e2e.db" \
  JWT_SECRET=e2e-secret-e2e-secret-e2e-secret-e2e ADMIN_USERNAME=admin ADMIN_PASSWORD=e2e-password \
  "$ROOT/target/debug/budget-server" > "$TMP/server.out" 2> "$TMP/server.err") &
PIDS+=($!)
for _ in $(seq 200); do curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || { cat "$TMP/server.err"; exit 1; }

(cd budget-server/dashboard && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)
BASE_URL="http://127.0.0.1:$PORT" MOCK_UPSTREAM_URL="$MOCK_URL" \
  ADMIN_USERNAME=admin ADMIN_PASSWORD=e2e-password ARTIFACTS_DIR="$ART" \
  node budget-server/dashboard/e2e/dashboard.e2e.mjs || { echo "--- server log"; tail -50 "$TMP/server.err"; exit 1; }

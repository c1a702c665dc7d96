#!/usr/bin/env bash
# The README's quick start, tested: follow the walk-through (log in with the default
# credentials, create the seed's limiter, call it with the OpenAI Python SDK exactly as the
# README shows, read its stats) against a freshly started budget-server binary with default
# configuration, in an empty working directory.
#
#   bash scripts/quickstart-test.sh
#
# Deviations from a newcomer's `cargo run -p budget-server`, all forced by testing:
#   - PORT is a free port (8000 may be taken) and HOST is 127.0.0.1 (don't expose a server
#     with the default password while testing);
#   - the limiter's base_url is budget-mock-upstream instead of https://api.openai.com
#     (no network, no OpenAI key).
# Everything else is the default: no .env, no JWT_SECRET, admin/changeme,
# DATABASE_URL=sqlite:usage_data.db in the working directory.
#
# Environment (optional): QUICKSTART_NO_BUILD=1 (use existing binaries), BUDGET_SERVER_BIN,
# MOCK_UPSTREAM_BIN, SDK_VENV (default sdk-tests/.venv, created if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SDK_VENV:-$ROOT/sdk-tests/.venv}"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
TARGET_DIR="$(cd "$ROOT" && cargo_target_dir)"
SERVER_BIN="${BUDGET_SERVER_BIN:-$TARGET_DIR/debug/budget-server}"
MOCK_BIN="${MOCK_UPSTREAM_BIN:-$TARGET_DIR/debug/budget-mock-upstream}"

PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok   %s\n' "$*"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s\n' "$*"; }
check() { # check "description" command...
  local what="$1"; shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
die() {
  printf 'quickstart: error: %s\n' "$*" >&2
  show_logs
  echo "$PASSED passed, $((FAILED + 1)) failed"
  exit 1
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-quickstart.XXXXXX")"
MOCK_PID=""
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && kill "$MOCK_PID" 2>/dev/null || true
  [ -n "$SERVER_PID" ] && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$MOCK_PID" ] && wait "$MOCK_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { # json EXPR < document: evaluate a Python expression over the parsed JSON `d`
  python3 -c 'import json, sys; d = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r))' "$1"
}

start_server() {
  # Default configuration: only PORT and HOST set; the config variables a CI or a developer
  # shell might carry are removed.
  (
    cd "$WORK"
    exec env -u DATABASE_URL -u JWT_SECRET -u JWT_EXPIRE_HOURS -u ADMIN_USERNAME -u ADMIN_PASSWORD \
      -u OPENAI_API_BASE_URL -u PUBLIC_URL -u PRICES_FILE -u BUDGETS_ENABLED -u FAIL_OPEN \
      HOST=127.0.0.1 PORT="$PORT" RUST_LOG="${RUST_LOG:-info}" "$SERVER_BIN"
  ) >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  wait_listening "$WORK/server.out" "$SERVER_PID" budget-server >/dev/null
}

stop_server() { # SIGTERM, then the exit code
  local rc=0
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || rc=$?
  SERVER_PID=""
  return "$rc"
}

# --- binaries and the SDK -------------------------------------------------------------------
if [ "${QUICKSTART_NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && build_bins) || die "cargo build failed"
fi
[ -x "$SERVER_BIN" ] || die "no budget-server binary at $SERVER_BIN"
[ -x "$MOCK_BIN" ] || die "no budget-mock-upstream binary at $MOCK_BIN"
command -v curl >/dev/null || die "curl is needed"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import openai' 2>/dev/null; then
  python3 -m venv "$VENV" || die "cannot create a venv at $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ROOT/sdk-tests/python/requirements.txt" \
    || die "pip install openai failed"
fi

"$MOCK_BIN" --addr 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK_PID=$!
MOCK_URL="$(wait_listening "$WORK/mock.out" "$MOCK_PID" budget-mock-upstream)"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
BASE="http://localhost:$PORT"

# --- 1. start the server with the defaults ---------------------------------------------------
start_server
check "the server starts with the default configuration" kill -0 "$SERVER_PID"
check "it warns about the default admin password" grep -q "ADMIN_PASSWORD" "$WORK/server.err"
check "it warns that JWT_SECRET is unset" grep -q "JWT_SECRET" "$WORK/server.err"

health="$(curl -s -w '\n%{http_code}' "$BASE/health")"
check "GET /health -> 200 {\"status\":\"ok\"}" test "$(tail -n 1 <<<"$health")" = 200 -a \
  "$(head -n 1 <<<"$health" | json 'd["status"]')" = ok

# --- 2. log in (README: POST /api/auth/login with admin / changeme) -------------------------
login="$(curl -s -X POST "$BASE/api/auth/login" \
  -H "Content-Type: application/json" \
  -d '{"username": "admin", "password": "changeme"}')"
TOKEN="$(json 'd["token"]' <<<"$login" 2>/dev/null || true)"
check "login with the default credentials returns a token" test -n "$TOKEN"
check "login returns the username" test "$(json 'd.get("username")' <<<"$login" 2>/dev/null)" = admin
[ -n "$TOKEN" ] || die "cannot go on without a token: $login"

# --- 3. create the seed's limiter (base_url: the mock instead of api.openai.com) ------------
created="$(curl -s -w '\n%{http_code}' -X POST "$BASE/api/limiters" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d "{
    \"name\": \"Customer A - \$20/day\",
    \"budget_limit\": 20.00,
    \"period_type\": \"day\",
    \"base_url\": \"$MOCK_URL\"
  }")"
check "POST /api/limiters -> 201" test "$(tail -n 1 <<<"$created")" = 201
created="$(sed '$d' <<<"$created")"
LIMITER_ID="$(json 'd["id"]' <<<"$created" 2>/dev/null || true)"
[ -n "$LIMITER_ID" ] || die "no limiter created: $created"
check "the limiter has the seed's name, budget and period" \
  test "$(json '[d["name"], d["budget_limit"], d["period_type"], d["is_active"]]' <<<"$created")" = '["Customer A - $20/day", 20.0, "day", true]'

# --- 4. list limiters and read the proxy endpoint -------------------------------------------
listed="$(curl -s "$BASE/api/limiters" -H "Authorization: Bearer $TOKEN")"
ENDPOINT="$(LIMITER_ID="$LIMITER_ID" json '[l for l in d if l["id"] == __import__("os").environ["LIMITER_ID"]][0]["proxy_endpoint"]' <<<"$listed" 2>/dev/null || true)"
check "GET /api/limiters lists it with its proxy endpoint" test -n "$ENDPOINT"
check "the proxy endpoint looks like http://localhost:PORT/v1/<code>" \
  grep -Eq "^http://localhost:$PORT/v1/sk-budget-[0-9a-f]{32}\$" <<<"$ENDPOINT"
check "create and list agree on the endpoint" test "$(json 'd["proxy_endpoint"]' <<<"$created")" = "$ENDPOINT"

# --- 5. the README's Python snippet, with base_url = the proxy endpoint ----------------------
cat >"$WORK/readme_snippet.py" <<EOF
from openai import OpenAI
client = OpenAI(
    api_key="your-openai-api-key",
    base_url="$ENDPOINT"  # Your limiter endpoint
)
response = client.chat.completions.create(
    model="gpt-4o",
    messages=[{"role": "user", "content": "Hello!"}]
)
print(response.choices[0].message.content)
EOF
if answer="$("$VENV/bin/python" "$WORK/readme_snippet.py" 2>"$WORK/snippet.err")"; then
  ok "the README's Python snippet runs against the limiter"
else
  fail "the README's Python snippet runs against the limiter: $(tail -n 3 "$WORK/snippet.err")"
fi
check "it prints the upstream's answer" test "$answer" = "Hello from the mock café 🚀 upstream."

# --- 6. read the stats ------------------------------------------------------------------------
stats=""
for i in $(seq 1 50); do # settlement runs as the response body ends: allow it a moment
  stats="$(curl -s "$BASE/api/limiters/$LIMITER_ID/stats" -H "Authorization: Bearer $TOKEN")"
  [ "$(json 'd.get("total_requests")' <<<"$stats" 2>/dev/null)" = 1 ] && break
  sleep 0.1
done
check "GET /api/limiters/{id}/stats has the seed's fields" test "$(json 'sorted(k for k in ["limiter_id","limiter_name","current_spend","budget_limit","remaining_budget","usage_percentage","total_requests","period_start","period_end"] if k not in d)' <<<"$stats")" = '[]'
check "total_requests == 1" test "$(json 'd["total_requests"]' <<<"$stats")" = 1
check "current_spend > 0" test "$(json 'd["current_spend"] > 0' <<<"$stats")" = true
# 8 prompt tokens (3 + 4 + 1 word) and 8 completion tokens at gpt-4o's $2.50 / $10 per 1M.
check "current_spend is exactly \$0.0001" test "$(json 'round(d["current_spend"] * 1e9)' <<<"$stats")" = 100000
check "remaining_budget == 20 - spend" test "$(json 'round(d["remaining_budget"] * 1e9)' <<<"$stats")" = 19999900000
overview="$(curl -s "$BASE/api/stats" -H "Authorization: Bearer $TOKEN")"
check "GET /api/stats counts the request" test "$(json 'd["total_requests"]' <<<"$overview")" = 1

# --- 6b. the README's JavaScript snippet (when sdk-tests/node has its packages installed) ----
REQUESTS=1
NODE_MODULES="$ROOT/sdk-tests/node/node_modules"
if command -v node >/dev/null && [ -d "$NODE_MODULES/openai" ]; then
  mkdir -p "$WORK/js" && ln -s "$NODE_MODULES" "$WORK/js/node_modules"
  cat >"$WORK/js/readme_snippet.mjs" <<EOF
import OpenAI from 'openai';
const client = new OpenAI({
  apiKey: 'your-openai-api-key',
  baseURL: '$ENDPOINT' // Your limiter endpoint
});
const response = await client.chat.completions.create({
  model: 'gpt-4o',
  messages: [{ role: 'user', content: 'Hello!' }]
});
console.log(response.choices[0].message.content);
EOF
  if answer="$(cd "$WORK/js" && node readme_snippet.mjs 2>"$WORK/snippet-js.err")"; then
    ok "the README's JavaScript snippet runs against the limiter"
  else
    fail "the README's JavaScript snippet runs against the limiter: $(tail -n 3 "$WORK/snippet-js.err")"
  fi
  check "it prints the upstream's answer" test "$answer" = "Hello from the mock café 🚀 upstream."
  REQUESTS=2
  for i in $(seq 1 50); do
    stats="$(curl -s "$BASE/api/limiters/$LIMITER_ID/stats" -H "Authorization: Bearer $TOKEN")"
    [ "$(json 'd.get("total_requests")' <<<"$stats" 2>/dev/null)" = 2 ] && break
    sleep 0.1
  done
  check "total_requests == 2, current_spend == \$0.0002" \
    test "$(json '[d["total_requests"], round(d["current_spend"] * 1e9)]' <<<"$stats")" = '[2, 200000]'
else
  echo "skip the README's JavaScript snippet (no sdk-tests/node/node_modules: run sdk-tests/run.sh first)"
fi

# --- 7. stop with SIGTERM; the SQLite file holds everything ----------------------------------
rc=0
stop_server || rc=$?
check "SIGTERM stops the server with exit code 0 (got $rc)" test "$rc" = 0
check "usage_data.db was created in the working directory" test -s "$WORK/usage_data.db"

start_server
login="$(curl -s -X POST "$BASE/api/auth/login" -H "Content-Type: application/json" \
  -d '{"username": "admin", "password": "changeme"}')"
TOKEN="$(json 'd["token"]' <<<"$login" 2>/dev/null || true)"
stats="$(curl -s "$BASE/api/limiters/$LIMITER_ID/stats" -H "Authorization: Bearer $TOKEN")"
check "after a restart the limiter and its spend are still there" \
  test "$(json '[d["total_requests"], round(d["current_spend"] * 1e9)]' <<<"$stats" 2>/dev/null)" = "[$REQUESTS, $((REQUESTS * 100000))]"
rc=0
stop_server || rc=$?
check "the second SIGTERM also exits 0 (got $rc)" test "$rc" = 0

[ "$FAILED" -eq 0 ] || show_logs
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

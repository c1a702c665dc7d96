#!/usr/bin/env bash
# Fuzz the server's HTTP API from its own OpenAPI document with schemathesis: starts
# budget-server on a free port with a fresh SQLite file in a temp dir, logs in, and runs
# schemathesis against /api/openapi.json with the admin token as a Bearer header.
#
# Passes only with 0 server errors and 0 answers that break the document (status codes,
# content types, headers and body schemas), for valid and invalid inputs alike.
#
# Usage: bash scripts/schemathesis.sh          (needs python3 with venv; builds the server)
#   SCHEMATHESIS_EXAMPLES  examples per operation and phase   (default 100)
#   SCHEMATHESIS_SEED      random seed                        (default 1; "random" for none)
#   SCHEMATHESIS_VENV      the venv to create or reuse        (default $TMPDIR/budget-schemathesis-venv)
#   BUDGET_SERVER_BIN      a budget-server binary to test instead of building one
# The JUnit report goes to $ARTIFACTS_DIR (default .ci/artifacts/schemathesis).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
SCHEMATHESIS_VERSION=4.32.5
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"
SEED="${SCHEMATHESIS_SEED:-1}"
VENV="${SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/budget-schemathesis-venv}"
ART="${ARTIFACTS_DIR:-$ROOT/.ci/artifacts/schemathesis}"
mkdir -p "$ART"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-schemathesis.XXXXXX")"
PIDS=()
die() { printf 'schemathesis: error: %s\n' "$*" >&2; exit 1; }
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# schemathesis in its own venv (installed once, reused while the version matches).
if [ ! -x "$VENV/bin/schemathesis" ] \
   || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  python3 -m venv "$VENV" || die "cannot create a venv at $VENV (install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" || die "pip install schemathesis failed"
fi

if [ -n "${BUDGET_SERVER_BIN:-}" ]; then
  SERVER="$BUDGET_SERVER_BIN"
else
  build_bins
  SERVER="$(cargo_target_dir)/debug/budget-server"
fi

PORT="$(free_port)"
PASSWORD=schemathesis-password
(cd "$WORK" && exec env HOST=127.0.0.1 PORT="$PORT" DATABASE_URL="sqlite:$WORK/fuzz.db" \
  JWT_SECRET=schemathesis-secret-schemathesis-secret ADMIN_USERNAME=admin ADMIN_PASSWORD="$PASSWORD" \
  RUST_LOG=warn "$SERVER") >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=($!)
BASE_URL="$(wait_listening "$WORK/server.out" "${PIDS[-1]}" budget-server)"

TOKEN="$(curl -fsS -X POST "$BASE_URL/api/auth/login" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$PASSWORD\"}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')" \
  || { show_logs; die "cannot log in"; }
# A limiter for the routes that take an id or a code to find (DELETE keeps random ids, so the
# others keep theirs), named in a schemathesis config.
curl -fsS -o "$WORK/limiter.json" -X POST "$BASE_URL/api/limiters" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: application/json' \
  -d '{"name":"fuzz","budget_limit":5,"period_type":"day","base_url":"http://127.0.0.1:9"}' \
  || { show_logs; die "cannot create a limiter"; }
field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/limiter.json" "$1"; }
cat >"$WORK/schemathesis.toml" <<TOML
[[operations]]
include-path = "/v1/{code}/budget"
parameters = { "path.code" = "$(field code)" }

[[operations]]
include-path-regex = '^/api/limiters/\{id\}'
include-method-regex = '^(GET|PUT|POST)$'
parameters = { "path.id" = "$(field id)" }
TOML

seed_args=()
[ "$SEED" = random ] || seed_args=(--seed "$SEED")
status=0
# From the temp dir: schemathesis keeps a cache of what it found in the working directory.
# The hooks file works around a Python 3.11 error in printing a strategy (see the file).
(cd "$WORK" && SCHEMATHESIS_HOOKS="$ROOT/scripts/schemathesis_hooks.py" "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$BASE_URL/api/openapi.json" \
  --url "$BASE_URL" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples "$EXAMPLES" "${seed_args[@]}" \
  --workers 2 \
  --generation-database none \
  --request-timeout 10 \
  --no-color \
  --report junit --report-junit-path "$ART/junit.xml") \
  || status=$?
if [ "$status" -ne 0 ]; then
  show_logs
  die "schemathesis found problems (exit $status); details above, JUnit report in $ART"
fi

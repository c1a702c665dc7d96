#!/usr/bin/env bash
# SDK compatibility suite: the official `openai` Python and Node packages against a real
# budget-server in front of budget-mock-upstream. See docs/sdk-compatibility.md.
#
#   bash sdk-tests/run.sh
#
# Environment (all optional):
#   SDK_VENV            Python venv to create/use            (default: sdk-tests/.venv)
#   SDK_TESTS_NO_BUILD  1: use the existing binaries, don't run cargo build
#   BUDGET_SERVER_BIN / MOCK_UPSTREAM_BIN   binaries to use   (default: <cargo target dir>/debug/…)
#   SDK_SUITES          which suites to run: "python node"    (default: both)
#   PYTEST_ARGS         extra pytest arguments (e.g. "-k azure -x")
#   RUST_LOG            the server's log filter                   (default: debug)
#
# Two mocks: MOCK_URL accepts any key (the client's own key, passed through); KEYED_MOCK_URL
# accepts only the upstream keys the server holds (`--accept-key`), one set per suite, for the
# upstream-key tests. The server runs with a random SECRETS_KEY and logs at debug level; at the
# end no upstream key (nor SECRETS_KEY, nor their middle parts) may appear in its log or in the
# SQLite files.
#
# Quiet on success except each suite's summary; on failure prints the failing suite's full
# output and the tail of the server and mock logs. Exits non-zero when any suite fails, and a
# skipped test is a failure (nothing here is optional: the set-up comes with the script).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SDK="$ROOT/sdk-tests"
VENV="${SDK_VENV:-$SDK/.venv}"
# shellcheck source=../scripts/lib.sh
source "$ROOT/scripts/lib.sh"
TARGET_DIR="$(cd "$ROOT" && cargo_target_dir)"
SERVER_BIN="${BUDGET_SERVER_BIN:-$TARGET_DIR/debug/budget-server}"
MOCK_BIN="${MOCK_UPSTREAM_BIN:-$TARGET_DIR/debug/budget-mock-upstream}"
SUITES="${SDK_SUITES:-python node}"

say() { printf 'sdk-tests: %s\n' "$*"; }
die() { printf 'sdk-tests: error: %s\n' "$*" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-sdk-tests.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- binaries -------------------------------------------------------------------------------
if [ "${SDK_TESTS_NO_BUILD:-0}" != 1 ]; then
  (cd "$ROOT" && build_bins) || die "cargo build --workspace --bins failed"
fi
[ -x "$SERVER_BIN" ] || die "no budget-server binary at $SERVER_BIN"
[ -x "$MOCK_BIN" ] || die "no budget-mock-upstream binary at $MOCK_BIN"

# --- SDK installs (before starting processes: the first run downloads packages) -------------
for suite in $SUITES; do
  case "$suite" in
    python)
      command -v python3 >/dev/null || die "python3 is needed for the Python suite"
      if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV" || die "cannot create a venv at $VENV"
      fi
      stamp="$VENV/.budget-sdk-requirements"
      if ! cmp -s "$SDK/python/requirements.txt" "$stamp" 2>/dev/null; then
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
          -r "$SDK/python/requirements.txt" || die "pip install failed"
        cp "$SDK/python/requirements.txt" "$stamp"
      fi
      ;;
    node)
      command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the Node suite"
      # npm ci when the lock file changed since the last install (or nothing is installed).
      if [ ! -f "$SDK/node/node_modules/.package-lock.json" ] \
         || [ "$SDK/node/package-lock.json" -nt "$SDK/node/node_modules/.package-lock.json" ]; then
        (cd "$SDK/node" && npm ci --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) \
          || { cat "$WORK/npm.log" >&2; die "npm ci failed"; }
      fi
      ;;
    *) die "unknown suite '$suite' in SDK_SUITES (python, node)" ;;
  esac
done

# --- secrets --------------------------------------------------------------------------------
# SECRETS_KEY as `openssl rand -base64 32` makes it; upstream keys shaped like real ones, one set
# per suite (so one suite's checks cannot pass on what the other sent).
random_b64() { python3 -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())'; }
random_hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
SECRETS_KEY="$(random_b64)"
declare -A UPSTREAM_KEYS
for suite in python node; do
  UPSTREAM_KEYS[$suite]="sk-proj-upstream-$suite-$(random_hex 24)"
  UPSTREAM_KEYS[$suite-rotated]="sk-proj-rotated-$suite-$(random_hex 24)"
  UPSTREAM_KEYS[$suite-azure]="$(random_hex 16)"
done
accept_args=()
for key in "${UPSTREAM_KEYS[@]}"; do accept_args+=(--accept-key "$key"); done

# --- mock upstreams and server --------------------------------------------------------------
"$MOCK_BIN" --addr 127.0.0.1:0 >"$WORK/mock.out" 2>"$WORK/mock.err" &
PIDS+=("$!")
MOCK_URL="$(wait_listening "$WORK/mock.out" "${PIDS[-1]}" budget-mock-upstream)"
"$MOCK_BIN" --addr 127.0.0.1:0 "${accept_args[@]}" >"$WORK/keyed-mock.out" 2>"$WORK/keyed-mock.err" &
PIDS+=("$!")
KEYED_MOCK_URL="$(wait_listening "$WORK/keyed-mock.out" "${PIDS[-1]}" "budget-mock-upstream --accept-key")"

export ADMIN_USERNAME="sdk-admin"
export ADMIN_PASSWORD="sdk-pass-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
PORT="$(free_port)"
# Run from the temp dir so a developer's .env in the repo cannot change the set-up.
(
  cd "$WORK"
  exec env HOST=127.0.0.1 PORT="$PORT" \
    DATABASE_URL="sqlite:$WORK/budget.db" \
    JWT_SECRET="sdk-tests-jwt-secret-0123456789abcdef" \
    SECRETS_KEY="$SECRETS_KEY" \
    ADMIN_USERNAME="$ADMIN_USERNAME" ADMIN_PASSWORD="$ADMIN_PASSWORD" \
    OPENAI_API_BASE_URL="$MOCK_URL" \
    SHUTDOWN_GRACE_SECS=2 RUST_LOG="${RUST_LOG:-debug}" \
    "$SERVER_BIN"
) >"$WORK/server.out" 2>"$WORK/server.err" &
PIDS+=("$!")
BUDGET_URL="$(wait_listening "$WORK/server.out" "${PIDS[-1]}" budget-server)"
BUDGET_URL="http://127.0.0.1:$PORT"

for i in $(seq 1 100); do
  if python3 - "$BUDGET_URL/health" <<'EOF' 2>/dev/null; then break; fi
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
EOF
  [ "$i" = 100 ] && { show_logs; die "GET /health did not answer 200"; }
  sleep 0.1
done
export BUDGET_URL MOCK_URL KEYED_MOCK_URL SECRETS_KEY
export BUDGET_SERVER_BIN="$SERVER_BIN" BUDGET_DB_FILE="$WORK/budget.db"

# The upstream keys of one suite, as the environment its tests read.
suite_keys() {
  printf '%s\n' "UPSTREAM_KEY=${UPSTREAM_KEYS[$1]}" "UPSTREAM_KEY_ROTATED=${UPSTREAM_KEYS[$1-rotated]}" \
    "UPSTREAM_AZURE_KEY=${UPSTREAM_KEYS[$1-azure]}"
}

# --- suites ---------------------------------------------------------------------------------
PASSED=0
FAILED=0
FAILED_SUITES=()

run_python() {
  local out="$WORK/python.out" rc=0 summary
  local keys
  mapfile -t keys < <(suite_keys python)
  (cd "$SDK/python" && env "${keys[@]}" PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
      --junitxml="$WORK/python.xml" ${PYTEST_ARGS:-}) >"$out" 2>&1 || rc=$?
  summary="$(tail -n 1 "$out")"
  local counts
  counts="$(python3 - "$WORK/python.xml" <<'EOF' 2>/dev/null || echo "0 1"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
skipped = sum(int(s.get("skipped", 0)) for s in suites)
# A skipped test is a failed one: every test has what it needs here.
print(tests - bad - skipped, bad + skipped)
EOF
)"
  PASSED=$((PASSED + ${counts% *}))
  FAILED=$((FAILED + ${counts#* }))
  if [ "$rc" -eq 0 ] && [ "${counts#* }" != 0 ]; then
    rc=1
    summary="$summary (skipped tests count as failures)"
  fi
  if [ "$rc" -ne 0 ]; then
    cat "$out"
    FAILED_SUITES+=(python)
    [ "${counts#* }" = 0 ] && FAILED=$((FAILED + 1))
  fi
  say "python (openai $("$VENV/bin/python" -c 'import openai; print(openai.__version__)')): $summary"
}

# node_count FIELD FILE: the "ℹ FIELD N" figure of node --test's summary (0 when absent).
node_count() {
  local n
  n="$(sed -n "s/^ℹ $1 \([0-9]*\)$/\1/p" "$2" | tail -n 1)"
  printf '%s\n' "${n:-0}"
}

run_node() {
  local out="$WORK/node.out" rc=0 pass=0 fail=0 todo=0 skipped=0 keys file
  mapfile -t keys < <(suite_keys node)
  : >"$out"
  # One file at a time (node --test would run files side by side, and the suites compare
  # server-wide metrics before and after a request).
  for file in sdk.test.mjs upstream-keys.test.mjs; do
    (cd "$SDK/node" && env "${keys[@]}" node --test --test-reporter=spec "$file") >"$out.part" 2>&1 || rc=$?
    pass=$((pass + $(node_count pass "$out.part")))
    fail=$((fail + $(node_count fail "$out.part")))
    todo=$((todo + $(node_count todo "$out.part")))
    skipped=$((skipped + $(node_count skipped "$out.part")))
    cat "$out.part" >>"$out"
  done
  # A skipped test is a failed one: every test has what it needs here.
  if [ "$skipped" != 0 ]; then
    fail=$((fail + skipped))
    rc=1
  fi
  [ "${todo:-0}" = 0 ] && todo=""
  PASSED=$((PASSED + pass))
  FAILED=$((FAILED + fail))
  if [ "$rc" -ne 0 ]; then
    cat "$out"
    FAILED_SUITES+=(node)
    [ "$fail" = 0 ] && FAILED=$((FAILED + 1))
  fi
  local version
  version="$(node -p "require('$SDK/node/node_modules/openai/package.json').version" 2>/dev/null || echo '?')"
  [ "$skipped" = 0 ] && skipped=""
  say "node (openai $version, node $(node --version)): $pass passed, $fail failed${skipped:+ ($skipped skipped, counted as failures)}${todo:+, $todo todo (known gaps, see docs/sdk-compatibility.md)}"
}

for suite in $SUITES; do
  "run_$suite"
done

# Each suite purges the limiters and deletes the credentials it created: the server must hold
# none now, deleted or not.
left="$(python3 - "$BUDGET_URL" <<'EOF' 2>&1 || true
import json, os, sys, urllib.request
base = sys.argv[1]
def call(path, body=None, token=None):
    req = urllib.request.Request(base + path, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)
token = call("/api/auth/login", {"username": os.environ["ADMIN_USERNAME"], "password": os.environ["ADMIN_PASSWORD"]})["token"]
print(len(call("/api/limiters?include_deleted=true", token=token)), len(call("/api/credentials", token=token)))
EOF
)"
if [ "$left" = "0 0" ]; then
  PASSED=$((PASSED + 1))
  say "cleanup: no limiter and no credential left on the server"
else
  FAILED=$((FAILED + 1))
  FAILED_SUITES+=(cleanup)
  say "cleanup: the suites left limiters and credentials on the server: $left"
fi

# No upstream key, nor SECRETS_KEY, whole or its middle half, in the server's log (written at
# debug level unless RUST_LOG says otherwise) or in the SQLite files (test_upstream_keys.py
# checks the database while its credentials exist, too).
secrets_file="$WORK/secrets.txt"
printf '%s\n' "${UPSTREAM_KEYS[@]}" "$SECRETS_KEY" >"$secrets_file"
found="$(python3 - "$secrets_file" "$WORK" <<'EOF' 2>&1 || true
import base64, sys
from pathlib import Path
secrets = Path(sys.argv[1]).read_text().split()
work = Path(sys.argv[2])
places = {p.name: p.read_bytes() for p in sorted(work.iterdir())
          if p.name.startswith(("server.", "budget.db")) and p.is_file()}
assert "server.err" in places and "budget.db" in places, sorted(places)
if b"budget-server listening" not in places["server.err"] + places.get("server.out", b""):
    print("control failed: the server's log is not where run.sh looks")
for i, secret in enumerate(secrets):
    forms = {secret, secret[len(secret) // 4 : len(secret) * 3 // 4]}
    if i == len(secrets) - 1:  # SECRETS_KEY: also its raw bytes
        forms.add(base64.b64decode(secret))
    for name, data in places.items():
        for form in forms:
            if (form.encode() if isinstance(form, str) else form) in data:
                kind = "SECRETS_KEY" if i == len(secrets) - 1 else f"upstream key #{i + 1}"
                print(f"{kind} (or its middle part) appears in {name}")
                break
# The clients' own keys in the suites all start like this: the server logs none of them either.
for prefix in (b"sk-proj-client-real-looking-key-", b"client-junk-", b"client-api-key-"):
    for name, data in places.items():
        if name.startswith("server.") and prefix in data:
            print(f"a client's key ({prefix.decode()}...) appears in {name}")
EOF
)"
if [ -z "$found" ]; then
  PASSED=$((PASSED + 1))
  say "secrets: no upstream key or SECRETS_KEY in the server's log ($(wc -l <"$WORK/server.err") lines at ${RUST_LOG:-debug}) or database files"
else
  FAILED=$((FAILED + 1))
  FAILED_SUITES+=(secrets)
  say "secrets: $found"
fi

if [ "${#FAILED_SUITES[@]}" -ne 0 ]; then
  show_logs
  say "FAILED suites: ${FAILED_SUITES[*]}"
fi
echo "sdk-tests: $PASSED passed, $FAILED failed"
[ "${#FAILED_SUITES[@]}" -eq 0 ]

# Shared by sdk-tests/run.sh, scripts/quickstart-test.sh, scripts/e2e-dashboard.sh and the
# other scripts: finding the built binaries, starting the mock upstream and budget-server on
# free ports and waiting for them.
# The caller sets WORK (a temp dir holding mock.out/err and server.out/err) and defines
# die MESSAGE (print and exit).

# Print the tail of the mock's and the server's logs to stderr.
show_logs() {
  local f
  for f in "$WORK/mock.err" "$WORK/server.err"; do
    [ -s "$f" ] || continue
    printf -- '--- last lines of %s ---\n' "$(basename "$f")" >&2
    tail -n 40 "$f" >&2
  done
}

# wait_listening FILE PID NAME: wait until FILE's first line is "listening on http://…" (both
# binaries print that first); print the URL.
wait_listening() {
  local file="$1" pid="$2" name="$3" i line
  for i in $(seq 1 300); do
    line="$(head -n 1 "$file" 2>/dev/null || true)"
    case "$line" in
      "listening on http://"*) printf '%s\n' "${line#listening on }"; return 0 ;;
    esac
    kill -0 "$pid" 2>/dev/null || { show_logs; die "$name exited before listening"; }
    sleep 0.1
  done
  show_logs
  die "$name did not print 'listening on' within 30 s"
}

# The cargo target directory as cargo itself resolves it (CARGO_TARGET_DIR, build.target-dir in
# a cargo config, or <workspace>/target). Run from inside the workspace.
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# Build every binary of the workspace (budget-server, budget-mock-upstream, budget-bench, the
# examples) in one invocation. Every script builds the same set, so the dependencies are built
# once with one set of features: `-p a -p b` selections that differ from script to script each
# compiled their own copy of sqlx and friends into the target dir.
build_bins() {
  cargo build --quiet --workspace --bins
}

# A TCP port free on 127.0.0.1 right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

#!/usr/bin/env bash
# What can be checked of the Docker files without a Docker daemon:
#   - the dependency layer: scripts/docker-plan.sh's output is a workspace cargo accepts with
#     the unchanged Cargo.lock (`--locked`), with a source file for every target;
#   - docker-compose.yml: valid YAML, builds this folder, needs no .env, sets HOST=0.0.0.0 and
#     requires ADMIN_PASSWORD from the environment (`${ADMIN_PASSWORD:?...}`);
#   - .dockerignore keeps .git, target, venvs and node_modules out of the build context, and
#     nothing the Dockerfile copies is ignored.
#
#   bash scripts/docker-check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/budget-docker-check.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
fail() { printf 'docker-check: %s\n' "$*" >&2; exit 1; }

# The plan stage sees the build context: the tracked files minus .dockerignore (approximated
# here by the tracked files, which .dockerignore does not touch: checked below).
mkdir -p "$WORK/ctx"
git ls-files -z | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
  | xargs -0 -r cp -a --parents -t "$WORK/ctx"
(cd "$WORK/ctx" && sh scripts/docker-plan.sh "$WORK/plan")
# Nothing is compiled here: the placeholder crates have the same names and relative paths as
# the real ones, so their build output in the shared target dir would pass for the real
# crates' (cargo compares modification times). `cargo metadata --locked` proves the planned
# workspace resolves with the unchanged Cargo.lock (so the image builds exactly the
# dependencies the real build does); every target it lists must have its source file.
(cd "$WORK/plan" && cargo metadata --locked --offline --format-version 1 >"$WORK/metadata.json") \
  || fail "the planned workspace is not one cargo accepts with the unchanged Cargo.lock"
python3 - "$WORK/metadata.json" "$WORK/plan" <<'PY' || fail "a target of the planned workspace has no source file"
import json, os, sys, tomllib
meta = json.load(open(sys.argv[1]))
members = [p for p in meta["packages"] if p["id"] in set(meta["workspace_members"])]
missing = [t["src_path"] for p in members for t in p["targets"] if not os.path.exists(t["src_path"])]
# cargo metadata leaves out a declared target whose file is missing; cargo build fails on it.
# So check the declared ones ([[bench]], [[test]], [[example]], [[bin]], build) by hand.
folders = {"bench": "benches", "test": "tests", "example": "examples", "bin": "src/bin"}
for p in members:
    root = os.path.dirname(p["manifest_path"])
    manifest = tomllib.load(open(p["manifest_path"], "rb"))
    for kind, folder in folders.items():
        for t in manifest.get(kind, []):
            path = t.get("path") or f"{folder}/{t['name']}.rs"
            if not os.path.exists(os.path.join(root, path)):
                missing.append(os.path.relpath(os.path.join(root, path), sys.argv[2]))
    build = manifest.get("package", {}).get("build")
    if isinstance(build, str) and not os.path.exists(os.path.join(root, build)):
        missing.append(os.path.relpath(os.path.join(root, build), sys.argv[2]))
if missing:
    sys.exit("docker-check: missing in the plan: " + ", ".join(missing))
n = sum(len(p["targets"]) for p in members)
print(f"docker-check: the dependency layer's workspace resolves with Cargo.lock; its {n} targets exist")
PY

python3 - <<'PY'
import re, subprocess, sys
from fnmatch import fnmatch

def fail(msg):
    sys.exit(f"docker-check: {msg}")

text = open("docker-compose.yml").read()
try:
    import yaml
    doc = yaml.safe_load(text)
    svc = doc["services"]["budget"]
    env = svc["environment"]
    if svc.get("build") != ".":
        fail("docker-compose.yml: the service must build this folder (build: .)")
    env_files = svc.get("env_file") or []
    if any(isinstance(e, str) or e.get("required", True) for e in env_files):
        fail("docker-compose.yml: an env_file must be `required: false` (no .env needed)")
    if env.get("HOST") != "0.0.0.0":
        fail("docker-compose.yml: HOST must be 0.0.0.0")
    if not re.fullmatch(r"\$\{ADMIN_PASSWORD:\?.+\}", str(env.get("ADMIN_PASSWORD", ""))):
        fail("docker-compose.yml: ADMIN_PASSWORD must be required from the environment (${ADMIN_PASSWORD:?...})")
    print("docker-check: docker-compose.yml needs no .env, sets HOST and requires ADMIN_PASSWORD")
except ImportError:
    for needle in ("HOST: 0.0.0.0", "${ADMIN_PASSWORD:?", "required: false"):
        if needle not in text:
            fail(f"docker-compose.yml lacks {needle!r}")
    print("docker-check: docker-compose.yml has the required lines (PyYAML not installed: not parsed)")

ignore = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
for must in (".git", "target", "**/node_modules", "**/.venv"):
    if must not in ignore:
        fail(f".dockerignore must list {must}")
def ignored(path):
    return any(fnmatch(path, p) or fnmatch(path, p + "/*") or path.split("/")[0] == p for p in ignore)
tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split()
needed = [f for f in tracked if f.startswith(("budget-", "examples/", "scripts/docker-plan.sh", "Cargo."))]
bad = [f for f in needed if ignored(f)]
if bad:
    fail(f".dockerignore hides files the build needs: {bad[:5]}")
dist = [f for f in tracked if f.startswith("budget-server/dashboard/dist/")]
if not dist:
    fail("budget-server/dashboard/dist is not committed: the image embeds it")
print(f"docker-check: .dockerignore keeps .git, target, venvs and node_modules out; {len(needed)} needed files pass")
PY

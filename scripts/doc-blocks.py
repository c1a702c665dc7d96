#!/usr/bin/env python3
"""Run every shell block of the README and the docs verbatim, top to bottom, as a reader would.

    python3 scripts/doc-blocks.py            # README.md, docs/**/*.md, examples/*/README.md, ...
    python3 scripts/doc-blocks.py FILE...    # only these
    python3 scripts/doc-blocks.py --list     # show every block and what happens to it

Each file runs in one bash session (variables set by one block are there in the next), with
`set -eo pipefail`, in a fresh copy of the repository's tracked files. Builds there use a
target directory of their own, `<target>/doc-blocks` (kept between runs, so only the first run
compiles everything), never the checkout's: what is compiled in a copy has the copy's paths
built in. Before the
file's first block, a fresh `budget-server` with its default configuration listens on
port 8000 (admin / changeme, `usage_data.db` in the copy), and `budget-mock-upstream` on
127.0.0.1:9000 is its default upstream (`OPENAI_API_BASE_URL`), so nothing needs the internet.

Fences (the word after `sh` is for this script; readers see an ordinary shell block):

    ```sh                      run it
    ```sh server               start it in the background instead of the fresh server (e.g.
                               `cargo run -p budget-server -- --demo`), wait until every
                               http://HOST:PORT it prints accepts connections; the blocks after
                               it run next (with none after it, every `curl` command it
                               prints is run instead)
    ```sh no-run: REASON       not run; REASON is required: needs an OpenAI account, Docker,
                               or minutes of release builds/measuring (listed on every run)
    ```console / ```text       output, never run

`bash` and `shell` fences are treated like `sh`. Where the machine allows (root, or
unprivileged user namespaces), everything runs in a private network namespace: ports 8000 and
9000 are free there, and nothing can reach the internet, which proves the blocks need none.
Rust blocks are not run here: every file that has one must be compiled as doctests by some
crate (`#[cfg(doctest)] #[doc = include_str!("…/file.md")]`), which this script checks first, together with phrases that speak of the authors' machines
("this machine", "another engineer", "/work/", ...) instead of the reader's.
A block fails when it exits non-zero or prints an answer in OpenAI's error shape
(`{"error": {...}}` on a line of its own), which `curl -s` alone would not notice.
Exit status: 0 when every run block succeeded. DOC_BLOCKS_NO_BUILD=1 uses the binaries already
built; DOC_BLOCKS_NO_NETNS=1 stays on the host's network.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_LANGS = {"sh", "bash", "shell"}
QUIET_LANGS = {"console", "text", "shell-session", "output"}
SERVER_PORT = 8000
MOCK_ADDR = "127.0.0.1:9000"
# Config variables a developer's or CI's shell may carry: the fresh server gets defaults.
SERVER_ENV_UNSET = [
    "HOST", "PORT", "DATABASE_URL", "JWT_SECRET", "JWT_EXPIRE_HOURS", "ADMIN_USERNAME",
    "ADMIN_PASSWORD", "OPENAI_API_BASE_URL", "PUBLIC_URL", "PRICES_FILE", "BUDGETS_ENABLED",
    "FAIL_OPEN", "CORS_ORIGINS", "USER_HEADER", "LOG_FORMAT", "SHUTDOWN_GRACE_SECS",
]


def server_settings() -> set[str]:
    """Every setting budget-server reads from the environment (those .env.example lists, set
    or commented out, and a few more): a developer's or CI's shell must not change the fresh
    server's defaults."""
    names = set(SERVER_ENV_UNSET) | {"BUDGET_DEMO", "RUST_LOG"}
    example = ROOT / ".env.example"
    if example.exists():
        names |= set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example.read_text(), re.M))
    return names


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    mode: str  # "run", "server", "no-run", "quiet"
    reason: str
    text: str

    @property
    def where(self) -> str:
        return f"{rel(self.path)}:{self.line}"


def rel(path: Path) -> str:
    return os.path.relpath(path, ROOT)


def say(msg: str) -> None:
    print(f"doc-blocks: {msg}", file=sys.stderr, flush=True)


def default_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    keep = []
    for f in tracked:
        p = Path(f)
        if (f == "README.md" or p.parts[0] == "docs"
                or (len(p.parts) == 2 and p.name == "README.md")          # budget-*/README.md
                or (len(p.parts) == 3 and p.parts[0] == "examples" and p.name == "README.md")
                or f == "budget-core/data/README.md"):
            keep.append(ROOT / f)
    return keep


FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)\s*(.*?)\s*$")


def parse(path: Path) -> list[Block]:
    """Every fenced block of a markdown file that is shell or output."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang, rest = m.groups()
        start = i
        body = []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip().strip(fence[0]) == ""):
            line = lines[i]
            body.append(line[len(indent):] if line.startswith(indent) else line)
            i += 1
        i += 1
        lang = lang.lower().split(",")[0]
        text = "\n".join(body) + "\n"
        if lang in QUIET_LANGS:
            blocks.append(Block(path, start + 1, lang, "quiet", "", text))
        elif lang in RUN_LANGS:
            if rest == "":
                mode, reason = "run", ""
            elif rest == "server":
                mode, reason = "server", ""
            elif rest.startswith("no-run"):
                mode, reason = "no-run", rest[len("no-run"):].lstrip(":").strip()
                if not reason:
                    raise SystemExit(f"doc-blocks: {rel(path)}:{start + 1}: "
                                     "`no-run` needs a reason: ```sh no-run: needs Docker")
            else:
                raise SystemExit(f"doc-blocks: {rel(path)}:{start + 1}: unknown "
                                 f"fence words {rest!r} (use nothing, `server` or `no-run: REASON`)")
            blocks.append(Block(path, start + 1, lang, mode, reason, text))
    return blocks


def rust_blocks_uncompiled(files: list[Path]) -> list[str]:
    """Rust blocks in files that no `#[doc = include_str!(...)]` turns into doctests."""
    tracked = subprocess.run(["git", "ls-files", "*.rs"], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
    compiled: set[Path] = set()
    for f in tracked:
        text = (ROOT / f).read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r'include_str!\(\s*"([^"]+\.md)"\s*\)', text):
            compiled.add(((ROOT / f).parent / m.group(1)).resolve())
    out = []
    for path in files:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            m = FENCE.match(line)
            if m and m.group(3).lower().split(",")[0] == "rust" and path.resolve() not in compiled:
                out.append(f"{rel(path)}:{i + 1}: a Rust block that is not compiled: include the "
                           "file as doctests (`#[cfg(doctest)] #[doc = include_str!(...)]`) or "
                           "move the code into an example crate")
    return out


# Docs speak to users about their machines, not about the authors' (case-insensitive).
AUTHORS_MACHINE = ["this machine", "another engineer", "other engineers", "the machines have",
                   "the project's machines", "exists here", "/work/"]


def authors_machine_phrases(files: list[Path]) -> list[str]:
    out = []
    for path in files:
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            for phrase in AUTHORS_MACHINE:
                if phrase in line.lower():
                    out.append(f"{rel(path)}:{i + 1}: {phrase!r}: write for the reader's machine")
    return out


# --- environment --------------------------------------------------------------------------


def target_dir() -> Path:
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    return Path(json.loads(meta)["target_directory"])


def copy_tracked(dest: Path) -> None:
    """The tracked files as they are in the working tree, times kept (for cargo's cache)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.split(b"\0")
    present = b"\0".join(f for f in files if f and os.path.lexists(ROOT / os.fsdecode(f)))
    dest.mkdir(parents=True)
    subprocess.run(["xargs", "-0", "-r", "cp", "-a", "--parents", "-t", str(dest)], cwd=ROOT,
                   input=present, check=True)
    # Installed tool caches a reader would have after the documented installs: the SDK venv
    # and npm packages (created by sdk-tests/run.sh), like the shared cargo build cache.
    for cache in ["sdk-tests/.venv", "sdk-tests/node/node_modules",
                "budget-server/dashboard/node_modules"]:
        if (ROOT / cache).is_dir() and not (dest / cache).exists():
            (dest / cache).parent.mkdir(parents=True, exist_ok=True)
            (dest / cache).symlink_to(ROOT / cache)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_health(url: str, proc: subprocess.Popen, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited ({proc.returncode}) before answering {url}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as res:
                if res.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer 200 within {seconds:.0f} s:\n{tail(log)}")


def wait_printed_urls(proc: subprocess.Popen, seconds: float, log: Path) -> None:
    """Wait until the process has printed at least one http://HOST:PORT and every such
    address accepts connections (a server started by `cargo run` may compile first)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited ({proc.returncode}) before listening:\n{tail(log)}")
        text = log.read_text(errors="replace") if log.exists() else ""
        addrs = set(re.findall(r"http://([\w.-]+|\[[0-9a-f:]+\]):(\d+)", text))
        if addrs and all(connectable("127.0.0.1" if h == "0.0.0.0" else h.strip("[]"), int(p))
                         for h, p in addrs):
            return
        time.sleep(0.2)
    raise RuntimeError(f"no address it printed answered within {seconds:.0f} s:\n{tail(log)}")


def connectable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen | None) -> None:
    """SIGTERM the process group (cargo run and the binary it started), then wait."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def openai_error(text: str) -> bool:
    """An answer in OpenAI's error shape, `{"error": {...}}`."""
    try:
        doc = json.loads(text)
    except ValueError:
        return False
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict)


def printed_curls(log: Path) -> list[str]:
    """The `curl` commands a server printed (continuation lines joined)."""
    out, cur = [], None
    for raw in log.read_text(errors="replace").splitlines():
        line = raw.strip()
        if cur is not None:
            cur += "\n" + line
            if not line.endswith("\\"):
                out.append(cur)
                cur = None
            continue
        line = re.sub(r"^\$\s+", "", line)
        if line.startswith("curl "):
            if line.endswith("\\"):
                cur = line
            else:
                out.append(line)
    return out


# --- running one file -----------------------------------------------------------------------


def script_for(blocks: list[Block], workdir: Path) -> str:
    """One bash script: each block verbatim, preceded by a marker naming it."""
    parts = [
        "set -eo pipefail",
        f'__doc_block() {{ printf "%s\\n" "$1" >{shlex.quote(str(workdir / "current"))}; '
        'printf "\\n--- %s\\n" "$1" >&2; }',
    ]
    for n, b in enumerate(blocks):
        if b.mode != "run":
            continue
        parts.append(f"__doc_block {shlex.quote(b.where)}")
        # Show the block as the reader sees it, then run it.
        parts.append(f"cat >&2 <<'__DOC_BLOCK_{n}__'\n{b.text.rstrip()}\n__DOC_BLOCK_{n}__")
        parts.append("echo >&2")
        parts.append(b.text.rstrip("\n"))
    parts.append("__doc_block done")
    return "\n".join(parts) + "\n"


def run_file(path: Path, bins: Path, base: Path) -> tuple[int, int, list[str]]:
    """Run a file's blocks; returns (run, skipped, failures)."""
    blocks = [b for b in parse(path) if b.mode != "quiet"]
    runnable = [b for b in blocks if b.mode in ("run", "server")]
    skipped = [b for b in blocks if b.mode == "no-run"]
    for b in skipped:
        say(f"skip {b.where}: {b.reason}")
    if not runnable:
        return 0, len(skipped), []
    name = rel(path)
    work = Path(tempfile.mkdtemp(prefix="doc-blocks.", dir=base))
    repo = work / "repo"
    copy_tracked(repo)
    # The reader's shell: none of the server's settings. Builds get a target dir of their own:
    # compiled in the copy, their paths (`CARGO_MANIFEST_DIR`, the dashboard's folder) are the
    # copy's, and in the checkout's target dir they would pass for the checkout's own build.
    env = {k: v for k, v in os.environ.items() if k not in server_settings()}
    env["CARGO_TARGET_DIR"] = str(target_dir_path / "doc-blocks")
    failures: list[str] = []
    mock = server = None
    try:
        mock_log = work / "mock.log"
        with open(mock_log, "wb") as f:
            mock = subprocess.Popen([str(bins / "budget-mock-upstream"), "--addr", MOCK_ADDR],
                                    stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        server_env = {k: v for k, v in env.items() if k not in server_settings()}
        server_env["OPENAI_API_BASE_URL"] = f"http://{MOCK_ADDR}"
        server_env["NO_COLOR"] = "1"  # plain logs in the failure report
        if not isolated:
            server_env["HOST"] = "127.0.0.1"  # never expose a default-password server
        server_log = work / "server.log"
        server_blocks = [b for b in runnable if b.mode == "server"]
        if not server_blocks:
            with open(server_log, "wb") as f:
                server = subprocess.Popen([str(bins / "budget-server")], cwd=repo, env=server_env,
                                          stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            wait_health(f"http://127.0.0.1:{SERVER_PORT}/health", server, 60, server_log)
        # Run the blocks in order; a `server` block starts in the background between the
        # blocks before it and the blocks after it (each side is one bash session).
        segments: list[tuple[Block | None, list[Block]]] = []
        current: list[Block] = []
        pending_server: Block | None = None
        for b in runnable:
            if b.mode == "server":
                segments.append((pending_server, current))
                pending_server, current = b, []
            else:
                current.append(b)
        segments.append((pending_server, current))
        for srv, seg in segments:
            if srv is not None:
                say(f"start {srv.where} in the background: {srv.text.strip().splitlines()[0]}")
                with open(server_log, "wb") as f:
                    server = subprocess.Popen(["bash", "-c", srv.text], cwd=repo, env=server_env,
                                              stdout=f, stderr=subprocess.STDOUT,
                                              start_new_session=True)
                wait_printed_urls(server, 600, server_log)
                # With no blocks after it, the file leaves the reader with what the server
                # printed: then its `curl` commands must work.
                curls = printed_curls(server_log) if not seg else []
                if not seg and not curls:
                    failures.append(f"{srv.where}: the server printed no curl command to try")
                for c in curls:
                    say(f"{srv.where} printed: {c}")
                    r = subprocess.run(["bash", "-c", "set -eo pipefail\n" + c], cwd=repo, env=env,
                                       capture_output=True, text=True, timeout=60)
                    sys.stderr.write(r.stdout + r.stderr + "\n")
                    if r.returncode != 0:
                        failures.append(f"{srv.where}: its printed `{c}` exited {r.returncode}")
                    elif openai_error(r.stdout):
                        failures.append(f"{srv.where}: its printed `{c}` got an error: {r.stdout[:300]}")
            if not seg:
                continue
            (work / "current").write_text("")
            script = work / "blocks.sh"
            script.write_text(script_for(seg, work))
            # Stream the output, and keep it: an answer in OpenAI's error shape on a line of its
            # own is a failure even when the command (curl) exits 0.
            proc = subprocess.Popen(["bash", str(script)], cwd=repo, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            errors = []
            where = name
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace")
                sys.stderr.write(line)
                if line.startswith("--- ") and any(line[4:].strip() == b.where for b in seg):
                    where = line[4:].strip()
                if openai_error(line):
                    errors.append(f"{where}: {line.strip()[:300]}")
            rc = proc.wait(timeout=1200)
            if rc != 0 or errors:
                at = (work / "current").read_text().strip() or name
                failures.extend(errors or [f"{at}: exited {rc}"])
                sys.stderr.write(f"--- last lines of the server's log ---\n{tail(server_log)}\n")
                break
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        failures.append(f"{name}: {e}")
    finally:
        stop(server)
        stop(mock)
        if not failures:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work} for inspection")
    return len(runnable), len(skipped), failures


def main() -> int:
    global target_dir_path, isolated
    args = sys.argv[1:]
    listing = "--list" in args
    args = [a for a in args if a != "--list"]
    files = [Path(a).resolve() for a in args] or default_files()
    if listing:
        for f in files:
            for b in parse(f):
                extra = f" ({b.reason})" if b.reason else ""
                print(f"{b.where}: {b.lang} {b.mode}{extra}")
        return 0
    for f in files:  # fail on a bad fence before building anything
        parse(f)
    problems = rust_blocks_uncompiled(files) + authors_machine_phrases(files)
    for u in problems:
        say(u)
    if problems:
        return 1

    isolated = os.environ.get("DOC_BLOCKS_NETNS") == "1"
    if not isolated and os.environ.get("DOC_BLOCKS_NO_BUILD") != "1":
        # Build first (may need the registry), then run inside a private network namespace.
        subprocess.run(["cargo", "build", "-q", "-p", "budget-server", "-p", "budget-mock-upstream"],
                       cwd=ROOT, check=True)
        # Everything Cargo.lock names, so that builds the blocks start need no network.
        subprocess.run(["cargo", "fetch", "-q"], cwd=ROOT, check=True)
    if not isolated and os.environ.get("DOC_BLOCKS_NO_NETNS") != "1":
        ns = (["unshare", "--net"] if os.geteuid() == 0
              else ["unshare", "--user", "--map-root-user", "--net"])
        probe = subprocess.run(ns + ["true"], capture_output=True)
        if probe.returncode == 0:
            inner = ("ip link set lo up && exec env DOC_BLOCKS_NETNS=1 "
                     + shlex.join([sys.executable, __file__, *args]))
            return subprocess.run(ns + ["bash", "-c", inner]).returncode
        say("no network namespace here: running on the host's network "
            "(ports 8000 and 9000 must be free)")
    for port in (SERVER_PORT, 9000):
        if not port_free(port):
            say(f"port {port} is taken: stop what listens there")
            return 2
    target_dir_path = target_dir()
    bins = target_dir_path / "debug"
    base = Path(tempfile.mkdtemp(prefix="budget-doc-blocks."))
    total_run = total_skipped = 0
    all_failures: list[str] = []
    started = time.monotonic()
    for f in files:
        t = time.monotonic()
        n, s, failures = run_file(f, bins, base)
        total_run += n
        total_skipped += s
        all_failures += failures
        if n:
            verdict = "FAILED" if failures else "ok"
            say(f"{rel(f)}: {n} block(s) {verdict} in {time.monotonic() - t:.1f} s")
    shutil.rmtree(base, ignore_errors=True) if not all_failures else None
    for fail in all_failures:
        say(f"FAIL {fail}")
    say(f"{total_run} block(s) run, {total_skipped} marked no-run, {len(all_failures)} failed "
        f"({time.monotonic() - started:.0f} s)")
    return 1 if all_failures else 0


target_dir_path = Path()
isolated = False

if __name__ == "__main__":
    sys.exit(main())

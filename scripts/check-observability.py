#!/usr/bin/env python3
"""The Grafana dashboard and the Prometheus alert rules in docs/ use only metrics that exist.

    python3 scripts/check-observability.py

Starts budget-mock-upstream and budget-server (built with cargo, SQLite in a temp dir),
sends some traffic (a metered chat completion through a limiter, a refusal for an unknown
code), scrapes /metrics, and checks every PromQL expression of docs/grafana/*.json and
docs/prometheus/*.yml:

- every `budget_*` metric it names is exposed (counters as NAME_total, histograms as
  NAME_bucket / NAME_sum / NAME_count, gauges as NAME);
- every label it selects on or aggregates by is a label of one of the metrics it names (where
  the scrape had samples of them);
- brackets balance, and the alert rule file has the shape Prometheus loads.

Exits non-zero, naming the file and the expression, on any mismatch.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
    "or", "unless", "le",
}


def fail(msg: str) -> None:
    sys.exit(f"check-observability: {msg}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, out: Path, name: str) -> str:
    for _ in range(300):
        first = out.read_text().splitlines()[:1] if out.exists() else []
        if first and first[0].startswith("listening on http://"):
            return first[0][len("listening on "):].strip()
        if proc.poll() is not None:
            fail(f"{name} exited before listening")
        time.sleep(0.1)
    fail(f"{name} did not print 'listening on' within 30 s")
    return ""


def call(url: str, body=None, token: str | None = None, expect=(200, 201)) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if status not in expect:
        fail(f"{url} -> {status}: {raw[:300]!r}")
    return status, raw


def scrape() -> str:
    """Run a server, make traffic, return its /metrics text."""
    subprocess.run(["cargo", "build", "-q", "-p", "budget-server", "-p", "budget-mock-upstream"],
                   cwd=ROOT, check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    bins = Path(json.loads(meta)["target_directory"]) / "debug"
    with tempfile.TemporaryDirectory(prefix="budget-observability.") as tmp:
        work = Path(tmp)
        procs = []
        try:
            mock_out = work / "mock.out"
            with open(mock_out, "w") as out, open(work / "mock.err", "w") as err:
                procs.append(subprocess.Popen([str(bins / "budget-mock-upstream"), "--addr", "127.0.0.1:0"],
                                              stdout=out, stderr=err))
            mock = wait_listening(procs[-1], mock_out, "budget-mock-upstream")
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("METRICS_", "ADMIN_"))}
            env.update(HOST="127.0.0.1", PORT=str(port), DATABASE_URL=f"sqlite:{work}/budget.db",
                       ADMIN_USERNAME="admin", ADMIN_PASSWORD="observability-check-password",
                       JWT_SECRET="observability-check-jwt-secret-0123456789", NO_COLOR="1")
            server_out = work / "server.out"
            with open(server_out, "w") as out, open(work / "server.err", "w") as err:
                procs.append(subprocess.Popen([str(bins / "budget-server")], cwd=work, env=env,
                                              stdout=out, stderr=err))
            wait_listening(procs[-1], server_out, "budget-server")
            base = f"http://127.0.0.1:{port}"
            _, raw = call(f"{base}/api/auth/login",
                          {"username": "admin", "password": "observability-check-password"})
            token = json.loads(raw)["token"]
            _, raw = call(f"{base}/api/limiters", {"name": "observability check", "budget_limit": 1,
                                                    "period_type": "day", "base_url": mock}, token)
            code = json.loads(raw)["code"]
            chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
            call(f"{base}/v1/{code}/chat/completions", chat, "sk-test")
            call(f"{base}/v1/{'0' * 32}/chat/completions", chat, "sk-test", expect=(404,))
            time.sleep(0.5)  # settlement runs as the response body ends
            _, raw = call(f"{base}/metrics")
            return raw.decode()
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=30)


def exposed(text: str) -> tuple[set[str], dict[str, set[str]]]:
    """Sample names the exposition allows, and the label names seen per sample name."""
    names: set[str] = set()
    labels: dict[str, set[str]] = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\S+) (\S+)", line)
        if m:
            name, kind = m.groups()
            if kind == "counter":
                names.update({name + "_total", name + "_created"})
            elif kind == "histogram":
                names.update({name + "_bucket", name + "_sum", name + "_count", name + "_created"})
            elif kind == "summary":
                names.update({name, name + "_sum", name + "_count", name + "_created"})
            else:
                names.add(name)
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s", line)
        if m:
            names.add(m.group(1))
            keys = set(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""))
            labels.setdefault(m.group(1), set()).update(keys)
    return names, labels


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every expression in the dashboards and rule files."""
    out: list[tuple[str, str]] = []
    dashboards = sorted((ROOT / "docs" / "grafana").glob("*.json"))
    rules = sorted((ROOT / "docs" / "prometheus").glob("*.yml")) + sorted((ROOT / "docs" / "prometheus").glob("*.yaml"))
    if not dashboards or not rules:
        fail("expected docs/grafana/*.json and docs/prometheus/*.yml")
    for path in dashboards:
        doc = json.loads(path.read_text())

        def walk(node, trail):
            if isinstance(node, dict):
                for k, v in node.items():
                    if k in ("expr", "query", "definition") and isinstance(v, str) and v.strip():
                        out.append((f"{path.relative_to(ROOT)} {trail}", v))
                    else:
                        walk(v, f"{trail}/{k}")
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    title = v.get("title") or v.get("name") if isinstance(v, dict) else None
                    walk(v, f"{trail}[{title or i}]")

        walk(doc, "")
    for path in rules:
        text = path.read_text()
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            yaml = None
        if yaml is not None:
            doc = yaml.safe_load(text)
            groups = doc.get("groups") if isinstance(doc, dict) else None
            if not isinstance(groups, list) or not groups:
                fail(f"{path.relative_to(ROOT)}: no `groups:` list")
            for g in groups:
                if not g.get("name") or not isinstance(g.get("rules"), list):
                    fail(f"{path.relative_to(ROOT)}: a group needs `name` and `rules`")
                for r in g["rules"]:
                    if not (r.get("alert") or r.get("record")) or not isinstance(r.get("expr"), str):
                        fail(f"{path.relative_to(ROOT)}: a rule needs `alert` (or `record`) and `expr`: {r}")
                    out.append((f"{path.relative_to(ROOT)} {r.get('alert') or r.get('record')}", r["expr"]))
        else:  # no PyYAML: one-line and folded `expr:` values
            lines = text.splitlines()
            for i, line in enumerate(lines):
                m = re.match(r"\s*expr:\s*(.*)$", line)
                if not m:
                    continue
                value, j = m.group(1), i + 1
                if value in (">-", ">", "|", "|-"):
                    value = ""
                    indent = len(lines[i]) - len(lines[i].lstrip())
                    while j < len(lines) and (len(lines[j]) - len(lines[j].lstrip()) > indent or not lines[j].strip()):
                        value += " " + lines[j].strip()
                        j += 1
                out.append((f"{path.relative_to(ROOT)}:{i + 1}", value))
    return out


def strip_strings(expr: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check(expr: str, names: set[str], labels: dict[str, set[str]]) -> list[str]:
    problems = []
    bare = strip_strings(expr)
    for a, b in ("()", "{}", "[]"):
        if bare.count(a) != bare.count(b):
            problems.append(f"unbalanced {a}{b}")
    metrics = set(re.findall(r"\b(budget_[a-zA-Z0-9_]+)\b", bare))
    for m in sorted(metrics - names):
        problems.append(f"no metric {m}")
    known = set()
    for m in metrics & names:
        known |= labels.get(m, set())
    if metrics and all(m in labels for m in metrics):
        used = set()
        for sel in re.findall(r"budget_[a-zA-Z0-9_]+\{([^}]*)\}", bare):
            used |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", sel))
        for group in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", bare):
            used |= {g.strip() for g in group.split(",") if g.strip()}
        if any(m.endswith("_bucket") for m in metrics):
            known.add("le")
        for label in sorted(used - known):
            problems.append(f"label {label!r} is on none of {sorted(metrics)}")
    return problems


def main() -> int:
    text = scrape()
    names, labels = exposed(text)
    ours = sorted(n for n in names if n.startswith("budget_"))
    if not ours:
        fail("the scrape has no budget_* metrics")
    exprs = expressions()
    bad = 0
    referenced: set[str] = set()
    for where, expr in exprs:
        referenced |= set(re.findall(r"\b(budget_[a-zA-Z0-9_]+)\b", strip_strings(expr)))
        for p in check(expr, names, labels):
            print(f"check-observability: {where}: {p}\n    {expr}", file=sys.stderr)
            bad += 1
    unused = sorted({n for n in ours if not n.endswith("_created")} - referenced)
    print(f"check-observability: {len(exprs)} expressions checked against {len(ours)} exposed "
          f"budget_* series names; {bad} problem(s)")
    if unused:
        print(f"check-observability: exposed but in no dashboard or rule: {', '.join(unused)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

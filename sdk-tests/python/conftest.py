"""Shared fixtures for the Python SDK suite: admin API access and expected-cost arithmetic.

The suite talks to a running `budget-server` (BUDGET_URL) whose limiters point at a running
`budget-mock-upstream` (MOCK_URL); `sdk-tests/run.sh` starts both. Admin credentials come from
ADMIN_USERNAME / ADMIN_PASSWORD.

For the upstream-key tests (test_upstream_keys.py), run.sh also starts a second mock,
KEYED_MOCK_URL, that accepts only the keys the server holds (UPSTREAM_KEY,
UPSTREAM_KEY_ROTATED, UPSTREAM_AZURE_KEY, one set per suite), and passes the server's binary
and database (BUDGET_SERVER_BIN, BUDGET_DB_FILE, SECRETS_KEY) for the start-up checks.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal

import pytest

BUDGET_URL = os.environ.get("BUDGET_URL", "http://127.0.0.1:8000").rstrip("/")
MOCK_URL = os.environ.get("MOCK_URL", "").rstrip("/")
KEYED_MOCK_URL = os.environ.get("KEYED_MOCK_URL", "").rstrip("/")
ADMIN_USERNAME = os.environ.get("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "changeme")

# List prices in dollars per 1M tokens (budget-core/data/prices.json).
PRICES = {
    "gpt-4o-2024-08-06": {"input": Decimal("2.5"), "cached_input": Decimal("1.25"), "output": Decimal("10")},
    "text-embedding-3-small": {"input": Decimal("0.02"), "cached_input": None, "output": Decimal("0")},
    "azure/gpt-4o-2024-08-06": {"input": Decimal("2.5"), "cached_input": Decimal("1.25"), "output": Decimal("10")},
    "azure/text-embedding-3-small": {"input": Decimal("0.022"), "cached_input": None, "output": Decimal("0")},
}

# What the mock streams with its default 8 deltas (budget_mock_upstream::completion_text(8)).
MOCK_TEXT = "Hello from the mock café 🚀 upstream."
MOCK_DELTAS = 8


def expected_cost(model: str, prompt: int, completion: int, cached: int = 0) -> Decimal:
    """Dollars for a usage at list price: uncached input, cached input, output."""
    p = PRICES[model]
    million = Decimal(1_000_000)
    cached_rate = p["cached_input"] if p["cached_input"] is not None else p["input"]
    return ((prompt - cached) * p["input"] + cached * cached_rate + completion * p["output"]) / million


def nanos(dollars) -> int:
    """A dollar amount (JSON number or Decimal) in whole nano-dollars."""
    return int((Decimal(str(dollars)) * Decimal(1_000_000_000)).to_integral_value())


def chat_prompt_tokens(messages) -> int:
    """The mock's prompt-token rule for chat: 3 + sum(4 + words(content))."""
    return 3 + sum(4 + len(m["content"].split()) for m in messages)


class Admin:
    """A minimal admin API client (stdlib only, so it cannot mask SDK behaviour)."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.created: list[str] = []  # limiter ids, purged when the session ends
        self.credentials: list[str] = []  # credential ids, deleted after the limiters
        body = self.request("POST", "/api/auth/login", {"username": username, "password": password}, auth=False)
        assert body["username"] == username
        self.token = body["token"]

    def request(self, method: str, path: str, body=None, auth: bool = True, expect=(200, 201, 204)):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                status, raw = res.status, res.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        assert status in expect, f"{method} {path} -> {status}: {raw[:500]!r}"
        return json.loads(raw) if raw else None

    def create_limiter(self, name: str, budget_limit: float = 20.0, **extra) -> dict:
        body = {
            "name": f"sdk-py {name} {uuid.uuid4().hex[:6]}",
            "budget_limit": budget_limit,
            "period_type": "day",
            "base_url": MOCK_URL,
            **extra,
        }
        limiter = self.request("POST", "/api/limiters", body, expect=(201,))
        self.created.append(limiter["id"])
        assert re.fullmatch(r"sk-budget-[0-9a-f]{32}", limiter["code"]), limiter
        assert limiter["proxy_endpoint"].endswith(f"/v1/{limiter['code']}")
        return limiter

    def purge_created(self) -> None:
        """Delete every limiter this session created, with its usage (`purge=true` also
        purges one a test already deleted; 404 = already purged)."""
        for limiter_id in self.created:
            self.request("DELETE", f"/api/limiters/{limiter_id}?purge=true", expect=(204, 404))
        self.created.clear()
        for credential_id in self.credentials:
            self.request("DELETE", f"/api/credentials/{credential_id}", expect=(204, 404))
        self.credentials.clear()

    def create_credential(self, name: str, api_key: str, kind: str = "openai", **extra) -> dict:
        body = {"name": f"sdk-py-{name}-{uuid.uuid4().hex[:6]}", "kind": kind, "api_key": api_key, **extra}
        credential = self.request("POST", "/api/credentials", body, expect=(201,))
        self.credentials.append(credential["id"])
        return credential

    def update(self, limiter_id: str, **fields) -> dict:
        return self.request("PUT", f"/api/limiters/{limiter_id}", fields)

    def stats(self, limiter_id: str) -> dict:
        return self.request("GET", f"/api/limiters/{limiter_id}/stats")

    def settled_stats(self, limiter_id: str, requests: int, timeout: float = 5.0) -> dict:
        """Stats once `requests` requests are recorded and nothing is in flight (settlement
        runs when the response body ends, a moment after the SDK has returned)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats(limiter_id)
            if (s["total_requests"] >= requests and s["in_flight"] == 0) or time.monotonic() > deadline:
                return s
            time.sleep(0.02)

    def recent(self, limiter_id: str) -> list:
        return self.request("GET", f"/api/usage/recent?limiter_id={limiter_id}&limit=50")


def metric(name: str, **labels) -> float:
    """One sample of the server's Prometheus `/metrics` (0 when absent)."""
    with urllib.request.urlopen(f"{BUDGET_URL}/metrics", timeout=10) as res:
        text = res.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series == name and not labels:
            return float(value)
        if series.startswith(name + "{"):
            got = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
            if got == want:
                return float(value)
    return 0.0


@pytest.fixture(scope="session")
def admin():
    assert MOCK_URL, "MOCK_URL must point at a running budget-mock-upstream"
    client = Admin(BUDGET_URL, ADMIN_USERNAME, ADMIN_PASSWORD)
    yield client
    # Leave the server as it was: the suite's limiters and their usage go.
    client.purge_created()

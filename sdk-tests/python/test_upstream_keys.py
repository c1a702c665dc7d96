"""Upstream keys held by the server (docs/upstream-keys.md), through the official `openai` package.

The limiters here point at KEYED_MOCK_URL, a mock that accepts only the keys the server holds
(`--accept-key`), so a request that succeeds proves the stored key was sent; the mock's
`GET /mock/seen-keys` lists every credential header value that reached it, so the tests can
also prove that the client's own key (or the limiter code used as a key) never did.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import selectors
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import openai
import pytest

from conftest import (
    ADMIN_PASSWORD,
    ADMIN_USERNAME,
    BUDGET_URL,
    KEYED_MOCK_URL,
    MOCK_DELTAS,
    MOCK_TEXT,
    MOCK_URL,
    chat_prompt_tokens,
    expected_cost,
    nanos,
)

UPSTREAM_KEY = os.environ.get("UPSTREAM_KEY", "")
UPSTREAM_KEY_ROTATED = os.environ.get("UPSTREAM_KEY_ROTATED", "")
UPSTREAM_AZURE_KEY = os.environ.get("UPSTREAM_AZURE_KEY", "")
SERVER_BIN = os.environ.get("BUDGET_SERVER_BIN", "")
DB_FILE = os.environ.get("BUDGET_DB_FILE", "")
SECRETS_KEY = os.environ.get("SECRETS_KEY", "")

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the budget proxy"},
]
AZURE_API_VERSION = "2024-10-21"


@pytest.fixture(scope="module", autouse=True)
def _environment():
    # Missing set-up is a failure, not a skip: run.sh provides all of it.
    missing = [
        name
        for name, value in [
            ("KEYED_MOCK_URL", KEYED_MOCK_URL),
            ("UPSTREAM_KEY", UPSTREAM_KEY),
            ("UPSTREAM_KEY_ROTATED", UPSTREAM_KEY_ROTATED),
            ("UPSTREAM_AZURE_KEY", UPSTREAM_AZURE_KEY),
        ]
        if not value
    ]
    assert not missing, f"sdk-tests/run.sh sets {missing}"


def client_key() -> str:
    """A client-side key that looks like a real OpenAI project key, unique per call."""
    return f"sk-proj-client-real-looking-key-{secrets.token_hex(20)}"


def middle(key: str) -> str:
    """The middle half of a key: catches a key logged or echoed partly masked."""
    return key[len(key) // 4 : len(key) * 3 // 4]


def same_view(a: dict, b: dict) -> bool:
    """Two views of one object are equal, timestamps compared to the microsecond (a view fresh
    from a create may carry nanoseconds the store does not keep)."""

    def norm(view: dict) -> dict:
        return {k: micro(v) if k.endswith("_at") and isinstance(v, str) else v for k, v in view.items()}

    return norm(a) == norm(b)


def micro(timestamp: str | None) -> str | None:
    """An RFC 3339 timestamp cut to microseconds."""
    return None if timestamp is None else re.sub(r"(\.\d{6})\d*", r"\1", timestamp)


def seen_keys(mock_url: str = KEYED_MOCK_URL) -> dict:
    with urllib.request.urlopen(f"{mock_url}/mock/seen-keys", timeout=10) as res:
        return json.load(res)


def reached_an_upstream(needle: str) -> bool:
    """`needle` is inside a credential header value either mock received."""
    return any(needle in v for url in (MOCK_URL, KEYED_MOCK_URL) for vs in seen_keys(url).values() for v in vs)


def assert_spend(admin, limiter, requests: int, cost) -> dict:
    stats = admin.settled_stats(limiter["id"], requests)
    assert stats["total_requests"] == requests, stats
    assert stats["in_flight"] == 0, stats
    assert nanos(stats["current_spend"]) == nanos(cost), (stats, cost)
    assert stats["unpriced_requests"] == 0 and stats["estimated_requests"] == 0, stats
    return stats


def keyed_limiter(admin, name: str, credential: dict | None, **extra) -> dict:
    limiter = admin.create_limiter(
        name, base_url=KEYED_MOCK_URL, credential_id=credential["id"] if credential else None, **extra
    )
    assert limiter["credential_id"] == (credential["id"] if credential else None), limiter
    return limiter


class Attempts:
    """Counts the HTTP requests the SDK sends (each retry is one more)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, request) -> None:
        self.n += 1


def test_credential_view_never_holds_the_key(admin):
    credential = admin.create_credential(
        "view", UPSTREAM_KEY, organization="org-server-held", project="proj_server_held"
    )
    assert credential["kind"] == "openai"
    assert credential["organization"] == "org-server-held"
    assert credential["project"] == "proj_server_held"
    assert credential["key_hint"].endswith(UPSTREAM_KEY[-4:]), credential
    assert len(credential["key_hint"].lstrip("…")) == 4, credential
    assert credential["fingerprint"].startswith("sha256:") and len(credential["fingerprint"]) == len("sha256:") + 12
    assert credential["limiter_count"] == 0
    assert "api_key" not in credential
    got = admin.request("GET", f"/api/credentials/{credential['id']}")
    assert same_view(got, credential), (got, credential)
    listed = admin.request("GET", "/api/credentials")
    assert [c["name"] for c in listed] == sorted(c["name"] for c in listed)
    assert credential["id"] in {c["id"] for c in listed}
    # Same key, same fingerprint: an admin can tell two credentials hold the same key.
    twin = admin.create_credential("view-twin", UPSTREAM_KEY)
    assert twin["fingerprint"] == credential["fingerprint"]
    other = admin.create_credential("view-other", UPSTREAM_KEY_ROTATED)
    assert other["fingerprint"] != credential["fingerprint"]
    # A name taken is 409.
    admin.request(
        "POST",
        "/api/credentials",
        {"name": credential["name"], "kind": "openai", "api_key": UPSTREAM_KEY},
        expect=(409,),
    )


def test_server_held_key_replaces_the_client_key(admin):
    credential = admin.create_credential(
        "inject", UPSTREAM_KEY, organization="org-server-held", project="proj_server_held"
    )
    limiter = keyed_limiter(admin, "inject", credential)
    mine = client_key()
    azure_style = f"client-api-key-{secrets.token_hex(16)}"
    client = openai.OpenAI(
        api_key=mine,
        organization="org-client-own",
        project="proj_client_own",
        base_url=f"{BUDGET_URL}/v1/{limiter['code']}",
        default_headers={"api-key": azure_style},  # Azure's header: removed as well
        max_retries=0,
    )
    res = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    # The keyed mock accepts only the server's keys: an answer means the stored key was sent.
    assert res.choices[0].message.content == MOCK_TEXT
    assert_spend(admin, limiter, 1, expected_cost(res.model, res.usage.prompt_tokens, res.usage.completion_tokens))

    seen = seen_keys()
    assert f"Bearer {UPSTREAM_KEY}" in seen["authorization"], seen
    assert "org-server-held" in seen["openai-organization"], seen
    assert "proj_server_held" in seen["openai-project"], seen
    assert not reached_an_upstream(mine), "the client's key reached an upstream"
    assert not reached_an_upstream(azure_style), "the client's api-key header reached an upstream"
    assert not reached_an_upstream("org-client-own") and not reached_an_upstream("proj_client_own")
    assert admin.request("GET", f"/api/credentials/{credential['id']}")["limiter_count"] == 1


def test_code_as_api_key_chat_stream_embeddings_responses(admin):
    credential = admin.create_credential("code-as-key", UPSTREAM_KEY)
    limiter = keyed_limiter(admin, "code-as-key", credential)
    code = limiter["code"]
    client = openai.OpenAI(api_key=code, base_url=f"{BUDGET_URL}/v1", max_retries=0)
    cost = 0

    chat = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert chat.choices[0].message.content == MOCK_TEXT
    cost += expected_cost(chat.model, chat.usage.prompt_tokens, chat.usage.completion_tokens)

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.http_request.url.path == "/v1/chat/completions"
    parsed = raw.parse()
    cost += expected_cost(parsed.model, parsed.usage.prompt_tokens, parsed.usage.completion_tokens)

    # Streamed without include_usage: the proxy still meters the usage it asked for.
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MOCK_TEXT
    assert all(c.usage is None for c in chunks)
    cost += expected_cost("gpt-4o-2024-08-06", chat_prompt_tokens(MESSAGES), MOCK_DELTAS)
    assert_spend(admin, limiter, 3, cost)

    emb = client.embeddings.create(model="text-embedding-3-small", input=["the quick brown fox", "jumps over"])
    assert len(emb.data) == 2 and emb.usage.prompt_tokens == 6
    cost += expected_cost(emb.model, emb.usage.prompt_tokens, 0)

    res = client.responses.create(model="gpt-4o", instructions="Answer briefly.", input="Say hello to the proxy")
    assert res.status == "completed" and res.output_text == MOCK_TEXT
    cost += expected_cost(res.model, res.usage.input_tokens, res.usage.output_tokens)

    events = list(client.responses.create(model="gpt-4o", input="Say hello to the proxy", stream=True))
    assert events[-1].type == "response.completed"
    usage = events[-1].response.usage
    cost += expected_cost(events[-1].response.model, usage.input_tokens, usage.output_tokens)

    stats = assert_spend(admin, limiter, 6, cost)
    # The key holder reads their own budget the same way: GET /v1/budget with the code as key.
    budget = client.get("budget", cast_to=object)
    assert nanos(budget["current_spend"]) == nanos(stats["current_spend"])
    assert budget["budget_limit"] == 20.0

    assert not reached_an_upstream(code), "the limiter code reached an upstream"
    assert f"Bearer {UPSTREAM_KEY}" in seen_keys()["authorization"]


def test_code_as_key_without_a_credential_is_authentication_error_not_retried(admin):
    limiter = keyed_limiter(admin, "no-credential", None)
    attempts = Attempts()
    client = openai.OpenAI(
        api_key=limiter["code"],
        base_url=f"{BUDGET_URL}/v1",
        max_retries=2,
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [attempts]}),
    )
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    err = info.value
    assert err.status_code == 401
    assert err.code == "invalid_api_key"
    assert err.type == "invalid_request_error"
    assert "/v1/" in err.body["message"], err.body  # it says how to use the code instead
    assert limiter["code"] not in err.body["message"]
    assert attempts.n == 1
    assert admin.stats(limiter["id"])["total_requests"] == 0
    assert not reached_an_upstream(limiter["code"])
    # The same limiter in path mode still passes the client's own key through (and the keyed
    # mock, which accepts only server-held keys, refuses that one: proof it was forwarded as is).
    mine = client_key()
    with pytest.raises(openai.AuthenticationError) as info:
        openai.OpenAI(api_key=mine, base_url=f"{BUDGET_URL}/v1/{limiter['code']}", max_retries=0).embeddings.create(
            model="text-embedding-3-small", input="hi"
        )
    assert info.value.body["message"].startswith("Incorrect API key provided: sk-proj-"), info.value.body
    assert any(mine in v for v in seen_keys()["authorization"])


def test_rotating_the_credential_takes_effect_on_the_next_request(admin):
    credential = admin.create_credential("rotate", UPSTREAM_KEY)
    limiter = keyed_limiter(admin, "rotate", credential)
    client = openai.OpenAI(api_key=limiter["code"], base_url=f"{BUDGET_URL}/v1", max_retries=0)
    client.embeddings.create(model="text-embedding-3-small", input="before")
    assert not any(UPSTREAM_KEY_ROTATED in v for v in seen_keys()["authorization"]), "rotated key used early"

    rotated = admin.request("PUT", f"/api/credentials/{credential['id']}", {"api_key": UPSTREAM_KEY_ROTATED})
    assert rotated["key_hint"].endswith(UPSTREAM_KEY_ROTATED[-4:])
    assert rotated["fingerprint"] != credential["fingerprint"]
    assert rotated["rotated_at"] and micro(rotated["rotated_at"]) != micro(credential.get("rotated_at"))
    assert rotated["name"] == credential["name"]

    client.embeddings.create(model="text-embedding-3-small", input="after")
    assert f"Bearer {UPSTREAM_KEY_ROTATED}" in seen_keys()["authorization"]

    # A rename alone is not a rotation: the key stays.
    renamed = admin.request("PUT", f"/api/credentials/{credential['id']}", {"name": credential["name"] + "-b"})
    assert renamed["fingerprint"] == rotated["fingerprint"]
    assert micro(renamed["rotated_at"]) == micro(rotated["rotated_at"])
    assert_spend(admin, limiter, 2, expected_cost("text-embedding-3-small", 1, 0) * 2)


def test_rotating_a_limiter_code_with_a_grace_period(admin):
    credential = admin.create_credential("code-grace", UPSTREAM_KEY)
    limiter = keyed_limiter(admin, "code-grace", credential)
    old = limiter["code"]
    before = datetime.now(timezone.utc)
    rotated = admin.request("POST", f"/api/limiters/{limiter['id']}/rotate-code", {"grace_seconds": 120})
    new = rotated["code"]
    assert new != old and new.startswith("sk-budget-")
    assert rotated["previous_code"]["code"] == old, rotated
    expires = datetime.fromisoformat(micro(rotated["previous_code"]["until"]).replace("Z", "+00:00"))
    assert 100 <= (expires - before).total_seconds() <= 140, rotated

    def works(code: str) -> None:
        path = openai.OpenAI(api_key=client_key(), base_url=f"{BUDGET_URL}/v1/{code}", max_retries=0)
        assert path.embeddings.create(model="text-embedding-3-small", input="hi").data
        as_key = openai.OpenAI(api_key=code, base_url=f"{BUDGET_URL}/v1", max_retries=0)
        assert as_key.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == MOCK_TEXT

    works(old)
    works(new)
    assert admin.settled_stats(limiter["id"], 4)["total_requests"] == 4  # one limiter, either code

    # Without a grace period the previous code stops at once, and so does the older one.
    third = admin.request("POST", f"/api/limiters/{limiter['id']}/rotate-code", {})["code"]
    for gone in (old, new):
        with pytest.raises(openai.NotFoundError):
            openai.OpenAI(api_key="sk-test", base_url=f"{BUDGET_URL}/v1/{gone}", max_retries=0).embeddings.create(
                model="text-embedding-3-small", input="hi"
            )
        with pytest.raises(openai.AuthenticationError) as info:
            openai.OpenAI(api_key=gone, base_url=f"{BUDGET_URL}/v1", max_retries=0).embeddings.create(
                model="text-embedding-3-small", input="hi"
            )
        assert info.value.code == "invalid_api_key"
    works(third)
    assert admin.request("GET", f"/api/limiters/{limiter['id']}")["previous_code"] is None


def test_a_code_grace_period_ends(admin):
    credential = admin.create_credential("grace-ends", UPSTREAM_KEY)
    limiter = keyed_limiter(admin, "grace-ends", credential)
    old = limiter["code"]
    rotated = admin.request("POST", f"/api/limiters/{limiter['id']}/rotate-code", {"grace_seconds": 1})
    path = openai.OpenAI(api_key=client_key(), base_url=f"{BUDGET_URL}/v1/{old}", max_retries=0)
    as_key = openai.OpenAI(api_key=old, base_url=f"{BUDGET_URL}/v1", max_retries=0)
    until = datetime.fromisoformat(micro(rotated["previous_code"]["until"]).replace("Z", "+00:00"))
    if datetime.now(timezone.utc) < until:
        assert path.embeddings.create(model="text-embedding-3-small", input="hi").data
    time.sleep(max(0.0, (until - datetime.now(timezone.utc)).total_seconds()) + 0.5)
    with pytest.raises(openai.NotFoundError):
        path.embeddings.create(model="text-embedding-3-small", input="hi")
    with pytest.raises(openai.AuthenticationError):
        as_key.embeddings.create(model="text-embedding-3-small", input="hi")
    new = openai.OpenAI(api_key=rotated["code"], base_url=f"{BUDGET_URL}/v1", max_retries=0)
    assert new.embeddings.create(model="text-embedding-3-small", input="hi").data


def test_azure_limiter_with_a_server_held_api_key(admin):
    credential = admin.create_credential("azure", UPSTREAM_AZURE_KEY, kind="azure")
    assert credential["kind"] == "azure"
    limiter = keyed_limiter(admin, "azure", credential, provider="azure")
    junk = f"client-junk-{secrets.token_hex(16)}"

    # Path mode: the client's api-key is replaced by the stored one.
    path = openai.AzureOpenAI(
        azure_endpoint=f"{BUDGET_URL}/v1/{limiter['code']}", api_key=junk, api_version=AZURE_API_VERSION, max_retries=0
    )
    res = path.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert res.choices[0].message.content == MOCK_TEXT
    cost = expected_cost("azure/gpt-4o-2024-08-06", res.usage.prompt_tokens, res.usage.completion_tokens)

    # Code-as-key mode: the endpoint is the server itself, the code is the api-key.
    as_key = openai.AzureOpenAI(
        azure_endpoint=BUDGET_URL, api_key=limiter["code"], api_version=AZURE_API_VERSION, max_retries=0
    )
    chunks = list(as_key.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MOCK_TEXT
    cost += expected_cost("azure/gpt-4o-2024-08-06", chat_prompt_tokens(MESSAGES), MOCK_DELTAS)
    emb = as_key.embeddings.create(model="text-embedding-3-small", input="one two three")
    assert emb.data
    cost += expected_cost("azure/text-embedding-3-small", emb.usage.prompt_tokens, 0)
    assert_spend(admin, limiter, 3, cost)

    seen = seen_keys()
    assert UPSTREAM_AZURE_KEY in seen["api-key"], seen
    assert not reached_an_upstream(junk) and not reached_an_upstream(limiter["code"])


def test_the_key_is_in_no_api_response_metrics_or_error_body(admin):
    keys = [UPSTREAM_KEY, UPSTREAM_KEY_ROTATED, UPSTREAM_AZURE_KEY]
    bodies: list[tuple[str, str]] = []

    def raw(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                status, text = res.status, res.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode(errors="replace")
        bodies.append((f"{method} {url} -> {status}", text))
        return status, text

    auth = {"Authorization": f"Bearer {admin.token}", "Content-Type": "application/json"}
    credential = admin.create_credential("leak", UPSTREAM_KEY, organization="org-leak")
    azure = admin.create_credential("leak-azure", UPSTREAM_AZURE_KEY, kind="azure")
    limiter = keyed_limiter(admin, "leak", credential, budget_limit=0.000001)
    code = limiter["code"]
    rotated = admin.request("PUT", f"/api/credentials/{credential['id']}", {"api_key": UPSTREAM_KEY_ROTATED})
    bodies.append(("PUT credential", json.dumps(rotated)))

    # Admin API: reads, and refusals of bodies that carry a key.
    for path in [
        "/api/credentials",
        f"/api/credentials/{credential['id']}",
        f"/api/credentials/{azure['id']}",
        "/api/limiters",
        f"/api/limiters/{limiter['id']}",
        f"/api/limiters/{limiter['id']}/stats",
        "/api/openapi.json",
    ]:
        assert raw("GET", BUDGET_URL + path, headers=auth)[0] == 200, path
    # Refused: a name taken, an unknown kind, an empty name, a bad organization, a key with
    # control characters (pasted with a line break); the key is in every body, never echoed.
    for body, want in [
        ({"name": credential["name"], "kind": "openai", "api_key": UPSTREAM_KEY}, (409,)),
        ({"name": "sdk-py-bad-kind", "kind": "bogus", "api_key": UPSTREAM_KEY}, (400, 422)),
        ({"name": "", "kind": "openai", "api_key": UPSTREAM_KEY}, (400, 422)),
        ({"name": "sdk-py-bad-org", "kind": "openai", "api_key": UPSTREAM_KEY, "organization": 7}, (400, 422)),
        ({"name": "sdk-py-ctl", "kind": "openai", "api_key": f"{UPSTREAM_KEY}\n{UPSTREAM_KEY}"}, (400, 422)),
    ]:
        status, text = raw("POST", BUDGET_URL + "/api/credentials", json.dumps(body).encode(), auth)
        if status == 201:
            admin.credentials.append(json.loads(text)["id"])
        assert status in want, (body, status, text)
    raw(
        "PUT",
        f"{BUDGET_URL}/api/credentials/{credential['id']}",
        json.dumps({"api_key": UPSTREAM_KEY_ROTATED, "name": ""}).encode(),
        auth,
    )
    raw("DELETE", f"{BUDGET_URL}/api/credentials/{credential['id']}", headers=auth)  # 409: in use

    # Proxy: a success, then errors of several kinds, in path and code-as-key mode.
    chat = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    as_key = {"Authorization": f"Bearer {code}", "Content-Type": "application/json"}
    path_mode = {"Authorization": f"Bearer {client_key()}", "Content-Type": "application/json"}
    assert raw("POST", f"{BUDGET_URL}/v1/chat/completions", chat, as_key)[0] == 200
    raw("POST", f"{BUDGET_URL}/v1/chat/completions", chat, as_key)  # 429: the tiny budget is spent
    admin.update(limiter["id"], budget_limit=20.0)
    for method, url, body, headers in [
        ("GET", f"{BUDGET_URL}/v1/{code}/no-such-endpoint", None, path_mode),
        ("GET", f"{BUDGET_URL}/v1/no-such-endpoint", None, as_key),
        ("POST", f"{BUDGET_URL}/v1/{code}/chat/completions", b"{not json", path_mode),
        ("POST", f"{BUDGET_URL}/v1/chat/completions", b"{not json", as_key),
        ("POST", f"{BUDGET_URL}/v1/{code}/chat/completions", json.dumps({"model": "mock-error-500"}).encode(), path_mode),
        ("POST", f"{BUDGET_URL}/v1/{code}/chat/completions", json.dumps({"model": "mock-error-429"}).encode(), path_mode),
        ("POST", f"{BUDGET_URL}/v1/{'sk-budget-' + '0' * 32}/chat/completions", chat, path_mode),
        ("POST", f"{BUDGET_URL}/v1/chat/completions", chat, {"Authorization": "Bearer sk-budget-" + "0" * 32}),
        ("GET", f"{BUDGET_URL}/v1/{code}/budget", None, {}),
        ("GET", f"{BUDGET_URL}/v1/budget", None, as_key),
    ]:
        status, _ = raw(method, url, body, headers)
        assert status != 200 or url.endswith("budget"), (method, url, status)
    raw("GET", f"{BUDGET_URL}/metrics")
    raw("GET", f"{BUDGET_URL}/health")

    # Control: the bodies were read (the code itself does show, e.g. in the limiter view).
    assert any(code in text for _, text in bodies)
    for where, text in bodies:
        for key in keys:
            assert key not in text, f"{where} holds an upstream key"
            assert middle(key) not in text, f"{where} holds part of an upstream key"


def _db_bytes() -> bytes:
    assert DB_FILE, "run.sh sets BUDGET_DB_FILE"
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(DB_FILE + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


def test_the_database_file_holds_no_plaintext_key(admin):
    name_marker = f"dbcheck-{secrets.token_hex(4)}"
    credential = admin.create_credential(name_marker, UPSTREAM_KEY, organization=f"org-{name_marker}")
    azure = admin.create_credential(name_marker + "-az", UPSTREAM_AZURE_KEY, kind="azure")
    admin.request("PUT", f"/api/credentials/{credential['id']}", {"api_key": UPSTREAM_KEY_ROTATED})
    admin.request("PUT", f"/api/credentials/{azure['id']}", {"api_key": UPSTREAM_AZURE_KEY})
    time.sleep(0.2)
    data = _db_bytes()
    # Control: what was written is in the bytes read (in the file or its WAL).
    assert credential["name"].encode() in data, "the credential's name is not in the database files read"
    for key in (UPSTREAM_KEY, UPSTREAM_KEY_ROTATED, UPSTREAM_AZURE_KEY):
        for form in (key, middle(key)):
            assert form.encode() not in data, "plaintext upstream key in the database"
            assert form.encode("utf-16-le") not in data
            assert form.encode().hex().encode() not in data


class ServerProcess:
    """A second `budget-server` process (same binary as the suite's server), its output read as
    it comes."""

    def __init__(self, db_url: str, secrets_key: str | None, workdir: str):
        env = {k: v for k, v in os.environ.items() if k not in ("SECRETS_KEY", "RUST_LOG", "DATABASE_URL")}
        env.update(
            HOST="127.0.0.1",
            PORT="0",
            DATABASE_URL=db_url,
            JWT_SECRET="sdk-tests-second-server-jwt-secret-0123456789",
            ADMIN_USERNAME=ADMIN_USERNAME,
            ADMIN_PASSWORD=ADMIN_PASSWORD,
            OPENAI_API_BASE_URL=MOCK_URL,
            SHUTDOWN_GRACE_SECS="1",
            RUST_LOG="info",
        )
        if secrets_key is not None:
            env["SECRETS_KEY"] = secrets_key
        assert SERVER_BIN and os.access(SERVER_BIN, os.X_OK), "run.sh sets BUDGET_SERVER_BIN"
        self.proc = subprocess.Popen([SERVER_BIN], cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ, "out")
        self._selector.register(self.proc.stderr, selectors.EVENT_READ, "err")

    def _pump(self, timeout: float) -> bool:
        """Read what is there (waiting up to `timeout`); False once both pipes are closed."""
        if not self._selector.get_map():
            return False
        for key, _ in self._selector.select(timeout):
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                self._selector.unregister(key.fileobj)
            elif key.data == "out":
                self.out += data
            else:
                self.err += data
        return True

    @property
    def output(self) -> str:
        return (self.out + self.err).decode(errors="replace")

    def url(self) -> str | None:
        for line in self.out.decode(errors="replace").splitlines():
            if line.startswith("listening on http://"):
                return line.split("listening on ", 1)[1].strip().rstrip("/")
        return None

    def wait_exit_or_listen(self, timeout: float = 60.0) -> int | None:
        """The exit code, or None when it listens first (it keeps running: call stop)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.url():
                return None
            if not self._pump(0.1):
                return self.proc.wait(timeout=10)
        self.proc.kill()
        self.stop()
        raise AssertionError(f"the server neither exited nor listened within {timeout}s: {self.output[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while self._pump(0.1) and time.monotonic() < deadline:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _start_expecting_exit(db_url: str, secrets_key: str | None, workdir: str) -> tuple[int, str]:
    server = ServerProcess(db_url, secrets_key, workdir)
    code = server.wait_exit_or_listen()
    server.stop()
    assert code is not None, f"the server started and listened: {server.output[-2000:]}"
    return code, server.output


def test_a_wrong_secrets_key_at_start_up_is_a_clear_error(admin, tmp_path):
    assert SECRETS_KEY and DB_FILE
    admin.create_credential("startup", UPSTREAM_KEY)
    workdir = str(tmp_path)
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    code, output = _start_expecting_exit(f"sqlite:{DB_FILE}", wrong, workdir)
    assert code != 0
    assert "SECRETS_KEY" in output, output
    assert "listening on" not in output
    for secret in (UPSTREAM_KEY, middle(UPSTREAM_KEY), wrong, SECRETS_KEY):
        assert secret not in output, "the start-up error shows a secret"

    # None at all, with credentials stored: the same refusal.
    code, output = _start_expecting_exit(f"sqlite:{DB_FILE}", None, workdir)
    assert code != 0 and "SECRETS_KEY" in output, output

    # Control: the right key on the same database starts (so the refusals above are the key's).
    server = ServerProcess(f"sqlite:{DB_FILE}", SECRETS_KEY, workdir)
    try:
        assert server.wait_exit_or_listen() is None, server.output[-2000:]
    finally:
        server.stop()
    for secret in (UPSTREAM_KEY, middle(UPSTREAM_KEY), SECRETS_KEY, middle(SECRETS_KEY)):
        assert secret not in server.output, "the second server's log shows a secret"


def test_a_malformed_secrets_key_or_none_at_all_on_a_fresh_database(admin, tmp_path):
    workdir = str(tmp_path)
    db = f"sqlite:{workdir}/fresh.db"
    code, output = _start_expecting_exit(db, "too-short", workdir)
    assert code != 0 and "SECRETS_KEY" in output, output
    assert "too-short" not in output

    # No SECRETS_KEY: the server runs, but refuses to store a credential and says how to fix it.
    server = ServerProcess(db, None, workdir)
    try:
        assert server.wait_exit_or_listen() is None, server.output[-2000:]
        url = server.url()

        def call(method, path, body=None, token=None):
            req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(), method=method)
            req.add_header("Content-Type", "application/json")
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=10) as res:
                    return res.status, json.loads(res.read() or b"null")
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"null")

        _, login = call("POST", "/api/auth/login", {"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
        status, body = call(
            "POST", "/api/credentials", {"name": "nokey", "kind": "openai", "api_key": UPSTREAM_KEY}, login["token"]
        )
        assert status == 400, body
        assert "SECRETS_KEY" in json.dumps(body), body
        assert UPSTREAM_KEY not in json.dumps(body)
        assert call("GET", "/api/credentials", token=login["token"]) == (200, [])
    finally:
        server.stop()


def test_a_credential_in_use_is_not_deleted_and_unknown_ids_are_refused(admin):
    credential = admin.create_credential("in-use", UPSTREAM_KEY)
    limiter = keyed_limiter(admin, "in-use", credential)
    refused = admin.request("DELETE", f"/api/credentials/{credential['id']}", expect=(409,))
    assert limiter["name"] in json.dumps(refused), refused
    # Attaching an unknown credential is a 400; detaching with null works.
    admin.request(
        "PUT",
        f"/api/limiters/{limiter['id']}",
        {"credential_id": "00000000-0000-4000-8000-000000000000"},
        expect=(400, 422),
    )
    detached = admin.update(limiter["id"], credential_id=None)
    assert detached["credential_id"] is None
    assert admin.request("GET", f"/api/credentials/{credential['id']}")["limiter_count"] == 0
    admin.request("DELETE", f"/api/credentials/{credential['id']}", expect=(204,))
    admin.request("GET", f"/api/credentials/{credential['id']}", expect=(404,))

"""Budget policies seen through the official `openai` Python package: each refusal arrives as
the SDK's own exception class (403 `PermissionDeniedError`, 400 `BadRequestError`, 429
`RateLimitError`), in one attempt, and nothing reaches the upstream.

See docs/concepts.md ("Budget policies") for what each policy does.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import openai
import pytest

from conftest import BUDGET_URL, MOCK_TEXT, metric

HELLO = [{"role": "user", "content": "Hello!"}]
TINY = 0.000001  # one request at gpt-4o prices uses it up


class Attempts:
    """Counts the HTTP requests the SDK sends (each retry is one more)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, request) -> None:
        self.n += 1


def counted_client(limiter: dict) -> tuple[openai.OpenAI, Attempts]:
    attempts = Attempts()
    client = openai.OpenAI(
        api_key="sk-test",
        base_url=f"{BUDGET_URL}/v1/{limiter['code']}",
        max_retries=2,  # the SDK's default: it would retry a retryable answer twice
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [attempts]}),
    )
    return client, attempts


def upstream_calls() -> float:
    """Requests the proxy has forwarded to the upstream so far (all limiters)."""
    return metric("budget_upstream_latency_seconds_count")


def refused_once(client, attempts: Attempts, exc: type, call) -> openai.APIStatusError:
    """Run `call(client)`, expecting `exc` after exactly one attempt and no upstream call."""
    before_attempts, before_upstream = attempts.n, upstream_calls()
    with pytest.raises(exc) as info:
        call(client)
    assert attempts.n - before_attempts == 1, "the SDK retried the refusal"
    assert upstream_calls() == before_upstream, "the refused request reached the upstream"
    err = info.value
    assert err.response.headers["x-should-retry"] == "false"
    assert isinstance(err.body, dict) and err.body["message"], err.body
    return err


def chat(model: str = "gpt-4o", **kw):
    return lambda c: c.chat.completions.create(model=model, messages=HELLO, **kw)


def test_model_outside_allowed_models_is_permission_denied(admin):
    limiter = admin.create_limiter("models", allowed_models=["gpt-4o-mini", "text-embedding-3-*"])
    client, attempts = counted_client(limiter)
    err = refused_once(client, attempts, openai.PermissionDeniedError, chat("gpt-4o"))
    assert (err.status_code, err.code, err.type) == (403, "model_not_allowed", "permission_error")
    assert "gpt-4o" in err.body["message"]
    # The glob admits the embedding model; the exact name admits the mini model.
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices[0].message.content == MOCK_TEXT
    assert admin.settled_stats(limiter["id"], 2)["total_requests"] == 2


def test_expired_limiter_is_permission_denied(admin):
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    limiter = admin.create_limiter("expired")
    client, attempts = counted_client(limiter)
    client.embeddings.create(model="text-embedding-3-small", input="hi")  # works before expiry
    admin.update(limiter["id"], expires_at=past)
    err = refused_once(
        client, attempts, openai.PermissionDeniedError, lambda c: c.embeddings.create(model="text-embedding-3-small", input="hi")
    )
    assert (err.status_code, err.code) == (403, "limiter_expired")
    assert "expired" in err.body["message"]
    admin.update(limiter["id"], expires_at=None)
    client.embeddings.create(model="text-embedding-3-small", input="hi")


def test_request_above_max_request_cost_is_bad_request(admin):
    # gpt-4o output is $10 per 1M tokens: a 1M-token output limit could cost $10, above $0.01.
    limiter = admin.create_limiter("price-guard", max_request_cost=0.01)
    client, attempts = counted_client(limiter)
    err = refused_once(client, attempts, openai.BadRequestError, chat(max_tokens=1_000_000))
    assert (err.status_code, err.code) == (400, "request_cost_too_high")
    assert "$0.01" in err.body["message"]
    # Without an output limit the proxy gives the request one that fits, and it goes through.
    res = client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert res.choices[0].message.content == MOCK_TEXT


def test_require_user_without_user_is_bad_request(admin):
    limiter = admin.create_limiter("require-user", require_user=True)
    client, attempts = counted_client(limiter)
    err = refused_once(client, attempts, openai.BadRequestError, chat())
    assert (err.status_code, err.code) == (400, "user_required")
    assert chat(user="alice")(client).choices[0].message.content == MOCK_TEXT


def test_user_budget_exhausted_is_rate_limit_naming_the_user(admin):
    limiter = admin.create_limiter("per-user", user_budget={"budget_limit": TINY, "period_type": "day"})
    client, attempts = counted_client(limiter)
    chat(user="alice")(client)
    admin.settled_stats(limiter["id"], 1)
    refused = metric("budget_requests_total", limiter=limiter["id"], status="429")

    err = refused_once(client, attempts, openai.RateLimitError, chat(user="alice"))
    assert (err.status_code, err.code) == (429, "budget_exceeded")
    message = err.body["message"]
    assert message.startswith('User budget limit exceeded for user "alice": $'), message
    assert "per day" in message and "Resets at" in message, message
    assert err.response.headers["x-budget-user"] == "alice"
    assert err.response.headers["x-budget-period"] == "day"
    assert int(err.response.headers["retry-after"]) >= 1
    assert metric("budget_requests_total", limiter=limiter["id"], status="429") - refused == 1

    # Another user has a budget of their own; a request without a user counts only against
    # the limiter's windows.
    assert chat(user="bob")(client).choices[0].message.content == MOCK_TEXT
    assert chat()(client).choices[0].message.content == MOCK_TEXT
    stats = admin.settled_stats(limiter["id"], 3)
    assert stats["total_requests"] == 3, stats


def test_extra_hourly_window_exhausted_is_rate_limit_per_hour(admin):
    limiter = admin.create_limiter(
        "hourly", budget_limit=100.0, extra_budgets=[{"budget_limit": TINY, "period_type": "hour"}]
    )
    client, attempts = counted_client(limiter)
    chat()(client)
    admin.settled_stats(limiter["id"], 1)
    err = refused_once(client, attempts, openai.RateLimitError, chat())
    assert err.code == "budget_exceeded"
    message = err.body["message"]
    assert message.startswith("Budget limit exceeded: $") and "per hour" in message, message
    assert "Resets at" in message, message
    assert err.response.headers["x-budget-period"] == "hour"
    assert 1 <= int(err.response.headers["retry-after"]) <= 3600
    # The key holder sees both windows, the hourly one spent.
    budget = client.get("budget", cast_to=object)
    periods = [(w["period_type"], w["primary"]) for w in budget["windows"]]
    assert periods == [("day", True), ("hour", False)], budget["windows"]
    assert budget["windows"][1]["current_spend"] > 0

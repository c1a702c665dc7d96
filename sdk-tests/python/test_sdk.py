"""The official `openai` Python package against budget-server.

Each test creates its own limiter through the admin API (upstream: the mock), points an
unmodified SDK client at the limiter's proxy endpoint, and checks both what the SDK sees and
what the server recorded: the cost must equal the usage priced at list price, to the
nano-dollar.
"""

from __future__ import annotations

import time

import openai
import pytest

from conftest import (
    BUDGET_URL,
    MOCK_DELTAS,
    MOCK_TEXT,
    chat_prompt_tokens,
    expected_cost,
    metric,
    nanos,
)

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Say hello to the budget proxy"},
]


def client_for(limiter: dict, **kw) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=f"{BUDGET_URL}/v1/{limiter['code']}", **kw)


def azure_client_for(limiter: dict, **kw) -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        api_key="azure-test-key",
        api_version="2024-10-21",
        azure_endpoint=f"{BUDGET_URL}/v1/{limiter['code']}",
        **kw,
    )


def assert_spend(admin, limiter, requests: int, cost) -> dict:
    """The limiter recorded `requests` requests costing exactly `cost` dollars."""
    stats = admin.settled_stats(limiter["id"], requests)
    assert stats["total_requests"] == requests, stats
    assert stats["in_flight"] == 0, stats
    assert stats["current_spend"] == pytest.approx(float(cost), abs=1e-9), stats
    assert nanos(stats["current_spend"]) == nanos(cost), (stats, cost)
    assert stats["unpriced_requests"] == 0, stats
    assert stats["estimated_requests"] == 0, stats
    return stats


def test_sdk_version_is_pinned():
    major = int(openai.__version__.split(".")[0])
    assert major == 3, f"sdk-tests pins openai 3.x, got {openai.__version__}"


def test_chat_completion_cost_is_exact(admin):
    limiter = admin.create_limiter("chat")
    res = client_for(limiter).chat.completions.create(model="gpt-4o", messages=MESSAGES)

    assert res.object == "chat.completion"
    assert res.model == "gpt-4o-2024-08-06"
    assert res.choices[0].message.content == MOCK_TEXT
    assert res.choices[0].finish_reason == "stop"
    assert res.usage.prompt_tokens == chat_prompt_tokens(MESSAGES)
    assert res.usage.completion_tokens == MOCK_DELTAS
    assert res.usage.total_tokens == res.usage.prompt_tokens + res.usage.completion_tokens

    cached = res.usage.prompt_tokens_details.cached_tokens if res.usage.prompt_tokens_details else 0
    cost = expected_cost(res.model, res.usage.prompt_tokens, res.usage.completion_tokens, cached)
    stats = assert_spend(admin, limiter, 1, cost)
    assert stats["prompt_tokens"] == res.usage.prompt_tokens
    assert stats["completion_tokens"] == res.usage.completion_tokens
    # The limiter listing shows the same spend.
    listed = next(l for l in admin.request("GET", "/api/limiters") if l["id"] == limiter["id"])
    assert nanos(listed["current_spend"]) == nanos(cost)


def test_with_raw_response_shows_budget_headers(admin):
    limiter = admin.create_limiter("raw")
    raw = client_for(limiter).chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.http_request.url.path == f"/v1/{limiter['code']}/chat/completions"
    assert raw.headers.get("x-request-id"), "upstream headers are passed through"
    assert raw.parse().choices[0].message.content == MOCK_TEXT


def test_cached_prompt_tokens_are_priced_at_the_cached_rate(admin):
    limiter = admin.create_limiter("cached")
    long_prompt = " ".join(["token"] * 1400)  # >= 1024 prompt tokens: the mock reports a cache hit
    messages = [{"role": "user", "content": long_prompt}]
    res = client_for(limiter).chat.completions.create(model="gpt-4o", messages=messages)
    cached = res.usage.prompt_tokens_details.cached_tokens
    assert res.usage.prompt_tokens == chat_prompt_tokens(messages)
    assert cached == res.usage.prompt_tokens // 128 * 128 and cached > 0
    cost = expected_cost(res.model, res.usage.prompt_tokens, res.usage.completion_tokens, cached)
    assert cost < expected_cost(res.model, res.usage.prompt_tokens, res.usage.completion_tokens, 0)
    assert_spend(admin, limiter, 1, cost)


def test_streaming_without_include_usage_is_metered_exactly(admin):
    limiter = admin.create_limiter("stream")
    stream = client_for(limiter).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    chunks = list(stream)

    # The proxy asks upstream for usage, but the client did not: it must not see any.
    assert chunks, "no chunks"
    assert all(c.usage is None for c in chunks), [c.usage for c in chunks if c.usage is not None]
    assert all(c.choices for c in chunks), "a usage-only chunk (empty choices) leaked to the client"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == MOCK_TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"

    prompt = chat_prompt_tokens(MESSAGES)
    cost = expected_cost("gpt-4o-2024-08-06", prompt, MOCK_DELTAS)
    stats = assert_spend(admin, limiter, 1, cost)
    assert (stats["prompt_tokens"], stats["completion_tokens"]) == (prompt, MOCK_DELTAS)
    [record] = admin.recent(limiter["id"])
    assert record["streamed"] is True
    assert record["estimated"] is False
    assert record["model"] == "gpt-4o-2024-08-06"


def test_streaming_with_include_usage_delivers_the_usage_chunk(admin):
    limiter = admin.create_limiter("stream-usage")
    stream = client_for(limiter).chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == []
    assert final.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == MOCK_TEXT
    assert final.usage.prompt_tokens == chat_prompt_tokens(MESSAGES)
    assert final.usage.completion_tokens == MOCK_DELTAS
    cost = expected_cost(final.model, final.usage.prompt_tokens, final.usage.completion_tokens)
    assert_spend(admin, limiter, 1, cost)


def test_stream_closed_early_is_still_settled(admin):
    limiter = admin.create_limiter("stream-early-close")
    stream = client_for(limiter).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    stream.close()
    stats = admin.settled_stats(limiter["id"], 1)
    assert stats["in_flight"] == 0, stats
    assert stats["held"] == 0, stats
    assert stats["total_requests"] == 1, stats


def test_embeddings_cost_is_exact(admin):
    limiter = admin.create_limiter("embeddings")
    res = client_for(limiter).embeddings.create(
        model="text-embedding-3-small", input=["the quick brown fox", "jumps over"]
    )
    assert len(res.data) == 2
    assert all(len(d.embedding) > 0 and isinstance(d.embedding[0], float) for d in res.data)
    assert res.usage.prompt_tokens == 6
    cost = expected_cost(res.model, res.usage.prompt_tokens, 0)
    assert_spend(admin, limiter, 1, cost)


def test_responses_api_plain(admin):
    limiter = admin.create_limiter("responses")
    res = client_for(limiter).responses.create(
        model="gpt-4o", instructions="Answer briefly.", input="Say hello to the proxy"
    )
    assert res.status == "completed"
    assert res.output_text == MOCK_TEXT
    assert res.usage.input_tokens == (4 + 2) + 5
    assert res.usage.output_tokens == MOCK_DELTAS
    cost = expected_cost(
        res.model, res.usage.input_tokens, res.usage.output_tokens, res.usage.input_tokens_details.cached_tokens
    )
    assert_spend(admin, limiter, 1, cost)


def test_responses_api_streamed(admin):
    limiter = admin.create_limiter("responses-stream")
    events = list(
        client_for(limiter).responses.create(model="gpt-4o", input="Say hello to the proxy", stream=True)
    )
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == MOCK_TEXT
    usage = events[-1].response.usage
    assert (usage.input_tokens, usage.output_tokens) == (5, MOCK_DELTAS)
    cost = expected_cost(events[-1].response.model, usage.input_tokens, usage.output_tokens)
    assert_spend(admin, limiter, 1, cost)


def test_responses_stream_helper(admin):
    limiter = admin.create_limiter("responses-helper")
    with client_for(limiter).responses.stream(model="gpt-4o", input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == MOCK_TEXT == final.output_text
    cost = expected_cost(final.model, final.usage.input_tokens, final.usage.output_tokens)
    assert_spend(admin, limiter, 1, cost)


def test_azure_client_chat(admin):
    limiter = admin.create_limiter("azure", provider="azure")
    assert limiter["provider"] == "azure"
    res = azure_client_for(limiter).chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert res.choices[0].message.content == MOCK_TEXT
    assert res.model == "gpt-4o-2024-08-06"
    cost = expected_cost("azure/gpt-4o-2024-08-06", res.usage.prompt_tokens, res.usage.completion_tokens)
    assert_spend(admin, limiter, 1, cost)


def test_azure_client_streaming_without_include_usage(admin):
    limiter = admin.create_limiter("azure-stream", provider="azure")
    chunks = list(
        azure_client_for(limiter).chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    )
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == MOCK_TEXT
    cost = expected_cost("azure/gpt-4o-2024-08-06", chat_prompt_tokens(MESSAGES), MOCK_DELTAS)
    assert_spend(admin, limiter, 1, cost)


def test_azure_custom_deployment_name_is_priced_by_the_reported_model(admin):
    limiter = admin.create_limiter("azure-deployment", provider="azure")
    res = azure_client_for(limiter).chat.completions.create(model="prod-chat", messages=MESSAGES)
    assert res.model == "gpt-4o-2024-08-06"
    cost = expected_cost("azure/gpt-4o-2024-08-06", res.usage.prompt_tokens, res.usage.completion_tokens)
    assert_spend(admin, limiter, 1, cost)


def test_budget_exceeded_raises_rate_limit_error_without_retrying(admin):
    limiter = admin.create_limiter("tiny", budget_limit=0.000001)
    client = client_for(limiter, max_retries=2)  # the SDK's default: would retry a plain 429 twice

    first = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}])
    first_cost = expected_cost(first.model, first.usage.prompt_tokens, first.usage.completion_tokens)
    before = assert_spend(admin, limiter, 1, first_cost)
    refused_before = metric("budget_requests_total", limiter=limiter["id"], status="429")
    upstream_before = metric("budget_upstream_latency_seconds_count")

    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}])
    elapsed = time.monotonic() - started

    err = info.value
    assert err.status_code == 429
    assert err.code == "budget_exceeded"
    assert err.type == "429"
    assert err.body["message"].startswith("Budget limit exceeded: $"), err.body
    assert "per day" in err.body["message"] and "Current usage:" in err.body["message"]
    assert err.response.headers["x-should-retry"] == "false"
    assert int(err.response.headers["retry-after"]) >= 1
    # One attempt, no backoff: a retrying SDK would have waited >= 0.5 s before a second try.
    assert elapsed < 0.5, f"took {elapsed:.3f}s: the SDK retried"
    assert metric("budget_requests_total", limiter=limiter["id"], status="429") - refused_before == 1
    # Nothing went upstream and nothing was recorded or charged.
    assert metric("budget_upstream_latency_seconds_count") == upstream_before
    after = admin.stats(limiter["id"])
    assert after["total_requests"] == before["total_requests"] == 1
    assert nanos(after["current_spend"]) == nanos(first_cost)


def test_budget_exceeded_while_streaming_raises_before_any_chunk(admin):
    limiter = admin.create_limiter("tiny-stream", budget_limit=0.000001)
    client = client_for(limiter, max_retries=2)
    list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
    admin.settled_stats(limiter["id"], 1)
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert time.monotonic() - started < 0.5
    assert info.value.code == "budget_exceeded"


def test_upstream_rate_limit_is_passed_through(admin):
    limiter = admin.create_limiter("upstream-429")
    with pytest.raises(openai.RateLimitError) as info:
        client_for(limiter, max_retries=2).chat.completions.create(model="mock-error-429", messages=MESSAGES)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.response.headers.get("x-ratelimit-limit-requests") is not None
    stats = admin.settled_stats(limiter["id"], 1)
    assert stats["current_spend"] == 0
    assert stats["in_flight"] == 0 and stats["held"] == 0


def test_inactive_limiter_raises_permission_denied(admin):
    limiter = admin.create_limiter("inactive")
    client = client_for(limiter, max_retries=2)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # works while active
    admin.update(limiter["id"], is_active=False)
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.status_code == 403
    assert info.value.code == "limiter_inactive"
    admin.update(limiter["id"], is_active=True)
    assert client.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content == MOCK_TEXT


def test_created_inactive_limiter_raises_permission_denied(admin):
    limiter = admin.create_limiter("created-inactive", is_active=False)
    with pytest.raises(openai.PermissionDeniedError):
        client_for(limiter).embeddings.create(model="text-embedding-3-small", input="hi")


def test_unknown_code_raises_not_found():
    client = openai.OpenAI(api_key="sk-test", base_url=f"{BUDGET_URL}/v1/{'0' * 32}", max_retries=2)
    started = time.monotonic()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.code == "limiter_not_found"
    assert time.monotonic() - started < 0.5


def test_deleted_limiter_code_stops_working(admin):
    limiter = admin.create_limiter("deleted")
    client = client_for(limiter)
    client.embeddings.create(model="text-embedding-3-small", input="hi")
    admin.request("DELETE", f"/api/limiters/{limiter['id']}", expect=(204,))
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="text-embedding-3-small", input="hi")


def test_async_client_streaming(admin):
    import asyncio

    limiter = admin.create_limiter("async")

    async def run():
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=f"{BUDGET_URL}/v1/{limiter['code']}")
        stream = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        parts = [c.choices[0].delta.content or "" async for c in stream]
        await client.close()
        return "".join(parts)

    assert asyncio.run(run()) == MOCK_TEXT
    assert_spend(admin, limiter, 1, expected_cost("gpt-4o-2024-08-06", chat_prompt_tokens(MESSAGES), MOCK_DELTAS))


def _wait_for_fresh_minute(min_left: float = 5.0) -> None:
    """Sleep past the next minute boundary when fewer than `min_left` seconds remain in this
    one, so a per-minute budget cannot reset in the middle of a test."""
    left = 60 - (time.time() % 60)
    if left < min_left:
        time.sleep(left + 0.2)


def test_per_minute_budget_exceeded_is_not_retried_despite_a_short_retry_after(admin):
    # A per-minute budget answers with Retry-After <= 60 s, which the SDK would honour and
    # retry after; only `x-should-retry: false` stops it.
    limiter = admin.create_limiter("tiny-minute", budget_limit=0.000001, period_type="minute")
    _wait_for_fresh_minute()
    client = client_for(limiter, max_retries=2)
    client.embeddings.create(model="text-embedding-3-small", input=" ".join(["word"] * 100))
    admin.settled_stats(limiter["id"], 1)
    refused_before = metric("budget_requests_total", limiter=limiter["id"], status="429")
    started = time.monotonic()
    with pytest.raises(openai.RateLimitError) as info:
        client.embeddings.create(model="text-embedding-3-small", input="again")
    assert time.monotonic() - started < 0.5
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    assert info.value.body["message"].endswith("%") and "per minute" in info.value.body["message"]
    assert metric("budget_requests_total", limiter=limiter["id"], status="429") - refused_before == 1


class _Stub429:
    """A local server answering every request with the proxy's 429 body, with or without
    `x-should-retry: false`: a control showing that the pinned SDK does retry a 429 that
    lacks the header, so the tests above can tell the difference."""

    def __init__(self, should_retry_false: bool):
        import http.server
        import threading

        stub = self
        self.hits = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                stub.hits += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                body = b'{"error":{"message":"Budget limit exceeded: $1/$1 per minute. Current usage: 100.0%","type":"429","code":"budget_exceeded"}}'
                self.send_response(429)
                self.send_header("content-type", "application/json")
                self.send_header("retry-after-ms", "10")
                if should_retry_false:
                    self.send_header("x-should-retry", "false")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("should_retry_false,attempts", [(False, 3), (True, 1)])
def test_control_the_sdk_retries_a_429_unless_told_not_to(should_retry_false, attempts):
    stub = _Stub429(should_retry_false)
    try:
        client = openai.OpenAI(api_key="sk-test", base_url=stub.url, max_retries=2)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert stub.hits == attempts
    finally:
        stub.close()


def test_azure_v1_api_path_with_the_openai_client(admin):
    # Azure's "v1" API: the plain OpenAI client with base_url {endpoint}/openai/v1, the way
    # Azure documents the Responses API; the limiter forwards openai/v1/... unchanged.
    limiter = admin.create_limiter("azure-v1", provider="azure")
    client = openai.OpenAI(api_key="azure-test-key", base_url=f"{BUDGET_URL}/v1/{limiter['code']}/openai/v1")
    res = client.responses.create(model="gpt-4o", input="Say hello to the proxy")
    assert res.output_text == MOCK_TEXT
    events = list(client.responses.create(model="gpt-4o", input="Say hello to the proxy", stream=True))
    assert events[-1].type == "response.completed"
    usage = events[-1].response.usage
    cost = expected_cost("azure/gpt-4o-2024-08-06", res.usage.input_tokens, res.usage.output_tokens) + expected_cost(
        "azure/gpt-4o-2024-08-06", usage.input_tokens, usage.output_tokens
    )
    assert_spend(admin, limiter, 2, cost)


def test_azure_client_responses_api(admin):
    limiter = admin.create_limiter("azure-responses", provider="azure")
    client = openai.AzureOpenAI(
        api_key="azure-test-key", api_version="2025-04-01-preview", azure_endpoint=f"{BUDGET_URL}/v1/{limiter['code']}"
    )
    res = client.responses.create(model="gpt-4o", input="Say hello to the proxy")
    assert res.output_text == MOCK_TEXT
    assert_spend(admin, limiter, 1, expected_cost("azure/gpt-4o-2024-08-06", res.usage.input_tokens, res.usage.output_tokens))


def test_client_timeout_before_upstream_answers_releases_the_hold(admin):
    # The deployment name `mock-slow` makes the mock wait 2 s before its headers; the body's
    # model (gpt-4o) is priced, so the proxy holds an estimate while it waits.
    limiter = admin.create_limiter("timeout", provider="azure")
    client = azure_client_for(limiter, azure_deployment="mock-slow", max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    deadline = time.monotonic() + 4.0  # the mock would have answered after 2 s
    while True:
        stats = admin.stats(limiter["id"])
        if (stats["in_flight"], stats["held"]) == (0, 0) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert stats["in_flight"] == 0, stats
    assert stats["held"] == 0, stats


def test_own_budget_readable_with_the_sdk(admin):
    limiter = admin.create_limiter("own-budget", budget_limit=5.0)
    client = client_for(limiter)
    client.embeddings.create(model="text-embedding-3-small", input="one two three")
    admin.settled_stats(limiter["id"], 1)
    budget = client.get("budget", cast_to=object)
    assert budget["budget_limit"] == 5.0
    assert nanos(budget["current_spend"]) == 3 * 20
    assert nanos(budget["remaining_budget"]) == 5 * 10**9 - 60
    assert budget["period_type"] == "day" and budget["resets_in_seconds"] > 0

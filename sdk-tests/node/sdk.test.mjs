// The official `openai` npm package against budget-server (run by sdk-tests/run.sh).
//
// Each test creates its own limiter through the admin API (upstream: the mock), points an
// unmodified SDK client at the limiter's proxy endpoint, and checks both what the SDK sees and
// what the server recorded: the cost must equal the usage priced at list price, to the
// nano-dollar.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import OpenAI, { AzureOpenAI } from 'openai';

const BUDGET_URL = (process.env.BUDGET_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '');
const MOCK_URL = (process.env.MOCK_URL ?? '').replace(/\/$/, '');
const ADMIN_USERNAME = process.env.ADMIN_USERNAME ?? 'admin';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? 'changeme';

// What the mock answers with its default 8 deltas (budget_mock_upstream::completion_text(8)).
const MOCK_TEXT = 'Hello from the mock café 🚀 upstream.';
const MOCK_DELTAS = 8;

// List prices in nano-dollars per token (dollars per 1M tokens × 1000).
const PRICES = {
  'gpt-4o-2024-08-06': { input: 2500n, cached: 1250n, output: 10000n },
  'azure/gpt-4o-2024-08-06': { input: 2500n, cached: 1250n, output: 10000n },
  'text-embedding-3-small': { input: 20n, cached: 20n, output: 0n },
};

const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Say hello to the budget proxy' },
];

/** Expected cost in nano-dollars (BigInt: exact). */
function expectedNanos(model, prompt, completion, cached = 0) {
  const p = PRICES[model];
  assert.ok(p, `no price for ${model}`);
  return BigInt(prompt - cached) * p.input + BigInt(cached) * p.cached + BigInt(completion) * p.output;
}

/** A JSON dollar amount in whole nano-dollars. */
function nanos(dollars) {
  return BigInt(Math.round(Number(dollars) * 1e9));
}

/** The mock's chat prompt-token rule: 3 + Σ(4 + words(content)). */
function chatPromptTokens(messages) {
  return 3 + messages.reduce((n, m) => n + 4 + m.content.split(/\s+/).filter(Boolean).length, 0);
}

let token;

async function api(method, path, body, { auth = true, expect = [200, 201, 204] } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth) headers.authorization = `Bearer ${token}`;
  // globalThis.fetch, not the SDK's: the admin client must not share the SDK's code paths.
  const res = await fetch(BUDGET_URL + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(expect.includes(res.status), `${method} ${path} -> ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

// Every limiter this suite created: deleted with their usage when the suite ends.
const created = [];

async function createLimiter(name, extra = {}) {
  const limiter = await api('POST', '/api/limiters', {
    name: `sdk-node ${name} ${Math.random().toString(16).slice(2, 8)}`,
    budget_limit: 20.0,
    period_type: 'day',
    base_url: MOCK_URL,
    ...extra,
  }, { expect: [201] });
  created.push(limiter.id);
  assert.match(limiter.code, /^sk-budget-[0-9a-f]{32}$/);
  assert.ok(limiter.proxy_endpoint.endsWith(`/v1/${limiter.code}`));
  return limiter;
}

const stats = (id) => api('GET', `/api/limiters/${id}/stats`);

/** Stats once `requests` are recorded and nothing is in flight (settlement runs when the
 * response body ends, a moment after the SDK returned). */
async function settledStats(id, requests, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await stats(id);
    if ((s.total_requests >= requests && s.in_flight === 0) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function assertSpend(limiter, requests, expected) {
  const s = await settledStats(limiter.id, requests);
  assert.equal(s.total_requests, requests, JSON.stringify(s));
  assert.equal(s.in_flight, 0);
  assert.ok(Math.abs(s.current_spend - Number(expected) / 1e9) < 1e-9, `spend ${s.current_spend} != ${expected} nano$`);
  assert.equal(nanos(s.current_spend), expected, `spend ${s.current_spend} != ${expected} nano$`);
  assert.equal(s.unpriced_requests, 0);
  assert.equal(s.estimated_requests, 0);
  return s;
}

/** One sample of the server's Prometheus /metrics (0 when absent). */
async function metric(name, labels = {}) {
  const text = await (await fetch(`${BUDGET_URL}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const i = line.lastIndexOf(' ');
    const series = line.slice(0, i);
    if (series === name && !want) return Number(line.slice(i + 1));
    if (series.startsWith(`${name}{`)) {
      const got = series.slice(name.length + 1, -1).split(',').sort().join(',');
      if (got === want) return Number(line.slice(i + 1));
    }
  }
  return 0;
}

/** A fetch that counts the attempts the SDK makes. */
function countingFetch() {
  const f = async (...args) => {
    f.calls += 1;
    return fetch(...args);
  };
  f.calls = 0;
  return f;
}

const client = (limiter, opts = {}) =>
  new OpenAI({ apiKey: 'sk-test', baseURL: `${BUDGET_URL}/v1/${limiter.code}`, ...opts });

const azureClient = (limiter, opts = {}) =>
  new AzureOpenAI({
    apiKey: 'azure-test-key',
    apiVersion: '2024-10-21',
    endpoint: `${BUDGET_URL}/v1/${limiter.code}`,
    ...opts,
  });

before(async () => {
  assert.ok(MOCK_URL, 'MOCK_URL must point at a running budget-mock-upstream');
  const login = await api('POST', '/api/auth/login', { username: ADMIN_USERNAME, password: ADMIN_PASSWORD }, { auth: false, expect: [200] });
  assert.equal(login.username, ADMIN_USERNAME);
  token = login.token;
});

// Leave the server as it was: purge every limiter the suite created (also the ones a test
// already deleted: `purge=true` removes their usage too). 404 = already purged.
after(async () => {
  for (const id of created) {
    await api('DELETE', `/api/limiters/${id}?purge=true`, undefined, { expect: [204, 404] });
  }
});

test('the SDK version is the pinned major', () => {
  const pkg = new URL('./node_modules/openai/package.json', import.meta.url);
  const { version } = JSON.parse(readFileSync(pkg, 'utf8'));
  assert.equal(version.split('.')[0], '6', `sdk-tests pins openai 6.x, got ${version}`);
});

test('chat completion: content, usage and the exact recorded cost', async () => {
  const limiter = await createLimiter('chat');
  const res = await client(limiter).chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.model, 'gpt-4o-2024-08-06');
  assert.equal(res.choices[0].message.content, MOCK_TEXT);
  assert.equal(res.usage.prompt_tokens, chatPromptTokens(MESSAGES));
  assert.equal(res.usage.completion_tokens, MOCK_DELTAS);
  const cached = res.usage.prompt_tokens_details?.cached_tokens ?? 0;
  const s = await assertSpend(limiter, 1, expectedNanos(res.model, res.usage.prompt_tokens, res.usage.completion_tokens, cached));
  assert.equal(s.prompt_tokens, res.usage.prompt_tokens);
  assert.equal(s.completion_tokens, res.usage.completion_tokens);
});

test('withResponse: the request went to the limiter path, upstream headers come back', async () => {
  const limiter = await createLimiter('raw');
  const { data, response } = await client(limiter)
    .chat.completions.create({ model: 'gpt-4o', messages: MESSAGES })
    .withResponse();
  assert.equal(new URL(response.url).pathname, `/v1/${limiter.code}/chat/completions`);
  assert.ok(response.headers.get('x-request-id'));
  assert.equal(data.choices[0].message.content, MOCK_TEXT);
});

test('streaming without include_usage: no usage reaches the client, cost is exact', async () => {
  const limiter = await createLimiter('stream');
  const stream = await client(limiter).chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  assert.ok(chunks.length > 0);
  assert.ok(chunks.every((c) => c.usage == null), 'a chunk carried usage the client did not ask for');
  assert.ok(chunks.every((c) => c.choices.length > 0), 'a usage-only chunk leaked to the client');
  assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), MOCK_TEXT);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
  await assertSpend(limiter, 1, expectedNanos('gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS));
  const [record] = await api('GET', `/api/usage/recent?limiter_id=${limiter.id}`);
  assert.equal(record.streamed, true);
  assert.equal(record.estimated, false);
});

test('streaming with include_usage: the final usage chunk arrives', async () => {
  const limiter = await createLimiter('stream-usage');
  const stream = await client(limiter).chat.completions.create({
    model: 'gpt-4o',
    messages: MESSAGES,
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const final = chunks.at(-1);
  assert.deepEqual(final.choices, []);
  assert.ok(final.usage);
  assert.ok(chunks.slice(0, -1).every((c) => c.usage == null));
  assert.equal(final.usage.prompt_tokens, chatPromptTokens(MESSAGES));
  assert.equal(final.usage.completion_tokens, MOCK_DELTAS);
  await assertSpend(limiter, 1, expectedNanos(final.model, final.usage.prompt_tokens, final.usage.completion_tokens));
});

test('chat.completions.stream helper', async () => {
  const limiter = await createLimiter('stream-helper');
  const runner = client(limiter).chat.completions.stream({ model: 'gpt-4o', messages: MESSAGES });
  let text = '';
  for await (const chunk of runner) text += chunk.choices[0]?.delta?.content ?? '';
  const final = await runner.finalChatCompletion();
  assert.equal(text, MOCK_TEXT);
  assert.equal(final.choices[0].message.content, MOCK_TEXT);
  await assertSpend(limiter, 1, expectedNanos('gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS));
});

test('embeddings: exact cost', async () => {
  const limiter = await createLimiter('embeddings');
  const res = await client(limiter).embeddings.create({
    model: 'text-embedding-3-small',
    input: ['the quick brown fox', 'jumps over'],
  });
  assert.equal(res.data.length, 2);
  assert.ok(res.data.every((d) => d.embedding.length > 0 && typeof d.embedding[0] === 'number'));
  assert.equal(res.usage.prompt_tokens, 6);
  await assertSpend(limiter, 1, expectedNanos(res.model, res.usage.prompt_tokens, 0));
});

test('Responses API, plain', async () => {
  const limiter = await createLimiter('responses');
  const res = await client(limiter).responses.create({
    model: 'gpt-4o',
    instructions: 'Answer briefly.',
    input: 'Say hello to the proxy',
  });
  assert.equal(res.status, 'completed');
  assert.equal(res.output_text, MOCK_TEXT);
  assert.equal(res.usage.input_tokens, 4 + 2 + 5);
  assert.equal(res.usage.output_tokens, MOCK_DELTAS);
  await assertSpend(limiter, 1, expectedNanos(res.model, res.usage.input_tokens, res.usage.output_tokens, res.usage.input_tokens_details.cached_tokens));
});

test('Responses API, streamed (stream: true)', async () => {
  const limiter = await createLimiter('responses-stream');
  const stream = await client(limiter).responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy', stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  assert.equal(events[0].type, 'response.created');
  const done = events.at(-1);
  assert.equal(done.type, 'response.completed');
  assert.equal(events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''), MOCK_TEXT);
  const { usage, model } = done.response;
  assert.deepEqual([usage.input_tokens, usage.output_tokens], [5, MOCK_DELTAS]);
  await assertSpend(limiter, 1, expectedNanos(model, usage.input_tokens, usage.output_tokens));
});

test('Responses API, responses.stream helper', async () => {
  const limiter = await createLimiter('responses-helper');
  const stream = client(limiter).responses.stream({ model: 'gpt-4o', input: 'Say hello' });
  let text = '';
  for await (const e of stream) if (e.type === 'response.output_text.delta') text += e.delta;
  const final = await stream.finalResponse();
  assert.equal(text, MOCK_TEXT);
  assert.equal(final.output_text, MOCK_TEXT);
  await assertSpend(limiter, 1, expectedNanos(final.model, final.usage.input_tokens, final.usage.output_tokens));
});

test('AzureOpenAI against an Azure limiter: chat', async () => {
  const limiter = await createLimiter('azure', { provider: 'azure' });
  assert.equal(limiter.provider, 'azure');
  const res = await azureClient(limiter).chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
  assert.equal(res.choices[0].message.content, MOCK_TEXT);
  assert.equal(res.model, 'gpt-4o-2024-08-06');
  await assertSpend(limiter, 1, expectedNanos('azure/gpt-4o-2024-08-06', res.usage.prompt_tokens, res.usage.completion_tokens));
});

test('AzureOpenAI against an Azure limiter: streaming without include_usage', async () => {
  const limiter = await createLimiter('azure-stream', { provider: 'azure' });
  const stream = await azureClient(limiter).chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true });
  let text = '';
  for await (const c of stream) {
    assert.equal(c.usage ?? null, null);
    text += c.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, MOCK_TEXT);
  await assertSpend(limiter, 1, expectedNanos('azure/gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS));
});

test('AzureOpenAI with a deployment option and a custom deployment name', async () => {
  const limiter = await createLimiter('azure-deployment', { provider: 'azure' });
  const az = azureClient(limiter, { deployment: 'prod-chat' });
  const res = await az.chat.completions.create({ model: 'ignored-by-azure', messages: MESSAGES });
  assert.equal(res.model, 'gpt-4o-2024-08-06');
  await assertSpend(limiter, 1, expectedNanos('azure/gpt-4o-2024-08-06', res.usage.prompt_tokens, res.usage.completion_tokens));
});

test('budget exceeded: RateLimitError at once, without retrying', async () => {
  const limiter = await createLimiter('tiny', { budget_limit: 0.000001 });
  const counted = countingFetch();
  const c = client(limiter, { maxRetries: 2, fetch: counted }); // 2 = the SDK default

  const first = await c.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello!' }] });
  const firstCost = expectedNanos(first.model, first.usage.prompt_tokens, first.usage.completion_tokens);
  await assertSpend(limiter, 1, firstCost);
  assert.equal(counted.calls, 1);
  const refusedBefore = await metric('budget_requests_total', { limiter: limiter.id, status: '429' });
  const upstreamBefore = await metric('budget_upstream_latency_seconds_count');

  const started = performance.now();
  const err = await c.chat.completions
    .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello!' }] })
    .then(() => null, (e) => e);
  const elapsedMs = performance.now() - started;

  assert.ok(err instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${err}`);
  assert.equal(err.status, 429);
  assert.equal(err.code, 'budget_exceeded');
  assert.equal(err.type, '429');
  assert.match(err.error.message, /^Budget limit exceeded: \$[0-9.]+\/\$[0-9.]+ per day\. Current usage: [0-9.]+%$/);
  assert.equal(err.headers.get('x-should-retry'), 'false');
  assert.ok(Number(err.headers.get('retry-after')) >= 1);
  assert.equal(counted.calls, 2, 'the SDK made more than one attempt');
  assert.ok(elapsedMs < 500, `took ${elapsedMs.toFixed(0)} ms: the SDK backed off and retried`);
  assert.equal((await metric('budget_requests_total', { limiter: limiter.id, status: '429' })) - refusedBefore, 1);
  assert.equal(await metric('budget_upstream_latency_seconds_count'), upstreamBefore, 'the refused call reached the upstream');
  const after = await stats(limiter.id);
  assert.equal(after.total_requests, 1);
  assert.equal(nanos(after.current_spend), firstCost);
});

test('budget exceeded on a stream request: RateLimitError before any chunk', async () => {
  const limiter = await createLimiter('tiny-stream', { budget_limit: 0.000001 });
  const c = client(limiter, { maxRetries: 2 });
  for await (const _ of await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true }));
  await settledStats(limiter.id, 1);
  const started = performance.now();
  await assert.rejects(
    c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true }),
    (e) => e instanceof OpenAI.RateLimitError && e.code === 'budget_exceeded',
  );
  assert.ok(performance.now() - started < 500);
});

test('an upstream 429 is passed through unchanged and not charged', async () => {
  const limiter = await createLimiter('upstream-429');
  await assert.rejects(
    client(limiter, { maxRetries: 2 }).chat.completions.create({ model: 'mock-error-429', messages: MESSAGES }),
    (e) => e instanceof OpenAI.RateLimitError && e.code === 'rate_limit_exceeded' && e.headers.get('x-ratelimit-limit-requests') != null,
  );
  const s = await settledStats(limiter.id, 1);
  assert.equal(s.current_spend, 0);
  assert.equal(s.held, 0);
});

test('inactive limiter: PermissionDeniedError (403), and back on when re-activated', async () => {
  const limiter = await createLimiter('inactive');
  const c = client(limiter, { maxRetries: 2 });
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
  await api('PUT', `/api/limiters/${limiter.id}`, { is_active: false });
  await assert.rejects(
    c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }),
    (e) => e instanceof OpenAI.PermissionDeniedError && e.status === 403 && e.code === 'limiter_inactive',
  );
  await api('PUT', `/api/limiters/${limiter.id}`, { is_active: true });
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
});

test('unknown limiter code: NotFoundError (404), no retries', async () => {
  const counted = countingFetch();
  const c = new OpenAI({ apiKey: 'sk-test', baseURL: `${BUDGET_URL}/v1/${'0'.repeat(32)}`, maxRetries: 2, fetch: counted });
  await assert.rejects(
    c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'limiter_not_found',
  );
  assert.equal(counted.calls, 1);
});

test('a deleted limiter code stops working', async () => {
  const limiter = await createLimiter('deleted');
  const c = client(limiter);
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
  await api('DELETE', `/api/limiters/${limiter.id}`);
  await assert.rejects(c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }), OpenAI.NotFoundError);
});

/** Sleep past the next minute boundary when fewer than `minLeftMs` remain in this one, so a
 * per-minute budget cannot reset in the middle of a test. */
async function waitForFreshMinute(minLeftMs = 5000) {
  const left = 60000 - (Date.now() % 60000);
  if (left < minLeftMs) await new Promise((r) => setTimeout(r, left + 200));
}

test('per-minute budget exceeded: not retried although Retry-After is short', async () => {
  // Retry-After <= 60 s: the SDK would sleep that long and retry; only x-should-retry stops it.
  const limiter = await createLimiter('tiny-minute', { budget_limit: 0.000001, period_type: 'minute' });
  await waitForFreshMinute();
  const counted = countingFetch();
  const c = client(limiter, { maxRetries: 2, fetch: counted });
  await c.embeddings.create({ model: 'text-embedding-3-small', input: Array(100).fill('word').join(' ') });
  await settledStats(limiter.id, 1);
  const started = performance.now();
  await assert.rejects(
    c.embeddings.create({ model: 'text-embedding-3-small', input: 'again' }),
    (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      const retryAfter = Number(e.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
      assert.match(e.error.message, /per minute/);
      return true;
    },
  );
  assert.ok(performance.now() - started < 500);
  assert.equal(counted.calls, 2);
});

for (const [shouldRetryFalse, attempts] of [[false, 3], [true, 1]]) {
  test(`control: the SDK makes ${attempts} attempt(s) at a 429 ${shouldRetryFalse ? 'with' : 'without'} x-should-retry: false`, async () => {
    let hits = 0;
    const server = http.createServer((req, res) => {
      hits += 1;
      req.resume();
      req.on('end', () => {
        const headers = { 'content-type': 'application/json', 'retry-after-ms': '10' };
        if (shouldRetryFalse) headers['x-should-retry'] = 'false';
        res.writeHead(429, headers);
        res.end(JSON.stringify({ error: { message: 'Budget limit exceeded: $1/$1 per minute. Current usage: 100.0%', type: '429', code: 'budget_exceeded' } }));
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    try {
      const c = new OpenAI({ apiKey: 'sk-test', baseURL: `http://127.0.0.1:${server.address().port}/v1`, maxRetries: 2 });
      await assert.rejects(c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }), OpenAI.RateLimitError);
      assert.equal(hits, attempts);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
}

test('Azure v1 API path (/openai/v1) with the plain OpenAI client: Responses API', async () => {
  const limiter = await createLimiter('azure-v1', { provider: 'azure' });
  const c = new OpenAI({ apiKey: 'azure-test-key', baseURL: `${BUDGET_URL}/v1/${limiter.code}/openai/v1` });
  const res = await c.responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy' });
  assert.equal(res.output_text, MOCK_TEXT);
  const events = [];
  for await (const e of await c.responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy', stream: true })) events.push(e);
  const done = events.at(-1);
  assert.equal(done.type, 'response.completed');
  const cost = expectedNanos('azure/gpt-4o-2024-08-06', res.usage.input_tokens, res.usage.output_tokens)
    + expectedNanos('azure/gpt-4o-2024-08-06', done.response.usage.input_tokens, done.response.usage.output_tokens);
  await assertSpend(limiter, 2, cost);
});

test('AzureOpenAI Responses API (/openai/responses)', async () => {
  const limiter = await createLimiter('azure-responses', { provider: 'azure' });
  const az = new AzureOpenAI({ apiKey: 'azure-test-key', apiVersion: '2025-04-01-preview', endpoint: `${BUDGET_URL}/v1/${limiter.code}` });
  const res = await az.responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy' });
  assert.equal(res.output_text, MOCK_TEXT);
  await assertSpend(limiter, 1, expectedNanos('azure/gpt-4o-2024-08-06', res.usage.input_tokens, res.usage.output_tokens));
});

test('a client timeout before the upstream answers releases the hold', async () => {
  // Deployment `mock-slow`: the mock waits 2 s before its headers; gpt-4o in the body is priced.
  const limiter = await createLimiter('timeout', { provider: 'azure' });
  const az = azureClient(limiter, { deployment: 'mock-slow', maxRetries: 0, timeout: 500 });
  await assert.rejects(az.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }), OpenAI.APIConnectionTimeoutError);
  const deadline = Date.now() + 4000;
  let s;
  for (;;) {
    s = await stats(limiter.id);
    if ((s.in_flight === 0 && s.held === 0) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(s.in_flight, 0, JSON.stringify(s));
  assert.equal(s.held, 0, JSON.stringify(s));
});

test('the key holder reads their own budget with the SDK (GET /v1/{code}/budget)', async () => {
  const limiter = await createLimiter('own-budget', { budget_limit: 5.0 });
  const c = client(limiter);
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'one two three' });
  await settledStats(limiter.id, 1);
  const budget = await c.get('/budget');
  assert.equal(budget.budget_limit, 5);
  assert.equal(nanos(budget.current_spend), 60n);
  assert.equal(nanos(budget.remaining_budget), 5n * 10n ** 9n - 60n);
  assert.ok(budget.resets_in_seconds > 0);
});

// --- Budget policies (docs/concepts.md): each refusal is the SDK's own exception class, in one
// attempt, and nothing reaches the upstream.

const HELLO = [{ role: 'user', content: 'Hello!' }];
const TINY = 0.000001; // one request at gpt-4o prices uses it up

/** A client that counts its attempts (retries included). */
function countedClient(limiter) {
  const counted = countingFetch();
  return { c: client(limiter, { maxRetries: 2, fetch: counted }), counted };
}

/** `call()` rejects with `Cls` after exactly one attempt and no upstream call; the error. */
async function refusedOnce({ counted }, Cls, call) {
  const attempts = counted.calls;
  const upstream = await metric('budget_upstream_latency_seconds_count');
  const err = await call().then(() => null, (e) => e);
  assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err}`);
  assert.equal(counted.calls - attempts, 1, 'the SDK retried the refusal');
  assert.equal(await metric('budget_upstream_latency_seconds_count'), upstream, 'the refused request reached the upstream');
  assert.equal(err.headers.get('x-should-retry'), 'false');
  assert.ok(err.error?.message, JSON.stringify(err.error));
  return err;
}

test('policy: a model outside allowed_models is PermissionDeniedError (403), not retried', async () => {
  const limiter = await createLimiter('models', { allowed_models: ['gpt-4o-mini', 'text-embedding-3-*'] });
  const k = countedClient(limiter);
  const err = await refusedOnce(k, OpenAI.PermissionDeniedError, () => k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO }));
  assert.deepEqual([err.status, err.code, err.type], [403, 'model_not_allowed', 'permission_error']);
  assert.match(err.error.message, /gpt-4o/);
  await k.c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
  const ok = await k.c.chat.completions.create({ model: 'gpt-4o-mini', messages: HELLO });
  assert.equal(ok.choices[0].message.content, MOCK_TEXT);
});

test('policy: an expired limiter is PermissionDeniedError (limiter_expired)', async () => {
  const limiter = await createLimiter('expired');
  const k = countedClient(limiter);
  await k.c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
  await api('PUT', `/api/limiters/${limiter.id}`, { expires_at: new Date(Date.now() - 60_000).toISOString() });
  const err = await refusedOnce(k, OpenAI.PermissionDeniedError, () => k.c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }));
  assert.deepEqual([err.status, err.code], [403, 'limiter_expired']);
  await api('PUT', `/api/limiters/${limiter.id}`, { expires_at: null });
  await k.c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' });
});

test('policy: a request above max_request_cost is BadRequestError (request_cost_too_high)', async () => {
  // gpt-4o output is $10 per 1M tokens: a 1M-token output limit could cost $10, above $0.01.
  const limiter = await createLimiter('price-guard', { max_request_cost: 0.01 });
  const k = countedClient(limiter);
  const err = await refusedOnce(k, OpenAI.BadRequestError, () =>
    k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO, max_tokens: 1_000_000 }));
  assert.deepEqual([err.status, err.code], [400, 'request_cost_too_high']);
  assert.match(err.error.message, /\$0\.01/);
  // Without an output limit the proxy gives the request one that fits.
  const ok = await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO });
  assert.equal(ok.choices[0].message.content, MOCK_TEXT);
});

test('policy: require_user without a user is BadRequestError (user_required)', async () => {
  const limiter = await createLimiter('require-user', { require_user: true });
  const k = countedClient(limiter);
  const err = await refusedOnce(k, OpenAI.BadRequestError, () => k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO }));
  assert.deepEqual([err.status, err.code], [400, 'user_required']);
  const ok = await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO, user: 'alice' });
  assert.equal(ok.choices[0].message.content, MOCK_TEXT);
});

test('policy: a user over their budget gets RateLimitError naming them; another user goes on', async () => {
  const limiter = await createLimiter('per-user', { user_budget: { budget_limit: TINY, period_type: 'day' } });
  const k = countedClient(limiter);
  await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO, user: 'alice' });
  await settledStats(limiter.id, 1);
  const err = await refusedOnce(k, OpenAI.RateLimitError, () =>
    k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO, user: 'alice' }));
  assert.deepEqual([err.status, err.code], [429, 'budget_exceeded']);
  assert.match(err.error.message, /^User budget limit exceeded for user "alice": \$[0-9.]+\/\$[0-9.]+ per day\. Current usage: [0-9.]+%\. Resets at /);
  assert.equal(err.headers.get('x-budget-user'), 'alice');
  assert.ok(Number(err.headers.get('retry-after')) >= 1);
  // Bob has a budget of his own; a request without a user counts only against the limiter.
  const bob = await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO, user: 'bob' });
  assert.equal(bob.choices[0].message.content, MOCK_TEXT);
  await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO });
  assert.equal((await settledStats(limiter.id, 3)).total_requests, 3);
});

test('policy: an extra hourly window used up is RateLimitError naming "per hour"', async () => {
  const limiter = await createLimiter('hourly', { budget_limit: 100, extra_budgets: [{ budget_limit: TINY, period_type: 'hour' }] });
  const k = countedClient(limiter);
  await k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO });
  await settledStats(limiter.id, 1);
  const err = await refusedOnce(k, OpenAI.RateLimitError, () => k.c.chat.completions.create({ model: 'gpt-4o', messages: HELLO }));
  assert.equal(err.code, 'budget_exceeded');
  assert.match(err.error.message, /^Budget limit exceeded: .* per hour\. Current usage: [0-9.]+%\. Resets at /);
  assert.equal(err.headers.get('x-budget-period'), 'hour');
  const retryAfter = Number(err.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= 3600, `retry-after ${retryAfter}`);
  const budget = await k.c.get('/budget');
  assert.deepEqual(budget.windows.map((w) => [w.period_type, w.primary]), [['day', true], ['hour', false]]);
  assert.ok(budget.windows[1].current_spend > 0);
});

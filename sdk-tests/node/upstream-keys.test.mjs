// Upstream keys held by the server (docs/upstream-keys.md), through the official `openai` npm
// package (run by sdk-tests/run.sh).
//
// The limiters here point at KEYED_MOCK_URL, a mock that accepts only the keys the server holds
// (`--accept-key`), so a request that succeeds proves the stored key was sent; the mock's
// `GET /mock/seen-keys` lists every credential header value that reached it, so the tests also
// prove that the client's own key (or the limiter code used as a key) never did.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import OpenAI, { AzureOpenAI } from 'openai';

const BUDGET_URL = (process.env.BUDGET_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '');
const MOCK_URL = (process.env.MOCK_URL ?? '').replace(/\/$/, '');
const KEYED_MOCK_URL = (process.env.KEYED_MOCK_URL ?? '').replace(/\/$/, '');
const ADMIN_USERNAME = process.env.ADMIN_USERNAME ?? 'admin';
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? 'changeme';
const UPSTREAM_KEY = process.env.UPSTREAM_KEY ?? '';
const UPSTREAM_KEY_ROTATED = process.env.UPSTREAM_KEY_ROTATED ?? '';
const UPSTREAM_AZURE_KEY = process.env.UPSTREAM_AZURE_KEY ?? '';

const MOCK_TEXT = 'Hello from the mock café 🚀 upstream.';
const MOCK_DELTAS = 8;
const API_VERSION = '2024-10-21';
const MESSAGES = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Say hello to the budget proxy' },
];

// List prices in nano-dollars per token.
const PRICES = {
  'gpt-4o-2024-08-06': { input: 2500n, output: 10000n },
  'azure/gpt-4o-2024-08-06': { input: 2500n, output: 10000n },
  'text-embedding-3-small': { input: 20n, output: 0n },
  'azure/text-embedding-3-small': { input: 22n, output: 0n },
};
const cost = (model, prompt, completion) => {
  assert.ok(PRICES[model], `no price for ${model}`);
  return BigInt(prompt) * PRICES[model].input + BigInt(completion) * PRICES[model].output;
};
const nanos = (dollars) => BigInt(Math.round(Number(dollars) * 1e9));
const chatPromptTokens = (messages) =>
  3 + messages.reduce((n, m) => n + 4 + m.content.split(/\s+/).filter(Boolean).length, 0);
const clientKey = () => `sk-proj-client-real-looking-key-${randomBytes(20).toString('hex')}`;

let token;
const limiters = [];
const credentials = [];

async function api(method, path, body, { auth = true, expect = [200, 201, 204] } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth) headers.authorization = `Bearer ${token}`;
  const res = await fetch(BUDGET_URL + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  assert.ok(expect.includes(res.status), `${method} ${path} -> ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

async function createCredential(name, apiKey, extra = {}) {
  const credential = await api('POST', '/api/credentials', {
    name: `sdk-node-${name}-${randomBytes(3).toString('hex')}`,
    kind: 'openai',
    api_key: apiKey,
    ...extra,
  }, { expect: [201] });
  credentials.push(credential.id);
  assert.equal(credential.api_key, undefined);
  return credential;
}

async function createLimiter(name, credential, extra = {}) {
  const limiter = await api('POST', '/api/limiters', {
    name: `sdk-node ${name} ${randomBytes(3).toString('hex')}`,
    budget_limit: 20.0,
    period_type: 'day',
    base_url: KEYED_MOCK_URL,
    credential_id: credential ? credential.id : null,
    ...extra,
  }, { expect: [201] });
  limiters.push(limiter.id);
  assert.match(limiter.code, /^sk-budget-[0-9a-f]{32}$/);
  assert.equal(limiter.credential_id, credential ? credential.id : null);
  return limiter;
}

async function settledStats(id, requests, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await api('GET', `/api/limiters/${id}/stats`);
    if ((s.total_requests >= requests && s.in_flight === 0) || Date.now() > deadline) return s;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function assertSpend(limiter, requests, expected) {
  const s = await settledStats(limiter.id, requests);
  assert.equal(s.total_requests, requests, JSON.stringify(s));
  assert.equal(nanos(s.current_spend), expected, `spend ${s.current_spend} != ${expected} nano$`);
  assert.equal(s.unpriced_requests, 0);
  assert.equal(s.estimated_requests, 0);
}

async function seenKeys(url = KEYED_MOCK_URL) {
  const res = await fetch(`${url}/mock/seen-keys`);
  assert.equal(res.status, 200);
  return res.json();
}

/** `needle` is inside a credential header value either mock received. */
async function reachedAnUpstream(needle) {
  for (const url of [MOCK_URL, KEYED_MOCK_URL]) {
    const seen = await seenKeys(url);
    if (Object.values(seen).flat().some((v) => v.includes(needle))) return true;
  }
  return false;
}

function countingFetch() {
  const f = async (...args) => {
    f.calls += 1;
    return fetch(...args);
  };
  f.calls = 0;
  return f;
}

before(async () => {
  const missing = Object.entries({ MOCK_URL, KEYED_MOCK_URL, UPSTREAM_KEY, UPSTREAM_KEY_ROTATED, UPSTREAM_AZURE_KEY })
    .filter(([, v]) => !v)
    .map(([k]) => k);
  assert.deepEqual(missing, [], 'sdk-tests/run.sh sets these');
  const login = await api('POST', '/api/auth/login', { username: ADMIN_USERNAME, password: ADMIN_PASSWORD }, { auth: false, expect: [200] });
  token = login.token;
});

after(async () => {
  for (const id of limiters) await api('DELETE', `/api/limiters/${id}?purge=true`, undefined, { expect: [204, 404] });
  for (const id of credentials) await api('DELETE', `/api/credentials/${id}`, undefined, { expect: [204, 404] });
});

test('server-held key: the client key, organization and project are replaced, never forwarded', async () => {
  const credential = await createCredential('inject', UPSTREAM_KEY, { organization: 'org-node-held', project: 'proj_node_held' });
  assert.ok(credential.key_hint.endsWith(UPSTREAM_KEY.slice(-4)));
  assert.match(credential.fingerprint, /^sha256:[0-9a-f]{12}$/);
  const limiter = await createLimiter('inject', credential);
  const mine = clientKey();
  const c = new OpenAI({
    apiKey: mine,
    organization: 'org-node-client',
    project: 'proj_node_client',
    baseURL: `${BUDGET_URL}/v1/${limiter.code}`,
    maxRetries: 0,
  });
  const res = await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
  assert.equal(res.choices[0].message.content, MOCK_TEXT);
  await assertSpend(limiter, 1, cost(res.model, res.usage.prompt_tokens, res.usage.completion_tokens));
  const seen = await seenKeys();
  assert.ok(seen.authorization.includes(`Bearer ${UPSTREAM_KEY}`), JSON.stringify(seen));
  assert.ok(seen['openai-organization'].includes('org-node-held'));
  assert.ok(seen['openai-project'].includes('proj_node_held'));
  assert.equal(await reachedAnUpstream(mine), false, "the client's key reached an upstream");
  assert.equal(await reachedAnUpstream('org-node-client'), false);
  assert.equal(await reachedAnUpstream('proj_node_client'), false);
});

test('code as API key: chat, streaming, embeddings and Responses, metered exactly', async () => {
  const credential = await createCredential('code-as-key', UPSTREAM_KEY);
  const limiter = await createLimiter('code-as-key', credential);
  const c = new OpenAI({ apiKey: limiter.code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 0 });
  let total = 0n;

  const chat = await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
  assert.equal(chat.choices[0].message.content, MOCK_TEXT);
  total += cost(chat.model, chat.usage.prompt_tokens, chat.usage.completion_tokens);

  let text = '';
  const stream = await c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true });
  for await (const chunk of stream) {
    assert.equal(chunk.usage ?? null, null);
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, MOCK_TEXT);
  total += cost('gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS);

  const runner = c.chat.completions.stream({ model: 'gpt-4o', messages: MESSAGES, stream_options: { include_usage: true } });
  const final = await runner.finalChatCompletion();
  assert.equal(final.choices[0].message.content, MOCK_TEXT);
  total += cost('gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS);

  const emb = await c.embeddings.create({ model: 'text-embedding-3-small', input: ['the quick brown fox', 'jumps over'] });
  assert.equal(emb.data.length, 2);
  total += cost('text-embedding-3-small', emb.usage.prompt_tokens, 0);

  const res = await c.responses.create({ model: 'gpt-4o', instructions: 'Answer briefly.', input: 'Say hello to the proxy' });
  assert.equal(res.output_text, MOCK_TEXT);
  total += cost(res.model, res.usage.input_tokens, res.usage.output_tokens);

  const events = [];
  for await (const e of await c.responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy', stream: true })) events.push(e);
  const done = events.at(-1);
  assert.equal(done.type, 'response.completed');
  total += cost(done.response.model, done.response.usage.input_tokens, done.response.usage.output_tokens);

  await assertSpend(limiter, 6, total);
  const budget = await c.get('/budget');
  assert.equal(nanos(budget.current_spend), total);
  assert.equal(await reachedAnUpstream(limiter.code), false, 'the limiter code reached an upstream');
});

test('code as API key without a server-held key: AuthenticationError (401 invalid_api_key), one attempt', async () => {
  const limiter = await createLimiter('no-credential', null);
  const counted = countingFetch();
  const c = new OpenAI({ apiKey: limiter.code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 2, fetch: counted });
  await assert.rejects(
    c.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES }),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key'
      && e.type === 'invalid_request_error' && e.message.includes('/v1/'),
  );
  assert.equal(counted.calls, 1);
  assert.equal((await api('GET', `/api/limiters/${limiter.id}/stats`)).total_requests, 0);
  assert.equal(await reachedAnUpstream(limiter.code), false);
});

test('rotating the credential: the next request sends the new key', async () => {
  const credential = await createCredential('rotate', UPSTREAM_KEY);
  const limiter = await createLimiter('rotate', credential);
  const c = new OpenAI({ apiKey: limiter.code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 0 });
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'before' });
  assert.ok(!(await seenKeys()).authorization.some((v) => v.includes(UPSTREAM_KEY_ROTATED)), 'rotated key used early');
  const rotated = await api('PUT', `/api/credentials/${credential.id}`, { api_key: UPSTREAM_KEY_ROTATED });
  assert.ok(rotated.key_hint.endsWith(UPSTREAM_KEY_ROTATED.slice(-4)));
  assert.notEqual(rotated.fingerprint, credential.fingerprint);
  assert.ok(rotated.rotated_at);
  await c.embeddings.create({ model: 'text-embedding-3-small', input: 'after' });
  assert.ok((await seenKeys()).authorization.includes(`Bearer ${UPSTREAM_KEY_ROTATED}`));
  await assertSpend(limiter, 2, 40n);
});

test('rotating a limiter code with a grace period: old and new codes both work meanwhile', async () => {
  const credential = await createCredential('code-grace', UPSTREAM_KEY);
  const limiter = await createLimiter('code-grace', credential);
  const rotated = await api('POST', `/api/limiters/${limiter.id}/rotate-code`, { grace_seconds: 300 });
  assert.notEqual(rotated.code, limiter.code);
  assert.equal(rotated.previous_code.code, limiter.code);
  const left = (Date.parse(rotated.previous_code.until) - Date.now()) / 1000;
  assert.ok(left > 250 && left <= 300, `previous code expires in ${left} s`);
  for (const code of [limiter.code, rotated.code]) {
    const asKey = new OpenAI({ apiKey: code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 0 });
    assert.equal((await asKey.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES })).choices[0].message.content, MOCK_TEXT);
    const path = new OpenAI({ apiKey: clientKey(), baseURL: `${BUDGET_URL}/v1/${code}`, maxRetries: 0 });
    assert.ok((await path.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })).data.length);
  }
  assert.equal((await settledStats(limiter.id, 4)).total_requests, 4);
  // Ending the grace early: rotate again without one; both earlier codes stop.
  const third = await api('POST', `/api/limiters/${limiter.id}/rotate-code`);
  for (const code of [limiter.code, rotated.code]) {
    await assert.rejects(
      new OpenAI({ apiKey: code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 0 }).embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }),
      (e) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key',
    );
    await assert.rejects(
      new OpenAI({ apiKey: 'sk-test', baseURL: `${BUDGET_URL}/v1/${code}`, maxRetries: 0 }).embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }),
      (e) => e instanceof OpenAI.NotFoundError,
    );
  }
  assert.equal(third.previous_code, null);
  const c = new OpenAI({ apiKey: third.code, baseURL: `${BUDGET_URL}/v1`, maxRetries: 0 });
  assert.ok((await c.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' })).data.length);
});

test('Azure limiter with a server-held api-key: AzureOpenAI in path mode and code-as-key mode', async () => {
  const credential = await createCredential('azure', UPSTREAM_AZURE_KEY, { kind: 'azure' });
  assert.equal(credential.kind, 'azure');
  const limiter = await createLimiter('azure', credential, { provider: 'azure' });
  const junk = `client-junk-${randomBytes(16).toString('hex')}`;
  let total = 0n;

  const path = new AzureOpenAI({ endpoint: `${BUDGET_URL}/v1/${limiter.code}`, apiKey: junk, apiVersion: API_VERSION, maxRetries: 0 });
  const res = await path.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES });
  assert.equal(res.choices[0].message.content, MOCK_TEXT);
  total += cost('azure/gpt-4o-2024-08-06', res.usage.prompt_tokens, res.usage.completion_tokens);

  const asKey = new AzureOpenAI({ endpoint: BUDGET_URL, apiKey: limiter.code, apiVersion: API_VERSION, maxRetries: 0 });
  let text = '';
  for await (const chunk of await asKey.chat.completions.create({ model: 'gpt-4o', messages: MESSAGES, stream: true })) {
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, MOCK_TEXT);
  total += cost('azure/gpt-4o-2024-08-06', chatPromptTokens(MESSAGES), MOCK_DELTAS);
  const responses = await new AzureOpenAI({
    endpoint: BUDGET_URL, apiKey: limiter.code, apiVersion: '2025-04-01-preview', maxRetries: 0,
  }).responses.create({ model: 'gpt-4o', input: 'Say hello to the proxy' });
  assert.equal(responses.output_text, MOCK_TEXT);
  total += cost('azure/gpt-4o-2024-08-06', responses.usage.input_tokens, responses.usage.output_tokens);
  await assertSpend(limiter, 3, total);

  const seen = await seenKeys();
  assert.ok(seen['api-key'].includes(UPSTREAM_AZURE_KEY), JSON.stringify(seen));
  assert.equal(await reachedAnUpstream(junk), false, "the client's api-key reached an upstream");
  assert.equal(await reachedAnUpstream(limiter.code), false, 'the limiter code reached an upstream');
});

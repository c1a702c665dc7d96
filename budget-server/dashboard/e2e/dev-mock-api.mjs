#!/usr/bin/env node
// A throwaway stand-in for budget-server, for developing and screenshotting the dashboard
// without the Rust build: it serves dist/ (index.html for every non-API path), fakes the
// admin API of docs/admin-api.md in memory, proxies /v1/{code}/... to the limiter's
// base_url, and is itself an OpenAI-compatible upstream at /upstream (use
// http://127.0.0.1:PORT/upstream as a limiter's base URL).
//
//   node e2e/dev-mock-api.mjs [--port 18090] [--seed]
//
// --seed adds demo limiters, upstream credentials, a week of synthetic usage and audit entries.
// Like the server, it records an audit entry for every admin action it implements (GET /api/audit).
// --no-secrets-key answers credential writes as a server without SECRETS_KEY does (400).
// Alerts: a limiter's `alerts` settings are checked like the server's, and deactivating or
// deleting a limiter with a webhook of its own lists an event as delivered (GET /api/alerts);
// nothing is sent.
// Team accounts work like the server's (roles, viewers' masked codes and 403s, sessions that
// end on disable or a password change).
// POST /__mock/expire revokes every token (to try the "session expired" path). Like the server, the login sets an HttpOnly
// `budget_session` cookie and a `budget_csrf` cookie that state-changing cookie requests must
// echo in `X-CSRF-Token`; Bearer tokens work too. Not used by the real server or by CI.

import { createServer } from "node:http";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const PORT = Number(args[args.indexOf("--port") + 1] || process.env.PORT || 18090) || 18090;
const SEED = args.includes("--seed");
const SECRETS_KEY_SET = !args.includes("--no-secrets-key");
const DIST = join(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const ADMIN_USERNAME = process.env.ADMIN_USERNAME || "admin";
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || "changeme";

const PRICES = {
  // dollars per 1M tokens: input, output
  "gpt-4o": [2.5, 10],
  "gpt-4o-mini": [0.15, 0.6],
  "gpt-4.1": [2, 8],
  "o3-mini": [1.1, 4.4],
  "text-embedding-3-small": [0.02, 0],
};

/** token → its CSRF value */
const tokens = new Map();
/** Team accounts (docs/admin-api.md#team-accounts); `password` is kept in clear: a mock. @type {Map<string, any>} */
const accounts = new Map();
/** token → { id, version } of the stored account it belongs to (absent: the bootstrap admin). */
const sessionAccounts = new Map();
const accountView = (a) => ({ id: a.id, username: a.username, role: a.role, disabled: a.disabled, created_at: a.created_at, updated_at: a.updated_at });
const accountNamed = (name) => [...accounts.values()].find((a) => a.username.toLowerCase() === String(name ?? "").toLowerCase());
/** A limiter as a viewer account gets it: codes masked as the audit trail masks them. */
function maskedView(v) {
  const code = maskCode(v.code);
  // A webhook URL may carry its secret in its path (Slack's do): scheme and host only, as the server shows it.
  const alerts = v.alerts?.webhook_url ? { ...v.alerts, webhook_url: redactUrl(v.alerts.webhook_url) } : v.alerts;
  return { ...v, code, proxy_endpoint: v.proxy_endpoint.replace(v.code, code), previous_code: v.previous_code ? { ...v.previous_code, code: maskCode(v.previous_code.code) } : null, alerts };
}
// The server's browser headers (budget-server/src/security_headers.rs), so the dashboard is
// developed under the same Content-Security-Policy.
const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};
const cookieOf = (req, name) =>
  (req.headers.cookie ?? "").split(";").map((p) => p.trim().split("=")).find(([k]) => k === name)?.[1] || null;
/** @type {Map<string, any>} */
const limiters = new Map();
/** Upstream credentials; `secret` is the key itself, which no answer ever contains. @type {Map<string, any>} */
const credentials = new Map();
/** New limiter codes: `sk-budget-` + 32 lowercase hex digits (old 32-hex codes still work). */
const newCode = () => `sk-budget-${randomBytes(16).toString("hex")}`;
const CODE_RE = /^(sk-budget-[0-9a-f]{32}|[0-9a-f]{32})$/;
/** @type {Array<{ts:number, limiter_id:string, model:string, user:string, prompt_tokens:number, completion_tokens:number, cost:number, unpriced:boolean}>} */
const usage = [];

const PERIOD_MS = { minute: 60e3, hour: 3600e3 };
function windowOf(period, now = Date.now()) {
  const d = new Date(now);
  if (PERIOD_MS[period]) {
    const s = Math.floor(now / PERIOD_MS[period]) * PERIOD_MS[period];
    return [s, s + PERIOD_MS[period]];
  }
  const Y = d.getUTCFullYear(), M = d.getUTCMonth(), D = d.getUTCDate();
  switch (period) {
    case "day": return [Date.UTC(Y, M, D), Date.UTC(Y, M, D + 1)];
    case "week": {
      const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
      return [Date.UTC(Y, M, D - dow), Date.UTC(Y, M, D - dow + 7)];
    }
    case "month": return [Date.UTC(Y, M, 1), Date.UTC(Y, M + 1, 1)];
    default: return [Date.UTC(Y, 0, 1), Date.UTC(Y + 1, 0, 1)];
  }
}
const iso = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
const round9 = (n) => Math.round(n * 1e9) / 1e9;

/** Spend of `l` (optionally of one end user) in the current `period` window. */
function spendIn(l, period, user) {
  const [s, e] = windowOf(period);
  const rows = usage.filter((u) => u.limiter_id === l.id && u.ts >= s && u.ts < e && (user === undefined || u.user === user));
  return { s, e, spend: round9(rows.reduce((a, u) => a + u.cost, 0)), requests: rows.length };
}

function windowView(l, w, primary) {
  const { s, e, spend } = spendIn(l, w.period_type);
  return {
    period_type: w.period_type, budget_limit: w.budget_limit, primary, current_spend: spend, held: 0, leased: 0,
    remaining_budget: round9(Math.max(0, w.budget_limit - spend)),
    usage_percentage: Math.round((spend / w.budget_limit) * 10000) / 100,
    period_start: iso(s), period_end: iso(e),
  };
}

/** Requests the mock's proxy refused, as the server counts them (per limiter, time and reason). @type {Array<{ts:number, limiter_id:string, reason:string}>} */
const refusals = [];

// Alerts (budget-server/src/admin/alerts.rs): the server's settings, as a server with
// ALERT_WEBHOOK_SECRET and no webhook of its own shows them, and the events, oldest first.
const ALERT_DEFAULTS = { enabled: true, webhook: null, format: "json", thresholds: [80, 100], retry_for_seconds: 86400 };
/** @type {Array<Record<string, unknown>>} */
const alertDeliveries = [];
/** A webhook URL as lists show it: scheme, host and port (its path and query may hold a secret). */
function redactUrl(u) {
  try {
    const url = new URL(u);
    return `${url.protocol}//${url.host}${url.pathname !== "/" || url.search ? "/…" : ""}`;
  } catch {
    return "(not a URL)";
  }
}
/** Lists an event of `l` (delivered at once) when it has a webhook of its own and is not muted. */
function raiseAlert(kind, l, at = Date.now(), extra = {}) {
  const a = l.alerts;
  if (!a?.webhook_url || a.muted) return;
  alertDeliveries.push({
    id: `${kind}:${l.id}:${iso(at)}`, kind, limiter_id: l.id, limiter_name: l.name, created_at: iso(at),
    threshold: null, period: null, window_start: null, spent: null, budget: null,
    destination: redactUrl(a.webhook_url), format: a.format ?? "json", status: "delivered", attempts: 1,
    next_attempt_at: null, last_error: null, delivered_at: iso(at + 300), ...extra,
  });
}
/** Problems with a limiter's `alerts` as [field, message], or null (budget_core::alert::AlertSettings::validate). */
function alertProblem(a) {
  if (a === null) return null;
  if (typeof a !== "object" || Array.isArray(a)) return ["alerts", "alerts: must be an object or null"];
  const t = a.thresholds;
  if (t !== undefined && t !== null) {
    if (!Array.isArray(t) || t.some((p) => !Number.isInteger(p))) return ["alerts.thresholds", "alerts.thresholds: must be a list of whole percentages"];
    if (t.length > 10) return ["alerts.thresholds", "alerts.thresholds: at most 10 thresholds"];
    if (t.some((p) => p < 1 || p > 1000)) return ["alerts.thresholds", "alerts.thresholds: each threshold is a percentage from 1 to 1000"];
    if (t.some((p, i) => i > 0 && t[i - 1] >= p)) return ["alerts.thresholds", "alerts.thresholds: thresholds must be in ascending order, without repeats"];
  }
  if (a.webhook_url !== undefined && a.webhook_url !== null) {
    let url = null;
    try { url = new URL(a.webhook_url); } catch { /* not a URL */ }
    if (!url || !["http:", "https:"].includes(url.protocol) || !url.hostname) return ["alerts.webhook_url", "alerts.webhook_url: must be an http:// or https:// URL"];
    if (url.username || url.password) return ["alerts.webhook_url", "alerts.webhook_url: must not carry a user name or password (put a token in the path or query)"];
    if (String(a.webhook_url).includes("#")) return ["alerts.webhook_url", "alerts.webhook_url: must not have a #fragment"];
  }
  if (a.format !== undefined && a.format !== null && !["json", "slack"].includes(a.format)) return ["alerts.format", "alerts.format: must be json or slack"];
  return null;
}

/** `{total, by_reason}` of `limiter_id`'s refusals in [from, to), like the server's `refused`. */
function refusedIn(limiterId, from = -Infinity, to = Infinity) {
  const by_reason = {};
  let total = 0;
  for (const r of refusals)
    if (r.limiter_id === limiterId && r.ts >= from && r.ts < to) { by_reason[r.reason] = (by_reason[r.reason] ?? 0) + 1; total++; }
  return { total, by_reason };
}

function view(l, origin) {
  const [s, e] = windowOf(l.period_type);
  const spend = round9(usage.filter((u) => u.limiter_id === l.id && u.ts >= s && u.ts < e).reduce((a, u) => a + u.cost, 0));
  const graceLeft = l.previous_code && Date.parse(l.previous_code.until) > Date.now();
  return {
    ...l,
    previous_code: graceLeft ? l.previous_code : null,
    windows: l.extra_budgets.length === 0 ? [] : [windowView(l, l, true), ...l.extra_budgets.map((w) => windowView(l, w, false))],
    proxy_endpoint: `${origin}/v1/${l.code}`,
    current_spend: spend,
    remaining_budget: round9(Math.max(0, l.budget_limit - spend)),
    usage_percentage: l.budget_limit > 0 ? (spend / l.budget_limit) * 100 : 0,
    period_start: iso(s),
    period_end: iso(e),
    refused: refusedIn(l.id, s),
  };
}

function send(res, status, body, headers = {}) {
  if (status === 204) { res.writeHead(204, { "Cache-Control": "no-store", ...SECURITY_HEADERS, ...headers }); return res.end(); }
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-store", ...SECURITY_HEADERS, ...headers });
  res.end(text);
}
const fail = (res, status, message, code = null, field = null, type = "invalid_request_error") =>
  send(res, status, { error: { message, type, code, ...(field ? { field } : {}) } });

async function body(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return {};
  try { return JSON.parse(text); } catch { return { __invalid: true }; }
}

const PERIODS = ["minute", "hour", "day", "week", "month", "year"];
/** Problems with body `b` as [field, message], or null; `partial` is the limiter being updated. */
function validate(b, partial) {
  const has = (k) => b[k] !== undefined;
  if (!partial || has("name")) {
    if (typeof b.name !== "string" || !b.name.trim()) return ["name", "name: must not be empty"];
    if (b.name.length > 200) return ["name", "name: must be at most 200 characters"];
  }
  if (!partial || has("budget_limit")) {
    if (typeof b.budget_limit !== "number" || !(b.budget_limit > 0)) return ["budget_limit", "budget_limit: must be greater than 0"];
  }
  if (!partial || has("period_type")) {
    if (!["minute", "hour", "day", "week", "month", "year"].includes(b.period_type)) return ["period_type", "period_type: must be one of minute, hour, day, week, month, year"];
  }
  if (!partial || has("base_url")) {
    if (typeof b.base_url !== "string" || !/^https?:\/\/[^/]+/.test(b.base_url)) return ["base_url", "base_url: must be an http(s) URL"];
    if (/\.invalid(\/|:|$)/.test(b.base_url)) return ["base_url", "base_url: host does not resolve (mock rule: *.invalid)"];
  }
  if (has("provider") && !["openai", "azure"].includes(b.provider)) return ["provider", "provider: must be openai or azure"];
  if (has("mode") && !["soft", "strict"].includes(b.mode)) return ["mode", "mode: must be soft or strict"];
  if (has("unpriced") && !["admit", "refuse"].includes(b.unpriced)) return ["unpriced", "unpriced: must be admit or refuse"];
  if (has("timezone") && b.timezone !== null) {
    try { new Intl.DateTimeFormat("en", { timeZone: b.timezone }); } catch { return ["timezone", `timezone: unknown time zone ${b.timezone}`]; }
  }
  if (has("is_active") && typeof b.is_active !== "boolean") return ["is_active", "is_active: must be a boolean"];
  const badWindow = (w) => !w || typeof w.budget_limit !== "number" || !(w.budget_limit > 0) || !PERIODS.includes(w.period_type);
  if (has("extra_budgets") && b.extra_budgets !== null) {
    if (!Array.isArray(b.extra_budgets) || b.extra_budgets.some(badWindow)) return ["extra_budgets", "extra_budgets: each window needs budget_limit > 0 and a period"];
    const primary = b.period_type ?? (partial ? partial.period_type : undefined);
    const periods = b.extra_budgets.map((w) => w.period_type);
    if (periods.includes(primary)) return ["extra_budgets", `extra_budgets: ${primary} is the limiter's own period (budget_limit/period_type); pick another period`];
    if (new Set(periods).size !== periods.length) return ["extra_budgets", "extra_budgets: a period appears twice"];
  }
  if (has("user_budget") && b.user_budget !== null && badWindow(b.user_budget)) return ["user_budget", "user_budget: budget_limit must be greater than 0"];
  if (has("allowed_models") && b.allowed_models !== null && (!Array.isArray(b.allowed_models) || b.allowed_models.some((m) => typeof m !== "string" || !m || /\s/.test(m))))
    return ["allowed_models", "allowed_models: each entry must be 1 to 256 characters without spaces"];
  if (has("max_request_cost") && b.max_request_cost !== null && !(b.max_request_cost > 0)) return ["max_request_cost", "max_request_cost: must be greater than 0 (or null for no cap)"];
  if (has("expires_at") && b.expires_at !== null && Number.isNaN(Date.parse(b.expires_at))) return ["expires_at", "expires_at: must be an RFC 3339 date-time"];
  if (has("alerts")) {
    const p = alertProblem(b.alerts);
    if (p) return p;
  }
  if (has("credential_id") && b.credential_id !== null && !credentials.has(b.credential_id))
    return ["credential_id", `credential_id: no credential ${b.credential_id}; create it with POST /api/credentials first`];
  if (has("credential_id") && b.credential_id !== null) {
    // A key goes in its kind's header: only an OpenAI key for an OpenAI limiter, an Azure key for Azure.
    const c = credentials.get(b.credential_id);
    const provider = b.provider ?? (partial ? partial.provider : "openai");
    if (c.kind !== provider)
      return ["credential_id", `credential ${JSON.stringify(c.name)} is an ${c.kind} key but the limiter's provider is ${provider}: attach a key of the same kind`];
  }
  return null;
}

function createLimiter(b) {
  const now = iso(Date.now());
  const l = {
    id: randomUUID(), name: b.name.trim(), code: b.code ?? newCode(),
    budget_limit: b.budget_limit, period_type: b.period_type, timezone: b.timezone ?? "UTC",
    base_url: b.base_url, provider: b.provider ?? "openai", mode: b.mode ?? "soft", unpriced: b.unpriced ?? "admit",
    is_active: b.is_active ?? true, created_at: now, updated_at: now, deleted_at: null,
    extra_budgets: b.extra_budgets ?? [], user_budget: b.user_budget ?? null, user_overrides: {},
    require_user: b.require_user ?? false, allowed_models: b.allowed_models ?? [], max_request_cost: b.max_request_cost ?? null,
    cap_output_tokens: b.cap_output_tokens ?? true, expires_at: b.expires_at ?? null,
    credential_id: b.credential_id ?? null, previous_code: null, alerts: b.alerts ?? null,
  };
  limiters.set(l.id, l);
  return l;
}

const SECRETS_KEY_MISSING =
  "The server cannot store upstream keys: SECRETS_KEY is not set. Generate one with `openssl rand -base64 32`, set SECRETS_KEY to it and restart (see docs/upstream-keys.md)";

/** The live limiters that send `c`. */
const usersOf = (c) => [...limiters.values()].filter((l) => !l.deleted_at && l.credential_id === c.id);

function credentialView(c) {
  const { secret, ...fields } = c;
  return {
    ...fields,
    key_hint: `…${secret.slice(-4)}`,
    fingerprint: `sha256:${createHash("sha256").update(secret).digest("hex").slice(0, 12)}`,
    limiter_count: usersOf(c).length,
  };
}

// The audit trail (budget-server/src/admin/audit.rs): entries in the order they happened,
// served newest first. Codes are masked to their prefix and four characters; keys never appear.
/** @type {Array<{id:string, at:string, actor:string, client:string|null, action:string, limiter_id:string|null, target:string|null, before:any, after:any}>} */
const audit = [];
const maskCode = (c) => `${c.slice(0, (c.startsWith("sk-budget-") ? 10 : 0) + 4)}…`;
/** A limiter as the audit trail shows it. */
function limiterAudit(l) {
  const v = structuredClone(l);
  v.code = maskCode(l.code);
  if (l.previous_code) v.previous_code = { code: maskCode(l.previous_code.code), until: l.previous_code.until };
  return v;
}
/** A credential as the audit trail shows it: its hint and fingerprint, never the key. */
function credentialAudit(c) {
  const v = credentialView(c);
  return { name: v.name, kind: v.kind, organization: v.organization, project: v.project, key_hint: v.key_hint, fingerprint: v.fingerprint };
}
/** Only the fields that differ, before and after. */
function changed(b, a) {
  const ob = {}, oa = {};
  for (const k of new Set([...Object.keys(b), ...Object.keys(a)])) {
    if (JSON.stringify(b[k] ?? null) !== JSON.stringify(a[k] ?? null)) { ob[k] = b[k] ?? null; oa[k] = a[k] ?? null; }
  }
  return [ob, oa];
}
const clientOf = (req) => (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "") || null;
/** Record one action by `actor` from `client`. */
function audited(actor, client, action, { limiter_id = null, target = null, before = null, after = null } = {}, at = Date.now()) {
  audit.push({ id: randomUUID(), at: new Date(at).toISOString(), actor, client, action, limiter_id, target, before, after });
}

/** Problems with a credential body as [field, message, status?], or null; `existing` when updating. */
function validateCredential(b, existing) {
  if (b.__invalid) return [null, "the body is not JSON"];
  const has = (k) => b[k] !== undefined;
  if (!existing || has("name")) {
    if (typeof b.name !== "string" || !/^[\p{L}\p{N}._\- ]{1,100}$/u.test(b.name) || !b.name.trim())
      return ["name", "name: must be 1 to 100 characters of letters, digits, '.', '_', '-' or spaces"];
    if ([...credentials.values()].some((c) => c !== existing && c.name === b.name.trim())) return ["name", `conflict: a credential named ${JSON.stringify(b.name.trim())} already exists`, 409];
  }
  if (!existing && has("kind") && b.kind !== null && !["openai", "azure"].includes(b.kind)) return ["kind", "kind: must be openai or azure"];
  if (!existing || has("api_key")) {
    if (typeof b.api_key !== "string" || b.api_key.length < 8 || b.api_key.length > 1024) return ["api_key", "api_key: must be 8 to 1024 characters"];
    if (!/^[\x21-\x7e]+$/.test(b.api_key)) return ["api_key", "api_key: must be visible ASCII characters without spaces"];
  }
  const kind = existing ? existing.kind : (b.kind ?? "openai");
  for (const k of ["organization", "project"]) {
    if (!has(k) || b[k] === null) continue;
    if (kind === "azure") return ["organization", "organization and project are OpenAI headers; an Azure key takes neither"];
    if (typeof b[k] !== "string" || !/^[\x21-\x7e]{1,200}$/.test(b[k])) return [k, `${k}: must be 1 to 200 printable ASCII characters without spaces`];
  }
  return null;
}

function createCredential(b) {
  const now = iso(Date.now());
  const c = {
    id: randomUUID(), name: b.name.trim(), kind: b.kind ?? "openai", organization: b.organization ?? null, project: b.project ?? null,
    secret: b.api_key, created_at: now, updated_at: now, rotated_at: now,
  };
  credentials.set(c.id, c);
  return c;
}

function range(url) {
  const from = url.searchParams.get("from"), to = url.searchParams.get("to"), lid = url.searchParams.get("limiter_id");
  const f = from ? Date.parse(from) : -Infinity, t = to ? Date.parse(to) : Infinity;
  return usage.filter((u) => u.ts >= f && u.ts < t && (!lid || u.limiter_id === lid));
}

function breakdown(rows, by) {
  const m = new Map();
  for (const u of rows) {
    const key = by === "model" ? u.model : by === "user" ? u.user : u.limiter_id;
    const label = by === "limiter" ? limiters.get(u.limiter_id)?.name ?? key : key;
    const r = m.get(key) ?? { key, label, requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0, unpriced_requests: 0 };
    r.requests++; r.prompt_tokens += u.prompt_tokens; r.completion_tokens += u.completion_tokens;
    r.total_tokens += u.prompt_tokens + u.completion_tokens; r.cost = round9(r.cost + u.cost); r.unpriced_requests += u.unpriced ? 1 : 0;
    m.set(key, r);
  }
  return [...m.values()].sort((a, b) => b.cost - a.cost);
}

function record(l, model, user, pt, ct, ts = Date.now()) {
  const p = PRICES[model];
  const cost = p ? round9((pt * p[0] + ct * p[1]) / 1e6) : 0;
  usage.push({ id: randomUUID(), ts, limiter_id: l.id, model, user, prompt_tokens: pt, completion_tokens: ct, cost, unpriced: !p, latency_ms: 200 + ((pt + ct) % 900) });
}

/** A record as `GET /api/usage/recent` answers it (schema `UsageRecord`). */
function usageView(u) {
  return {
    id: u.id, at: iso(u.ts), limiter_id: u.limiter_id, limiter_name: limiters.get(u.limiter_id)?.name ?? "(purged)",
    model: u.model, user: u.user, endpoint: "chat_completions", status: 200, streamed: false,
    prompt_tokens: u.prompt_tokens, cached_tokens: 0, completion_tokens: u.completion_tokens, reasoning_tokens: 0,
    total_tokens: u.prompt_tokens + u.completion_tokens, cost: u.cost, unpriced: u.unpriced, estimated: false,
    latency_ms: u.latency_ms, price_version: null,
  };
}

// `GET /api/usage/export`, as the server writes it: these columns, CRLF rows, text quoted when
// RFC 4180 needs it and defused when a spreadsheet would read a formula; exact decimal dollars.
const EXPORT_COLUMNS = ["id", "at", "limiter_id", "limiter_name", "model", "user", "endpoint", "status", "streamed", "prompt_tokens", "cached_tokens",
  "completion_tokens", "reasoning_tokens", "cost_usd", "unpriced", "estimated", "latency_ms", "price_version"];
const dollars = (n) => n.toFixed(9).replace(/\.?0+$/, "");
const csvText = (v) => {
  const formula = /^[=+\-@\t\r]/.test(v);
  return formula || /[,"\r\n]/.test(v) ? `"${formula ? "'" : ""}${v.replace(/"/g, '""')}"` : v;
};
function exportRow(u) {
  const v = usageView(u);
  const row = { ...v, at: new Date(u.ts).toISOString().replace("Z", "000Z"), limiter_name: limiters.get(u.limiter_id)?.name ?? "", cost_usd: dollars(u.cost) };
  return Object.fromEntries(EXPORT_COLUMNS.map((c) => [c, row[c]]));
}

async function api(req, res, url) {
  const path = url.pathname;
  const origin = `http://${req.headers.host}`;
  if (path === "/api/auth/login" && req.method === "POST") {
    const b = await body(req);
    const named = b.username === ADMIN_USERNAME ? null : accountNamed(b.username);
    const ok = b.username === ADMIN_USERNAME ? b.password === ADMIN_PASSWORD : !!named && !named.disabled && b.password === named.password;
    audited(named ? named.username : String(b.username ?? "").slice(0, 64), clientOf(req), ok ? "login.succeeded" : "login.failed");
    if (!ok) return fail(res, 401, "Invalid username or password", "invalid_credentials", null, "authentication_error");
    const token = randomBytes(24).toString("base64url");
    const csrf = randomBytes(16).toString("hex");
    tokens.set(token, csrf);
    if (named) sessionAccounts.set(token, { id: named.id, version: named.version });
    const age = 24 * 3600;
    return send(res, 200, { token, username: named ? named.username : b.username, role: named ? named.role : "admin", expires_at: iso(Date.now() + age * 1000) }, {
      "Set-Cookie": [
        `budget_session=${token}; Path=/api; Max-Age=${age}; HttpOnly; SameSite=Strict`,
        `budget_csrf=${csrf}; Path=/; Max-Age=${age}; SameSite=Strict`,
      ],
    });
  }
  if (path === "/api/auth/logout" && req.method === "POST") {
    const t = cookieOf(req, "budget_session");
    if (t) tokens.delete(t);
    return send(res, 204, null, {
      "Set-Cookie": ["budget_session=; Path=/api; Max-Age=0; HttpOnly; SameSite=Strict", "budget_csrf=; Path=/; Max-Age=0; SameSite=Strict"],
    });
  }
  const auth = req.headers.authorization ?? "";
  if (auth) {
    if (!auth.startsWith("Bearer ") || !tokens.has(auth.slice(7))) return fail(res, 401, "Missing or expired token", "invalid_token", null, "authentication_error");
  } else {
    const t = cookieOf(req, "budget_session");
    if (!t || !tokens.has(t)) return fail(res, 401, "Missing or expired token", "missing_token", null, "authentication_error");
    if (!["GET", "HEAD", "OPTIONS"].includes(req.method) && req.headers["x-csrf-token"] !== tokens.get(t)) {
      return fail(res, 403, "Requests authenticated by the session cookie must send the `budget_csrf` cookie's value in `x-csrf-token`", "csrf_failed", null, "permission_error");
    }
  }

  // A stored account's token works while the account is enabled and its password unchanged.
  const token = auth ? auth.slice(7) : cookieOf(req, "budget_session");
  const held = sessionAccounts.get(token);
  const account = held ? accounts.get(held.id) : null;
  if (held && (!account || account.disabled || account.version !== held.version)) {
    tokens.delete(token);
    return fail(res, 401, "The token is not valid", "invalid_token", null, "authentication_error");
  }
  const viewer = account?.role === "viewer";
  const forbidden = () =>
    fail(res, 403, "This account is a viewer: viewer accounts can read limiters and statistics but not change anything (or read accounts and the audit trail)", "forbidden", null, "permission_error");
  if (viewer && !["GET", "HEAD"].includes(req.method) && path !== "/api/auth/password") return forbidden();
  if (viewer && (path === "/api/audit" || path.startsWith("/api/accounts"))) return forbidden();
  /** Records an action of the signed-in account. */
  const did = (action, fields) => audited(account ? account.username : ADMIN_USERNAME, clientOf(req), action, fields);
  let m;
  if (path === "/api/auth/me" && req.method === "GET") {
    return send(res, 200, account ? { username: account.username, role: account.role, bootstrap: false, id: account.id } : { username: ADMIN_USERNAME, role: "admin", bootstrap: true, id: null });
  }
  if (path === "/api/auth/password" && req.method === "POST") {
    const b = await body(req);
    if (!account) return fail(res, 409, "The bootstrap admin's password is set by ADMIN_PASSWORD in the server's environment; change it there and restart", "conflict");
    if (typeof b.new_password !== "string" || [...b.new_password].length < 12) return fail(res, 422, "new_password: must be at least 12 characters", "validation_failed", "new_password");
    if (b.current_password !== account.password) return fail(res, 422, "current_password: is not this account's password", "validation_failed", "current_password");
    Object.assign(account, { password: b.new_password, version: account.version + 1, updated_at: iso(Date.now()) });
    did("account.password_change", { target: account.id });
    const fresh = randomBytes(24).toString("base64url");
    const csrf = randomBytes(16).toString("hex");
    tokens.set(fresh, csrf);
    sessionAccounts.set(fresh, { id: account.id, version: account.version });
    const age = 24 * 3600;
    return send(res, 200, { token: fresh, username: account.username, role: account.role, expires_at: iso(Date.now() + age * 1000) }, {
      "Set-Cookie": [`budget_session=${fresh}; Path=/api; Max-Age=${age}; HttpOnly; SameSite=Strict`, `budget_csrf=${csrf}; Path=/; Max-Age=${age}; SameSite=Strict`],
    });
  }
  if (path === "/api/accounts" && req.method === "GET") {
    return send(res, 200, [...accounts.values()].sort((a, b) => (a.username < b.username ? -1 : 1)).map(accountView));
  }
  if (path === "/api/accounts" && req.method === "POST") {
    const b = await body(req);
    const name = String(b.username ?? "").trim();
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) return fail(res, 422, "username: must be 1 to 64 characters of ASCII letters, digits, '.', '_', '@' or '-'", "validation_failed", "username");
    if (typeof b.password !== "string" || [...b.password].length < 12) return fail(res, 422, "password: must be at least 12 characters", "validation_failed", "password");
    if (!["admin", "viewer"].includes(b.role)) return fail(res, 422, "role: unknown variant", "invalid_body", "role");
    if (name.toLowerCase() === ADMIN_USERNAME.toLowerCase() || accountNamed(name)) return fail(res, 409, `conflict: an account named ${JSON.stringify(name)} already exists`, "conflict");
    const now = iso(Date.now());
    const a = { id: randomUUID(), username: name, role: b.role, password: b.password, disabled: false, version: 0, created_at: now, updated_at: now };
    accounts.set(a.id, a);
    did("account.create", { target: a.id, after: { username: a.username, role: a.role, disabled: false } });
    return send(res, 201, accountView(a));
  }
  if ((m = path.match(/^\/api\/accounts\/([^/]+)$/))) {
    const a = accounts.get(decodeURIComponent(m[1]));
    if (!a) return fail(res, 404, `account ${JSON.stringify(m[1])} not found`, "not_found", null, "not_found_error");
    if (req.method === "GET") return send(res, 200, accountView(a));
    if (req.method === "PUT") {
      const b = await body(req);
      const own = account?.id === a.id;
      if (own && (b.disabled === true || b.role === "viewer" || b.password !== undefined)) return fail(res, 409, "You cannot disable, demote or reset your own account here", "conflict");
      if (b.password !== undefined && (typeof b.password !== "string" || [...b.password].length < 12)) return fail(res, 422, "password: must be at least 12 characters", "validation_failed", "password");
      const before = { role: a.role, disabled: a.disabled };
      if (b.role === "admin" || b.role === "viewer") a.role = b.role;
      const disabling = b.disabled === true && !a.disabled;
      if (typeof b.disabled === "boolean") a.disabled = b.disabled;
      if (b.password !== undefined) a.password = b.password;
      if (disabling || b.password !== undefined) a.version++;
      a.updated_at = iso(Date.now());
      const [ob, oa] = changed(before, { role: a.role, disabled: a.disabled });
      if (Object.keys(ob).length > 0) did("account.update", { target: a.id, before: ob, after: oa });
      if (b.password !== undefined) did("account.password_reset", { target: a.id, after: { username: a.username } });
      return send(res, 200, accountView(a));
    }
  }
  if (path === "/api/audit" && req.method === "GET") {
    const q = (k) => url.searchParams.get(k) || null;
    const limit = q("limit") === null ? 100 : Number(q("limit"));
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return fail(res, 400, "limit: must be a whole number from 1 to 1000", "invalid_parameter", "limit");
    for (const k of ["from", "to"]) if (q(k) !== null && Number.isNaN(Date.parse(q(k)))) return fail(res, 400, `${k}: must be an RFC 3339 date-time`, "invalid_parameter", k);
    const f = q("from") ? Date.parse(q("from")) : -Infinity, t = q("to") ? Date.parse(q("to")) : Infinity;
    const rows = audit.filter((e) => (!q("limiter_id") || e.limiter_id === q("limiter_id")) && (!q("actor") || e.actor === q("actor")) && Date.parse(e.at) >= f && Date.parse(e.at) < t);
    return send(res, 200, rows.reverse().slice(0, limit));
  }
  if (path === "/api/alerts" && req.method === "GET") {
    const q = (k) => url.searchParams.get(k) || null;
    const limit = q("limit") === null ? 100 : Number(q("limit"));
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return fail(res, 400, "limit: must be a whole number from 1 to 1000", "invalid_parameter", "limit");
    if (q("status") !== null && !["pending", "delivered", "failed"].includes(q("status"))) return fail(res, 400, "status: must be pending, delivered or failed", "invalid_parameter", "status");
    const rows = alertDeliveries.filter((d) => (!q("limiter_id") || d.limiter_id === q("limiter_id")) && (!q("status") || d.status === q("status")));
    return send(res, 200, { defaults: ALERT_DEFAULTS, deliveries: [...rows].sort((x, y) => Date.parse(y.created_at) - Date.parse(x.created_at)).slice(0, limit) });
  }
  if (path === "/api/limiters" && req.method === "GET") {
    const all = url.searchParams.get("include_deleted") === "true";
    return send(res, 200, [...limiters.values()].filter((l) => all || !l.deleted_at).map((l) => (viewer ? maskedView(view(l, origin)) : view(l, origin))));
  }
  if (path === "/api/limiters" && req.method === "POST") {
    const b = await body(req);
    const bad = validate(b, false);
    if (bad) return fail(res, 422, bad[1], "validation_failed", bad[0]);
    const l = createLimiter(b);
    did("limiter.create", { limiter_id: l.id, after: limiterAudit(l) });
    return send(res, 201, view(l, origin));
  }
  if ((m = path.match(/^\/api\/limiters\/([^/]+)\/users(?:\/([^/]+))?$/))) {
    const l = limiters.get(decodeURIComponent(m[1]));
    if (!l || l.deleted_at) return fail(res, 404, "limiter not found", "not_found");
    if (!m[2] && req.method === "GET") {
      const limit = Number(url.searchParams.get("limit") ?? 20);
      if (!(limit >= 1 && limit <= 1000)) return fail(res, 400, "limit: must be between 1 and 1000", "invalid_parameter", "limit");
      const names = new Set([...usage.filter((u) => u.limiter_id === l.id).map((u) => u.user), ...Object.keys(l.user_overrides)]);
      const rows = [...names].map((user) => {
        const budget = l.user_overrides[user] ?? l.user_budget ?? null;
        const { s, e, spend, requests } = spendIn(l, budget?.period_type ?? l.period_type, user);
        return {
          user, budget, is_override: user in l.user_overrides, current_spend: spend, requests,
          usage_percentage: budget ? Math.round((spend / budget.budget_limit) * 10000) / 100 : null,
          period_start: iso(s), period_end: iso(e),
        };
      });
      rows.sort((a, b) => b.current_spend - a.current_spend);
      return send(res, 200, rows.filter((r, i) => i < limit || r.is_override));
    }
    const user = decodeURIComponent(m[2] ?? "");
    if (m[2] && req.method === "PUT") {
      const b = await body(req);
      if (typeof b.budget_limit !== "number" || !(b.budget_limit > 0)) return fail(res, 422, "budget_limit: must be greater than 0", "validation_failed", "budget_limit");
      if (b.budget_limit > 1e9) return fail(res, 422, "budget_limit: at most 1000000000", "validation_failed", "budget_limit");
      if (!PERIODS.includes(b.period_type)) return fail(res, 422, "period_type: unknown period", "validation_failed", "period_type");
      const before = l.user_overrides[user] ?? null;
      l.user_overrides[user] = { budget_limit: b.budget_limit, period_type: b.period_type };
      did("limiter.user_override.set", { limiter_id: l.id, target: user, before, after: l.user_overrides[user] });
      return send(res, 200, view(l, origin));
    }
    if (m[2] && req.method === "DELETE") {
      if (!(user in l.user_overrides)) return fail(res, 404, "no override for this user", "not_found");
      const before = l.user_overrides[user];
      delete l.user_overrides[user];
      did("limiter.user_override.remove", { limiter_id: l.id, target: user, before });
      return send(res, 204);
    }
  }
  if ((m = path.match(/^\/api\/limiters\/([^/]+)(\/stats|\/rotate-code)?$/))) {
    const l = limiters.get(decodeURIComponent(m[1]));
    if (!l || l.deleted_at) return fail(res, 404, "limiter not found", "not_found");
    if (!m[2] && req.method === "GET") return send(res, 200, viewer ? maskedView(view(l, origin)) : view(l, origin));
    if (!m[2] && req.method === "PUT") {
      const b = await body(req);
      const bad = validate(b, l);
      if (bad) return fail(res, 422, bad[1], "validation_failed", bad[0]);
      const before = limiterAudit(l);
      for (const k of ["name", "budget_limit", "period_type", "base_url", "provider", "mode", "unpriced", "timezone", "is_active", "extra_budgets", "require_user", "allowed_models", "cap_output_tokens"])
        if (b[k] !== undefined && b[k] !== null) l[k] = b[k];
      // `null` removes these (and `unmetered_endpoints` returns to the server's setting).
      for (const k of ["user_budget", "max_request_cost", "expires_at", "unmetered_endpoints", "credential_id", "alerts"]) if (b[k] !== undefined) l[k] = b[k];
      l.updated_at = iso(Date.now());
      if (before.is_active && !l.is_active) raiseAlert("deactivated", l);
      const [b0, a0] = changed(before, limiterAudit(l));
      did("limiter.update", { limiter_id: l.id, before: b0, after: a0 });
      return send(res, 200, view(l, origin));
    }
    if (!m[2] && req.method === "DELETE") {
      did("limiter.delete", { limiter_id: l.id, before: limiterAudit(l) });
      l.deleted_at = iso(Date.now());
      raiseAlert("deleted", l);
      return send(res, 204);
    }
    if (m[2] === "/rotate-code" && req.method === "POST") {
      const b = await body(req);
      const grace = b.grace_seconds ?? 0;
      if (b.__invalid || !Number.isInteger(grace) || grace < 0 || grace > 2592000)
        return fail(res, 400, "grace_seconds: must be a whole number of seconds from 0 to 2592000 (30 days)", "validation_failed", "grace_seconds");
      const before = limiterAudit(l);
      l.previous_code = grace > 0 ? { code: l.code, until: iso(Date.now() + grace * 1000) } : null;
      l.code = newCode();
      l.updated_at = iso(Date.now());
      const [b0, a0] = changed(before, limiterAudit(l));
      did("limiter.rotate_code", { limiter_id: l.id, before: b0, after: a0 });
      return send(res, 200, view(l, origin));
    }
    if (m[2] === "/stats" && req.method === "GET") {
      const v = view(l, origin);
      const rows = usage.filter((u) => u.limiter_id === l.id && u.ts >= Date.parse(v.period_start));
      const pt = rows.reduce((a, u) => a + u.prompt_tokens, 0), ct = rows.reduce((a, u) => a + u.completion_tokens, 0);
      return send(res, 200, {
        limiter_id: l.id, limiter_name: l.name, current_spend: v.current_spend, budget_limit: l.budget_limit,
        remaining_budget: v.remaining_budget, usage_percentage: v.usage_percentage, total_requests: rows.length,
        period_start: v.period_start, period_end: v.period_end, held: 0, in_flight: 0, leased: 0,
        prompt_tokens: pt, completion_tokens: ct, total_tokens: pt + ct,
        unpriced_requests: rows.filter((u) => u.unpriced).length, estimated_requests: 0, refused: refusedIn(l.id, Date.parse(v.period_start)),
      });
    }
  }
  if (path === "/api/credentials" && req.method === "GET") {
    return send(res, 200, [...credentials.values()].sort((a, b) => a.name.localeCompare(b.name)).map(credentialView));
  }
  if (path === "/api/credentials" && req.method === "POST") {
    const b = await body(req);
    if (!SECRETS_KEY_SET) return fail(res, 400, SECRETS_KEY_MISSING, "secrets_key_missing");
    const bad = validateCredential(b, null);
    if (bad) return fail(res, bad[2] ?? 422, bad[1], bad[2] === 409 ? "conflict" : "validation_failed", bad[2] === 409 ? null : bad[0]);
    const c = createCredential(b);
    did("credential.create", { target: c.id, after: credentialAudit(c) });
    return send(res, 201, credentialView(c));
  }
  if ((m = path.match(/^\/api\/credentials\/([^/]+)$/))) {
    const c = credentials.get(decodeURIComponent(m[1]));
    if (!c) return fail(res, 404, "credential not found", "not_found");
    if (req.method === "GET") return send(res, 200, credentialView(c));
    if (req.method === "PUT") {
      const b = await body(req);
      if (b.api_key !== undefined && !SECRETS_KEY_SET) return fail(res, 400, SECRETS_KEY_MISSING, "secrets_key_missing");
      const bad = validateCredential(b, c);
      if (bad) return fail(res, bad[2] ?? 422, bad[1], bad[2] === 409 ? "conflict" : "validation_failed", bad[2] === 409 ? null : bad[0]);
      const now = iso(Date.now());
      const before = credentialAudit(c);
      if (b.name !== undefined) c.name = b.name.trim();
      for (const k of ["organization", "project"]) if (b[k] !== undefined) c[k] = b[k];
      if (b.api_key !== undefined) { c.secret = b.api_key; c.rotated_at = now; }
      c.updated_at = now;
      const [b0, a0] = changed(before, credentialAudit(c));
      did(b.api_key !== undefined ? "credential.rotate" : "credential.update", { target: c.id, before: b0, after: a0 });
      return send(res, 200, credentialView(c));
    }
    if (req.method === "DELETE") {
      const users = usersOf(c);
      if (users.length > 0)
        return fail(res, 409, `the credential is used by ${users.length} limiter(s): ${users.map((l) => l.name).join(", ")}; detach it from them first`, "conflict");
      did("credential.delete", { target: c.id, before: credentialAudit(c) });
      credentials.delete(c.id);
      return send(res, 204);
    }
  }
  if (path === "/api/stats" && req.method === "GET") {
    const rows = range(url);
    const byL = new Map(breakdown(rows, "limiter").map((r) => [r.key, r]));
    const rangeFrom = url.searchParams.get("from") ? Date.parse(url.searchParams.get("from")) : -Infinity;
    const rangeTo = url.searchParams.get("to") ? Date.parse(url.searchParams.get("to")) : Infinity;
    const lid = url.searchParams.get("limiter_id");
    return send(res, 200, {
      total_requests: rows.length,
      total_tokens: rows.reduce((a, u) => a + u.prompt_tokens + u.completion_tokens, 0),
      total_cost: round9(rows.reduce((a, u) => a + u.cost, 0)),
      active_users: new Set(rows.map((u) => u.user)).size,
      unpriced_requests: rows.filter((u) => u.unpriced).length,
      estimated_requests: 0, error_requests: 0,
      limiters: [...limiters.values()]
        .filter((l) => (!l.deleted_at || byL.has(l.id)) && (!lid || l.id === lid))
        .map((l) => {
          const v = view(l, origin), r = byL.get(l.id);
          return {
            limiter_id: l.id, limiter_name: l.name, is_active: l.is_active, is_deleted: !!l.deleted_at,
            requests: r?.requests ?? 0, total_tokens: r?.total_tokens ?? 0, cost: r?.cost ?? 0,
            current_spend: v.current_spend, budget_limit: l.budget_limit, usage_percentage: v.usage_percentage, refused: refusedIn(l.id, rangeFrom, rangeTo),
          };
        }),
    });
  }
  if (path === "/api/usage/recent" && req.method === "GET") {
    const limit = Number(url.searchParams.get("limit") ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return fail(res, 400, "limit: must be 1 to 1000", "invalid_parameter", "limit");
    return send(res, 200, [...range(url)].sort((a, b) => b.ts - a.ts).slice(0, limit).map(usageView));
  }
  if (path === "/api/usage/export" && req.method === "GET") {
    const format = url.searchParams.get("format") || "csv";
    if (!["csv", "jsonl"].includes(format)) return fail(res, 400, `format: \`${format}\` is not \`csv\` or \`jsonl\``, "invalid_parameter", "format");
    const rows = [...range(url)].sort((a, b) => a.ts - b.ts || a.id.localeCompare(b.id)).map(exportRow);
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "Content-Type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "Content-Disposition": `attachment; filename="usage-${stamp}.${format}"`,
      "Cache-Control": "no-store",
    });
    if (format === "csv") {
      res.write(EXPORT_COLUMNS.join(",") + "\r\n");
      const text = new Set(["limiter_name", "model", "user", "price_version"]);
      for (const r of rows) res.write(EXPORT_COLUMNS.map((c) => (text.has(c) ? csvText(r[c] ?? "") : String(r[c]))).join(",") + "\r\n");
    } else {
      for (const r of rows) res.write(JSON.stringify(r) + "\n");
    }
    return res.end();
  }
  if (path === "/api/stats/timeseries" && req.method === "GET") {
    const step = { minute: 60e3, hour: 3600e3, day: 86400e3 }[url.searchParams.get("bucket") ?? "hour"];
    if (!step) return fail(res, 400, "bucket: must be minute, hour or day", "invalid_parameter", "bucket");
    const m2 = new Map();
    for (const u of range(url)) {
      const k = Math.floor(u.ts / step) * step;
      const r = m2.get(k) ?? { start: iso(k), requests: 0, total_tokens: 0, cost: 0 };
      r.requests++; r.total_tokens += u.prompt_tokens + u.completion_tokens; r.cost = round9(r.cost + u.cost);
      m2.set(k, r);
    }
    return send(res, 200, [...m2.entries()].sort((a, b) => a[0] - b[0]).map((e) => e[1]));
  }
  if (path === "/api/stats/breakdown" && req.method === "GET") {
    const by = url.searchParams.get("by") ?? "model";
    if (!["model", "user", "limiter"].includes(by)) return fail(res, 400, "by: must be model, user or limiter", "invalid_parameter", "by");
    return send(res, 200, breakdown(range(url), by).slice(0, Number(url.searchParams.get("limit") ?? 50)));
  }
  return fail(res, 404, `no route ${req.method} ${path}`, "not_found");
}

/** The live limiter whose current code, or previous code within its grace period, is `code`. */
function limiterByCode(code) {
  const now = Date.now();
  return [...limiters.values()].find(
    (x) => !x.deleted_at && (x.code === code || (x.previous_code?.code === code && Date.parse(x.previous_code.until) > now)),
  );
}

/**
 * The proxy, in both modes: `/v1/{code}/...` (the client's key passes through, or the stored
 * key replaces it), and the code as the API key (`/v1/...` with `Authorization: Bearer <code>`,
 * Azure `/openai/...` with `api-key: <code>`) for limiters whose key the server holds.
 */
async function proxy(req, res, url) {
  const m = url.pathname.match(/^\/v1\/([^/]+)(\/.*)?$/);
  let l, rest;
  if (m && CODE_RE.test(m[1])) {
    l = limiterByCode(m[1]);
    rest = `/v1${m[2] ?? ""}`;
    if (!l) return fail(res, 404, "Unknown limiter", "limiter_not_found");
  } else {
    const bearer = (req.headers.authorization ?? "").replace(/^Bearer\s+/i, "");
    const code = url.pathname.startsWith("/openai/") ? String(req.headers["api-key"] ?? bearer) : bearer;
    l = CODE_RE.test(code) ? limiterByCode(code) : undefined;
    rest = url.pathname;
    if (!l || !l.credential_id)
      return fail(res, 401, "The API key is not a limiter code whose upstream key this server holds; use base_url http://HOST/v1/{code} with your own key", "invalid_api_key");
  }
  const refused = (reason) => refusals.push({ ts: Date.now(), limiter_id: l.id, reason });
  if (!l.is_active) {
    refused("inactive");
    return fail(res, 403, "This limiter is inactive", "limiter_inactive", null, "permission_error");
  }
  const cred = l.credential_id ? credentials.get(l.credential_id) : null;
  if (l.credential_id && !cred) return fail(res, 503, "The limiter's upstream credential is unavailable", "upstream_credential_unavailable", null, "api_error");
  // Endpoints that cost money without reporting usage (batches, files, …) follow the limiter's policy.
  if (!/\/(chat\/completions|completions|embeddings|responses)$/.test(rest) && (l.unmetered_endpoints ?? "refuse") === "refuse") {
    refused("unknown_endpoint");
    return fail(res, 403, `${rest} is not metered; this limiter refuses unmetered endpoints`, "unmetered_endpoint", null, "permission_error");
  }
  const v = view(l, `http://${req.headers.host}`);
  if (v.current_spend >= l.budget_limit) {
    refused("budget");
    return send(res, 429, { error: { message: `Budget limit exceeded: $${v.current_spend}/$${l.budget_limit} per ${l.period_type}. Current usage: ${v.usage_percentage.toFixed(1)}%`, type: "429", code: "budget_exceeded" } }, { "x-should-retry": "false", "Retry-After": String(Math.ceil((Date.parse(v.period_end) - Date.now()) / 1000)) });
  }
  const b = await body(req);
  const glob = (p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
  if (l.allowed_models.length > 0 && b.model && !l.allowed_models.some((p) => glob(p).test(b.model))) {
    refused("model_rule");
    return fail(res, 403, `model ${b.model} is not allowed for this limiter`, "model_not_allowed", null, "permission_error");
  }
  const upstream = `${l.base_url.replace(/\/+$/, "")}${rest}${url.search}`;
  // A stored key replaces whatever the client sent; without one the client's key passes through.
  const auth = !cred
    ? { Authorization: req.headers.authorization ?? "", ...(req.headers["api-key"] ? { "api-key": req.headers["api-key"] } : {}) }
    : cred.kind === "azure"
      ? { "api-key": cred.secret }
      : { Authorization: `Bearer ${cred.secret}`, ...(cred.organization ? { "OpenAI-Organization": cred.organization } : {}), ...(cred.project ? { "OpenAI-Project": cred.project } : {}) };
  let r;
  try {
    r = await fetch(upstream, { method: req.method, headers: { "Content-Type": "application/json", ...auth }, body: req.method === "GET" ? undefined : JSON.stringify(b) });
  } catch (e) {
    return fail(res, 502, `upstream unreachable: ${e.message}`, "upstream_error", null, "api_error");
  }
  const text = await r.text();
  try {
    const j = JSON.parse(text);
    if (r.ok && j.usage) record(l, j.model ?? b.model ?? "unknown", b.user ?? "anonymous", j.usage.prompt_tokens ?? 0, j.usage.completion_tokens ?? 0);
  } catch { /* not JSON */ }
  res.writeHead(r.status, { "Content-Type": r.headers.get("content-type") ?? "application/json" });
  res.end(text);
}

/** Every distinct credential header value the fake upstream received, as budget-mock-upstream's `GET /mock/seen-keys`. */
const seenKeys = { authorization: [], "api-key": [], "openai-organization": [], "openai-project": [] };

async function upstream(req, res, url) {
  if (url.pathname === "/upstream/mock/seen-keys") return send(res, 200, seenKeys);
  for (const [h, seen] of Object.entries(seenKeys)) {
    const v = req.headers[h];
    if (typeof v === "string" && v && !seen.includes(v)) seen.push(v);
  }
  const b = await body(req);
  if (!url.pathname.endsWith("/chat/completions")) return fail(res, 404, "mock upstream only does chat/completions");
  // Says which key arrived (its last four characters), so a test can tell a stored key from the client's.
  const key = String(req.headers["api-key"] ?? (req.headers.authorization ?? "").replace(/^Bearer\s+/i, ""));
  send(res, 200, {
    id: "chatcmpl-mock", object: "chat.completion", created: Math.floor(Date.now() / 1000), model: b.model ?? "gpt-4o",
    choices: [{ index: 0, message: { role: "assistant", content: `Hello from the mock upstream (key …${key.slice(-4)}).` }, finish_reason: "stop" }],
    usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
  });
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json" };
async function serveStatic(res, path) {
  const file = normalize(join(DIST, path));
  if (file.startsWith(DIST) && path !== "/") {
    try {
      if ((await stat(file)).isFile()) {
        res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream", "Cache-Control": "public, max-age=31536000, immutable", ...SECURITY_HEADERS });
        return res.end(await readFile(file));
      }
    } catch { /* fall through to index.html */ }
    if (path.startsWith("/assets/")) { res.writeHead(404); return res.end("not found"); }
  }
  res.writeHead(200, { "Content-Type": TYPES[".html"], "Cache-Control": "no-cache", ...SECURITY_HEADERS });
  res.end(await readFile(join(DIST, "index.html")));
}

function seed() {
  const up = `http://127.0.0.1:${PORT}/upstream`;
  const prod = createCredential({ name: "openai-prod", kind: "openai", api_key: `sk-proj-${randomBytes(24).toString("hex")}`, organization: "org-3fQx9acme" });
  const azure = createCredential({ name: "azure-westeurope", kind: "azure", api_key: randomBytes(16).toString("hex") });
  const a = createLimiter({ name: "Customer A - $20/day", budget_limit: 20, period_type: "day", base_url: up, credential_id: prod.id });
  // Rotated an hour ago with a day's grace: the old code still works.
  a.previous_code = { code: newCode(), until: iso(Date.now() + 23 * 3600e3) };
  const b = createLimiter({
    name: "Marketing team", budget_limit: 100, period_type: "week", base_url: up, mode: "strict",
    extra_budgets: [{ budget_limit: 5, period_type: "hour" }, { budget_limit: 300, period_type: "month" }],
    user_budget: { budget_limit: 10, period_type: "day" }, allowed_models: ["gpt-4o-mini", "gpt-4.1", "o3-*"],
  });
  b.user_overrides.carol = { budget_limit: 25, period_type: "day" };
  const c = createLimiter({ name: "Free tier", budget_limit: 1, period_type: "day", base_url: up, unpriced: "refuse", credential_id: prod.id });
  const d = createLimiter({ name: "Azure POC", budget_limit: 50, period_type: "month", base_url: "https://contoso.openai.azure.com", provider: "azure", credential_id: azure.id, timezone: "Europe/Berlin", is_active: false, expires_at: iso(Date.now() + 3 * 86400e3) });
  const now = Date.now();
  const users = ["alice", "bob", "carol", "dave", "erin"];
  let x = 42;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (let i = 0; i < 900; i++) {
    const ts = now - Math.floor(rnd() ** 1.6 * 7 * 86400e3);
    const l = [a, a, b, b, b, c, d][Math.floor(rnd() * 7)];
    const model = ["gpt-4o", "gpt-4o-mini", "gpt-4o-mini", "gpt-4.1", "o3-mini", "my-finetune"][Math.floor(rnd() * 6)];
    record(l, model, users[Math.floor(rnd() * users.length)], 200 + Math.floor(rnd() * 3000), 50 + Math.floor(rnd() * 900), ts);
  }
  // push "Free tier" near its budget and "Customer A" past 75 %
  const [ds] = windowOf("day");
  for (let i = 0; i < 30; i++) record(c, "gpt-4o", "erin", 10000, 1500, ds + 60e3 + i * 1000);
  // Refusals: models outside Marketing's list, and clients still calling the inactive Azure POC.
  for (let i = 0; i < 4; i++) refusals.push({ ts: now - (i + 1) * 600e3, limiter_id: b.id, reason: "model_rule" });
  for (let i = 0; i < 12; i++) refusals.push({ ts: now - (i + 1) * 300e3, limiter_id: d.id, reason: "inactive" });
  for (let i = 0; i < 60; i++) record(a, "gpt-4.1", "alice", 60000, 8000, ds + Math.floor(((now - ds) * i) / 60));
  // Alerts: Customer A and Free tier report to a Slack webhook; one receiver is failing.
  a.alerts = { thresholds: [50, 80, 100], webhook_url: "https://hooks.slack.com/services/T000/B000/XXXXXXXX", format: "slack", muted: false };
  c.alerts = { thresholds: null, webhook_url: "https://alerts.example.com/budget?token=abc", format: "json", muted: false };
  b.alerts = { thresholds: [], muted: true };
  const win = (l, pct, t, over = {}) =>
    raiseAlert("threshold_crossed", l, t, { threshold: pct, period: "day", window_start: iso(ds), spent: round9((l.budget_limit * pct) / 100 + 0.01), budget: l.budget_limit, ...over });
  const today = (f) => Math.floor(ds + (now - ds) * f);
  win(a, 50, today(0.5));
  win(a, 80, today(0.9));
  win(c, 80, today(0.1));
  win(c, 100, today(0.12), { status: "failed", attempts: 14, delivered_at: null, last_error: "HTTP 503" });
  raiseAlert("exhausted", c, now - 90e3, { period: "day", window_start: iso(ds), spent: 1.02, budget: 1, status: "pending", attempts: 3, delivered_at: null, last_error: "connection refused", next_attempt_at: iso(now + 40e3) });
  // A few days of admin actions, oldest first.
  const ago = (hours) => now - hours * 3600e3;
  const office = "192.0.2.10";
  audited("admin", office, "login.succeeded", {}, ago(70));
  for (const [cr, t] of [[prod, 69.9], [azure, 69.8]]) audited("admin", office, "credential.create", { target: cr.id, after: credentialAudit(cr) }, ago(t));
  for (const [l, t] of [[a, 69.5], [b, 69.4], [c, 69.3], [d, 69.2]]) audited("admin", office, "limiter.create", { limiter_id: l.id, after: { ...limiterAudit(l), previous_code: null } }, ago(t));
  audited("admin", office, "limiter.user_override.set", { limiter_id: b.id, target: "carol", after: b.user_overrides.carol }, ago(30));
  audited("ops", "198.51.100.23", "login.failed", {}, ago(5));
  audited("ops", "198.51.100.23", "login.failed", {}, ago(4.98));
  audited("admin", office, "login.succeeded", {}, ago(2));
  audited("admin", office, "limiter.update", { limiter_id: c.id, before: { budget_limit: 0.5, unpriced: "admit" }, after: { budget_limit: 1, unpriced: "refuse" } }, ago(1.9));
  audited("admin", office, "limiter.rotate_code", {
    limiter_id: a.id,
    before: { code: maskCode(a.previous_code.code), previous_code: null },
    after: { code: maskCode(a.code), previous_code: { code: maskCode(a.previous_code.code), until: a.previous_code.until } },
  }, ago(1));
}
if (SEED) seed();

createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
  try {
    if (url.pathname === "/__mock/expire" && req.method === "POST") { tokens.clear(); return send(res, 204); }
    if (url.pathname === "/health") return send(res, 200, { status: "ok" });
    if (url.pathname.startsWith("/api/")) return await api(req, res, url);
    if (url.pathname.startsWith("/v1/") || url.pathname.startsWith("/openai/")) return await proxy(req, res, url);
    if (url.pathname.startsWith("/upstream/")) return await upstream(req, res, url);
    return await serveStatic(res, url.pathname);
  } catch (e) {
    console.error(e);
    fail(res, 500, String(e?.message ?? e), "internal", null, "api_error");
  }
}).listen(PORT, "127.0.0.1", () => console.log(`dev mock on http://127.0.0.1:${PORT} (upstream: http://127.0.0.1:${PORT}/upstream)${SEED ? " [seeded]" : ""}`));

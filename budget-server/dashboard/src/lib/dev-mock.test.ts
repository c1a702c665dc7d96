// The dev mock (e2e/dev-mock-api.mjs) against the server's OpenAPI document — the same
// document the dashboard's types are generated from: every answer the dashboard reads must
// have the documented status and shape.

import { describe, expect, inject, it } from "vitest";
import openapi from "../../../openapi.json";

declare module "vitest" {
  export interface ProvidedContext {
    /** Where e2e/dev-mock.global-setup.mjs started the dev mock. */
    devMockUrl: string;
    /** The same, started with --no-secrets-key. */
    devMockNoSecretsUrl: string;
  }
}

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  allOf?: Schema[];
  oneOf?: Schema[];
  anyOf?: Schema[];
};
type Doc = {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>;
  components: { schemas: Record<string, Schema> };
};

const doc = openapi as unknown as Doc;

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** What is wrong with `value` under `schema` (the subset of JSON Schema the document uses). */
export function problems(value: unknown, schema: Schema, at = "$"): string[] {
  if (schema.$ref) return problems(value, doc.components.schemas[schema.$ref.replace("#/components/schemas/", "")], at);
  const out: string[] = [];
  for (const s of schema.allOf ?? []) out.push(...problems(value, s, at));
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives && !alternatives.some((s) => problems(value, s, at).length === 0)) out.push(`${at}: matches none of the alternatives`);
  if (schema.type) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === "integer" && types.includes("number"))) return [...out, `${at}: ${t}, expected ${types.join(" or ")}`];
  }
  if (schema.enum && !schema.enum.includes(value)) out.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (typeOf(value) === "object") {
    const obj = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in obj)) out.push(`${at}.${k}: missing`);
    for (const [k, v] of Object.entries(obj)) {
      const p = schema.properties?.[k];
      if (p) out.push(...problems(v, p, `${at}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${at}.${k}: not in the schema`);
    }
  }
  if (Array.isArray(value) && schema.items) value.forEach((v, i) => out.push(...problems(v, schema.items!, `${at}[${i}]`)));
  return out;
}

/** The documented schema of `method path`'s JSON answer with `status`. */
function answerSchema(method: string, path: string, status: number): Schema {
  const answer = doc.paths[path]?.[method.toLowerCase()]?.responses[String(status)];
  if (!answer) throw new Error(`${method} ${path} does not document ${status}`);
  const json = answer.content?.["application/json"];
  if (!json) throw new Error(`${method} ${path} ${status} has no JSON body`);
  return json.schema;
}

let base = inject("devMockUrl");
let token = "";

/** Call the mock and check its answer against the document; returns the body. */
async function call(method: string, template: string, path: string, status: number, body?: unknown): Promise<unknown> {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  expect(res.status, `${method} ${path}: ${text}`).toBe(status);
  if (status === 204) return undefined;
  const value: unknown = JSON.parse(text);
  expect(problems(value, answerSchema(method, template, status)), `${method} ${path}`).toEqual([]);
  return value;
}

describe("the dev mock answers as the OpenAPI document says", () => {
  it("login, limiters, stats and errors", async () => {
    const login = (await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string };
    token = login.token;
    const list = (await call("GET", "/api/limiters", "/api/limiters", 200)) as { id: string }[];
    expect(list.length).toBeGreaterThan(0);
    const created = (await call("POST", "/api/limiters", "/api/limiters", 201, {
      name: "contract",
      budget_limit: 2.5,
      period_type: "day",
      base_url: "https://api.openai.com",
    })) as { id: string };
    const one = `/api/limiters/${created.id}`;
    await call("GET", "/api/limiters/{id}", one, 200);
    const inactive = (await call("PUT", "/api/limiters/{id}", one, 200, { name: "renamed", is_active: false })) as { code: string };
    // An inactive limiter refuses; the mock counts the refusals like the server.
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${base}/v1/${inactive.code}/chat/completions`, { method: "POST", body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
      expect(res.status).toBe(403);
    }
    await call("POST", "/api/limiters/{id}/rotate-code", `${one}/rotate-code`, 200);
    const refused = { total: 2, by_reason: { inactive: 2 } };
    expect(((await call("GET", "/api/limiters/{id}", one, 200)) as { refused: unknown }).refused).toEqual(refused);
    expect(((await call("GET", "/api/limiters/{id}/stats", `${one}/stats`, 200)) as { refused: unknown }).refused).toEqual(refused);
    const overview = (await call("GET", "/api/stats", "/api/stats", 200)) as { limiters: { limiter_id: string; refused: unknown }[] };
    expect(overview.limiters.find((r) => r.limiter_id === created.id)?.refused).toEqual(refused);
    await call("GET", "/api/stats/timeseries", "/api/stats/timeseries?bucket=day", 200);
    for (const by of ["model", "user", "limiter"]) await call("GET", "/api/stats/breakdown", `/api/stats/breakdown?by=${by}`, 200);
    await call("PUT", "/api/limiters/{id}", one, 422, { budget_limit: -1 });
    const policies = (await call("PUT", "/api/limiters/{id}", one, 200, {
      extra_budgets: [{ budget_limit: 1, period_type: "hour" }],
      user_budget: { budget_limit: 0.5, period_type: "day" },
      allowed_models: ["gpt-4o-mini"],
      expires_at: "2030-01-01T00:00:00Z",
    })) as { windows: { primary: boolean; period_type: string }[] };
    expect(policies.windows.map((w) => [w.period_type, w.primary])).toEqual([["day", true], ["hour", false]]);
    await call("PUT", "/api/limiters/{id}", one, 422, { extra_budgets: [{ budget_limit: 1, period_type: "day" }] });
    await call("PUT", "/api/limiters/{id}/users/{user}", `${one}/users/alice`, 200, { budget_limit: 2, period_type: "week" });
    const users = (await call("GET", "/api/limiters/{id}/users", `${one}/users?limit=5`, 200)) as { user: string; is_override: boolean }[];
    expect(users).toContainEqual(expect.objectContaining({ user: "alice", is_override: true }));
    await call("DELETE", "/api/limiters/{id}/users/{user}", `${one}/users/alice`, 204);
    await call("GET", "/api/stats/timeseries", "/api/stats/timeseries?bucket=week", 400);
    await call("DELETE", "/api/limiters/{id}", one, 204);
    await call("GET", "/api/limiters/{id}", one, 404);
    token = "expired";
    await call("GET", "/api/limiters", "/api/limiters", 401);
  });

  it("credentials, a limiter's stored key, the code as the API key, rotation with a grace period", async () => {
    base = inject("devMockUrl");
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const seeded = (await call("GET", "/api/credentials", "/api/credentials", 200)) as { name: string }[];
    expect(seeded.map((c) => c.name)).toEqual([...seeded.map((c) => c.name)].sort());
    const key = "sk-contract-0123456789wxyz";
    const cred = (await call("POST", "/api/credentials", "/api/credentials", 201, { name: "contract key", kind: "openai", api_key: key, organization: "org-c" })) as {
      id: string;
      key_hint: string;
      limiter_count: number;
    };
    expect([cred.key_hint, cred.limiter_count]).toEqual(["…wxyz", 0]);
    const one = `/api/credentials/${cred.id}`;
    expect(JSON.stringify(await call("GET", "/api/credentials/{id}", one, 200))).not.toContain(key);
    await call("POST", "/api/credentials", "/api/credentials", 409, { name: "contract key", api_key: "sk-another-key-123" });
    await call("POST", "/api/credentials", "/api/credentials", 422, { name: "short", api_key: "sk-1" });
    const l = (await call("POST", "/api/limiters", "/api/limiters", 201, {
      name: "held key",
      budget_limit: 5,
      period_type: "day",
      base_url: `${base}/upstream`,
      credential_id: cred.id,
    })) as { id: string; code: string; credential_id: string };
    expect(l.credential_id).toBe(cred.id);
    expect(l.code).toMatch(/^sk-budget-[0-9a-f]{32}$/);
    await call("PUT", "/api/limiters/{id}", `/api/limiters/${l.id}`, 422, { credential_id: "00000000-0000-4000-8000-000000000000" });
    // An OpenAI key on an Azure limiter would go out in the wrong header.
    await call("PUT", "/api/limiters/{id}", `/api/limiters/${l.id}`, 422, { provider: "azure", credential_id: cred.id });
    // The code as the API key: the upstream gets the stored key.
    const chat = async (code: string) => {
      const res = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { Authorization: `Bearer ${code}` }, body: JSON.stringify({ model: "gpt-4o", messages: [] }) });
      return { status: res.status, text: await res.text() };
    };
    expect((await chat(l.code)).text).toContain("(key …wxyz)");
    await call("DELETE", "/api/credentials/{id}", one, 409);
    const rotated = (await call("POST", "/api/limiters/{id}/rotate-code", `/api/limiters/${l.id}/rotate-code`, 200, { grace_seconds: 60 })) as {
      code: string;
      previous_code: { code: string; until: string };
    };
    expect(rotated.previous_code.code).toBe(l.code);
    expect((await chat(l.code)).status).toBe(200);
    expect((await chat(rotated.code)).status).toBe(200);
    await call("POST", "/api/limiters/{id}/rotate-code", `/api/limiters/${l.id}/rotate-code`, 400, { grace_seconds: 2592001 });
    const saved = (await call("PUT", "/api/credentials/{id}", one, 200, { api_key: "sk-contract-rotated-9876", organization: null })) as { key_hint: string };
    expect(saved.key_hint).toBe("…9876");
    expect((await chat(rotated.code)).text).toContain("(key …9876)");
    await call("PUT", "/api/limiters/{id}", `/api/limiters/${l.id}`, 200, { credential_id: null });
    // Without a stored key, the code is no API key.
    expect((await chat(rotated.code)).status).toBe(401);
    await call("DELETE", "/api/credentials/{id}", one, 204);
    await call("GET", "/api/credentials/{id}", one, 404);
  });

  it("recent usage and the export: one CSV row and one JSON line per record in the range", async () => {
    base = inject("devMockUrl");
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const from = new Date(Date.now() - 2 * 86_400_000).toISOString();
    const recent = (await call("GET", "/api/usage/recent", `/api/usage/recent?limit=1000&from=${encodeURIComponent(from)}`, 200)) as { id: string; at: string }[];
    expect(recent.length).toBeGreaterThan(0);
    expect(recent.length).toBeLessThan(1000);
    await call("GET", "/api/usage/recent", "/api/usage/recent?limit=0", 400);
    const download = async (format: string) => {
      const res = await fetch(`${base}/api/usage/export?from=${encodeURIComponent(from)}&format=${format}`, { headers: { Authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-disposition")).toMatch(new RegExp(`^attachment; filename="usage-\\d{8}T\\d{6}Z\\.${format}"$`));
      return res.text();
    };
    const csv = (await download("csv")).split("\r\n");
    expect(csv.pop()).toBe("");
    expect(csv[0]).toBe(
      "id,at,limiter_id,limiter_name,model,user,endpoint,status,streamed,prompt_tokens,cached_tokens,completion_tokens,reasoning_tokens,cost_usd,unpriced,estimated,latency_ms,price_version",
    );
    // The same records as /api/usage/recent, oldest first.
    const ids = recent.map((r) => r.id).sort();
    const rows = csv.slice(1).map((r) => r.split(","));
    expect(rows.map((r) => r[0]).sort()).toEqual(ids);
    const times = rows.map((r) => Date.parse(r[1]!));
    expect(times).toEqual([...times].sort((x, y) => x - y));
    const lines = (await download("jsonl")).trimEnd().split("\n").map((l) => JSON.parse(l) as { id: string; cost_usd: string });
    expect(lines.map((l) => l.id)).toEqual(rows.map((r) => r[0]));
    for (const l of lines) expect(l.cost_usd).toMatch(/^\d+(\.\d{1,9})?$/);
    await call("GET", "/api/usage/export", "/api/usage/export?format=xlsx", 400);
  });

  it("a server without SECRETS_KEY refuses to store a key, and says how to set it", async () => {
    base = inject("devMockNoSecretsUrl");
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const err = (await call("POST", "/api/credentials", "/api/credentials", 400, { name: "k", api_key: "sk-0123456789" })) as { error: { code: string; message: string } };
    expect(err.error.code).toBe("secrets_key_missing");
    expect(err.error.message).toMatch(/SECRETS_KEY is not set.*openssl rand -base64 32/);
  });

  it("the audit trail: logins, limiter and key changes with the client address, codes masked, filters", async () => {
    base = inject("devMockUrl");
    await call("POST", "/api/auth/login", "/api/auth/login", 401, { username: "auditor", password: "wrong" });
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const l = (await call("POST", "/api/limiters", "/api/limiters", 201, { name: "audited", budget_limit: 3, period_type: "day", base_url: "https://api.openai.com" })) as {
      id: string;
      code: string;
    };
    const one = `/api/limiters/${l.id}`;
    await call("PUT", "/api/limiters/{id}", one, 200, { budget_limit: 4.5, name: "audited" });
    const rotated = (await call("POST", "/api/limiters/{id}/rotate-code", `${one}/rotate-code`, 200, { grace_seconds: 0 })) as { code: string };
    const key = "sk-audit-0123456789abcd";
    const cred = (await call("POST", "/api/credentials", "/api/credentials", 201, { name: "audit key", api_key: key })) as { id: string };
    await call("PUT", "/api/credentials/{id}", `/api/credentials/${cred.id}`, 200, { api_key: "sk-audit-rotated-4321" });
    await call("DELETE", "/api/credentials/{id}", `/api/credentials/${cred.id}`, 204);
    await call("DELETE", "/api/limiters/{id}", one, 204);

    type Entry = { action: string; actor: string; client: string | null; limiter_id: string | null; target: string | null; before: unknown; after: unknown; at: string };
    const all = (await call("GET", "/api/audit", "/api/audit?limit=1000", 200)) as Entry[];
    const text = JSON.stringify(all);
    for (const secret of [l.code, rotated.code, key, "sk-audit-rotated-4321"]) expect(text).not.toContain(secret);
    const times = all.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(all.find((e) => e.action === "login.failed" && e.actor === "auditor")).toMatchObject({ client: "127.0.0.1" });

    const mine = (await call("GET", "/api/audit", `/api/audit?limiter_id=${l.id}`, 200)) as Entry[];
    expect(mine.map((e) => e.action)).toEqual(["limiter.delete", "limiter.rotate_code", "limiter.update", "limiter.create"]);
    expect(mine.every((e) => e.limiter_id === l.id && e.actor === "admin" && e.client === "127.0.0.1")).toBe(true);
    expect([mine[2]!.before, mine[2]!.after]).toEqual([{ budget_limit: 3 }, { budget_limit: 4.5 }]);
    expect(mine[1]!.before).toMatchObject({ code: `${l.code.slice(0, 14)}…` });
    expect(mine[1]!.after).toMatchObject({ code: `${rotated.code.slice(0, 14)}…` });

    const keys = all.filter((e) => e.target === cred.id).map((e) => [e.action, e.before, e.after]);
    expect(keys).toEqual([
      ["credential.delete", expect.objectContaining({ name: "audit key", key_hint: "…4321" }), null],
      ["credential.rotate", expect.objectContaining({ key_hint: "…abcd" }), expect.objectContaining({ key_hint: "…4321" })],
      ["credential.create", null, expect.objectContaining({ name: "audit key", key_hint: "…abcd" })],
    ]);
    const failed = (await call("GET", "/api/audit", "/api/audit?actor=auditor", 200)) as Entry[];
    expect(failed.map((e) => e.action)).toEqual(["login.failed"]);
    const future = encodeURIComponent(new Date(Date.now() + 60_000).toISOString());
    expect(await call("GET", "/api/audit", `/api/audit?from=${future}`, 200)).toEqual([]);
    expect(((await call("GET", "/api/audit", "/api/audit?limit=2", 200)) as Entry[]).length).toBe(2);
    await call("GET", "/api/audit", "/api/audit?limit=1001", 400);
  });

  it("team accounts: a viewer reads masked codes and changes nothing; disabling ends its session", async () => {
    base = inject("devMockUrl");
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const admin = token;
    expect(await call("GET", "/api/auth/me", "/api/auth/me", 200)).toMatchObject({ username: "admin", role: "admin", bootstrap: true });
    const l = (await call("POST", "/api/limiters", "/api/limiters", 201, { name: "seen", budget_limit: 2, period_type: "day", base_url: "https://api.openai.com" })) as {
      id: string;
      code: string;
    };
    const vera = (await call("POST", "/api/accounts", "/api/accounts", 201, { username: "vera.mock", password: "viewer-password-1", role: "viewer" })) as { id: string };
    await call("POST", "/api/accounts", "/api/accounts", 409, { username: "VERA.mock", password: "viewer-password-1", role: "viewer" });
    await call("POST", "/api/accounts", "/api/accounts", 422, { username: "short", password: "eleven-char", role: "viewer" });
    const login = (await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "vera.mock", password: "viewer-password-1" })) as { token: string; role: string };
    expect(login.role).toBe("viewer");
    token = login.token;
    const seen = (await call("GET", "/api/limiters/{id}", `/api/limiters/${l.id}`, 200)) as { code: string; proxy_endpoint: string };
    expect(seen.code).toBe(`${l.code.slice(0, 14)}…`);
    expect(seen.proxy_endpoint).not.toContain(l.code);
    await call("PUT", "/api/limiters/{id}", `/api/limiters/${l.id}`, 403, { budget_limit: 9 });
    await call("GET", "/api/accounts", "/api/accounts", 403);
    await call("GET", "/api/audit", "/api/audit", 403);
    token = admin;
    const list = (await call("GET", "/api/accounts", "/api/accounts", 200)) as { username: string }[];
    expect(list.map((a) => a.username)).toContain("vera.mock");
    expect(JSON.stringify(list)).not.toContain("viewer-password-1");
    await call("PUT", "/api/accounts/{id}", `/api/accounts/${vera.id}`, 200, { disabled: true });
    token = login.token;
    await call("GET", "/api/limiters", "/api/limiters", 401);
    token = admin;
    await call("POST", "/api/auth/login", "/api/auth/login", 401, { username: "vera.mock", password: "viewer-password-1" });
  });

  it("alerts: settings checked like the server's; a limiter with its own webhook lists its deactivation, newest first, filtered", async () => {
    base = inject("devMockUrl");
    token = ((await call("POST", "/api/auth/login", "/api/auth/login", 200, { username: "admin", password: "changeme" })) as { token: string }).token;
    const body = { name: "alerted", budget_limit: 2, period_type: "day", base_url: "https://api.openai.com" };
    type Err = { error: { field: string } };
    const bad = async (alerts: unknown) => ((await call("POST", "/api/limiters", "/api/limiters", 422, { ...body, alerts })) as Err).error.field;
    expect(await bad({ thresholds: [80, 50], muted: false })).toBe("alerts.thresholds");
    expect(await bad({ thresholds: [0], muted: false })).toBe("alerts.thresholds");
    expect(await bad({ thresholds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], muted: false })).toBe("alerts.thresholds");
    expect(await bad({ webhook_url: "ftp://hooks.example.com/x", muted: false })).toBe("alerts.webhook_url");
    expect(await bad({ webhook_url: "https://u:p@hooks.example.com/x", muted: false })).toBe("alerts.webhook_url");
    const settings = { thresholds: [50, 90], webhook_url: "https://hooks.example.com/secret/path", format: "slack", muted: false };
    const l = (await call("POST", "/api/limiters", "/api/limiters", 201, { ...body, alerts: settings })) as { id: string; alerts: unknown };
    expect(l.alerts).toEqual(settings);
    const one = `/api/limiters/${l.id}`;
    await call("PUT", "/api/limiters/{id}", one, 200, { is_active: false });

    type View = { defaults: { enabled: boolean; thresholds: number[] }; deliveries: { kind: string; limiter_id: string; destination: string; status: string; created_at: string }[] };
    const mine = (await call("GET", "/api/alerts", `/api/alerts?limiter_id=${l.id}`, 200)) as View;
    expect(mine.defaults).toMatchObject({ enabled: true, thresholds: [80, 100] });
    expect(mine.deliveries.map((d) => [d.kind, d.destination, d.status])).toEqual([["deactivated", "https://hooks.example.com/…", "delivered"]]);
    expect(JSON.stringify(mine)).not.toContain("secret/path");
    // Back to the server's defaults (no webhook there): a deletion raises nothing.
    expect(((await call("PUT", "/api/limiters/{id}", one, 200, { alerts: null })) as { alerts: unknown }).alerts).toBeNull();
    await call("DELETE", "/api/limiters/{id}", one, 204);
    expect(((await call("GET", "/api/alerts", `/api/alerts?limiter_id=${l.id}`, 200)) as View).deliveries).toHaveLength(1);

    const all = ((await call("GET", "/api/alerts", "/api/alerts", 200)) as View).deliveries;
    const times = all.map((d) => Date.parse(d.created_at));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    const failed = ((await call("GET", "/api/alerts", "/api/alerts?status=failed&limit=5", 200)) as View).deliveries;
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((d) => d.status === "failed")).toBe(true);
    await call("GET", "/api/alerts", "/api/alerts?status=lost", 400);
    await call("GET", "/api/alerts", "/api/alerts?limit=0", 400);
  });

  it("the checker itself finds a wrong shape", () => {
    const limiter = { $ref: "#/components/schemas/Limiter" };
    expect(problems({ id: "x" }, limiter).join("\n")).toMatch(/budget_limit: missing/);
    expect(problems({ error: { message: "m", type: "t", code: null } }, { $ref: "#/components/schemas/Error" })).toEqual([
      "$.error.code: null, expected string",
    ]);
  });
});

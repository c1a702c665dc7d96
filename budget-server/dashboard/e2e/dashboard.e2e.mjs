#!/usr/bin/env node
// End-to-end test of the dashboard served by a running budget-server, in Debian's Chromium
// driven by playwright-core (no browser download).
//
//   BASE_URL=http://127.0.0.1:18080 \
//   MOCK_UPSTREAM_URL=http://127.0.0.1:18081 \
//   ADMIN_USERNAME=admin ADMIN_PASSWORD=changeme \
//   ARTIFACTS_DIR=.ci/artifacts/dashboard \
//   node budget-server/dashboard/e2e/dashboard.e2e.mjs
//
// MOCK_UPSTREAM_URL is an OpenAI-compatible server the proxy forwards to (it becomes the new
// limiter's base_url). Optional: CHROMIUM_PATH (default /usr/bin/chromium), E2E_TIMEOUT_MS.
// Prints "N passed, 0 failed" and exits 0, or names the failed step and exits 1.

import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..", "..", "..");
const BASE_URL = (process.env.BASE_URL || "http://127.0.0.1:18080").replace(/\/+$/, "");
const MOCK_UPSTREAM_URL = (process.env.MOCK_UPSTREAM_URL || "").replace(/\/+$/, "");
const ADMIN_USERNAME = process.env.ADMIN_USERNAME || "admin";
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD || "changeme";
const ARTIFACTS_DIR = resolve(process.env.ARTIFACTS_DIR || join(repoRoot, ".ci", "artifacts", "dashboard"));
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 20000);

if (!MOCK_UPSTREAM_URL) {
  console.error("MOCK_UPSTREAM_URL is required: an OpenAI-compatible upstream the proxy forwards to.");
  process.exit(2);
}

class AssertionError extends Error {}
function assert(cond, message) {
  if (!cond) throw new AssertionError(message);
}

let passed = 0;
let failed = 0;
let page;
const startedAt = Date.now();

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`  ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.error(`  FAIL ${name}\n       ${e instanceof Error ? e.message : String(e)}`);
    if (page) {
      const file = join(ARTIFACTS_DIR, `failure-${passed + failed}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      console.error(`       screenshot: ${file}; page: ${page.url()}`);
    }
    throw e;
  }
}

async function shot(name) {
  const file = join(ARTIFACTS_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`       screenshot ${file}`);
}

/** Polls `fn` until it returns a truthy value or the timeout passes. */
async function eventually(what, fn, timeout = TIMEOUT) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e instanceof Error ? e.message : e;
    }
    if (Date.now() > end) throw new AssertionError(`timed out after ${timeout} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The session token, from the browser's HttpOnly cookie (page scripts cannot read it). */
async function adminToken() {
  const cookies = await page.context().cookies(BASE_URL + "/api/");
  const session = cookies.find((c) => c.name === "budget_session");
  assert(session, `no budget_session cookie after login (cookies: ${cookies.map((c) => c.name).join(", ")})`);
  assert(session.httpOnly && session.sameSite === "Strict", `budget_session is not HttpOnly + SameSite=Strict: ${JSON.stringify(session)}`);
  return session.value;
}

/** Everything the page's scripts can see in web storage and cookies, as one string. */
async function scriptVisibleState() {
  return page.evaluate(() => {
    const dump = (s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`).join("\n");
    return `${dump(localStorage)}\n${dump(sessionStorage)}\n${document.cookie}`;
  });
}

async function adminApi(method, path, body) {
  const token = await adminToken();
  const res = await fetch(`${BASE_URL}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function proxied(endpoint) {
  const res = await fetch(`${endpoint}/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer sk-test" },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
  });
  const text = await res.text();
  return { status: res.status, text };
}

/** A chat completion through `endpoint` for `model`, as end user `user`. */
async function proxiedAs(endpoint, model, user) {
  const res = await fetch(`${endpoint}/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer sk-test" },
    body: JSON.stringify({ model, user, messages: [{ role: "user", content: "hi" }], max_tokens: 16 }),
  });
  return { status: res.status, text: await res.text() };
}

const card = (id) => page.locator(`[data-testid="limiter-card"][data-limiter-id="${id}"]`);
const credentialRow = (id) => page.locator(`[data-testid="credential-row"][data-credential-id="${id}"]`);

/** Every credential header value the mock upstream has received (`GET /mock/seen-keys`), as one list. */
async function seenKeys() {
  const res = await fetch(`${MOCK_UPSTREAM_URL}/mock/seen-keys`);
  assert(res.status === 200, `GET ${MOCK_UPSTREAM_URL}/mock/seen-keys → ${res.status}`);
  const j = await res.json();
  return { all: Object.values(j).flat().map(String), ...j };
}

/** A chat completion with the limiter code as the API key, as the code-as-key snippets set it up. */
async function codeAsKey(v1, code) {
  const res = await fetch(`${v1}/chat/completions`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${code}` },
    body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
  });
  return { status: res.status, text: await res.text() };
}

/** RFC 4180: rows of fields; quoted fields may hold commas, doubled quotes and line breaks. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") row.push(field), rows.push(row), (row = []), (field = ""), i++;
    else field += ch;
  }
  assert(!quoted && field === "" && row.length === 0, `the CSV does not end with CRLF after its last row: …${JSON.stringify(text.slice(-80))}`);
  return rows;
}

/** Clicks the statistics page's download link; saves the file under ARTIFACTS_DIR and returns its name and text. */
async function downloadExport(prefix) {
  const link = page.locator('[data-testid="usage-download-link"]');
  const href = await link.getAttribute("href");
  const [download] = await Promise.all([page.waitForEvent("download"), link.click()]);
  const failure = await download.failure();
  assert(failure === null, `the download of ${href} failed: ${failure}`);
  const file = join(ARTIFACTS_DIR, `${prefix}-${download.suggestedFilename()}`);
  await download.saveAs(file);
  return { href: new URL(href, BASE_URL), filename: download.suggestedFilename(), text: await readFile(file, "utf8") };
}

/** After a form submit: the dialog closes, or the step fails with the message the form shows. */
async function submitted(dialog, errors = '[data-testid="form-error"], [data-testid^="field-error-"], [data-testid="secrets-key-missing"]') {
  const shown = dialog.locator(errors);
  await Promise.race([
    dialog.waitFor({ state: "hidden" }),
    shown.first().waitFor({ state: "visible" }).then(async () => {
      throw new AssertionError(`the form refused: ${await shown.first().innerText()}`);
    }),
  ]);
}

async function main() {
  await mkdir(ARTIFACTS_DIR, { recursive: true });
  console.log(`dashboard e2e against ${BASE_URL} (upstream ${MOCK_UPSTREAM_URL}); artifacts in ${ARTIFACTS_DIR}`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  context.setDefaultTimeout(TIMEOUT);
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE_URL }).catch(() => {});
  page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  // Anything the Content-Security-Policy blocks (an inline script or style the build grew).
  const cspViolations = [];
  await page.exposeFunction("__e2eCspViolation", (v) => cspViolations.push(v));
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__e2eCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
    });
  });

  const name = `e2e limiter ${new Date().toISOString().replace(/[:.]/g, "-")}`;
  let limiterId;
  let endpoint;
  const policyName = `${name} policies`;
  let policyId;
  let policyEndpoint;
  const credentialName = `e2e-openai-${Date.now()}`;
  // Random, so finding it anywhere it must not be proves a leak, not a coincidence.
  const heldKey = `sk-e2e-held-${randomBytes(16).toString("hex")}`;
  const rotatedKey = `sk-e2e-rotated-${randomBytes(16).toString("hex")}`;
  let credentialId;
  let v1;
  /** Every limiter code the suite saw: none may appear whole on the audit page. */
  const codesSeen = [];

  try {
    await step("server serves the app shell for client routes and never shadows the API", async () => {
      for (const path of ["/", "/login", "/statistics", "/credentials", "/audit", "/alerts", "/accounts"]) {
        const res = await fetch(`${BASE_URL}${path}`);
        const text = await res.text();
        assert(res.status === 200 && /<div id="root">/.test(text), `GET ${path} should be the app shell (got ${res.status})`);
      }
      const health = await fetch(`${BASE_URL}/health`);
      assert(health.status === 200 && /json/.test(health.headers.get("content-type") ?? ""), `GET /health should be JSON 200 (got ${health.status} ${health.headers.get("content-type")})`);
      const unauth = await fetch(`${BASE_URL}/api/limiters`);
      assert(unauth.status === 401, `GET /api/limiters without a token should be 401 (got ${unauth.status})`);
    });

    await step("the app shell and the API answer with the browser security headers", async () => {
      for (const path of ["/", "/login", "/api/limiters"]) {
        const res = await fetch(`${BASE_URL}${path}`);
        const csp = res.headers.get("content-security-policy") ?? "";
        assert(/(^|;)\s*script-src 'self'\s*(;|$)/.test(csp), `GET ${path}: CSP without script-src 'self': "${csp}"`);
        assert(/frame-ancestors 'none'/.test(csp), `GET ${path}: CSP without frame-ancestors 'none': "${csp}"`);
        assert(!/unsafe-inline|unsafe-eval/.test(csp), `GET ${path}: CSP allows inline code: "${csp}"`);
        assert(res.headers.get("x-frame-options") === "DENY", `GET ${path}: X-Frame-Options ${res.headers.get("x-frame-options")}`);
        assert(res.headers.get("x-content-type-options") === "nosniff", `GET ${path}: no nosniff`);
        assert(res.headers.get("referrer-policy"), `GET ${path}: no Referrer-Policy`);
      }
      const api = await fetch(`${BASE_URL}/api/limiters`);
      assert(api.headers.get("cache-control") === "no-store", `/api answers Cache-Control ${api.headers.get("cache-control")}`);
    });

    await step("login page: a bad password shows the API's error", async () => {
      await page.goto(`${BASE_URL}/`);
      await page.waitForURL(/\/login$/);
      await page.locator("#username").fill(ADMIN_USERNAME);
      await page.locator("#password").fill("definitely-not-the-password");
      await shot("login.png");
      await page.locator('[data-testid="login-submit"]').click();
      const err = page.locator('[data-testid="login-error"]');
      await err.waitFor({ state: "visible" });
      const text = (await err.innerText()).trim();
      assert(text.length > 0, "login error is empty");
      assert(page.url().endsWith("/login"), `should stay on /login, at ${page.url()}`);
      assert((await page.context().cookies(BASE_URL + "/api/")).length === 0, "a session cookie was set after a failed login");
      console.log(`       error shown: "${text}"`);
    });

    await step("log in", async () => {
      await page.locator("#password").fill(ADMIN_PASSWORD);
      await page.locator('[data-testid="login-submit"]').click();
      await page.waitForURL(`${BASE_URL}/`);
      await page.locator('[data-testid="limiter-grid"], [data-testid="empty-limiters"]').first().waitFor({ state: "visible" });
      const token = await adminToken();
      const visible = await scriptVisibleState();
      assert(!visible.includes(token) && !/eyJ[\w-]+\.[\w-]+\./.test(visible), `the token is readable by page scripts (web storage or document.cookie): ${visible}`);
      assert((await page.evaluate(() => localStorage.getItem("budget.token"))) === null, "localStorage still has budget.token");
      // Styles load under the policy: the app's stylesheet applies (Tailwind's font stack).
      const font = await page.evaluate(() => getComputedStyle(document.body).fontFamily);
      assert(/ui-sans-serif|system-ui|Inter/i.test(font), `the stylesheet did not apply (body font: ${font})`);
      // A marker that disappears if the page reloads: figures must update by polling only.
      await page.evaluate(() => {
        window.__e2eNoReload = true;
      });
    });

    await step("create dialog validates on the client", async () => {
      await page.locator('[data-testid="create-limiter"]').click();
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('input[name="budget_limit"]').fill("0");
      await dialog.locator('input[name="base_url"]').fill("ftp://example.com");
      await page.locator('[data-testid="limiter-form-submit"]').click();
      for (const field of ["name", "budget_limit", "base_url"]) {
        const e = dialog.locator(`[data-testid="field-error-${field}"]`);
        await e.waitFor({ state: "visible" });
        assert((await e.innerText()).trim().length > 0, `no message for ${field}`);
      }
      assert(await dialog.isVisible(), "dialog closed on invalid input");
    });

    await step("create a limiter ($0.01/day, base URL = mock upstream)", async () => {
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      await dialog.locator('input[name="name"]').fill(name);
      await dialog.locator('input[name="budget_limit"]').fill("0.01");
      await dialog.locator('select[name="period_type"]').selectOption("day");
      await dialog.locator('select[name="provider"]').selectOption("openai");
      await dialog.locator('select[name="mode"]').selectOption("soft");
      await dialog.locator('input[name="base_url"]').fill(MOCK_UPSTREAM_URL);
      await shot("create-dialog.png");
      await page.locator('[data-testid="limiter-form-submit"]').click();
      const formError = dialog.locator('[data-testid="form-error"], [data-testid^="field-error-"]');
      await Promise.race([
        dialog.waitFor({ state: "hidden" }),
        formError.first().waitFor({ state: "visible" }).then(async () => {
          throw new AssertionError(`create failed: ${await formError.first().innerText()}`);
        }),
      ]);
      const c = page.locator('[data-testid="limiter-card"]', { has: page.locator('[data-testid="limiter-name"]', { hasText: name }) });
      await c.waitFor({ state: "visible" });
      limiterId = await c.getAttribute("data-limiter-id");
      assert(limiterId, "card has no data-limiter-id");
      const got = await adminApi("GET", `/api/limiters/${limiterId}`);
      assert(got.status === 200, `GET /api/limiters/${limiterId} → ${got.status} ${got.text}`);
      assert(got.json.budget_limit === 0.01, `budget_limit is ${got.json.budget_limit}, want 0.01`);
      assert(got.json.period_type === "day", `period_type is ${got.json.period_type}`);
      assert(got.json.is_active === true, "new limiter is not active");
      assert((await card(limiterId).locator('[data-testid="limiter-spend"]').innerText()).includes("$0.01"), "card does not show the $0.01 budget");
    });

    await step("copy the limiter's endpoint", async () => {
      const c = card(limiterId);
      const shown = (await c.locator('[data-testid="proxy-endpoint"]').innerText()).trim();
      // New codes carry a recognisable prefix, so secret scanners can find leaked ones.
      assert(/\/v1\/sk-budget-[0-9a-f]{32}$/.test(shown), `endpoint looks wrong: ${shown}`);
      await c.locator('[data-testid="copy-endpoint"]').click();
      await c.locator('[data-testid="copy-endpoint"]', { hasText: "Copied" }).waitFor({ state: "visible" });
      let clip = null;
      try {
        clip = await page.evaluate(() => navigator.clipboard.readText());
      } catch (e) {
        console.log(`       clipboard not readable here (${e instanceof Error ? e.message.split("\n")[0] : e}); using the displayed endpoint`);
      }
      if (clip !== null && clip !== "") assert(clip === shown, `clipboard has "${clip}", card shows "${shown}"`);
      endpoint = clip || shown;
      console.log(`       endpoint: ${endpoint}`);
    });

    await step("a real proxied request through the endpoint succeeds", async () => {
      const r = await proxied(endpoint);
      assert(r.status === 200, `POST ${endpoint}/chat/completions → ${r.status}: ${r.text.slice(0, 300)}`);
      const j = JSON.parse(r.text);
      assert(Array.isArray(j.choices), "response has no choices");
    });

    await step("a batch is refused by default; the form admits unmetered endpoints for this limiter", async () => {
      const batch = async () => {
        const res = await fetch(`${endpoint}/batches`, {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: "Bearer sk-test" },
          body: JSON.stringify({ input_file_id: "file-1", endpoint: "/v1/chat/completions", completion_window: "24h" }),
        });
        return { status: res.status, text: await res.text() };
      };
      const refused = await batch();
      assert(refused.status === 403 && refused.text.includes("unmetered_endpoint"), `POST batches → ${refused.status}: ${refused.text.slice(0, 200)}`);
      await card(limiterId).locator('[data-testid="action-edit"]').click();
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      const select = dialog.locator('select[name="unmetered_endpoints"]');
      assert((await select.inputValue()) === "server", "a new limiter follows the server's setting");
      await select.selectOption("allow");
      await page.locator('[data-testid="limiter-form-submit"]').click();
      await dialog.waitFor({ state: "hidden" });
      await card(limiterId).getByText("Unmetered allowed").waitFor({ state: "visible" });
      const got = await adminApi("GET", `/api/limiters/${limiterId}`);
      assert(got.json.unmetered_endpoints === "allow", `unmetered_endpoints is ${got.json.unmetered_endpoints}`);
      const admitted = await batch();
      assert(admitted.status !== 403, `after allowing, POST batches → ${admitted.status}: ${admitted.text.slice(0, 200)}`);
      // Back to the server's setting, so the rest of the walk-through sees the default.
      await card(limiterId).locator('[data-testid="action-edit"]').click();
      await select.selectOption("server");
      await page.locator('[data-testid="limiter-form-submit"]').click();
      await dialog.waitFor({ state: "hidden" });
      const back = await adminApi("GET", `/api/limiters/${limiterId}`);
      assert(back.json.unmetered_endpoints === null, `unmetered_endpoints is ${back.json.unmetered_endpoints}, want null`);
    });

    await step("the card's usage updates without a reload", async () => {
      const spend = card(limiterId).locator('[data-testid="limiter-spend"]');
      const value = await eventually("card spend > 0", async () => {
        const v = Number(await spend.getAttribute("data-spend"));
        return v > 0 ? v : false;
      });
      const text = await spend.innerText();
      assert(!text.startsWith("$0.00 "), `card still shows ${text}`);
      assert(await page.evaluate(() => window.__e2eNoReload === true), "the page was reloaded");
      const bar = card(limiterId).locator('[data-testid="usage-bar"]');
      assert(Number(await bar.getAttribute("aria-valuenow")) >= 0, "usage bar has no value");
      console.log(`       spend ${value} shown as "${text.replace(/\s+/g, " ")}", bar level ${await bar.getAttribute("data-level")}`);
      await shot("limiters.png");
    });

    await step("stats dialog shows the request", async () => {
      await card(limiterId).locator('[data-testid="action-stats"]').click();
      const dialog = page.locator('[data-testid="stats-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await eventually("stats requests = 1", async () => (await dialog.locator('[data-testid="stats-requests"]').innerText()).trim() === "1");
      const spend = (await dialog.locator('[data-testid="stats-spend"]').innerText()).trim();
      assert(spend !== "$0.00", `stats spend is ${spend}`);
      await dialog.locator('[data-testid="stats-chart"]').waitFor({ state: "visible" });
      // The modal locks page scrolling with run-time CSS, which must get past the CSP.
      const overflow = await page.evaluate(() => getComputedStyle(document.body).overflow);
      assert(overflow === "hidden", `page scrolling is not locked behind the dialog (body overflow: ${overflow})`);
      await eventually("a top-models row", async () => (await dialog.locator('[data-testid="stats-top-models-row"]').count()) > 0);
      await shot("stats-dialog.png");
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden" });
    });

    await step("create a limiter with an extra hourly window, a per-user budget and allowed models through the form", async () => {
      await page.locator('[data-testid="create-limiter"]').click();
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('input[name="name"]').fill(policyName);
      await dialog.locator('input[name="budget_limit"]').fill("10");
      await dialog.locator('select[name="period_type"]').selectOption("day");
      await dialog.locator('input[name="base_url"]').fill(MOCK_UPSTREAM_URL);
      await dialog.locator('[data-testid="add-extra-budget"]').click();
      await dialog.locator('input[name="extra_budgets.0.budget_limit"]').fill("5");
      await dialog.locator('select[name="extra_budgets.0.period_type"]').selectOption("hour");
      await dialog.locator('input[name="user_budget.budget_limit"]').fill("1");
      await dialog.locator('select[name="user_budget.period_type"]').selectOption("day");
      await dialog.locator('textarea[name="allowed_models"]').fill("gpt-4o-mini, gpt-4o\ntext-embedding-3-*");
      await dialog.locator('[data-testid="policies"]').screenshot({ path: join(ARTIFACTS_DIR, "policies-form.png") });
      await page.locator('[data-testid="limiter-form-submit"]').click();
      const formError = dialog.locator('[data-testid="form-error"], [data-testid^="field-error-"]');
      await Promise.race([
        dialog.waitFor({ state: "hidden" }),
        formError.first().waitFor({ state: "visible" }).then(async () => {
          throw new AssertionError(`create failed: ${await formError.first().innerText()}`);
        }),
      ]);
      const c = page.locator('[data-testid="limiter-card"]', { has: page.locator('[data-testid="limiter-name"]', { hasText: policyName }) });
      await c.waitFor({ state: "visible" });
      policyId = await c.getAttribute("data-limiter-id");
      const got = await adminApi("GET", `/api/limiters/${policyId}`);
      assert(got.status === 200, `GET /api/limiters/${policyId} → ${got.status} ${got.text}`);
      assert(JSON.stringify(got.json.extra_budgets) === JSON.stringify([{ budget_limit: 5, period_type: "hour" }]), `extra_budgets is ${JSON.stringify(got.json.extra_budgets)}`);
      assert(JSON.stringify(got.json.user_budget) === JSON.stringify({ budget_limit: 1, period_type: "day" }), `user_budget is ${JSON.stringify(got.json.user_budget)}`);
      assert(JSON.stringify(got.json.allowed_models) === JSON.stringify(["gpt-4o-mini", "gpt-4o", "text-embedding-3-*"]), `allowed_models is ${JSON.stringify(got.json.allowed_models)}`);
      assert(got.json.windows.length === 2, `windows: ${JSON.stringify(got.json.windows)}`);
      policyEndpoint = got.json.proxy_endpoint;
    });

    await step("the card shows a bar per window, the model chips and the per-user budget; spend reaches the hourly bar", async () => {
      const c = card(policyId);
      const chips = await c.locator('[data-testid="model-chip"]').allInnerTexts();
      assert(JSON.stringify(chips) === JSON.stringify(["gpt-4o-mini", "gpt-4o", "text-embedding-3-*"]), `chips: ${JSON.stringify(chips)}`);
      const line = (await c.locator('[data-testid="user-budget-line"]').innerText()).trim();
      assert(line.includes("Per-user budget $1.00/day"), `per-user line: "${line}"`);
      const bar = c.locator('[data-testid="window-bar"]');
      assert((await bar.count()) === 1 && (await bar.getAttribute("data-period")) === "hour", "no hourly window bar");
      assert((await bar.locator('[data-testid="window-spend"]').innerText()).trim() === "$0.00 of $5.00", `hourly bar: ${await bar.innerText()}`);
      assert(/^Resets in \d+m/.test((await bar.locator('[data-testid="window-reset"]').innerText()).trim()), `hourly reset: ${await bar.innerText()}`);
      // A model outside the rules is refused before the upstream; an allowed one goes through.
      const refused = await proxiedAs(policyEndpoint, "gpt-4.1", "alice");
      assert(refused.status === 403 && refused.text.includes("model_not_allowed"), `gpt-4.1 → ${refused.status}: ${refused.text.slice(0, 200)}`);
      const ok = await proxiedAs(policyEndpoint, "gpt-4o-mini", "alice");
      assert(ok.status === 200, `gpt-4o-mini → ${ok.status}: ${ok.text.slice(0, 300)}`);
      await eventually("the hourly bar shows the spend", async () => !(await bar.locator('[data-testid="window-spend"]').innerText()).startsWith("$0.00 "));
      const primary = Number(await c.locator('[data-testid="limiter-spend"]').getAttribute("data-spend"));
      assert(primary > 0, `the primary window shows no spend (${primary})`);
      await c.screenshot({ path: join(ARTIFACTS_DIR, "policies-card.png") });
    });

    await step("an invalid extra window shows the field error; an expiry shows on the card", async () => {
      await card(policyId).locator('[data-testid="action-edit"]').click();
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      const period = dialog.locator('select[name="extra_budgets.0.period_type"]');
      assert((await period.inputValue()) === "hour", "the edit form does not show the hourly window");
      await period.selectOption("day");
      await page.locator('[data-testid="limiter-form-submit"]').click();
      const err = dialog.locator('[data-testid="field-error-extra_budgets"]');
      await err.waitFor({ state: "visible" });
      const text = (await err.innerText()).trim();
      assert(/day/.test(text) && /own period/.test(text), `extra_budgets error: "${text}"`);
      assert((await dialog.locator('input[name="extra_budgets.0.budget_limit"]').getAttribute("aria-invalid")) === "true", "the window's amount is not marked invalid");
      // The server gives the same refusal, naming the field.
      const direct = await adminApi("PUT", `/api/limiters/${policyId}`, { extra_budgets: [{ budget_limit: 5, period_type: "day" }] });
      assert(direct.status >= 400 && direct.status < 500 && direct.json?.error?.field === "extra_budgets", `PUT with a repeated period → ${direct.status} ${direct.text}`);
      await period.selectOption("hour");
      await err.waitFor({ state: "detached" });
      const at = new Date(Date.now() + 2 * 86400e3 + 3600e3);
      const pad = (n) => String(n).padStart(2, "0");
      await dialog.locator('input[name="expires_at"]').fill(`${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`);
      await page.locator('[data-testid="limiter-form-submit"]').click();
      await dialog.waitFor({ state: "hidden" });
      const badge = card(policyId).locator('[data-testid="expiry-badge"]');
      await badge.waitFor({ state: "visible" });
      assert(/^Expires in 2d [01]h$/.test((await badge.innerText()).trim()), `expiry badge: "${await badge.innerText()}"`);
      const got = await adminApi("GET", `/api/limiters/${policyId}`);
      assert(Math.abs(Date.parse(got.json.expires_at) - Math.floor(at.getTime() / 60e3) * 60e3) < 1000, `expires_at is ${got.json.expires_at}, want ${at.toISOString()}`);
      assert(JSON.stringify(got.json.extra_budgets) === JSON.stringify([{ budget_limit: 5, period_type: "hour" }]), `the edit changed extra_budgets: ${JSON.stringify(got.json.extra_budgets)}`);
    });

    await step("set and remove a user override in the stats dialog", async () => {
      await card(policyId).locator('[data-testid="action-stats"]').click();
      const dialog = page.locator('[data-testid="stats-dialog"]');
      await dialog.waitFor({ state: "visible" });
      const alice = dialog.locator('[data-testid="user-row"][data-user="alice"]');
      await alice.waitFor({ state: "visible" });
      const spend = (await alice.locator('[data-testid="user-spend"]').innerText()).trim();
      assert(/^1 req · \$[\d.]+ of \$1\.00\/day$/.test(spend), `alice's row: "${spend}"`);
      await alice.locator('[data-testid="user-bar"]').waitFor({ state: "visible" });
      await alice.locator('[data-testid="user-set"]').click();
      assert((await dialog.locator('input[name="override_user"]').inputValue()) === "alice", "the form is not filled with alice");
      await dialog.locator('input[name="override_budget"]').fill("3");
      await dialog.locator('select[name="override_period"]').selectOption("week");
      await dialog.locator('[data-testid="user-override-submit"]').click();
      await eventually("alice's row marked as an override", async () => (await alice.getAttribute("data-override")) === "true");
      assert((await alice.locator('[data-testid="user-spend"]').innerText()).trim().endsWith("of $3.00/week"), `alice's row: ${await alice.innerText()}`);
      let got = await adminApi("GET", `/api/limiters/${policyId}`);
      assert(JSON.stringify(got.json.user_overrides) === JSON.stringify({ alice: { budget_limit: 3, period_type: "week" } }), `user_overrides: ${JSON.stringify(got.json.user_overrides)}`);
      // A bad override is refused with the server's reason beside the form.
      await dialog.locator('input[name="override_user"]').fill("bob");
      await dialog.locator('input[name="override_budget"]').fill("2000000000");
      await dialog.locator('[data-testid="user-override-submit"]').click();
      const err = dialog.locator('[data-testid="user-override-error"]');
      await err.waitFor({ state: "visible" });
      console.log(`       refused override: "${(await err.innerText()).trim()}"`);
      await shot("stats-users.png");
      await alice.locator('[data-testid="user-remove-override"]').click();
      await eventually("alice's override removed", async () => (await alice.getAttribute("data-override")) === "false");
      got = await adminApi("GET", `/api/limiters/${policyId}`);
      assert(JSON.stringify(got.json.user_overrides) === "{}", `user_overrides after removal: ${JSON.stringify(got.json.user_overrides)}`);
      assert((await alice.locator('[data-testid="user-spend"]').innerText()).trim().endsWith("of $1.00/day"), `alice's row after removal: ${await alice.innerText()}`);
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden" });
    });

    await step("statistics page shows the request count and cost", async () => {
      await page.locator('[data-testid="nav-statistics"]').click();
      await page.waitForURL(`${BASE_URL}/statistics`);
      const row = page.locator(`[data-testid="limiter-usage-row"][data-limiter-id="${limiterId}"]`);
      await row.waitFor({ state: "visible" });
      await eventually("usage row requests = 1", async () => (await row.locator('td[data-col="requests"]').innerText()).trim() === "1");
      const cost = (await row.locator('td[data-col="cost"]').innerText()).trim();
      assert(/^\$/.test(cost) && cost !== "$0.00", `usage row cost is ${cost}`);
      const total = Number((await page.locator('[data-testid="overview-requests-value"]').innerText()).replace(/,/g, ""));
      assert(total >= 1, `overview total requests is ${total}`);
      const totalCost = (await page.locator('[data-testid="overview-cost-value"]').innerText()).trim();
      assert(totalCost !== "$0.00", `overview total cost is ${totalCost}`);
      // Sorting: clicking a header flips aria-sort.
      const th = page.locator('[data-testid="limiter-usage-table-sort-requests"]');
      await th.click();
      assert((await th.locator("xpath=..").getAttribute("aria-sort")) === "descending", "requests column not sorted descending after one click");
      await th.click();
      assert((await th.locator("xpath=..").getAttribute("aria-sort")) === "ascending", "requests column not sorted ascending after two clicks");
      assert(await page.evaluate(() => window.__e2eNoReload === true), "the page was reloaded");
      await page.locator('[data-testid="spend-chart"]').waitFor({ state: "visible" });
      await shot("statistics.png");
    });

    await step("statistics download: CSV and JSON Lines of the range and limiter shown, one row per record", async () => {
      const COLUMNS =
        "id,at,limiter_id,limiter_name,model,user,endpoint,status,streamed,prompt_tokens,cached_tokens,completion_tokens,reasoning_tokens,cost_usd,unpriced,estimated,latency_ms,price_version";
      const link = page.locator('[data-testid="usage-download-link"]');
      /** The records in the link's range (and limiter), from the API, as a sorted list of ids. */
      const recentIds = async (href) => {
        const q = new URLSearchParams({ limit: "1000" });
        for (const k of ["from", "to", "limiter_id"]) if (href.searchParams.has(k)) q.set(k, href.searchParams.get(k));
        const r = await adminApi("GET", `/api/usage/recent?${q}`);
        assert(r.status === 200 && Array.isArray(r.json), `GET /api/usage/recent?${q} → ${r.status} ${r.text.slice(0, 200)}`);
        assert(r.json.length < 1000, "more than 1000 records: the comparison would be cut short");
        return r.json.map((u) => u.id).sort();
      };
      const overviewRequests = async () => Number((await page.locator('[data-testid="overview-requests-value"]').innerText()).replace(/,/g, ""));

      // Two more records of the first limiter, for end users whose names CSV must quote or defuse.
      const before = (await recentIds(new URL(`/?limiter_id=${limiterId}`, BASE_URL))).length;
      const oddUsers = ['e2e, "quoted" user', '=HYPERLINK("http://example.invalid")'];
      for (const u of oddUsers) {
        const r = await proxiedAs(endpoint, "gpt-4o", u);
        assert(r.status === 200, `request as ${u}: ${r.status} ${r.text.slice(0, 200)}`);
      }
      await eventually("both records saved", async () => (await recentIds(new URL(`/?limiter_id=${limiterId}`, BASE_URL))).length === before + 2);

      // Every limiter, the page's range (the last 24 hours), CSV by default.
      assert((await page.locator('[data-testid="export-format"]').inputValue()) === "csv", "the default download format is not CSV");
      const all = await downloadExport("all");
      assert(all.href.pathname === "/api/usage/export", `the link goes to ${all.href}`);
      assert(all.href.searchParams.get("format") === "csv" && all.href.searchParams.has("from") && !all.href.searchParams.has("limiter_id"), `link for all limiters: ${all.href.search}`);
      assert(/^usage-\d{8}T\d{6}Z\.csv$/.test(all.filename), `download file name ${all.filename}`);
      const allRows = parseCsv(all.text);
      assert(allRows[0].join(",") === COLUMNS, `header row: ${allRows[0].join(",")}`);
      const allIds = allRows.slice(1).map((r) => r[0]).sort();
      const expectedAll = await recentIds(all.href);
      assert(JSON.stringify(allIds) === JSON.stringify(expectedAll), `CSV has ${allIds.length} records, /api/usage/recent ${expectedAll.length}`);
      await eventually(`overview total requests = ${allIds.length}`, async () => (await overviewRequests()) === allIds.length);
      assert(allRows.slice(1).every((r) => r.length === allRows[0].length), "a CSV row with the wrong number of fields");

      // The first limiter only: the figures and the link follow the filter.
      await page.locator('[data-testid="limiter-filter"]').selectOption(limiterId);
      await eventually("the link names the limiter", async () => new URL(await link.getAttribute("href"), BASE_URL).searchParams.get("limiter_id") === limiterId);
      const one = await downloadExport("limiter");
      const rows = parseCsv(one.text);
      assert(rows[0].join(",") === COLUMNS, `header row: ${rows[0].join(",")}`);
      const col = Object.fromEntries(rows[0].map((c, i) => [c, i]));
      const records = rows.slice(1);
      const expectedOne = await recentIds(one.href);
      assert(expectedOne.length >= 1, "no records of the first limiter in /api/usage/recent");
      assert(JSON.stringify(records.map((r) => r[0]).sort()) === JSON.stringify(expectedOne), `CSV has ${records.length} records of the limiter, /api/usage/recent ${expectedOne.length}`);
      await eventually(`filtered overview requests = ${records.length}`, async () => (await overviewRequests()) === records.length);
      for (const r of records) {
        assert(r[col.limiter_id] === limiterId && r[col.limiter_name] === name, `a row of another limiter: ${r.join(",")}`);
        assert(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(r[col.at]), `time is not RFC 3339 UTC: ${r[col.at]}`);
        assert(/^\d+(\.\d{1,9})?$/.test(r[col.cost_usd]), `cost_usd is not decimal dollars: ${r[col.cost_usd]}`);
      }
      assert(records.some((r) => Number(r[col.cost_usd]) > 0 && r[col.model].startsWith("gpt-4o")), "no priced gpt-4o record of the limiter");
      const users = records.map((r) => r[col.user]);
      assert(users.includes(oddUsers[0]), `the quoted user did not survive the CSV: ${JSON.stringify(users)}`);
      assert(users.includes(`'${oddUsers[1]}`), `a formula-looking user is not defused with a leading ': ${JSON.stringify(users)}`);

      // JSON Lines of the same: every line parses, the same records.
      await page.locator('[data-testid="export-format"]').selectOption("jsonl");
      const jl = await downloadExport("limiter");
      assert(jl.href.searchParams.get("format") === "jsonl" && jl.href.searchParams.get("limiter_id") === limiterId, `JSON Lines link: ${jl.href.search}`);
      assert(/^usage-\d{8}T\d{6}Z\.jsonl$/.test(jl.filename), `download file name ${jl.filename}`);
      assert(jl.text.endsWith("\n"), "the JSON Lines file does not end with a newline");
      const objects = jl.text.slice(0, -1).split("\n").map((line, i) => {
        try {
          return JSON.parse(line);
        } catch (e) {
          throw new AssertionError(`JSON Lines line ${i + 1} does not parse (${e.message}): ${line.slice(0, 200)}`);
        }
      });
      assert(JSON.stringify(objects.map((o) => o.id).sort()) === JSON.stringify(expectedOne), `JSON Lines has ${objects.length} records, expected ${expectedOne.length}`);
      assert(oddUsers.every((u) => objects.some((o) => o.user === u)), `JSON Lines users: ${JSON.stringify(objects.map((o) => o.user))}`);
      const keys = COLUMNS.split(",").sort().join(",");
      assert(objects.every((o) => Object.keys(o).sort().join(",") === keys && typeof o.cost_usd === "string"), `JSON Lines keys: ${Object.keys(objects[0]).join(",")}`);

      await page.locator('[data-testid="export-format"]').selectOption("csv");
      await page.locator('[data-testid="limiter-filter"]').selectOption("");
      assert(page.url() === `${BASE_URL}/statistics`, `the downloads navigated to ${page.url()}`);
      assert(await page.evaluate(() => window.__e2eNoReload === true), "the page was reloaded");
      console.log(`       downloaded ${allIds.length} records of every limiter, ${records.length} of the first (CSV and JSON Lines)`);
      await shot("statistics-download.png");
    });

    await step("credentials page: a key is saved once, then shown only by its hint and fingerprint", async () => {
      await page.locator('[data-testid="nav-credentials"]').click();
      await page.waitForURL(`${BASE_URL}/credentials`);
      await page.locator('[data-testid="credentials-table"], [data-testid="empty-credentials"]').first().waitFor({ state: "visible" });
      await page.locator('[data-testid="create-credential"]').click();
      const dialog = page.locator('[data-testid="credential-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await page.locator('[data-testid="credential-form-submit"]').click();
      await dialog.locator('[data-testid="field-error-api_key"]').waitFor({ state: "visible" });
      await dialog.locator('input[name="name"]').fill(credentialName);
      const keyInput = dialog.locator('input[name="api_key"]');
      assert((await keyInput.getAttribute("type")) === "password", "the key field is not a password field");
      await keyInput.fill(heldKey);
      await dialog.locator('input[name="organization"]').fill("org-e2e");
      await shot("credential-form.png");
      await page.locator('[data-testid="credential-form-submit"]').click();
      await submitted(dialog);
      const row = page.locator(`[data-testid="credential-row"][data-name="${credentialName}"]`);
      await row.waitFor({ state: "visible" });
      credentialId = await row.getAttribute("data-credential-id");
      assert(credentialId, "the row has no data-credential-id");
      const hint = (await row.locator('[data-testid="credential-hint"]').innerText()).trim();
      assert(hint === `…${heldKey.slice(-4)}`, `key hint "${hint}", want …${heldKey.slice(-4)}`);
      assert(/^sha256:[0-9a-f]{12}$/.test((await row.locator('[data-testid="credential-fingerprint"]').innerText()).trim()), "no sha256 fingerprint");
      assert((await row.locator('[data-testid="credential-limiter-count"]').getAttribute("data-count")) === "0", "a new key is already in use");
      assert(!(await page.content()).includes(heldKey), "the page still holds the key after saving");
      assert(!(await scriptVisibleState()).includes(heldKey), "the key is in web storage or cookies");
      const list = await adminApi("GET", "/api/credentials");
      assert(list.status === 200 && list.json.some((c) => c.id === credentialId && c.organization === "org-e2e"), `GET /api/credentials → ${list.status} ${list.text}`);
      assert(!list.text.includes(heldKey), "GET /api/credentials returns the key");
      await shot("credentials.png");
    });

    await step("attach the key to a limiter in its form; the card names it", async () => {
      await page.locator('[data-testid="nav-limiters"]').click();
      await page.waitForURL(`${BASE_URL}/`);
      const name = card(limiterId).locator('[data-testid="limiter-credential-name"]');
      assert((await name.innerText()).trim() === "pass-through", `before attaching, the card says "${await name.innerText()}"`);
      await card(limiterId).locator('[data-testid="action-edit"]').click();
      const dialog = page.locator('[data-testid="limiter-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      const select = dialog.locator('select[name="credential_id"]');
      assert((await select.inputValue()) === "", "a pass-through limiter's form does not say pass-through");
      await eventually("the stored key offered in the form", async () => (await select.locator(`option[value="${credentialId}"]`).count()) === 1);
      await select.selectOption(credentialId);
      await page.locator('[data-testid="limiter-form-submit"]').click();
      await submitted(dialog);
      await eventually("the card names the key", async () => (await name.innerText()).trim() === credentialName);
      const got = await adminApi("GET", `/api/limiters/${limiterId}`);
      assert(got.json.credential_id === credentialId, `credential_id is ${got.json.credential_id}`);
      const cred = await adminApi("GET", `/api/credentials/${credentialId}`);
      assert(cred.json.limiter_count === 1, `limiter_count is ${cred.json.limiter_count}`);
      assert((await card(limiterId).locator('[data-testid="limiter-code"]').innerText()).trim() === got.json.code, "the card does not offer the code as the API key");
    });

    await step("the snippets set up the code as the API key; that setup works and the stored key reaches the upstream", async () => {
      const c = card(limiterId);
      const got = await adminApi("GET", `/api/limiters/${limiterId}`);
      const code = got.json.code;
      v1 = got.json.proxy_endpoint.slice(0, -(code.length + 1));
      assert(v1.endsWith("/v1"), `cannot find /v1 in ${got.json.proxy_endpoint}`);
      await c.locator('[data-testid="snippets"] summary').click();
      assert((await c.locator('[data-testid="snippets"]').getAttribute("data-mode")) === "code-as-key", "the snippets are not in code-as-key mode");
      const note = (await c.locator('[data-testid="snippets-note"]').innerText()).trim();
      assert(/needs no OpenAI key/.test(note), `snippet note: "${note}"`);
      const py = await c.locator('[data-testid="snippet-python"]').innerText();
      assert(py.includes(`base_url="${v1}"`) && py.includes(`api_key="${code}"`) && !py.includes("your-openai-api-key"), `python snippet:\n${py}`);
      await c.locator('[data-testid="snippet-tab-curl"]').click();
      const curl = await c.locator('[data-testid="snippet-curl"]').innerText();
      assert(curl.includes(`Authorization: Bearer ${code}`) && curl.includes(`${v1}/chat/completions`), `curl snippet:\n${curl}`);
      await c.screenshot({ path: join(ARTIFACTS_DIR, "code-as-key-card.png") });
      // What the snippet does: the code is the only credential the client has.
      const r = await codeAsKey(v1, code);
      assert(r.status === 200 && Array.isArray(JSON.parse(r.text).choices), `code as API key → ${r.status}: ${r.text.slice(0, 300)}`);
      // The old way still works, and the client's own key is dropped in favour of the stored one.
      const clientKey = `sk-client-${randomBytes(8).toString("hex")}`;
      const res = await fetch(`${endpoint}/chat/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${clientKey}` },
        body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
      });
      assert(res.status === 200, `path mode with a stored key → ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const seen = await seenKeys();
      assert(seen.all.some((v) => v === `Bearer ${heldKey}`), `the upstream never received the stored key: ${JSON.stringify(seen.all)}`);
      assert((seen["openai-organization"] ?? []).includes("org-e2e"), `no OpenAI-Organization: org-e2e upstream: ${JSON.stringify(seen)}`);
      assert(!seen.all.some((v) => v.includes(code) || v.includes(clientKey)), `the limiter code or the client's key reached the upstream: ${JSON.stringify(seen.all)}`);
    });

    await step("rotate the code with a one-hour grace: both codes work and the card says until when", async () => {
      const before = (await adminApi("GET", `/api/limiters/${limiterId}`)).json.code;
      await card(limiterId).locator('[data-testid="action-rotate"]').click();
      const dialog = page.locator('[data-testid="rotate-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('select[name="grace"]').selectOption("3600");
      await shot("rotate-dialog.png");
      const t0 = Date.now();
      await dialog.locator('[data-testid="confirm-rotate"]').click();
      await submitted(dialog, '[data-testid="rotate-error"]');
      const got = await adminApi("GET", `/api/limiters/${limiterId}`);
      const after = got.json.code;
      assert(after !== before && /^sk-budget-[0-9a-f]{32}$/.test(after), `new code ${after} (was ${before})`);
      assert(got.json.previous_code?.code === before, `previous_code is ${JSON.stringify(got.json.previous_code)}, want the code before`);
      codesSeen.push(before, after);
      const until = Date.parse(got.json.previous_code.until);
      assert(Math.abs(until - (t0 + 3600e3)) < 60e3, `previous_code.until is ${got.json.previous_code.until}, want about an hour from now`);
      const notice = card(limiterId).locator('[data-testid="previous-code"]');
      await notice.waitFor({ state: "visible" });
      assert(/^Old code works until .+ \((59m \d\ds|1h 00m) left\)$/.test((await notice.innerText()).trim()), `card says "${await notice.innerText()}"`);
      await eventually("the card shows the new code", async () => (await card(limiterId).locator('[data-testid="limiter-code"]').innerText()).trim() === after);
      for (const code of [before, after]) {
        const r = await codeAsKey(v1, code);
        assert(r.status === 200, `code ${code.slice(0, 14)}… during the grace period → ${r.status}: ${r.text.slice(0, 200)}`);
      }
      endpoint = got.json.proxy_endpoint;
      await card(limiterId).screenshot({ path: join(ARTIFACTS_DIR, "rotated-card.png") });
    });

    await step("rotate the stored key: the next request sends the new one", async () => {
      await page.locator('[data-testid="nav-credentials"]').click();
      await page.waitForURL(`${BASE_URL}/credentials`);
      const row = credentialRow(credentialId);
      await row.locator('[data-testid="credential-rotate"]').click();
      const dialog = page.locator('[data-testid="credential-form-dialog"][data-mode="rotate"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('input[name="api_key"]').fill(rotatedKey);
      await page.locator('[data-testid="credential-form-submit"]').click();
      await submitted(dialog);
      await eventually("the new hint", async () => (await row.locator('[data-testid="credential-hint"]').innerText()).trim() === `…${rotatedKey.slice(-4)}`);
      const code = (await adminApi("GET", `/api/limiters/${limiterId}`)).json.code;
      const r = await codeAsKey(v1, code);
      assert(r.status === 200, `after rotating the key → ${r.status}: ${r.text.slice(0, 200)}`);
      const seen = await seenKeys();
      assert(seen.all.includes(`Bearer ${rotatedKey}`), `the upstream never received the rotated key: ${JSON.stringify(seen.all)}`);
      assert(!(await page.content()).includes(rotatedKey), "the page holds the rotated key");
    });

    await step("a key in use cannot be deleted: the dialog shows the server's reason", async () => {
      const row = credentialRow(credentialId);
      await row.locator('[data-testid="credential-delete"]').click();
      const dialog = page.locator('[data-testid="delete-credential-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('[data-testid="confirm-delete-credential"]').click();
      const err = dialog.locator('[data-testid="delete-credential-error"]');
      await err.waitFor({ state: "visible" });
      const text = (await err.innerText()).trim();
      assert(text.includes(name), `the refusal does not name the limiter: "${text}"`);
      await shot("credential-delete-refused.png");
      const direct = await adminApi("DELETE", `/api/credentials/${credentialId}`);
      assert(direct.status === 409, `DELETE of a key in use → ${direct.status} ${direct.text}`);
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden" });
      assert(await row.isVisible(), "the row went away although the key was not deleted");
    });

    await step("toggle the limiter off; the proxy refuses with 403", async () => {
      await page.locator('[data-testid="nav-limiters"]').click();
      await page.waitForURL(`${BASE_URL}/`);
      const sw = card(limiterId).locator('[data-testid="limiter-active-switch"]');
      await sw.waitFor({ state: "visible" });
      assert((await sw.getAttribute("aria-checked")) === "true", "switch is not on before toggling");
      await sw.click();
      await eventually("switch off and saved", async () => {
        if ((await sw.getAttribute("aria-checked")) !== "false") return false;
        const got = await adminApi("GET", `/api/limiters/${limiterId}`);
        return got.status === 200 && got.json.is_active === false;
      });
      const r = await proxied(endpoint);
      assert(r.status === 403, `inactive limiter answered ${r.status}, want 403: ${r.text.slice(0, 300)}`);
      assert((await card(limiterId).getAttribute("data-active")) === "false", "card not marked inactive");
    });

    await step("refusals are visible: an inactive limiter's refused requests on its card, in its stats dialog and on the statistics page", async () => {
      const created = await adminApi("POST", "/api/limiters", {
        name: `e2e-refused-${randomBytes(3).toString("hex")}`,
        budget_limit: 1,
        period_type: "day",
        base_url: MOCK_UPSTREAM_URL,
        is_active: false,
      });
      assert(created.status === 201, `POST /api/limiters → ${created.status} ${created.text}`);
      const id = created.json.id;
      try {
        for (let i = 0; i < 3; i++) {
          const r = await proxied(created.json.proxy_endpoint);
          assert(r.status === 403 && r.text.includes("limiter_inactive"), `inactive limiter answered ${r.status}: ${r.text.slice(0, 200)}`);
        }
        // The server writes refusal counts to the store once a second.
        await page.waitForTimeout(1500);
        await page.reload();
        const badge = card(id).locator('[data-testid="refused-badge"]');
        await eventually("the card counts 3 refusals", async () => (await badge.count()) > 0 && (await badge.getAttribute("data-refused")) === "3");
        assert((await badge.innerText()).trim() === "3 refused this period", `card badge: ${await badge.innerText()}`);
        assert((await badge.getAttribute("data-all-refused")) === "true", "a limiter that refused everything is not marked so");
        assert((await badge.getAttribute("title")).includes("Inactive 3"), `badge title: ${await badge.getAttribute("title")}`);

        await card(id).locator('[data-testid="action-stats"]').click();
        const dialog = page.locator('[data-testid="stats-dialog"]');
        await dialog.waitFor({ state: "visible" });
        const total = dialog.locator('[data-testid="stats-refused-total"]');
        await eventually("stats dialog: 3 refused", async () => (await total.count()) > 0 && (await total.innerText()).trim() === "3");
        const reasons = await dialog.locator('[data-testid="stats-refused-reason"]').allInnerTexts();
        assert(JSON.stringify(reasons.map((r) => r.trim())) === JSON.stringify(["Inactive 3"]), `stats dialog reasons: ${reasons.join(" | ")}`);
        assert((await dialog.locator('[data-testid="stats-refused"]').getAttribute("data-all-refused")) === "true", "stats row not marked as all refused");
        await shot("stats-dialog-refused.png");
        await page.keyboard.press("Escape");
        await dialog.waitFor({ state: "hidden" });

        await page.locator('[data-testid="nav-statistics"]').click();
        await page.waitForURL(`${BASE_URL}/statistics`);
        const row = page.locator(`[data-testid="limiter-usage-row"][data-limiter-id="${id}"]`);
        await row.waitFor({ state: "visible" });
        const cell = row.locator('td[data-col="refused_total"]');
        await eventually("statistics row: 3 refused", async () => (await cell.innerText()).trim() === "3");
        assert((await row.locator('td[data-col="requests"]').innerText()).trim() === "0", "the refused requests were counted as requests");
        const sort = page.locator('[data-testid="limiter-usage-table-sort-refused_total"]');
        await sort.click();
        assert((await sort.locator("xpath=..").getAttribute("aria-sort")) === "descending", "the Refused column did not sort");
        const counts = (await page.locator('[data-testid="limiter-usage-row"] td[data-col="refused_total"]').allInnerTexts()).map((t) => Number(t.replace(/,/g, "")));
        assert(counts.every((n, i) => i === 0 || counts[i - 1] >= n), `not sorted by Refused, most first: ${counts.join(", ")}`);
      } finally {
        await adminApi("DELETE", `/api/limiters/${id}`);
        await page.locator('[data-testid="nav-limiters"]').click();
        await page.waitForURL(`${BASE_URL}/`);
      }
    });

    await step("alerts: a limiter with its own webhook, deactivated in the dashboard, is delivered signed; the Alerts page shows it delivered, the webhook's path never", async () => {
      // A tiny webhook receiver: records every request and answers 204.
      const received = [];
      const receiver = createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          received.push({ method: req.method, url: req.url, headers: req.headers, body });
          res.writeHead(204).end();
        });
      });
      await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
      receiver.unref();
      const secretPath = `/hooks/e2e-${randomBytes(12).toString("hex")}`;
      const hookUrl = `http://127.0.0.1:${receiver.address().port}${secretPath}?token=${randomBytes(6).toString("hex")}`;
      const alertName = `${name} alerts`;
      let id;
      try {
        await page.locator('[data-testid="nav-limiters"]').click();
        await page.waitForURL(`${BASE_URL}/`);
        await page.locator('[data-testid="create-limiter"]').click();
        const dialog = page.locator('[data-testid="limiter-form-dialog"]');
        await dialog.waitFor({ state: "visible" });
        await dialog.locator('input[name="name"]').fill(alertName);
        await dialog.locator('input[name="budget_limit"]').fill("5");
        await dialog.locator('input[name="base_url"]').fill(MOCK_UPSTREAM_URL);
        const section = dialog.locator('[data-testid="alerts-section"]');
        // The server's settings are the hint; this server can sign (ALERT_WEBHOOK_SECRET is set).
        await eventually("the server's alert defaults", async () => (await section.locator('[data-testid="alerts-server-defaults"]').innerText()).includes("80%, 100%"));
        assert((await section.locator('[data-testid="alerts-disabled"]').count()) === 0, "the form says alerts are off on a server with a secret");
        await section.locator('[data-testid="alerts-defaults-switch"]').click();
        await section.locator('input[name="alerts_webhook_url"]').fill(hookUrl);
        await section.locator('select[name="alerts_format"]').selectOption("json");
        await shot("create-dialog-alerts.png");
        await page.locator('[data-testid="limiter-form-submit"]').click();
        await submitted(dialog);
        const c = page.locator('[data-testid="limiter-card"]', { has: page.locator('[data-testid="limiter-name"]', { hasText: alertName }) });
        await c.waitFor({ state: "visible" });
        id = await c.getAttribute("data-limiter-id");
        const got = await adminApi("GET", `/api/limiters/${id}`);
        assert(got.json.alerts?.webhook_url === hookUrl && got.json.alerts?.format === "json", `the limiter's alerts: ${JSON.stringify(got.json.alerts)}`);

        const sw = card(id).locator('[data-testid="limiter-active-switch"]');
        await sw.click();
        await eventually("the limiter saved as inactive", async () => (await adminApi("GET", `/api/limiters/${id}`)).json.is_active === false);

        // From its statistics, the Alerts link opens the page filtered to it.
        await card(id).locator('[data-testid="action-stats"]').click();
        await page.locator('[data-testid="stats-alerts"]').click();
        await page.waitForURL(`${BASE_URL}/alerts?limiter_id=${id}`);
        assert((await page.locator('[data-testid="alerts-limiter-filter"]').inputValue()) === id, "the Alerts page is not filtered to the limiter");
        assert((await page.locator('[data-testid="alert-settings"]').getAttribute("data-enabled")) === "true", "the Alerts page says alerts are off");
        const row = page.locator(`[data-testid="alert-row"][data-kind="deactivated"][data-limiter-id="${id}"]`);
        await eventually("the deactivation shown as delivered", async () => (await row.count()) === 1 && (await row.getAttribute("data-status")) === "delivered");
        assert((await row.locator('[data-testid="alert-status"]').innerText()).trim() === "delivered", `status cell: ${await row.locator('[data-testid="alert-status"]').innerText()}`);
        assert(/\bbg-emerald-50\b/.test((await row.locator('[data-testid="alert-status"]').getAttribute("class")) ?? ""), "a delivered alert is not green");
        assert((await row.locator('[data-col="limiter"]').innerText()).trim() === alertName, `limiter cell: ${await row.locator('[data-col="limiter"]').innerText()}`);
        assert((await row.locator('[data-col="attempts"]').innerText()).trim() === "1", `attempts: ${await row.locator('[data-col="attempts"]').innerText()}`);
        const dest = (await row.locator('[data-col="destination"]').innerText()).trim();
        assert(dest.startsWith(`http://127.0.0.1:${receiver.address().port}/…`), `destination cell: ${dest}`);
        assert((await page.locator('[data-testid="alert-row"]').count()) === 1, "the filtered page lists another limiter's alerts");

        assert(received.length === 1, `the receiver got ${received.length} requests: ${JSON.stringify(received.map((r) => r.headers["x-budget-event-type"]))}`);
        const [hit] = received;
        assert(hit.method === "POST" && hit.url === new URL(hookUrl).pathname + new URL(hookUrl).search, `the receiver got ${hit.method} ${hit.url}`);
        assert(hit.headers["x-budget-event-type"] === "deactivated", `x-budget-event-type: ${hit.headers["x-budget-event-type"]}`);
        assert(/^v1=/.test(hit.headers["x-budget-signature"] ?? ""), `x-budget-signature: ${hit.headers["x-budget-signature"]}`);
        const event = JSON.parse(hit.body);
        assert(JSON.stringify(event).includes(id), `the delivered body does not name the limiter: ${hit.body.slice(0, 300)}`);
        // The webhook's path (its secret) never reaches the page.
        const html = await page.content();
        assert(!html.includes(secretPath) && !html.includes(hookUrl), "the Alerts page shows the webhook's path");
        await shot("alerts.png");
      } finally {
        if (id) await adminApi("DELETE", `/api/limiters/${id}`);
        receiver.close();
        await page.locator('[data-testid="nav-limiters"]').click();
        await page.waitForURL(`${BASE_URL}/`);
      }
    });

    await step("delete the limiter (with confirmation); its card disappears", async () => {
      await card(limiterId).locator('[data-testid="action-delete"]').click();
      const dialog = page.locator('[data-testid="delete-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.locator('[data-testid="confirm-delete"]').click();
      await card(limiterId).waitFor({ state: "detached" });
      const list = await adminApi("GET", "/api/limiters");
      assert(list.status === 200 && !list.json.some((l) => l.id === limiterId), "limiter still listed by the API");
      const r = await proxied(endpoint);
      assert(r.status !== 200, `deleted limiter's endpoint still answers 200`);
      // It stays visible in statistics, after a reload of the page this time.
      await page.waitForTimeout(300);
    });

    await step("once no limiter uses it, the key can be deleted", async () => {
      await page.locator('[data-testid="nav-credentials"]').click();
      await page.waitForURL(`${BASE_URL}/credentials`);
      const row = credentialRow(credentialId);
      await eventually("the key shown as unused", async () => (await row.locator('[data-testid="credential-limiter-count"]').getAttribute("data-count")) === "0");
      await row.locator('[data-testid="credential-delete"]').click();
      await page.locator('[data-testid="confirm-delete-credential"]').click();
      await row.waitFor({ state: "detached" });
      const got = await adminApi("GET", `/api/credentials/${credentialId}`);
      assert(got.status === 404, `GET a deleted credential → ${got.status}`);
    });

    await step("audit: the failed login, the limiter's create, update, rotation and deletion and the key's actions, by whom and from where; filters narrow it", async () => {
      // A failed login in a fresh browser, under a name of its own.
      const intruder = `e2e-intruder-${randomBytes(4).toString("hex")}`;
      const other = await page.context().browser().newContext();
      const p2 = await other.newPage();
      await p2.goto(`${BASE_URL}/login`);
      await p2.locator("#username").fill(intruder);
      await p2.locator("#password").fill("not-the-password");
      await p2.locator('[data-testid="login-submit"]').click();
      await p2.locator('[data-testid="login-error"]').waitFor({ state: "visible" });
      await other.close();

      await page.locator('[data-testid="nav-audit"]').click();
      await page.waitForURL(`${BASE_URL}/audit`);
      const table = page.locator('[data-testid="audit-table"]');
      await table.waitFor({ state: "visible" });
      const rows = page.locator('[data-testid="audit-row"]');
      const cell = (row, col) => row.locator(`[data-col="${col}"]`).innerText().then((t) => t.trim());
      /** The rows as shown right now, read in one go (the list re-renders as it polls). */
      const rowsOf = async () =>
        (
          await rows.evaluateAll((els) =>
            els.map((r) => {
              const text = (col) => r.querySelector(`[data-col="${col}"]`)?.textContent?.trim() ?? "";
              return { id: r.dataset.entryId, action: r.dataset.action, limiter: r.dataset.limiterId, actor: text("actor"), client: text("client"), target: text("target"), limiterName: text("limiter") };
            }),
          )
        ).map((r) => ({ ...r, row: page.locator(`[data-testid="audit-row"][data-entry-id="${r.id}"]`) }));

      // The failed login: the name tried, the address, a red badge.
      await page.locator('[data-testid="audit-actor-filter"]').fill(intruder);
      await eventually("only the intruder's entry", async () => {
        const r = await rowsOf();
        return r.length === 1 && r[0].actor === intruder;
      });
      const failed = (await rowsOf())[0].row;
      assert((await failed.getAttribute("data-action")) === "login.failed", `the intruder's entry is ${await failed.getAttribute("data-action")}`);
      assert((await cell(failed, "client")) === "127.0.0.1", `failed login from ${await cell(failed, "client")}`);
      const badge = failed.locator('[data-col="action"] > *').first();
      assert((await badge.innerText()).trim() === "Login failed", `badge "${await badge.innerText()}"`);
      assert(/\bbg-red-50\b/.test((await badge.getAttribute("class")) ?? ""), "the failed login's badge is not red");
      const title = await failed.locator('[data-col="at"]').getAttribute("title");
      assert(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/.test(title ?? ""), `time hover text "${title}"`);
      await page.locator('[data-testid="audit-actor-filter"]').fill("");
      await eventually("everyone's entries again", async () => (await rowsOf()).some((r) => r.actor !== intruder && r.actor === ADMIN_USERNAME));
      const all = await rowsOf();

      // The first limiter, by the dropdown: only its entries, fewer than all.
      const select = page.locator('[data-testid="audit-limiter-filter"]');
      await eventually("the deleted limiter offered by name", async () => (await select.locator(`option[value="${limiterId}"]`).innerText()).includes(name));
      await select.selectOption(limiterId);
      await page.waitForURL(`${BASE_URL}/audit?limiter_id=${limiterId}`);
      let mine;
      await eventually("only the limiter's entries", async () => {
        mine = await rowsOf();
        return mine.length > 0 && mine.every((r) => r.limiter === limiterId) && mine.some((r) => r.action === "limiter.delete");
      });
      assert(mine.length < all.length, `filtering by the limiter did not narrow the list (${mine.length} of ${all.length})`);
      for (const r of mine) {
        assert(r.actor === ADMIN_USERNAME && r.client === "127.0.0.1", `entry ${r.action} by ${r.actor} from ${r.client}`);
        assert(r.limiterName === name, `limiter column "${r.limiterName}"`);
      }
      const actions = mine.map((r) => r.action);
      for (const a of ["limiter.create", "limiter.update", "limiter.rotate_code", "limiter.delete"]) assert(actions.includes(a), `no ${a} in ${actions.join(", ")}`);
      assert(actions.indexOf("limiter.delete") < actions.indexOf("limiter.create"), `not newest first: ${actions.join(", ")}`);
      const line = (field) => page.locator(`[data-testid="audit-row"] [data-testid="audit-change-line"][data-field="${field}"]`);
      const lines = async (field) => (await line(field).allInnerTexts()).map((t) => t.trim());
      // Updates with their values before → after: the key attached, the switch turned off.
      assert((await lines("credential_id")).includes(`credential_id: none → ${credentialId}`), `credential_id lines: ${JSON.stringify(await lines("credential_id"))}`);
      assert((await lines("is_active")).includes("is_active: true → false"), `is_active lines: ${JSON.stringify(await lines("is_active"))}`);
      // The rotation: masked codes only.
      const codeLines = await lines("code");
      assert(codeLines.some((t) => /^code: sk-budget-[0-9a-f]{4}… → sk-budget-[0-9a-f]{4}…$/.test(t)), `code lines: ${JSON.stringify(codeLines)}`);
      const html = await page.content();
      const final = (await adminApi("GET", "/api/limiters?include_deleted=true")).json.find((l) => l.id === limiterId)?.code;
      for (const code of [...codesSeen, final].filter(Boolean)) assert(!html.includes(code), `the audit page shows a whole code (${code.slice(0, 14)}…)`);
      await shot("audit-limiter.png");

      // The key's create, rotation and deletion, named, never the key.
      await select.selectOption("");
      await page.waitForURL(`${BASE_URL}/audit`);
      let keyRows;
      await eventually("the key's entries", async () => {
        keyRows = (await rowsOf()).filter((r) => r.target === `key ${credentialName}`);
        return keyRows.length >= 3;
      });
      assert(JSON.stringify(keyRows.map((r) => r.action)) === JSON.stringify(["credential.delete", "credential.rotate", "credential.create"]), `key entries: ${keyRows.map((r) => r.action).join(", ")}`);
      assert(keyRows.every((r) => r.actor === ADMIN_USERNAME && r.client === "127.0.0.1"), "a key entry without the actor or the address");
      const hints = (await keyRows[1].row.locator('[data-testid="audit-change-line"][data-field="key_hint"]').innerText()).trim();
      assert(hints === `key_hint: …${heldKey.slice(-4)} → …${rotatedKey.slice(-4)}`, `the rotation's key_hint line: "${hints}"`);
      const page2 = await page.content();
      assert(!page2.includes(heldKey) && !page2.includes(rotatedKey), "the audit page shows an upstream key");
      await shot("audit.png");

      // From a limiter's statistics, History opens the trail filtered to it.
      await page.locator('[data-testid="nav-limiters"]').click();
      await page.waitForURL(`${BASE_URL}/`);
      await card(policyId).locator('[data-testid="action-stats"]').click();
      await page.locator('[data-testid="stats-history"]').click();
      await page.waitForURL(`${BASE_URL}/audit?limiter_id=${policyId}`);
      assert((await select.inputValue()) === policyId, `the filter shows ${await select.inputValue()}`);
      await eventually("the policy limiter's override entries", async () => {
        const r = await rowsOf();
        return r.length > 0 && r.every((x) => x.limiter === policyId) && ["limiter.user_override.set", "limiter.user_override.remove"].every((a) => r.some((x) => x.action === a));
      });
      const set = (await rowsOf()).find((r) => r.action === "limiter.user_override.set");
      assert(set.target === "user alice", `override target "${set.target}"`);
    });

    // Team accounts: the admin adds a viewer; the viewer, in a browser of its own, sees
    // limiters with masked codes and no control that changes anything; disabling it from the
    // admin's page ends its session at once.
    const viewerName = `e2e-viewer-${randomBytes(4).toString("hex")}`;
    const viewerPassword = `viewer-${randomBytes(8).toString("hex")}`;
    let viewerContext;
    let viewerPage;
    let watched;
    await step("accounts: the admin adds a viewer on the Accounts page", async () => {
      // A limiter for the viewer to look at (the suite deleted its others by now).
      const created = await adminApi("POST", "/api/limiters", { name: `${name} watched`, budget_limit: 3, period_type: "day", base_url: MOCK_UPSTREAM_URL });
      assert(created.status === 201, `create limiter: ${created.status} ${created.text}`);
      watched = created.json;
      codesSeen.push(watched.code);
      await page.locator('[data-testid="nav-accounts"]').click();
      await page.waitForURL(`${BASE_URL}/accounts`);
      await page.locator('[data-testid="create-account"]').click();
      const dialog = page.locator('[data-testid="account-form-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.getByLabel("User name").fill(viewerName);
      await dialog.getByLabel("Role").selectOption("viewer");
      await dialog.getByLabel("Password", { exact: true }).fill(viewerPassword);
      await dialog.getByLabel("Repeat the password").fill(viewerPassword);
      await dialog.locator('[data-testid="account-form-submit"]').click();
      await dialog.waitFor({ state: "hidden" });
      const row = page.locator(`[data-testid="account-row"][data-username="${viewerName}"]`);
      await row.waitFor({ state: "visible" });
      assert((await row.getAttribute("data-role")) === "viewer", `the new account's role is ${await row.getAttribute("data-role")}`);
      assert((await row.locator('[data-testid="account-status"]').innerText()).trim() === "Active", "the new account is not active");
      await shot("accounts.png");
    });

    await step("the viewer signs in: limiters with masked codes, no write control, no Audit or Accounts", async () => {
      viewerContext = await page.context().browser().newContext({ viewport: { width: 1280, height: 900 } });
      viewerContext.setDefaultTimeout(TIMEOUT);
      viewerPage = await viewerContext.newPage();
      viewerPage.on("pageerror", (e) => consoleErrors.push(`viewer page: ${e}`));
      await viewerPage.goto(`${BASE_URL}/login`);
      await viewerPage.locator("#username").fill(viewerName);
      await viewerPage.locator("#password").fill(viewerPassword);
      await viewerPage.locator('[data-testid="login-submit"]').click();
      await viewerPage.waitForURL(`${BASE_URL}/`);
      const card = viewerPage.locator(`[data-testid="limiter-card"][data-limiter-id="${watched.id}"]`);
      await card.waitFor({ state: "visible" });
      await viewerPage.locator('[data-testid="current-user"][data-role="viewer"]').waitFor({ state: "attached" });
      await card.locator('[data-testid="read-only-note"]').waitFor({ state: "visible" });
      const endpointText = (await card.locator('[data-testid="proxy-endpoint"]').innerText()).trim();
      assert(endpointText.endsWith(`${watched.code.slice(0, 14)}…`), `the viewer's endpoint is not masked: ${endpointText}`);
      for (const id of ["create-limiter", "action-edit", "action-rotate", "action-delete", "copy-endpoint", "nav-audit", "nav-accounts"]) {
        assert((await viewerPage.locator(`[data-testid="${id}"]`).count()) === 0, `a viewer sees ${id}`);
      }
      assert(await card.locator('[data-testid="limiter-active-switch"]').isDisabled(), "a viewer's active switch is enabled");
      const html = await viewerPage.content();
      for (const code of codesSeen) assert(!html.includes(code), `a whole limiter code is on the viewer's page: ${code}`);
      // The server refuses a viewer's write whatever the page shows.
      const status = await viewerPage.evaluate(async (id) => {
        const csrf = document.cookie.split("; ").find((c) => c.startsWith("budget_csrf="))?.slice(12) ?? "";
        const r = await fetch(`/api/limiters/${id}`, { method: "DELETE", headers: { "X-CSRF-Token": csrf } });
        return r.status;
      }, watched.id);
      assert(status === 403, `a viewer's DELETE answered ${status}, want 403`);
      await viewerPage.locator('[data-testid="nav-credentials"]').click();
      await viewerPage.waitForURL(`${BASE_URL}/credentials`);
      await viewerPage.locator('[data-testid="credentials-table"], [data-testid="empty-credentials"]').first().waitFor({ state: "visible" });
      assert((await viewerPage.locator('[data-testid="create-credential"]').count()) === 0, "a viewer sees the Add key button");
      await viewerPage.goto(`${BASE_URL}/`);
      await card.waitFor({ state: "visible" });
      await viewerPage.screenshot({ path: join(ARTIFACTS_DIR, "viewer.png"), fullPage: true });
    });

    await step("the viewer changes its own password and stays signed in", async () => {
      const next = `viewer-next-${randomBytes(8).toString("hex")}`;
      await viewerPage.locator('[data-testid="change-password"]').click();
      const dialog = viewerPage.locator('[data-testid="change-password-dialog"]');
      await dialog.waitFor({ state: "visible" });
      await dialog.getByLabel("Current password").fill(viewerPassword);
      await dialog.getByLabel("New password", { exact: true }).fill(next);
      await dialog.getByLabel("Repeat the new password").fill(next);
      await dialog.locator('[data-testid="change-password-submit"]').click();
      await dialog.waitFor({ state: "hidden" });
      const status = await viewerPage.evaluate(async () => (await fetch("/api/auth/me")).status);
      assert(status === 200, `after changing its password the viewer's session answers ${status}`);
      const old = await fetch(`${BASE_URL}/api/auth/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username: viewerName, password: viewerPassword }),
      });
      assert(old.status === 401, `the old password still logs in (${old.status})`);
    });

    await step("disabling the viewer from the admin's page ends the viewer's session at once", async () => {
      const row = page.locator(`[data-testid="account-row"][data-username="${viewerName}"]`);
      await row.locator('[data-testid="account-disable"]').click();
      await page.locator('[data-testid="confirm-disable-account"]').click();
      await eventually("the row says Disabled", async () => (await row.locator('[data-testid="account-status"]').innerText()).trim() === "Disabled");
      // The viewer's next poll gets 401 and the page goes back to the login.
      await viewerPage.waitForURL(/\/login$/, { timeout: TIMEOUT });
      await viewerPage.locator('[data-testid="session-expired"]').waitFor({ state: "visible" });
      await viewerContext.close();
      const removed = await adminApi("DELETE", `/api/limiters/${watched.id}`);
      assert(removed.status === 204, `delete the watched limiter: ${removed.status}`);
    });

    await step("an expired token returns to /login; logout works", async () => {
      const current = (await page.context().cookies(BASE_URL + "/api/")).find((c) => c.name === "budget_session");
      await page.context().addCookies([{ ...current, value: "expired.or.revoked.token" }]);
      await page.goto(`${BASE_URL}/statistics`);
      await page.waitForURL(/\/login$/);
      await page.locator('[data-testid="session-expired"]').waitFor({ state: "visible" });
      await page.locator("#password").fill(ADMIN_PASSWORD);
      await page.locator('[data-testid="login-submit"]').click();
      await page.waitForURL((u) => !u.pathname.endsWith("/login"));
      await adminToken();
      await page.locator('[data-testid="logout"]').click();
      await page.waitForURL(/\/login$/);
      await eventually("the session cookies are gone after logout", async () => (await page.context().cookies(BASE_URL)).every((c) => !c.name.startsWith("budget_")));
      const res = await page.evaluate(async () => (await fetch("/api/limiters")).status);
      assert(res === 401, `the API still answers the browser after logout (${res})`);
    });

    await step("the session cookie cannot change anything without the CSRF header", async () => {
      await page.locator("#password").fill(ADMIN_PASSWORD);
      await page.locator('[data-testid="login-submit"]').click();
      await page.waitForURL((u) => !u.pathname.endsWith("/login"));
      const status = await page.evaluate(async (body) => {
        const r = await fetch("/api/limiters", { method: "POST", headers: { "Content-Type": "application/json" }, body });
        return r.status;
      }, JSON.stringify({ name: "csrf probe", budget_limit: 1, period_type: "day", base_url: MOCK_UPSTREAM_URL }));
      assert(status === 403, `a cookie-authenticated POST without X-CSRF-Token answered ${status}, want 403`);
    });

    await step("nothing was blocked by the Content-Security-Policy", async () => {
      assert(cspViolations.length === 0, `CSP violations: ${cspViolations.join(" | ")}`);
    });

    await step("no uncaught errors in the page", async () => {
      assert(consoleErrors.length === 0, `uncaught page errors: ${consoleErrors.join(" | ")}`);
    });
  } catch (e) {
    if (!(e instanceof AssertionError) && !(e instanceof Error)) console.error(e);
  } finally {
    await browser.close().catch(() => {});
  }
  console.log(`${passed} passed, ${failed} failed (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});

#!/usr/bin/env node
// Takes documentation screenshots of the dashboard against a running server (usually the
// seeded dev mock: `node e2e/dev-mock-api.mjs --seed`). Not a test: see dashboard.e2e.mjs.
//
//   BASE_URL=http://127.0.0.1:18090 ARTIFACTS_DIR=/tmp/shots node e2e/screenshots.mjs

import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = (process.env.BASE_URL || "http://127.0.0.1:18090").replace(/\/+$/, "");
const OUT = resolve(process.env.ARTIFACTS_DIR || new URL("../../../.ci/artifacts/dashboard-docs", import.meta.url).pathname);
const USER = process.env.ADMIN_USERNAME || "admin";
const PASS = process.env.ADMIN_PASSWORD || "changeme";
await mkdir(OUT, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
const page = await ctx.newPage();
page.on("pageerror", (e) => console.error("page error:", e));
const shot = async (name, full = true) => {
  await page.screenshot({ path: join(OUT, name), fullPage: full });
  console.log(join(OUT, name));
};

await page.goto(`${BASE_URL}/login`);
await page.fill("#password", "wrong");
await page.click('[data-testid="login-submit"]');
await page.waitForSelector('[data-testid="login-error"]');
await shot("login-error.png");
await page.fill("#password", PASS);
await page.fill("#username", USER);
await page.click('[data-testid="login-submit"]');
await page.waitForSelector('[data-testid="limiter-card"]');
await page.locator('[data-testid="snippets"] summary').first().click();
await page.mouse.move(0, 0);
await shot("limiters-seeded.png");
await page.locator('[data-testid="snippets"] summary').first().click();

await page.click('[data-testid="create-limiter"]');
await page.fill('input[name="budget_limit"]', "-5");
await page.fill('input[name="base_url"]', "api.openai.com");
await page.click('[data-testid="limiter-form-submit"]');
await shot("create-dialog-errors.png", false);
await page.keyboard.press("Escape");

await page.locator('[data-testid="action-stats"]').first().click();
await page.waitForSelector('[data-testid="stats-top-models-row"]');
await page.waitForTimeout(300);
await shot("stats-dialog-seeded.png", false);
await page.keyboard.press("Escape");

await page.click('[data-testid="nav-statistics"]');
await page.waitForSelector('[data-testid="limiter-usage-row"]');
await page.selectOption('[data-testid="range-select"]', "7d");
await page.waitForTimeout(800);
await shot("statistics-seeded.png");

await page.click('[data-testid="nav-credentials"]');
await page.waitForSelector('[data-testid="credential-row"]');
await page.mouse.move(0, 0);
await shot("credentials-seeded.png");
await page.click('[data-testid="create-credential"]');
await page.waitForTimeout(300);
await shot("credential-form.png", false);
await page.keyboard.press("Escape");

await page.click('[data-testid="nav-audit"]');
await page.waitForSelector('[data-testid="audit-row"][data-action="login.failed"]');
await page.mouse.move(0, 0);
await shot("audit-seeded.png");

await page.setViewportSize({ width: 390, height: 844 });
await page.click('[data-testid="nav-limiters"]');
await page.waitForSelector('[data-testid="limiter-card"]');
await shot("limiters-mobile.png");
await browser.close();

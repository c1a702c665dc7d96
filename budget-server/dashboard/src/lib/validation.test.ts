import { describe, expect, it } from "vitest";
import {
  EMPTY_FORM,
  formFieldFor,
  localToRfc3339,
  parseBudget,
  parseModels,
  rfc3339ToLocal,
  toLimiterInput,
  toLimiterUpdate,
  validateLimiterForm,
  type LimiterFormValues,
} from "./validation";

const valid: LimiterFormValues = { ...EMPTY_FORM, name: "Customer A", budget_limit: "20" };

describe("validateLimiterForm", () => {
  it("accepts a valid form", () => {
    expect(validateLimiterForm(valid)).toEqual({});
    expect(validateLimiterForm({ ...valid, timezone: "Europe/Berlin", provider: "azure", mode: "strict", unpriced: "refuse" })).toEqual({});
  });
  it("requires a name of at most 200 characters", () => {
    expect(validateLimiterForm({ ...valid, name: "   " }).name).toMatch(/required/);
    expect(validateLimiterForm({ ...valid, name: "x".repeat(200) }).name).toBeUndefined();
    expect(validateLimiterForm({ ...valid, name: "x".repeat(201) }).name).toMatch(/200/);
  });
  it("requires a positive budget", () => {
    expect(validateLimiterForm({ ...valid, budget_limit: "" }).budget_limit).toMatch(/required/);
    expect(validateLimiterForm({ ...valid, budget_limit: "0" }).budget_limit).toMatch(/greater/);
    expect(validateLimiterForm({ ...valid, budget_limit: "-3" }).budget_limit).toMatch(/greater/);
    expect(validateLimiterForm({ ...valid, budget_limit: "abc" }).budget_limit).toMatch(/number/);
    expect(validateLimiterForm({ ...valid, budget_limit: "0.01" }).budget_limit).toBeUndefined();
  });
  it("requires an http(s) base URL", () => {
    expect(validateLimiterForm({ ...valid, base_url: "" }).base_url).toMatch(/required/);
    expect(validateLimiterForm({ ...valid, base_url: "ftp://x.com" }).base_url).toMatch(/http/);
    expect(validateLimiterForm({ ...valid, base_url: "api.openai.com" }).base_url).toMatch(/http/);
    expect(validateLimiterForm({ ...valid, base_url: "http://127.0.0.1:9000" }).base_url).toBeUndefined();
    expect(validateLimiterForm({ ...valid, base_url: "https://x.openai.azure.com/" }).base_url).toBeUndefined();
  });
  it("checks the choices", () => {
    expect(validateLimiterForm({ ...valid, period_type: "fortnight" }).period_type).toBeDefined();
    expect(validateLimiterForm({ ...valid, provider: "anthropic" }).provider).toBeDefined();
    expect(validateLimiterForm({ ...valid, mode: "hard" }).mode).toBeDefined();
    expect(validateLimiterForm({ ...valid, unpriced: "maybe" }).unpriced).toBeDefined();
    expect(validateLimiterForm({ ...valid, unmetered_endpoints: "sometimes" }).unmetered_endpoints).toBeDefined();
  });
  it("checks the time zone only when given", () => {
    expect(validateLimiterForm({ ...valid, timezone: "" }).timezone).toBeUndefined();
    expect(validateLimiterForm({ ...valid, timezone: "Mars/Olympus" }).timezone).toMatch(/time zone/);
  });
});

describe("parseBudget and toLimiterInput", () => {
  it("parses dollars", () => {
    expect(parseBudget("20")).toBe(20);
    expect(parseBudget(" $1,000.50 ")).toBe(1000.5);
    expect(parseBudget(".5")).toBe(0.5);
    expect(parseBudget("-$2")).toBe(-2);
    expect(parseBudget("1e3")).toBeNaN();
    expect(parseBudget("")).toBeNaN();
  });
  it("builds the request body, leaving out an empty time zone", () => {
    expect(toLimiterInput({ ...valid, name: "  A  ", budget_limit: "0.01", base_url: " http://m:1 " })).toEqual({
      name: "A",
      budget_limit: 0.01,
      period_type: "day",
      base_url: "http://m:1",
      provider: "openai",
      mode: "soft",
      unpriced: "admit",
      unmetered_endpoints: null,
    });
    expect(toLimiterInput({ ...valid, unmetered_endpoints: "allow" }).unmetered_endpoints).toBe("allow");
    expect(toLimiterInput({ ...valid, timezone: "Asia/Tokyo" }).timezone).toBe("Asia/Tokyo");
  });
  it("maps server fields onto the form", () => {
    expect(formFieldFor("budget_limit")).toBe("budget_limit");
    expect(formFieldFor("code")).toBeNull();
    expect(formFieldFor(null)).toBeNull();
  });
});

describe("policies", () => {
  it("splits models on commas and new lines", () => {
    expect(parseModels(" gpt-4o-mini,text-embedding-3-*\n\n  o3-* ,")).toEqual(["gpt-4o-mini", "text-embedding-3-*", "o3-*"]);
    expect(parseModels(" , \n")).toEqual([]);
  });
  it("turns a datetime-local value into RFC 3339 UTC and back", () => {
    const utc = localToRfc3339("2030-02-03T04:05");
    expect(utc).toBe(new Date(2030, 1, 3, 4, 5).toISOString().replace(".000Z", "Z"));
    expect(rfc3339ToLocal(utc)).toBe("2030-02-03T04:05");
    expect(localToRfc3339("tomorrow")).toBeNull();
    expect(rfc3339ToLocal(null)).toBe("");
  });
  it("checks extra windows as the server does", () => {
    const w = (budget_limit: string, period_type: string) => ({ budget_limit, period_type });
    expect(validateLimiterForm({ ...valid, extra_budgets: [w("5", "hour"), w("100", "month")] }).extra_budgets).toBeUndefined();
    expect(validateLimiterForm({ ...valid, extra_budgets: [w("5", "day")] }).extra_budgets).toMatch(/own period/);
    expect(validateLimiterForm({ ...valid, extra_budgets: [w("5", "hour"), w("6", "hour")] }).extra_budgets).toMatch(/twice/);
    expect(validateLimiterForm({ ...valid, extra_budgets: [w("", "hour")] }).extra_budgets).toMatch(/required/);
    expect(validateLimiterForm({ ...valid, extra_budgets: [w("-1", "hour")] }).extra_budgets).toMatch(/greater/);
    expect(validateLimiterForm({ ...valid, extra_budgets: Array.from({ length: 9 }, () => w("1", "hour")) }).extra_budgets).toMatch(/At most 8/);
  });
  it("an unchanged form updates nothing; a cleared time zone returns to UTC", () => {
    const start: LimiterFormValues = { ...valid, timezone: "Asia/Tokyo", max_request_cost: "0.5" };
    expect(toLimiterUpdate(start, { ...start })).toEqual({});
    expect(toLimiterUpdate(start, { ...start, timezone: "" })).toEqual({ timezone: "UTC" });
    expect(toLimiterUpdate(start, { ...start, max_request_cost: "0.75", cap_output_tokens: false })).toEqual({ max_request_cost: 0.75, cap_output_tokens: false });
    expect(toLimiterInput(start).cap_output_tokens).toBeUndefined();
  });
  it("maps the policy fields' server errors onto the form", () => {
    for (const f of ["extra_budgets", "user_budget", "allowed_models", "max_request_cost", "expires_at"]) expect(formFieldFor(f)).toBe(f);
  });
});

// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AlertDefaults } from "../lib/alerts";
import type { Credential, Limiter } from "../lib/api";
import { localToRfc3339 } from "../lib/validation";
import { credentialFixture, limiterFixture } from "../test/fixtures";
import { LimiterFormDialog } from "./LimiterFormDialog";

const saved = limiterFixture({
  id: "6f1c2d4e-0000-4000-8000-000000000002",
  name: "Team B",
  code: "fedcba9876543210fedcba9876543210",
  proxy_endpoint: "http://localhost:8000/v1/fedcba9876543210fedcba9876543210",
  budget_limit: 12.5,
  period_type: "week",
  mode: "strict",
  current_spend: 0,
  remaining_budget: 12.5,
  usage_percentage: 0,
  period_start: "2026-03-09T00:00:00Z",
  period_end: "2026-03-16T00:00:00Z",
});

const openaiKey = credentialFixture({ organization: "org-1", rotated_at: "2026-03-01T00:00:00Z" });
const azureKey: Credential = { ...openaiKey, id: "0c0c0c0c-0000-4000-8000-00000000000b", name: "azure-eu", kind: "azure", organization: null, key_hint: "…AZ12" };

type Call = { url: string; method: string; headers: Record<string, string>; body: unknown };
/** The form's saving calls (its GETs of the credential list and the alert defaults are answered but not recorded). */
let calls: Call[];
let answer: () => Response;
let credentialList: Credential[];
/** The server's alert settings, as `GET /api/alerts` answers them (the form's hints). */
let alertDefaults: AlertDefaults;

beforeEach(() => {
  calls = [];
  credentialList = [openaiKey, azureKey];
  alertDefaults = { enabled: true, webhook: "https://hooks.example.com/…", format: "slack", thresholds: [80, 100], retry_for_seconds: 86400 };
  answer = () => new Response(JSON.stringify(saved), { status: 201, headers: { "Content-Type": "application/json" } });
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    if (url === "/api/credentials" && (init.method ?? "GET") === "GET")
      return Promise.resolve(new Response(JSON.stringify(credentialList), { status: 200, headers: { "Content-Type": "application/json" } }));
    if (url.startsWith("/api/alerts") && (init.method ?? "GET") === "GET")
      return Promise.resolve(new Response(JSON.stringify({ defaults: alertDefaults, deliveries: [] }), { status: 200, headers: { "Content-Type": "application/json" } }));
    calls.push({
      url,
      method: init.method ?? "GET",
      headers: init.headers as Record<string, string>,
      body: init.body ? JSON.parse(init.body as string) : undefined,
    });
    return Promise.resolve(answer());
  });
  document.cookie = "budget_csrf=csrf-value";
  // Radix's switch measures itself inside a form; jsdom has no ResizeObserver.
  vi.stubGlobal(
    "ResizeObserver",
    class {
      observe() {}
      unobserve() {}
      disconnect() {}
    },
  );
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

/** Waits for the form's list of stored keys (an option per key in the "Upstream key" select). */
async function credentialsLoaded() {
  const select = screen.getByLabelText("Upstream key") as HTMLSelectElement;
  await waitFor(() => expect(select.querySelector(`option[value="${azureKey.id}"]`)).not.toBeNull(), { timeout: 5000 });
  return select;
}

function renderForm(limiter?: Limiter) {
  const onSaved = vi.fn();
  const onOpenChange = vi.fn();
  render(<LimiterFormDialog open limiter={limiter} onOpenChange={onOpenChange} onSaved={onSaved} />);
  return { onSaved, onOpenChange };
}

describe("LimiterFormDialog", () => {
  it("names what is missing and sends nothing", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    await user.click(screen.getByTestId("limiter-form-submit"));
    expect(screen.getByTestId("field-error-name").textContent).toBe("Name is required.");
    expect(screen.getByTestId("field-error-budget_limit").textContent).toBe("Budget is required.");
    expect(screen.getByLabelText("Name").getAttribute("aria-invalid")).toBe("true");
    // Fixing a field clears its message as the user types.
    await user.type(screen.getByLabelText("Name"), "Team B");
    expect(screen.queryByTestId("field-error-name")).toBeNull();
    expect(calls).toEqual([]);
    expect(onSaved).not.toHaveBeenCalled();
  });

  it("creates a limiter with the typed values as the API's body", async () => {
    const user = userEvent.setup();
    const { onSaved, onOpenChange } = renderForm();
    await user.type(screen.getByLabelText("Name"), "  Team B ");
    await user.type(screen.getByLabelText("Budget (USD)"), "$12.50");
    await user.selectOptions(screen.getByLabelText("Period"), "week");
    await user.selectOptions(screen.getByLabelText("Mode"), "strict");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalledWith(saved, true));
    expect(onOpenChange).toHaveBeenCalledWith(false);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.method).toBe("POST");
    expect(calls[0]!.url).toBe("/api/limiters");
    expect(calls[0]!.headers["X-CSRF-Token"]).toBe("csrf-value");
    expect(calls[0]!.body).toEqual({
      name: "Team B",
      budget_limit: 12.5,
      period_type: "week",
      base_url: "https://api.openai.com",
      provider: "openai",
      mode: "strict",
      unpriced: "admit",
      unmetered_endpoints: null,
    });
  });

  it("edits with PUT and shows the server's 422 under the field it names", async () => {
    const user = userEvent.setup();
    answer = () =>
      new Response(
        JSON.stringify({ error: { message: "base_url: must not point at a link-local address", type: "invalid_request_error", code: "validation_failed", field: "base_url" } }),
        { status: 422, headers: { "Content-Type": "application/json" } },
      );
    const { onSaved } = renderForm(saved);
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("Team B");
    expect((screen.getByLabelText("Budget (USD)") as HTMLInputElement).value).toBe("12.5");
    const url = screen.getByLabelText("Base URL");
    await user.clear(url);
    await user.type(url, "http://169.254.169.254");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(screen.getByTestId("field-error-base_url").textContent).toBe("base_url: must not point at a link-local address"));
    expect(calls[0]!.method).toBe("PUT");
    expect(calls[0]!.url).toBe(`/api/limiters/${saved.id}`);
    expect(onSaved).not.toHaveBeenCalled();
  });

  it("creates a limiter with every policy in the body", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    await user.type(screen.getByLabelText("Name"), "Policies");
    await user.type(screen.getByLabelText("Budget (USD)"), "100");
    await user.selectOptions(screen.getByLabelText("Period"), "month");
    await user.click(screen.getByTestId("add-extra-budget"));
    await user.type(screen.getByLabelText("Extra window 1 amount"), "5");
    await user.selectOptions(screen.getByLabelText("Extra window 1 period"), "hour");
    await user.click(screen.getByTestId("add-extra-budget"));
    // A new row proposes a period not yet used.
    expect((screen.getByLabelText("Extra window 2 period") as HTMLSelectElement).value).toBe("minute");
    await user.type(screen.getByLabelText("Extra window 2 amount"), "30");
    await user.selectOptions(screen.getByLabelText("Extra window 2 period"), "day");
    await user.type(screen.getByLabelText("Per-user budget (USD, optional)"), "1");
    await user.selectOptions(screen.getByLabelText("Per-user budget period"), "day");
    await user.click(screen.getByRole("switch", { name: "Require an end-user id" }));
    await user.type(screen.getByLabelText("Allowed models (optional)"), "gpt-4o-mini,  text-embedding-3-*{enter}{enter}o3-mini, ");
    // The cap toggle waits for a max cost.
    expect((screen.getByRole("switch", { name: "Cap output instead of refusing" }) as HTMLButtonElement).disabled).toBe(true);
    await user.type(screen.getByLabelText("Max request cost (USD, optional)"), "0.50");
    await user.click(screen.getByRole("switch", { name: "Cap output instead of refusing" }));
    fireEvent.change(screen.getByLabelText("Expires (optional)"), { target: { value: "2030-06-30T18:45" } });
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.body).toEqual({
      name: "Policies",
      budget_limit: 100,
      period_type: "month",
      base_url: "https://api.openai.com",
      provider: "openai",
      mode: "soft",
      unpriced: "admit",
      unmetered_endpoints: null,
      extra_budgets: [
        { budget_limit: 5, period_type: "hour" },
        { budget_limit: 30, period_type: "day" },
      ],
      user_budget: { budget_limit: 1, period_type: "day" },
      require_user: true,
      allowed_models: ["gpt-4o-mini", "text-embedding-3-*", "o3-mini"],
      max_request_cost: 0.5,
      cap_output_tokens: false,
      // datetime-local is the browser's time; the API gets the same instant in UTC.
      expires_at: new Date("2030-06-30T18:45").toISOString().replace(".000Z", "Z"),
    });
    expect((calls[0]!.body as { expires_at: string }).expires_at).toMatch(/^2030-06-30T\d\d:45:00Z$|^2030-07-01T\d\d:45:00Z$/);
  });

  it("checks the policies on the client: a repeated period, a bad amount, a model with a space", async () => {
    const user = userEvent.setup();
    renderForm();
    await user.type(screen.getByLabelText("Name"), "Bad");
    await user.type(screen.getByLabelText("Budget (USD)"), "10");
    await user.click(screen.getByTestId("add-extra-budget"));
    await user.type(screen.getByLabelText("Extra window 1 amount"), "5");
    await user.selectOptions(screen.getByLabelText("Extra window 1 period"), "day");
    await user.type(screen.getByLabelText("Per-user budget (USD, optional)"), "0");
    await user.type(screen.getByLabelText("Allowed models (optional)"), "gpt 4o");
    await user.type(screen.getByLabelText("Max request cost (USD, optional)"), "free");
    await user.click(screen.getByTestId("limiter-form-submit"));
    expect(screen.getByTestId("field-error-extra_budgets").textContent).toBe("Window 1: day is already the limiter's own period; pick another.");
    expect(screen.getByLabelText("Extra window 1 amount").getAttribute("aria-invalid")).toBe("true");
    expect(screen.getByTestId("field-error-user_budget").textContent).toMatch(/greater than \$0/);
    expect(screen.getByTestId("field-error-allowed_models").textContent).toMatch(/"gpt 4o"/);
    expect(screen.getByTestId("field-error-max_request_cost").textContent).toMatch(/number of dollars/);
    // Removing the offending window clears its message.
    await user.click(screen.getByRole("button", { name: "Remove extra window 1" }));
    expect(screen.queryByTestId("field-error-extra_budgets")).toBeNull();
    expect(screen.queryByLabelText("Extra window 1 amount")).toBeNull();
    expect(calls).toEqual([]);
  });

  it("shows the server's extra_budgets error under the windows", async () => {
    const user = userEvent.setup();
    answer = () =>
      new Response(
        JSON.stringify({ error: { message: "extra_budgets: hour appears twice", type: "invalid_request_error", code: "validation_failed", field: "extra_budgets" } }),
        { status: 422, headers: { "Content-Type": "application/json" } },
      );
    renderForm();
    await user.type(screen.getByLabelText("Name"), "Server says");
    await user.type(screen.getByLabelText("Budget (USD)"), "10");
    await user.click(screen.getByTestId("add-extra-budget"));
    await user.type(screen.getByLabelText("Extra window 1 amount"), "1");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(screen.getByTestId("field-error-extra_budgets").textContent).toBe("extra_budgets: hour appears twice"));
    expect(screen.queryByTestId("form-error")).toBeNull();
  });

  it("an edit sends only what changed, and clearing sends null or []", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify(saved), { status: 200, headers: { "Content-Type": "application/json" } });
    const expires = "2031-01-15T09:30:00Z";
    const withPolicies: Limiter = {
      ...saved,
      extra_budgets: [{ budget_limit: 2, period_type: "hour" }],
      user_budget: { budget_limit: 0.25, period_type: "day" },
      require_user: true,
      allowed_models: ["gpt-4o-mini", "o3-*"],
      max_request_cost: 0.1,
      cap_output_tokens: false,
      expires_at: expires,
    };
    const { onSaved } = renderForm(withPolicies);
    // The form opens with the limiter's policies.
    expect((screen.getByLabelText("Extra window 1 amount") as HTMLInputElement).value).toBe("2");
    expect((screen.getByLabelText("Per-user budget (USD, optional)") as HTMLInputElement).value).toBe("0.25");
    expect((screen.getByLabelText("Allowed models (optional)") as HTMLTextAreaElement).value).toBe("gpt-4o-mini, o3-*");
    expect(screen.getByRole("switch", { name: "Require an end-user id" }).getAttribute("aria-checked")).toBe("true");
    expect(localToRfc3339((screen.getByLabelText("Expires (optional)") as HTMLInputElement).value)).toBe(expires);
    await user.click(screen.getByRole("button", { name: "Remove extra window 1" }));
    await user.clear(screen.getByLabelText("Per-user budget (USD, optional)"));
    await user.clear(screen.getByLabelText("Allowed models (optional)"));
    await user.clear(screen.getByLabelText("Max request cost (USD, optional)"));
    await user.click(screen.getByTestId("clear-expiry"));
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.method).toBe("PUT");
    expect(calls[0]!.body).toEqual({ extra_budgets: [], user_budget: null, allowed_models: [], max_request_cost: null, expires_at: null });
  });

  it("an edit of one field sends that field alone", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify(saved), { status: 200, headers: { "Content-Type": "application/json" } });
    const { onSaved } = renderForm({ ...saved, allowed_models: ["gpt-4o-mini"], expires_at: "2031-01-15T09:30:00Z" });
    await user.click(screen.getByRole("switch", { name: "Require an end-user id" }));
    await user.click(screen.getByTestId("add-extra-budget"));
    await user.type(screen.getByLabelText("Extra window 1 amount"), "3");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    // The primary period is week, so the new row proposes minute.
    expect(calls[0]!.body).toEqual({ require_user: true, extra_budgets: [{ budget_limit: 3, period_type: "minute" }] });
  });
  it("attaches a stored key on create, and checks that its kind fits the provider", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    const select = await credentialsLoaded();
    expect(select.value).toBe("");
    expect([...select.options].map((o) => o.textContent)).toEqual(["Client sends its own key (pass-through)", "openai-prod (OpenAI, …wxyz)", "azure-eu (Azure OpenAI, …AZ12)"]);
    await user.type(screen.getByLabelText("Name"), "Held key");
    await user.type(screen.getByLabelText("Budget (USD)"), "5");
    // An Azure key on an OpenAI limiter never works: refused before sending.
    await user.selectOptions(select, azureKey.id);
    await user.click(screen.getByTestId("limiter-form-submit"));
    expect(screen.getByTestId("field-error-credential_id").textContent).toBe("This is an Azure OpenAI key; the limiter's provider is OpenAI.");
    expect(calls).toEqual([]);
    await user.selectOptions(select, openaiKey.id);
    expect(screen.queryByTestId("field-error-credential_id")).toBeNull();
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toMatchObject({ name: "Held key", credential_id: openaiKey.id });
  });

  it("an edit that switches back to pass-through sends credential_id null", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify(saved), { status: 200, headers: { "Content-Type": "application/json" } });
    const { onSaved } = renderForm({ ...saved, credential_id: openaiKey.id });
    const select = await credentialsLoaded();
    expect(select.value).toBe(openaiKey.id);
    await user.selectOptions(select, "");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.method).toBe("PUT");
    expect(calls[0]!.body).toEqual({ credential_id: null });
  });

  it("an edit that keeps the key sends no credential_id; the server's 400 shows under the field", async () => {
    const user = userEvent.setup();
    answer = () =>
      new Response(JSON.stringify({ error: { message: "credential_id: no such credential", type: "invalid_request_error", code: "validation_failed", field: "credential_id" } }), {
        status: 400,
        headers: { "Content-Type": "application/json" },
      });
    renderForm({ ...saved, credential_id: openaiKey.id });
    await credentialsLoaded();
    await user.clear(screen.getByLabelText("Name"));
    await user.type(screen.getByLabelText("Name"), "Renamed");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(screen.getByTestId("field-error-credential_id").textContent).toBe("credential_id: no such credential"));
    expect(calls[0]!.body).toEqual({ name: "Renamed" });
  });
});

describe("LimiterFormDialog: alerts", () => {
  const thresholdsInput = () => screen.getByLabelText("Thresholds (% of each window's budget)") as HTMLInputElement;
  const webhookInput = () => screen.getByLabelText("Webhook URL (optional)") as HTMLInputElement;
  const defaultsSwitch = () => screen.getByRole("switch", { name: "Use the server's defaults" });

  async function fillRequired(user: ReturnType<typeof userEvent.setup>) {
    await user.type(screen.getByLabelText("Name"), "Alerted");
    await user.type(screen.getByLabelText("Budget (USD)"), "10");
  }

  it("shows the server's defaults, and creates with custom thresholds, a JSON webhook and mute", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    await waitFor(() => expect(screen.getByTestId("alerts-server-defaults").textContent).toBe("Server defaults: thresholds 80%, 100% of each window; webhook https://hooks.example.com/… (Slack)."));
    expect(screen.queryByTestId("alerts-disabled")).toBeNull();
    // The server's defaults need no fields.
    expect(screen.queryByLabelText("Thresholds (% of each window's budget)")).toBeNull();
    await fillRequired(user);
    await user.click(defaultsSwitch());
    expect(thresholdsInput().placeholder).toBe("80, 100 (server default)");
    expect(webhookInput().placeholder).toBe("https://hooks.example.com/…");
    // The format waits for a webhook of the limiter's own.
    expect((screen.getByLabelText("Format") as HTMLSelectElement).disabled).toBe(true);
    await user.type(thresholdsInput(), " 50, 80% 120 ");
    await user.type(webhookInput(), "http://127.0.0.1:9999/hook/secret-path?token=t");
    await user.selectOptions(screen.getByLabelText("Format"), "json");
    await user.click(screen.getByRole("switch", { name: "Mute alerts" }));
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.method).toBe("POST");
    expect((calls[0]!.body as Record<string, unknown>).alerts).toEqual({
      thresholds: [50, 80, 120],
      webhook_url: "http://127.0.0.1:9999/hook/secret-path?token=t",
      format: "json",
      muted: true,
    });
  });

  it("checks thresholds and the webhook URL on the client as the server does, and sends nothing", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    await fillRequired(user);
    await user.click(defaultsSwitch());
    const tries: [string, string][] = [
      ["80, 50", "Thresholds must be in ascending order, without repeats (e.g. 50, 80, 100)."],
      ["80, 80", "Thresholds must be in ascending order, without repeats (e.g. 50, 80, 100)."],
      ["0, 50", '"0": each threshold is a whole percentage from 1 to 1000.'],
      ["50, 1001", '"1001": each threshold is a whole percentage from 1 to 1000.'],
      ["12.5", '"12.5": each threshold is a whole percentage from 1 to 1000.'],
      ["1,2,3,4,5,6,7,8,9,10,11", "At most 10 thresholds."],
    ];
    for (const [typed, message] of tries) {
      await user.clear(thresholdsInput());
      await user.type(thresholdsInput(), typed);
      await user.click(screen.getByTestId("limiter-form-submit"));
      expect(screen.getByTestId("field-error-alerts_thresholds").textContent).toBe(message);
      expect(thresholdsInput().getAttribute("aria-invalid")).toBe("true");
    }
    // Ten ascending ones are fine; the message goes away as the user types.
    await user.clear(thresholdsInput());
    await user.type(thresholdsInput(), "1,2,3,4,5,6,7,8,9,1000");
    expect(screen.queryByTestId("field-error-alerts_thresholds")).toBeNull();
    for (const [typed, message] of [
      ["ftp://hooks.example.com/x", "Must be an http:// or https:// URL."],
      ["https://user:pw@hooks.example.com/x", "Must not carry a user name or password (put a token in the path or query)."],
      ["https://hooks.example.com/x#frag", "Must not have a #fragment."],
      ["hooks.example.com", "Not a URL: use http:// or https://host/path."],
    ]) {
      await user.clear(webhookInput());
      await user.type(webhookInput(), typed!);
      await user.click(screen.getByTestId("limiter-form-submit"));
      expect(screen.getByTestId("field-error-alerts_webhook_url").textContent).toBe(message);
    }
    expect(calls).toEqual([]);
    expect(onSaved).not.toHaveBeenCalled();
  });

  it("'off' turns threshold alerts off ([]); blank thresholds with no webhook are the server's defaults (no alerts field)", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm();
    await fillRequired(user);
    await user.click(defaultsSwitch());
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalledTimes(1));
    expect(calls[0]!.body).not.toHaveProperty("alerts");
    cleanup();
    calls = [];
    const second = renderForm();
    await fillRequired(user);
    await user.click(defaultsSwitch());
    await user.type(thresholdsInput(), "off");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(second.onSaved).toHaveBeenCalled());
    expect((calls[0]!.body as Record<string, unknown>).alerts).toEqual({ thresholds: [], muted: false });
  });

  it("an edit shows the limiter's own settings; back to the server's defaults sends alerts: null", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify(saved), { status: 200, headers: { "Content-Type": "application/json" } });
    const own = { ...saved, alerts: { thresholds: [50, 90], webhook_url: "https://hooks.example.com/a/b", format: "slack" as const, muted: false } };
    const { onSaved } = renderForm(own);
    expect((defaultsSwitch() as HTMLButtonElement).getAttribute("aria-checked")).toBe("false");
    expect(thresholdsInput().value).toBe("50, 90");
    expect(webhookInput().value).toBe("https://hooks.example.com/a/b");
    expect((screen.getByLabelText("Format") as HTMLSelectElement).value).toBe("slack");
    await user.click(defaultsSwitch());
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.method).toBe("PUT");
    expect(calls[0]!.body).toEqual({ alerts: null });
  });

  it("an edit of the thresholds sends the whole alerts setting (the PUT replaces it)", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify(saved), { status: 200, headers: { "Content-Type": "application/json" } });
    const own = { ...saved, alerts: { thresholds: [50, 90], webhook_url: "https://hooks.example.com/a/b", format: "slack" as const, muted: true } };
    const { onSaved } = renderForm(own);
    await user.clear(thresholdsInput());
    await user.type(thresholdsInput(), "75");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.body).toEqual({ alerts: { thresholds: [75], webhook_url: "https://hooks.example.com/a/b", format: "slack", muted: true } });
  });

  it("says when the server cannot send alerts, and shows the server's 400 under the webhook field", async () => {
    const user = userEvent.setup();
    alertDefaults = { enabled: false, webhook: null, format: "json", thresholds: [80, 100], retry_for_seconds: 86400 };
    answer = () =>
      new Response(
        JSON.stringify({ error: { message: "The server cannot sign webhook deliveries: ALERT_WEBHOOK_SECRET is not set.", type: "invalid_request_error", code: "alert_secret_missing", field: "alerts.webhook_url" } }),
        { status: 400, headers: { "Content-Type": "application/json" } },
      );
    const { onSaved } = renderForm();
    await waitFor(() => expect(screen.getByTestId("alerts-disabled").textContent).toContain("ALERT_WEBHOOK_SECRET"));
    await fillRequired(user);
    await user.click(defaultsSwitch());
    expect(screen.getByText("The server has no webhook of its own: without one here, nothing is sent for this limiter.")).toBeTruthy();
    await user.type(webhookInput(), "https://hooks.example.com/x");
    await user.click(screen.getByTestId("limiter-form-submit"));
    await waitFor(() =>
      expect(screen.getByTestId("field-error-alerts_webhook_url").textContent).toBe("The server cannot sign webhook deliveries: ALERT_WEBHOOK_SECRET is not set."),
    );
    expect(screen.queryByTestId("form-error")).toBeNull();
    expect(onSaved).not.toHaveBeenCalled();
  });
});

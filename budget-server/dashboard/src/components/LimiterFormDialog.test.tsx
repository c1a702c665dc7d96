// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Limiter } from "../lib/api";
import { LimiterFormDialog } from "./LimiterFormDialog";

const saved: Limiter = {
  id: "6f1c2d4e-0000-4000-8000-000000000002",
  name: "Team B",
  code: "fedcba9876543210fedcba9876543210",
  proxy_endpoint: "http://localhost:8000/v1/fedcba9876543210fedcba9876543210",
  budget_limit: 12.5,
  period_type: "week",
  timezone: "UTC",
  base_url: "https://api.openai.com",
  provider: "openai",
  mode: "strict",
  unpriced: "admit",
  is_active: true,
  created_at: "2026-03-01T00:00:00Z",
  updated_at: "2026-03-01T00:00:00Z",
  deleted_at: null,
  current_spend: 0,
  remaining_budget: 12.5,
  usage_percentage: 0,
  period_start: "2026-03-09T00:00:00Z",
  period_end: "2026-03-16T00:00:00Z",
  extra_budgets: [],
  user_budget: null,
  user_overrides: {},
  require_user: false,
  allowed_models: [],
  max_request_cost: null,
  cap_output_tokens: true,
  expires_at: null,
  windows: [],
};

type Call = { url: string; method: string; headers: Record<string, string>; body: unknown };
let calls: Call[];
let answer: () => Response;

beforeEach(() => {
  calls = [];
  answer = () => new Response(JSON.stringify(saved), { status: 201, headers: { "Content-Type": "application/json" } });
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    calls.push({
      url,
      method: init.method ?? "GET",
      headers: init.headers as Record<string, string>,
      body: init.body ? JSON.parse(init.body as string) : undefined,
    });
    return Promise.resolve(answer());
  });
  document.cookie = "budget_csrf=csrf-value";
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

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
});

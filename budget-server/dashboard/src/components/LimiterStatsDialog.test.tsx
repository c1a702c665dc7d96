// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Limiter, LimiterStats } from "../lib/api";
import { LimiterStatsDialog } from "./LimiterStatsDialog";

// The chart needs a laid-out container, which jsdom does not have; it is not under test here.
vi.mock("./SpendChart", () => ({ SpendChart: () => null }));

const ID = "6f1c2d4e-0000-4000-8000-000000000001";
const window_ = { period_start: "2026-03-10T00:00:00Z", period_end: "2026-03-11T00:00:00Z" };
const limiter = {
  id: ID,
  name: "Customer A",
  budget_limit: 20,
  period_type: "day",
  current_spend: 0,
  remaining_budget: 20,
  usage_percentage: 0,
  user_overrides: {},
  ...window_,
} as unknown as Limiter;

let stats: LimiterStats;

function statsWith(over: Partial<LimiterStats>): LimiterStats {
  return {
    limiter_id: ID, limiter_name: "Customer A", current_spend: 0, budget_limit: 20, remaining_budget: 20, usage_percentage: 0,
    total_requests: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, held: 0, in_flight: 0, leased: 0,
    unpriced_requests: 0, estimated_requests: 0, refused: { total: 0, by_reason: {} }, ...window_, ...over,
  };
}

beforeEach(() => {
  vi.stubGlobal("fetch", (url: string) => {
    const path = url.split("?")[0];
    const body = path === `/api/limiters/${ID}/stats` ? stats : [];
    return Promise.resolve(new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } }));
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderDialog() {
  render(
    <MemoryRouter>
      <LimiterStatsDialog limiter={limiter} onOpenChange={() => {}} />
    </MemoryRouter>,
  );
}

describe("the stats dialog's refusals", () => {
  it("breaks the refused requests down by reason with readable labels, in a fixed order", async () => {
    stats = statsWith({
      total_requests: 40,
      current_spend: 2.5,
      refused: { total: 1317, by_reason: { other: 1, unknown_endpoint: 2, price_guard: 3, model_rule: 4, expired: 5, inactive: 6, budget: 1296 } },
    });
    renderDialog();
    const row = await screen.findByTestId("stats-refused");
    expect(row.textContent).toContain("Refused this period");
    expect(screen.getByTestId("stats-refused-total").textContent).toBe("1,317");
    const reasons = screen.getAllByTestId("stats-refused-reason");
    expect(reasons.map((r) => r.getAttribute("data-reason"))).toEqual(["budget", "inactive", "expired", "model_rule", "price_guard", "unknown_endpoint", "other"]);
    expect(reasons.map((r) => r.textContent)).toEqual([
      "Over budget 1,296",
      "Inactive 6",
      "Expired 5",
      "Model not allowed 4",
      "Price guard 3",
      "Unknown endpoint 2",
      "Other 1",
    ]);
    // Requests got through too: a limiter that refuses some, not a blocked one.
    expect(row.getAttribute("data-all-refused")).toBe("false");
  });

  it("marks a limiter that refused everything, and lists only the reasons it refused for", async () => {
    stats = statsWith({ refused: { total: 3, by_reason: { inactive: 3 } } });
    renderDialog();
    const row = await screen.findByTestId("stats-refused");
    expect(row.getAttribute("data-all-refused")).toBe("true");
    expect(screen.getByTestId("stats-refused-total").textContent).toBe("3");
    expect(screen.getAllByTestId("stats-refused-reason").map((r) => r.textContent)).toEqual(["Inactive 3"]);
  });

  it("says 0 without a breakdown when nothing was refused", async () => {
    stats = statsWith({ total_requests: 7, current_spend: 0.01 });
    renderDialog();
    await waitFor(() => expect(screen.getByTestId("stats-refused-total").textContent).toBe("0"));
    expect(screen.getByTestId("stats-refused").getAttribute("data-all-refused")).toBe("false");
    expect(screen.queryByTestId("stats-refused-reason")).toBeNull();
  });
});

describe("the stats dialog's links", () => {
  it("opens the Alerts page and the audit trail filtered to the limiter", async () => {
    stats = statsWith({});
    renderDialog();
    const alerts = await screen.findByTestId("stats-alerts");
    expect(alerts.getAttribute("href")).toBe(`/alerts?limiter_id=${limiter.id}`);
    expect(alerts.textContent).toBe("Alerts");
    expect(screen.getByTestId("stats-history").getAttribute("href")).toBe(`/audit?limiter_id=${limiter.id}`);
  });
});

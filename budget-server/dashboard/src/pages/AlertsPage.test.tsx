// @vitest-environment jsdom
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AlertDefaults, AlertDelivery } from "../lib/alerts";
import { A, B, limiters, NOW, renderPage, search, stubApi, unstubApi } from "../test/filtered-page";
import { AlertsPage } from "./AlertsPage";

const DEFAULTS: AlertDefaults = { enabled: true, webhook: "https://hooks.example.com/…", format: "slack", thresholds: [80, 100], retry_for_seconds: 86400 };

const delivery = (n: number, over: Partial<AlertDelivery>): AlertDelivery => ({
  id: `evt-${n}`,
  kind: "deactivated",
  limiter_id: A,
  limiter_name: "Customer A",
  created_at: new Date(NOW - n * 60_000).toISOString(),
  threshold: null,
  period: null,
  window_start: null,
  spent: null,
  budget: null,
  destination: "http://127.0.0.1:9999/…",
  format: "json",
  status: "delivered",
  attempts: 1,
  next_attempt_at: null,
  last_error: null,
  delivered_at: new Date(NOW - n * 60_000 + 500).toISOString(),
  ...over,
});

const DELIVERIES: AlertDelivery[] = [
  delivery(1, { kind: "threshold_crossed", limiter_id: B, limiter_name: "Zeta team", threshold: 80, period: "day", window_start: "2026-03-10T00:00:00Z", spent: 8.25, budget: 10, status: "pending", attempts: 2, last_error: "HTTP 500", next_attempt_at: new Date(NOW + 30_000).toISOString(), delivered_at: null, destination: "https://hooks.example.com/…", format: "slack" }),
  delivery(2, { kind: "exhausted", limiter_id: B, limiter_name: "Zeta team", period: "day", spent: 10.01, budget: 10, status: "failed", attempts: 9, last_error: "connection refused", delivered_at: null }),
  delivery(3, {}),
];

let calls: URL[];
let answer: (url: URL) => { defaults: AlertDefaults; deliveries: AlertDelivery[] };

beforeEach(() => {
  answer = () => ({ defaults: DEFAULTS, deliveries: DELIVERIES });
  calls = stubApi({ "/api/limiters": limiters }, (u) => answer(u));
});

afterEach(unstubApi);

const renderAt = (path: string) => renderPage(path, <AlertsPage />);

const lastQuery = () => Object.fromEntries(calls.at(-1)!.searchParams);
const rowOf = (id: string) => document.querySelector<HTMLElement>(`[data-testid="alert-row"][data-event-id="${id}"]`)!;
const col = (row: HTMLElement, c: string) => row.querySelector(`[data-col="${c}"]`)!.textContent;

describe("the alerts page", () => {
  it("shows the server's settings, then the deliveries newest first with their window, destination, status and error", async () => {
    renderAt("/alerts");
    await screen.findByTestId("alerts-table");
    expect(calls[0]!.pathname).toBe("/api/alerts");
    expect(lastQuery()).toEqual({ limit: "50" });
    expect(screen.getByTestId("alert-settings-enabled").textContent).toBe("On");
    expect(screen.getByTestId("alert-settings-webhook").textContent).toBe("https://hooks.example.com/… (Slack)");
    expect(screen.getByTestId("alert-settings-thresholds").textContent).toBe("80%, 100% of each window");
    expect(screen.getByTestId("alert-settings-retry").textContent).toBe("1 d");
    expect(screen.queryByTestId("alerts-disabled")).toBeNull();

    expect(screen.getAllByTestId("alert-row").map((r) => r.dataset.eventId)).toEqual(["evt-1", "evt-2", "evt-3"]);
    const crossed = rowOf("evt-1");
    expect(col(crossed, "kind")).toBe("Threshold reached");
    expect(col(crossed, "limiter")).toBe("Zeta team");
    expect(col(crossed, "window")).toBe("80%$8.25 / $10.00 per day");
    expect(col(crossed, "destination")).toBe("https://hooks.example.com/… (Slack)");
    expect(col(crossed, "attempts")).toBe("2");
    expect(col(crossed, "last_error")).toBe("HTTP 500");
    expect(col(crossed, "when")).toMatch(/^next try \d\d:\d\d:\d\d$/);
    expect(within(crossed).getByTestId("alert-status").className).toContain("bg-amber-50");
    expect(crossed.querySelector('[data-col="created_at"] span')!.getAttribute("title")).toBe("2026-03-10 12:33:56 UTC");

    const failed = rowOf("evt-2");
    expect(col(failed, "kind")).toBe("Budget exhausted");
    expect(failed.className).toContain("bg-red-50");
    expect(within(failed).getByTestId("alert-status").className).toContain("bg-red-50");
    expect(col(failed, "when")).toBe("—");

    const delivered = rowOf("evt-3");
    expect(col(delivered, "kind")).toBe("Deactivated");
    expect(col(delivered, "window")).toBe("—");
    expect(col(delivered, "last_error")).toBe("—");
    expect(within(delivered).getByTestId("alert-status").textContent).toBe("delivered");
    expect(within(delivered).getByTestId("alert-status").className).toContain("bg-emerald-50");
    expect(col(delivered, "when")).toMatch(/^delivered \d\d:\d\d:\d\d$/);
    expect(screen.getByTestId("alerts-count").textContent).toBe("3 alerts, newest first");
  });

  it("says when the server cannot send alerts", async () => {
    answer = () => ({ defaults: { ...DEFAULTS, enabled: false, webhook: null }, deliveries: [] });
    renderAt("/alerts");
    expect((await screen.findByTestId("alerts-disabled")).textContent).toContain("ALERT_WEBHOOK_SECRET");
    expect(screen.getByTestId("alert-settings-enabled").textContent).toBe("Off");
    expect(screen.getByTestId("alert-settings-webhook").textContent).toBe("none: only limiters with a webhook of their own alert");
    expect(screen.getByTestId("empty-alerts").textContent).toContain("No alerts yet");
  });

  it("filters by the limiter in the address, the dropdown and the status, each in the query", async () => {
    const user = userEvent.setup();
    renderAt(`/alerts?limiter_id=${A}`);
    await screen.findByTestId("alerts-table");
    expect(lastQuery()).toEqual({ limiter_id: A, limit: "50" });
    const select = screen.getByTestId<HTMLSelectElement>("alerts-limiter-filter");
    await waitFor(() => expect(select.value).toBe(A));
    expect([...select.options].map((o) => o.textContent)).toEqual(["All limiters", "Zeta team", "Customer A (deleted)"]);

    await user.selectOptions(select, B);
    await waitFor(() => expect(lastQuery()).toEqual({ limiter_id: B, limit: "50" }));
    expect(search).toBe(`?limiter_id=${B}`);

    await user.selectOptions(screen.getByTestId("alerts-status-filter"), "failed");
    await waitFor(() => expect(lastQuery()).toEqual({ limiter_id: B, status: "failed", limit: "50" }));
    expect(search).toBe(`?limiter_id=${B}&status=failed`);

    await user.selectOptions(select, "");
    await waitFor(() => expect(lastQuery()).toEqual({ status: "failed", limit: "50" }));
    expect(search).toBe("?status=failed");
  });

  it("loads more while answers fill the limit, and starts over when a filter changes", async () => {
    const user = userEvent.setup();
    const many = Array.from({ length: 120 }, (_, i) => delivery(i + 1, {}));
    answer = (u) => ({ defaults: DEFAULTS, deliveries: many.slice(0, Number(u.searchParams.get("limit"))) });
    renderAt("/alerts");
    await waitFor(() => expect(screen.getAllByTestId("alert-row")).toHaveLength(50));
    await user.click(screen.getByTestId("alerts-load-more"));
    await waitFor(() => expect(screen.getAllByTestId("alert-row")).toHaveLength(100));
    expect(lastQuery().limit).toBe("100");
    await user.selectOptions(screen.getByTestId("alerts-status-filter"), "delivered");
    await waitFor(() => expect(lastQuery()).toEqual({ status: "delivered", limit: "50" }));
    await user.click(screen.getByTestId("alerts-load-more"));
    await user.click(await screen.findByTestId("alerts-load-more"));
    await waitFor(() => expect(screen.getAllByTestId("alert-row")).toHaveLength(120));
    expect(screen.queryByTestId("alerts-load-more")).toBeNull();
  });

  it("says when nothing matches", async () => {
    answer = () => ({ defaults: DEFAULTS, deliveries: [] });
    renderAt("/alerts?status=pending");
    expect((await screen.findByTestId("empty-alerts")).textContent).toContain("Nothing matches these filters");
    expect(lastQuery()).toEqual({ status: "pending", limit: "50" });
  });
});

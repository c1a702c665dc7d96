// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Limiter } from "../lib/api";
import { StatisticsPage } from "./StatisticsPage";

// The chart needs a laid-out container, which jsdom does not have; it is not under test here.
vi.mock("../components/SpendChart", () => ({ SpendChart: () => null }));

const NOW = Date.parse("2026-03-10T12:34:56Z");
const A = "0a0a0a0a-0000-4000-8000-00000000000a";
const B = "0b0b0b0b-0000-4000-8000-00000000000b";
const limiters = [
  { id: B, name: "Zeta team" },
  { id: A, name: "Customer A" },
] as Limiter[];
const overview: { limiters: unknown[] } & Record<string, unknown> = {
  total_requests: 0, total_tokens: 0, total_cost: 0, active_users: 0, unpriced_requests: 0, estimated_requests: 0, error_requests: 0, limiters: [],
};

let calls: string[];

beforeEach(() => {
  overview.limiters = [];
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(NOW);
  calls = [];
  vi.stubGlobal("fetch", (url: string) => {
    calls.push(url);
    const path = url.split("?")[0];
    const body = path === "/api/limiters" ? limiters : path === "/api/stats" ? overview : [];
    return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
  });
});

afterEach(() => {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

/** The download link's query, as a plain object. */
function linkQuery(): Record<string, string> {
  const href = screen.getByTestId("usage-download-link").getAttribute("href")!;
  const url = new URL(href, "http://dashboard.test");
  expect(url.pathname).toBe("/api/usage/export");
  return Object.fromEntries(url.searchParams);
}

describe("the statistics page's download link", () => {
  it("follows the range, the limiter filter and the format, and is a plain download link", async () => {
    const user = userEvent.setup();
    render(<StatisticsPage />);
    const link = screen.getByTestId("usage-download-link");
    expect(link.tagName).toBe("A");
    expect(link.hasAttribute("download")).toBe(true);
    expect(link.textContent).toContain("Download");

    // Default: the last 24 hours from the top of the hour, every limiter, CSV.
    expect(linkQuery()).toEqual({ from: "2026-03-09T12:00:00.000Z", format: "csv" });

    // The limiter filter lists the limiters by name and filters the figures and the link alike.
    await waitFor(() => expect(screen.getAllByRole("option", { name: "Customer A" })).toHaveLength(1));
    const names = Array.from((screen.getByTestId("limiter-filter") as HTMLSelectElement).options).map((o) => o.text);
    expect(names).toEqual(["All limiters", "Customer A", "Zeta team"]);
    await user.selectOptions(screen.getByTestId("limiter-filter"), A);
    expect(linkQuery()).toEqual({ from: "2026-03-09T12:00:00.000Z", limiter_id: A, format: "csv" });
    await waitFor(() => expect(calls).toContain(`/api/stats?from=${encodeURIComponent("2026-03-09T12:00:00.000Z")}&limiter_id=${A}`));

    await user.selectOptions(screen.getByTestId("range-select"), "1h");
    expect(linkQuery()).toEqual({ from: "2026-03-10T11:34:00.000Z", limiter_id: A, format: "csv" });

    await user.selectOptions(screen.getByTestId("export-format"), "jsonl");
    expect(linkQuery()).toEqual({ from: "2026-03-10T11:34:00.000Z", limiter_id: A, format: "jsonl" });
    expect(screen.getByTestId("usage-download-link").getAttribute("title")).toMatch(/Customer A, last hour.*JSON Lines/);

    // All time, all limiters: no bounds at all.
    await user.selectOptions(screen.getByTestId("range-select"), "all");
    await user.selectOptions(screen.getByTestId("limiter-filter"), "");
    expect(linkQuery()).toEqual({ format: "jsonl" });
    // The page never fetches the export itself: the browser does, through the link.
    expect(calls.filter((u) => u.startsWith("/api/usage/export"))).toEqual([]);
  });
});

describe("the statistics page's usage by limiter", () => {
  const row = (id: string, name: string, requests: number, refused: { total: number; by_reason: Record<string, number> }) => ({
    limiter_id: id, limiter_name: name, is_active: true, is_deleted: false, requests, total_tokens: 0, cost: requests / 100,
    current_spend: 0, budget_limit: 10, usage_percentage: 0, refused,
  });

  it("has a Refused column with the reasons on hover, and sorts by it", async () => {
    const user = userEvent.setup();
    overview.limiters = [
      row(A, "Customer A", 50, { total: 2, by_reason: { model_rule: 2 } }),
      row(B, "Zeta team", 0, { total: 7, by_reason: { inactive: 7 } }),
      row("0c0c0c0c-0000-4000-8000-00000000000c", "Idle", 5, { total: 0, by_reason: {} }),
    ];
    render(<StatisticsPage />);
    await waitFor(() => expect(screen.getAllByTestId("limiter-usage-row")).toHaveLength(3));
    const names = () => screen.getAllByTestId("limiter-usage-row").map((r) => r.querySelector("td")!.textContent);
    const refused = () => screen.getAllByTestId("limiter-refused").map((c) => c.textContent);
    // Sorted by cost first.
    expect(names()).toEqual(["Customer A", "Idle", "Zeta team"]);
    expect(refused()).toEqual(["2", "0", "7"]);
    const cells = screen.getAllByTestId("limiter-refused");
    expect(cells[0]!.getAttribute("title")).toBe("Model not allowed 2");
    // Zeta team refused everything it was sent: red.
    expect(cells[2]!.getAttribute("title")).toBe("Inactive 7");
    expect(cells[2]!.className).toContain("text-red-600");
    await user.click(screen.getByTestId("limiter-usage-table-sort-refused_total"));
    expect(refused()).toEqual(["7", "2", "0"]);
    await user.click(screen.getByTestId("limiter-usage-table-sort-refused_total"));
    expect(refused()).toEqual(["0", "2", "7"]);
  });
});

// @vitest-environment jsdom
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { UserView } from "../lib/api";
import { limiterFixture } from "../test/fixtures";
import { LimiterUsers } from "./LimiterUsers";

const limiter = limiterFixture({
  id: "6f1c2d4e-0000-4000-8000-000000000003",
  name: "Team C",
  code: "00112233445566778899aabbccddeeff",
  proxy_endpoint: "http://localhost:8000/v1/00112233445566778899aabbccddeeff",
  budget_limit: 50,
  period_type: "month",
  user_budget: { budget_limit: 1, period_type: "day" },
  user_overrides: { carol: { budget_limit: 5, period_type: "day" } },
  current_spend: 3,
  remaining_budget: 47,
  usage_percentage: 6,
  period_start: "2026-03-01T00:00:00Z",
  period_end: "2026-04-01T00:00:00Z",
});

const day = { period_start: "2026-03-10T00:00:00Z", period_end: "2026-03-11T00:00:00Z" };
let users: UserView[];
type Call = { url: string; method: string; body: unknown };
let calls: Call[];
let failPut: boolean;

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

beforeEach(() => {
  calls = [];
  failPut = false;
  users = [
    { user: "alice", budget: { budget_limit: 1, period_type: "day" }, is_override: false, current_spend: 0.8, requests: 12, usage_percentage: 80, ...day },
    { user: "carol", budget: { budget_limit: 5, period_type: "day" }, is_override: true, current_spend: 0.5, requests: 3, usage_percentage: 10, ...day },
  ];
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    const body = init.body ? JSON.parse(init.body as string) : undefined;
    calls.push({ url, method, body });
    const user = decodeURIComponent(url.split("/users/")[1] ?? "");
    if (method === "GET" && url.includes("/users?")) return Promise.resolve(json(users));
    if (method === "PUT") {
      if (failPut) return Promise.resolve(json({ error: { message: "user: must be 1 to 256 characters", type: "invalid_request_error", code: "validation_failed", field: "user" } }, 422));
      users = users.filter((u) => u.user !== user);
      users.push({ user, budget: body, is_override: true, current_spend: 0, requests: 0, usage_percentage: 0, ...day });
      return Promise.resolve(json({ ...limiter, user_overrides: { ...limiter.user_overrides, [user]: body } }));
    }
    if (method === "DELETE") {
      users = users.map((u) => (u.user === user ? { ...u, is_override: false, budget: limiter.user_budget ?? null } : u));
      return Promise.resolve(new Response(null, { status: 204 }));
    }
    if (method === "GET") return Promise.resolve(json(limiter));
    return Promise.resolve(json({ error: { message: "unexpected", type: "x", code: "x" } }, 500));
  });
  document.cookie = "budget_csrf=csrf-value";
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const row = (user: string) => screen.getAllByTestId("user-row").find((r) => r.getAttribute("data-user") === user)!;

describe("LimiterUsers", () => {
  it("lists the top spenders against their budgets, overrides marked", async () => {
    render(<LimiterUsers limiter={limiter} open />);
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(2));
    expect(calls[0]!.url).toBe(`/api/limiters/${limiter.id}/users?limit=10`);
    expect(within(row("alice")).getByTestId("user-spend").textContent).toBe("12 req · $0.80 of $1.00/day");
    expect(within(row("alice")).getByTestId("user-bar").getAttribute("data-level")).toBe("warning");
    expect(row("alice").getAttribute("data-override")).toBe("false");
    expect(within(row("alice")).queryByTestId("user-remove-override")).toBeNull();
    expect(row("carol").getAttribute("data-override")).toBe("true");
    expect(within(row("carol")).getByText("override")).toBeTruthy();
    expect(screen.getByTestId("stats-users-budget").textContent).toBe("Per-user budget $1.00/day");
  });

  it("sets one user's budget with PUT and removes it with DELETE", async () => {
    const user = userEvent.setup();
    const onChanged = vi.fn();
    render(<LimiterUsers limiter={limiter} open onChanged={onChanged} />);
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(2));
    // The row's button fills the form with that user and their budget.
    await user.click(screen.getByRole("button", { name: "Set the budget of alice" }));
    expect((screen.getByLabelText("End user") as HTMLInputElement).value).toBe("alice");
    await user.clear(screen.getByLabelText("User budget (USD)"));
    await user.type(screen.getByLabelText("User budget (USD)"), "2.50");
    await user.selectOptions(screen.getByLabelText("User budget period"), "week");
    await user.click(screen.getByTestId("user-override-submit"));
    await waitFor(() => expect(row("alice").getAttribute("data-override")).toBe("true"));
    const put = calls.find((c) => c.method === "PUT")!;
    expect(put.url).toBe(`/api/limiters/${limiter.id}/users/alice`);
    expect(put.body).toEqual({ budget_limit: 2.5, period_type: "week" });
    expect(onChanged).toHaveBeenCalledWith(expect.objectContaining({ user_overrides: expect.objectContaining({ alice: { budget_limit: 2.5, period_type: "week" } }) }));
    await user.click(screen.getByRole("button", { name: "Remove the override of carol" }));
    await waitFor(() => expect(row("carol").getAttribute("data-override")).toBe("false"));
    expect(calls.find((c) => c.method === "DELETE")!.url).toBe(`/api/limiters/${limiter.id}/users/carol`);
  });

  it("checks the form and shows the server's refusal", async () => {
    const user = userEvent.setup();
    render(<LimiterUsers limiter={limiter} open />);
    await waitFor(() => expect(screen.getAllByTestId("user-row")).toHaveLength(2));
    await user.type(screen.getByLabelText("End user"), "dave");
    await user.type(screen.getByLabelText("User budget (USD)"), "0");
    await user.click(screen.getByTestId("user-override-submit"));
    expect(screen.getByTestId("user-override-error").textContent).toMatch(/above \$0/);
    expect(calls.some((c) => c.method === "PUT")).toBe(false);
    failPut = true;
    await user.clear(screen.getByLabelText("User budget (USD)"));
    await user.type(screen.getByLabelText("User budget (USD)"), "1");
    await user.click(screen.getByTestId("user-override-submit"));
    await waitFor(() => expect(screen.getByTestId("user-override-error").textContent).toBe("user: must be 1 to 256 characters"));
  });
});

// @vitest-environment jsdom
// A viewer account's dashboard: no write control anywhere, no Audit or Accounts in the nav,
// masked codes shown as the server sends them; an admin's has all of them. The server refuses
// a viewer's writes anyway (budget-server/tests/accounts.rs).
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter, Route, Routes } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthProvider } from "../hooks/auth";
import type { Me } from "../lib/api";
import { CredentialsPage } from "../pages/CredentialsPage";
import { LimitersPage } from "../pages/LimitersPage";
import { credentialFixture, limiterFixture } from "../test/fixtures";
import { Layout } from "./Layout";
import { TooltipProvider } from "./ui/tooltip";

const masked = "sk-budget-3f9c…";
const limiter = limiterFixture({ code: masked, proxy_endpoint: `http://localhost:8000/v1/${masked}` });
const credential = credentialFixture();

// The chart needs a laid-out container, which jsdom does not have; it is not under test here.
vi.mock("./SpendChart", () => ({ SpendChart: () => null }));

let me: Me;
const stats = {
  limiter_id: limiter.id, limiter_name: "Customer A", current_spend: 5.25, budget_limit: 20, remaining_budget: 14.75, usage_percentage: 26.25,
  total_requests: 3, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, held: 0, in_flight: 0, leased: 0, unpriced_requests: 0,
  estimated_requests: 0, refused: { total: 0, by_reason: {} }, period_start: "2026-03-10T00:00:00Z", period_end: "2026-03-11T00:00:00Z",
};

beforeEach(() => {
  document.cookie = "budget_csrf=c0ffee; path=/";
  vi.stubGlobal("fetch", async (url: string) => {
    const path = url.split("?")[0];
    const body =
      path === "/api/auth/me" ? me : path === "/api/limiters" ? [limiter] : path === "/api/credentials" ? [credential] : path.endsWith("/stats") ? stats : [];
    return new Response(JSON.stringify(body), { status: 200 });
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  document.cookie = "budget_csrf=; path=/; max-age=0";
  localStorage.clear();
});

function renderAt(path: string) {
  render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider>
        <TooltipProvider>
          <Routes>
            <Route element={<Layout />}>
              <Route path="/" element={<LimitersPage />} />
              <Route path="/credentials" element={<CredentialsPage />} />
            </Route>
          </Routes>
        </TooltipProvider>
      </AuthProvider>
    </MemoryRouter>,
  );
}

describe("a viewer account's dashboard", () => {
  it("shows limiters read-only with the masked code, and no Audit or Accounts", async () => {
    me = { username: "vera", role: "viewer", bootstrap: false, id: "0a0a0a0a-0000-4000-8000-000000000001" };
    const user = userEvent.setup();
    renderAt("/");
    const card = await screen.findByTestId("limiter-card");
    await waitFor(() => expect(screen.getByTestId("current-user").getAttribute("data-role")).toBe("viewer"));
    expect(within(card).getByTestId("proxy-endpoint").textContent).toContain(masked);
    expect(within(card).getByTestId("read-only-note")).toBeTruthy();
    for (const id of ["action-edit", "action-rotate", "action-delete", "copy-endpoint"]) expect(within(card).queryByTestId(id), id).toBeNull();
    expect(within(card).getByTestId("limiter-active-switch")).toHaveProperty("disabled", true);
    expect(screen.queryByTestId("create-limiter")).toBeNull();
    expect(screen.queryByTestId("nav-audit")).toBeNull();
    expect(screen.queryByTestId("nav-accounts")).toBeNull();
    expect(screen.getByTestId("nav-statistics")).toBeTruthy();
    // The stats dialog: no override form, no link to the audit trail.
    await user.click(within(card).getByTestId("action-stats"));
    await screen.findByTestId("stats-users");
    expect(screen.queryByTestId("user-override-form")).toBeNull();
    expect(screen.queryByTestId("stats-history")).toBeNull();
    // A viewer may change its own password.
    expect(screen.getByTestId("change-password")).toBeTruthy();
  });

  it("lists credentials without any control", async () => {
    me = { username: "vera", role: "viewer", bootstrap: false, id: "0a0a0a0a-0000-4000-8000-000000000001" };
    renderAt("/credentials");
    const r = await screen.findByTestId("credential-row");
    await waitFor(() => expect(screen.getByTestId("current-user").getAttribute("data-role")).toBe("viewer"));
    for (const id of ["credential-rotate", "credential-edit", "credential-delete"]) expect(within(r).queryByTestId(id), id).toBeNull();
    expect(screen.queryByTestId("create-credential")).toBeNull();
  });

  it("an admin has every control and page; the bootstrap admin no password button", async () => {
    me = { username: "admin", role: "admin", bootstrap: true, id: null };
    renderAt("/");
    const card = await screen.findByTestId("limiter-card");
    await waitFor(() => expect(screen.getByTestId("nav-accounts")).toBeTruthy());
    expect(screen.getByTestId("nav-audit")).toBeTruthy();
    expect(screen.getByTestId("create-limiter")).toBeTruthy();
    for (const id of ["action-edit", "action-rotate", "action-delete", "copy-endpoint"]) expect(within(card).getByTestId(id), id).toBeTruthy();
    expect(screen.queryByTestId("change-password")).toBeNull();
  });
});

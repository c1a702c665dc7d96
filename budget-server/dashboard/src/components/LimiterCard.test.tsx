// @vitest-environment jsdom
import { cleanup, render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Limiter } from "../lib/api";
import { credentialFixture, limiterFixture } from "../test/fixtures";
import { LimiterCard, type LimiterCardProps } from "./LimiterCard";
import { TooltipProvider } from "./ui/tooltip";

const NOW = Date.parse("2026-03-10T12:00:00Z");

const limiter = limiterFixture;

function renderCard(l: Limiter, over: Partial<LimiterCardProps> = {}) {
  const props: LimiterCardProps = {
    limiter: l,
    now: NOW,
    toggling: false,
    onToggle: vi.fn(),
    onEdit: vi.fn(),
    onStats: vi.fn(),
    onRotate: vi.fn(),
    onDelete: vi.fn(),
    ...over,
  };
  render(
    <TooltipProvider>
      <LimiterCard {...props} />
    </TooltipProvider>,
  );
  return props;
}

afterEach(cleanup);

describe("LimiterCard", () => {
  it("shows the budget, the spend, what is left and the proxy endpoint", () => {
    renderCard(limiter());
    expect(screen.getByTestId("limiter-name").textContent).toBe("Customer A");
    expect(screen.getByTestId("limiter-budget").textContent).toContain("$20.00");
    expect(screen.getByTestId("limiter-spend").textContent).toBe("$5.25 of $20.00");
    expect(screen.getByTestId("limiter-usage-percent").textContent).toBe("26.3%");
    expect(screen.getByText("$14.75 left")).toBeTruthy();
    expect(screen.getByTestId("proxy-endpoint").textContent).toBe(limiter().proxy_endpoint);
    expect(screen.getByTestId("mode-badge").textContent).toBe("Soft");
    expect(screen.queryByText("Budget reached")).toBeNull();
  });

  it("flags a spent budget, strict mode, Azure and a non-UTC time zone", () => {
    renderCard(
      limiter({ current_spend: 20, remaining_budget: 0, usage_percentage: 100, mode: "strict", provider: "azure", timezone: "Europe/Berlin" }),
    );
    expect(screen.getByText("Budget reached")).toBeTruthy();
    expect(screen.getByTestId("mode-badge").textContent).toBe("Strict");
    expect(screen.getByTestId("provider-badge").textContent).toBe("Azure OpenAI");
    expect(screen.getByTestId("limiter-budget").textContent).toContain("Europe/Berlin");
  });

  it("sends each action to its handler", async () => {
    const user = userEvent.setup();
    const p = renderCard(limiter());
    await user.click(screen.getByTestId("action-stats"));
    await user.click(screen.getByTestId("action-edit"));
    await user.click(screen.getByRole("button", { name: "Rotate code of Customer A" }));
    await user.click(screen.getByRole("button", { name: "Delete Customer A" }));
    await user.click(screen.getByRole("switch", { name: "Deactivate Customer A" }));
    expect(p.onStats).toHaveBeenCalledTimes(1);
    expect(p.onEdit).toHaveBeenCalledTimes(1);
    expect(p.onRotate).toHaveBeenCalledTimes(1);
    expect(p.onDelete).toHaveBeenCalledTimes(1);
    expect(p.onToggle).toHaveBeenCalledWith(false);
  });

  it("an inactive limiter offers to activate, and the switch waits while toggling", async () => {
    const user = userEvent.setup();
    const p = renderCard(limiter({ is_active: false }), { toggling: true });
    const sw = screen.getByRole("switch", { name: "Activate Customer A" });
    expect(screen.getByTestId("limiter-card").getAttribute("data-active")).toBe("false");
    expect((sw as HTMLButtonElement).disabled).toBe(true);
    await user.click(sw);
    expect(p.onToggle).not.toHaveBeenCalled();
  });

  it("shows a bar per extra window with its period, spend and reset; the badge follows the tightest window", () => {
    const primary = {
      period_type: "day" as const, budget_limit: 20, primary: true, current_spend: 5.25, held: 0, leased: 0, remaining_budget: 14.75,
      usage_percentage: 26.25, period_start: "2026-03-10T00:00:00Z", period_end: "2026-03-11T00:00:00Z",
    };
    const hour = {
      ...primary, period_type: "hour" as const, budget_limit: 5, primary: false, current_spend: 5, remaining_budget: 0,
      usage_percentage: 100, period_start: "2026-03-10T12:00:00Z", period_end: "2026-03-10T13:00:00Z",
    };
    const month = {
      ...primary, period_type: "month" as const, budget_limit: 300, primary: false, current_spend: 60, remaining_budget: 240,
      usage_percentage: 20, period_start: "2026-03-01T00:00:00Z", period_end: "2026-04-01T00:00:00Z",
    };
    renderCard(limiter({ extra_budgets: [{ budget_limit: 5, period_type: "hour" }, { budget_limit: 300, period_type: "month" }], windows: [primary, hour, month] }));
    const bars = screen.getAllByTestId("window-bar");
    expect(bars.map((b) => b.getAttribute("data-period"))).toEqual(["hour", "month"]);
    expect(bars[0]!.textContent).toContain("hour");
    expect(within(bars[0]!).getByTestId("window-spend").textContent).toBe("$5.00 of $5.00");
    expect(within(bars[0]!).getByTestId("window-reset").textContent).toBe("Resets in 1h 00m");
    expect(within(bars[0]!).getByRole("progressbar").getAttribute("data-level")).toBe("exceeded");
    expect(within(bars[1]!).getByTestId("window-spend").textContent).toBe("$60.00 of $300.00");
    expect(within(bars[1]!).getByTestId("window-reset").textContent).toBe("Resets in 21d 12h");
    // The primary window is at 26 %, but the hourly one is spent: the card says so.
    expect(screen.getByText("Budget reached")).toBeTruthy();
  });

  it("shows no window bars, chips, expiry or per-user line for a plain limiter", () => {
    renderCard(limiter());
    expect(screen.queryByTestId("window-bars")).toBeNull();
    expect(screen.queryByTestId("allowed-models")).toBeNull();
    expect(screen.queryByTestId("expiry-badge")).toBeNull();
    expect(screen.queryByTestId("user-budget-line")).toBeNull();
    expect(screen.queryByTestId("max-cost-badge")).toBeNull();
  });

  it("shows allowed models as chips, the per-user budget and the price cap", () => {
    const models = ["gpt-4o-mini", "text-embedding-3-*", "a", "b", "c", "d", "e", "f"];
    renderCard(
      limiter({
        allowed_models: models,
        user_budget: { budget_limit: 1, period_type: "day" },
        user_overrides: { alice: { budget_limit: 5, period_type: "day" }, bob: { budget_limit: 2, period_type: "week" } },
        require_user: true,
        max_request_cost: 0.5,
      }),
    );
    expect(screen.getAllByTestId("model-chip").map((c) => c.textContent)).toEqual(models.slice(0, 6));
    expect(screen.getByText("+2 more").getAttribute("title")).toBe("e, f");
    expect(screen.getByTestId("user-budget-line").textContent).toBe("Per-user budget $1.00/day · 2 overrides · user id required");
    expect(screen.getByTestId("max-cost-badge").textContent).toBe("Max $0.50/request");
  });

  it("counts down to the expiry and says when it has passed", () => {
    renderCard(limiter({ expires_at: "2026-03-13T16:30:00Z" }));
    let badge = screen.getByTestId("expiry-badge");
    expect(badge.textContent).toBe("Expires in 3d 4h");
    expect(badge.getAttribute("data-expired")).toBe("false");
    cleanup();
    renderCard(limiter({ expires_at: "2026-03-10T11:59:59Z" }));
    badge = screen.getByTestId("expiry-badge");
    expect(badge.textContent).toBe("Expired");
    expect(badge.getAttribute("data-expired")).toBe("true");
  });
  it("a pass-through limiter says so, and its snippets send the client's own key to the endpoint", async () => {
    const user = userEvent.setup();
    renderCard(limiter());
    expect(screen.getByTestId("limiter-credential-name").textContent).toBe("pass-through");
    expect(screen.queryByTestId("limiter-code")).toBeNull();
    expect(screen.getByTestId("snippets").getAttribute("data-mode")).toBe("pass-through");
    await user.click(screen.getByText("Snippets"));
    expect(screen.getByTestId("snippet-python").textContent).toContain(`base_url="${limiter().proxy_endpoint}"`);
    expect(screen.getByTestId("snippet-python").textContent).toContain("your-openai-api-key");
  });

  it("a limiter with a stored key names it, offers the code as the API key, and its snippets need no OpenAI key", async () => {
    const user = userEvent.setup();
    const code = "sk-budget-0123456789abcdef0123456789abcdef";
    const cred = credentialFixture({ rotated_at: "2026-03-01T00:00:00Z", limiter_count: 1 });
    renderCard(limiter({ code, proxy_endpoint: `http://localhost:8000/v1/${code}`, credential_id: cred.id }), { credential: cred });
    expect(screen.getByTestId("limiter-credential").textContent).toBe("Upstream key: openai-prod …wxyz");
    expect(screen.getByTestId("limiter-code").textContent).toBe(code);
    expect(screen.getByTestId("snippets").getAttribute("data-mode")).toBe("code-as-key");
    await user.click(screen.getByText("Snippets"));
    expect(screen.getByTestId("snippets-note").textContent).toMatch(/the client needs no OpenAI key, the server sends openai-prod/);
    const py = screen.getByTestId("snippet-python").textContent!;
    expect(py).toContain('base_url="http://localhost:8000/v1",');
    expect(py).toContain(`api_key="${code}",`);
    await user.click(screen.getByTestId("snippet-tab-curl"));
    expect(screen.getByTestId("snippet-curl").textContent).toContain(`Authorization: Bearer ${code}`);
  });

  it("shows no refusal badge while nothing was refused", () => {
    renderCard(limiter());
    expect(screen.queryByTestId("refused-badge")).toBeNull();
  });

  it("counts refused requests, with the reasons in the title; neutral while requests also get through", () => {
    renderCard(limiter({ refused: { total: 1234, by_reason: { model_rule: 4, budget: 1230 } } }));
    const badge = screen.getByTestId("refused-badge");
    expect(badge.textContent).toBe("1,234 refused this period");
    expect(badge.getAttribute("data-all-refused")).toBe("false");
    expect(badge.className).not.toContain("bg-red-50");
    // Known reasons in a fixed order with readable labels, whatever order the server sends.
    expect(badge.getAttribute("title")).toBe("Refused this period: Over budget 1,230, Model not allowed 4");
  });

  it("turns red when the limiter refused every request of the window", () => {
    renderCard(limiter({ is_active: false, current_spend: 0, remaining_budget: 20, usage_percentage: 0, refused: { total: 3, by_reason: { inactive: 3 } } }));
    const badge = screen.getByTestId("refused-badge");
    expect(badge.textContent).toBe("3 refused this period");
    expect(badge.getAttribute("data-all-refused")).toBe("true");
    expect(badge.className).toContain("bg-red-50");
    expect(badge.getAttribute("title")).toBe("Every request was refused this period: Inactive 3");
  });

  it("shows until when a rotated code's predecessor works, and nothing once it has expired", () => {
    renderCard(limiter({ previous_code: { code: "0123456789abcdef0123456789abcdef", until: "2026-03-10T13:30:00Z" } }));
    expect(screen.getByTestId("previous-code").textContent).toMatch(/^Old code works until .* \(1h 30m left\)$/);
    cleanup();
    renderCard(limiter({ previous_code: { code: "0123456789abcdef0123456789abcdef", until: "2026-03-10T11:00:00Z" } }));
    expect(screen.queryByTestId("previous-code")).toBeNull();
  });
});

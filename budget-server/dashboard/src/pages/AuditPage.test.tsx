// @vitest-environment jsdom
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AuditEntry } from "../lib/api";
import { A, B, limiters, NOW, renderPage, search, stubApi, unstubApi } from "../test/filtered-page";
import { AuditPage } from "./AuditPage";

const GONE = "0c0c0c0c-0000-4000-8000-00000000000c";
const CRED = "0d0d0d0d-0000-4000-8000-00000000000d";
const credentials = [{ id: CRED, name: "openai-prod" }];

const entry = (n: number, over: Partial<AuditEntry>): AuditEntry => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  at: new Date(NOW - n * 60_000).toISOString(),
  actor: "admin",
  client: "127.0.0.1",
  action: "limiter.update",
  limiter_id: null,
  target: null,
  before: null,
  after: null,
  ...over,
});

const ENTRIES: AuditEntry[] = [
  entry(1, { action: "login.failed", actor: "mallory", client: "203.0.113.9" }),
  entry(2, { action: "limiter.update", limiter_id: A, before: { budget_limit: 5, credential_id: null }, after: { budget_limit: 7.5, credential_id: CRED } }),
  entry(3, { action: "limiter.rotate_code", limiter_id: B, before: { code: "sk-budget-3f9c…" }, after: { code: "sk-budget-a1b2…" } }),
  entry(4, { action: "credential.rotate", target: CRED, before: { key_hint: "…aaaa" }, after: { key_hint: "…bbbb" } }),
  entry(5, { action: "limiter.create", limiter_id: GONE, after: { id: GONE, name: "Old", budget_limit: 1, period_type: "day", mode: "soft", provider: "openai", is_active: true, extra_budgets: [] } }),
];

let calls: URL[];
let answer: (url: URL) => AuditEntry[];

beforeEach(() => {
  answer = () => ENTRIES;
  calls = stubApi({ "/api/limiters": limiters, "/api/credentials": credentials }, (u) => answer(u));
});

afterEach(unstubApi);

const renderAt = (path: string) => renderPage(path, <AuditPage />);

const lastQuery = () => Object.fromEntries(calls.at(-1)!.searchParams);
const rowOf = (action: string) => document.querySelector<HTMLElement>(`[data-testid="audit-row"][data-action="${action}"]`)!;

describe("the audit page", () => {
  it("lists entries newest first with names, labels and before → after lines; a failed login stands out", async () => {
    renderAt("/audit");
    await screen.findByTestId("audit-table");
    await waitFor(() => expect(within(rowOf("limiter.update")).getByText("Customer A")).toBeTruthy());
    const rows = screen.getAllByTestId("audit-row");
    expect(rows.map((r) => r.dataset.action)).toEqual(ENTRIES.map((e) => e.action));

    const failed = rowOf("login.failed");
    expect(failed.className).toContain("bg-red-50");
    const badge = within(failed).getByText("Login failed");
    expect(badge.className).toContain("bg-red-50");
    expect(failed.querySelector('[data-col="actor"]')!.textContent).toBe("mallory");
    expect(failed.querySelector('[data-col="client"]')!.textContent).toBe("203.0.113.9");
    expect(failed.querySelector('[data-col="at"]')!.getAttribute("title")).toBe("2026-03-10 12:33:56 UTC");

    const update = rowOf("limiter.update");
    const lines = within(update).getAllByTestId("audit-change-line").map((l) => l.textContent);
    expect(lines).toEqual(["budget_limit: 5 → 7.5", `credential_id: none → ${CRED}`]);

    expect(within(rowOf("limiter.rotate_code")).getByTestId("audit-change-line").textContent).toBe("code: sk-budget-3f9c… → sk-budget-a1b2…");
    expect(rowOf("limiter.rotate_code").querySelector('[data-col="limiter"]')!.textContent).toBe("Zeta team");
    expect(rowOf("credential.rotate").querySelector('[data-col="target"]')!.textContent).toBe("key openai-prod");

    // A limiter the list does not know shows by id; a creation lists its fields, the rest on request.
    const created = rowOf("limiter.create");
    expect(created.querySelector('[data-col="limiter"]')!.textContent).toBe(GONE);
    const shown = within(created).getAllByTestId("audit-change-line").map((l) => l.textContent);
    expect(shown.slice(0, 4)).toEqual(["name: Old", "budget_limit: 1", "period_type: day", "mode: soft"]);
    expect(within(created).getByText("2 more")).toBeTruthy();
    expect(shown).not.toContain(expect.stringContaining("id:"));

    // The default query: the last 7 days, 100 entries.
    expect(lastQuery()).toEqual({ from: "2026-03-03T12:34:56.000Z", limit: "100" });
  });

  it("filters by the limiter in the address, the dropdown, the actor and the range", async () => {
    const user = userEvent.setup();
    renderAt(`/audit?limiter_id=${A}`);
    await screen.findByTestId("audit-table");
    expect(lastQuery()).toMatchObject({ limiter_id: A });
    const select = screen.getByTestId<HTMLSelectElement>("audit-limiter-filter");
    await waitFor(() => expect(select.value).toBe(A));
    // Live ones first, deleted ones marked.
    expect([...select.options].map((o) => o.textContent)).toEqual(["All limiters", "Zeta team", "Customer A (deleted)"]);

    await user.selectOptions(select, B);
    await waitFor(() => expect(lastQuery()).toMatchObject({ limiter_id: B }));
    expect(search).toBe(`?limiter_id=${B}`);
    await user.selectOptions(select, "");
    await waitFor(() => expect(lastQuery().limiter_id).toBeUndefined());
    expect(search).toBe("");

    await user.type(screen.getByTestId("audit-actor-filter"), "mallory");
    await waitFor(() => expect(lastQuery()).toMatchObject({ actor: "mallory" }));

    await user.selectOptions(screen.getByTestId("audit-range-select"), "all");
    await waitFor(() => expect(lastQuery().from).toBeUndefined());
    expect(lastQuery()).toEqual({ actor: "mallory", limit: "100" });
  });

  it("loads more while answers fill the limit, and starts over when a filter changes", async () => {
    const user = userEvent.setup();
    const many = Array.from({ length: 1000 }, (_, i) => entry(i + 1, { action: "login.succeeded" }));
    answer = (u) => many.slice(0, Number(u.searchParams.get("limit")));
    renderAt("/audit");
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(100));
    await user.click(screen.getByTestId("audit-load-more"));
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(200));
    expect(lastQuery().limit).toBe("200");
    await user.selectOptions(screen.getByTestId("audit-range-select"), "all");
    await waitFor(() => expect(lastQuery()).toEqual({ limit: "100" }));

    answer = (u) => many.slice(0, Math.min(150, Number(u.searchParams.get("limit"))));
    await user.click(screen.getByTestId("audit-load-more"));
    await waitFor(() => expect(screen.getAllByTestId("audit-row")).toHaveLength(150));
    expect(screen.queryByTestId("audit-load-more")).toBeNull();
  });

  it("says when nothing matches", async () => {
    answer = () => [];
    renderAt("/audit");
    expect((await screen.findByTestId("empty-audit")).textContent).toContain("Nothing matches these filters");
  });
});

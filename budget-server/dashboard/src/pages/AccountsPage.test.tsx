// @vitest-environment jsdom
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TooltipProvider } from "../components/ui/tooltip";
import { AuthProvider } from "../hooks/auth";
import type { Account, Me } from "../lib/api";
import { AccountsPage } from "./AccountsPage";

const vera: Account = {
  id: "0a0a0a0a-0000-4000-8000-000000000001",
  username: "vera",
  role: "viewer",
  disabled: false,
  created_at: "2026-03-01T10:00:00Z",
  updated_at: "2026-03-01T10:00:00Z",
};
const adam: Account = { ...vera, id: "0a0a0a0a-0000-4000-8000-000000000002", username: "Adam", role: "admin" };

let list: Account[];
let me: Me;
let puts: { url: string; body: unknown }[];
let posts: unknown[];

function json(body: unknown, status = 200) {
  return Promise.resolve(new Response(JSON.stringify(body), { status }));
}

beforeEach(() => {
  list = [vera, adam];
  me = { username: "Adam", role: "admin", bootstrap: false, id: adam.id };
  puts = [];
  posts = [];
  // A session: the page is behind the login, and the provider asks who it is.
  document.cookie = "budget_csrf=c0ffee; path=/";
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    if (url === "/api/auth/me") return json(me);
    if (url === "/api/accounts" && method === "GET") return json(list);
    if (url === "/api/accounts" && method === "POST") {
      const body = JSON.parse(String(init.body)) as { username: string; role: Account["role"] };
      posts.push(JSON.parse(String(init.body)));
      if (body.username.toLowerCase() === "vera")
        return json({ error: { message: 'conflict: an account named "vera" already exists', type: "invalid_request_error", code: "conflict" } }, 409);
      const created: Account = { ...vera, id: "0a0a0a0a-0000-4000-8000-000000000003", username: body.username, role: body.role };
      list = [...list, created];
      return json(created, 201);
    }
    const m = url.match(/^\/api\/accounts\/(.+)$/);
    if (m && method === "PUT") {
      const body = JSON.parse(String(init.body)) as Partial<Account> & { password?: string };
      puts.push({ url, body });
      const a = list.find((x) => x.id === m[1])!;
      const { password: _password, ...fields } = body;
      const saved = { ...a, ...fields };
      list = list.map((x) => (x.id === a.id ? saved : x));
      return json(saved);
    }
    return json({}, 404);
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
  document.cookie = "budget_csrf=; path=/; max-age=0";
  localStorage.clear();
});

function renderPage() {
  render(
    <AuthProvider>
      <TooltipProvider>
        <AccountsPage />
      </TooltipProvider>
    </AuthProvider>,
  );
}

const row = (name: string) => screen.getAllByTestId("account-row").find((r) => r.getAttribute("data-username") === name)!;

describe("AccountsPage", () => {
  it("lists accounts by name with role, status and creation; an admin cannot demote or disable itself", async () => {
    renderPage();
    await waitFor(() => expect(screen.getAllByTestId("account-row")).toHaveLength(2));
    expect(screen.getAllByTestId("account-row").map((r) => r.getAttribute("data-username"))).toEqual(["Adam", "vera"]);
    expect(within(row("vera")).getByTestId("account-role")).toHaveProperty("value", "viewer");
    expect(within(row("vera")).getByTestId("account-status").textContent).toBe("Active");
    expect(within(row("vera")).getByText(/2026/)).toBeTruthy();
    const own = row("Adam");
    expect(own.textContent).toContain("(you)");
    expect(within(own).getByTestId("account-role")).toHaveProperty("disabled", true);
    expect(within(own).getByTestId("account-disable")).toHaveProperty("disabled", true);
    expect(within(own).queryByTestId("account-reset")).toBeNull();
  });

  it("adds an account, checking the form first and showing a taken name at the field", async () => {
    const user = userEvent.setup();
    renderPage();
    await user.click(await screen.findByTestId("create-account"));
    const dialog = await screen.findByTestId("account-form-dialog");
    await user.click(within(dialog).getByTestId("account-form-submit"));
    expect(within(dialog).getByTestId("field-error-username").textContent).toMatch(/Enter a user name/);
    expect(within(dialog).getByTestId("field-error-password").textContent).toMatch(/At least 12/);
    expect(posts).toEqual([]);
    await user.type(within(dialog).getByLabelText("User name"), "vera");
    await user.type(within(dialog).getByLabelText("Password"), "viewer-password-1");
    await user.type(within(dialog).getByLabelText("Repeat the password"), "viewer-password-1");
    await user.click(within(dialog).getByTestId("account-form-submit"));
    await waitFor(() => expect(within(dialog).getByTestId("field-error-username").textContent).toMatch(/already exists/));
    await user.clear(within(dialog).getByLabelText("User name"));
    await user.type(within(dialog).getByLabelText("User name"), "olga");
    await user.selectOptions(within(dialog).getByLabelText("Role"), "admin");
    await user.click(within(dialog).getByTestId("account-form-submit"));
    await waitFor(() => expect(screen.queryByTestId("account-form-dialog")).toBeNull());
    expect(posts[1]).toEqual({ username: "olga", password: "viewer-password-1", role: "admin" });
    await waitFor(() => expect(row("olga")).toBeTruthy());
  });

  it("changes a role, disables after confirming, enables, and resets a password", async () => {
    const user = userEvent.setup();
    renderPage();
    await waitFor(() => expect(screen.getAllByTestId("account-row")).toHaveLength(2));
    await user.selectOptions(within(row("vera")).getByTestId("account-role"), "admin");
    await waitFor(() => expect(puts).toHaveLength(1));
    expect(puts[0]).toEqual({ url: `/api/accounts/${vera.id}`, body: { role: "admin" } });

    await user.click(within(row("vera")).getByTestId("account-disable"));
    await user.click(await screen.findByTestId("confirm-disable-account"));
    await waitFor(() => expect(puts).toHaveLength(2));
    expect(puts[1]!.body).toEqual({ disabled: true });
    await waitFor(() => expect(within(row("vera")).getByTestId("account-status").textContent).toBe("Disabled"));
    await user.click(within(row("vera")).getByTestId("account-enable"));
    await waitFor(() => expect(puts).toHaveLength(3));
    expect(puts[2]!.body).toEqual({ disabled: false });

    await user.click(within(row("vera")).getByTestId("account-reset"));
    const dialog = await screen.findByTestId("account-form-dialog");
    expect(dialog.getAttribute("data-mode")).toBe("reset");
    expect(within(dialog).queryByLabelText("User name")).toBeNull();
    await user.type(within(dialog).getByLabelText("New password"), "a-new-password-9");
    await user.type(within(dialog).getByLabelText("Repeat the password"), "a-new-password-9");
    await user.click(within(dialog).getByTestId("account-form-submit"));
    await waitFor(() => expect(puts).toHaveLength(4));
    expect(puts[3]!.body).toEqual({ password: "a-new-password-9" });
  });

  it("tells a viewer that only admins manage accounts, and asks the server nothing", async () => {
    me = { username: "vera", role: "viewer", bootstrap: false, id: vera.id };
    const calls: string[] = [];
    const inner = globalThis.fetch;
    vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
      calls.push(url);
      return inner(url, init);
    });
    renderPage();
    expect(await screen.findByTestId("accounts-admins-only")).toBeTruthy();
    expect(screen.queryByTestId("create-account")).toBeNull();
    expect(calls).not.toContain("/api/accounts");
  });
});

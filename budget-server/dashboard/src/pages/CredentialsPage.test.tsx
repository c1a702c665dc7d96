// @vitest-environment jsdom
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { TooltipProvider } from "../components/ui/tooltip";
import type { Credential } from "../lib/api";
import { CredentialsPage } from "./CredentialsPage";

const prod: Credential = {
  id: "0c0c0c0c-0000-4000-8000-00000000000a",
  name: "openai-prod",
  kind: "openai",
  organization: "org-1",
  project: "proj_2",
  key_hint: "…wxyz",
  fingerprint: "sha256:0123456789ab",
  created_at: "2026-03-01T00:00:00Z",
  updated_at: "2026-03-01T00:00:00Z",
  rotated_at: "2026-03-05T10:00:00Z",
  limiter_count: 2,
};
const spare: Credential = { ...prod, id: "0c0c0c0c-0000-4000-8000-00000000000b", name: "spare", kind: "azure", organization: null, project: null, key_hint: "…AZ12", limiter_count: 0 };

let list: Credential[];
let deletes: string[];

beforeEach(() => {
  list = [prod, spare];
  deletes = [];
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    const method = init.method ?? "GET";
    if (url === "/api/credentials" && method === "GET") return Promise.resolve(new Response(JSON.stringify(list), { status: 200 }));
    if (method === "DELETE") {
      deletes.push(url);
      if (url.endsWith(prod.id))
        return Promise.resolve(
          new Response(JSON.stringify({ error: { message: "credential openai-prod is used by 2 limiters: Customer A, Free tier", type: "invalid_request_error", code: "credential_in_use" } }), {
            status: 409,
          }),
        );
      list = list.filter((c) => !url.endsWith(c.id));
      return Promise.resolve(new Response(null, { status: 204 }));
    }
    return Promise.resolve(new Response("{}", { status: 404 }));
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderPage() {
  render(
    <TooltipProvider>
      <CredentialsPage />
    </TooltipProvider>,
  );
}

const row = (c: Credential) => screen.getAllByTestId("credential-row").find((r) => r.getAttribute("data-credential-id") === c.id)!;

describe("CredentialsPage", () => {
  it("lists each key by name, kind, hint, fingerprint, headers and use", async () => {
    renderPage();
    await screen.findAllByTestId("credential-row");
    const r = within(row(prod));
    expect(r.getByText("openai-prod")).toBeTruthy();
    expect(r.getByText("OpenAI")).toBeTruthy();
    expect(r.getByTestId("credential-hint").textContent).toBe("…wxyz");
    expect(r.getByTestId("credential-fingerprint").textContent).toBe("sha256:0123456789ab");
    expect(r.getByText("org-1")).toBeTruthy();
    expect(r.getByText("proj_2")).toBeTruthy();
    expect(r.getByTestId("credential-limiter-count").textContent).toBe("2 limiters");
    expect(within(row(spare)).getByTestId("credential-limiter-count").textContent).toBe("unused");
    expect(within(row(spare)).getByText("Azure OpenAI")).toBeTruthy();
  });

  it("a key in use is not deleted: the server's reason stays in the dialog; an unused one goes", async () => {
    const user = userEvent.setup();
    renderPage();
    await screen.findAllByTestId("credential-row");
    await user.click(within(row(prod)).getByTestId("credential-delete"));
    await user.click(screen.getByTestId("confirm-delete-credential"));
    const err = await screen.findByTestId("delete-credential-error");
    expect(err.textContent).toBe("credential openai-prod is used by 2 limiters: Customer A, Free tier");
    expect(screen.getByTestId("delete-credential-dialog")).toBeTruthy();
    expect(row(prod)).toBeTruthy();
    await user.click(screen.getByRole("button", { name: "Cancel" }));
    await waitFor(() => expect(screen.queryByTestId("delete-credential-dialog")).toBeNull());

    await user.click(within(row(spare)).getByTestId("credential-delete"));
    // A fresh dialog does not carry the last refusal.
    expect(screen.queryByTestId("delete-credential-error")).toBeNull();
    await user.click(screen.getByTestId("confirm-delete-credential"));
    await waitFor(() => expect(screen.getAllByTestId("credential-row")).toHaveLength(1));
    expect(deletes).toEqual([`/api/credentials/${prod.id}`, `/api/credentials/${spare.id}`]);
  });

  it("offers to add a key when there is none", async () => {
    list = [];
    renderPage();
    expect((await screen.findByTestId("empty-credentials")).textContent).toMatch(/No stored keys/);
  });
});

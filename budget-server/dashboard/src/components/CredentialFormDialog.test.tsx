// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Credential } from "../lib/api";
import { CredentialFormDialog, type CredentialFormMode } from "./CredentialFormDialog";

const stored: Credential = {
  id: "0c0c0c0c-0000-4000-8000-00000000000a",
  name: "openai-prod",
  kind: "openai",
  organization: "org-1",
  project: null,
  key_hint: "…wxyz",
  fingerprint: "sha256:0123456789ab",
  created_at: "2026-03-01T00:00:00Z",
  updated_at: "2026-03-01T00:00:00Z",
  rotated_at: "2026-03-01T00:00:00Z",
  limiter_count: 3,
};

type Call = { url: string; method: string; headers: Record<string, string>; body: unknown };
let calls: Call[];
let answer: () => Response;
const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

beforeEach(() => {
  calls = [];
  answer = () => json(201, stored);
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    calls.push({ url, method: init.method ?? "GET", headers: init.headers as Record<string, string>, body: init.body ? JSON.parse(init.body as string) : undefined });
    return Promise.resolve(answer());
  });
  document.cookie = "budget_csrf=csrf-value";
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderForm(mode: CredentialFormMode, credential?: Credential) {
  const onSaved = vi.fn();
  const onOpenChange = vi.fn();
  render(<CredentialFormDialog open mode={mode} credential={credential} onOpenChange={onOpenChange} onSaved={onSaved} />);
  return { onSaved, onOpenChange };
}

describe("CredentialFormDialog", () => {
  it("creates a credential: the key is a password field, and the body carries the OpenAI headers", async () => {
    const user = userEvent.setup();
    const { onSaved, onOpenChange } = renderForm("create");
    const key = screen.getByLabelText("API key") as HTMLInputElement;
    expect(key.type).toBe("password");
    await user.click(screen.getByTestId("credential-form-submit"));
    expect(screen.getByTestId("field-error-name").textContent).toBe("Name is required.");
    expect(screen.getByTestId("field-error-api_key").textContent).toBe("The API key is required.");
    expect(calls).toEqual([]);
    await user.type(screen.getByLabelText("Name"), "openai-prod");
    await user.type(key, "sk-proj-abcdefwxyz");
    await user.type(screen.getByLabelText("Organization (optional)"), "org-1");
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalledWith(stored, "create"));
    expect(onOpenChange).toHaveBeenCalledWith(false);
    expect(calls).toHaveLength(1);
    expect([calls[0]!.method, calls[0]!.url, calls[0]!.headers["X-CSRF-Token"]]).toEqual(["POST", "/api/credentials", "csrf-value"]);
    expect(calls[0]!.body).toEqual({ name: "openai-prod", kind: "openai", api_key: "sk-proj-abcdefwxyz", organization: "org-1" });
    // Once saved the typed key is gone from the form, even before the dialog closes.
    expect(key.value).toBe("");
  });

  it("an Azure key has no organization or project fields", async () => {
    const user = userEvent.setup();
    const { onSaved } = renderForm("create");
    await user.selectOptions(screen.getByLabelText("Kind"), "azure");
    expect(screen.queryByLabelText("Organization (optional)")).toBeNull();
    await user.type(screen.getByLabelText("Name"), "azure-eu");
    await user.type(screen.getByLabelText("API key"), "0123456789abcdef");
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(calls[0]!.body).toEqual({ name: "azure-eu", kind: "azure", api_key: "0123456789abcdef" });
  });

  it("says plainly that the server has no SECRETS_KEY, and keeps the dialog open", async () => {
    const user = userEvent.setup();
    answer = () =>
      json(400, {
        error: { message: "SECRETS_KEY is not set, so upstream keys cannot be stored: set it to `openssl rand -base64 32`", type: "invalid_request_error", code: "secrets_key_missing" },
      });
    const { onSaved, onOpenChange } = renderForm("create");
    await user.type(screen.getByLabelText("Name"), "openai-prod");
    await user.type(screen.getByLabelText("API key"), "sk-proj-abcdefwxyz");
    await user.click(screen.getByTestId("credential-form-submit"));
    const alert = await screen.findByTestId("secrets-key-missing");
    expect(alert.textContent).toContain("SECRETS_KEY is not set");
    expect(alert.textContent).toContain("openssl rand -base64 32");
    expect(screen.queryByTestId("form-error")).toBeNull();
    expect(onSaved).not.toHaveBeenCalled();
    expect(onOpenChange).not.toHaveBeenCalled();
  });

  it("shows a taken name (409) under the name", async () => {
    const user = userEvent.setup();
    answer = () => json(409, { error: { message: 'conflict: a credential named "openai-prod" already exists', type: "invalid_request_error", code: "conflict" } });
    renderForm("create");
    await user.type(screen.getByLabelText("Name"), "openai-prod");
    await user.type(screen.getByLabelText("API key"), "sk-proj-abcdefwxyz");
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(screen.getByTestId("field-error-name").textContent).toBe('conflict: a credential named "openai-prod" already exists'));
  });

  it("rotating asks only for the new key and PUTs it alone", async () => {
    const user = userEvent.setup();
    answer = () => json(200, { ...stored, key_hint: "…9876" });
    const { onSaved } = renderForm("rotate", stored);
    expect(screen.queryByLabelText("Name")).toBeNull();
    expect(screen.getByText(/Every limiter using this credential \(3\) sends it from its next request\. Current key: …wxyz\./)).toBeTruthy();
    const key = screen.getByLabelText("New API key") as HTMLInputElement;
    expect(key.value).toBe("");
    expect(key.type).toBe("password");
    await user.type(key, "sk-proj-rotated9876");
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalledWith({ ...stored, key_hint: "…9876" }, "rotate"));
    expect([calls[0]!.method, calls[0]!.url]).toEqual(["PUT", `/api/credentials/${stored.id}`]);
    expect(calls[0]!.body).toEqual({ api_key: "sk-proj-rotated9876" });
  });

  it("editing renames and clears a header without touching the key; no change sends nothing", async () => {
    const user = userEvent.setup();
    answer = () => json(200, stored);
    const { onSaved } = renderForm("edit", stored);
    expect(screen.queryByLabelText("API key")).toBeNull();
    expect((screen.getByLabelText("Kind") as HTMLSelectElement).disabled).toBe(true);
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(onSaved).toHaveBeenCalledTimes(1));
    expect(calls).toEqual([]);
    cleanup();
    const second = renderForm("edit", stored);
    await user.clear(screen.getByLabelText("Name"));
    await user.type(screen.getByLabelText("Name"), "openai-main");
    await user.clear(screen.getByLabelText("Organization (optional)"));
    await user.click(screen.getByTestId("credential-form-submit"));
    await waitFor(() => expect(second.onSaved).toHaveBeenCalled());
    expect(calls[0]!.body).toEqual({ name: "openai-main", organization: null });
  });
});

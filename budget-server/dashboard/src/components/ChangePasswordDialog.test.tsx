// @vitest-environment jsdom
import { cleanup, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthProvider } from "../hooks/auth";
import { ChangePasswordDialog } from "./ChangePasswordDialog";

let bodies: unknown[];
const changed = vi.fn();

beforeEach(() => {
  bodies = [];
  changed.mockReset();
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    if (url !== "/api/auth/password") return new Response("{}", { status: 404 });
    const body = JSON.parse(String(init.body)) as { current_password: string };
    bodies.push(body);
    if (body.current_password !== "the-old-password")
      return new Response(
        JSON.stringify({ error: { message: "current_password: is not this account's password", type: "invalid_request_error", code: "validation_failed", field: "current_password" } }),
        { status: 422 },
      );
    return new Response(JSON.stringify({ token: "t", username: "vera", role: "viewer", expires_at: "2026-03-11T00:00:00Z" }), { status: 200 });
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe("ChangePasswordDialog", () => {
  it("checks the new password, shows a wrong current one at its field, then changes it", async () => {
    const user = userEvent.setup();
    render(
      <AuthProvider>
        <ChangePasswordDialog open onOpenChange={() => {}} onChanged={changed} />
      </AuthProvider>,
    );
    const dialog = await screen.findByTestId("change-password-dialog");
    await user.type(within(dialog).getByLabelText("Current password"), "wrong-password");
    await user.type(within(dialog).getByLabelText("New password"), "short");
    await user.click(within(dialog).getByTestId("change-password-submit"));
    expect(within(dialog).getByTestId("field-error-password").textContent).toMatch(/At least 12/);
    expect(bodies).toEqual([]);
    await user.clear(within(dialog).getByLabelText("New password"));
    await user.type(within(dialog).getByLabelText("New password"), "the-new-password");
    await user.type(within(dialog).getByLabelText("Repeat the new password"), "the-new-password");
    await user.click(within(dialog).getByTestId("change-password-submit"));
    await waitFor(() => expect(within(dialog).getByTestId("field-error-current").textContent).toMatch(/not this account's password/));
    expect(changed).not.toHaveBeenCalled();
    await user.clear(within(dialog).getByLabelText("Current password"));
    await user.type(within(dialog).getByLabelText("Current password"), "the-old-password");
    await user.click(within(dialog).getByTestId("change-password-submit"));
    await waitFor(() => expect(changed).toHaveBeenCalledTimes(1));
    expect(bodies[1]).toEqual({ current_password: "the-old-password", new_password: "the-new-password" });
  });
});

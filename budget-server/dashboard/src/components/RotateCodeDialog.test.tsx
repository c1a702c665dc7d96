// @vitest-environment jsdom
import { cleanup, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Limiter } from "../lib/api";
import { RotateCodeDialog } from "./RotateCodeDialog";

const limiter = {
  id: "6f1c2d4e-0000-4000-8000-000000000001",
  name: "Customer A",
  code: "sk-budget-0123456789abcdef0123456789abcdef",
  credential_id: null,
} as unknown as Limiter;
const rotated = { ...limiter, code: "sk-budget-fedcba9876543210fedcba9876543210", previous_code: { code: limiter.code, until: "2030-01-01T01:00:00Z" } } as Limiter;

type Call = { url: string; method: string; body: unknown };
let calls: Call[];
let answer: () => Response;

beforeEach(() => {
  calls = [];
  answer = () => new Response(JSON.stringify(rotated), { status: 200, headers: { "Content-Type": "application/json" } });
  vi.stubGlobal("fetch", (url: string, init: RequestInit) => {
    calls.push({ url, method: init.method ?? "GET", body: init.body ? JSON.parse(init.body as string) : undefined });
    return Promise.resolve(answer());
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function renderDialog() {
  const onRotated = vi.fn();
  const onOpenChange = vi.fn();
  render(<RotateCodeDialog limiter={limiter} onOpenChange={onOpenChange} onRotated={onRotated} />);
  return { onRotated, onOpenChange };
}

describe("RotateCodeDialog", () => {
  it("rotates at once by default (grace 0)", async () => {
    const user = userEvent.setup();
    const { onRotated, onOpenChange } = renderDialog();
    expect((screen.getByLabelText("The old code keeps working for") as HTMLSelectElement).value).toBe("0");
    await user.click(screen.getByTestId("confirm-rotate"));
    await waitFor(() => expect(onRotated).toHaveBeenCalledWith(rotated, 0));
    expect(onOpenChange).toHaveBeenCalledWith(false);
    expect(calls).toEqual([{ url: `/api/limiters/${limiter.id}/rotate-code`, method: "POST", body: { grace_seconds: 0 } }]);
  });

  it("sends the chosen preset", async () => {
    const user = userEvent.setup();
    const { onRotated } = renderDialog();
    await user.selectOptions(screen.getByLabelText("The old code keeps working for"), "86400");
    await user.click(screen.getByTestId("confirm-rotate"));
    await waitFor(() => expect(onRotated).toHaveBeenCalledWith(rotated, 86400));
    expect(calls[0]!.body).toEqual({ grace_seconds: 86400 });
  });

  it("checks custom seconds before sending, then sends them", async () => {
    const user = userEvent.setup();
    const { onRotated } = renderDialog();
    await user.selectOptions(screen.getByLabelText("The old code keeps working for"), "custom");
    const seconds = screen.getByLabelText("Grace period (seconds)");
    await user.type(seconds, "2592001");
    await user.click(screen.getByTestId("confirm-rotate"));
    expect(screen.getByTestId("field-error-grace_seconds").textContent).toMatch(/30 days/);
    expect(seconds.getAttribute("aria-invalid")).toBe("true");
    expect(calls).toEqual([]);
    await user.clear(seconds);
    await user.type(seconds, "7200");
    await user.click(screen.getByTestId("confirm-rotate"));
    await waitFor(() => expect(onRotated).toHaveBeenCalledWith(rotated, 7200));
    expect(calls[0]!.body).toEqual({ grace_seconds: 7200 });
  });

  it("shows the server's refusal and stays open", async () => {
    const user = userEvent.setup();
    answer = () => new Response(JSON.stringify({ error: { message: "grace_seconds: at most 2592000", type: "invalid_request_error", code: "validation_failed" } }), { status: 400 });
    const { onRotated, onOpenChange } = renderDialog();
    await user.click(screen.getByTestId("confirm-rotate"));
    await waitFor(() => expect(screen.getByTestId("rotate-error").textContent).toBe("grace_seconds: at most 2592000"));
    expect(onRotated).not.toHaveBeenCalled();
    expect(onOpenChange).not.toHaveBeenCalled();
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, errorFromResponse, getToken, setSession, setUnauthorizedHandler, withQuery } from "./api";

class MemoryStorage {
  private m = new Map<string, string>();
  getItem(k: string) {
    return this.m.has(k) ? this.m.get(k)! : null;
  }
  setItem(k: string, v: string) {
    this.m.set(k, v);
  }
  removeItem(k: string) {
    this.m.delete(k);
  }
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

beforeEach(() => {
  vi.stubGlobal("localStorage", new MemoryStorage());
});
afterEach(() => {
  vi.unstubAllGlobals();
  setUnauthorizedHandler(() => {});
});

describe("errorFromResponse", () => {
  it("reads the API's error shape, field included", async () => {
    const e = await errorFromResponse(
      json(422, { error: { message: "budget_limit: must be greater than 0", type: "invalid_request_error", code: "validation_failed", field: "budget_limit" } }),
    );
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(422);
    expect(e.message).toBe("budget_limit: must be greater than 0");
    expect(e.field).toBe("budget_limit");
    expect(e.code).toBe("validation_failed");
  });
  it("falls back to the text or status line", async () => {
    expect((await errorFromResponse(new Response("upstream down", { status: 502 }))).message).toBe("upstream down");
    expect((await errorFromResponse(new Response("", { status: 500, statusText: "Internal Server Error" }))).message).toBe("500 Internal Server Error");
  });
});

describe("request", () => {
  it("sends the bearer token", async () => {
    setSession("tok123", "admin");
    const fetchMock = vi.fn(async () => json(200, []));
    vi.stubGlobal("fetch", fetchMock);
    await api.limiters();
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/limiters");
    expect((init.headers as Record<string, string>).Authorization).toBe("Bearer tok123");
  });
  it("clears the token and calls the handler on 401", async () => {
    setSession("expired", "admin");
    vi.stubGlobal("fetch", vi.fn(async () => json(401, { error: { message: "token expired" } })));
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    await expect(api.stats()).rejects.toMatchObject({ status: 401, message: "token expired" });
    expect(getToken()).toBeNull();
    expect(handler).toHaveBeenCalledTimes(1);
  });
  it("does not treat a failed login as an expired session", async () => {
    setSession("still-here", "admin");
    vi.stubGlobal("fetch", vi.fn(async () => json(401, { error: { message: "invalid username or password" } })));
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    await expect(api.login("admin", "nope")).rejects.toMatchObject({ status: 401, message: "invalid username or password" });
    expect(handler).not.toHaveBeenCalled();
    expect(getToken()).toBe("still-here");
  });
  it("turns network failures into status 0 errors", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => { throw new TypeError("Failed to fetch"); }));
    await expect(api.limiters()).rejects.toMatchObject({ status: 0 });
  });
  it("returns undefined for 204", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => new Response(null, { status: 204 })));
    await expect(api.deleteLimiter("x")).resolves.toBeUndefined();
  });
});

describe("withQuery", () => {
  it("leaves out empty values and encodes the rest", () => {
    expect(withQuery("/api/stats", { from: undefined, limiter_id: "a b" })).toBe("/api/stats?limiter_id=a+b");
    expect(withQuery("/api/stats", {})).toBe("/api/stats");
  });
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, api, clearSession, errorFromResponse, getCsrfToken, getUsername, hasSession, setSession, setUnauthorizedHandler, withQuery } from "./api";

class MemoryStorage {
  m = new Map<string, string>();
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

/** `document.cookie` as a browser exposes it: reads list name=value pairs, writes set or (Max-Age=0) delete one. */
class CookieJar {
  jar = new Map<string, string>();
  writes: string[] = [];
  get cookie(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
  }
  set cookie(line: string) {
    this.writes.push(line);
    const [pair, ...attrs] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    if (attrs.some((a) => a.trim().toLowerCase() === "max-age=0")) this.jar.delete(name);
    else this.jar.set(name, pair.slice(eq + 1).trim());
  }
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

let storage: MemoryStorage;
let cookies: CookieJar;
/** What the server's login leaves in the browser: the HttpOnly token (invisible here) and the CSRF cookie. */
function signIn(csrf = "c5rf") {
  cookies.jar.set("budget_csrf", csrf);
  setSession("admin");
}

beforeEach(() => {
  storage = new MemoryStorage();
  cookies = new CookieJar();
  vi.stubGlobal("localStorage", storage);
  vi.stubGlobal("document", cookies);
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
  it("authenticates by the same-origin cookie, never an Authorization header", async () => {
    signIn();
    const fetchMock = vi.fn(async () => json(200, []));
    vi.stubGlobal("fetch", fetchMock);
    await api.limiters();
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(url).toBe("/api/limiters");
    expect(init.credentials).toBe("same-origin");
    expect((init.headers as Record<string, string>).Authorization).toBeUndefined();
    // Reads need no CSRF header.
    expect((init.headers as Record<string, string>)["X-CSRF-Token"]).toBeUndefined();
  });
  it("echoes the CSRF cookie on state-changing calls", async () => {
    signIn("f00d");
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", fetchMock);
    await api.deleteLimiter("x");
    await api.rotateCode("x").catch(() => {});
    for (const call of fetchMock.mock.calls) {
      const init = (call as unknown as [string, RequestInit])[1];
      expect((init.headers as Record<string, string>)["X-CSRF-Token"]).toBe("f00d");
    }
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });
  it("keeps the token the login returns out of storage and cookies it can write", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json(200, { token: "eyJ.secret.token", username: "admin", expires_at: "2030-01-01T00:00:00Z" })));
    const res = await api.login("admin", "pw");
    setSession(res.username);
    expect([...storage.m.values()].join(" ")).not.toContain("eyJ.secret.token");
    expect(cookies.writes.join(" ")).not.toContain("eyJ.secret.token");
    expect(getUsername()).toBe("admin");
  });
  it("forgets the session and calls the handler on 401", async () => {
    signIn();
    vi.stubGlobal("fetch", vi.fn(async () => json(401, { error: { message: "token expired" } })));
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    await expect(api.stats()).rejects.toMatchObject({ status: 401, message: "token expired" });
    expect(hasSession()).toBe(false);
    expect(getUsername()).toBeNull();
    expect(handler).toHaveBeenCalledTimes(1);
  });
  it("does not treat a failed login as an expired session", async () => {
    signIn("still-here");
    vi.stubGlobal("fetch", vi.fn(async () => json(401, { error: { message: "invalid username or password" } })));
    const handler = vi.fn();
    setUnauthorizedHandler(handler);
    await expect(api.login("admin", "nope")).rejects.toMatchObject({ status: 401, message: "invalid username or password" });
    expect(handler).not.toHaveBeenCalled();
    expect(getCsrfToken()).toBe("still-here");
  });
  it("logs out on the server, and clearSession deletes the CSRF cookie", async () => {
    signIn();
    const fetchMock = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", fetchMock);
    await api.logout();
    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect([url, init.method]).toEqual(["/api/auth/logout", "POST"]);
    clearSession();
    expect(hasSession()).toBe(false);
    expect(cookies.writes.at(-1)).toMatch(/^budget_csrf=; Path=\/; Max-Age=0/);
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

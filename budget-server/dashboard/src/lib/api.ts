// The admin API client (docs/admin-api.md). The session is an HttpOnly cookie set by the
// login (page scripts never see the token); state-changing calls echo the `budget_csrf`
// cookie in `X-CSRF-Token`. A 401 forgets the session and sends the user back to /login.

import type { AlertsQuery } from "./alerts";
import type { components, operations } from "./api-types";

// The API's types, generated from the server's OpenAPI document (`npm run gen:api`).
type Schemas = components["schemas"];
/**
 * A limiter. `credential_id`: the upstream key the server sends for it (null: the client's own
 * key passes through); `previous_code`: the code a rotation retired and `until` when it works.
 */
export type Limiter = Schemas["Limiter"];
export type LimiterStats = Schemas["LimiterStats"];
export type LimiterUsageRow = Schemas["LimiterUsageRow"];
export type OverallStats = Schemas["Overview"];
/** `key` is `null` for usage without a model or user (the API labels it "(none)"). */
export type BreakdownRow = Schemas["BreakdownRow"];
export type LoginResponse = Schemas["LoginResponse"];
export type LimiterCreate = Schemas["LimiterCreate"];
export type LimiterUpdate = Schemas["LimiterUpdate"];
export type BreakdownBy = Schemas["BreakdownBy"];
export type Bucket = Schemas["Bucket"];
/** One budget window of a limiter with its figures (`Limiter.windows`). */
export type WindowView = Schemas["WindowView"];
/** An end user of a limiter: spend against their budget (`GET /api/limiters/{id}/users`). */
export type UserView = Schemas["UserView"];
export type RefusalCounts = Schemas["RefusalCounts"];
export type BudgetWindow = Schemas["BudgetWindow"];

/** An upstream key held by the server: its name, kind, hint and fingerprint, never the key itself. */
export type Credential = Schemas["CredentialView"];
export type CredentialKind = Schemas["CredentialKind"];
export type CredentialCreate = Schemas["CredentialCreate"];
/** A new `api_key` is a rotation: every limiter using the credential sends it from its next request. */
export type CredentialUpdate = Schemas["CredentialUpdate"];
export type RotateCode = Schemas["RotateCode"];
/**
 * One admin action: who (`actor`), from where (`client`), what (`action`) and the changed
 * fields `before` → `after` (JSON objects; codes masked, upstream keys never included).
 */
export type AuditEntry = Schemas["AuditView"];
export type AuditQuery = NonNullable<operations["listAudit"]["parameters"]["query"]>;
/** `admin` (everything) or `viewer` (reads, codes masked, changes nothing but its own password). */
export type Role = Schemas["Role"];
/** A team account: never its password or hash. */
export type Account = Schemas["AccountView"];
export type AccountCreate = Schemas["AccountCreate"];
/** Any of role, disabled, password (a reset): a reset or disabling ends the account's sessions. */
export type AccountUpdate = Schemas["AccountUpdate"];
/** Who is signed in (`GET /api/auth/me`). */
export type Me = Schemas["MeView"];

/** The JSON body of an operation's answer with `status`, as the OpenAPI document describes it. */
export type Answer<Op extends keyof operations, Status extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][Status] extends { content: { "application/json": infer T } } ? T : never;

/** An error answer of the API, or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | null;
  readonly field: string | null;
  constructor(status: number, message: string, code: string | null = null, field: string | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

const USER_KEY = "budget.username";
/** The script-readable cookie holding the session's CSRF value (the token itself is HttpOnly). */
export const CSRF_COOKIE = "budget_csrf";
export const CSRF_HEADER = "X-CSRF-Token";

function readCookie(name: string): string | null {
  try {
    for (const part of document.cookie.split(";")) {
      const eq = part.indexOf("=");
      if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim()) || null;
    }
  } catch {
    // no document (tests) or cookies disabled
  }
  return null;
}

/** The session's CSRF value, or null when there is no session cookie pair. */
export function getCsrfToken(): string | null {
  return readCookie(CSRF_COOKIE);
}

/** True while the browser holds a session (its CSRF cookie lives exactly as long as the token). */
export function hasSession(): boolean {
  return getCsrfToken() !== null;
}

export function getUsername(): string | null {
  try {
    return localStorage.getItem(USER_KEY);
  } catch {
    return null;
  }
}

/** Remember who signed in (for the header); the token stays in its HttpOnly cookie. */
export function setSession(username: string): void {
  try {
    localStorage.setItem(USER_KEY, username);
  } catch {
    // storage disabled: the name is only cosmetic
  }
}

/** Forget the session on this side: the CSRF cookie and the name. The server's logout clears the HttpOnly cookie. */
export function clearSession(): void {
  try {
    const secure = typeof location !== "undefined" && location.protocol === "https:" ? "; Secure" : "";
    document.cookie = `${CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict${secure}`;
  } catch {
    // no document (tests)
  }
  try {
    localStorage.removeItem(USER_KEY);
  } catch {
    // storage disabled
  }
}

type UnauthorizedHandler = () => void;
let onUnauthorized: UnauthorizedHandler = () => {};

/** Called (once per 401) after the token has been cleared; the app navigates to /login. */
export function setUnauthorizedHandler(h: UnauthorizedHandler): void {
  onUnauthorized = h;
}

/** Reads `{"error":{"message","code","field"}}` (or anything else) into an ApiError. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText || "error"}`.trim();
  let code: string | null = null;
  let field: string | null = null;
  try {
    const text = await res.text();
    if (text) {
      try {
        const body = JSON.parse(text) as { error?: { message?: string; code?: string; field?: string } | string; message?: string };
        if (body && typeof body.error === "object" && body.error) {
          message = body.error.message ?? message;
          code = body.error.code ?? null;
          field = body.error.field ?? null;
        } else if (body && typeof body.error === "string") {
          message = body.error;
        } else if (body && typeof body.message === "string") {
          message = body.message;
        }
      } catch {
        message = text.slice(0, 300);
      }
    }
  } catch {
    // body unreadable: keep the status line
  }
  return new ApiError(res.status, message, code, field);
}

async function request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const csrf = getCsrfToken();
    if (csrf) headers[CSRF_HEADER] = csrf;
  }
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `Cannot reach the server (${e instanceof Error ? e.message : String(e)}).`);
  }
  if (!res.ok) {
    const err = await errorFromResponse(res);
    if (auth && res.status === 401) {
      clearSession();
      onUnauthorized();
    }
    throw err;
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Builds `path?k=v&…`, leaving out undefined values. */
export function withQuery(path: string, params: Record<string, string | number | boolean | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** The time range and limiter every statistics call takes. */
export type Range = NonNullable<operations["stats"]["parameters"]["query"]>;

/** `csv` (RFC 4180, one header row) or `jsonl` (one JSON object per line). */
export type ExportFormat = Schemas["ExportFormat"];
export type ExportQuery = NonNullable<operations["exportUsage"]["parameters"]["query"]>;

/**
 * The address of `GET /api/usage/export` for a range, limiter and format: the target of a plain
 * download link. The browser sends the session cookie with it and streams the file to disk,
 * so an export of millions of records never passes through the page's memory.
 */
export function usageExportUrl(q: ExportQuery): string {
  return withQuery("/api/usage/export", { from: q.from, to: q.to, limiter_id: q.limiter_id, format: q.format });
}

export const api = {
  login: (username: string, password: string) =>
    request<Answer<"login", 200>>("POST", "/api/auth/login", { username, password }, false),
  logout: () => request<void>("POST", "/api/auth/logout", undefined, false),
  limiters: () => request<Answer<"listLimiters", 200>>("GET", "/api/limiters"),
  /** Live and deleted limiters (the audit trail names both). */
  allLimiters: () => request<Answer<"listLimiters", 200>>("GET", withQuery("/api/limiters", { include_deleted: true })),
  limiter: (id: string) => request<Answer<"getLimiter", 200>>("GET", `/api/limiters/${encodeURIComponent(id)}`),
  createLimiter: (input: LimiterCreate) => request<Answer<"createLimiter", 201>>("POST", "/api/limiters", input),
  updateLimiter: (id: string, input: LimiterUpdate) =>
    request<Answer<"updateLimiter", 200>>("PUT", `/api/limiters/${encodeURIComponent(id)}`, input),
  deleteLimiter: (id: string) => request<void>("DELETE", `/api/limiters/${encodeURIComponent(id)}`),
  /** A new code; the old one keeps working for `graceSeconds` (0: stops at once). */
  rotateCode: (id: string, graceSeconds = 0) =>
    request<Answer<"rotateCode", 200>>("POST", `/api/limiters/${encodeURIComponent(id)}/rotate-code`, { grace_seconds: graceSeconds } satisfies RotateCode),
  limiterStats: (id: string) =>
    request<Answer<"limiterStats", 200>>("GET", `/api/limiters/${encodeURIComponent(id)}/stats`),
  limiterUsers: (id: string, limit = 20) =>
    request<Answer<"limiterUsers", 200>>("GET", withQuery(`/api/limiters/${encodeURIComponent(id)}/users`, { limit })),
  setUserBudget: (id: string, user: string, budget: BudgetWindow) =>
    request<Answer<"setUserBudget", 200>>("PUT", `/api/limiters/${encodeURIComponent(id)}/users/${encodeURIComponent(user)}`, budget),
  removeUserBudget: (id: string, user: string) =>
    request<void>("DELETE", `/api/limiters/${encodeURIComponent(id)}/users/${encodeURIComponent(user)}`),
  credentials: () => request<Answer<"listCredentials", 200>>("GET", "/api/credentials"),
  createCredential: (input: CredentialCreate) => request<Answer<"createCredential", 201>>("POST", "/api/credentials", input),
  updateCredential: (id: string, input: CredentialUpdate) =>
    request<Answer<"updateCredential", 200>>("PUT", `/api/credentials/${encodeURIComponent(id)}`, input),
  deleteCredential: (id: string) => request<void>("DELETE", `/api/credentials/${encodeURIComponent(id)}`),
  /** Who is signed in, with the role the server enforces. */
  me: () => request<Answer<"me", 200>>("GET", "/api/auth/me"),
  /** Change one's own password; the answer is a new session (every older token stops working). */
  changePassword: (current_password: string, new_password: string) =>
    request<Answer<"changePassword", 200>>("POST", "/api/auth/password", { current_password, new_password }),
  accounts: () => request<Answer<"listAccounts", 200>>("GET", "/api/accounts"),
  createAccount: (input: AccountCreate) => request<Answer<"createAccount", 201>>("POST", "/api/accounts", input),
  updateAccount: (id: string, input: AccountUpdate) =>
    request<Answer<"updateAccount", 200>>("PUT", `/api/accounts/${encodeURIComponent(id)}`, input),
  /** The audit trail, newest first. */
  audit: (q: AuditQuery = {}) =>
    request<Answer<"listAudit", 200>>("GET", withQuery("/api/audit", { limiter_id: q.limiter_id, actor: q.actor, from: q.from, to: q.to, limit: q.limit })),
  /** The server's alert settings and the outbox's events, newest first. */
  alerts: (q: AlertsQuery = {}) =>
    request<Answer<"listAlerts", 200>>("GET", withQuery("/api/alerts", { limiter_id: q.limiter_id, status: q.status, limit: q.limit })),
  stats: (r: Range = {}) => request<Answer<"stats", 200>>("GET", withQuery("/api/stats", { ...r })),
  timeseries: (bucket: Bucket, r: Range = {}) =>
    request<Answer<"timeseries", 200>>("GET", withQuery("/api/stats/timeseries", { bucket, ...r })),
  breakdown: (by: BreakdownBy, r: Range = {}, limit = 50) =>
    request<Answer<"breakdown", 200>>("GET", withQuery("/api/stats/breakdown", { by, limit, ...r })),
};

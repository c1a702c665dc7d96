// The admin API client (docs/admin-api.md). The session is an HttpOnly cookie set by the
// login (page scripts never see the token); state-changing calls echo the `budget_csrf`
// cookie in `X-CSRF-Token`. A 401 forgets the session and sends the user back to /login.

import type { LimiterInput } from "./validation";
import type { Bucket, TimeseriesPoint } from "./timeseries";

export interface Limiter {
  id: string;
  name: string;
  code: string;
  proxy_endpoint: string;
  budget_limit: number;
  period_type: string;
  timezone: string | null;
  base_url: string;
  provider: string;
  mode: string;
  unpriced: string;
  is_active: boolean;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  current_spend: number;
  remaining_budget: number;
  usage_percentage: number;
  period_start: string | null;
  period_end: string | null;
}

export interface LimiterStats {
  limiter_id: string;
  limiter_name: string;
  current_spend: number;
  budget_limit: number;
  remaining_budget: number;
  usage_percentage: number;
  total_requests: number;
  period_start: string | null;
  period_end: string | null;
  held?: number;
  in_flight?: number;
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  unpriced_requests?: number;
  estimated_requests?: number;
}

export interface LimiterUsageRow {
  limiter_id: string;
  limiter_name: string;
  is_active: boolean;
  is_deleted: boolean;
  requests: number;
  total_tokens: number;
  cost: number;
  current_spend: number;
  budget_limit: number;
  usage_percentage: number;
}

export interface OverallStats {
  total_requests: number;
  total_tokens: number;
  total_cost: number;
  active_users: number;
  unpriced_requests: number;
  estimated_requests: number;
  error_requests: number;
  limiters: LimiterUsageRow[];
}

export interface BreakdownRow {
  /** `null` for usage without a model or user (the API labels it "(none)"). */
  key: string | null;
  label: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
  unpriced_requests: number;
}

export interface LoginResponse {
  token: string;
  username: string;
  expires_at?: string;
}

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

export interface Range {
  from?: string;
  to?: string;
  limiter_id?: string;
}

export const api = {
  login: (username: string, password: string) =>
    request<LoginResponse>("POST", "/api/auth/login", { username, password }, false),
  logout: () => request<void>("POST", "/api/auth/logout", undefined, false),
  limiters: () => request<Limiter[]>("GET", "/api/limiters"),
  limiter: (id: string) => request<Limiter>("GET", `/api/limiters/${encodeURIComponent(id)}`),
  createLimiter: (input: LimiterInput) => request<Limiter>("POST", "/api/limiters", input),
  updateLimiter: (id: string, input: Partial<LimiterInput> & { is_active?: boolean }) =>
    request<Limiter>("PUT", `/api/limiters/${encodeURIComponent(id)}`, input),
  deleteLimiter: (id: string) => request<void>("DELETE", `/api/limiters/${encodeURIComponent(id)}`),
  rotateCode: (id: string) => request<Limiter>("POST", `/api/limiters/${encodeURIComponent(id)}/rotate-code`),
  limiterStats: (id: string) => request<LimiterStats>("GET", `/api/limiters/${encodeURIComponent(id)}/stats`),
  stats: (r: Range = {}) => request<OverallStats>("GET", withQuery("/api/stats", { ...r })),
  timeseries: (bucket: Bucket, r: Range = {}) =>
    request<TimeseriesPoint[]>("GET", withQuery("/api/stats/timeseries", { bucket, ...r })),
  breakdown: (by: "model" | "user" | "limiter", r: Range = {}, limit = 50) =>
    request<BreakdownRow[]>("GET", withQuery("/api/stats/breakdown", { by, limit, ...r })),
};

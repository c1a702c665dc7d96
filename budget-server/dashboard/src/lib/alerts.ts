// Threshold alerts in the dashboard: a limiter's alert settings as the form types them, their
// checks (the server's rules, budget_core::alert) and the Alerts page's labels and query. Kept
// free of React so they can be unit-tested.

import type { components, operations } from "./api-types";

type Schemas = components["schemas"];
/** A limiter's `alerts`: `null` follows the server's defaults. */
export type AlertSettings = Schemas["AlertSettings"];
/** The server's alert settings (`GET /api/alerts` → `defaults`). */
export type AlertDefaults = Schemas["AlertDefaults"];
/** One event in the outbox and how its delivery goes. */
export type AlertDelivery = Schemas["AlertDeliveryView"];
export type AlertKind = Schemas["AlertKind"];
export type DeliveryStatus = Schemas["DeliveryStatus"];
export type WebhookFormat = Schemas["WebhookFormat"];
export type AlertsQuery = NonNullable<operations["listAlerts"]["parameters"]["query"]>;

/** The server's limits (budget_core::alert). */
export const MAX_THRESHOLD = 1000;
export const MAX_THRESHOLDS = 10;
export const MAX_URL_LEN = 2048;

/** The alerts section of the limiter form, as typed. */
export interface AlertFormValues {
  /** Thresholds, webhook and format follow the server's (the switch "Use server defaults"). */
  use_defaults: boolean;
  /** Percentages separated by commas ("50, 80, 100"); empty: the server's; "off": none. */
  thresholds: string;
  /** Empty: the server's webhook. */
  webhook_url: string;
  format: WebhookFormat;
  /** No alerts at all for this limiter. */
  muted: boolean;
}

export type AlertFormErrors = Partial<Record<"thresholds" | "webhook_url", string>>;

export const EMPTY_ALERTS: AlertFormValues = { use_defaults: true, thresholds: "", webhook_url: "", format: "json", muted: false };

/** Words that turn threshold alerts off (sent as `[]`). */
const OFF = /^(off|none)$/i;

/** The form's values for a limiter's `alerts` (`null`: the server's defaults). */
export function alertValuesFrom(a: AlertSettings | null | undefined): AlertFormValues {
  if (!a) return EMPTY_ALERTS;
  const thresholds = a.thresholds === null || a.thresholds === undefined ? "" : a.thresholds.length === 0 ? "off" : a.thresholds.join(", ");
  const webhook_url = a.webhook_url ?? "";
  return {
    use_defaults: thresholds === "" && webhook_url === "",
    thresholds,
    webhook_url,
    format: a.format ?? "json",
    muted: a.muted ?? false,
  };
}

/**
 * The thresholds typed ("50, 80%, 100"): `null` when blank (the server's), `[]` for "off", the
 * numbers otherwise; a string saying why when they break the server's rules (whole
 * percentages from 1 to 1000, ascending without repeats, at most 10).
 */
export function parseThresholds(s: string): number[] | null | string {
  const text = s.trim();
  if (!text) return null;
  if (OFF.test(text)) return [];
  const parts = text.split(/[,\s]+/).filter((p) => p !== "");
  if (parts.length > MAX_THRESHOLDS) return `At most ${MAX_THRESHOLDS} thresholds.`;
  const out: number[] = [];
  for (const p of parts) {
    const m = /^(\d+)%?$/.exec(p);
    const n = m ? Number(m[1]) : Number.NaN;
    if (!Number.isInteger(n) || n < 1 || n > MAX_THRESHOLD) return `"${p}": each threshold is a whole percentage from 1 to ${MAX_THRESHOLD}.`;
    if (out.length > 0 && n <= out[out.length - 1]!) return "Thresholds must be in ascending order, without repeats (e.g. 50, 80, 100).";
    out.push(n);
  }
  return out;
}

/** Why a webhook URL would be refused (the server's rules), or null. */
export function webhookUrlProblem(u: string): string | null {
  if (u.length > MAX_URL_LEN) return `At most ${MAX_URL_LEN} characters.`;
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return "Not a URL: use http:// or https://host/path.";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "Must be an http:// or https:// URL.";
  if (!url.hostname) return "Must name a host.";
  if (url.username || url.password) return "Must not carry a user name or password (put a token in the path or query).";
  if (u.includes("#")) return "Must not have a #fragment.";
  return null;
}

/** The section's problems; empty when it can be sent. */
export function validateAlerts(v: AlertFormValues): AlertFormErrors {
  const errors: AlertFormErrors = {};
  if (v.use_defaults) return errors;
  const t = parseThresholds(v.thresholds);
  if (typeof t === "string") errors.thresholds = t;
  const url = v.webhook_url.trim();
  if (url) {
    const p = webhookUrlProblem(url);
    if (p) errors.webhook_url = p;
  }
  return errors;
}

/**
 * The `alerts` a valid section sends: `null` when it follows the server in everything (and is
 * not muted), so the limiter keeps tracking the server's settings.
 */
export function toAlertSettings(v: AlertFormValues): AlertSettings | null {
  const t = v.use_defaults ? null : parseThresholds(v.thresholds);
  const thresholds = typeof t === "string" ? null : t;
  const url = v.use_defaults ? "" : v.webhook_url.trim();
  if (thresholds === null && !url && !v.muted) return null;
  const out: AlertSettings = { muted: v.muted };
  if (thresholds !== null) out.thresholds = thresholds;
  if (url) {
    out.webhook_url = url;
    out.format = v.format;
  }
  return out;
}

/** Maps a server-side field (`alerts.webhook_url`) onto the section's field, else null. */
export function alertFieldFor(field: string | null | undefined): keyof AlertFormErrors | null {
  if (field === "alerts.thresholds") return "thresholds";
  if (field === "alerts.webhook_url") return "webhook_url";
  return null;
}

/** "80%, 100%" for the server's thresholds; "none" when empty. */
export function thresholdsLabel(t: readonly number[]): string {
  return t.length === 0 ? "none" : t.map((p) => `${p}%`).join(", ");
}

const KIND_LABELS: Record<AlertKind, string> = {
  threshold_crossed: "Threshold reached",
  exhausted: "Budget exhausted",
  deactivated: "Deactivated",
  expired: "Expired",
  deleted: "Deleted",
};

/** "Threshold reached" for `threshold_crossed`; an unknown kind shows as sent. */
export function kindLabel(kind: string): string {
  return KIND_LABELS[kind as AlertKind] ?? kind;
}

export const STATUSES = ["pending", "delivered", "failed"] as const satisfies readonly DeliveryStatus[];

/** A status's badge: delivered green, pending amber, failed red. */
export function statusTone(status: string): "success" | "warning" | "destructive" | "secondary" {
  if (status === "delivered") return "success";
  if (status === "pending") return "warning";
  if (status === "failed") return "destructive";
  return "secondary";
}

/** Rows per "Load more", and the most the API gives at once. */
export const ALERTS_PAGE = 50;
export const ALERTS_MAX = 1000;

/** The page's filters (blank: all). */
export interface AlertsFilter {
  limiterId: string;
  status: string;
  limit: number;
}

/** The `GET /api/alerts` query of the page's filters. */
export function alertsQuery(f: AlertsFilter): AlertsQuery {
  return {
    limiter_id: f.limiterId || undefined,
    status: (STATUSES as readonly string[]).includes(f.status) ? (f.status as DeliveryStatus) : undefined,
    limit: Math.min(ALERTS_MAX, Math.max(1, f.limit)),
  };
}

/** The limit after "Load more". */
export function nextAlertsLimit(limit: number): number {
  return Math.min(ALERTS_MAX, limit + ALERTS_PAGE);
}

/** True when the answer filled the limit (older events may exist) and the API can give more. */
export function mayHaveMoreAlerts(rows: number, limit: number): boolean {
  return rows >= limit && limit < ALERTS_MAX;
}

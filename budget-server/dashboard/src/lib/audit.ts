// The audit page's pure parts: action labels, the "field: before → after" lines of an entry,
// and the query its filters make. Kept free of React so they can be unit-tested.

import type { AuditEntry, AuditQuery, Credential, Limiter } from "./api";
import { rangeById, type RangeId } from "./ranges";

const ACTION_LABELS: Record<string, string> = {
  "login.succeeded": "Signed in",
  "login.failed": "Login failed",
  "limiter.create": "Limiter created",
  "limiter.update": "Limiter changed",
  "limiter.delete": "Limiter deleted",
  "limiter.purge": "Limiter purged",
  "limiter.rotate_code": "Code rotated",
  "limiter.user_override.set": "User budget set",
  "limiter.user_override.remove": "User budget removed",
  "credential.create": "Key added",
  "credential.update": "Key edited",
  "credential.rotate": "Key rotated",
  "credential.delete": "Key deleted",
};

/** "Code rotated" for `limiter.rotate_code`; an action this dashboard does not know shows as sent. */
export function actionLabel(action: string): string {
  return ACTION_LABELS[action] ?? action;
}

/** How an action's badge looks: failed logins stand out, removals are marked. */
export function actionTone(action: string): "destructive" | "warning" | "secondary" {
  if (action === "login.failed") return "destructive";
  if (/\.(delete|purge|remove)$/.test(action)) return "warning";
  return "secondary";
}

/** A value as one line: scalars as they are, `null` as "none", anything else as JSON. */
export function formatAuditValue(v: unknown): string {
  if (v === null || v === undefined) return "none";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

/**
 * One changed field. `before` is absent for a field that came with a creation, `after` for
 * one that went with a deletion.
 */
export interface ChangeLine {
  field: string;
  before?: string;
  after?: string;
}

type Fields = Record<string, unknown>;
const isFields = (v: unknown): v is Fields => typeof v === "object" && v !== null && !Array.isArray(v);
const isEmpty = (v: unknown) => v === null || v === undefined || (Array.isArray(v) && v.length === 0) || (isFields(v) && Object.keys(v).length === 0);
/** Fields that say nothing about what was made or changed (`updated_at` changes with every update). */
const BOOKKEEPING = new Set(["id", "created_at", "updated_at", "deleted_at"]);
/** Fields that name a thing come first; the rest keep the server's order. */
const FIRST = ["name", "kind", "key_hint", "budget_limit", "period_type"];
const byPriority = (a: string, b: string) => (FIRST.indexOf(a) + 1 || FIRST.length + 1) - (FIRST.indexOf(b) + 1 || FIRST.length + 1);
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * The lines of an entry's change. Both sides present (an update): every field whose value
 * differs, `before → after` (not the update's own timestamp). Only `after` (a creation): its fields, leaving out empty ones and
 * ids and timestamps. Only `before` (a deletion): likewise.
 */
export function changeLines(before: unknown, after: unknown): ChangeLine[] {
  const hasB = before !== null && before !== undefined;
  const hasA = after !== null && after !== undefined;
  if (!hasB && !hasA) return [];
  if ((hasB && !isFields(before)) || (hasA && !isFields(after))) {
    if (hasB && hasA && same(before, after)) return [];
    return [{ field: "value", ...(hasB ? { before: formatAuditValue(before) } : {}), ...(hasA ? { after: formatAuditValue(after) } : {}) }];
  }
  const b = hasB ? (before as Fields) : null;
  const a = hasA ? (after as Fields) : null;
  if (b && a) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])].sort(byPriority);
    return keys.filter((k) => !BOOKKEEPING.has(k) && !same(b[k], a[k])).map((k) => ({ field: k, before: formatAuditValue(b[k]), after: formatAuditValue(a[k]) }));
  }
  const only = (a ?? b)!;
  return Object.entries(only)
    .sort(([x], [y]) => byPriority(x, y))
    .filter(([k, v]) => !BOOKKEEPING.has(k) && !isEmpty(v))
    .map(([k, v]) => (a ? { field: k, after: formatAuditValue(v) } : { field: k, before: formatAuditValue(v) }));
}

/** The page's filters. `actor` is matched exactly by the server; blank means everyone. */
export interface AuditFilter {
  limiterId: string;
  actor: string;
  rangeId: RangeId;
  limit: number;
}

/** Rows per "Load more", and the most the API gives at once. */
export const AUDIT_PAGE = 100;
export const AUDIT_MAX = 1000;

/** The `GET /api/audit` query of `f`, with the range ending `now`. */
export function auditQuery(f: AuditFilter, now: number): AuditQuery {
  const range = rangeById(f.rangeId);
  const actor = f.actor.trim();
  return {
    limiter_id: f.limiterId || undefined,
    actor: actor || undefined,
    from: range && range.ms !== null ? new Date(now - range.ms).toISOString() : undefined,
    limit: Math.min(AUDIT_MAX, Math.max(1, f.limit)),
  };
}

/** The limit after "Load more". */
export function nextLimit(limit: number): number {
  return Math.min(AUDIT_MAX, limit + AUDIT_PAGE);
}

/** True when the answer filled the limit, so older entries may exist, and the API can give more. */
export function mayHaveMore(rows: number, limit: number): boolean {
  return rows >= limit && limit < AUDIT_MAX;
}

/** The limiter an entry concerns, by name when it is known (deleted ones included). */
export function limiterLabel(id: string | null | undefined, limiters: readonly Pick<Limiter, "id" | "name">[] | undefined): string | null {
  if (!id) return null;
  return limiters?.find((l) => l.id === id)?.name ?? id;
}

const nameIn = (v: unknown): string | null => (isFields(v) && typeof v.name === "string" ? v.name : null);

/**
 * The names of the upstream keys entries concern: the current list's, else the last name an
 * entry recorded (a rotation records no name; the key's creation or deletion does).
 */
export function credentialNames(
  entries: readonly Pick<AuditEntry, "action" | "target" | "before" | "after">[],
  credentials: readonly Pick<Credential, "id" | "name">[] | undefined,
): Map<string, string> {
  const names = new Map<string, string>();
  // Newest first: the first name met is the latest.
  for (const e of entries) {
    if (!e.target || !e.action.startsWith("credential.") || names.has(e.target)) continue;
    const name = nameIn(e.after) ?? nameIn(e.before);
    if (name) names.set(e.target, name);
  }
  for (const c of credentials ?? []) names.set(c.id, c.name);
  return names;
}

/** The other object an entry concerns: an upstream key by name when known, an end user by id. */
export function targetLabel(e: Pick<AuditEntry, "action" | "target">, credentialNames: ReadonlyMap<string, string>): string | null {
  if (!e.target) return null;
  if (e.action.startsWith("credential.")) return `key ${credentialNames.get(e.target) ?? e.target}`;
  if (e.action.startsWith("limiter.user_override.")) return `user ${e.target}`;
  return e.target;
}

/** "Dec 1, 2026, 23:52:41" in the browser's time zone (`timeZone` is for tests). */
export function formatAuditTime(iso: string, timeZone?: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat("en-US", {
    month: "short",
    day: "numeric",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZone,
  }).format(d);
}

/** "2026-12-01 23:52:41 UTC": the hover text of a time. */
export function utcTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// Upstream credentials (keys the server holds and sends for a limiter) and code rotation:
// form checks mirroring the server's (budget_core::credential, budget-server's secrets.rs),
// request bodies, and the grace period of a rotated limiter code.

import { ApiError, type Credential, type CredentialCreate, type CredentialKind, type CredentialUpdate } from "./api";
import { formatDuration } from "./countdown";
import { formatDateTime } from "./format";

export const CREDENTIAL_KINDS: readonly CredentialKind[] = ["openai", "azure"];
export const CREDENTIAL_NAME_MAX = 100;
export const API_KEY_MIN = 8;
export const API_KEY_MAX = 1024;
export const HEADER_MAX = 200;

/** "OpenAI" / "Azure OpenAI". */
export function kindLabel(kind: string): string {
  return kind === "azure" ? "Azure OpenAI" : "OpenAI";
}

/** The credential form as typed. `api_key` is empty when editing without rotating. */
export interface CredentialFormValues {
  name: string;
  kind: string;
  api_key: string;
  organization: string;
  project: string;
}

export type CredentialFormErrors = Partial<Record<keyof CredentialFormValues, string>>;

export const EMPTY_CREDENTIAL: CredentialFormValues = { name: "", kind: "openai", api_key: "", organization: "", project: "" };

/** The form opened on an existing credential (the key is never known to the dashboard). */
export function credentialValues(c: Credential): CredentialFormValues {
  return { name: c.name, kind: c.kind, api_key: "", organization: c.organization ?? "", project: c.project ?? "" };
}

/** Why `key` cannot be an upstream key, or null. The message never repeats the key. */
export function apiKeyProblem(key: string): string | null {
  if (!key) return "The API key is required.";
  if (/^bearer\s/i.test(key)) return "Give the key itself, without “Bearer ”.";
  if (key.length < API_KEY_MIN || key.length > API_KEY_MAX) return `The key must be ${API_KEY_MIN} to ${API_KEY_MAX} characters.`;
  if (!/^[\x21-\x7e]+$/.test(key)) return "The key must be visible ASCII characters without spaces.";
  return null;
}

function headerProblem(v: string, what: string): string | null {
  if (!v) return null;
  if (v.length > HEADER_MAX || !/^[\x21-\x7e]+$/.test(v)) return `${what} must be 1 to ${HEADER_MAX} printable ASCII characters without spaces.`;
  return null;
}

/**
 * Checks the form. `keyRequired`: creating or rotating (the key field is shown and needed);
 * when editing the name or headers it is not sent at all.
 */
export function validateCredentialForm(v: CredentialFormValues, keyRequired: boolean): CredentialFormErrors {
  const errors: CredentialFormErrors = {};
  const name = v.name.trim();
  if (!name) errors.name = "Name is required.";
  else if ([...name].length > CREDENTIAL_NAME_MAX) errors.name = `Name must be at most ${CREDENTIAL_NAME_MAX} characters.`;
  else if (!/^[\p{L}\p{N}._\- ]+$/u.test(name)) errors.name = "Use letters, digits, spaces, '.', '_' or '-'.";
  if (!(CREDENTIAL_KINDS as readonly string[]).includes(v.kind)) errors.kind = "Choose OpenAI or Azure OpenAI.";
  if (keyRequired) {
    const p = apiKeyProblem(v.api_key.trim());
    if (p) errors.api_key = p;
  }
  if (v.kind === "openai") {
    const o = headerProblem(v.organization.trim(), "The organization");
    if (o) errors.organization = o;
    const p = headerProblem(v.project.trim(), "The project");
    if (p) errors.project = p;
  }
  return errors;
}

/** The body of `POST /api/credentials` for a valid form (organization and project only for OpenAI, and only when set). */
export function toCredentialCreate(v: CredentialFormValues): CredentialCreate {
  const body: CredentialCreate = { name: v.name.trim(), kind: v.kind as CredentialKind, api_key: v.api_key.trim() };
  if (v.kind === "openai") {
    if (v.organization.trim()) body.organization = v.organization.trim();
    if (v.project.trim()) body.project = v.project.trim();
  }
  return body;
}

/** The body of `PUT /api/credentials/{id}`: what changed, a cleared header as null, the key only when one was typed. */
export function toCredentialUpdate(c: Credential, v: CredentialFormValues): CredentialUpdate {
  const body: CredentialUpdate = {};
  if (v.name.trim() !== c.name) body.name = v.name.trim();
  if (v.api_key.trim()) body.api_key = v.api_key.trim();
  if (c.kind === "openai") {
    const org = v.organization.trim() || null;
    const project = v.project.trim() || null;
    if (org !== (c.organization ?? null)) body.organization = org;
    if (project !== (c.project ?? null)) body.project = project;
  }
  return body;
}

/** Maps a server-side field name onto a form field (unknown ones go to the form itself). */
export function credentialFieldFor(field: string | null | undefined): keyof CredentialFormValues | null {
  const keys: (keyof CredentialFormValues)[] = ["name", "kind", "api_key", "organization", "project"];
  return field && (keys as string[]).includes(field) ? (field as keyof CredentialFormValues) : null;
}

/** The server was started without SECRETS_KEY, so it refuses to store a key (400 naming the setting). */
export function isSecretsKeyMissing(e: unknown): boolean {
  return e instanceof ApiError && e.status === 400 && (e.code === "secrets_key_missing" || /SECRETS_KEY/.test(e.message));
}

/** The longest grace period the server accepts for an old code (30 days). */
export const GRACE_MAX_SECONDS = 2_592_000;

/** The grace periods offered when rotating a code; `custom` asks for seconds. */
export const GRACE_CHOICES = [
  { id: "0", label: "None: the old code stops at once", seconds: 0 },
  { id: "3600", label: "1 hour", seconds: 3600 },
  { id: "86400", label: "1 day", seconds: 86_400 },
  { id: "604800", label: "7 days", seconds: 604_800 },
  { id: "custom", label: "Custom (seconds)", seconds: null },
] as const;
export type GraceChoice = (typeof GRACE_CHOICES)[number]["id"];

/** The grace period in seconds for a choice (and the typed seconds for `custom`), or an error message. */
export function graceSeconds(choice: GraceChoice, custom: string): { seconds: number } | { error: string } {
  const preset = GRACE_CHOICES.find((c) => c.id === choice);
  if (preset && preset.seconds !== null) return { seconds: preset.seconds };
  const t = custom.trim();
  if (!/^\d+$/.test(t)) return { error: "Enter a whole number of seconds, e.g. 7200." };
  const n = Number(t);
  if (n > GRACE_MAX_SECONDS) return { error: `At most ${GRACE_MAX_SECONDS.toLocaleString("en-US")} seconds (30 days).` };
  return { seconds: n };
}

/**
 * "Old code works until Mar 10, 2026, 14:05 (1h 00m left)" while the code a rotation retired
 * still works (`Limiter.previous_code.until`); null without one or once it has expired.
 * `timeZone` is for tests.
 */
export function previousCodeText(expiresAt: string | null | undefined, now: number, timeZone?: string): string | null {
  if (!expiresAt) return null;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at) || at <= now) return null;
  return `Old code works until ${formatDateTime(expiresAt, timeZone)} (${formatDuration(at - now)} left)`;
}

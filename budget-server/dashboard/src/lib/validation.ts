// Client-side validation of the create / edit limiter form. The server validates again and
// its 422 answers name the field (`error.field`), which the form shows in the same place.

import type { components } from "./api-types";

type Schemas = components["schemas"];
export type Period = Schemas["Period"];
export type Provider = Schemas["Provider"];
export type Mode = Schemas["EnforcementMode"];
export type Unpriced = Schemas["UnpricedPolicy"];
export type Unmetered = Schemas["UnmeteredPolicy"];

/** Every value of the API's enum `T`, in the form's order: a missing or unknown one fails to typecheck. */
function every<T extends string>() {
  return <const L extends readonly T[]>(list: L & ([T] extends [L[number]] ? unknown : never)) => list;
}

export const PERIODS = every<Period>()(["minute", "hour", "day", "week", "month", "year"]);
export const PROVIDERS = every<Provider>()(["openai", "azure"]);
export const MODES = every<Mode>()(["soft", "strict"]);
export const UNPRICED = every<Unpriced>()(["admit", "refuse"]);
/** `server` follows the server's UNMETERED_ENDPOINTS (sent as `null`). */
export const UNMETERED = ["server", ...every<Unmetered>()(["refuse", "allow"])] as const;

export const NAME_MAX = 200;
/** The server's limits on policies (budget_core::policy). */
export const EXTRA_BUDGETS_MAX = 8;
export const ALLOWED_MODELS_MAX = 100;

/** One budget window as typed: an amount and a period. */
export interface WindowValues {
  budget_limit: string;
  period_type: string;
}

/** The form as typed: strings straight from the inputs. */
export interface LimiterFormValues {
  name: string;
  budget_limit: string;
  period_type: string;
  base_url: string;
  provider: string;
  mode: string;
  unpriced: string;
  unmetered_endpoints: string;
  timezone: string;
  /** Extra windows, one row each. */
  extra_budgets: WindowValues[];
  /** Each end user's budget; an empty amount means none. */
  user_budget: WindowValues;
  require_user: boolean;
  /** Model names and `*` globs, separated by commas or new lines. */
  allowed_models: string;
  /** Dollars; empty means no cap. */
  max_request_cost: string;
  cap_output_tokens: boolean;
  /** A `datetime-local` value in the browser's time zone; empty means never. */
  expires_at: string;
  /** The upstream credential the server sends; empty: the client's own key passes through. */
  credential_id: string;
}

export type BudgetWindow = Schemas["BudgetWindow"];

/** The JSON body sent to POST/PUT /api/limiters. */
export interface LimiterInput {
  name: string;
  budget_limit: number;
  period_type: Period;
  base_url: string;
  provider: Provider;
  mode: Mode;
  unpriced: Unpriced;
  unmetered_endpoints: Unmetered | null;
  timezone?: string;
  extra_budgets?: BudgetWindow[];
  user_budget?: BudgetWindow | null;
  require_user?: boolean;
  allowed_models?: string[];
  max_request_cost?: number | null;
  cap_output_tokens?: boolean;
  expires_at?: string | null;
  credential_id?: string | null;
}

export type FormErrors = Partial<Record<keyof LimiterFormValues, string>>;

export const EMPTY_FORM: LimiterFormValues = {
  name: "",
  budget_limit: "",
  period_type: "day",
  base_url: "https://api.openai.com",
  provider: "openai",
  mode: "soft",
  unpriced: "admit",
  unmetered_endpoints: "server",
  timezone: "",
  extra_budgets: [],
  user_budget: { budget_limit: "", period_type: "day" },
  require_user: false,
  allowed_models: "",
  max_request_cost: "",
  cap_output_tokens: true,
  expires_at: "",
  credential_id: "",
};

/** Splits the allowed-models text on commas and new lines, dropping blanks. */
export function parseModels(s: string): string[] {
  return s
    .split(/[,\n]/)
    .map((m) => m.trim())
    .filter((m) => m !== "");
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** A `datetime-local` value ("2026-12-31T23:59", browser's time zone) as RFC 3339 UTC; null when not a date. */
export function localToRfc3339(local: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(local.trim())) return null;
  const d = new Date(local.trim());
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.000Z$/, "Z");
}

/** An RFC 3339 instant as a `datetime-local` value in the browser's time zone (minutes). */
export function rfc3339ToLocal(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}T${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** Why `s` is not a dollar amount above $0 (`what` names it), or null. */
function amountProblem(s: string, what: string): string | null {
  const b = parseBudget(s);
  if (Number.isNaN(b)) return `${what} must be a number of dollars, e.g. 20 or 0.50.`;
  if (!(b > 0)) return `${what} must be greater than $0.`;
  if (b > 1e9) return `${what} is too large.`;
  return null;
}

/** Whether `tz` is an IANA time zone this browser knows ("UTC", "Europe/Berlin"). */
export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Parses a budget typed as "20", "20.5", "$1,000.00". NaN when it is not a number. */
export function parseBudget(s: string): number {
  const cleaned = s.trim().replace(/^(-?)\$/, "$1").replace(/,/g, "");
  if (!/^-?(\d+(\.\d*)?|\.\d+)$/.test(cleaned)) return Number.NaN;
  return Number(cleaned);
}

/** What the form needs to know of an upstream credential to check the choice. */
export interface CredentialChoice {
  id: string;
  kind: string;
}

/**
 * Checks the form. `credentials`, when known, catches a key of the wrong kind for the
 * provider (an OpenAI key sent to Azure, or an Azure `api-key` sent to OpenAI, never works).
 */
export function validateLimiterForm(v: LimiterFormValues, credentials?: readonly CredentialChoice[]): FormErrors {
  const errors: FormErrors = {};
  const name = v.name.trim();
  if (!name) errors.name = "Name is required.";
  else if ([...name].length > NAME_MAX) errors.name = `Name must be at most ${NAME_MAX} characters.`;

  if (!v.budget_limit.trim()) errors.budget_limit = "Budget is required.";
  else {
    const b = parseBudget(v.budget_limit);
    if (Number.isNaN(b)) errors.budget_limit = "Budget must be a number of dollars, e.g. 20 or 0.50.";
    else if (!(b > 0)) errors.budget_limit = "Budget must be greater than $0.";
    else if (b > 1e9) errors.budget_limit = "Budget is too large.";
  }

  if (!(PERIODS as readonly string[]).includes(v.period_type)) errors.period_type = "Choose a period.";

  const url = v.base_url.trim();
  if (!url) errors.base_url = "Base URL is required.";
  else {
    let parsed: URL | null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:") || !parsed.hostname)
      errors.base_url = "Base URL must be an http:// or https:// URL.";
  }

  if (!(PROVIDERS as readonly string[]).includes(v.provider)) errors.provider = "Choose OpenAI or Azure OpenAI.";
  if (!(MODES as readonly string[]).includes(v.mode)) errors.mode = "Choose soft or strict.";
  if (!(UNPRICED as readonly string[]).includes(v.unpriced)) errors.unpriced = "Choose admit or refuse.";
  if (!(UNMETERED as readonly string[]).includes(v.unmetered_endpoints))
    errors.unmetered_endpoints = "Choose the server's setting, refuse or allow.";

  const tz = v.timezone.trim();
  if (tz && !isValidTimeZone(tz)) errors.timezone = "Unknown time zone (use an IANA name such as Europe/Berlin).";

  const extra = validateExtraBudgets(v.extra_budgets, v.period_type);
  if (extra) errors.extra_budgets = extra;

  if (v.user_budget.budget_limit.trim()) {
    const p = amountProblem(v.user_budget.budget_limit, "The per-user budget");
    if (p) errors.user_budget = p;
    else if (!(PERIODS as readonly string[]).includes(v.user_budget.period_type)) errors.user_budget = "Choose the per-user budget's period.";
  }

  const models = parseModels(v.allowed_models);
  if (models.length > ALLOWED_MODELS_MAX) errors.allowed_models = `At most ${ALLOWED_MODELS_MAX} models.`;
  else {
    const bad = models.find((m) => /\s/.test(m) || [...m].length > 256);
    if (bad !== undefined) errors.allowed_models = `"${bad}": a model name has no spaces (separate names with commas or new lines).`;
  }

  if (v.max_request_cost.trim()) {
    const p = amountProblem(v.max_request_cost, "The max request cost");
    if (p) errors.max_request_cost = p;
  }

  if (v.expires_at.trim() && localToRfc3339(v.expires_at) === null) errors.expires_at = "Expiry must be a date and time.";

  const chosen = v.credential_id ? credentials?.find((c) => c.id === v.credential_id) : undefined;
  if (chosen && chosen.kind !== v.provider)
    errors.credential_id =
      chosen.kind === "azure" ? "This is an Azure OpenAI key; the limiter's provider is OpenAI." : "This is an OpenAI key; the limiter's provider is Azure OpenAI.";
  return errors;
}

/** Why the extra windows are invalid (the server's rules), or null. */
function validateExtraBudgets(rows: WindowValues[], primary: string): string | null {
  if (rows.length > EXTRA_BUDGETS_MAX) return `At most ${EXTRA_BUDGETS_MAX} extra windows.`;
  const seen = new Set<string>();
  for (const [i, w] of rows.entries()) {
    const n = `Window ${i + 1}`;
    if (!w.budget_limit.trim()) return `${n}: the amount is required.`;
    const p = amountProblem(w.budget_limit, `${n}'s amount`);
    if (p) return p;
    if (!(PERIODS as readonly string[]).includes(w.period_type)) return `${n}: choose a period.`;
    if (w.period_type === primary) return `${n}: ${w.period_type} is already the limiter's own period; pick another.`;
    if (seen.has(w.period_type)) return `${n}: ${w.period_type} appears twice.`;
    seen.add(w.period_type);
  }
  return null;
}

const windowOf = (w: WindowValues): BudgetWindow => ({ budget_limit: parseBudget(w.budget_limit), period_type: w.period_type as Period });

/** Every policy field of a valid form as the API reads it, clearing values included. */
function policiesOf(v: LimiterFormValues) {
  return {
    extra_budgets: v.extra_budgets.map(windowOf),
    user_budget: v.user_budget.budget_limit.trim() ? windowOf(v.user_budget) : null,
    require_user: v.require_user,
    allowed_models: parseModels(v.allowed_models),
    max_request_cost: v.max_request_cost.trim() ? parseBudget(v.max_request_cost) : null,
    cap_output_tokens: v.cap_output_tokens,
    expires_at: v.expires_at.trim() ? localToRfc3339(v.expires_at) : null,
  };
}

/** The request body for a valid form. */
export function toLimiterInput(v: LimiterFormValues): LimiterInput {
  const input: LimiterInput = {
    name: v.name.trim(),
    budget_limit: parseBudget(v.budget_limit),
    period_type: v.period_type as Period,
    base_url: v.base_url.trim(),
    provider: v.provider as Provider,
    mode: v.mode as Mode,
    unpriced: v.unpriced as Unpriced,
    unmetered_endpoints: v.unmetered_endpoints === "server" ? null : (v.unmetered_endpoints as Unmetered),
  };
  const tz = v.timezone.trim();
  if (tz) input.timezone = tz;
  // Policies go in only when set, so a plain limiter's body stays as small as before.
  const p = policiesOf(v);
  if (p.extra_budgets.length > 0) input.extra_budgets = p.extra_budgets;
  if (p.user_budget) input.user_budget = p.user_budget;
  if (p.require_user) input.require_user = true;
  if (p.allowed_models.length > 0) input.allowed_models = p.allowed_models;
  if (p.max_request_cost !== null) input.max_request_cost = p.max_request_cost;
  if (!p.cap_output_tokens) input.cap_output_tokens = false;
  if (p.expires_at) input.expires_at = p.expires_at;
  if (v.credential_id) input.credential_id = v.credential_id;
  return input;
}

/**
 * The body of `PUT /api/limiters/{id}` for an edited form: only the fields that differ from
 * `initial` (the form as opened). A cleared policy is sent as the API documents its removal:
 * `null` for user_budget, max_request_cost and expires_at, `[]` for the lists; a cleared time
 * zone goes back to UTC.
 */
export function toLimiterUpdate(initial: LimiterFormValues, v: LimiterFormValues): Partial<LimiterInput> {
  const full = (x: LimiterFormValues): Record<string, unknown> => {
    const { timezone, ...rest } = toLimiterInput(x);
    return { ...rest, timezone: timezone ?? "UTC", ...policiesOf(x), credential_id: x.credential_id || null };
  };
  const before = full(initial);
  const after = full(v);
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(after)) if (JSON.stringify(value) !== JSON.stringify(before[k])) out[k] = value;
  return out as Partial<LimiterInput>;
}

/** Maps a server-side field name onto a form field (unknown fields go to the form itself). */
export function formFieldFor(field: string | null | undefined): keyof LimiterFormValues | null {
  if (!field) return null;
  const keys: (keyof LimiterFormValues)[] = [
    "name", "budget_limit", "period_type", "base_url", "provider", "mode", "unpriced", "unmetered_endpoints", "timezone",
    "extra_budgets", "user_budget", "require_user", "allowed_models", "max_request_cost", "cap_output_tokens", "expires_at",
    "credential_id",
  ];
  return (keys as string[]).includes(field) ? (field as keyof LimiterFormValues) : null;
}

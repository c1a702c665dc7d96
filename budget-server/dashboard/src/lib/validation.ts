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
}

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
};

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

export function validateLimiterForm(v: LimiterFormValues): FormErrors {
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
  return errors;
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
  return input;
}

/** Maps a server-side field name onto a form field (unknown fields go to the form itself). */
export function formFieldFor(field: string | null | undefined): keyof LimiterFormValues | null {
  if (!field) return null;
  const keys: (keyof LimiterFormValues)[] = [
    "name", "budget_limit", "period_type", "base_url", "provider", "mode", "unpriced", "unmetered_endpoints", "timezone",
  ];
  return (keys as string[]).includes(field) ? (field as keyof LimiterFormValues) : null;
}

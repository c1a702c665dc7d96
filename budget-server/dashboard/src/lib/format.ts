// Number formatting shared by every page. Kept free of React so it can be unit-tested.

const GROUP = /\B(?=(\d{3})+(?!\d))/g;

/** Inserts thousands separators into a string of digits. */
function group(digits: string): string {
  return digits.replace(GROUP, ",");
}

/**
 * Formats dollars the way the server does: at least two decimals, more only when needed to
 * show the amount exactly, up to nine (the server counts money in nano-dollars).
 *
 *   formatMoney(20)        → "$20.00"
 *   formatMoney(1234.56)   → "$1,234.56"
 *   formatMoney(0.000021)  → "$0.000021"
 *   formatMoney(-1.5)      → "-$1.50"
 */
export function formatMoney(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  // toFixed rounds half away from zero on the decimal representation, up to 1e21.
  let fixed = Math.abs(n).toFixed(9);
  const [int, fracDigits] = fixed.split(".") as [string, string];
  let frac = fracDigits.replace(/0+$/, "");
  if (frac.length < 2) frac = frac.padEnd(2, "0");
  const negative = n < 0 && (/[1-9]/.test(int) || /[1-9]/.test(frac));
  fixed = `${group(int)}.${frac}`;
  return `${negative ? "-" : ""}$${fixed}`;
}

/** A money amount rounded to cents, for axis ticks and compact places: "$1,234.57". */
export function formatMoneyShort(n: number): string {
  if (!Number.isFinite(n)) return "—";
  if (n !== 0 && Math.abs(n) < 0.01) return formatMoney(Number(n.toPrecision(2)));
  const s = Math.abs(n).toFixed(2);
  const [int, frac] = s.split(".") as [string, string];
  return `${n < 0 ? "-" : ""}$${group(int)}.${frac}`;
}

/**
 * A percentage with one decimal: 26.25 → "26.3%". Values that are not zero but round to
 * zero show as "<0.1%", so a tiny spend is never reported as none.
 */
export function formatPercent(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  if (n > 0 && n < 0.05) return "<0.1%";
  const s = n.toFixed(1);
  const [int, frac] = s.split(".") as [string, string];
  const neg = int.startsWith("-");
  return `${neg ? "-" : ""}${group(neg ? int.slice(1) : int)}.${frac}%`;
}

/** An integer count with thousands separators: 1234567 → "1,234,567". */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const r = Math.round(n);
  const s = group(String(Math.abs(r)));
  return r < 0 ? `-${s}` : s;
}

/** Compact count for chart axes: 1500 → "1.5k", 2300000 → "2.3M". */
export function formatCompact(n: number): string {
  const a = Math.abs(n);
  const sign = n < 0 ? "-" : "";
  const fmt = (v: number, unit: string) => `${sign}${Number(v.toFixed(1))}${unit}`;
  if (a >= 1e9) return fmt(a / 1e9, "B");
  if (a >= 1e6) return fmt(a / 1e6, "M");
  if (a >= 1e3) return fmt(a / 1e3, "k");
  return `${sign}${Number(a.toFixed(1))}`;
}

const PERIOD_LABEL: Record<string, string> = {
  minute: "per minute",
  hour: "per hour",
  day: "per day",
  week: "per week",
  month: "per month",
  year: "per year",
};

/** "per day" for "day"; unknown periods are shown as given. */
export function periodLabel(period: string): string {
  return PERIOD_LABEL[period] ?? `per ${period}`;
}

/** A timestamp as a short local date-time: "Oct 10, 14:05". `timeZone` is for tests. */
export function formatDateTime(iso: string | null | undefined, timeZone?: string): string {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat("en-US", {
    month: "short",
    day: "numeric",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZone,
  }).format(d);
}

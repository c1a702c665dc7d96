// Refused requests (issue 16): readable reasons and one-line summaries.
import type { RefusalCounts } from "./api";
import { formatCount } from "./format";

/** The server's reasons in display order, with their labels. */
export const REFUSAL_REASONS = [
  ["budget", "Over budget"],
  ["inactive", "Inactive"],
  ["expired", "Expired"],
  ["model_rule", "Model not allowed"],
  ["price_guard", "Price guard"],
  ["unknown_endpoint", "Unknown endpoint"],
  ["other", "Other"],
] as const;

const LABEL: Record<string, string> = Object.fromEntries(REFUSAL_REASONS);

/** A reason's label; a reason this dashboard does not know yet shows as sent. */
export function refusalLabel(reason: string): string {
  return LABEL[reason] ?? reason;
}

/** The reasons with refusals, known ones in display order, then any others, with counts. */
export function refusalBreakdown(r: RefusalCounts | null | undefined): { reason: string; label: string; count: number }[] {
  const by = r?.by_reason ?? {};
  const known = REFUSAL_REASONS.map(([k]) => k as string);
  const order = [...known, ...Object.keys(by).filter((k) => !known.includes(k)).sort()];
  return order.filter((k) => (by[k] ?? 0) > 0).map((k) => ({ reason: k, label: refusalLabel(k), count: by[k]! }));
}

/** "Over budget 3, Inactive 1", or "" without refusals. */
export function refusalSummary(r: RefusalCounts | null | undefined): string {
  return refusalBreakdown(r)
    .map((x) => `${x.label} ${formatCount(x.count)}`)
    .join(", ");
}

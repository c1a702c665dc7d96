// Usage levels: the colour of a usage bar.

export type UsageLevel = "ok" | "warning" | "exceeded";

/** green below 75 %, amber below 100 %, red from 100 % on. */
export function usageLevel(percent: number): UsageLevel {
  if (!Number.isFinite(percent) || percent < 75) return "ok";
  if (percent < 100) return "warning";
  return "exceeded";
}

/** Usage in percent from spend and budget (0 when the budget is not positive). */
export function usagePercent(spend: number, budget: number): number {
  if (!(budget > 0) || !Number.isFinite(spend)) return 0;
  return (spend / budget) * 100;
}

/** The width of a bar in percent, clamped to [0, 100]; a non-zero spend shows at least a sliver. */
export function barWidth(percent: number): number {
  if (!Number.isFinite(percent) || percent <= 0) return 0;
  return Math.min(100, Math.max(percent, 1));
}

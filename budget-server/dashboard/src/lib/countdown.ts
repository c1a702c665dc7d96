// "Time until reset" text for a limiter's current window.

/**
 * Formats a remaining duration with its two most significant units:
 * 2 d 4 h, 3 h 12 m, 12 m 05 s, 45 s. Zero or negative gives "now".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return "now";
  const total = Math.ceil(ms / 1000);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

/** "Resets in 3h 12m" from the window's end and the current time. */
export function resetText(periodEnd: string | null | undefined, now: number): string {
  if (!periodEnd) return "No active window";
  const end = Date.parse(periodEnd);
  if (Number.isNaN(end)) return "No active window";
  const left = end - now;
  if (left <= 0) return "Resetting now";
  return `Resets in ${formatDuration(left)}`;
}

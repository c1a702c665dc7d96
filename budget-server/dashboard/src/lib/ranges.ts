// The time ranges offered by the statistics and audit pages.
import type { Bucket } from "./timeseries";

export const RANGES = [
  { id: "1h", label: "Last hour", ms: 3_600_000, bucket: "minute" },
  { id: "24h", label: "Last 24 hours", ms: 86_400_000, bucket: "hour" },
  { id: "7d", label: "Last 7 days", ms: 7 * 86_400_000, bucket: "hour" },
  { id: "30d", label: "Last 30 days", ms: 30 * 86_400_000, bucket: "day" },
  { id: "all", label: "All time", ms: null, bucket: "day" },
] as const satisfies readonly { id: string; label: string; ms: number | null; bucket: Bucket }[];

export type RangeId = (typeof RANGES)[number]["id"];

export function rangeById(id: string): (typeof RANGES)[number] | undefined {
  return RANGES.find((r) => r.id === id);
}

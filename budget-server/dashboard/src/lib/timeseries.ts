// Spend-over-time helpers: which bucket to ask for and how to fill the gaps the API leaves.

import type { components } from "./api-types";

export type Bucket = components["schemas"]["Bucket"];
export type TimeseriesPoint = components["schemas"]["TimeseriesPoint"];

export interface ChartPoint {
  t: number; // bucket start, ms since the epoch
  requests: number;
  total_tokens: number;
  cost: number;
}

const MS: Record<Bucket, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** A bucket that gives a readable number of points for a window of the given period. */
export function bucketForPeriod(period: string): Bucket {
  switch (period) {
    case "minute":
    case "hour":
      return "minute";
    case "day":
    case "week":
      return "hour";
    default:
      return "day";
  }
}

/** Floors `t` to the start of its UTC bucket. */
export function floorToBucket(t: number, bucket: Bucket): number {
  return Math.floor(t / MS[bucket]) * MS[bucket];
}

/**
 * Turns the API's sparse buckets into a dense series from `from` to `to` (both floored to
 * the bucket), with zero points where the API left empty buckets out. At most `maxPoints`
 * points are produced; beyond that the sparse points are returned as they are.
 */
export function fillBuckets(
  points: readonly TimeseriesPoint[],
  bucket: Bucket,
  from: number,
  to: number,
  maxPoints = 2000,
): ChartPoint[] {
  const step = MS[bucket];
  const byStart = new Map<number, ChartPoint>();
  for (const p of points) {
    const t = Date.parse(p.start);
    if (Number.isNaN(t)) continue;
    const k = floorToBucket(t, bucket);
    const prev = byStart.get(k);
    byStart.set(k, {
      t: k,
      requests: (prev?.requests ?? 0) + p.requests,
      total_tokens: (prev?.total_tokens ?? 0) + p.total_tokens,
      cost: (prev?.cost ?? 0) + p.cost,
    });
  }
  const start = floorToBucket(Math.min(from, ...byStart.keys()), bucket);
  const end = floorToBucket(Math.max(to, ...byStart.keys()), bucket);
  if (!Number.isFinite(start) || !Number.isFinite(end) || (end - start) / step + 1 > maxPoints) {
    return [...byStart.values()].sort((a, b) => a.t - b.t);
  }
  const out: ChartPoint[] = [];
  for (let t = start; t <= end; t += step) {
    out.push(byStart.get(t) ?? { t, requests: 0, total_tokens: 0, cost: 0 });
  }
  return out;
}

/** Axis label for a bucket start, in the browser's time zone unless one is given. */
export function bucketLabel(t: number, bucket: Bucket, timeZone?: string): string {
  const opts: Intl.DateTimeFormatOptions =
    bucket === "day"
      ? { month: "short", day: "numeric", timeZone }
      : { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone };
  return new Intl.DateTimeFormat("en-US", opts).format(new Date(t));
}

const MIN_SPAN: Record<Bucket, number> = { minute: 3_600_000, hour: 86_400_000, day: 30 * 86_400_000 };

/**
 * Where a limiter's spend chart starts: the start of its current window, or earlier so the
 * chart always spans a readable stretch (an hour of minutes, a day of hours, 30 days).
 */
export function chartFrom(bucket: Bucket, periodStart: string | null | undefined, now: number): number {
  const minimum = floorToBucket(now - MIN_SPAN[bucket], bucket);
  const start = periodStart ? Date.parse(periodStart) : Number.NaN;
  if (Number.isNaN(start)) return minimum;
  return Math.min(floorToBucket(start, bucket), minimum);
}

import { describe, expect, it } from "vitest";
import { bucketForPeriod, bucketLabel, chartFrom, fillBuckets, floorToBucket } from "./timeseries";

const H = 3_600_000;

describe("bucketForPeriod", () => {
  it("chooses readable buckets", () => {
    expect(bucketForPeriod("minute")).toBe("minute");
    expect(bucketForPeriod("hour")).toBe("minute");
    expect(bucketForPeriod("day")).toBe("hour");
    expect(bucketForPeriod("week")).toBe("hour");
    expect(bucketForPeriod("month")).toBe("day");
    expect(bucketForPeriod("year")).toBe("day");
  });
});

describe("fillBuckets", () => {
  const from = Date.parse("2025-10-10T00:00:00Z");
  it("fills the gaps the API leaves with zeros", () => {
    const out = fillBuckets(
      [
        { start: "2025-10-10T01:00:00Z", requests: 2, total_tokens: 30, cost: 0.5 },
        { start: "2025-10-10T03:00:00Z", requests: 1, total_tokens: 10, cost: 0.25 },
      ],
      "hour",
      from,
      from + 4 * H + 1234,
    );
    expect(out.map((p) => p.cost)).toEqual([0, 0.5, 0, 0.25, 0]);
    expect(out[0]!.t).toBe(from);
    expect(out.at(-1)!.t).toBe(from + 4 * H);
  });
  it("extends the range to points outside it and merges points in one bucket", () => {
    const out = fillBuckets(
      [
        { start: "2025-10-09T23:00:00Z", requests: 1, total_tokens: 1, cost: 1 },
        { start: "2025-10-10T00:10:00Z", requests: 1, total_tokens: 1, cost: 1 },
        { start: "2025-10-10T00:50:00Z", requests: 1, total_tokens: 1, cost: 2 },
      ],
      "hour",
      from,
      from,
    );
    expect(out.map((p) => [p.t - from, p.cost, p.requests])).toEqual([
      [-H, 1, 1],
      [0, 3, 2],
    ]);
  });
  it("returns the sparse points when the dense series would be too long", () => {
    const out = fillBuckets([{ start: "2025-10-10T00:00:00Z", requests: 1, total_tokens: 1, cost: 1 }], "minute", from, from + 10 * 86_400_000, 100);
    expect(out).toHaveLength(1);
  });
  it("handles no points", () => {
    expect(fillBuckets([], "hour", from, from + 2 * H)).toHaveLength(3);
  });
});

describe("floorToBucket and bucketLabel", () => {
  it("floors to UTC buckets", () => {
    expect(floorToBucket(Date.parse("2025-10-10T13:45:12Z"), "hour")).toBe(Date.parse("2025-10-10T13:00:00Z"));
    expect(floorToBucket(Date.parse("2025-10-10T13:45:12Z"), "day")).toBe(Date.parse("2025-10-10T00:00:00Z"));
  });
  it("labels by bucket size", () => {
    expect(bucketLabel(Date.parse("2025-10-10T13:00:00Z"), "hour", "UTC")).toBe("13:00");
    expect(bucketLabel(Date.parse("2025-10-10T13:00:00Z"), "day", "UTC")).toBe("Oct 10");
  });
});

describe("chartFrom", () => {
  const now = Date.parse("2025-10-10T20:47:30Z");
  it("starts at the window start when that is long enough ago", () => {
    expect(chartFrom("hour", "2025-10-06T00:00:00Z", now)).toBe(Date.parse("2025-10-06T00:00:00Z"));
  });
  it("spans at least a minimum stretch", () => {
    expect(chartFrom("hour", "2025-10-10T00:00:00Z", now)).toBe(Date.parse("2025-10-09T20:00:00Z"));
    expect(chartFrom("minute", "2025-10-10T20:47:00Z", now)).toBe(Date.parse("2025-10-10T19:47:00Z"));
    expect(chartFrom("day", null, now)).toBe(Date.parse("2025-09-10T00:00:00Z"));
  });
});

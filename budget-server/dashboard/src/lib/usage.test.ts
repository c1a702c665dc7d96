import { describe, expect, it } from "vitest";
import { barWidth, usageLevel, usagePercent } from "./usage";

describe("usageLevel", () => {
  it("is green below 75%", () => {
    expect(usageLevel(0)).toBe("ok");
    expect(usageLevel(74.99)).toBe("ok");
  });
  it("is amber from 75% to below 100%", () => {
    expect(usageLevel(75)).toBe("warning");
    expect(usageLevel(99.999)).toBe("warning");
  });
  it("is red from 100% on", () => {
    expect(usageLevel(100)).toBe("exceeded");
    expect(usageLevel(250)).toBe("exceeded");
  });
});

describe("usagePercent and barWidth", () => {
  it("computes usage", () => {
    expect(usagePercent(5.25, 20)).toBeCloseTo(26.25);
    expect(usagePercent(1, 0)).toBe(0);
  });
  it("clamps and keeps a sliver for small non-zero usage", () => {
    expect(barWidth(0)).toBe(0);
    expect(barWidth(0.2)).toBe(1);
    expect(barWidth(50)).toBe(50);
    expect(barWidth(180)).toBe(100);
    expect(barWidth(Number.NaN)).toBe(0);
  });
});

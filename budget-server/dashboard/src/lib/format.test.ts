import { describe, expect, it } from "vitest";
import { formatCompact, formatCount, formatDateTime, formatMoney, formatMoneyShort, formatPercent, periodLabel } from "./format";

describe("formatMoney", () => {
  it("shows at least two decimals", () => {
    expect(formatMoney(20)).toBe("$20.00");
    expect(formatMoney(0)).toBe("$0.00");
    expect(formatMoney(20.5)).toBe("$20.50");
    expect(formatMoney(5.25)).toBe("$5.25");
  });
  it("groups thousands", () => {
    expect(formatMoney(1234.56)).toBe("$1,234.56");
    expect(formatMoney(1234567.891)).toBe("$1,234,567.891");
    expect(formatMoney(1000)).toBe("$1,000.00");
    expect(formatMoney(999)).toBe("$999.00");
  });
  it("shows more decimals only when needed, up to nine", () => {
    expect(formatMoney(0.000021)).toBe("$0.000021");
    expect(formatMoney(0.000000075)).toBe("$0.000000075");
    expect(formatMoney(0.0000000001)).toBe("$0.00");
    expect(formatMoney(0.0000000016)).toBe("$0.000000002");
    expect(formatMoney(1.1)).toBe("$1.10");
  });
  it("hides float noise", () => {
    expect(formatMoney(0.1 + 0.2)).toBe("$0.30");
    expect(formatMoney(20.5 - 0.000225)).toBe("$20.499775");
  });
  it("puts the sign before the dollar", () => {
    expect(formatMoney(-1.5)).toBe("-$1.50");
    expect(formatMoney(-0.0000000001)).toBe("$0.00");
  });
  it("shows a dash for missing values", () => {
    expect(formatMoney(undefined)).toBe("—");
    expect(formatMoney(null)).toBe("—");
    expect(formatMoney(Number.NaN)).toBe("—");
  });
});

describe("formatMoneyShort", () => {
  it("rounds to cents, with two significant digits below a cent", () => {
    expect(formatMoneyShort(1234.567)).toBe("$1,234.57");
    expect(formatMoneyShort(0)).toBe("$0.00");
    expect(formatMoneyShort(0.000226)).toBe("$0.00023");
  });
});

describe("formatPercent", () => {
  it("uses one decimal", () => {
    expect(formatPercent(26.25)).toBe("26.3%");
    expect(formatPercent(102.5)).toBe("102.5%");
    expect(formatPercent(0)).toBe("0.0%");
    expect(formatPercent(100)).toBe("100.0%");
    expect(formatPercent(12345.6)).toBe("12,345.6%");
  });
  it("never shows a tiny non-zero usage as zero", () => {
    expect(formatPercent(0.0225)).toBe("<0.1%");
    expect(formatPercent(0.05)).toBe("0.1%");
  });
  it("shows a dash for missing values", () => {
    expect(formatPercent(undefined)).toBe("—");
  });
});

describe("formatCount", () => {
  it("groups thousands and rounds", () => {
    expect(formatCount(0)).toBe("0");
    expect(formatCount(999)).toBe("999");
    expect(formatCount(1500)).toBe("1,500");
    expect(formatCount(1234567)).toBe("1,234,567");
    expect(formatCount(-1234)).toBe("-1,234");
    expect(formatCount(2.6)).toBe("3");
  });
});

describe("formatCompact", () => {
  it("abbreviates", () => {
    expect(formatCompact(950)).toBe("950");
    expect(formatCompact(1500)).toBe("1.5k");
    expect(formatCompact(2_300_000)).toBe("2.3M");
    expect(formatCompact(1_000_000_000)).toBe("1B");
  });
});

describe("periodLabel and formatDateTime", () => {
  it("labels periods", () => {
    expect(periodLabel("day")).toBe("per day");
    expect(periodLabel("month")).toBe("per month");
    expect(periodLabel("fortnight")).toBe("per fortnight");
  });
  it("formats times in the given zone", () => {
    expect(formatDateTime("2025-10-10T00:00:00Z", "UTC")).toBe("Oct 10, 2025, 00:00");
    expect(formatDateTime("2025-10-10T00:00:00Z", "Europe/Berlin")).toBe("Oct 10, 2025, 02:00");
    expect(formatDateTime(null)).toBe("—");
    expect(formatDateTime("garbage")).toBe("garbage");
  });
});

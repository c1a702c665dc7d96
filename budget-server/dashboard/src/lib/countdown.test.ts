import { describe, expect, it } from "vitest";
import { formatDuration, resetText } from "./countdown";

describe("formatDuration", () => {
  it("shows the two most significant units", () => {
    expect(formatDuration(45_000)).toBe("45s");
    expect(formatDuration(12 * 60_000 + 5_000)).toBe("12m 05s");
    expect(formatDuration(3 * 3_600_000 + 12 * 60_000)).toBe("3h 12m");
    expect(formatDuration(2 * 86_400_000 + 4 * 3_600_000 + 59_000)).toBe("2d 4h");
  });
  it("rounds partial seconds up so it never shows 0s before the end", () => {
    expect(formatDuration(1)).toBe("1s");
    expect(formatDuration(59_001)).toBe("1m 00s");
  });
  it("is now for zero or negative", () => {
    expect(formatDuration(0)).toBe("now");
    expect(formatDuration(-5)).toBe("now");
  });
});

describe("resetText", () => {
  const now = Date.parse("2025-10-10T20:47:30Z");
  it("counts down to the end of the window", () => {
    expect(resetText("2025-10-11T00:00:00Z", now)).toBe("Resets in 3h 12m");
    expect(resetText("2025-10-10T20:48:00Z", now)).toBe("Resets in 30s");
  });
  it("handles past and missing ends", () => {
    expect(resetText("2025-10-10T20:00:00Z", now)).toBe("Resetting now");
    expect(resetText(null, now)).toBe("No active window");
    expect(resetText("nope", now)).toBe("No active window");
  });
});

import { describe, expect, it } from "vitest";
import { alertFieldFor, alertsQuery, alertValuesFrom, EMPTY_ALERTS, mayHaveMoreAlerts, nextAlertsLimit, parseThresholds, toAlertSettings, validateAlerts, webhookUrlProblem } from "./alerts";

describe("alert settings", () => {
  it("parses thresholds as the server checks them", () => {
    expect(parseThresholds("")).toBeNull();
    expect(parseThresholds("  ")).toBeNull();
    expect(parseThresholds("off")).toEqual([]);
    expect(parseThresholds("None")).toEqual([]);
    expect(parseThresholds("50, 80%,100 1000")).toEqual([50, 80, 100, 1000]);
    expect(parseThresholds("80, 50")).toMatch(/ascending/);
    expect(parseThresholds("50, 50")).toMatch(/without repeats/);
    expect(parseThresholds("0")).toMatch(/from 1 to 1000/);
    expect(parseThresholds("1001")).toMatch(/from 1 to 1000/);
    expect(parseThresholds("-5")).toMatch(/from 1 to 1000/);
    expect(parseThresholds("eighty")).toMatch(/"eighty"/);
    expect(parseThresholds("1 2 3 4 5 6 7 8 9 10")).toHaveLength(10);
    expect(parseThresholds("1 2 3 4 5 6 7 8 9 10 11")).toBe("At most 10 thresholds.");
  });

  it("checks webhook URLs as the server does", () => {
    expect(webhookUrlProblem("https://hooks.slack.com/services/T/B/x")).toBeNull();
    expect(webhookUrlProblem("http://127.0.0.1:9000/hook?token=a")).toBeNull();
    expect(webhookUrlProblem("mailto:a@b.c")).toMatch(/http/);
    expect(webhookUrlProblem("https://a:b@x.example")).toMatch(/user name/);
    expect(webhookUrlProblem("https://x.example/#a")).toMatch(/fragment/);
    expect(webhookUrlProblem(`https://x.example/${"a".repeat(2048)}`)).toMatch(/2048/);
  });

  it("sends null for the server's defaults, and reads back what it sent", () => {
    expect(toAlertSettings(EMPTY_ALERTS)).toBeNull();
    // Custom fields left blank are the server's too.
    expect(toAlertSettings({ ...EMPTY_ALERTS, use_defaults: false })).toBeNull();
    // Values typed, then "use defaults" turned back on, are not sent.
    expect(toAlertSettings({ ...EMPTY_ALERTS, use_defaults: true, thresholds: "5", webhook_url: "https://x.example/h" })).toBeNull();
    expect(validateAlerts({ ...EMPTY_ALERTS, use_defaults: true, thresholds: "bad" })).toEqual({});
    expect(toAlertSettings({ ...EMPTY_ALERTS, muted: true })).toEqual({ muted: true });
    const own = { use_defaults: false, thresholds: "50, 90", webhook_url: " https://x.example/h ", format: "slack" as const, muted: false };
    const sent = toAlertSettings(own);
    expect(sent).toEqual({ thresholds: [50, 90], webhook_url: "https://x.example/h", format: "slack", muted: false });
    expect(alertValuesFrom(sent)).toEqual({ ...own, webhook_url: "https://x.example/h" });
    expect(alertValuesFrom(null)).toEqual(EMPTY_ALERTS);
    expect(alertValuesFrom({ thresholds: [], muted: false })).toMatchObject({ use_defaults: false, thresholds: "off" });
    expect(alertValuesFrom({ muted: true })).toMatchObject({ use_defaults: true, muted: true });
  });

  it("maps the server's fields and builds the page's query", () => {
    expect(alertFieldFor("alerts.thresholds")).toBe("thresholds");
    expect(alertFieldFor("alerts.webhook_url")).toBe("webhook_url");
    expect(alertFieldFor("name")).toBeNull();
    expect(alertsQuery({ limiterId: "", status: "", limit: 50 })).toEqual({ limiter_id: undefined, status: undefined, limit: 50 });
    expect(alertsQuery({ limiterId: "x", status: "failed", limit: 5000 })).toEqual({ limiter_id: "x", status: "failed", limit: 1000 });
    expect(alertsQuery({ limiterId: "", status: "bogus", limit: 0 }).status).toBeUndefined();
    expect(nextAlertsLimit(50)).toBe(100);
    expect(nextAlertsLimit(990)).toBe(1000);
    expect(mayHaveMoreAlerts(50, 50)).toBe(true);
    expect(mayHaveMoreAlerts(49, 50)).toBe(false);
    expect(mayHaveMoreAlerts(1000, 1000)).toBe(false);
  });
});

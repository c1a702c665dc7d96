import { describe, expect, it } from "vitest";
import { actionLabel, actionTone, auditQuery, changeLines, credentialNames, formatAuditTime, formatAuditValue, limiterLabel, mayHaveMore, nextLimit, targetLabel, utcTime } from "./audit";

describe("changeLines", () => {
  it("lists an update's changed fields as before → after, values JSON when not scalar", () => {
    expect(
      changeLines(
        { budget_limit: 5, is_active: true, allowed_models: [], credential_id: null, code: "sk-budget-3f9c…" },
        { budget_limit: 7.5, is_active: false, allowed_models: ["gpt-4o"], credential_id: "c1", code: "sk-budget-a1b2…" },
      ),
    ).toEqual([
      { field: "budget_limit", before: "5", after: "7.5" },
      { field: "is_active", before: "true", after: "false" },
      { field: "allowed_models", before: "[]", after: '["gpt-4o"]' },
      { field: "credential_id", before: "none", after: "c1" },
      { field: "code", before: "sk-budget-3f9c…", after: "sk-budget-a1b2…" },
    ]);
  });

  it("leaves out fields that did not change and fields that appear on one side only as none", () => {
    expect(changeLines({ budget_limit: 10, period_type: "day" }, { budget_limit: 25, period_type: "day", user: { a: 1 } })).toEqual([
      { field: "budget_limit", before: "10", after: "25" },
      { field: "user", before: "none", after: '{"a":1}' },
    ]);
    expect(changeLines({ a: [1, 2] }, { a: [1, 2] })).toEqual([]);
    expect(changeLines({ is_active: true, updated_at: "2026-01-01T00:00:00Z" }, { is_active: false, updated_at: "2026-01-02T00:00:00Z" })).toEqual([
      { field: "is_active", before: "true", after: "false" },
    ]);
  });

  it("lists a creation's fields without ids, timestamps or empty values", () => {
    expect(
      changeLines(null, {
        id: "x",
        name: "Customer A",
        budget_limit: 20,
        created_at: "2026-01-01T00:00:00Z",
        extra_budgets: [],
        user_overrides: {},
        user_budget: null,
        require_user: false,
        code: "sk-budget-3f9c…",
      }),
    ).toEqual([
      { field: "name", after: "Customer A" },
      { field: "budget_limit", after: "20" },
      { field: "require_user", after: "false" },
      { field: "code", after: "sk-budget-3f9c…" },
    ]);
  });

  it("lists a deletion's fields as before only", () => {
    expect(changeLines({ name: "k", key_hint: "…abcd", organization: null }, undefined)).toEqual([
      { field: "name", before: "k" },
      { field: "key_hint", before: "…abcd" },
    ]);
  });

  it("shows nothing for an entry without a change, and a scalar as one value line", () => {
    expect(changeLines(null, null)).toEqual([]);
    expect(changeLines(undefined, undefined)).toEqual([]);
    expect(changeLines(1, 2)).toEqual([{ field: "value", before: "1", after: "2" }]);
    expect(changeLines(null, "on")).toEqual([{ field: "value", after: "on" }]);
  });
});

describe("formatAuditValue", () => {
  it("keeps scalars and writes everything else as JSON", () => {
    expect(formatAuditValue("day")).toBe("day");
    expect(formatAuditValue(0)).toBe("0");
    expect(formatAuditValue(false)).toBe("false");
    expect(formatAuditValue(null)).toBe("none");
    expect(formatAuditValue({ code: "sk-budget-3f9c…", until: "2026-01-01T00:00:00Z" })).toBe('{"code":"sk-budget-3f9c…","until":"2026-01-01T00:00:00Z"}');
  });
});

describe("auditQuery", () => {
  const now = Date.parse("2026-03-10T12:34:56.000Z");
  it("sends only the filters that are set", () => {
    expect(auditQuery({ limiterId: "", actor: "  ", rangeId: "all", limit: 100 }, now)).toEqual({ limiter_id: undefined, actor: undefined, from: undefined, limit: 100 });
  });
  it("sends the limiter, the trimmed actor, the range's start and the limit", () => {
    expect(auditQuery({ limiterId: "L1", actor: " alice ", rangeId: "24h", limit: 300 }, now)).toEqual({
      limiter_id: "L1",
      actor: "alice",
      from: "2026-03-09T12:34:56.000Z",
      limit: 300,
    });
    expect(auditQuery({ limiterId: "", actor: "", rangeId: "1h", limit: 100 }, now).from).toBe("2026-03-10T11:34:56.000Z");
  });
  it("keeps the limit within what the API takes", () => {
    expect(auditQuery({ limiterId: "", actor: "", rangeId: "all", limit: 5000 }, now).limit).toBe(1000);
    expect(auditQuery({ limiterId: "", actor: "", rangeId: "all", limit: 0 }, now).limit).toBe(1);
  });
});

describe("load more", () => {
  it("grows the limit by a page up to 1000, while answers fill it", () => {
    expect(nextLimit(100)).toBe(200);
    expect(nextLimit(950)).toBe(1000);
    expect(nextLimit(1000)).toBe(1000);
    expect(mayHaveMore(100, 100)).toBe(true);
    expect(mayHaveMore(99, 100)).toBe(false);
    expect(mayHaveMore(1000, 1000)).toBe(false);
  });
});

describe("labels", () => {
  it("names actions and marks failed logins and removals", () => {
    expect(actionLabel("login.failed")).toBe("Login failed");
    expect(actionLabel("limiter.rotate_code")).toBe("Code rotated");
    expect(actionLabel("credential.rotate")).toBe("Key rotated");
    expect(actionLabel("policy.new_thing")).toBe("policy.new_thing");
    expect(actionTone("login.failed")).toBe("destructive");
    expect(actionTone("limiter.delete")).toBe("warning");
    expect(actionTone("limiter.user_override.remove")).toBe("warning");
    expect(actionTone("limiter.update")).toBe("secondary");
  });
  it("names a limiter when known, else shows its id", () => {
    const ls = [{ id: "a", name: "Customer A" }];
    expect(limiterLabel("a", ls)).toBe("Customer A");
    expect(limiterLabel("b", ls)).toBe("b");
    expect(limiterLabel(null, ls)).toBeNull();
  });
  it("names a key from the list, else by the latest name an entry recorded; an end user by id", () => {
    const entries = [
      { action: "credential.delete", target: "c2", before: { name: "renamed-key", key_hint: "…bbbb" }, after: null },
      { action: "credential.rotate", target: "c2", before: { key_hint: "…aaaa" }, after: { key_hint: "…bbbb" } },
      { action: "credential.update", target: "c2", before: { name: "old-key" }, after: { name: "renamed-key" } },
      { action: "credential.create", target: "c2", before: null, after: { name: "old-key" } },
      { action: "credential.rotate", target: "c1", before: { name: "stale" }, after: {} },
      { action: "limiter.user_override.set", target: "carol", before: null, after: { name: "not a key" } },
    ];
    const names = credentialNames(entries, [{ id: "c1", name: "openai-prod" }]);
    expect(Object.fromEntries(names)).toEqual({ c1: "openai-prod", c2: "renamed-key" });
    expect(targetLabel(entries[1]!, names)).toBe("key renamed-key");
    expect(targetLabel(entries[4]!, names)).toBe("key openai-prod");
    expect(targetLabel({ action: "credential.delete", target: "c3" }, names)).toBe("key c3");
    expect(targetLabel(entries[5]!, names)).toBe("user carol");
    expect(targetLabel({ action: "limiter.update", target: null }, names)).toBeNull();
  });
  it("shows times locally with seconds, and in UTC on hover", () => {
    expect(formatAuditTime("2026-12-01T23:52:41.123Z", "Europe/Berlin")).toBe("Dec 2, 2026, 00:52:41");
    expect(utcTime("2026-12-01T23:52:41.123456Z")).toBe("2026-12-01 23:52:41 UTC");
    expect(utcTime("not a time")).toBe("not a time");
  });
});

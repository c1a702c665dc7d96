import { describe, expect, it } from "vitest";
import { nextSort, sortRows } from "./sort";

interface Row {
  name: string;
  cost: number;
  requests: number | null;
}
const rows: Row[] = [
  { name: "beta", cost: 2, requests: 10 },
  { name: "Alpha", cost: 10, requests: null },
  { name: "gamma", cost: 2, requests: 3 },
  { name: "delta 10", cost: 0.5, requests: 7 },
  { name: "delta 9", cost: 0.5, requests: 7 },
];

describe("sortRows", () => {
  it("sorts numbers both ways", () => {
    expect(sortRows(rows, { key: "cost", dir: "desc" }).map((r) => r.name)).toEqual(["Alpha", "beta", "gamma", "delta 10", "delta 9"]);
    expect(sortRows(rows, { key: "cost", dir: "asc" }).map((r) => r.name)).toEqual(["delta 10", "delta 9", "beta", "gamma", "Alpha"]);
  });
  it("is stable on ties", () => {
    const asc = sortRows(rows, { key: "cost", dir: "asc" });
    expect(asc.indexOf(rows[3]!)).toBeLessThan(asc.indexOf(rows[4]!));
  });
  it("sorts text case-insensitively with numeric parts", () => {
    expect(sortRows(rows, { key: "name", dir: "asc" }).map((r) => r.name)).toEqual(["Alpha", "beta", "delta 9", "delta 10", "gamma"]);
  });
  it("puts missing values last in either direction", () => {
    expect(sortRows(rows, { key: "requests", dir: "asc" }).at(-1)!.name).toBe("Alpha");
    expect(sortRows(rows, { key: "requests", dir: "desc" }).at(-1)!.name).toBe("Alpha");
    expect(sortRows(rows, { key: "requests", dir: "desc" })[0]!.name).toBe("beta");
  });
  it("does not modify its input", () => {
    const copy = rows.slice();
    sortRows(rows, { key: "cost", dir: "asc" });
    expect(rows).toEqual(copy);
  });
});

describe("nextSort", () => {
  it("flips the same column and starts new ones by type", () => {
    expect(nextSort({ key: "cost", dir: "desc" }, "cost", true)).toEqual({ key: "cost", dir: "asc" });
    expect(nextSort({ key: "cost", dir: "asc" }, "cost", true)).toEqual({ key: "cost", dir: "desc" });
    expect(nextSort<"cost" | "name">({ key: "cost", dir: "desc" }, "name", false)).toEqual({ key: "name", dir: "asc" });
    expect(nextSort<"cost" | "tokens">({ key: "cost", dir: "asc" }, "tokens", true)).toEqual({ key: "tokens", dir: "desc" });
  });
});

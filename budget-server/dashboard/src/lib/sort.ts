// Sorting for the usage tables.

export type SortDir = "asc" | "desc";
export interface SortState<K extends string> {
  key: K;
  dir: SortDir;
}

function compareValues(a: unknown, b: unknown): number {
  const an = a === null || a === undefined;
  const bn = b === null || b === undefined;
  if (an || bn) return an === bn ? 0 : an ? 1 : -1; // missing values go last
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), "en", { sensitivity: "base", numeric: true });
}

/**
 * Returns a sorted copy of `rows` by `key`. Ties keep their original order (stable), and
 * rows with a missing value go last in either direction.
 */
export function sortRows<T, K extends keyof T & string>(rows: readonly T[], state: SortState<K>): T[] {
  const sign = state.dir === "asc" ? 1 : -1;
  return rows
    .map((row, i) => ({ row, i }))
    .sort((x, y) => {
      const a = x.row[state.key];
      const b = y.row[state.key];
      const missing = (a === null || a === undefined) !== (b === null || b === undefined);
      const c = compareValues(a, b);
      if (c !== 0) return missing ? c : sign * c;
      return x.i - y.i;
    })
    .map((x) => x.row);
}

/**
 * The next sort state after a click on column `key`: a new column starts descending for
 * numbers (biggest first) and ascending for text; the same column flips direction.
 */
export function nextSort<K extends string>(current: SortState<K>, key: K, numeric: boolean): SortState<K> {
  if (current.key === key) return { key, dir: current.dir === "asc" ? "desc" : "asc" };
  return { key, dir: numeric ? "desc" : "asc" };
}

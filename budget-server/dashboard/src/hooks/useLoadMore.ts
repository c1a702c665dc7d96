import { useState } from "react";
import { usePolled, type Polled } from "./usePolled";

/** How a list grows: its first page, the limit after "Load more", and whether a full answer may have more. */
export interface Paging {
  first: number;
  next: (limit: number) => number;
  mayHaveMore: (rows: number, limit: number) => boolean;
}

export interface LoadMore<T> extends Polled<T> {
  /** The rows asked for now. */
  limit: number;
  /** The last answer for any filters (for what does not depend on them). */
  latest: T | undefined;
  /** True while "Load more" fetches; `data` then still holds the shorter answer. */
  loadingMore: boolean;
  /** Whether an answer of `rows` rows may have more behind it. */
  mayHaveMore: (rows: number) => boolean;
  loadMore: () => void;
}

/**
 * A polled, filtered list with "Load more": `load(limit)` is called with the current limit, a
 * change of `filters` starts from the first page again, and while a longer page loads the
 * previous answer stays shown (never one for other filters).
 */
export function useLoadMore<T>(load: (limit: number) => Promise<T>, filters: readonly string[], paging: Paging, intervalMs: number): LoadMore<T> {
  const [limit, setLimit] = useState(paging.first);
  const filterKey = filters.join("\n");
  const [keyOfLimit, setKeyOfLimit] = useState(filterKey);
  if (keyOfLimit !== filterKey) {
    setKeyOfLimit(filterKey);
    setLimit(paging.first);
  }

  const polled = usePolled(() => load(limit), [...filters, limit], intervalMs);
  const [kept, setKept] = useState<{ key: string; data: T } | null>(null);
  if (polled.data !== undefined && kept?.data !== polled.data) setKept({ key: filterKey, data: polled.data });
  const data = polled.data ?? (kept?.key === filterKey ? kept.data : undefined);

  return {
    ...polled,
    data,
    latest: polled.data ?? kept?.data,
    limit,
    loadingMore: polled.data === undefined && data !== undefined,
    mayHaveMore: (rows) => paging.mayHaveMore(rows, limit),
    loadMore: () => setLimit(paging.next(limit)),
  };
}

import { useCallback, useEffect, useRef, useState } from "react";

export const POLL_MS = 5000;

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  /** True until the first answer (or error) arrives. */
  loading: boolean;
  /** Fetches again now (after a change made by the user). */
  reload: () => Promise<void>;
  /** Replaces the data locally (optimistic updates). */
  mutate: (f: (old: T | undefined) => T | undefined) => void;
}

/**
 * Calls `fetcher` now and then every `intervalMs` while the tab is visible, so figures stay
 * live without reloading the page. Polling stops while the tab is hidden and starts again,
 * with an immediate refresh, when it comes back. Answers to stale requests are dropped.
 */
export function usePolled<T>(fetcher: () => Promise<T>, deps: readonly unknown[], intervalMs = POLL_MS, enabled = true): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<Error | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;

  const run = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const value = await fetcherRef.current();
      if (mine !== seq.current) return;
      setData(value);
      setError(undefined);
    } catch (e) {
      if (mine !== seq.current) return;
      setError(e instanceof Error ? e : new Error(String(e)));
    } finally {
      if (mine === seq.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    if (!enabled) return;
    const sequence = seq;
    setLoading(true);
    setData(undefined);
    setError(undefined);
    let timer: number | undefined;
    let stopped = false;
    const schedule = () => {
      window.clearTimeout(timer);
      if (stopped || document.hidden) return;
      timer = window.setTimeout(async () => {
        await run();
        schedule();
      }, intervalMs);
    };
    const onVisibility = () => {
      if (document.hidden) window.clearTimeout(timer);
      else void run().then(schedule);
    };
    void run().then(schedule);
    document.addEventListener("visibilitychange", onVisibility);
    return () => {
      stopped = true;
      sequence.current++;
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [enabled, intervalMs, run, ...deps]);

  const mutate = useCallback((f: (old: T | undefined) => T | undefined) => setData((old) => f(old)), []);
  return { data, error, loading, reload: run, mutate };
}

/** The current time, ticking every `ms` while the tab is visible (for countdowns). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const tick = () => setNow(Date.now());
    const id = window.setInterval(() => {
      if (!document.hidden) tick();
    }, ms);
    document.addEventListener("visibilitychange", tick);
    return () => {
      window.clearInterval(id);
      document.removeEventListener("visibilitychange", tick);
    };
  }, [ms]);
  return now;
}

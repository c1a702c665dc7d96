// Shared set-up of the tests of the filtered, polled list pages (Alerts, Audit): a fixed clock,
// the API answered from memory, the page rendered at a URL, and the URL's query as it changes.
import { cleanup, render } from "@testing-library/react";
import { MemoryRouter, Route, Routes, useLocation } from "react-router-dom";
import { vi } from "vitest";

export const NOW = Date.parse("2026-03-10T12:34:56Z");
export const A = "0a0a0a0a-0000-4000-8000-00000000000a";
export const B = "0b0b0b0b-0000-4000-8000-00000000000b";
/** The limiter filter's choices: one live, one deleted (listed last). */
export const limiters = [
  { id: B, name: "Zeta team", deleted_at: null },
  { id: A, name: "Customer A", deleted_at: "2026-03-09T00:00:00Z" },
];

/**
 * Freezes the clock at NOW and answers fetch: `fixed` by path, anything else by `answer` (the
 * returned list records those requests).
 */
export function stubApi(fixed: Record<string, unknown>, answer: (url: URL) => unknown): URL[] {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(NOW);
  const calls: URL[] = [];
  vi.stubGlobal("fetch", (url: string) => {
    const u = new URL(url, "http://dashboard.test");
    const body = u.pathname in fixed ? fixed[u.pathname] : (calls.push(u), answer(u));
    return Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));
  });
  return calls;
}

export function unstubApi() {
  cleanup();
  vi.useRealTimers();
  vi.unstubAllGlobals();
}

/** The page's URL query, as the page last set it. */
export let search = "";
function Where() {
  search = useLocation().search;
  return null;
}

/** Renders `page` at `path` (its route is the path without the query). */
export function renderPage(path: string, page: React.ReactNode) {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <Routes>
        <Route
          path={path.split("?")[0]}
          element={
            <>
              {page}
              <Where />
            </>
          }
        />
      </Routes>
    </MemoryRouter>,
  );
}

import type { LucideIcon } from "lucide-react";
import { useMemo } from "react";
import { cn } from "../lib/utils";
import { Button } from "./ui/button";
import { Card } from "./ui/card";
import { Select } from "./ui/select";
import { Skeleton } from "./ui/skeleton";

/** A page's title and what it shows, with its controls (buttons, filters) on the right. */
export function PageHeader({ title, description, wide, children }: { title: string; description: React.ReactNode; wide?: boolean; children?: React.ReactNode }) {
  return (
    <div className="flex flex-wrap items-end justify-between gap-4">
      <div>
        <h1 className="text-2xl font-semibold tracking-tight">{title}</h1>
        <p className={cn("mt-1 text-sm text-muted-foreground", !wide && "max-w-2xl")}>{description}</p>
      </div>
      {children}
    </div>
  );
}

/** Grey bars while a list loads. */
export function ListSkeleton({ rows = 3 }: { rows?: number }) {
  return (
    <Card className="grid gap-3 p-5" aria-busy="true">
      {Array.from({ length: rows }, (_, i) => (
        <Skeleton key={i} className="h-5 w-full" />
      ))}
    </Card>
  );
}

/** What an empty list says, with an optional action under it. */
export function EmptyState({
  icon: Icon,
  title,
  testId,
  narrow,
  action,
  children,
}: {
  icon: LucideIcon;
  title: React.ReactNode;
  testId: string;
  /** A narrower text column. */
  narrow?: boolean;
  action?: React.ReactNode;
  children: React.ReactNode;
}) {
  return (
    <Card className="flex flex-col items-center gap-3 border-dashed px-6 py-16 text-center" data-testid={testId}>
      <span className="flex h-12 w-12 items-center justify-center rounded-full bg-zinc-100">
        <Icon className="h-6 w-6 text-zinc-500" />
      </span>
      <h2 className="text-lg font-semibold">{title}</h2>
      <p className={cn("text-sm text-muted-foreground", narrow ? "max-w-sm" : "max-w-md")}>{children}</p>
      {action}
    </Card>
  );
}

/** A page's filters, side by side (wrapping on narrow screens). */
export function FilterBar({ children }: { children: React.ReactNode }) {
  return <div className="flex flex-wrap items-center gap-2">{children}</div>;
}

/** One control of a page's filter bar, with a label for screen readers. */
export function FilterField({ id, label, width, children }: { id: string; label: string; width: string; children: React.ReactNode }) {
  return (
    <div className={width}>
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      {children}
    </div>
  );
}

type LimiterOption = { id: string; name: string; deleted_at?: string | null };

/** "All limiters" or one of them (deleted ones last, marked); an id in the URL that is not listed stays choosable. */
export function LimiterFilter({ id, value, onChange, limiters, testId }: { id: string; value: string; onChange: (id: string) => void; limiters: readonly LimiterOption[] | undefined; testId: string }) {
  const options = useMemo(() => [...(limiters ?? [])].sort((a, b) => Number(!!a.deleted_at) - Number(!!b.deleted_at) || a.name.localeCompare(b.name)), [limiters]);
  const listed = options.some((l) => l.id === value);
  return (
    <FilterField id={id} label="Limiter" width="w-52">
      <Select id={id} value={value} onChange={(e) => onChange(e.target.value)} data-testid={testId}>
        <option value="">All limiters</option>
        {options.map((l) => (
          <option key={l.id} value={l.id}>
            {l.name}
            {l.deleted_at ? " (deleted)" : ""}
          </option>
        ))}
        {value && !listed && <option value={value}>{value}</option>}
      </Select>
    </FilterField>
  );
}

/** Under a list: how many rows it shows, and "Load more" when there may be more. */
export function LoadMoreFooter({ count, more, loading, onMore, testIdPrefix }: { count: React.ReactNode; more: boolean; loading: boolean; onMore: () => void; testIdPrefix: string }) {
  return (
    <div className="flex items-center justify-between gap-4 text-sm text-muted-foreground">
      <span data-testid={`${testIdPrefix}-count`}>{count}</span>
      {more && (
        <Button variant="outline" size="sm" onClick={onMore} disabled={loading} data-testid={`${testIdPrefix}-load-more`}>
          {loading ? "Loading…" : "Load more"}
        </Button>
      )}
    </div>
  );
}

import { Ban, Bell, History, TriangleAlert, type LucideIcon } from "lucide-react";
import { Link } from "react-router-dom";
import { usePolled } from "../hooks/usePolled";
import { api, type BreakdownRow, type Limiter, type LimiterStats } from "../lib/api";
import { formatCount, formatDateTime, formatMoney, formatPercent, periodLabel } from "../lib/format";
import { refusalBreakdown } from "../lib/refusals";
import { bucketForPeriod, chartFrom, fillBuckets } from "../lib/timeseries";
import { usageLevel } from "../lib/usage";
import { cn } from "../lib/utils";
import { ErrorAlert } from "./ErrorAlert";
import { LimiterUsers } from "./LimiterUsers";
import { SpendChart } from "./SpendChart";
import { Figure } from "./StatCard";
import { Dialog, DialogContent, DialogDescription, DialogHeader, DialogTitle } from "./ui/dialog";
import { UsageBar } from "./ui/progress";
import { Skeleton } from "./ui/skeleton";

/** The "Refused this period" row: the total and a count per reason. */
function RefusedRow({ refused, requests }: { refused: LimiterStats["refused"] | undefined; requests: number }) {
  const total = refused?.total ?? 0;
  const reasons = refusalBreakdown(refused);
  // Refusals and no admitted request: a blocked limiter, not an idle one.
  const all = total > 0 && requests === 0;
  return (
    <div
      className={cn(
        "flex flex-wrap items-center gap-x-4 gap-y-1.5 rounded-lg border p-3 text-sm",
        all ? "border-red-200 bg-red-50/60" : total > 0 ? "border-amber-200 bg-amber-50/60" : "bg-zinc-50/60",
      )}
      data-testid="stats-refused"
      data-all-refused={String(all)}
    >
      <span className="flex items-center gap-1.5 text-muted-foreground">
        <Ban className="h-3.5 w-3.5" />
        Refused this period
      </span>
      <span className={cn("font-semibold tabular", all && "text-red-600")} data-testid="stats-refused-total">
        {formatCount(total)}
      </span>
      {reasons.length > 0 && (
        <ul className="flex flex-wrap gap-1.5" aria-label="Refused by reason">
          {reasons.map((r) => (
            <li key={r.reason} className="rounded bg-white px-1.5 py-0.5 text-xs ring-1 ring-inset ring-zinc-200" data-testid="stats-refused-reason" data-reason={r.reason}>
              {r.label} <span className="font-medium tabular">{formatCount(r.count)}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function TopList({ title, rows, testId }: { title: string; rows: BreakdownRow[] | undefined; testId: string }) {
  const max = Math.max(0, ...(rows ?? []).map((r) => r.cost));
  return (
    <section className="grid gap-2" data-testid={testId}>
      <h4 className="text-sm font-medium">{title}</h4>
      {!rows ? (
        <Skeleton className="h-20" />
      ) : rows.length === 0 ? (
        <p className="rounded-lg border border-dashed p-3 text-center text-xs text-muted-foreground">No requests yet</p>
      ) : (
        <ul className="grid gap-1.5">
          {rows.slice(0, 5).map((r) => (
            <li key={r.key} className="grid gap-1 text-xs" data-testid={`${testId}-row`}>
              <div className="flex items-baseline justify-between gap-2">
                <span className="truncate font-medium" title={r.label || r.key || undefined}>
                  {r.label || r.key || "(none)"}
                  {r.unpriced_requests > 0 && <TriangleAlert className="ml-1 inline h-3 w-3 text-amber-600" aria-label="unpriced" />}
                </span>
                <span className="shrink-0 tabular text-muted-foreground">
                  {formatCount(r.requests)} req · <span className="font-medium text-foreground">{formatMoney(r.cost)}</span>
                </span>
              </div>
              <div className="h-1 rounded-full bg-zinc-100">
                <div className="h-1 rounded-full bg-zinc-400" style={{ width: `${max > 0 ? Math.max(2, (r.cost / max) * 100) : 0}%` }} />
              </div>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/** A link from the dialog to a page's list filtered to this limiter. */
function LimiterPageLink({ page, limiterId, icon: Icon, testId, children }: { page: "alerts" | "audit"; limiterId: string; icon: LucideIcon; testId: string; children: React.ReactNode }) {
  return (
    <Link to={`/${page}?limiter_id=${encodeURIComponent(limiterId)}`} className="inline-flex shrink-0 items-center gap-1 text-sm text-muted-foreground hover:text-foreground" data-testid={testId}>
      <Icon className="h-4 w-4" />
      {children}
    </Link>
  );
}

export function LimiterStatsDialog({
  limiter,
  onOpenChange,
  onChanged,
  readOnly = false,
}: {
  limiter: Limiter | null;
  onOpenChange: (open: boolean) => void;
  /** A per-user override changed the limiter. */
  onChanged?: (l: Limiter) => void;
  /** A viewer account: no override controls, and no link to the audit trail (admins only). */
  readOnly?: boolean;
}) {
  const open = !!limiter;
  const id = limiter?.id ?? "";
  const bucket = bucketForPeriod(limiter?.period_type ?? "day");
  const stats = usePolled(() => api.limiterStats(id), [id], undefined, open);
  const periodStart = stats.data?.period_start ?? limiter?.period_start ?? null;
  const from = chartFrom(bucket, periodStart, Date.now());
  const fromIso = new Date(from).toISOString();
  // Re-key the series on the window start so a period rollover refetches the right range.
  const series = usePolled(() => api.timeseries(bucket, { limiter_id: id, from: fromIso }), [id, bucket, periodStart], undefined, open);
  const models = usePolled(() => api.breakdown("model", { limiter_id: id, from: periodStart ?? undefined }, 10), [id, periodStart], undefined, open);
  const s = stats.data;
  const level = usageLevel(s?.usage_percentage ?? 0);
  const error = stats.error ?? series.error ?? models.error;

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className="max-w-3xl" data-testid="stats-dialog">
        <DialogHeader>
          <div className="flex items-center justify-between gap-3 pr-8">
            <DialogTitle>{limiter?.name ?? "Statistics"}</DialogTitle>
            {limiter && (
              <div className="flex shrink-0 items-center gap-3">
                <LimiterPageLink page="alerts" limiterId={limiter.id} icon={Bell} testId="stats-alerts">
                  Alerts
                </LimiterPageLink>
                {!readOnly && (
                  <LimiterPageLink page="audit" limiterId={limiter.id} icon={History} testId="stats-history">
                    History
                  </LimiterPageLink>
                )}
              </div>
            )}
          </div>
          <DialogDescription>
            {limiter && (
              <>
                {formatMoney(limiter.budget_limit)} {periodLabel(limiter.period_type)} · current window {formatDateTime(s?.period_start ?? limiter.period_start)} →{" "}
                {formatDateTime(s?.period_end ?? limiter.period_end)}
              </>
            )}
          </DialogDescription>
        </DialogHeader>
        {error && <ErrorAlert title="Could not load statistics" error={error} onRetry={() => void Promise.all([stats.reload(), series.reload(), models.reload()])} />}
        {!s ? (
          <div className="grid grid-cols-2 gap-3 sm:grid-cols-4">
            {Array.from({ length: 8 }, (_, i) => (
              <Skeleton key={i} className="h-16" />
            ))}
          </div>
        ) : (
          <>
            <div className="grid gap-2">
              <div className="flex items-baseline justify-between text-sm">
                <span className="text-muted-foreground">Budget used</span>
                <span className="font-medium tabular" data-testid="stats-usage-percent">
                  {formatPercent(s.usage_percentage)}
                </span>
              </div>
              <UsageBar percent={s.usage_percentage} label="Budget used" data-testid="stats-usage-bar" />
            </div>
            <div className="grid grid-cols-2 gap-3 sm:grid-cols-4">
              <Figure label="Spend" value={formatMoney(s.current_spend)} testId="stats-spend" tone={level === "exceeded" ? "danger" : undefined} />
              <Figure label="Remaining" value={formatMoney(s.remaining_budget)} testId="stats-remaining" />
              <Figure label="Requests" value={formatCount(s.total_requests)} testId="stats-requests" />
              <Figure label="Tokens" value={s.total_tokens === undefined ? "—" : formatCount(s.total_tokens)} testId="stats-tokens" />
              <Figure label="Prompt tokens" value={s.prompt_tokens === undefined ? "—" : formatCount(s.prompt_tokens)} />
              <Figure label="Completion tokens" value={s.completion_tokens === undefined ? "—" : formatCount(s.completion_tokens)} />
              <Figure label="Period start" value={formatDateTime(s.period_start)} testId="stats-period-start" small />
              <Figure label="Period end" value={formatDateTime(s.period_end)} testId="stats-period-end" small />
            </div>
            <RefusedRow refused={s.refused} requests={s.total_requests} />
            {(() => {
              const notes: string[] = [];
              if ((s.in_flight ?? 0) > 0) notes.push(`In flight: ${formatCount(s.in_flight)} (${formatMoney(s.held)} held)`);
              if ((s.leased ?? 0) > 0) notes.push(`Leased to replicas: ${formatMoney(s.leased)} (set aside, not yet spent)`);
              if ((s.unpriced_requests ?? 0) > 0) notes.push(`Unpriced requests: ${formatCount(s.unpriced_requests)} (not in the spend)`);
              if ((s.estimated_requests ?? 0) > 0) notes.push(`Estimated: ${formatCount(s.estimated_requests)}`);
              return notes.length > 0 ? (
                <p className="text-xs text-amber-700 tabular" data-testid="stats-notes">
                  {notes.join(" · ")}
                </p>
              ) : null;
            })()}
          </>
        )}
        <section className="grid gap-2">
          <h4 className="text-sm font-medium">Spend over time</h4>
          {!series.data ? (
            <Skeleton className="h-[200px]" />
          ) : (
            <SpendChart points={fillBuckets(series.data, bucket, from, Date.now())} bucket={bucket} height={200} testId="stats-chart" />
          )}
        </section>
        <TopList title="Top models this period" rows={models.data} testId="stats-top-models" />
        {limiter && <LimiterUsers limiter={limiter} open={open} onChanged={onChanged} readOnly={readOnly} />}
      </DialogContent>
    </Dialog>
  );
}

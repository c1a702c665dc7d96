import { Activity, Coins, Hash, TriangleAlert, Users } from "lucide-react";
import { useMemo, useState } from "react";
import { ErrorAlert } from "../components/ErrorAlert";
import { SortableTable, type Column } from "../components/SortableTable";
import { SpendChart } from "../components/SpendChart";
import { StatCard } from "../components/StatCard";
import { UsageDownload } from "../components/UsageDownload";
import { Badge } from "../components/ui/badge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "../components/ui/card";
import { UsageBar } from "../components/ui/progress";
import { Select } from "../components/ui/select";
import { Skeleton } from "../components/ui/skeleton";
import { usePolled } from "../hooks/usePolled";
import { api, type BreakdownRow, type LimiterUsageRow, type Range } from "../lib/api";
import { formatCount, formatMoney, formatPercent } from "../lib/format";
import { RANGES, type RangeId } from "../lib/ranges";
import { refusalSummary } from "../lib/refusals";
import { fillBuckets, floorToBucket } from "../lib/timeseries";
import { cn } from "../lib/utils";

/** A limiter row with its refusal total flat, so the column sorts like the others. */
type LimiterRow = LimiterUsageRow & { refused_total: number };

const limiterColumns: Column<LimiterRow>[] = [
  {
    key: "limiter_name",
    label: "Limiter",
    render: (r) => (
      <span className="flex items-center gap-2">
        <span className="font-medium">{r.limiter_name}</span>
        {r.is_deleted ? <Badge variant="outline">Deleted</Badge> : !r.is_active ? <Badge variant="secondary">Inactive</Badge> : null}
      </span>
    ),
  },
  { key: "requests", label: "Requests", numeric: true, render: (r) => formatCount(r.requests) },
  {
    key: "refused_total",
    label: "Refused",
    numeric: true,
    render: (r) =>
      r.refused_total > 0 ? (
        <span
          className={cn("tabular", r.requests === 0 ? "font-medium text-red-600" : "text-amber-700")}
          title={refusalSummary(r.refused)}
          data-testid="limiter-refused"
        >
          {formatCount(r.refused_total)}
        </span>
      ) : (
        <span className="text-muted-foreground" data-testid="limiter-refused">
          0
        </span>
      ),
  },
  { key: "total_tokens", label: "Tokens", numeric: true, render: (r) => formatCount(r.total_tokens) },
  { key: "cost", label: "Cost", numeric: true, render: (r) => <span className="font-medium">{formatMoney(r.cost)}</span> },
  {
    key: "usage_percentage",
    label: "Period usage",
    numeric: true,
    className: "min-w-[180px]",
    render: (r) =>
      r.is_deleted ? (
        <span className="text-muted-foreground">—</span>
      ) : (
        <div className="ml-auto grid max-w-[200px] gap-1">
          <span className="text-xs text-muted-foreground">
            {formatMoney(r.current_spend)} / {formatMoney(r.budget_limit)} · {formatPercent(r.usage_percentage)}
          </span>
          <UsageBar percent={r.usage_percentage} label={`Budget used by ${r.limiter_name}`} className="h-1.5" />
        </div>
      ),
  },
];

function breakdownColumns(keyLabel: string): Column<BreakdownRow>[] {
  return [
    {
      key: "label",
      label: keyLabel,
      render: (r) => (
        <span className="flex items-center gap-2">
          <span className="font-medium">{r.label || r.key || "(none)"}</span>
          {r.unpriced_requests > 0 && (
            <Badge variant="warning" title={`${r.unpriced_requests} unpriced requests`}>
              Unpriced
            </Badge>
          )}
        </span>
      ),
    },
    { key: "requests", label: "Requests", numeric: true, render: (r) => formatCount(r.requests) },
    { key: "prompt_tokens", label: "Prompt", numeric: true, render: (r) => formatCount(r.prompt_tokens) },
    { key: "completion_tokens", label: "Completion", numeric: true, render: (r) => formatCount(r.completion_tokens) },
    { key: "total_tokens", label: "Tokens", numeric: true, render: (r) => formatCount(r.total_tokens) },
    { key: "cost", label: "Cost", numeric: true, render: (r) => <span className="font-medium">{formatMoney(r.cost)}</span> },
  ];
}

function TableCard({ title, description, loading, children }: { title: string; description: string; loading: boolean; children: React.ReactNode }) {
  return (
    <Card>
      <CardHeader className="pb-3">
        <CardTitle className="text-base">{title}</CardTitle>
        <CardDescription>{description}</CardDescription>
      </CardHeader>
      <CardContent className="px-2 pb-2 sm:px-3">{loading ? <Skeleton className="mx-2 mb-3 h-32" /> : children}</CardContent>
    </Card>
  );
}

export function StatisticsPage() {
  const [rangeId, setRangeId] = useState<RangeId>("24h");
  /** The limiter the page is filtered to ("": all of them). */
  const [limiterId, setLimiterId] = useState("");
  const range = RANGES.find((r) => r.id === rangeId)!;
  const fromFor = () => (range.ms === null ? undefined : new Date(floorToBucket(Date.now() - range.ms, range.bucket)).toISOString());
  const filter = (): Range => ({ from: fromFor(), limiter_id: limiterId || undefined });

  const limiters = usePolled(() => api.limiters(), [], 15_000);
  const stats = usePolled(() => api.stats(filter()), [rangeId, limiterId]);
  const series = usePolled(() => api.timeseries(range.bucket, filter()), [rangeId, limiterId]);
  const models = usePolled(() => api.breakdown("model", filter()), [rangeId, limiterId]);
  const users = usePolled(() => api.breakdown("user", filter()), [rangeId, limiterId]);
  const limiterOptions = useMemo(() => [...(limiters.data ?? [])].sort((a, b) => a.name.localeCompare(b.name)), [limiters.data]);
  const listed = limiterOptions.some((l) => l.id === limiterId);
  const limiterName = limiterId
    ? (limiterOptions.find((l) => l.id === limiterId)?.name ?? stats.data?.limiters.find((r) => r.limiter_id === limiterId)?.limiter_name ?? "a deleted limiter")
    : null;

  const s = stats.data;
  const limiterRows = useMemo<LimiterRow[]>(() => (s?.limiters ?? []).map((r) => ({ ...r, refused_total: r.refused?.total ?? 0 })), [s]);
  const chartPoints = useMemo(() => {
    if (!series.data) return [];
    const now = Date.now();
    const from = range.ms === null ? now - 30 * 86_400_000 : now - range.ms;
    return fillBuckets(series.data, range.bucket, from, now);
  }, [series.data, range]);
  const unpricedModels = (models.data ?? []).filter((m) => m.unpriced_requests > 0);
  const errors = [stats.error, series.error, models.error, users.error].filter((e): e is Error => !!e);
  const reloadAll = () => void Promise.all([stats.reload(), series.reload(), models.reload(), users.reload()]);

  return (
    <div className="grid gap-6">
      <div className="flex flex-wrap items-end justify-between gap-4">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight">Statistics</h1>
          <p className="mt-1 text-sm text-muted-foreground">
            Requests, tokens and cost {limiterName ? <>of {limiterName}</> : "across all limiters"}. Updates every few seconds.
          </p>
        </div>
        <div className="flex flex-wrap items-center gap-2">
          <div className="w-48">
            <label htmlFor="limiter-filter" className="sr-only">
              Limiter
            </label>
            <Select id="limiter-filter" value={limiterId} onChange={(e) => setLimiterId(e.target.value)} data-testid="limiter-filter">
              <option value="">All limiters</option>
              {limiterOptions.map((l) => (
                <option key={l.id} value={l.id}>
                  {l.name}
                </option>
              ))}
              {limiterId && !listed && <option value={limiterId}>{limiterName}</option>}
            </Select>
          </div>
          <div className="w-44">
            <label htmlFor="range" className="sr-only">
              Time range
            </label>
            <Select id="range" value={rangeId} onChange={(e) => setRangeId(e.target.value as RangeId)} data-testid="range-select">
              {RANGES.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.label}
                </option>
              ))}
            </Select>
          </div>
          <UsageDownload from={fromFor()} limiterId={limiterId || undefined} what={`${limiterName ?? "all limiters"}, ${range.label.toLowerCase()}`} />
        </div>
      </div>

      {errors.length > 0 && <ErrorAlert title="Could not load statistics" error={errors[0]!} onRetry={reloadAll} />}

      {s && s.unpriced_requests > 0 && (
        <div role="status" data-testid="unpriced-warning" className="flex items-start gap-3 rounded-lg border border-amber-200 bg-amber-50 p-4 text-sm text-amber-900">
          <TriangleAlert className="mt-0.5 h-4 w-4 shrink-0 text-amber-600" />
          <div>
            <p className="font-medium">
              {formatCount(s.unpriced_requests)} request{s.unpriced_requests === 1 ? "" : "s"} used models without a price, so their cost is not counted.
            </p>
            <p className="mt-1 text-amber-800/90">
              {unpricedModels.length > 0 ? (
                <>
                  Unpriced models:{" "}
                  {unpricedModels.map((m, i) => (
                    <span key={m.key}>
                      {i > 0 && ", "}
                      <code className="rounded bg-amber-100 px-1 font-mono text-xs" data-testid="unpriced-model">
                        {m.label || m.key}
                      </code>{" "}
                      ({formatCount(m.unpriced_requests)})
                    </span>
                  ))}
                  .{" "}
                </>
              ) : null}
              Add them to the price table, or set the limiter to refuse unpriced models.
            </p>
          </div>
        </div>
      )}

      <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        <StatCard label="Total requests" value={formatCount(s?.total_requests)} icon={Activity} testId="overview-requests" loading={!s} hint={s && s.error_requests > 0 ? `${formatCount(s.error_requests)} failed upstream` : undefined} />
        <StatCard label="Total tokens" value={formatCount(s?.total_tokens)} icon={Hash} testId="overview-tokens" loading={!s} />
        <StatCard label="Total cost" value={formatMoney(s?.total_cost)} icon={Coins} testId="overview-cost" loading={!s} hint={s && s.estimated_requests > 0 ? `${formatCount(s.estimated_requests)} estimated` : undefined} />
        <StatCard label="Active users" value={formatCount(s?.active_users)} icon={Users} testId="overview-users" loading={!s} />
      </div>

      <Card>
        <CardHeader className="pb-2">
          <CardTitle className="text-base">Spend over time</CardTitle>
          <CardDescription>
            {limiterName ?? "All limiters"}, per {range.bucket} · {range.label.toLowerCase()}
          </CardDescription>
        </CardHeader>
        <CardContent>{!series.data ? <Skeleton className="h-[260px]" /> : <SpendChart points={chartPoints} bucket={range.bucket} height={260} testId="spend-chart" />}</CardContent>
      </Card>

      <TableCard title="Usage by limiter" description="Click a column header to sort." loading={!s}>
        <SortableTable
          rows={limiterRows}
          columns={limiterColumns}
          initial={{ key: "cost", dir: "desc" }}
          rowKey={(r) => r.limiter_id}
          testId="limiter-usage-table"
          rowProps={(r) => ({ "data-testid": "limiter-usage-row", "data-limiter-id": r.limiter_id })}
          empty="No limiters yet."
        />
      </TableCard>

      <div className="grid grid-cols-1 gap-6">
        <TableCard title="By user" description="Per end user, as the proxy identifies them." loading={!users.data}>
          <SortableTable rows={users.data ?? []} columns={breakdownColumns("User")} initial={{ key: "cost", dir: "desc" }} rowKey={(r) => r.key ?? "(none)"} testId="user-table" empty="No requests in this range." />
        </TableCard>
        <TableCard title="By model" description="Models as reported by the upstream." loading={!models.data}>
          <SortableTable rows={models.data ?? []} columns={breakdownColumns("Model")} initial={{ key: "cost", dir: "desc" }} rowKey={(r) => r.key ?? "(none)"} testId="model-table" empty="No requests in this range." />
        </TableCard>
      </div>
    </div>
  );
}

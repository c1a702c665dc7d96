import { Bell, CircleAlert } from "lucide-react";
import { ErrorAlert } from "../components/ErrorAlert";
import { EmptyState, FilterBar, FilterField, LimiterFilter, ListSkeleton, LoadMoreFooter, PageHeader } from "../components/ListPage";
import { Badge } from "../components/ui/badge";
import { Card } from "../components/ui/card";
import { Select } from "../components/ui/select";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "../components/ui/table";
import { useLoadMore } from "../hooks/useLoadMore";
import { usePolled } from "../hooks/usePolled";
import { useSearchParam } from "../hooks/useSearchParam";
import {
  ALERTS_PAGE,
  alertsQuery,
  kindLabel,
  mayHaveMoreAlerts,
  nextAlertsLimit,
  STATUSES,
  statusTone,
  thresholdsLabel,
  type AlertDefaults,
  type AlertDelivery,
} from "../lib/alerts";
import { api } from "../lib/api";
import { formatAuditTime, utcTime } from "../lib/audit";
import { formatMoney, periodLabel } from "../lib/format";
import { cn } from "../lib/utils";

const dash = <span className="text-muted-foreground">—</span>;

const PAGING = { first: ALERTS_PAGE, next: nextAlertsLimit, mayHaveMore: mayHaveMoreAlerts };

/** A time in the browser's zone (hover: UTC); only the clock when it falls on the same day as `sameDayAs`. */
function Time({ iso, sameDayAs }: { iso: string | null | undefined; sameDayAs?: string }) {
  if (!iso) return dash;
  const full = formatAuditTime(iso);
  const day = (s: string) => new Date(s).toDateString();
  const shown = sameDayAs && day(iso) === day(sameDayAs) ? full.slice(full.lastIndexOf(", ") + 2) : full;
  return (
    <span className="whitespace-nowrap" title={utcTime(iso)}>
      {shown}
    </span>
  );
}

/** "retried for 24 h" style durations. */
function duration(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400} d`;
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/** The server's alert settings, above the list. */
function Settings({ d }: { d: AlertDefaults }) {
  const item = (label: string, value: React.ReactNode, testid: string) => (
    <div className="grid gap-0.5">
      <dt className="text-xs font-medium uppercase tracking-wide text-muted-foreground">{label}</dt>
      <dd className="text-sm" data-testid={testid}>
        {value}
      </dd>
    </div>
  );
  return (
    <Card className="grid gap-4 p-5" data-testid="alert-settings" data-enabled={String(d.enabled)}>
      {!d.enabled && (
        <p role="status" data-testid="alerts-disabled" className="flex items-start gap-2 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
          <CircleAlert className="mt-0.5 h-4 w-4 shrink-0" />
          Alerts are off: the server has no ALERT_WEBHOOK_SECRET to sign deliveries with, so nothing is sent. Set one (e.g. `openssl rand -hex 32`) and restart the server.
        </p>
      )}
      <dl className="grid gap-4 sm:grid-cols-2 lg:grid-cols-4">
        {item("Alerts", d.enabled ? <span className="font-medium text-emerald-700">On</span> : <span className="font-medium text-amber-800">Off</span>, "alert-settings-enabled")}
        {item(
          "Server webhook",
          d.webhook ? (
            <span className="font-mono text-xs">
              {d.webhook} ({d.format === "slack" ? "Slack" : "JSON"})
            </span>
          ) : (
            <span className="text-muted-foreground">none: only limiters with a webhook of their own alert</span>
          ),
          "alert-settings-webhook",
        )}
        {item("Default thresholds", `${thresholdsLabel(d.thresholds)} of each window`, "alert-settings-thresholds")}
        {item("Retried for", duration(d.retry_for_seconds), "alert-settings-retry")}
      </dl>
    </Card>
  );
}

/** What the event concerns: "80% · $0.82 / $1.00 per day". */
function WindowCell({ d }: { d: AlertDelivery }) {
  const hasWindow = d.spent !== null && d.spent !== undefined && d.budget !== null && d.budget !== undefined;
  if (d.threshold === null && !hasWindow) return dash;
  return (
    <div className="grid gap-0.5 text-xs">
      {d.threshold !== null && d.threshold !== undefined && <span className="font-medium">{d.threshold}%</span>}
      {hasWindow && (
        <span className="tabular whitespace-nowrap" title={d.window_start ? `window from ${utcTime(d.window_start)}` : undefined}>
          {formatMoney(d.spent)} / {formatMoney(d.budget)}
          {d.period ? ` ${periodLabel(d.period)}` : ""}
        </span>
      )}
    </div>
  );
}

function DeliveryRow({ d }: { d: AlertDelivery }) {
  return (
    <TableRow data-testid="alert-row" data-kind={d.kind} data-status={d.status} data-event-id={d.id} data-limiter-id={d.limiter_id} className={cn("align-top", d.status === "failed" && "bg-red-50/60 hover:bg-red-50")}>
      <TableCell className="whitespace-nowrap text-xs tabular" data-col="created_at">
        <Time iso={d.created_at} />
      </TableCell>
      <TableCell data-col="kind">
        <span className="whitespace-nowrap font-medium" title={d.kind}>
          {kindLabel(d.kind)}
        </span>
      </TableCell>
      <TableCell className="min-w-[9rem] max-w-[14rem] break-words text-sm" data-col="limiter">
        {d.limiter_name}
      </TableCell>
      <TableCell data-col="window">
        <WindowCell d={d} />
      </TableCell>
      <TableCell className="font-mono text-xs" data-col="destination">
        {d.destination} <span className="text-muted-foreground">({d.format === "slack" ? "Slack" : "JSON"})</span>
      </TableCell>
      <TableCell data-col="status">
        <Badge variant={statusTone(d.status)} className="whitespace-nowrap" data-testid="alert-status">
          {d.status}
        </Badge>
      </TableCell>
      <TableCell className="text-right tabular" data-col="attempts">
        {d.attempts}
      </TableCell>
      <TableCell className="max-w-[12rem] break-words text-xs" data-col="last_error">
        {d.last_error ? <span className="text-red-700">{d.last_error}</span> : dash}
      </TableCell>
      <TableCell className="text-xs tabular" data-col="when">
        {d.status === "delivered" ? (
          <span className="grid">
            <span className="text-muted-foreground">delivered</span> <Time iso={d.delivered_at} sameDayAs={d.created_at} />
          </span>
        ) : d.status === "pending" && d.next_attempt_at ? (
          <span className="grid">
            <span className="text-muted-foreground">next try</span> <Time iso={d.next_attempt_at} sameDayAs={d.created_at} />
          </span>
        ) : (
          dash
        )}
      </TableCell>
    </TableRow>
  );
}

/** The alerts the server raised and where their delivery stands, newest first, with filters. */
export function AlertsPage() {
  const [limiterId, setLimiterId] = useSearchParam("limiter_id");
  const [status, setStatus] = useSearchParam("status");
  const alerts = useLoadMore((limit) => api.alerts(alertsQuery({ limiterId, status, limit })), [limiterId, status], PAGING, 5_000);
  const limiters = usePolled(() => api.allLimiters(), [], 30_000);
  const rows = alerts.data?.deliveries;
  const defaults = alerts.latest?.defaults;
  const filtered = !!limiterId || !!status;

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Alerts"
        description="Webhook alerts the server raised (thresholds reached, budgets exhausted, limiters deactivated, expired or deleted) and where each delivery stands. Webhook addresses are shown cut to their host, as their path may hold a secret."
      >
        <FilterBar>
          <LimiterFilter id="alerts-limiter" value={limiterId} onChange={setLimiterId} limiters={limiters.data} testId="alerts-limiter-filter" />
          <FilterField id="alerts-status" label="Status" width="w-40">
            <Select id="alerts-status" value={status} onChange={(e) => setStatus(e.target.value)} data-testid="alerts-status-filter">
              <option value="">Any status</option>
              {STATUSES.map((s) => (
                <option key={s} value={s}>
                  {s[0]!.toUpperCase() + s.slice(1)}
                </option>
              ))}
            </Select>
          </FilterField>
        </FilterBar>
      </PageHeader>

      {alerts.error && <ErrorAlert title="Could not load the alerts" error={alerts.error} onRetry={() => void alerts.reload()} />}

      {defaults && <Settings d={defaults} />}

      {!rows ? (
        !alerts.error && <ListSkeleton />
      ) : rows.length === 0 ? (
        <EmptyState icon={Bell} title={filtered ? "Nothing matches these filters" : "No alerts yet"} testId="empty-alerts">
          {filtered ? "Try another limiter or status." : "Alerts appear here when spend reaches a threshold or a limiter is exhausted, deactivated, expires or is deleted."}
        </EmptyState>
      ) : (
        <>
          <Card className="min-w-0 p-2">
            <Table data-testid="alerts-table">
              <TableHeader>
                <TableRow className="hover:bg-transparent">
                  <TableHead>Time</TableHead>
                  <TableHead>Event</TableHead>
                  <TableHead>Limiter</TableHead>
                  <TableHead>Threshold / window</TableHead>
                  <TableHead>Destination</TableHead>
                  <TableHead>Status</TableHead>
                  <TableHead className="text-right">Attempts</TableHead>
                  <TableHead>Last error</TableHead>
                  <TableHead>Delivery</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {rows.map((d) => (
                  <DeliveryRow key={d.id} d={d} />
                ))}
              </TableBody>
            </Table>
          </Card>
          <LoadMoreFooter
            count={`${rows.length} alert${rows.length === 1 ? "" : "s"}, newest first`}
            more={alerts.mayHaveMore(rows.length)}
            loading={alerts.loadingMore}
            onMore={alerts.loadMore}
            testIdPrefix="alerts"
          />
        </>
      )}
    </div>
  );
}

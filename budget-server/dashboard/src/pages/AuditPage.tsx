import { History, ShieldAlert } from "lucide-react";
import { useEffect, useMemo, useState } from "react";
import { ErrorAlert } from "../components/ErrorAlert";
import { EmptyState, FilterBar, FilterField, LimiterFilter, ListSkeleton, LoadMoreFooter, PageHeader } from "../components/ListPage";
import { Badge } from "../components/ui/badge";
import { Card } from "../components/ui/card";
import { Input } from "../components/ui/input";
import { Select } from "../components/ui/select";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "../components/ui/table";
import { useLoadMore } from "../hooks/useLoadMore";
import { usePolled } from "../hooks/usePolled";
import { useSearchParam } from "../hooks/useSearchParam";
import { api, type AuditEntry } from "../lib/api";
import {
  AUDIT_PAGE,
  actionLabel,
  actionTone,
  auditQuery,
  changeLines,
  credentialNames,
  formatAuditTime,
  limiterLabel,
  mayHaveMore,
  nextLimit,
  targetLabel,
  utcTime,
  type ChangeLine,
} from "../lib/audit";
import { RANGES, type RangeId } from "../lib/ranges";
import { cn } from "../lib/utils";

const PAGING = { first: AUDIT_PAGE, next: nextLimit, mayHaveMore };

/** Lines shown before "N more". */
const SHOWN_LINES = 4;
/** Characters of a value shown before it is cut (the whole value is its hover text). */
const VALUE_CHARS = 80;

function Value({ text, className }: { text: string; className?: string }) {
  const cut = text.length > VALUE_CHARS ? `${text.slice(0, VALUE_CHARS)}…` : text;
  return (
    <span className={cn("break-all font-mono", className)} title={cut === text ? undefined : text}>
      {cut}
    </span>
  );
}

function Line({ line }: { line: ChangeLine }) {
  return (
    <li data-testid="audit-change-line" data-field={line.field}>
      <span className="text-muted-foreground">{line.field}:</span>{" "}
      {line.before !== undefined && line.after !== undefined ? (
        <>
          <Value text={line.before} className="text-muted-foreground" /> → <Value text={line.after} />
        </>
      ) : line.after !== undefined ? (
        <Value text={line.after} />
      ) : (
        <Value text={line.before ?? ""} className="text-muted-foreground line-through" />
      )}
    </li>
  );
}

/** An entry's change as "field: before → after" lines, the first few shown, the rest on request. */
export function ChangeList({ before, after }: { before: unknown; after: unknown }) {
  const lines = changeLines(before, after);
  if (lines.length === 0) return <span className="text-muted-foreground">—</span>;
  const rest = lines.slice(SHOWN_LINES);
  return (
    <div className="grid gap-0.5 text-xs" data-testid="audit-change">
      <ul className="grid gap-0.5">
        {lines.slice(0, SHOWN_LINES).map((l) => (
          <Line key={l.field} line={l} />
        ))}
      </ul>
      {rest.length > 0 && (
        <details>
          <summary className="cursor-pointer text-muted-foreground hover:text-foreground">{rest.length} more</summary>
          <ul className="mt-0.5 grid gap-0.5">
            {rest.map((l) => (
              <Line key={l.field} line={l} />
            ))}
          </ul>
        </details>
      )}
    </div>
  );
}

function AuditRow({ e, limiter, target }: { e: AuditEntry; limiter: string | null; target: string | null }) {
  const failed = e.action === "login.failed";
  return (
    <TableRow data-testid="audit-row" data-action={e.action} data-entry-id={e.id} data-limiter-id={e.limiter_id ?? ""} className={cn("align-top", failed && "bg-red-50/60 hover:bg-red-50")}>
      <TableCell className="whitespace-nowrap text-xs tabular" data-col="at" title={utcTime(e.at)}>
        {formatAuditTime(e.at)}
      </TableCell>
      <TableCell className="font-medium" data-col="actor">
        {e.actor}
      </TableCell>
      <TableCell className="font-mono text-xs" data-col="client">
        {e.client ?? <span className="text-muted-foreground">—</span>}
      </TableCell>
      <TableCell data-col="action">
        <Badge variant={actionTone(e.action)} title={e.action} className="whitespace-nowrap">
          {failed && <ShieldAlert className="h-3 w-3" />}
          {actionLabel(e.action)}
        </Badge>
      </TableCell>
      <TableCell className="max-w-[14rem] break-words text-sm" data-col="limiter">
        {limiter ?? <span className="text-muted-foreground">—</span>}
      </TableCell>
      <TableCell className="max-w-[12rem] break-words text-sm" data-col="target">
        {target ?? <span className="text-muted-foreground">—</span>}
      </TableCell>
      <TableCell className="min-w-[16rem]" data-col="change">
        <ChangeList before={e.before} after={e.after} />
      </TableCell>
    </TableRow>
  );
}

/** The audit trail: who did what, when, from where, newest first, with filters. */
export function AuditPage() {
  const [limiterId, setLimiterId] = useSearchParam("limiter_id");
  const [actorInput, setActorInput] = useState("");
  const [actor, setActor] = useState("");
  const [rangeId, setRangeId] = useState<RangeId>("7d");

  // Type freely: the filter applies once typing pauses.
  useEffect(() => {
    const t = window.setTimeout(() => setActor(actorInput.trim()), 350);
    return () => window.clearTimeout(t);
  }, [actorInput]);

  const audit = useLoadMore((limit) => api.audit(auditQuery({ limiterId, actor, rangeId, limit }, Date.now())), [limiterId, actor, rangeId], PAGING, 15_000);
  const limiters = usePolled(() => api.allLimiters(), [], 30_000);
  const credentials = usePolled(() => api.credentials(), [], 30_000);
  const rows = audit.data;

  const keyNames = useMemo(() => credentialNames(rows ?? [], credentials.data), [rows, credentials.data]);
  const filtered = !!limiterId || !!actor || rangeId !== "all";

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Audit"
        description="Every admin action: sign-ins (failed ones too), limiter, budget and key changes, with who, when, from which address and what changed. Codes are shown masked; upstream keys never."
      >
        <FilterBar>
          <LimiterFilter id="audit-limiter" value={limiterId} onChange={setLimiterId} limiters={limiters.data} testId="audit-limiter-filter" />
          <FilterField id="audit-actor" label="Actor" width="w-40">
            <Input id="audit-actor" placeholder="Actor" value={actorInput} onChange={(e) => setActorInput(e.target.value)} data-testid="audit-actor-filter" autoComplete="off" />
          </FilterField>
          <FilterField id="audit-range" label="Time range" width="w-44">
            <Select id="audit-range" value={rangeId} onChange={(e) => setRangeId(e.target.value as RangeId)} data-testid="audit-range-select">
              {RANGES.map((r) => (
                <option key={r.id} value={r.id}>
                  {r.label}
                </option>
              ))}
            </Select>
          </FilterField>
        </FilterBar>
      </PageHeader>

      {audit.error && <ErrorAlert title="Could not load the audit trail" error={audit.error} onRetry={() => void audit.reload()} />}

      {!rows ? (
        !audit.error && <ListSkeleton />
      ) : rows.length === 0 ? (
        <EmptyState icon={History} title={filtered ? "Nothing matches these filters" : "No admin actions yet"} testId="empty-audit">
          {filtered ? "Try a longer time range, another limiter or clear the actor." : "Sign-ins and changes to limiters and keys appear here as they happen."}
        </EmptyState>
      ) : (
        <>
          <Card className="min-w-0 p-2">
            <Table data-testid="audit-table">
              <TableHeader>
                <TableRow className="hover:bg-transparent">
                  <TableHead>Time</TableHead>
                  <TableHead>Actor</TableHead>
                  <TableHead>Client</TableHead>
                  <TableHead>Action</TableHead>
                  <TableHead>Limiter</TableHead>
                  <TableHead>Target</TableHead>
                  <TableHead>Change</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {rows.map((e) => (
                  <AuditRow key={e.id} e={e} limiter={limiterLabel(e.limiter_id, limiters.data)} target={targetLabel(e, keyNames)} />
                ))}
              </TableBody>
            </Table>
          </Card>
          <LoadMoreFooter
            count={`${rows.length} entr${rows.length === 1 ? "y" : "ies"}, newest first`}
            more={audit.mayHaveMore(rows.length)}
            loading={audit.loadingMore}
            onMore={audit.loadMore}
            testIdPrefix="audit"
          />
        </>
      )}
    </div>
  );
}

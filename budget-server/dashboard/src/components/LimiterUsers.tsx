import { Loader2, UserCog, X } from "lucide-react";
import { useId, useState } from "react";
import { usePolled } from "../hooks/usePolled";
import { api, type Limiter, type UserView } from "../lib/api";
import { formatCount, formatMoney, formatPercent } from "../lib/format";
import { parseBudget, PERIODS } from "../lib/validation";
import { ErrorAlert } from "./ErrorAlert";
import { Badge } from "./ui/badge";
import { Button } from "./ui/button";
import { Input } from "./ui/input";
import { UsageBar } from "./ui/progress";
import { Select } from "./ui/select";
import { Skeleton } from "./ui/skeleton";

/** Top spenders shown (users with an override are always listed by the API). */
export const USERS_LIMIT = 10;

function UserRow({ u, busy, onEdit, onRemove, readOnly }: { u: UserView; busy: boolean; onEdit: () => void; onRemove: () => void; readOnly: boolean }) {
  return (
    <li className="grid gap-1 text-xs" data-testid="user-row" data-user={u.user} data-override={String(u.is_override)}>
      <div className="flex items-center justify-between gap-2">
        <span className="flex min-w-0 items-center gap-1.5">
          <span className="truncate font-medium" title={u.user}>
            {u.user}
          </span>
          {u.is_override && (
            <Badge variant="info" className="px-1.5 py-0 text-[10px]">
              override
            </Badge>
          )}
        </span>
        <span className="flex shrink-0 items-center gap-1 tabular text-muted-foreground">
          <span data-testid="user-spend">
            {formatCount(u.requests)} req · <span className="font-medium text-foreground">{formatMoney(u.current_spend)}</span>
            {u.budget ? ` of ${formatMoney(u.budget.budget_limit)}/${u.budget.period_type}` : " (no budget)"}
          </span>
          {!readOnly && (
            <Button variant="ghost" size="sm" className="h-6 px-1.5" onClick={onEdit} aria-label={`Set the budget of ${u.user}`} data-testid="user-set">
              <UserCog className="h-3.5 w-3.5" />
            </Button>
          )}
          {u.is_override && !readOnly && (
            <Button
              variant="ghost"
              size="sm"
              className="h-6 px-1.5 text-muted-foreground hover:text-red-600"
              disabled={busy}
              onClick={onRemove}
              aria-label={`Remove the override of ${u.user}`}
              data-testid="user-remove-override"
            >
              <X className="h-3.5 w-3.5" />
            </Button>
          )}
        </span>
      </div>
      {u.budget && u.usage_percentage !== null && u.usage_percentage !== undefined ? (
        <div className="flex items-center gap-2">
          <UsageBar percent={u.usage_percentage} label={`Budget used by ${u.user}`} className="h-1.5" data-testid="user-bar" />
          <span className="w-12 shrink-0 text-right tabular text-muted-foreground">{formatPercent(u.usage_percentage)}</span>
        </div>
      ) : null}
    </li>
  );
}

/**
 * The limiter's end users in the current window (top spenders first, and everyone with an
 * override), each against their budget; set or remove one user's override.
 */
export function LimiterUsers({
  limiter,
  open,
  onChanged,
  readOnly = false,
}: {
  limiter: Limiter;
  open: boolean;
  onChanged?: (l: Limiter) => void;
  /** A viewer account: the list without the controls that set or remove overrides. */
  readOnly?: boolean;
}) {
  const users = usePolled(() => api.limiterUsers(limiter.id, USERS_LIMIT), [limiter.id], undefined, open);
  const uid = "u" + useId().replace(/[^a-zA-Z0-9]/g, "");
  const [user, setUser] = useState("");
  const [amount, setAmount] = useState("");
  const [period, setPeriod] = useState<string>(limiter.user_budget?.period_type ?? "day");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  function edit(u: UserView) {
    setUser(u.user);
    setAmount(u.budget ? String(u.budget.budget_limit) : "");
    setPeriod(u.budget?.period_type ?? limiter.user_budget?.period_type ?? "day");
    setError(null);
  }

  async function save(e: React.FormEvent) {
    e.preventDefault();
    setError(null);
    const who = user.trim();
    const budget = parseBudget(amount);
    if (!who) return setError("Name the end user (their request's user field).");
    if (!(budget > 0)) return setError("The budget must be a number of dollars above $0.");
    setBusy(true);
    try {
      const saved = await api.setUserBudget(limiter.id, who, { budget_limit: budget, period_type: period as (typeof PERIODS)[number] });
      onChanged?.(saved);
      setUser("");
      setAmount("");
      await users.reload();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  async function remove(u: UserView) {
    setError(null);
    setBusy(true);
    try {
      await api.removeUserBudget(limiter.id, u.user);
      await users.reload();
      const fresh = await api.limiter(limiter.id).catch(() => null);
      if (fresh) onChanged?.(fresh);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const rows = users.data;
  return (
    <section className="grid gap-2" data-testid="stats-users">
      <div className="flex items-baseline justify-between gap-2">
        <h4 className="text-sm font-medium">End users this period</h4>
        <span className="text-xs text-muted-foreground" data-testid="stats-users-budget">
          {limiter.user_budget ? `Per-user budget ${formatMoney(limiter.user_budget.budget_limit)}/${limiter.user_budget.period_type}` : "No per-user budget"}
        </span>
      </div>
      {users.error && !rows ? (
        <ErrorAlert title="Could not load the users" error={users.error} onRetry={() => void users.reload()} />
      ) : !rows ? (
        <Skeleton className="h-20" />
      ) : rows.length === 0 ? (
        <p className="rounded-lg border border-dashed p-3 text-center text-xs text-muted-foreground">No end users yet (requests carry one in their user field)</p>
      ) : (
        <ul className="grid gap-2">
          {rows.map((u) => (
            <UserRow key={u.user} u={u} busy={busy} onEdit={() => edit(u)} onRemove={() => void remove(u)} readOnly={readOnly} />
          ))}
        </ul>
      )}
      {!readOnly && (
        <form className="grid gap-2 rounded-lg border bg-zinc-50/60 p-3" onSubmit={save} noValidate data-testid="user-override-form">
          <span className="text-xs font-medium">Set one user's budget (replaces the per-user budget for them)</span>
          <div className="grid grid-cols-[2fr_1fr_1fr_auto] items-center gap-2">
            <Input id={`${uid}-user`} name="override_user" aria-label="End user" placeholder="end-user id" value={user} onChange={(e) => setUser(e.target.value)} />
            <Input name="override_budget" aria-label="User budget (USD)" inputMode="decimal" placeholder="$ amount" value={amount} onChange={(e) => setAmount(e.target.value)} />
            <Select name="override_period" aria-label="User budget period" value={period} onChange={(e) => setPeriod(e.target.value)}>
              {PERIODS.map((p) => (
                <option key={p} value={p}>
                  {p}
                </option>
              ))}
            </Select>
            <Button type="submit" size="sm" disabled={busy} data-testid="user-override-submit">
              {busy && <Loader2 className="animate-spin" />}
              Set
            </Button>
          </div>
          {error && (
            <p role="alert" className="text-xs font-medium text-red-600" data-testid="user-override-error">
              {error}
            </p>
          )}
        </form>
      )}
    </section>
  );
}

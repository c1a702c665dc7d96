import { Ban, BarChart3, Clock, KeyRound, Pencil, RefreshCw, Trash2, Users } from "lucide-react";
import type { Credential, Limiter, WindowView } from "../lib/api";
import { formatDuration, resetText } from "../lib/countdown";
import { previousCodeText } from "../lib/credentials";
import { formatCount, formatMoney, formatPercent, periodLabel } from "../lib/format";
import { refusalSummary } from "../lib/refusals";
import { usageLevel } from "../lib/usage";
import { cn } from "../lib/utils";
import { CopyButton } from "./CopyButton";
import { SnippetsPanel } from "./Snippets";
import { Badge } from "./ui/badge";
import { Button } from "./ui/button";
import { Card } from "./ui/card";
import { UsageBar } from "./ui/progress";
import { Switch } from "./ui/switch";
import { Tooltip } from "./ui/tooltip";

const LEVEL_TEXT = { ok: "text-emerald-700", warning: "text-amber-700", exceeded: "text-red-600" } as const;

/** Model chips shown before "+N more". */
const MODEL_CHIPS = 6;

/** "Expires in 3d 4h" / "Expired", or null without an expiry. */
export function expiryText(expiresAt: string | null | undefined, now: number): { text: string; expired: boolean; soon: boolean } | null {
  if (!expiresAt) return null;
  const at = Date.parse(expiresAt);
  if (Number.isNaN(at)) return null;
  const left = at - now;
  if (left <= 0) return { text: "Expired", expired: true, soon: false };
  return { text: `Expires in ${formatDuration(left)}`, expired: false, soon: left < 86400e3 };
}

function WindowBar({ w, now, name }: { w: WindowView; now: number; name: string }) {
  const level = usageLevel(w.usage_percentage);
  return (
    <li className="grid gap-1" data-testid="window-bar" data-period={w.period_type} data-primary={String(w.primary)}>
      <div className="flex items-baseline justify-between gap-2 text-xs">
        <span className="tabular">
          <span className="font-medium capitalize">{w.period_type}</span>
          <span className="text-muted-foreground">
            {" "}
            · <span data-testid="window-spend">{formatMoney(w.current_spend)} of {formatMoney(w.budget_limit)}</span>
          </span>
        </span>
        <span className={cn("font-medium tabular", LEVEL_TEXT[level])}>{formatPercent(w.usage_percentage)}</span>
      </div>
      <UsageBar percent={w.usage_percentage} label={`${name}: ${periodLabel(w.period_type)} budget used`} className="h-1.5" />
      <span className="text-[11px] text-muted-foreground tabular" data-testid="window-reset">
        {resetText(w.period_end, now)}
      </span>
    </li>
  );
}

export interface LimiterCardProps {
  limiter: Limiter;
  /** The limiter's upstream credential, when it has one and the list has loaded. */
  credential?: Credential | null;
  now: number;
  toggling: boolean;
  onToggle: (active: boolean) => void;
  onEdit: () => void;
  onStats: () => void;
  onRotate: () => void;
  onDelete: () => void;
  /**
   * A viewer account's card: no switch, edit, rotate or delete, and no copy buttons (its code
   * comes masked from the server and would not work).
   */
  readOnly?: boolean;
}

export function LimiterCard({ limiter: l, credential, now, toggling, onToggle, onEdit, onStats, onRotate, onDelete, readOnly = false }: LimiterCardProps) {
  const level = usageLevel(l.usage_percentage);
  const switchId = `active-${l.id}`;
  const expiry = expiryText(l.expires_at, now);
  const extraWindows = (l.windows ?? []).filter((w) => !w.primary);
  const models = l.allowed_models ?? [];
  const overrides = Object.keys(l.user_overrides ?? {}).length;
  // The badge follows the tightest window: an exhausted hourly window refuses like the primary one.
  const worst = usageLevel(Math.max(l.usage_percentage, ...extraWindows.map((w) => w.usage_percentage)));
  // With a credential the server sends its key and the code is the client's API key.
  const heldKey = !!l.credential_id;
  const credentialName = heldKey ? (credential?.name ?? "a stored key") : null;
  const previousCode = previousCodeText(l.previous_code?.until, now);
  const refused = l.refused?.total ?? 0;
  // The card has no request count: nothing spent or held in the window while requests were
  // refused means nothing got through, a blocked customer rather than an idle one.
  const refusedAll = refused > 0 && l.current_spend === 0 && l.usage_percentage === 0;
  return (
    <Card
      data-testid="limiter-card"
      data-limiter-id={l.id}
      data-active={String(l.is_active)}
      className={cn("flex min-w-0 flex-col gap-4 p-5 transition-shadow hover:shadow-md", !l.is_active && "bg-zinc-50/80")}
    >
      <div className="flex items-start gap-3">
        <div className="min-w-0 flex-1">
          <h3 className="truncate font-semibold leading-tight tracking-tight" title={l.name} data-testid="limiter-name">
            {l.name}
          </h3>
          <p className="mt-1 text-sm text-muted-foreground" data-testid="limiter-budget">
            <span className="font-medium text-foreground tabular">{formatMoney(l.budget_limit)}</span> {periodLabel(l.period_type)}
            {l.timezone && l.timezone !== "UTC" && <span className="text-xs"> · {l.timezone}</span>}
          </p>
        </div>
        <div className="flex items-center gap-2 pt-0.5">
          <label htmlFor={switchId} className={cn("text-xs font-medium", l.is_active ? "text-emerald-700" : "text-muted-foreground")}>
            {l.is_active ? "Active" : "Inactive"}
          </label>
          <Switch
            id={switchId}
            checked={l.is_active}
            disabled={toggling || readOnly}
            onCheckedChange={onToggle}
            data-testid="limiter-active-switch"
            aria-label={`${l.is_active ? "Deactivate" : "Activate"} ${l.name}`}
          />
        </div>
      </div>

      <div className="flex flex-wrap gap-1.5">
        <Badge variant={l.mode === "strict" ? "info" : "secondary"} data-testid="mode-badge">
          {l.mode === "strict" ? "Strict" : "Soft"}
        </Badge>
        <Badge variant="outline" data-testid="provider-badge">
          {l.provider === "azure" ? "Azure OpenAI" : "OpenAI"}
        </Badge>
        {l.unpriced === "refuse" && <Badge variant="outline">Refuses unpriced</Badge>}
        {l.unmetered_endpoints === "allow" && (
          <Badge variant="warning" title="Batches, fine-tuning and other endpoints the proxy cannot meter are forwarded; their cost is not counted">
            Unmetered allowed
          </Badge>
        )}
        {expiry && (
          <Badge
            variant={expiry.expired ? "destructive" : expiry.soon ? "warning" : "outline"}
            title={`Expires ${new Date(l.expires_at!).toLocaleString()}`}
            data-testid="expiry-badge"
            data-expired={String(expiry.expired)}
          >
            <Clock className="h-3 w-3" />
            {expiry.text}
          </Badge>
        )}
        {l.max_request_cost !== null && l.max_request_cost !== undefined && (
          <Badge variant="outline" data-testid="max-cost-badge" title={l.cap_output_tokens ? "Larger requests get their output capped" : "Larger requests are refused"}>
            Max {formatMoney(l.max_request_cost)}/request
          </Badge>
        )}
        {worst === "exceeded" && <Badge variant="destructive">Budget reached</Badge>}
        {worst === "warning" && <Badge variant="warning">Near budget</Badge>}
        {refused > 0 && (
          <Badge
            variant={refusedAll ? "destructive" : "outline"}
            title={`${refusedAll ? "Every request was refused" : "Refused"} this period: ${refusalSummary(l.refused)}`}
            data-testid="refused-badge"
            data-refused={String(refused)}
            data-all-refused={String(refusedAll)}
          >
            <Ban className="h-3 w-3" />
            {formatCount(refused)} refused this period
          </Badge>
        )}
      </div>

      <div className="grid grid-cols-1 gap-2">
        <div className="flex items-baseline justify-between gap-2 text-sm">
          <span className="tabular" data-testid="limiter-spend" data-spend={String(l.current_spend)}>
            <span className="text-base font-semibold">{formatMoney(l.current_spend)}</span>
            <span className="text-muted-foreground"> of {formatMoney(l.budget_limit)}</span>
          </span>
          <span className={cn("text-xs font-medium tabular", LEVEL_TEXT[level])} data-testid="limiter-usage-percent">
            {formatPercent(l.usage_percentage)}
          </span>
        </div>
        <UsageBar percent={l.usage_percentage} label={`Budget used by ${l.name}`} data-testid="usage-bar" />
        <div className="flex items-center justify-between text-xs text-muted-foreground">
          <span className="tabular">{formatMoney(l.remaining_budget)} left</span>
          <span className="flex items-center gap-1 tabular" data-testid="limiter-reset">
            <Clock className="h-3 w-3" />
            {resetText(l.period_end, now)}
          </span>
        </div>
      </div>

      {extraWindows.length > 0 && (
        <ul className="grid gap-2 border-t pt-3" aria-label="Other budget windows" data-testid="window-bars">
          {extraWindows.map((w) => (
            <WindowBar key={w.period_type} w={w} now={now} name={l.name} />
          ))}
        </ul>
      )}

      {(l.user_budget || overrides > 0 || l.require_user) && (
        <p className="flex items-center gap-1.5 text-xs text-muted-foreground" data-testid="user-budget-line">
          <Users className="h-3 w-3 shrink-0" />
          <span>
            {l.user_budget ? (
              <>
                Per-user budget{" "}
                <span className="font-medium text-foreground tabular">
                  {formatMoney(l.user_budget.budget_limit)}/{l.user_budget.period_type}
                </span>
              </>
            ) : (
              "No per-user budget"
            )}
            {overrides > 0 && ` · ${overrides} override${overrides === 1 ? "" : "s"}`}
            {l.require_user && " · user id required"}
          </span>
        </p>
      )}

      {models.length > 0 && (
        <div className="flex flex-wrap items-center gap-1" data-testid="allowed-models">
          <span className="mr-0.5 text-xs text-muted-foreground">Models:</span>
          {models.slice(0, MODEL_CHIPS).map((m) => (
            <span key={m} className="rounded bg-zinc-100 px-1.5 py-0.5 font-mono text-[11px]" data-testid="model-chip">
              {m}
            </span>
          ))}
          {models.length > MODEL_CHIPS && (
            <span className="text-[11px] text-muted-foreground" title={models.slice(MODEL_CHIPS).join(", ")}>
              +{models.length - MODEL_CHIPS} more
            </span>
          )}
        </div>
      )}

      <p
        className="flex min-w-0 items-center gap-1.5 text-xs text-muted-foreground"
        data-testid="limiter-credential"
        data-credential-id={l.credential_id ?? ""}
        title={heldKey ? "The server sends this stored key; whatever key a client sends is dropped" : "Clients send their own OpenAI or Azure key, which the proxy forwards"}
      >
        <KeyRound className="h-3 w-3 shrink-0" />
        <span className="min-w-0 truncate">
          Upstream key:{" "}
          {heldKey ? (
            <>
              <span className="font-medium text-foreground" data-testid="limiter-credential-name">
                {credentialName}
              </span>
              {credential && <span className="font-mono"> {credential.key_hint}</span>}
            </>
          ) : (
            <span className="font-medium text-foreground" data-testid="limiter-credential-name">
              pass-through
            </span>
          )}
        </span>
      </p>

      <div className="grid min-w-0 grid-cols-1 gap-1.5">
        <span className="text-xs font-medium text-muted-foreground">Proxy endpoint</span>
        <div className="flex min-w-0 items-center gap-2 rounded-lg border bg-zinc-50/60 py-1 pl-3 pr-1">
          <code className="min-w-0 flex-1 truncate font-mono text-xs" title={l.proxy_endpoint} data-testid="proxy-endpoint">
            {l.proxy_endpoint}
          </code>
          {!readOnly && <CopyButton text={l.proxy_endpoint} testId="copy-endpoint" label="Copy" />}
        </div>
        {heldKey && (
          <>
            <span className="text-xs font-medium text-muted-foreground">API key for clients (the limiter code)</span>
            <div className="flex min-w-0 items-center gap-2 rounded-lg border bg-zinc-50/60 py-1 pl-3 pr-1">
              <code className="min-w-0 flex-1 truncate font-mono text-xs" title={l.code} data-testid="limiter-code">
                {l.code}
              </code>
              {!readOnly && <CopyButton text={l.code} testId="copy-code" label="Copy" />}
            </div>
          </>
        )}
        {previousCode && (
          <p className="flex items-center gap-1 text-[11px] font-medium text-amber-700" data-testid="previous-code">
            <Clock className="h-3 w-3 shrink-0" />
            {previousCode}
          </p>
        )}
      </div>

      {!readOnly && <SnippetsPanel endpoint={l.proxy_endpoint} provider={l.provider} code={l.code} credentialName={credentialName} />}

      <div className="mt-auto flex items-center gap-1 border-t pt-3">
        <Button variant="ghost" size="sm" onClick={onStats} data-testid="action-stats">
          <BarChart3 />
          Stats
        </Button>
        {readOnly ? (
          <span className="ml-auto text-xs text-muted-foreground" data-testid="read-only-note">
            Read-only: codes are masked for viewers
          </span>
        ) : (
          <>
            <Button variant="ghost" size="sm" onClick={onEdit} data-testid="action-edit">
              <Pencil />
              Edit
            </Button>
            <div className="ml-auto flex items-center">
              <Tooltip content="Rotate code: issue a new code; choose how long the old one keeps working">
                <Button variant="ghost" size="icon" onClick={onRotate} aria-label={`Rotate code of ${l.name}`} data-testid="action-rotate">
                  <RefreshCw />
                </Button>
              </Tooltip>
              <Tooltip content="Delete limiter">
                <Button
                  variant="ghost"
                  size="icon"
                  onClick={onDelete}
                  aria-label={`Delete ${l.name}`}
                  data-testid="action-delete"
                  className="text-muted-foreground hover:bg-red-50 hover:text-red-600"
                >
                  <Trash2 />
                </Button>
              </Tooltip>
            </div>
          </>
        )}
      </div>
    </Card>
  );
}

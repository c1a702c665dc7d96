import { BarChart3, Clock, Pencil, RefreshCw, Trash2 } from "lucide-react";
import type { Limiter } from "../lib/api";
import { resetText } from "../lib/countdown";
import { formatMoney, formatPercent, periodLabel } from "../lib/format";
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

export interface LimiterCardProps {
  limiter: Limiter;
  now: number;
  toggling: boolean;
  onToggle: (active: boolean) => void;
  onEdit: () => void;
  onStats: () => void;
  onRotate: () => void;
  onDelete: () => void;
}

export function LimiterCard({ limiter: l, now, toggling, onToggle, onEdit, onStats, onRotate, onDelete }: LimiterCardProps) {
  const level = usageLevel(l.usage_percentage);
  const switchId = `active-${l.id}`;
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
            disabled={toggling}
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
        {level === "exceeded" && <Badge variant="destructive">Budget reached</Badge>}
        {level === "warning" && <Badge variant="warning">Near budget</Badge>}
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

      <div className="grid min-w-0 grid-cols-1 gap-1.5">
        <span className="text-xs font-medium text-muted-foreground">Proxy endpoint</span>
        <div className="flex min-w-0 items-center gap-2 rounded-lg border bg-zinc-50/60 py-1 pl-3 pr-1">
          <code className="min-w-0 flex-1 truncate font-mono text-xs" title={l.proxy_endpoint} data-testid="proxy-endpoint">
            {l.proxy_endpoint}
          </code>
          <CopyButton text={l.proxy_endpoint} testId="copy-endpoint" label="Copy" />
        </div>
      </div>

      <SnippetsPanel endpoint={l.proxy_endpoint} provider={l.provider} />

      <div className="mt-auto flex items-center gap-1 border-t pt-3">
        <Button variant="ghost" size="sm" onClick={onStats} data-testid="action-stats">
          <BarChart3 />
          Stats
        </Button>
        <Button variant="ghost" size="sm" onClick={onEdit} data-testid="action-edit">
          <Pencil />
          Edit
        </Button>
        <div className="ml-auto flex items-center">
          <Tooltip content="Rotate code: issue a new endpoint; the old one stops working at once">
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
      </div>
    </Card>
  );
}

import type { LucideIcon } from "lucide-react";
import { Card } from "./ui/card";
import { Skeleton } from "./ui/skeleton";

export function StatCard({ label, value, hint, icon: Icon, testId, loading }: { label: string; value: string; hint?: string; icon?: LucideIcon; testId?: string; loading?: boolean }) {
  return (
    <Card className="p-5" data-testid={testId}>
      <div className="flex items-center justify-between text-sm font-medium text-muted-foreground">
        <span>{label}</span>
        {Icon && <Icon className="h-4 w-4" />}
      </div>
      {loading ? (
        <Skeleton className="mt-3 h-7 w-28" />
      ) : (
        <div className="mt-2 text-2xl font-semibold tracking-tight tabular" data-testid={testId ? `${testId}-value` : undefined}>
          {value}
        </div>
      )}
      {hint && <p className="mt-1 text-xs text-muted-foreground">{hint}</p>}
    </Card>
  );
}

/** A small label/value pair for dialogs. */
export function Figure({ label, value, testId, tone, small }: { label: string; value: string; testId?: string; tone?: "danger"; small?: boolean }) {
  return (
    <div className="rounded-lg border bg-zinc-50/60 p-3">
      <div className="text-xs text-muted-foreground">{label}</div>
      <div className={`mt-1 font-semibold tabular ${small ? "text-sm" : "text-base"} ${tone === "danger" ? "text-red-600" : ""}`} data-testid={testId}>
        {value}
      </div>
    </div>
  );
}

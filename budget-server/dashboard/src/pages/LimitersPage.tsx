import { Gauge, Plus } from "lucide-react";
import { useState } from "react";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorAlert } from "../components/ErrorAlert";
import { LimiterCard } from "../components/LimiterCard";
import { LimiterFormDialog } from "../components/LimiterFormDialog";
import { LimiterStatsDialog } from "../components/LimiterStatsDialog";
import { EmptyState, PageHeader } from "../components/ListPage";
import { RotateCodeDialog } from "../components/RotateCodeDialog";
import { Button } from "../components/ui/button";
import { Card } from "../components/ui/card";
import { Skeleton } from "../components/ui/skeleton";
import { useToast } from "../components/ui/toast";
import { useCanWrite } from "../hooks/auth";
import { useNow, usePolled } from "../hooks/usePolled";
import { api, type Credential, type Limiter } from "../lib/api";
import { formatDateTime, formatMoney } from "../lib/format";

function CardSkeleton() {
  return (
    <Card className="grid gap-4 p-5" data-testid="limiter-skeleton">
      <div className="flex justify-between">
        <div className="grid gap-2">
          <Skeleton className="h-5 w-40" />
          <Skeleton className="h-4 w-24" />
        </div>
        <Skeleton className="h-5 w-9 rounded-full" />
      </div>
      <Skeleton className="h-4 w-28" />
      <Skeleton className="h-2 w-full" />
      <Skeleton className="h-8 w-full" />
      <Skeleton className="h-8 w-full" />
    </Card>
  );
}

export function LimitersPage() {
  const limiters = usePolled(() => api.limiters(), []);
  // Names for the cards' "Upstream key" line; they change rarely.
  const credentials = usePolled(() => api.credentials(), [], 30_000);
  const credentialById = new Map<string, Credential>((credentials.data ?? []).map((c) => [c.id, c]));
  const now = useNow(1000);
  const toast = useToast();
  const canWrite = useCanWrite();
  const [formOpen, setFormOpen] = useState(false);
  const [editing, setEditing] = useState<Limiter | null>(null);
  const [statsFor, setStatsFor] = useState<Limiter | null>(null);
  const [deleting, setDeleting] = useState<Limiter | null>(null);
  const [rotating, setRotating] = useState<Limiter | null>(null);
  const [toggling, setToggling] = useState<Record<string, boolean>>({});

  const replace = (l: Limiter) => limiters.mutate((old) => old?.map((x) => (x.id === l.id ? l : x)));

  async function toggle(l: Limiter, active: boolean) {
    setToggling((t) => ({ ...t, [l.id]: true }));
    replace({ ...l, is_active: active }); // optimistic
    try {
      const saved = await api.updateLimiter(l.id, { is_active: active });
      replace(saved);
      toast({ title: active ? `${l.name} activated` : `${l.name} deactivated`, description: active ? undefined : "Its endpoint now refuses requests.", variant: "success" });
    } catch (e) {
      replace(l);
      toast({ title: "Could not change the limiter", description: e instanceof Error ? e.message : String(e), variant: "error" });
    } finally {
      setToggling((t) => ({ ...t, [l.id]: false }));
    }
  }

  async function confirmDelete(l: Limiter) {
    try {
      await api.deleteLimiter(l.id);
      limiters.mutate((old) => old?.filter((x) => x.id !== l.id));
      toast({ title: `${l.name} deleted`, description: "Its endpoint stopped working; its usage stays in the statistics.", variant: "success" });
    } catch (e) {
      toast({ title: "Could not delete the limiter", description: e instanceof Error ? e.message : String(e), variant: "error" });
    } finally {
      void limiters.reload();
      void credentials.reload();
    }
  }

  function rotated(l: Limiter, grace: number) {
    replace(l);
    toast({
      title: "Code rotated",
      description:
        grace > 0 && l.previous_code
          ? `Update your clients with the new code; the old one works until ${formatDateTime(l.previous_code.until)}.`
          : "Update your clients with the new code; the old one no longer works.",
      variant: "success",
    });
  }

  const list = limiters.data;
  const totalBudget = (list ?? []).filter((l) => l.is_active).reduce((a, l) => a + l.budget_limit, 0);

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Limiters"
        wide
        description={
          list && list.length > 0
            ? `${list.length} limiter${list.length === 1 ? "" : "s"}, ${list.filter((l) => l.is_active).length} active · ${formatMoney(totalBudget)} in active budgets`
            : "Each limiter is a budget with its own OpenAI-compatible endpoint."
        }
      >
        {canWrite && (
          <Button
            onClick={() => {
              setEditing(null);
              setFormOpen(true);
            }}
            data-testid="create-limiter"
          >
            <Plus />
            Create limiter
          </Button>
        )}
      </PageHeader>

      {limiters.error && <ErrorAlert title="Could not load limiters" error={limiters.error} onRetry={() => void limiters.reload()} />}

      {limiters.loading && !list ? (
        <div className="grid grid-cols-1 gap-4 md:grid-cols-2 xl:grid-cols-3" aria-busy="true">
          <CardSkeleton />
          <CardSkeleton />
          <CardSkeleton />
        </div>
      ) : list && list.length === 0 ? (
        <EmptyState
          icon={Gauge}
          title="No limiters yet — create one"
          testId="empty-limiters"
          narrow
          action={
            canWrite && (
              <Button onClick={() => setFormOpen(true)} className="mt-2">
                <Plus />
                Create limiter
              </Button>
            )
          }
        >
          Give a customer, team or project a dollar budget per minute, hour, day, week, month or year, and hand them the endpoint.
        </EmptyState>
      ) : list ? (
        <div className="grid grid-cols-1 items-start gap-4 md:grid-cols-2 xl:grid-cols-3" data-testid="limiter-grid">
          {list.map((l) => (
            <LimiterCard
              key={l.id}
              limiter={l}
              credential={l.credential_id ? credentialById.get(l.credential_id) : null}
              now={now}
              toggling={!!toggling[l.id]}
              onToggle={(a) => void toggle(l, a)}
              onEdit={() => {
                setEditing(l);
                setFormOpen(true);
              }}
              onStats={() => setStatsFor(l)}
              onRotate={() => setRotating(l)}
              onDelete={() => setDeleting(l)}
              readOnly={!canWrite}
            />
          ))}
        </div>
      ) : null}

      <LimiterFormDialog
        open={formOpen}
        limiter={editing}
        onOpenChange={setFormOpen}
        onSaved={(l, created) => {
          if (created) limiters.mutate((old) => [...(old ?? []), l]);
          else replace(l);
          void credentials.reload(); // limiter_count changes with an attached or detached key
          toast({ title: created ? `${l.name} created` : `${l.name} saved`, description: created ? "Copy its endpoint from the card." : undefined, variant: "success" });
          void limiters.reload();
        }}
      />
      <LimiterStatsDialog limiter={statsFor} onOpenChange={(o) => !o && setStatsFor(null)} onChanged={replace} readOnly={!canWrite} />

      <ConfirmDialog
        open={!!deleting}
        onClose={() => setDeleting(null)}
        title={`Delete “${deleting?.name}”?`}
        description="Its endpoint stops working at once and cannot be restored. Its past usage stays in the statistics, shown as deleted."
        confirmLabel="Delete"
        testId="delete-dialog"
        confirmTestId="confirm-delete"
        onConfirm={() => deleting && void confirmDelete(deleting)}
      />

      <RotateCodeDialog limiter={rotating} onOpenChange={(o) => !o && setRotating(null)} onRotated={rotated} />
    </div>
  );
}

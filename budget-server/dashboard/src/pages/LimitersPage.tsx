import { Gauge, Plus } from "lucide-react";
import { useState } from "react";
import { ErrorAlert } from "../components/ErrorAlert";
import { LimiterCard } from "../components/LimiterCard";
import { LimiterFormDialog } from "../components/LimiterFormDialog";
import { LimiterStatsDialog } from "../components/LimiterStatsDialog";
import { RotateCodeDialog } from "../components/RotateCodeDialog";
import {
  AlertDialog,
  AlertDialogAction,
  AlertDialogCancel,
  AlertDialogContent,
  AlertDialogDescription,
  AlertDialogFooter,
  AlertDialogHeader,
  AlertDialogTitle,
} from "../components/ui/alert-dialog";
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
      <div className="flex flex-wrap items-end justify-between gap-4">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight">Limiters</h1>
          <p className="mt-1 text-sm text-muted-foreground">
            {list && list.length > 0
              ? `${list.length} limiter${list.length === 1 ? "" : "s"}, ${list.filter((l) => l.is_active).length} active · ${formatMoney(totalBudget)} in active budgets`
              : "Each limiter is a budget with its own OpenAI-compatible endpoint."}
          </p>
        </div>
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
      </div>

      {limiters.error && <ErrorAlert title="Could not load limiters" error={limiters.error} onRetry={() => void limiters.reload()} />}

      {limiters.loading && !list ? (
        <div className="grid grid-cols-1 gap-4 md:grid-cols-2 xl:grid-cols-3" aria-busy="true">
          <CardSkeleton />
          <CardSkeleton />
          <CardSkeleton />
        </div>
      ) : list && list.length === 0 ? (
        <Card className="flex flex-col items-center gap-3 border-dashed px-6 py-16 text-center" data-testid="empty-limiters">
          <span className="flex h-12 w-12 items-center justify-center rounded-full bg-zinc-100">
            <Gauge className="h-6 w-6 text-zinc-500" />
          </span>
          <h2 className="text-lg font-semibold">No limiters yet — create one</h2>
          <p className="max-w-sm text-sm text-muted-foreground">
            Give a customer, team or project a dollar budget per minute, hour, day, week, month or year, and hand them the endpoint.
          </p>
          {canWrite && (
            <Button onClick={() => setFormOpen(true)} className="mt-2">
              <Plus />
              Create limiter
            </Button>
          )}
        </Card>
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

      <AlertDialog open={!!deleting} onOpenChange={(o) => !o && setDeleting(null)}>
        <AlertDialogContent data-testid="delete-dialog">
          <AlertDialogHeader>
            <AlertDialogTitle>Delete “{deleting?.name}”?</AlertDialogTitle>
            <AlertDialogDescription>
              Its endpoint stops working at once and cannot be restored. Its past usage stays in the statistics, shown as deleted.
            </AlertDialogDescription>
          </AlertDialogHeader>
          <AlertDialogFooter>
            <AlertDialogCancel>Cancel</AlertDialogCancel>
            <AlertDialogAction destructive data-testid="confirm-delete" onClick={() => deleting && void confirmDelete(deleting)}>
              Delete
            </AlertDialogAction>
          </AlertDialogFooter>
        </AlertDialogContent>
      </AlertDialog>

      <RotateCodeDialog limiter={rotating} onOpenChange={(o) => !o && setRotating(null)} onRotated={rotated} />
    </div>
  );
}

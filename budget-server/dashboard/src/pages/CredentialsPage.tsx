import { KeyRound, Loader2, Pencil, Plus, RefreshCw, Trash2 } from "lucide-react";
import { useState } from "react";
import { CredentialFormDialog, type CredentialFormMode } from "../components/CredentialFormDialog";
import { ErrorAlert } from "../components/ErrorAlert";
import { FormError } from "../components/FormDialog";
import { EmptyState, ListSkeleton, PageHeader } from "../components/ListPage";
import { Badge } from "../components/ui/badge";
import { Button } from "../components/ui/button";
import { Card } from "../components/ui/card";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "../components/ui/dialog";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "../components/ui/table";
import { useToast } from "../components/ui/toast";
import { Tooltip } from "../components/ui/tooltip";
import { useCanWrite } from "../hooks/auth";
import { usePolled } from "../hooks/usePolled";
import { api, type Credential } from "../lib/api";
import { kindLabel } from "../lib/credentials";
import { formatDateTime } from "../lib/format";

function CredentialRow({ c, onRotate, onEdit, onDelete, readOnly }: { c: Credential; onRotate: () => void; onEdit: () => void; onDelete: () => void; readOnly: boolean }) {
  const headers = [c.organization, c.project].filter(Boolean) as string[];
  return (
    <TableRow data-testid="credential-row" data-credential-id={c.id} data-name={c.name}>
      <TableCell className="font-medium" data-col="name">
        {c.name}
      </TableCell>
      <TableCell data-col="kind">
        <Badge variant="outline">{kindLabel(c.kind)}</Badge>
      </TableCell>
      <TableCell data-col="key">
        <code className="font-mono text-xs" data-testid="credential-hint">
          {c.key_hint}
        </code>
        <div className="font-mono text-[11px] text-muted-foreground" data-testid="credential-fingerprint">
          {c.fingerprint}
        </div>
      </TableCell>
      <TableCell className="text-xs" data-col="headers">
        {headers.length > 0 ? headers.map((h) => <div key={h} className="font-mono">{h}</div>) : <span className="text-muted-foreground">—</span>}
      </TableCell>
      <TableCell className="text-right tabular" data-col="limiters" data-testid="credential-limiter-count" data-count={String(c.limiter_count)}>
        {c.limiter_count === 0 ? <span className="text-muted-foreground">unused</span> : `${c.limiter_count} limiter${c.limiter_count === 1 ? "" : "s"}`}
      </TableCell>
      <TableCell className="whitespace-nowrap text-xs text-muted-foreground" data-col="rotated" title={`Created ${formatDateTime(c.created_at)}`}>
        {formatDateTime(c.rotated_at)}
      </TableCell>
      <TableCell className="text-right" data-col="actions">
        {!readOnly && (
          <div className="flex items-center justify-end">
            <Tooltip content="Rotate: enter a new key; every limiter using it switches on its next request">
              <Button variant="ghost" size="sm" onClick={onRotate} data-testid="credential-rotate" aria-label={`Rotate the key of ${c.name}`}>
                <RefreshCw />
                Rotate
              </Button>
            </Tooltip>
            <Button variant="ghost" size="icon" onClick={onEdit} data-testid="credential-edit" aria-label={`Edit ${c.name}`}>
              <Pencil />
            </Button>
            <Button
              variant="ghost"
              size="icon"
              onClick={onDelete}
              data-testid="credential-delete"
              aria-label={`Delete ${c.name}`}
              className="text-muted-foreground hover:bg-red-50 hover:text-red-600"
            >
              <Trash2 />
            </Button>
          </div>
        )}
      </TableCell>
    </TableRow>
  );
}

/** Confirms a deletion; a refusal (409: limiters still use it) stays in the dialog with the server's reason. */
function DeleteCredentialDialog({ credential, onOpenChange, onDeleted }: { credential: Credential | null; onOpenChange: (open: boolean) => void; onDeleted: (c: Credential) => void }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [shownFor, setShownFor] = useState<Credential | null>(null);
  if (credential !== shownFor) {
    setShownFor(credential);
    setError(null);
  }
  async function confirm() {
    if (!credential) return;
    setBusy(true);
    setError(null);
    try {
      await api.deleteCredential(credential.id);
      onDeleted(credential);
      onOpenChange(false);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Dialog open={!!credential} onOpenChange={onOpenChange}>
      <DialogContent data-testid="delete-credential-dialog">
        <DialogHeader>
          <DialogTitle>Delete “{credential?.name}”?</DialogTitle>
          <DialogDescription>
            The server forgets the key. A credential that limiters still use cannot be deleted: attach another key to them, or switch them to pass-through, first.
          </DialogDescription>
        </DialogHeader>
        {error && <FormError testId="delete-credential-error">{error}</FormError>}
        <DialogFooter>
          <Button variant="outline" onClick={() => onOpenChange(false)}>
            Cancel
          </Button>
          <Button variant="destructive" disabled={busy} onClick={() => void confirm()} data-testid="confirm-delete-credential">
            {busy && <Loader2 className="animate-spin" />}
            Delete
          </Button>
        </DialogFooter>
      </DialogContent>
    </Dialog>
  );
}

export function CredentialsPage() {
  const credentials = usePolled(() => api.credentials(), []);
  const toast = useToast();
  const canWrite = useCanWrite();
  // The dialog keeps its last mode while it closes, so its text does not flip mid-animation.
  const [form, setFormState] = useState<{ mode: CredentialFormMode; credential: Credential | null }>({ mode: "create", credential: null });
  const [formOpen, setFormOpen] = useState(false);
  const setForm = (f: { mode: CredentialFormMode; credential: Credential | null }) => {
    setFormState(f);
    setFormOpen(true);
  };
  const [deleting, setDeleting] = useState<Credential | null>(null);
  const list = credentials.data;

  const saved = (c: Credential, mode: CredentialFormMode) => {
    credentials.mutate((old) => {
      const rest = (old ?? []).filter((x) => x.id !== c.id);
      return [...rest, c].sort((a, b) => a.name.localeCompare(b.name));
    });
    toast({
      title: mode === "create" ? `${c.name} saved` : mode === "rotate" ? `Key of ${c.name} rotated` : `${c.name} saved`,
      description:
        mode === "rotate"
          ? `${c.limiter_count === 1 ? "1 limiter sends" : `${c.limiter_count} limiters send`} the new key (${c.key_hint}) from the next request.`
          : mode === "create"
            ? `Stored encrypted; only ${c.key_hint} is shown from now on. Attach it to a limiter in its form.`
            : undefined,
      variant: "success",
    });
    void credentials.reload();
  };

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Credentials"
        description="OpenAI and Azure keys the server holds, encrypted. A limiter with a stored key sends it upstream and drops the client's; its clients use the limiter code as their API key and never see the real one."
      >
        {canWrite && (
          <Button onClick={() => setForm({ mode: "create", credential: null })} data-testid="create-credential">
            <Plus />
            Add key
          </Button>
        )}
      </PageHeader>

      {credentials.error && <ErrorAlert title="Could not load credentials" error={credentials.error} onRetry={() => void credentials.reload()} />}

      {credentials.loading && !list ? (
        <ListSkeleton rows={2} />
      ) : list && list.length === 0 ? (
        <EmptyState
          icon={KeyRound}
          title="No stored keys — limiters pass the client's key through"
          testId="empty-credentials"
          action={
            canWrite && (
              <Button onClick={() => setForm({ mode: "create", credential: null })} className="mt-2">
                <Plus />
                Add key
              </Button>
            )
          }
        >
          Store an OpenAI or Azure key here and attach it to a limiter: its customers then get the limiter code as their only credential, and cannot call OpenAI around the budget.
        </EmptyState>
      ) : list ? (
        <Card className="min-w-0 p-2">
          <Table data-testid="credentials-table">
            <TableHeader>
              <TableRow>
                <TableHead>Name</TableHead>
                <TableHead>Kind</TableHead>
                <TableHead>Key</TableHead>
                <TableHead>Organization / project</TableHead>
                <TableHead className="text-right">Used by</TableHead>
                <TableHead>Key set</TableHead>
                <TableHead className="text-right">
                  <span className="sr-only">Actions</span>
                </TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {list.map((c) => (
                <CredentialRow
                  key={c.id}
                  c={c}
                  onRotate={() => setForm({ mode: "rotate", credential: c })}
                  onEdit={() => setForm({ mode: "edit", credential: c })}
                  onDelete={() => setDeleting(c)}
                  readOnly={!canWrite}
                />
              ))}
            </TableBody>
          </Table>
        </Card>
      ) : null}

      <CredentialFormDialog
        mode={form.mode}
        credential={form.credential}
        open={formOpen}
        onOpenChange={setFormOpen}
        onSaved={saved}
      />
      <DeleteCredentialDialog
        credential={deleting}
        onOpenChange={(o) => !o && setDeleting(null)}
        onDeleted={(c) => {
          credentials.mutate((old) => old?.filter((x) => x.id !== c.id));
          toast({ title: `${c.name} deleted`, description: "The server no longer holds this key.", variant: "success" });
          void credentials.reload();
        }}
      />
    </div>
  );
}

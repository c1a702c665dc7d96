import { Ban, CircleCheck, KeyRound, Plus, Users } from "lucide-react";
import { useState } from "react";
import { AccountFormDialog, type AccountFormMode } from "../components/AccountFormDialog";
import { ConfirmDialog } from "../components/ConfirmDialog";
import { ErrorAlert } from "../components/ErrorAlert";
import { EmptyState, ListSkeleton, PageHeader } from "../components/ListPage";
import { Badge } from "../components/ui/badge";
import { Button } from "../components/ui/button";
import { Card } from "../components/ui/card";
import { Select } from "../components/ui/select";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "../components/ui/table";
import { useToast } from "../components/ui/toast";
import { useAuth, useCanWrite } from "../hooks/auth";
import { usePolled } from "../hooks/usePolled";
import { roleLabel, sortAccounts } from "../lib/accounts";
import { api, type Account, type AccountUpdate, type Role } from "../lib/api";
import { formatDateTime } from "../lib/format";

function AccountRow({
  a,
  own,
  busy,
  onRole,
  onDisable,
  onEnable,
  onReset,
}: {
  a: Account;
  /** The signed-in account: it may not demote or disable itself. */
  own: boolean;
  busy: boolean;
  onRole: (role: Role) => void;
  onDisable: () => void;
  onEnable: () => void;
  onReset: () => void;
}) {
  const selfNote = own ? "You cannot demote or disable your own account; another admin can." : undefined;
  return (
    <TableRow data-testid="account-row" data-account-id={a.id} data-username={a.username} data-disabled={String(a.disabled)} data-role={a.role}>
      <TableCell className="font-medium" data-col="username">
        {a.username}
        {own && <span className="ml-2 text-xs font-normal text-muted-foreground">(you)</span>}
      </TableCell>
      <TableCell data-col="role">
        <div className="w-36" title={selfNote}>
          <Select aria-label={`Role of ${a.username}`} value={a.role} disabled={own || busy} onChange={(e) => onRole(e.target.value as Role)} data-testid="account-role">
            <option value="admin">{roleLabel("admin")}</option>
            <option value="viewer">{roleLabel("viewer")}</option>
          </Select>
        </div>
      </TableCell>
      <TableCell data-col="status">
        {a.disabled ? (
          <Badge variant="destructive" data-testid="account-status">
            Disabled
          </Badge>
        ) : (
          <Badge variant="success" data-testid="account-status">
            Active
          </Badge>
        )}
      </TableCell>
      <TableCell className="whitespace-nowrap text-xs text-muted-foreground" data-col="created" title={`Changed ${formatDateTime(a.updated_at)}`}>
        {formatDateTime(a.created_at)}
      </TableCell>
      <TableCell className="text-right" data-col="actions">
        <div className="flex items-center justify-end gap-1">
          {!own && (
            <Button variant="ghost" size="sm" onClick={onReset} disabled={busy} data-testid="account-reset" aria-label={`Reset the password of ${a.username}`}>
              <KeyRound />
              Reset password
            </Button>
          )}
          {a.disabled ? (
            <Button variant="ghost" size="sm" onClick={onEnable} disabled={busy} data-testid="account-enable" aria-label={`Enable ${a.username}`}>
              <CircleCheck />
              Enable
            </Button>
          ) : (
            <span title={selfNote}>
              <Button
                variant="ghost"
                size="sm"
                onClick={onDisable}
                disabled={own || busy}
                data-testid="account-disable"
                aria-label={`Disable ${a.username}`}
                className="text-muted-foreground hover:bg-red-50 hover:text-red-600"
              >
                <Ban />
                Disable
              </Button>
            </span>
          )}
        </div>
      </TableCell>
    </TableRow>
  );
}

/** Team accounts: admins add accounts, change roles, disable and enable them, and reset passwords. */
export function AccountsPage() {
  const canWrite = useCanWrite();
  const { username, bootstrap } = useAuth();
  const accounts = usePolled(() => api.accounts(), [], 30_000, canWrite);
  const toast = useToast();
  const [form, setFormState] = useState<{ mode: AccountFormMode; account: Account | null }>({ mode: "create", account: null });
  const [formOpen, setFormOpen] = useState(false);
  const [disabling, setDisabling] = useState<Account | null>(null);
  const [busy, setBusy] = useState<Record<string, boolean>>({});
  const openForm = (mode: AccountFormMode, account: Account | null) => {
    setFormState({ mode, account });
    setFormOpen(true);
  };
  const list = accounts.data ? sortAccounts(accounts.data) : null;
  const isOwn = (a: Account) => !bootstrap && !!username && a.username.toLowerCase() === username.toLowerCase();

  const put = (a: Account) => accounts.mutate((old) => [...(old ?? []).filter((x) => x.id !== a.id), a]);

  async function change(a: Account, body: AccountUpdate, done: (saved: Account) => string, description?: string) {
    setBusy((b) => ({ ...b, [a.id]: true }));
    try {
      const saved = await api.updateAccount(a.id, body);
      put(saved);
      toast({ title: done(saved), description, variant: "success" });
    } catch (e) {
      toast({ title: `Could not change ${a.username}`, description: e instanceof Error ? e.message : String(e), variant: "error" });
    } finally {
      setBusy((b) => ({ ...b, [a.id]: false }));
      void accounts.reload();
    }
  }

  if (!canWrite) {
    return (
      <Card className="flex flex-col items-center gap-3 border-dashed px-6 py-16 text-center" data-testid="accounts-admins-only">
        <Users className="h-6 w-6 text-zinc-500" />
        <h2 className="text-lg font-semibold">Only admins manage accounts</h2>
        <p className="max-w-sm text-sm text-muted-foreground">Your account is a viewer: it reads limiters and statistics, and changes nothing but its own password.</p>
      </Card>
    );
  }

  return (
    <div className="grid gap-6">
      <PageHeader
        title="Accounts"
        description="People who sign in to this dashboard. Admins change everything; viewers read limiters and statistics with limiter codes masked. Disabling an account or resetting its password ends its sessions at once. The bootstrap admin from the server's environment is not listed here."
      >
        <Button onClick={() => openForm("create", null)} data-testid="create-account">
          <Plus />
          Add account
        </Button>
      </PageHeader>

      {accounts.error && <ErrorAlert title="Could not load accounts" error={accounts.error} onRetry={() => void accounts.reload()} />}

      {accounts.loading && !list ? (
        <ListSkeleton rows={2} />
      ) : list && list.length === 0 ? (
        <EmptyState
          icon={Users}
          title="Only the bootstrap admin so far"
          testId="empty-accounts"
          action={
            <Button onClick={() => openForm("create", null)} className="mt-2">
              <Plus />
              Add account
            </Button>
          }
        >
          Add a named account for each person: an admin, or a viewer who follows spend without being able to change it.
        </EmptyState>
      ) : list ? (
        <Card className="min-w-0 p-2">
          <Table data-testid="accounts-table">
            <TableHeader>
              <TableRow>
                <TableHead>User name</TableHead>
                <TableHead>Role</TableHead>
                <TableHead>Status</TableHead>
                <TableHead>Created</TableHead>
                <TableHead className="text-right">
                  <span className="sr-only">Actions</span>
                </TableHead>
              </TableRow>
            </TableHeader>
            <TableBody>
              {list.map((a) => (
                <AccountRow
                  key={a.id}
                  a={a}
                  own={isOwn(a)}
                  busy={!!busy[a.id]}
                  onRole={(role) => void change(a, { role }, (s) => `${s.username} is now ${roleLabel(s.role).toLowerCase()}`)}
                  onDisable={() => setDisabling(a)}
                  onEnable={() => void change(a, { disabled: false }, (s) => `${s.username} enabled`, "They can sign in again.")}
                  onReset={() => openForm("reset", a)}
                />
              ))}
            </TableBody>
          </Table>
        </Card>
      ) : null}

      <AccountFormDialog
        mode={form.mode}
        account={form.account}
        open={formOpen}
        onOpenChange={setFormOpen}
        onSaved={(a, mode) => {
          put(a);
          toast({
            title: mode === "create" ? `${a.username} added` : `Password of ${a.username} reset`,
            description: mode === "create" ? `A ${roleLabel(a.role).toLowerCase()} account; give them their password.` : "Their sessions ended; give them the new password.",
            variant: "success",
          });
          void accounts.reload();
        }}
      />

      <ConfirmDialog
        open={!!disabling}
        onClose={() => setDisabling(null)}
        title={`Disable “${disabling?.username}”?`}
        description="They are signed out everywhere at once and cannot sign in until an admin enables the account again."
        confirmLabel="Disable"
        testId="disable-account-dialog"
        confirmTestId="confirm-disable-account"
        onConfirm={() => disabling && void change(disabling, { disabled: true }, (s) => `${s.username} disabled`, "Their sessions ended.")}
      />
    </div>
  );
}

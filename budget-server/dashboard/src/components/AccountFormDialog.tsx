import { useEffect, useId } from "react";
import { useFormState } from "../hooks/useFormState";
import { accountFieldFor, EMPTY_ACCOUNT, MIN_PASSWORD_CHARS, toAccountCreate, validateAccountForm, type AccountFormValues } from "../lib/accounts";
import { ApiError, api, type Account } from "../lib/api";
import { FormDialog, FormField, invalidProps } from "./FormDialog";
import { Input } from "./ui/input";
import { Select } from "./ui/select";

/** Create an account, or reset an account's password (an admin's reset ends its sessions). */
export type AccountFormMode = "create" | "reset";

export function AccountFormDialog({
  mode,
  account,
  open,
  onOpenChange,
  onSaved,
}: {
  mode: AccountFormMode;
  /** The account whose password is reset (absent when creating). */
  account?: Account | null;
  open: boolean;
  onOpenChange: (open: boolean) => void;
  onSaved: (a: Account, mode: AccountFormMode) => void;
}) {
  const creating = mode === "create";
  const { values, setValues, errors, setErrors, formError, setFormError, busy, reset, update, submit } = useFormState(EMPTY_ACCOUNT, (v: AccountFormValues) =>
    validateAccountForm(v, creating),
  );
  const uid = "a" + useId().replace(/[^a-zA-Z0-9]/g, "");

  useEffect(() => {
    if (open) reset(EMPTY_ACCOUNT);
  }, [open, mode, account, reset]);
  const set = (k: keyof AccountFormValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => update({ ...values, [k]: e.target.value });

  const onSubmit = (e: React.FormEvent) =>
    submit(e, {
      save: async () => {
        const saved = creating || !account ? await api.createAccount(toAccountCreate(values)) : await api.updateAccount(account.id, { password: values.password });
        // Forget the typed password at once.
        setValues(EMPTY_ACCOUNT);
        onSaved(saved, mode);
        onOpenChange(false);
      },
      fail: (err) => {
        // A 409 when creating is the name: taken (ignoring case) or the bootstrap admin's.
        const field = err instanceof ApiError ? (err.status === 409 && creating ? "username" : accountFieldFor(err.field)) : null;
        const message = err instanceof Error ? err.message : String(err);
        if (field && field !== "current") setErrors((prev) => ({ ...prev, [field]: message }));
        else setFormError(message);
      },
    });

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof AccountFormValues) => invalidProps(id(k), errors[k]);

  return (
    <FormDialog
      open={open}
      onOpenChange={onOpenChange}
      testId="account-form-dialog"
      mode={mode}
      title={creating ? "Add an account" : `Reset the password of “${account?.username}”`}
      description={
        creating
          ? "Admins can change everything; viewers read limiters and statistics with limiter codes masked, and change nothing but their own password."
          : "Give them the new password. Every session they have ends at once."
      }
      formTestId="account-form"
      autoComplete="off"
      onSubmit={onSubmit}
      formError={formError}
      busy={busy}
      submitLabel={creating ? "Add account" : "Reset password"}
      submitTestId="account-form-submit"
    >
      {creating && (
        <div className="grid gap-4 sm:grid-cols-2">
          <FormField id={id("username")} label="User name" error={errors.username}>
            <Input id={id("username")} name="username" value={values.username} onChange={set("username")} placeholder="jane.doe" spellCheck={false} {...inv("username")} />
          </FormField>
          <FormField id={id("role")} label="Role" error={errors.role}>
            <Select id={id("role")} name="role" value={values.role} onChange={set("role")} {...inv("role")}>
              <option value="viewer">Viewer (reads only)</option>
              <option value="admin">Admin (everything)</option>
            </Select>
          </FormField>
        </div>
      )}
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField id={id("password")} label={creating ? "Password" : "New password"} error={errors.password} hint={`At least ${MIN_PASSWORD_CHARS} characters.`}>
          <Input id={id("password")} name="password" type="password" autoComplete="new-password" value={values.password} onChange={set("password")} {...inv("password")} />
        </FormField>
        <FormField id={id("confirm")} label="Repeat the password" error={errors.confirm}>
          <Input id={id("confirm")} name="confirm" type="password" autoComplete="new-password" value={values.confirm} onChange={set("confirm")} {...inv("confirm")} />
        </FormField>
      </div>
    </FormDialog>
  );
}

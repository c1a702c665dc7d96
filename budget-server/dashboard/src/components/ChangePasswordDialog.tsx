import { useEffect, useId } from "react";
import { useAuth } from "../hooks/auth";
import { useFormState } from "../hooks/useFormState";
import { accountFieldFor, MIN_PASSWORD_CHARS, passwordProblem } from "../lib/accounts";
import { ApiError } from "../lib/api";
import { FormDialog, FormField, invalidProps } from "./FormDialog";
import { Input } from "./ui/input";

type Fields = { current: string; password: string; confirm: string };
const EMPTY: Fields = { current: "", password: "", confirm: "" };

function problems(v: Fields): Partial<Fields> {
  const out: Partial<Fields> = {};
  if (!v.current) out.current = "Enter your current password.";
  const p = passwordProblem(v.password);
  if (p) out.password = p;
  else if (v.confirm !== v.password) out.confirm = "The two passwords differ.";
  return out;
}

/** Change the signed-in account's own password (any role). Its other sessions end; this one continues. */
export function ChangePasswordDialog({ open, onOpenChange, onChanged }: { open: boolean; onOpenChange: (open: boolean) => void; onChanged: () => void }) {
  const { changePassword } = useAuth();
  const { values, setValues, errors, setErrors, formError, setFormError, busy, reset, update, submit } = useFormState(EMPTY, problems);
  const uid = "p" + useId().replace(/[^a-zA-Z0-9]/g, "");

  useEffect(() => {
    if (open) reset(EMPTY);
  }, [open, reset]);

  const set = (k: keyof Fields) => (e: React.ChangeEvent<HTMLInputElement>) => update({ ...values, [k]: e.target.value });

  const onSubmit = (e: React.FormEvent) =>
    submit(e, {
      save: async () => {
        await changePassword(values.current, values.password);
        setValues(EMPTY);
        onChanged();
        onOpenChange(false);
      },
      fail: (err) => {
        const field = err instanceof ApiError ? accountFieldFor(err.field) : null;
        const message = err instanceof Error ? err.message : String(err);
        if (field === "current" || field === "password") setErrors((prev) => ({ ...prev, [field]: message }));
        else setFormError(message);
      },
    });

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof Fields) => invalidProps(id(k), errors[k]);
  const field = (k: keyof Fields, label: string, autoComplete: string, hint?: string) => (
    <FormField id={id(k)} label={label} error={errors[k]} hint={hint}>
      <Input id={id(k)} name={k} type="password" autoComplete={autoComplete} value={values[k]} onChange={set(k)} {...inv(k)} />
    </FormField>
  );

  return (
    <FormDialog
      open={open}
      onOpenChange={onOpenChange}
      testId="change-password-dialog"
      title="Change your password"
      description="Every other session of your account ends at once; this one stays signed in."
      formTestId="change-password-form"
      onSubmit={onSubmit}
      formError={formError}
      busy={busy}
      submitLabel="Change password"
      submitTestId="change-password-submit"
    >
      {field("current", "Current password", "current-password")}
      <div className="grid gap-4 sm:grid-cols-2">
        {field("password", "New password", "new-password", `At least ${MIN_PASSWORD_CHARS} characters.`)}
        {field("confirm", "Repeat the new password", "new-password")}
      </div>
    </FormDialog>
  );
}

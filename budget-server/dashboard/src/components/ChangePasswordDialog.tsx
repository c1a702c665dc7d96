import { CircleAlert, Loader2 } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { useAuth } from "../hooks/auth";
import { accountFieldFor, MIN_PASSWORD_CHARS, passwordProblem } from "../lib/accounts";
import { ApiError } from "../lib/api";
import { Button } from "./ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "./ui/dialog";
import { Input } from "./ui/input";
import { Label } from "./ui/label";

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
  const [values, setValues] = useState<Fields>(EMPTY);
  const [errors, setErrors] = useState<Partial<Fields>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const uid = "p" + useId().replace(/[^a-zA-Z0-9]/g, "");

  useEffect(() => {
    if (!open) return;
    setValues(EMPTY);
    setErrors({});
    setFormError(null);
    setSubmitted(false);
  }, [open]);

  const set = (k: keyof Fields) => (e: React.ChangeEvent<HTMLInputElement>) => {
    const next = { ...values, [k]: e.target.value };
    setValues(next);
    if (submitted) setErrors(problems(next));
  };

  async function onSubmit(e: React.FormEvent) {
    e.preventDefault();
    setSubmitted(true);
    setFormError(null);
    const errs = problems(values);
    setErrors(errs);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    try {
      await changePassword(values.current, values.password);
      setValues(EMPTY);
      onChanged();
      onOpenChange(false);
    } catch (err) {
      const field = err instanceof ApiError ? accountFieldFor(err.field) : null;
      const message = err instanceof Error ? err.message : String(err);
      if (field === "current" || field === "password") setErrors((prev) => ({ ...prev, [field]: message }));
      else setFormError(message);
    } finally {
      setBusy(false);
    }
  }

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof Fields) => (errors[k] ? { "aria-invalid": true as const, "aria-describedby": `${id(k)}-error` } : {});
  const field = (k: keyof Fields, label: string, autoComplete: string, hint?: string) => (
    <div className="grid content-start gap-1.5">
      <Label htmlFor={id(k)}>{label}</Label>
      <Input id={id(k)} name={k} type="password" autoComplete={autoComplete} value={values[k]} onChange={set(k)} {...inv(k)} />
      {errors[k] ? (
        <p id={`${id(k)}-error`} className="text-xs font-medium text-red-600" data-testid={`field-error-${k}`}>
          {errors[k]}
        </p>
      ) : hint ? (
        <p className="text-xs text-muted-foreground">{hint}</p>
      ) : null}
    </div>
  );

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent data-testid="change-password-dialog">
        <DialogHeader>
          <DialogTitle>Change your password</DialogTitle>
          <DialogDescription>Every other session of your account ends at once; this one stays signed in.</DialogDescription>
        </DialogHeader>
        <form className="grid gap-4" onSubmit={onSubmit} noValidate data-testid="change-password-form">
          {field("current", "Current password", "current-password")}
          <div className="grid gap-4 sm:grid-cols-2">
            {field("password", "New password", "new-password", `At least ${MIN_PASSWORD_CHARS} characters.`)}
            {field("confirm", "Repeat the new password", "new-password")}
          </div>
          {formError && (
            <p role="alert" data-testid="form-error" className="flex items-start gap-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
              <CircleAlert className="mt-0.5 h-4 w-4 shrink-0" />
              {formError}
            </p>
          )}
          <DialogFooter>
            <Button variant="outline" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={busy} data-testid="change-password-submit">
              {busy && <Loader2 className="animate-spin" />}
              Change password
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

import { CircleAlert, Loader2 } from "lucide-react";
import { Button } from "./ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "./ui/dialog";
import { Label } from "./ui/label";

/** A labelled form field; the server's or the form's error under it (announced by `id`-error), else a hint. */
export function FormField({
  id,
  label,
  error,
  hint,
  errorTestId = `field-error-${id.split("-").pop()}`,
  children,
}: {
  id: string;
  label: string;
  error?: string;
  hint?: React.ReactNode;
  /** Defaults to `field-error-<last part of id>`. */
  errorTestId?: string;
  children: React.ReactNode;
}) {
  return (
    <div className="grid content-start gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      {children}
      {error ? (
        <p id={`${id}-error`} className="text-xs font-medium text-red-600" data-testid={errorTestId}>
          {error}
        </p>
      ) : hint ? (
        <p className="text-xs text-muted-foreground">{hint}</p>
      ) : null}
    </div>
  );
}

/** The attributes that tie an input to its FormField's error. */
export function invalidProps(id: string, error: string | undefined) {
  return error ? { "aria-invalid": true as const, "aria-describedby": `${id}-error` } : {};
}

/** A refusal that belongs to no one field, in red above the dialog's buttons. */
export function FormError({ testId = "form-error", children }: { testId?: string; children: React.ReactNode }) {
  return (
    <p role="alert" data-testid={testId} className="flex items-start gap-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
      <CircleAlert className="mt-0.5 h-4 w-4 shrink-0" />
      {children}
    </p>
  );
}

/**
 * A dialog holding one form: title and description, the fields (children), the error that
 * belongs to no field, and Cancel / submit buttons (the submit one spins and is disabled while busy).
 */
export function FormDialog({
  open,
  onOpenChange,
  title,
  description,
  testId,
  mode,
  className,
  formTestId,
  autoComplete,
  onSubmit,
  formError,
  busy,
  submitLabel,
  submitTestId,
  children,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: React.ReactNode;
  description: React.ReactNode;
  testId: string;
  /** Shown as the dialog's data-mode. */
  mode?: string;
  className?: string;
  formTestId: string;
  autoComplete?: string;
  onSubmit: (e: React.FormEvent) => void;
  formError: string | null;
  busy: boolean;
  submitLabel: React.ReactNode;
  submitTestId: string;
  children: React.ReactNode;
}) {
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className={className} data-testid={testId} data-mode={mode}>
        <DialogHeader>
          <DialogTitle>{title}</DialogTitle>
          <DialogDescription>{description}</DialogDescription>
        </DialogHeader>
        <form className="grid gap-4" onSubmit={onSubmit} noValidate data-testid={formTestId} autoComplete={autoComplete}>
          {children}
          {formError && <FormError>{formError}</FormError>}
          <DialogFooter>
            <Button variant="outline" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={busy} data-testid={submitTestId}>
              {busy && <Loader2 className="animate-spin" />}
              {submitLabel}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

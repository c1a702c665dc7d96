import { CircleAlert, Loader2 } from "lucide-react";
import { useEffect, useId, useMemo, useState } from "react";
import { ApiError, api, type Limiter } from "../lib/api";
import {
  EMPTY_FORM,
  formFieldFor,
  NAME_MAX,
  PERIODS,
  toLimiterInput,
  validateLimiterForm,
  type FormErrors,
  type LimiterFormValues,
} from "../lib/validation";
import { Button } from "./ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "./ui/dialog";
import { Input } from "./ui/input";
import { Label } from "./ui/label";
import { Select } from "./ui/select";

function valuesFrom(l: Limiter): LimiterFormValues {
  return {
    name: l.name,
    budget_limit: String(l.budget_limit),
    period_type: l.period_type,
    base_url: l.base_url,
    provider: l.provider,
    mode: l.mode,
    unpriced: l.unpriced,
    unmetered_endpoints: l.unmetered_endpoints ?? "server",
    timezone: l.timezone ?? "",
  };
}

function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return intl.supportedValuesOf ? ["UTC", ...intl.supportedValuesOf("timeZone")] : ["UTC"];
  } catch {
    return ["UTC"];
  }
}

function Field({ id, label, error, hint, children }: { id: string; label: string; error?: string; hint?: string; children: React.ReactNode }) {
  return (
    <div className="grid content-start gap-1.5">
      <Label htmlFor={id}>{label}</Label>
      {children}
      {error ? (
        <p id={`${id}-error`} className="text-xs font-medium text-red-600" data-testid={`field-error-${id.split("-").pop()}`}>
          {error}
        </p>
      ) : hint ? (
        <p className="text-xs text-muted-foreground">{hint}</p>
      ) : null}
    </div>
  );
}

export function LimiterFormDialog({
  open,
  limiter,
  onOpenChange,
  onSaved,
}: {
  open: boolean;
  /** The limiter to edit; create when absent. */
  limiter?: Limiter | null;
  onOpenChange: (open: boolean) => void;
  onSaved: (l: Limiter, created: boolean) => void;
}) {
  const editing = !!limiter;
  const [values, setValues] = useState<LimiterFormValues>(EMPTY_FORM);
  const [errors, setErrors] = useState<FormErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);
  const uid = "f" + useId().replace(/[^a-zA-Z0-9]/g, "");
  const zones = useMemo(timeZones, []);

  useEffect(() => {
    if (!open) return;
    setValues(limiter ? valuesFrom(limiter) : EMPTY_FORM);
    setErrors({});
    setFormError(null);
    setSubmitted(false);
  }, [open, limiter]);

  const set = (k: keyof LimiterFormValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => {
    const next = { ...values, [k]: e.target.value };
    setValues(next);
    // After a first submit, re-validate as the user types so messages go away when fixed.
    if (submitted) setErrors(validateLimiterForm(next));
  };

  async function onSubmit(e: React.FormEvent) {
    e.preventDefault();
    setSubmitted(true);
    setFormError(null);
    const errs = validateLimiterForm(values);
    setErrors(errs);
    if (Object.keys(errs).length > 0) return;
    setBusy(true);
    try {
      const input = toLimiterInput(values);
      const saved = limiter ? await api.updateLimiter(limiter.id, input) : await api.createLimiter(input);
      onSaved(saved, !limiter);
      onOpenChange(false);
    } catch (err) {
      const field = err instanceof ApiError ? formFieldFor(err.field) : null;
      const message = err instanceof Error ? err.message : String(err);
      if (field) setErrors((prev) => ({ ...prev, [field]: message }));
      else setFormError(message);
    } finally {
      setBusy(false);
    }
  }

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof LimiterFormValues) => (errors[k] ? { "aria-invalid": true as const, "aria-describedby": `${id(k)}-error` } : {});

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent className="max-w-xl" data-testid="limiter-form-dialog">
        <DialogHeader>
          <DialogTitle>{editing ? "Edit limiter" : "Create limiter"}</DialogTitle>
          <DialogDescription>
            {editing ? "Changes apply to the next request." : "A limiter is one budget with its own proxy endpoint. Point an OpenAI SDK at the endpoint."}
          </DialogDescription>
        </DialogHeader>
        <form className="grid gap-4" onSubmit={onSubmit} noValidate data-testid="limiter-form">
          <Field id={id("name")} label="Name" error={errors.name}>
            <Input id={id("name")} name="name" value={values.name} onChange={set("name")} placeholder="Customer A - $20/day" maxLength={NAME_MAX + 50} {...inv("name")} />
          </Field>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id={id("budget_limit")} label="Budget (USD)" error={errors.budget_limit}>
              <div className="relative">
                <span className="pointer-events-none absolute left-3 top-1/2 -translate-y-1/2 text-sm text-muted-foreground">$</span>
                <Input
                  id={id("budget_limit")}
                  name="budget_limit"
                  inputMode="decimal"
                  className="pl-6"
                  value={values.budget_limit}
                  onChange={set("budget_limit")}
                  placeholder="20.00"
                  {...inv("budget_limit")}
                />
              </div>
            </Field>
            <Field id={id("period_type")} label="Period" error={errors.period_type}>
              <Select id={id("period_type")} name="period_type" value={values.period_type} onChange={set("period_type")} {...inv("period_type")}>
                {PERIODS.map((p) => (
                  <option key={p} value={p}>
                    {p[0]!.toUpperCase() + p.slice(1)}
                  </option>
                ))}
              </Select>
            </Field>
          </div>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id={id("provider")} label="Provider" error={errors.provider}>
              <Select id={id("provider")} name="provider" value={values.provider} onChange={set("provider")} {...inv("provider")}>
                <option value="openai">OpenAI</option>
                <option value="azure">Azure OpenAI</option>
              </Select>
            </Field>
            <Field id={id("base_url")} label="Base URL" error={errors.base_url}>
              <Input
                id={id("base_url")}
                name="base_url"
                type="url"
                value={values.base_url}
                onChange={set("base_url")}
                placeholder={values.provider === "azure" ? "https://your-resource.openai.azure.com" : "https://api.openai.com"}
                {...inv("base_url")}
              />
            </Field>
          </div>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field
              id={id("mode")}
              label="Mode"
              error={errors.mode}
              hint={values.mode === "strict" ? "Never spends past the budget: admits only if the worst case fits." : "Admits while spend is under the budget."}
            >
              <Select id={id("mode")} name="mode" value={values.mode} onChange={set("mode")} {...inv("mode")}>
                <option value="soft">Soft</option>
                <option value="strict">Strict</option>
              </Select>
            </Field>
            <Field
              id={id("unpriced")}
              label="Unpriced models"
              error={errors.unpriced}
              hint={values.unpriced === "refuse" ? "Models without a price are refused (400)." : "Admitted and flagged as unpriced."}
            >
              <Select id={id("unpriced")} name="unpriced" value={values.unpriced} onChange={set("unpriced")} {...inv("unpriced")}>
                <option value="admit">Admit</option>
                <option value="refuse">Refuse</option>
              </Select>
            </Field>
          </div>
          <Field
            id={id("unmetered_endpoints")}
            label="Unmetered endpoints"
            error={errors.unmetered_endpoints}
            hint={
              values.unmetered_endpoints === "allow"
                ? "Batches, fine-tuning, realtime, vector stores and unknown endpoints are forwarded; their cost is not counted."
                : values.unmetered_endpoints === "refuse"
                  ? "Endpoints that cost money without reporting usage, and unknown ones, are refused (403)."
                  : "As the server's UNMETERED_ENDPOINTS setting (refuse by default)."
            }
          >
            <Select
              id={id("unmetered_endpoints")}
              name="unmetered_endpoints"
              value={values.unmetered_endpoints}
              onChange={set("unmetered_endpoints")}
              {...inv("unmetered_endpoints")}
            >
              <option value="server">Server setting</option>
              <option value="refuse">Refuse</option>
              <option value="allow">Allow (not counted)</option>
            </Select>
          </Field>
          <Field id={id("timezone")} label="Time zone (optional)" error={errors.timezone} hint="Days, weeks, months and years start at local midnight there. Default UTC.">
            <Input id={id("timezone")} name="timezone" list={`${uid}-zones`} value={values.timezone} onChange={set("timezone")} placeholder="UTC" {...inv("timezone")} />
            <datalist id={`${uid}-zones`}>
              {zones.map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
          </Field>
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
            <Button type="submit" disabled={busy} data-testid="limiter-form-submit">
              {busy && <Loader2 className="animate-spin" />}
              {editing ? "Save changes" : "Create limiter"}
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

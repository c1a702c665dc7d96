import { Plus, X } from "lucide-react";
import { useEffect, useId, useMemo, useState } from "react";
import { useFormState } from "../hooks/useFormState";
import { usePolled } from "../hooks/usePolled";
import { alertFieldFor, alertValuesFrom, EMPTY_ALERTS, toAlertSettings, validateAlerts, type AlertFormErrors, type AlertFormValues } from "../lib/alerts";
import { ApiError, api, type Limiter } from "../lib/api";
import { kindLabel } from "../lib/credentials";
import { periodLabel } from "../lib/format";
import {
  EMPTY_FORM,
  EXTRA_BUDGETS_MAX,
  formFieldFor,
  NAME_MAX,
  PERIODS,
  rfc3339ToLocal,
  toLimiterInput,
  toLimiterUpdate,
  validateLimiterForm,
  type LimiterFormValues,
  type WindowValues,
} from "../lib/validation";
import { AlertSettingsSection } from "./AlertSettingsSection";
import { FormDialog, FormField, invalidProps } from "./FormDialog";
import { Button } from "./ui/button";
import { Input } from "./ui/input";
import { Select } from "./ui/select";
import { Switch } from "./ui/switch";

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
    extra_budgets: (l.extra_budgets ?? []).map((w) => ({ budget_limit: String(w.budget_limit), period_type: w.period_type })),
    user_budget: l.user_budget
      ? { budget_limit: String(l.user_budget.budget_limit), period_type: l.user_budget.period_type }
      : { budget_limit: "", period_type: "day" },
    require_user: l.require_user ?? false,
    allowed_models: (l.allowed_models ?? []).join(", "),
    max_request_cost: l.max_request_cost === null || l.max_request_cost === undefined ? "" : String(l.max_request_cost),
    cap_output_tokens: l.cap_output_tokens ?? true,
    expires_at: rfc3339ToLocal(l.expires_at),
    credential_id: l.credential_id ?? "",
  };
}

const capitalized = (p: string) => p[0]!.toUpperCase() + p.slice(1);

function PeriodOptions() {
  return (
    <>
      {PERIODS.map((p) => (
        <option key={p} value={p}>
          {capitalized(p)}
        </option>
      ))}
    </>
  );
}

/** A dollar input with a "$" prefix. */
function MoneyInput(props: React.InputHTMLAttributes<HTMLInputElement>) {
  return (
    <div className="relative">
      <span className="pointer-events-none absolute left-3 top-1/2 -translate-y-1/2 text-sm text-muted-foreground">$</span>
      <Input inputMode="decimal" className="pl-6" {...props} />
    </div>
  );
}

/** The first period that is neither the primary one nor already an extra window. */
function freePeriod(v: LimiterFormValues): string {
  const used = new Set([v.period_type, ...v.extra_budgets.map((w) => w.period_type)]);
  return PERIODS.find((p) => !used.has(p)) ?? "hour";
}

function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  try {
    return intl.supportedValuesOf ? ["UTC", ...intl.supportedValuesOf("timeZone")] : ["UTC"];
  } catch {
    return ["UTC"];
  }
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
  // The upstream keys the server holds, for the "Upstream key" choice (loaded while open).
  const credentials = usePolled(() => api.credentials(), [], 30_000, open);
  const credentialList = credentials.data;
  const { values, setErrors, errors, formError, setFormError, submitted, busy, reset, update, submit } = useFormState(EMPTY_FORM, (v: LimiterFormValues) =>
    validateLimiterForm(v, credentialList),
  );
  const [initial, setInitial] = useState<LimiterFormValues>(EMPTY_FORM);
  const uid = "f" + useId().replace(/[^a-zA-Z0-9]/g, "");
  const zones = useMemo(timeZones, []);
  // The alerts section: its own values and errors; the server's defaults are its hints.
  const [alerts, setAlerts] = useState<AlertFormValues>(EMPTY_ALERTS);
  const [initialAlerts, setInitialAlerts] = useState<AlertFormValues>(EMPTY_ALERTS);
  const [alertErrors, setAlertErrors] = useState<AlertFormErrors>({});
  const alertDefaults = usePolled(() => api.alerts({ limit: 1 }), [], 60_000, open);

  useEffect(() => {
    if (!open) return;
    const start = limiter ? valuesFrom(limiter) : EMPTY_FORM;
    reset(start);
    setInitial(start);
    const startAlerts = alertValuesFrom(limiter?.alerts);
    setAlerts(startAlerts);
    setInitialAlerts(startAlerts);
    setAlertErrors({});
  }, [open, limiter, reset]);

  const set = (k: keyof LimiterFormValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>) =>
    update({ ...values, [k]: e.target.value });
  const setWindow = (i: number, k: keyof WindowValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    update({ ...values, extra_budgets: values.extra_budgets.map((w, j) => (j === i ? { ...w, [k]: e.target.value } : w)) });
  const setUserBudget = (k: keyof WindowValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) =>
    update({ ...values, user_budget: { ...values.user_budget, [k]: e.target.value } });

  const onSubmit = (e: React.FormEvent) =>
    submit(e, {
      alsoValid: () => {
        const alertErrs = validateAlerts(alerts);
        setAlertErrors(alertErrs);
        return Object.keys(alertErrs).length === 0;
      },
      save: async () => {
        // An edit sends only what changed (cleared policies as null or []; alerts back to the server's as null).
        const alertSettings = toAlertSettings(alerts);
        const alertsChanged = JSON.stringify(alertSettings) !== JSON.stringify(toAlertSettings(initialAlerts));
        const saved = limiter
          ? await api.updateLimiter(limiter.id, { ...toLimiterUpdate(initial, values), ...(alertsChanged ? { alerts: alertSettings } : {}) })
          : await api.createLimiter({ ...toLimiterInput(values), ...(alertSettings ? { alerts: alertSettings } : {}) });
        onSaved(saved, !limiter);
        onOpenChange(false);
      },
      fail: (err) => {
        const field = err instanceof ApiError ? formFieldFor(err.field) : null;
        const alertField = err instanceof ApiError ? alertFieldFor(err.field) : null;
        const message = err instanceof Error ? err.message : String(err);
        if (field) setErrors((prev) => ({ ...prev, [field]: message }));
        else if (alertField) setAlertErrors((prev) => ({ ...prev, [alertField]: message }));
        else setFormError(message);
      },
    });

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof LimiterFormValues) => invalidProps(id(k), errors[k]);

  return (
    <FormDialog
      open={open}
      onOpenChange={onOpenChange}
      testId="limiter-form-dialog"
      className="max-w-xl"
      title={editing ? "Edit limiter" : "Create limiter"}
      description={editing ? "Changes apply to the next request." : "A limiter is one budget with its own proxy endpoint. Point an OpenAI SDK at the endpoint."}
      formTestId="limiter-form"
      onSubmit={onSubmit}
      formError={formError}
      busy={busy}
      submitLabel={editing ? "Save changes" : "Create limiter"}
      submitTestId="limiter-form-submit"
    >
      <FormField id={id("name")} label="Name" error={errors.name}>
        <Input id={id("name")} name="name" value={values.name} onChange={set("name")} placeholder="Customer A - $20/day" maxLength={NAME_MAX + 50} {...inv("name")} />
      </FormField>
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField id={id("budget_limit")} label="Budget (USD)" error={errors.budget_limit}>
          <MoneyInput id={id("budget_limit")} name="budget_limit" value={values.budget_limit} onChange={set("budget_limit")} placeholder="20.00" {...inv("budget_limit")} />
        </FormField>
        <FormField id={id("period_type")} label="Period" error={errors.period_type}>
          <Select id={id("period_type")} name="period_type" value={values.period_type} onChange={set("period_type")} {...inv("period_type")}>
            <PeriodOptions />
          </Select>
        </FormField>
      </div>
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField id={id("provider")} label="Provider" error={errors.provider}>
          <Select id={id("provider")} name="provider" value={values.provider} onChange={set("provider")} {...inv("provider")}>
            <option value="openai">OpenAI</option>
            <option value="azure">Azure OpenAI</option>
          </Select>
        </FormField>
        <FormField id={id("base_url")} label="Base URL" error={errors.base_url}>
          <Input
            id={id("base_url")}
            name="base_url"
            type="url"
            value={values.base_url}
            onChange={set("base_url")}
            placeholder={values.provider === "azure" ? "https://your-resource.openai.azure.com" : "https://api.openai.com"}
            {...inv("base_url")}
          />
        </FormField>
      </div>
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField
          id={id("mode")}
          label="Mode"
          error={errors.mode}
          hint={values.mode === "strict" ? "Never spends past the budget: admits only if the worst case fits." : "Admits while spend is under the budget."}
        >
          <Select id={id("mode")} name="mode" value={values.mode} onChange={set("mode")} {...inv("mode")}>
            <option value="soft">Soft</option>
            <option value="strict">Strict</option>
          </Select>
        </FormField>
        <FormField
          id={id("unpriced")}
          label="Unpriced models"
          error={errors.unpriced}
          hint={values.unpriced === "refuse" ? "Models without a price are refused (400)." : "Admitted and flagged as unpriced."}
        >
          <Select id={id("unpriced")} name="unpriced" value={values.unpriced} onChange={set("unpriced")} {...inv("unpriced")}>
            <option value="admit">Admit</option>
            <option value="refuse">Refuse</option>
          </Select>
        </FormField>
      </div>
      <FormField
        id={id("credential_id")}
        label="Upstream key"
        error={errors.credential_id ?? (credentials.error ? `Could not load the stored keys: ${credentials.error.message}` : undefined)}
        hint={
          values.credential_id
            ? "The server sends this stored key and drops any key a client sends. Clients use the limiter code as their API key (see the card's snippets) and need no key of their own."
            : "Clients send their own OpenAI or Azure key to the limiter endpoint; the proxy forwards it. Store keys under Credentials."
        }
      >
        <Select id={id("credential_id")} name="credential_id" value={values.credential_id} onChange={set("credential_id")} data-testid="credential-select" {...inv("credential_id")}>
          <option value="">Client sends its own key (pass-through)</option>
          {(credentialList ?? []).map((c) => (
            <option key={c.id} value={c.id}>
              {c.name} ({kindLabel(c.kind)}, {c.key_hint})
            </option>
          ))}
          {values.credential_id && credentialList && !credentialList.some((c) => c.id === values.credential_id) && (
            <option value={values.credential_id}>Unknown credential {values.credential_id.slice(0, 8)}</option>
          )}
          {values.credential_id && !credentialList && <option value={values.credential_id}>Stored key (loading…)</option>}
        </Select>
      </FormField>
      <FormField
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
      </FormField>
      <FormField id={id("timezone")} label="Time zone (optional)" error={errors.timezone} hint="Days, weeks, months and years start at local midnight there. Default UTC.">
        <Input id={id("timezone")} name="timezone" list={`${uid}-zones`} value={values.timezone} onChange={set("timezone")} placeholder="UTC" {...inv("timezone")} />
        <datalist id={`${uid}-zones`}>
          {zones.map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
      </FormField>
      <fieldset className="grid gap-4 rounded-lg border p-4" data-testid="policies">
        <legend className="px-1 text-sm font-medium">Policies</legend>
        <FormField
          id={id("extra_budgets")}
          label="Extra windows"
          error={errors.extra_budgets}
          hint={`More budgets besides ${periodLabel(values.period_type)}, e.g. $5 per hour; a request must fit every one.`}
        >
          <div className="grid gap-2" role="group" aria-label="Extra windows" data-testid="extra-budgets">
            {values.extra_budgets.map((w, i) => (
              <div key={i} className="grid grid-cols-[1fr_1fr_auto] items-center gap-2" data-testid="extra-budget-row">
                <MoneyInput
                  id={i === 0 ? id("extra_budgets") : undefined}
                  name={`extra_budgets.${i}.budget_limit`}
                  aria-label={`Extra window ${i + 1} amount`}
                  value={w.budget_limit}
                  onChange={setWindow(i, "budget_limit")}
                  placeholder="5.00"
                  {...inv("extra_budgets")}
                />
                <Select name={`extra_budgets.${i}.period_type`} aria-label={`Extra window ${i + 1} period`} value={w.period_type} onChange={setWindow(i, "period_type")}>
                  <PeriodOptions />
                </Select>
                <Button
                  variant="ghost"
                  size="icon"
                  aria-label={`Remove extra window ${i + 1}`}
                  data-testid="remove-extra-budget"
                  onClick={() => update({ ...values, extra_budgets: values.extra_budgets.filter((_, j) => j !== i) })}
                >
                  <X />
                </Button>
              </div>
            ))}
            {values.extra_budgets.length < EXTRA_BUDGETS_MAX && (
              <Button
                variant="outline"
                size="sm"
                className="justify-self-start"
                data-testid="add-extra-budget"
                onClick={() => update({ ...values, extra_budgets: [...values.extra_budgets, { budget_limit: "", period_type: freePeriod(values) }] })}
              >
                <Plus />
                Add window
              </Button>
            )}
          </div>
        </FormField>
        <FormField
          id={id("user_budget")}
          label="Per-user budget (USD, optional)"
          error={errors.user_budget}
          hint="Each end user (the request's user field) gets this much per period inside the limiter's budget. Empty: none."
        >
          <div className="grid grid-cols-2 gap-2">
            <MoneyInput id={id("user_budget")} name="user_budget.budget_limit" value={values.user_budget.budget_limit} onChange={setUserBudget("budget_limit")} placeholder="none" {...inv("user_budget")} />
            <Select name="user_budget.period_type" aria-label="Per-user budget period" value={values.user_budget.period_type} onChange={setUserBudget("period_type")}>
              <PeriodOptions />
            </Select>
          </div>
        </FormField>
        <div className="flex items-start gap-3">
          <Switch
            id={id("require_user")}
            name="require_user"
            checked={values.require_user}
            onCheckedChange={(c) => update({ ...values, require_user: c })}
            data-testid="require-user-switch"
          />
          <FormField id={id("require_user")} label="Require an end-user id" error={errors.require_user} hint="Refuse requests without a user field (otherwise they count only against the limiter's own windows).">
            {null}
          </FormField>
        </div>
        <FormField
          id={id("allowed_models")}
          label="Allowed models (optional)"
          error={errors.allowed_models}
          hint="Exact names or * globs, separated by commas or new lines. Empty: every model."
        >
          <textarea
            id={id("allowed_models")}
            name="allowed_models"
            rows={2}
            value={values.allowed_models}
            onChange={set("allowed_models")}
            placeholder="gpt-4o-mini, text-embedding-3-*"
            className="flex w-full rounded-md border border-input bg-background px-3 py-1.5 font-mono text-xs shadow-sm placeholder:text-muted-foreground focus-visible:border-zinc-400 focus-visible:outline-none focus-visible:ring-2 focus-visible:ring-ring/30 aria-[invalid=true]:border-red-500"
            {...inv("allowed_models")}
          />
        </FormField>
        <div className="grid gap-4 sm:grid-cols-2">
          <FormField id={id("max_request_cost")} label="Max request cost (USD, optional)" error={errors.max_request_cost} hint="The most one request may cost in the worst case.">
            <MoneyInput id={id("max_request_cost")} name="max_request_cost" value={values.max_request_cost} onChange={set("max_request_cost")} placeholder="no cap" {...inv("max_request_cost")} />
          </FormField>
          <div className="flex items-start gap-3 sm:pt-6">
            <Switch
              id={id("cap_output_tokens")}
              name="cap_output_tokens"
              checked={values.cap_output_tokens}
              disabled={!values.max_request_cost.trim()}
              onCheckedChange={(c) => update({ ...values, cap_output_tokens: c })}
              data-testid="cap-output-switch"
            />
            <FormField
              id={id("cap_output_tokens")}
              label="Cap output instead of refusing"
              error={errors.cap_output_tokens}
              hint={values.cap_output_tokens ? "A request without an output limit gets the largest one that fits." : "A request that could cost more is refused (400)."}
            >
              {null}
            </FormField>
          </div>
        </div>
        <FormField id={id("expires_at")} label="Expires (optional)" error={errors.expires_at} hint="Your local time. Afterwards every request is refused (403). Empty: never.">
          <div className="flex items-center gap-2">
            <Input id={id("expires_at")} name="expires_at" type="datetime-local" value={values.expires_at} onChange={set("expires_at")} {...inv("expires_at")} />
            {values.expires_at && (
              <Button variant="ghost" size="sm" data-testid="clear-expiry" onClick={() => update({ ...values, expires_at: "" })}>
                Never
              </Button>
            )}
          </div>
        </FormField>
      </fieldset>
      <AlertSettingsSection
        idPrefix={uid}
        values={alerts}
        errors={alertErrors}
        defaults={alertDefaults.data?.defaults}
        defaultsError={alertDefaults.error}
        onChange={(next) => {
          setAlerts(next);
          if (submitted) setAlertErrors(validateAlerts(next));
        }}
      />
    </FormDialog>
  );
}

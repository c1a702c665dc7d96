import { BellOff, CircleAlert } from "lucide-react";
import { thresholdsLabel, type AlertDefaults, type AlertFormErrors, type AlertFormValues, type WebhookFormat } from "../lib/alerts";
import { FormField, invalidProps } from "./FormDialog";
import { Input } from "./ui/input";
import { Label } from "./ui/label";
import { Select } from "./ui/select";
import { Switch } from "./ui/switch";

/**
 * The limiter form's "Alerts" section: the server's defaults or the limiter's own thresholds,
 * webhook and format, and a mute switch. `defaults` are the server's (`GET /api/alerts`), shown
 * as placeholders and hints; undefined while they load.
 */
export function AlertSettingsSection({
  idPrefix,
  values,
  errors,
  defaults,
  defaultsError,
  onChange,
}: {
  idPrefix: string;
  values: AlertFormValues;
  errors: AlertFormErrors;
  defaults: AlertDefaults | undefined;
  defaultsError?: Error;
  onChange: (v: AlertFormValues) => void;
}) {
  const id = (k: string) => `${idPrefix}-alerts_${k}`;
  const inv = (k: keyof AlertFormErrors) => invalidProps(id(k), errors[k]);
  const serverThresholds = defaults ? thresholdsLabel(defaults.thresholds) : "the server's";
  const serverWebhook = defaults ? (defaults.webhook ?? null) : undefined;
  const summary = defaults
    ? `Server defaults: thresholds ${serverThresholds} of each window; webhook ${serverWebhook ?? "none"}${serverWebhook ? ` (${formatName(defaults.format)})` : ""}.`
    : defaultsError
      ? `Could not load the server's alert settings: ${defaultsError.message}`
      : "Loading the server's alert settings…";

  return (
    <fieldset className="grid gap-4 rounded-lg border p-4" data-testid="alerts-section">
      <legend className="px-1 text-sm font-medium">Alerts</legend>
      {defaults && !defaults.enabled && (
        <p role="status" data-testid="alerts-disabled" className="flex items-start gap-2 rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
          <CircleAlert className="mt-0.5 h-4 w-4 shrink-0" />
          Alerts are off on this server: it has no ALERT_WEBHOOK_SECRET to sign deliveries with, so nothing is sent and a webhook URL is refused. Set one and restart the server.
        </p>
      )}
      <div className="flex items-start gap-3">
        <Switch
          id={id("use_defaults")}
          name="alerts_use_defaults"
          checked={values.use_defaults}
          onCheckedChange={(c) => onChange({ ...values, use_defaults: c })}
          data-testid="alerts-defaults-switch"
        />
        <div className="grid gap-1">
          <Label htmlFor={id("use_defaults")}>Use the server's defaults</Label>
          <p className="text-xs text-muted-foreground" data-testid="alerts-server-defaults">
            {summary}
          </p>
        </div>
      </div>
      {!values.use_defaults && (
        <>
          <FormField
            id={id("thresholds")}
            errorTestId="field-error-alerts_thresholds"
            label="Thresholds (% of each window's budget)"
            error={errors.thresholds}
            hint={`Comma-separated, ascending, 1 to 1000, e.g. 50, 80, 100. Empty: the server's (${serverThresholds}). "off": no threshold alerts.`}
          >
            <Input
              id={id("thresholds")}
              name="alerts_thresholds"
              inputMode="numeric"
              value={values.thresholds}
              onChange={(e) => onChange({ ...values, thresholds: e.target.value })}
              placeholder={defaults ? `${defaults.thresholds.join(", ") || "off"} (server default)` : "80, 100"}
              {...inv("thresholds")}
            />
          </FormField>
          <div className="grid gap-4 sm:grid-cols-[1fr_10rem]">
            <FormField
              id={id("webhook_url")}
              errorTestId="field-error-alerts_webhook_url"
              label="Webhook URL (optional)"
              error={errors.webhook_url}
              hint={
                serverWebhook
                  ? `Empty: the server's webhook (${serverWebhook}). Deliveries are signed; see the alerts docs.`
                  : serverWebhook === null
                    ? "The server has no webhook of its own: without one here, nothing is sent for this limiter."
                    : "Empty: the server's webhook."
              }
            >
              <Input
                id={id("webhook_url")}
                name="alerts_webhook_url"
                type="url"
                value={values.webhook_url}
                onChange={(e) => onChange({ ...values, webhook_url: e.target.value })}
                placeholder={serverWebhook ?? "https://hooks.example.com/…"}
                autoComplete="off"
                {...inv("webhook_url")}
              />
            </FormField>
            <FormField id={id("format")} errorTestId="field-error-alerts_format" label="Format" hint={values.webhook_url.trim() ? undefined : "For a webhook set here."}>
              <Select
                id={id("format")}
                name="alerts_format"
                value={values.format}
                disabled={!values.webhook_url.trim()}
                onChange={(e) => onChange({ ...values, format: e.target.value as WebhookFormat })}
              >
                <option value="json">JSON</option>
                <option value="slack">Slack</option>
              </Select>
            </FormField>
          </div>
        </>
      )}
      <div className="flex items-start gap-3">
        <Switch id={id("muted")} name="alerts_muted" checked={values.muted} onCheckedChange={(c) => onChange({ ...values, muted: c })} data-testid="alerts-mute-switch" />
        <div className="grid gap-1">
          <Label htmlFor={id("muted")} className="flex items-center gap-1.5">
            {values.muted && <BellOff className="h-3.5 w-3.5" />}
            Mute alerts
          </Label>
          <p className="text-xs text-muted-foreground">{values.muted ? "Nothing is sent for this limiter, not even to the server's webhook." : "Alerts for this limiter are sent."}</p>
        </div>
      </div>
    </fieldset>
  );
}

function formatName(f: WebhookFormat): string {
  return f === "slack" ? "Slack" : "JSON";
}

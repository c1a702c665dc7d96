import { CircleAlert, Loader2 } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { api, type Limiter } from "../lib/api";
import { GRACE_CHOICES, GRACE_MAX_SECONDS, graceSeconds, type GraceChoice } from "../lib/credentials";
import { Button } from "./ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle } from "./ui/dialog";
import { Input } from "./ui/input";
import { Label } from "./ui/label";
import { Select } from "./ui/select";

/**
 * Rotates a limiter's code (`POST /api/limiters/{id}/rotate-code`) after the admin picks how
 * long the old code keeps working: none, an hour, a day, a week or any number of seconds up to
 * 30 days.
 */
export function RotateCodeDialog({
  limiter,
  onOpenChange,
  onRotated,
}: {
  /** The limiter to rotate; the dialog is open while set. */
  limiter: Limiter | null;
  onOpenChange: (open: boolean) => void;
  onRotated: (l: Limiter, graceSeconds: number) => void;
}) {
  const [choice, setChoice] = useState<GraceChoice>("0");
  const [custom, setCustom] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [fieldError, setFieldError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const uid = "r" + useId().replace(/[^a-zA-Z0-9]/g, "");

  useEffect(() => {
    if (!limiter) return;
    setChoice("0");
    setCustom("");
    setError(null);
    setFieldError(null);
  }, [limiter]);

  async function onSubmit(e: React.FormEvent) {
    e.preventDefault();
    if (!limiter) return;
    setError(null);
    const g = graceSeconds(choice, custom);
    if ("error" in g) {
      setFieldError(g.error);
      return;
    }
    setFieldError(null);
    setBusy(true);
    try {
      const saved = await api.rotateCode(limiter.id, g.seconds);
      onRotated(saved, g.seconds);
      onOpenChange(false);
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const heldKey = !!limiter?.credential_id;
  return (
    <Dialog open={!!limiter} onOpenChange={onOpenChange}>
      <DialogContent data-testid="rotate-dialog">
        <DialogHeader>
          <DialogTitle>Rotate the code of “{limiter?.name}”?</DialogTitle>
          <DialogDescription>
            The limiter gets a new code, so a new {heldKey ? "API key for its clients and a new endpoint" : "proxy endpoint"}. Every client must be updated; choose how
            long the old code keeps working meanwhile.
          </DialogDescription>
        </DialogHeader>
        <form className="grid gap-4" onSubmit={onSubmit} noValidate data-testid="rotate-form">
          <div className="grid gap-1.5">
            <Label htmlFor={`${uid}-grace`}>The old code keeps working for</Label>
            <Select
              id={`${uid}-grace`}
              name="grace"
              value={choice}
              onChange={(e) => {
                setChoice(e.target.value as GraceChoice);
                setFieldError(null);
              }}
            >
              {GRACE_CHOICES.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.label}
                </option>
              ))}
            </Select>
          </div>
          {choice === "custom" && (
            <div className="grid gap-1.5">
              <Label htmlFor={`${uid}-seconds`}>Grace period (seconds)</Label>
              <Input
                id={`${uid}-seconds`}
                name="grace_seconds"
                inputMode="numeric"
                value={custom}
                onChange={(e) => {
                  setCustom(e.target.value);
                  setFieldError(null);
                }}
                placeholder="7200"
                aria-invalid={fieldError ? true : undefined}
                aria-describedby={fieldError ? `${uid}-seconds-error` : undefined}
              />
              {fieldError ? (
                <p id={`${uid}-seconds-error`} className="text-xs font-medium text-red-600" data-testid="field-error-grace_seconds">
                  {fieldError}
                </p>
              ) : (
                <p className="text-xs text-muted-foreground">0 to {GRACE_MAX_SECONDS.toLocaleString("en-US")} (30 days).</p>
              )}
            </div>
          )}
          {error && (
            <p role="alert" data-testid="rotate-error" className="flex items-start gap-2 rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800">
              <CircleAlert className="mt-0.5 h-4 w-4 shrink-0" />
              {error}
            </p>
          )}
          <DialogFooter>
            <Button variant="outline" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" disabled={busy} data-testid="confirm-rotate">
              {busy && <Loader2 className="animate-spin" />}
              Rotate code
            </Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}

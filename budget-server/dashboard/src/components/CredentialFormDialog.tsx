import { KeyRound } from "lucide-react";
import { useEffect, useId, useState } from "react";
import { useFormState } from "../hooks/useFormState";
import { ApiError, api, type Credential } from "../lib/api";
import {
  credentialFieldFor,
  credentialValues,
  EMPTY_CREDENTIAL,
  isSecretsKeyMissing,
  kindLabel,
  toCredentialCreate,
  toCredentialUpdate,
  validateCredentialForm,
  type CredentialFormValues,
} from "../lib/credentials";
import { FormDialog, FormField, invalidProps } from "./FormDialog";
import { Input } from "./ui/input";
import { Select } from "./ui/select";

/** Create a credential, edit its name and headers, or rotate its key (enter a new one). */
export type CredentialFormMode = "create" | "edit" | "rotate";

/** The server refuses to store keys until it is given SECRETS_KEY: say so plainly, with the fix. */
export function SecretsKeyMissing({ message }: { message: string }) {
  return (
    <div role="alert" data-testid="secrets-key-missing" className="grid gap-1 rounded-md border border-amber-300 bg-amber-50 px-3 py-2 text-sm text-amber-900">
      <p className="flex items-center gap-2 font-medium">
        <KeyRound className="h-4 w-4 shrink-0" />
        The server cannot store upstream keys: SECRETS_KEY is not set
      </p>
      <p className="text-amber-900/90">{message}</p>
      <p className="text-xs text-amber-900/80">
        Generate one with <code className="font-mono">openssl rand -base64 32</code>, set it as <code className="font-mono">SECRETS_KEY</code> in the server&apos;s
        environment, keep a copy apart from the database backups, and restart the server.
      </p>
    </div>
  );
}

export function CredentialFormDialog({
  mode,
  credential,
  open,
  onOpenChange,
  onSaved,
}: {
  mode: CredentialFormMode;
  /** The credential to edit or rotate (absent when creating). */
  credential?: Credential | null;
  open: boolean;
  onOpenChange: (open: boolean) => void;
  onSaved: (c: Credential, mode: CredentialFormMode) => void;
}) {
  const keyShown = mode !== "edit";
  const namesShown = mode !== "rotate";
  const { values, setValues, errors, setErrors, formError, setFormError, busy, reset, update, submit } = useFormState(EMPTY_CREDENTIAL, (v: CredentialFormValues) =>
    validateCredentialForm(v, keyShown),
  );
  const [secretsMissing, setSecretsMissing] = useState<string | null>(null);
  const uid = "c" + useId().replace(/[^a-zA-Z0-9]/g, "");

  useEffect(() => {
    if (!open) return;
    // The key field always starts empty: a stored key is never sent back to the dashboard.
    reset(credential && mode !== "create" ? credentialValues(credential) : EMPTY_CREDENTIAL);
    setSecretsMissing(null);
  }, [open, credential, mode, reset]);
  const set = (k: keyof CredentialFormValues) => (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => update({ ...values, [k]: e.target.value });

  function onSubmit(e: React.FormEvent) {
    setSecretsMissing(null);
    return submit(e, {
      save: async () => {
        let saved: Credential;
        if (mode === "create" || !credential) saved = await api.createCredential(toCredentialCreate(values));
        else {
          const body = mode === "rotate" ? { api_key: values.api_key.trim() } : toCredentialUpdate(credential, { ...values, api_key: "" });
          saved = Object.keys(body).length === 0 ? credential : await api.updateCredential(credential.id, body);
        }
        // Forget the typed key at once; only its hint is shown from now on.
        setValues((v) => ({ ...v, api_key: "" }));
        onSaved(saved, mode);
        onOpenChange(false);
      },
      fail: (err) => {
        if (isSecretsKeyMissing(err)) {
          setSecretsMissing((err as ApiError).message);
          return;
        }
        // A 409 is the one conflict a credential has: its name is another's.
        const field = err instanceof ApiError ? (err.status === 409 && namesShown ? "name" : credentialFieldFor(err.field)) : null;
        const message = err instanceof Error ? err.message : String(err);
        if (field && (field !== "api_key" || keyShown)) setErrors((prev) => ({ ...prev, [field]: message }));
        else setFormError(message);
      },
    });
  }

  const id = (k: string) => `${uid}-${k}`;
  const inv = (k: keyof CredentialFormValues) => invalidProps(id(k), errors[k]);
  const title = mode === "create" ? "Add an upstream key" : mode === "rotate" ? `Rotate the key of “${credential?.name}”` : `Edit “${credential?.name}”`;
  const description =
    mode === "create"
      ? "The server encrypts the key and sends it for every limiter that uses it. It is never shown again, only its last four characters."
      : mode === "rotate"
        ? `Enter the new key. Every limiter using this credential (${credential?.limiter_count ?? 0}) sends it from its next request. Current key: ${credential?.key_hint ?? ""}.`
        : "The key stays as it is; to replace it, rotate it.";

  return (
    <FormDialog
      open={open}
      onOpenChange={onOpenChange}
      testId="credential-form-dialog"
      mode={mode}
      title={title}
      description={description}
      formTestId="credential-form"
      autoComplete="off"
      onSubmit={onSubmit}
      formError={formError}
      busy={busy}
      submitLabel={mode === "create" ? "Save key" : mode === "rotate" ? "Rotate key" : "Save changes"}
      submitTestId="credential-form-submit"
    >
      {namesShown && (
        <div className="grid gap-4 sm:grid-cols-2">
          <FormField id={id("name")} label="Name" error={errors.name}>
            <Input id={id("name")} name="name" value={values.name} onChange={set("name")} placeholder="openai-prod" {...inv("name")} />
          </FormField>
          <FormField id={id("kind")} label="Kind" error={errors.kind} hint={mode === "edit" ? "Fixed once created." : undefined}>
            <Select id={id("kind")} name="kind" value={values.kind} onChange={set("kind")} disabled={mode !== "create"} {...inv("kind")}>
              <option value="openai">{kindLabel("openai")}</option>
              <option value="azure">{kindLabel("azure")}</option>
            </Select>
          </FormField>
        </div>
      )}
      {keyShown && (
        <FormField
          id={id("api_key")}
          label={mode === "rotate" ? "New API key" : "API key"}
          error={errors.api_key}
          hint={values.kind === "azure" ? "The Azure OpenAI resource's api-key." : "An OpenAI API key (sk-…)."}
        >
          <Input
            id={id("api_key")}
            name="api_key"
            type="password"
            autoComplete="new-password"
            spellCheck={false}
            value={values.api_key}
            onChange={set("api_key")}
            placeholder={values.kind === "azure" ? "Azure api-key" : "sk-…"}
            {...inv("api_key")}
          />
        </FormField>
      )}
      {namesShown && values.kind === "openai" && (
        <div className="grid gap-4 sm:grid-cols-2">
          <FormField id={id("organization")} label="Organization (optional)" error={errors.organization} hint="Sent as OpenAI-Organization.">
            <Input id={id("organization")} name="organization" value={values.organization} onChange={set("organization")} placeholder="org-…" {...inv("organization")} />
          </FormField>
          <FormField id={id("project")} label="Project (optional)" error={errors.project} hint="Sent as OpenAI-Project.">
            <Input id={id("project")} name="project" value={values.project} onChange={set("project")} placeholder="proj_…" {...inv("project")} />
          </FormField>
        </div>
      )}
      {secretsMissing && <SecretsKeyMissing message={secretsMissing} />}
    </FormDialog>
  );
}

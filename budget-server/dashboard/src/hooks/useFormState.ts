import { useCallback, useState } from "react";

/**
 * The state every form dialog keeps: its values, the errors by field, the error that belongs to
 * no field, whether it was submitted (from then on it is checked as the user types) and whether
 * it is saving.
 */
export function useFormState<V, E extends object>(empty: V, validate: (v: V) => E) {
  const [values, setValues] = useState<V>(empty);
  const [errors, setErrors] = useState<E>({} as E);
  const [formError, setFormError] = useState<string | null>(null);
  const [submitted, setSubmitted] = useState(false);
  const [busy, setBusy] = useState(false);

  /** Starts over from `start` (when the dialog opens). */
  const reset = useCallback((start: V) => {
    setValues(start);
    setErrors({} as E);
    setFormError(null);
    setSubmitted(false);
  }, []);

  /** New values; after a first submit they are checked again, so messages go away once fixed. */
  const update = (next: V) => {
    setValues(next);
    if (submitted) setErrors(validate(next));
  };

  /**
   * Checks the values (and `alsoValid`, checked either way) and, when they pass, saves with the
   * busy state on; an error thrown by `save` goes to `fail`.
   */
  async function submit(e: React.FormEvent, { save, fail, alsoValid }: { save: () => Promise<void>; fail: (err: unknown) => void; alsoValid?: () => boolean }) {
    e.preventDefault();
    setSubmitted(true);
    setFormError(null);
    const errs = validate(values);
    setErrors(errs);
    const othersValid = alsoValid ? alsoValid() : true;
    if (Object.keys(errs).length > 0 || !othersValid) return;
    setBusy(true);
    try {
      await save();
    } catch (err) {
      fail(err);
    } finally {
      setBusy(false);
    }
  }

  return { values, setValues, errors, setErrors, formError, setFormError, submitted, busy, reset, update, submit };
}

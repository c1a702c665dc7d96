// Team accounts (docs/admin-api.md#team-accounts): the form rules the server applies, so the
// dashboard says what is wrong before sending, and labels for roles.

import type { Account, AccountCreate, Role } from "./api";

/** The fewest characters a password may have (the server's rule). */
export const MIN_PASSWORD_CHARS = 12;
/** The most bytes a password may have (the server's rule: it bounds the argon2 work). */
export const MAX_PASSWORD_BYTES = 1024;

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;

/** What is wrong with a user name, or null: 1 to 64 ASCII letters, digits, `.`, `_`, `@`, `-`. */
export function usernameProblem(name: string): string | null {
  if (name.length === 0) return "Enter a user name.";
  return USERNAME.test(name) ? null : "1 to 64 characters: letters, digits, '.', '_', '@' or '-' (no spaces).";
}

/** What is wrong with a new password, or null. */
export function passwordProblem(password: string): string | null {
  if ([...password].length < MIN_PASSWORD_CHARS) return `At least ${MIN_PASSWORD_CHARS} characters.`;
  if (new TextEncoder().encode(password).length > MAX_PASSWORD_BYTES) return `At most ${MAX_PASSWORD_BYTES} bytes.`;
  return null;
}

export interface AccountFormValues {
  username: string;
  password: string;
  confirm: string;
  role: Role;
}

export type AccountFormErrors = Partial<Record<keyof AccountFormValues, string>>;

export const EMPTY_ACCOUNT: AccountFormValues = { username: "", password: "", confirm: "", role: "viewer" };

/**
 * The problems of a create form (`withName`) or a password reset (without): each field's
 * message, empty when the form may be sent.
 */
export function validateAccountForm(v: AccountFormValues, withName: boolean): AccountFormErrors {
  const errors: AccountFormErrors = {};
  if (withName) {
    const u = usernameProblem(v.username.trim());
    if (u) errors.username = u;
  }
  const p = passwordProblem(v.password);
  if (p) errors.password = p;
  else if (v.confirm !== v.password) errors.confirm = "The two passwords differ.";
  return errors;
}

export function toAccountCreate(v: AccountFormValues): AccountCreate {
  return { username: v.username.trim(), password: v.password, role: v.role };
}

export function roleLabel(role: Role): string {
  return role === "admin" ? "Admin" : "Viewer";
}

/** Accounts by name, ignoring case (as the server compares names). */
export function sortAccounts(list: Account[]): Account[] {
  return [...list].sort((a, b) => a.username.toLowerCase().localeCompare(b.username.toLowerCase()));
}

/** Which form field an API error names (the server's `password`, `new_password`, …). */
export function accountFieldFor(field: string | null): keyof AccountFormValues | "current" | null {
  switch (field) {
    case "username":
      return "username";
    case "password":
    case "new_password":
      return "password";
    case "current_password":
      return "current";
    case "role":
      return "role";
    default:
      return null;
  }
}

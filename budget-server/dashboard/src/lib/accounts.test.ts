import { describe, expect, it } from "vitest";
import { accountFieldFor, EMPTY_ACCOUNT, passwordProblem, sortAccounts, toAccountCreate, usernameProblem, validateAccountForm } from "./accounts";
import type { Account } from "./api";

describe("account form rules (the server's)", () => {
  it("user names: 1 to 64 ASCII letters, digits, . _ @ -", () => {
    expect(usernameProblem("jane.doe@example")).toBeNull();
    expect(usernameProblem("a")).toBeNull();
    expect(usernameProblem("x".repeat(64))).toBeNull();
    expect(usernameProblem("")).toMatch(/Enter/);
    for (const bad of ["has space", "x".repeat(65), "jürgen", "semi;colon"]) expect(usernameProblem(bad), bad).toMatch(/1 to 64/);
  });

  it("passwords: at least 12 characters, at most 1024 bytes", () => {
    expect(passwordProblem("eleven-char")).toMatch(/At least 12/);
    expect(passwordProblem("twelve-chars")).toBeNull();
    // 12 characters, more bytes: characters count, not bytes.
    expect(passwordProblem("ééééééééééé1")).toBeNull();
    expect(passwordProblem("é".repeat(513))).toMatch(/At most 1024 bytes/);
  });

  it("a create form needs a name, a password and the same password twice; a reset no name", () => {
    expect(validateAccountForm(EMPTY_ACCOUNT, true)).toEqual({ username: "Enter a user name.", password: "At least 12 characters." });
    const ok = { username: " vera ", password: "viewer-password-1", confirm: "viewer-password-1", role: "viewer" as const };
    expect(validateAccountForm(ok, true)).toEqual({});
    expect(validateAccountForm({ ...ok, confirm: "viewer-password-2" }, true)).toEqual({ confirm: "The two passwords differ." });
    expect(validateAccountForm({ ...ok, username: "" }, false)).toEqual({});
    expect(toAccountCreate(ok)).toEqual({ username: "vera", password: "viewer-password-1", role: "viewer" });
  });

  it("maps the server's field names to the form's", () => {
    expect(accountFieldFor("new_password")).toBe("password");
    expect(accountFieldFor("current_password")).toBe("current");
    expect(accountFieldFor("username")).toBe("username");
    expect(accountFieldFor(null)).toBeNull();
  });

  it("sorts by name ignoring case, as the server compares names", () => {
    const a = (username: string) => ({ username }) as Account;
    expect(sortAccounts([a("bob"), a("Alice"), a("carol")]).map((x) => x.username)).toEqual(["Alice", "bob", "carol"]);
  });
});

import { describe, expect, it } from "vitest";
import { ApiError, type Credential } from "./api";
import {
  apiKeyProblem,
  EMPTY_CREDENTIAL,
  graceSeconds,
  isSecretsKeyMissing,
  previousCodeText,
  toCredentialCreate,
  toCredentialUpdate,
  validateCredentialForm,
} from "./credentials";

const stored: Credential = {
  id: "0c0c0c0c-0000-4000-8000-00000000000a",
  name: "openai-prod",
  kind: "openai",
  organization: "org-1",
  project: null,
  key_hint: "…wxyz",
  fingerprint: "sha256:0123456789ab",
  created_at: "2026-03-01T00:00:00Z",
  updated_at: "2026-03-01T00:00:00Z",
  rotated_at: "2026-03-01T00:00:00Z",
  limiter_count: 2,
};

describe("validateCredentialForm", () => {
  it("names every missing or malformed field", () => {
    expect(validateCredentialForm(EMPTY_CREDENTIAL, true)).toEqual({ name: "Name is required.", api_key: "The API key is required." });
    const bad = validateCredentialForm({ name: "prod/key", kind: "openai", api_key: "Bearer sk-abcdefgh", organization: "org 1", project: "" }, true);
    expect(bad.name).toMatch(/letters, digits/);
    expect(bad.api_key).toMatch(/without “Bearer ”/);
    expect(bad.organization).toMatch(/printable ASCII/);
    expect(bad.project).toBeUndefined();
  });
  it("skips the key when it is not being set, and the OpenAI headers for an Azure key", () => {
    expect(validateCredentialForm({ name: "azure eu", kind: "azure", api_key: "", organization: "ignored here", project: "" }, false)).toEqual({});
  });
  it("checks the key as the server does, without repeating it", () => {
    expect(apiKeyProblem("short")).toMatch(/8 to 1024/);
    expect(apiKeyProblem("sk-has space")).toMatch(/visible ASCII/);
    expect(apiKeyProblem("sk-proj-abcdef123456")).toBeNull();
    expect(apiKeyProblem("sk-secret-value 1")).not.toContain("sk-secret-value");
  });
});

describe("request bodies", () => {
  it("create sends organization and project only for OpenAI and only when set", () => {
    expect(toCredentialCreate({ name: " openai-prod ", kind: "openai", api_key: " sk-abcdefgh ", organization: "org-1", project: "" })).toEqual({
      name: "openai-prod",
      kind: "openai",
      api_key: "sk-abcdefgh",
      organization: "org-1",
    });
    expect(toCredentialCreate({ name: "az", kind: "azure", api_key: "0123456789", organization: "org-1", project: "p" })).toEqual({
      name: "az",
      kind: "azure",
      api_key: "0123456789",
    });
  });
  it("update sends what changed: a rename, a cleared header as null, a key only when typed", () => {
    expect(toCredentialUpdate(stored, { name: "openai-main", kind: "openai", api_key: "", organization: "", project: "proj_9" })).toEqual({
      name: "openai-main",
      organization: null,
      project: "proj_9",
    });
    expect(toCredentialUpdate(stored, { name: "openai-prod", kind: "openai", api_key: "sk-new-key-1234", organization: "org-1", project: "" })).toEqual({
      api_key: "sk-new-key-1234",
    });
  });
});

describe("isSecretsKeyMissing", () => {
  it("is the server's 400 naming SECRETS_KEY, nothing else", () => {
    expect(isSecretsKeyMissing(new ApiError(400, "SECRETS_KEY is not set: generate one with `openssl rand -base64 32`"))).toBe(true);
    expect(isSecretsKeyMissing(new ApiError(400, "name: must be 1 to 100 characters"))).toBe(false);
    expect(isSecretsKeyMissing(new ApiError(500, "SECRETS_KEY"))).toBe(false);
    expect(isSecretsKeyMissing(new Error("SECRETS_KEY"))).toBe(false);
  });
});

describe("graceSeconds", () => {
  it("takes a preset, or custom whole seconds up to 30 days", () => {
    expect(graceSeconds("0", "")).toEqual({ seconds: 0 });
    expect(graceSeconds("3600", "999")).toEqual({ seconds: 3600 });
    expect(graceSeconds("86400", "")).toEqual({ seconds: 86400 });
    expect(graceSeconds("custom", " 7200 ")).toEqual({ seconds: 7200 });
    expect(graceSeconds("custom", "2592000")).toEqual({ seconds: 2592000 });
    expect(graceSeconds("custom", "2592001")).toMatchObject({ error: expect.stringMatching(/30 days/) });
    expect(graceSeconds("custom", "1.5")).toMatchObject({ error: expect.stringMatching(/whole number/) });
    expect(graceSeconds("custom", "-1")).toMatchObject({ error: expect.any(String) });
    expect(graceSeconds("custom", "")).toMatchObject({ error: expect.any(String) });
  });
});

describe("previousCodeText", () => {
  const now = Date.parse("2026-03-10T12:00:00Z");
  it("says until when the old code works, while it does", () => {
    expect(previousCodeText("2026-03-10T13:00:00Z", now, "UTC")).toBe("Old code works until Mar 10, 2026, 13:00 (1h 00m left)");
    expect(previousCodeText("2026-03-10T11:59:59Z", now, "UTC")).toBeNull();
    expect(previousCodeText(null, now)).toBeNull();
    expect(previousCodeText("soon", now)).toBeNull();
  });
});

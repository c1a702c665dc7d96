// Shared test data for the component and page tests: one limiter and one stored key as the
// admin API returns them, each test overriding what it is about.
import type { Credential, Limiter } from "../lib/api";

/** "Customer A": $20 a day, a quarter spent, active, no policies. */
export function limiterFixture(over: Partial<Limiter> = {}): Limiter {
  return {
    id: "6f1c2d4e-0000-4000-8000-000000000001",
    name: "Customer A",
    code: "0123456789abcdef0123456789abcdef",
    proxy_endpoint: "http://localhost:8000/v1/0123456789abcdef0123456789abcdef",
    budget_limit: 20,
    period_type: "day",
    timezone: "UTC",
    base_url: "https://api.openai.com",
    provider: "openai",
    mode: "soft",
    unpriced: "admit",
    is_active: true,
    created_at: "2026-03-01T00:00:00Z",
    updated_at: "2026-03-01T00:00:00Z",
    deleted_at: null,
    current_spend: 5.25,
    remaining_budget: 14.75,
    usage_percentage: 26.25,
    period_start: "2026-03-10T00:00:00Z",
    period_end: "2026-03-11T00:00:00Z",
    extra_budgets: [],
    user_budget: null,
    user_overrides: {},
    require_user: false,
    allowed_models: [],
    max_request_cost: null,
    cap_output_tokens: true,
    expires_at: null,
    windows: [],
    refused: { total: 0, by_reason: {} },
    ...over,
  };
}

/** "openai-prod": a stored OpenAI key no limiter uses yet. */
export function credentialFixture(over: Partial<Credential> = {}): Credential {
  return {
    id: "0c0c0c0c-0000-4000-8000-00000000000a",
    name: "openai-prod",
    kind: "openai",
    organization: null,
    project: null,
    key_hint: "…wxyz",
    fingerprint: "sha256:0123456789ab",
    created_at: "2026-03-01T00:00:00Z",
    updated_at: "2026-03-01T00:00:00Z",
    rotated_at: "2026-03-05T10:00:00Z",
    limiter_count: 0,
    ...over,
  };
}

//! OpenAPI schemas for the `budget-core` types the admin API reads and writes.
//!
//! `budget-core` knows nothing of HTTP or OpenAPI, so its types carry no `ToSchema`. The
//! handlers' own types name these schemas with `#[schema(value_type = ...)]` instead:
//!
//! - [`MoneySchema`]: money is a JSON number of US dollars (see [`budget_core::Money`]'s serde).
//! - One string enum per core enum, its values written by serde itself; a `match` stops the
//!   build when the core enum gains a variant that is not listed here.
//! - [`LimiterRecord`], [`LimiterCreate`], [`LimiterUpdate`] and [`UsageRecordFields`]: the
//!   fields of [`budget_core::Limiter`], [`budget_core::NewLimiter`],
//!   [`budget_core::LimiterUpdate`] and [`budget_core::store::UsageRecord`]. Their tests check
//!   that each lists exactly the fields serde writes for the core type.

use std::borrow::Cow;

use budget_core::api::UnmeteredPolicy;
use budget_core::usage::Endpoint;
use budget_core::{EnforcementMode, Period, Provider, UnpricedPolicy};
use chrono::{DateTime, Utc};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

/// Money in an answer: a JSON number of US dollars (see `budget_core::Money`).
#[derive(Debug, Clone, Copy)]
pub struct MoneySchema;

impl PartialSchema for MoneySchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .description(Some(
                "US dollars as a JSON number, exact to the nano-dollar (at most 9 decimals)",
            ))
            .into()
    }
}

impl ToSchema for MoneySchema {
    fn name() -> Cow<'static, str> {
        "Money".into()
    }
}

/// A budget in a request: from one nano-dollar to $1,000,000,000, at most 9 decimals; a JSON
/// number or a decimal string (`"20.00"`), never read through a binary float.
pub fn budget_input_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0.000_000_001))
        .maximum(Some(1_000_000_000))
        .description(Some(
            "Budget per period in US dollars: from 0.000000001 to 1000000000, at most 9 \
             decimals (a decimal string such as \"20.00\" is accepted too)",
        ))
        .into()
}

/// [`budget_input_schema`], or `null` (leave the budget as it is).
pub fn budget_update_schema() -> Schema {
    let mut schema = budget_input_schema();
    if let Schema::Object(o) = &mut schema {
        o.schema_type = SchemaType::from_iter([Type::Number, Type::Null]);
    }
    schema
}

/// A string enum schema for a `budget-core` enum, its values written by serde itself.
macro_rules! core_enum_schema {
    ($(#[$doc:meta])* $schema:ident = $name:literal for $core:ty: [$($variant:path),+ $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $schema;

        impl $schema {
            /// Every variant of the core enum (the `match` fails to build when one is missing).
            pub fn all() -> Vec<$core> {
                fn listed(v: $core) -> bool {
                    match v {
                        $($variant)|+ => true,
                    }
                }
                let all = vec![$($variant),+];
                debug_assert!(all.iter().copied().all(listed));
                all
            }

            /// The JSON strings serde writes for the variants.
            pub fn values() -> Vec<String> {
                Self::all()
                    .iter()
                    .map(|v| match serde_json::to_value(v) {
                        Ok(serde_json::Value::String(s)) => s,
                        other => panic!("{} does not serialize as a string: {other:?}", $name),
                    })
                    .collect()
            }
        }

        impl PartialSchema for $schema {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Self::values()))
                    .into()
            }
        }

        impl ToSchema for $schema {
            fn name() -> Cow<'static, str> {
                $name.into()
            }
        }
    };
}

core_enum_schema!(
    /// How often a budget resets (`budget_core::Period`).
    PeriodSchema = "Period" for Period: [
        Period::Minute, Period::Hour, Period::Day, Period::Week, Period::Month, Period::Year,
    ]
);
core_enum_schema!(
    /// The API the upstream speaks (`budget_core::Provider`).
    ProviderSchema = "Provider" for Provider: [Provider::Openai, Provider::Azure]
);
core_enum_schema!(
    /// Soft or strict enforcement (`budget_core::EnforcementMode`).
    ModeSchema = "EnforcementMode" for EnforcementMode: [EnforcementMode::Soft, EnforcementMode::Strict]
);
core_enum_schema!(
    /// A webhook body format (`budget_core::alert::WebhookFormat`): `json` (the event) or
    /// `slack` (`{"text": …}`).
    WebhookFormatSchema = "WebhookFormat" for budget_core::alert::WebhookFormat: [
        budget_core::alert::WebhookFormat::Json, budget_core::alert::WebhookFormat::Slack,
    ]
);
core_enum_schema!(
    /// What an alert is about (`budget_core::alert::AlertKind`).
    AlertKindSchema = "AlertKind" for budget_core::alert::AlertKind: [
        budget_core::alert::AlertKind::ThresholdCrossed, budget_core::alert::AlertKind::Exhausted,
        budget_core::alert::AlertKind::Deactivated, budget_core::alert::AlertKind::Expired,
        budget_core::alert::AlertKind::Deleted,
    ]
);
core_enum_schema!(
    /// Where an alert's delivery stands (`budget_core::alert::DeliveryStatus`).
    DeliveryStatusSchema = "DeliveryStatus" for budget_core::alert::DeliveryStatus: [
        budget_core::alert::DeliveryStatus::Pending, budget_core::alert::DeliveryStatus::Delivered,
        budget_core::alert::DeliveryStatus::Failed,
    ]
);
core_enum_schema!(
    /// Requests for unpriced models: admit flagged, or refuse (`budget_core::UnpricedPolicy`).
    UnpricedSchema = "UnpricedPolicy" for UnpricedPolicy: [UnpricedPolicy::Admit, UnpricedPolicy::Refuse]
);
core_enum_schema!(
    /// Endpoints that cost money but are not metered, and unknown ones: refused or allowed
    /// (`budget_core::api::UnmeteredPolicy`).
    UnmeteredSchema = "UnmeteredPolicy" for UnmeteredPolicy: [UnmeteredPolicy::Refuse, UnmeteredPolicy::Allow]
);
core_enum_schema!(
    /// Which OpenAI API a usage record is for (`budget_core::usage::Endpoint`).
    EndpointSchema = "Endpoint" for Endpoint: [
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Images,
        Endpoint::AudioTranscription,
        Endpoint::AudioSpeech,
        Endpoint::Moderations,
        Endpoint::Other,
    ]
);

/// A budget over a calendar period, e.g. `{"budget_limit": 5, "period_type": "hour"}`
/// (`budget_core::policy::BudgetWindow`).
#[derive(ToSchema)]
#[schema(as = BudgetWindow)]
#[allow(dead_code)]
pub struct BudgetWindowSchema {
    /// The budget per period, more than $0.
    #[schema(value_type = MoneySchema)]
    budget_limit: (),
    /// The period, in the limiter's time zone.
    #[schema(value_type = PeriodSchema)]
    period_type: (),
}

/// A limiter as stored (the fields of `budget_core::Limiter`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LimiterRecord {
    /// Identifier.
    id: Uuid,
    /// Human name.
    name: String,
    /// The proxy code (`/v1/{code}/...`); a credential.
    code: String,
    /// Budget per period.
    #[schema(value_type = MoneySchema)]
    budget_limit: (),
    /// How often the budget resets.
    #[schema(value_type = PeriodSchema)]
    period_type: (),
    /// IANA time zone where day, week, month and year begin.
    timezone: String,
    /// The upstream (may carry a path prefix).
    #[schema(format = "uri")]
    base_url: String,
    /// Which API the upstream speaks.
    #[schema(value_type = ProviderSchema)]
    provider: (),
    /// Soft or strict enforcement.
    #[schema(value_type = ModeSchema)]
    mode: (),
    /// Requests for unpriced models: admit flagged, or refuse.
    #[schema(value_type = UnpricedSchema)]
    unpriced: (),
    /// Costly unmetered and unknown endpoints; `null` follows the server's setting.
    #[schema(value_type = Option<UnmeteredSchema>)]
    unmetered_endpoints: (),
    /// Inactive limiters refuse every request.
    is_active: bool,
    /// More windows besides `budget_limit`/`period_type`; a request must fit every one.
    extra_budgets: Vec<BudgetWindowSchema>,
    /// The budget of each end user, inside the limiter's.
    user_budget: Option<BudgetWindowSchema>,
    /// Budgets of named end users, in place of `user_budget` (set with
    /// `PUT /api/limiters/{id}/users/{user}`).
    user_overrides: std::collections::BTreeMap<String, BudgetWindowSchema>,
    /// Requests without an end-user id are refused.
    require_user: bool,
    /// Models this limiter may use, exact names or `*` globs; empty allows all.
    allowed_models: Vec<String>,
    /// The most one request may cost in the worst case; `null` for no cap.
    #[schema(value_type = Option<MoneySchema>)]
    max_request_cost: (),
    /// A request over `max_request_cost` without an output limit gets the largest limit that
    /// fits (true) or is refused (false).
    cap_output_tokens: bool,
    /// From this instant every request is refused (`403 limiter_expired`); `null`: never.
    expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it was last changed.
    updated_at: DateTime<Utc>,
    /// When it was deleted; its code no longer works, its usage stays for statistics.
    deleted_at: Option<DateTime<Utc>>,
    /// The upstream credential the server sends instead of the client's key
    /// (`/api/credentials`); `null`: the client's own key goes upstream (pass-through).
    credential_id: Option<Uuid>,
    /// The code before the last rotation while it still works (a rotation with
    /// `grace_seconds`); `null` otherwise.
    previous_code: Option<PreviousCodeSchema>,
    /// Threshold alerts; `null` follows the server's defaults (`GET /api/alerts`).
    alerts: Option<AlertSettingsSchema>,
}

/// A limiter's alert settings (`budget_core::alert::AlertSettings`); every field is optional
/// and an absent or `null` one follows the server's default.
#[derive(ToSchema)]
#[schema(as = AlertSettings)]
#[allow(dead_code)]
pub struct AlertSettingsSchema {
    /// Percentages of each window's budget that raise an alert when spend reaches them,
    /// ascending, 1 to 1000, at most 10; `[]` turns threshold alerts off; `null`: the
    /// server's `ALERT_THRESHOLDS`.
    thresholds: Option<Vec<u16>>,
    /// Where this limiter's events go, instead of the server's `ALERT_WEBHOOK_URL` (http or
    /// https, no user info, at most 2048 characters). Needs `ALERT_WEBHOOK_SECRET`.
    #[schema(format = "uri")]
    webhook_url: Option<String>,
    /// The body for `webhook_url`: `json` (the event) or `slack` (`{"text": …}`).
    #[schema(value_type = Option<WebhookFormatSchema>)]
    format: (),
    /// No alerts at all for this limiter.
    #[schema(default = false)]
    muted: Option<bool>,
}

/// A code retired by a rotation with a grace period.
#[derive(ToSchema)]
#[schema(as = PreviousCode)]
#[allow(dead_code)]
pub struct PreviousCodeSchema {
    /// The old code; a credential.
    code: String,
    /// When it stops working.
    until: DateTime<Utc>,
}

/// The body of `POST /api/limiters` (read as `budget_core::NewLimiter`).
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LimiterCreate {
    /// Human name, 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Budget per period.
    #[schema(schema_with = budget_input_schema)]
    budget_limit: (),
    /// How often the budget resets.
    #[schema(value_type = PeriodSchema)]
    period_type: (),
    /// Upstream URL, http or https (default: the server's `OPENAI_API_BASE_URL`).
    #[schema(format = "uri", pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    base_url: Option<String>,
    /// IANA time zone where day, week, month and year begin (default UTC).
    timezone: Option<String>,
    /// Default `openai`.
    #[schema(value_type = Option<ProviderSchema>)]
    provider: (),
    /// Default `soft`.
    #[schema(value_type = Option<ModeSchema>)]
    mode: (),
    /// Default `admit`.
    #[schema(value_type = Option<UnpricedSchema>)]
    unpriced: (),
    /// Costly unmetered and unknown endpoints; absent or `null`: the server's setting.
    #[schema(value_type = Option<UnmeteredSchema>)]
    unmetered_endpoints: (),
    /// Default true.
    is_active: Option<bool>,
    /// More windows, each period at most once and not the limiter's own (default none, at
    /// most 8).
    #[schema(value_type = Option<Vec<BudgetWindowSchema>>)]
    extra_budgets: (),
    /// The budget of each end user (default none).
    #[schema(value_type = Option<BudgetWindowSchema>)]
    user_budget: (),
    /// Refuse requests without an end-user id (default false).
    require_user: Option<bool>,
    /// Allowed models, exact names or `*` globs (default: all; at most 100).
    allowed_models: Option<Vec<String>>,
    /// The most one request may cost in the worst case (default: no cap).
    #[schema(value_type = Option<MoneySchema>)]
    max_request_cost: (),
    /// Cap the output of requests without an output limit instead of refusing them (default
    /// true).
    cap_output_tokens: Option<bool>,
    /// When the limiter stops working, RFC 3339 (default never).
    expires_at: Option<DateTime<Utc>>,
    /// An upstream credential (`/api/credentials`) to send instead of the client's key
    /// (default none: pass-through).
    credential_id: Option<Uuid>,
    /// Threshold alerts (default: the server's thresholds and webhook).
    #[schema(value_type = Option<AlertSettingsSchema>)]
    alerts: (),
}

/// The body of `PUT /api/limiters/{id}`: any subset of the create fields (read as
/// `budget_core::LimiterUpdate`); absent or `null` fields stay as they are, except
/// `unmetered_endpoints` (`null` returns to the server's setting) and `user_budget`,
/// `max_request_cost`, `expires_at` and `credential_id` (`null` removes them).
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct LimiterUpdate {
    /// New name, 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// New budget.
    #[schema(schema_with = budget_update_schema)]
    budget_limit: Option<()>,
    /// New period.
    #[schema(value_type = Option<PeriodSchema>)]
    period_type: (),
    /// New IANA time zone.
    timezone: Option<String>,
    /// New upstream URL, http or https.
    #[schema(format = "uri", pattern = "^[Hh][Tt][Tt][Pp][Ss]?://")]
    base_url: Option<String>,
    /// New provider.
    #[schema(value_type = Option<ProviderSchema>)]
    provider: (),
    /// New enforcement mode.
    #[schema(value_type = Option<ModeSchema>)]
    mode: (),
    /// New unpriced-model policy.
    #[schema(value_type = Option<UnpricedSchema>)]
    unpriced: (),
    /// New unmetered-endpoint policy; `null` returns to the server's setting.
    #[schema(value_type = Option<UnmeteredSchema>)]
    unmetered_endpoints: (),
    /// Activate or deactivate.
    is_active: Option<bool>,
    /// New extra windows (`[]` removes them).
    #[schema(value_type = Option<Vec<BudgetWindowSchema>>)]
    extra_budgets: (),
    /// New per-user budget; `null` removes it.
    #[schema(value_type = Option<BudgetWindowSchema>)]
    user_budget: (),
    /// Refuse requests without an end-user id.
    require_user: Option<bool>,
    /// New model rules (`[]` allows every model).
    allowed_models: Option<Vec<String>>,
    /// New per-request cap; `null` removes it.
    #[schema(value_type = Option<MoneySchema>)]
    max_request_cost: (),
    /// Cap output instead of refusing.
    cap_output_tokens: Option<bool>,
    /// New expiry; `null` removes it.
    expires_at: Option<DateTime<Utc>>,
    /// Attach an upstream credential; `null` detaches it (back to pass-through).
    credential_id: Option<Uuid>,
    /// New alert settings; `null` returns to the server's defaults.
    #[schema(value_type = Option<AlertSettingsSchema>)]
    alerts: (),
}

/// A usage record as stored (the fields of `budget_core::store::UsageRecord`).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UsageRecordFields {
    /// Its id.
    id: Uuid,
    /// When the request was admitted (the window it counts in).
    at: DateTime<Utc>,
    /// The limiter charged.
    limiter_id: Uuid,
    /// The model that served it, if known.
    model: Option<String>,
    /// The end user it was for (OpenAI `user` field or a header).
    user: Option<String>,
    /// Which API.
    #[schema(value_type = EndpointSchema)]
    endpoint: (),
    /// Input tokens.
    prompt_tokens: u64,
    /// Cached input tokens (inside `prompt_tokens`).
    cached_tokens: u64,
    /// Output tokens.
    completion_tokens: u64,
    /// Reasoning tokens (inside `completion_tokens`).
    reasoning_tokens: u64,
    /// What it cost.
    #[schema(value_type = MoneySchema)]
    cost: (),
    /// The model had no price: `cost` is not a real $0.
    unpriced: bool,
    /// Some counts were estimated (stream cut short, no usage block).
    estimated: bool,
    /// HTTP status returned to the client.
    status: u16,
    /// Whether the response was a stream.
    streamed: bool,
    /// Time from admission to the end of the response, in milliseconds.
    latency_ms: u64,
    /// The price table that priced it (a content hash); `null` for older records.
    price_version: Option<String>,
}
#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use budget_core::store::UsageRecord;
    use budget_core::usage::Usage;
    use budget_core::{Limiter, LimiterId, Money, NewLimiter};
    use serde_json::Value;

    use super::*;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().expect("an object").keys().cloned().collect()
    }

    fn properties<T: PartialSchema>() -> BTreeSet<String> {
        keys(&serde_json::to_value(T::schema()).unwrap()["properties"])
    }

    #[test]
    fn enum_values_are_what_serde_reads_and_writes() {
        assert_eq!(
            PeriodSchema::values(),
            ["minute", "hour", "day", "week", "month", "year"]
        );
        for (value, variant) in ProviderSchema::values().iter().zip(ProviderSchema::all()) {
            let read: Provider = serde_json::from_value(value.as_str().into()).unwrap();
            assert_eq!(read, variant);
        }
        assert_eq!(ModeSchema::values(), ["soft", "strict"]);
        assert_eq!(UnpricedSchema::values(), ["admit", "refuse"]);
        assert!(EndpointSchema::values().contains(&"chat_completions".to_owned()));
    }

    #[test]
    fn money_is_a_json_number_of_dollars() {
        let schema = serde_json::to_value(MoneySchema::schema()).unwrap();
        assert_eq!(schema["type"], "number");
        assert_eq!(
            serde_json::to_value(Money::from_cents(2050)).unwrap(),
            serde_json::json!(20.5)
        );
    }

    /// Each mirror lists exactly the fields serde writes for its core type (every field of
    /// these types is always written, `None` as `null`).
    #[test]
    fn mirrors_list_the_core_types_fields() {
        let new = NewLimiter::new(
            "A",
            Money::from_dollars(1),
            Period::Day,
            "https://api.openai.com",
        );
        assert_eq!(
            keys(&serde_json::to_value(&new).unwrap()),
            properties::<LimiterCreate>()
        );
        let limiter = Limiter::create(new, Utc::now()).unwrap();
        assert_eq!(
            keys(&serde_json::to_value(&limiter).unwrap()),
            properties::<LimiterRecord>()
        );
        assert_eq!(
            keys(&serde_json::to_value(budget_core::LimiterUpdate::default()).unwrap()),
            properties::<LimiterUpdate>()
        );
        let record = UsageRecord::new(
            LimiterId::new(),
            Utc::now(),
            Endpoint::ChatCompletions,
            &Usage::default(),
            None,
        );
        assert_eq!(
            keys(&serde_json::to_value(&record).unwrap()),
            properties::<UsageRecordFields>()
        );
    }
}

//! Turning domain values into SQL columns and back: money as nano-dollars, times as unix
//! microseconds, ids as text.

use budget_core::limiter::stored::{StoredLimiter, StoredPolicy};
use budget_core::store::UsageRecord;
use budget_core::usage::Endpoint;
use budget_core::{EnforcementMode, Limiter, LimiterId, Money, Period, Provider, UnpricedPolicy};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::SqliteStoreError;

/// Unix microseconds (UTC).
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// `t` with sub-microsecond precision dropped, as it reads back from the database.
pub(crate) fn truncate_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros(t)).unwrap_or(t)
}

pub(crate) fn from_micros(table: &'static str, us: i64) -> Result<DateTime<Utc>, SqliteStoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| SqliteStoreError::corrupt(table, format!("time {us} out of range")))
}

/// Token counts are `u64` in the domain and `INTEGER` (i64) on disk.
pub(crate) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn uncount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn provider_str(p: Provider) -> &'static str {
    match p {
        Provider::Openai => "openai",
        Provider::Azure => "azure",
    }
}

fn mode_str(m: EnforcementMode) -> &'static str {
    match m {
        EnforcementMode::Soft => "soft",
        EnforcementMode::Strict => "strict",
    }
}

fn unpriced_str(u: UnpricedPolicy) -> &'static str {
    match u {
        UnpricedPolicy::Admit => "admit",
        UnpricedPolicy::Refuse => "refuse",
    }
}

/// The text of a serde unit variant (`"chat_completions"`).
fn variant_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn parse_variant<T: serde::de::DeserializeOwned>(
    table: &'static str,
    s: &str,
) -> Result<T, SqliteStoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|e| SqliteStoreError::corrupt(table, format!("{s:?}: {e}")))
}

/// The endpoint's API name (`"chat_completions"`), without going through serde on the
/// writer's path for the known ones.
pub(crate) fn endpoint_str(e: Endpoint) -> std::borrow::Cow<'static, str> {
    e.as_str().into()
}

/// The columns of `limiters`, in the order [`bind_limiter`] binds them.
pub(crate) const LIMITER_COLUMNS: &str =
    "id, name, code, budget_limit, period_type, timezone, base_url, provider, \
     mode, unpriced, is_active, created_at, updated_at, deleted_at, unmetered_endpoints, policy";

/// `?` placeholders for [`LIMITER_COLUMNS`].
pub(crate) const LIMITER_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

/// Bind every column of `l` (see [`LIMITER_COLUMNS`]).
pub(crate) fn bind_limiter<'q>(
    q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    l: &Limiter,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    q.bind(l.id.to_string())
        .bind(l.name.clone())
        .bind(l.code.as_str().to_owned())
        .bind(l.budget_limit.as_nanos())
        .bind(l.period_type.as_str())
        .bind(l.timezone.name())
        .bind(l.base_url.to_string())
        .bind(provider_str(l.provider))
        .bind(mode_str(l.mode))
        .bind(unpriced_str(l.unpriced))
        .bind(l.is_active)
        .bind(micros(l.created_at))
        .bind(micros(l.updated_at))
        .bind(l.deleted_at.map(micros))
        .bind(l.unmetered_endpoints.map(|u| variant_str(&u)))
        .bind(StoredPolicy::json_of(l))
}

pub(crate) fn limiter_from_row(row: &SqliteRow) -> Result<Limiter, SqliteStoreError> {
    const T: &str = "limiters";
    let text = |c: &str| row.try_get::<String, _>(c);
    let id: String = text("id")?;
    let period: String = text("period_type")?;
    let policy: String = text("policy")?;
    // The columns as budget-core's stored form, which turns them into a limiter.
    let stored = StoredLimiter {
        id: id
            .parse::<LimiterId>()
            .map_err(|e| SqliteStoreError::corrupt(T, format!("id {id:?}: {e}")))?,
        name: text("name")?,
        code: text("code")?,
        budget_nanos: row.try_get("budget_limit")?,
        period: period
            .parse::<Period>()
            .map_err(|e| SqliteStoreError::corrupt(T, e.to_string()))?,
        timezone: text("timezone")?,
        base_url: text("base_url")?,
        provider: parse_variant(T, &text("provider")?)?,
        mode: parse_variant(T, &text("mode")?)?,
        unpriced: parse_variant(T, &text("unpriced")?)?,
        unmetered_endpoints: row
            .try_get::<Option<String>, _>("unmetered_endpoints")?
            .map(|u| parse_variant(T, &u))
            .transpose()?,
        is_active: row.try_get("is_active")?,
        created_at_us: row.try_get("created_at")?,
        updated_at_us: row.try_get("updated_at")?,
        deleted_at_us: row.try_get("deleted_at")?,
        policy: serde_json::from_str(&policy)
            .map_err(|e| SqliteStoreError::corrupt(T, format!("policy {policy:?}: {e}")))?,
    };
    stored
        .limiter()
        .map_err(|e| SqliteStoreError::corrupt(T, e))
}

/// The columns of `usage_events` (bar `seq`), in the order the writer binds them.
pub(crate) const EVENT_COLUMNS: &str =
    "id, at, limiter_id, model, user, endpoint, prompt_tokens, cached_tokens, \
     completion_tokens, reasoning_tokens, cost, unpriced, estimated, status, streamed, latency_ms, \
     price_version";

pub(crate) fn record_from_row(row: &SqliteRow) -> Result<UsageRecord, SqliteStoreError> {
    const T: &str = "usage_events";
    let id: String = row.try_get("id")?;
    let limiter: String = row.try_get("limiter_id")?;
    let tokens = |c: &str| row.try_get::<i64, _>(c).map(uncount);
    Ok(UsageRecord {
        id: id
            .parse()
            .map_err(|e| SqliteStoreError::corrupt(T, format!("id {id:?}: {e}")))?,
        at: from_micros(T, row.try_get("at")?)?,
        limiter_id: limiter
            .parse()
            .map_err(|e| SqliteStoreError::corrupt(T, format!("limiter_id {limiter:?}: {e}")))?,
        model: row.try_get("model")?,
        user: row.try_get("user")?,
        endpoint: parse_variant(T, &row.try_get::<String, _>("endpoint")?)?,
        prompt_tokens: tokens("prompt_tokens")?,
        cached_tokens: tokens("cached_tokens")?,
        completion_tokens: tokens("completion_tokens")?,
        reasoning_tokens: tokens("reasoning_tokens")?,
        cost: Money::from_nanos(row.try_get("cost")?),
        unpriced: row.try_get("unpriced")?,
        estimated: row.try_get("estimated")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        streamed: row.try_get("streamed")?,
        latency_ms: tokens("latency_ms")?,
        price_version: row.try_get("price_version")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_round_trip() {
        for e in [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
            Endpoint::Images,
            Endpoint::AudioTranscription,
            Endpoint::AudioSpeech,
            Endpoint::Moderations,
            Endpoint::Other,
        ] {
            assert_eq!(endpoint_str(e), variant_str(&e), "{e:?}");
        }
        let e: Endpoint = parse_variant("t", "embeddings").unwrap();
        assert_eq!(e, Endpoint::Embeddings);
        for p in [Provider::Openai, Provider::Azure] {
            assert_eq!(parse_variant::<Provider>("t", provider_str(p)).unwrap(), p);
        }
        for m in [EnforcementMode::Soft, EnforcementMode::Strict] {
            assert_eq!(
                parse_variant::<EnforcementMode>("t", mode_str(m)).unwrap(),
                m
            );
        }
        for u in [UnpricedPolicy::Admit, UnpricedPolicy::Refuse] {
            assert_eq!(
                parse_variant::<UnpricedPolicy>("t", unpriced_str(u)).unwrap(),
                u
            );
        }
    }
}

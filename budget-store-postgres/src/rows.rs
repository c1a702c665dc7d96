//! Limiters as JSONB documents, usage records as rows and as the JSON `budget_apply` takes.

use budget_core::limiter::stored::StoredLimiter;
use budget_core::store::UsageRecord;
use budget_core::usage::Endpoint;
use budget_core::{Limiter, Money};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use crate::PostgresStoreError;

/// The limiter in a `limiters` row (`doc`).
pub(crate) fn limiter_from_doc(doc: serde_json::Value) -> Result<Limiter, PostgresStoreError> {
    let stored: StoredLimiter = serde_json::from_value(doc)
        .map_err(|e| PostgresStoreError::corrupt("limiters", e.to_string()))?;
    stored
        .limiter()
        .map_err(|e| PostgresStoreError::corrupt("limiters", e))
}

/// The `doc` of `l`.
pub(crate) fn doc_of(l: &Limiter) -> serde_json::Value {
    serde_json::to_value(StoredLimiter::of(l)).unwrap_or_default()
}

/// The columns of `usage_events` read back.
pub(crate) const EVENT_COLUMNS: &str =
    "id, at, limiter_id, model, \"user\", endpoint, prompt_tokens, cached_tokens, \
     completion_tokens, reasoning_tokens, cost, unpriced, estimated, status, streamed, latency_ms, \
     price_version";

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn uncount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// One record as `budget_apply` reads it, with the leases its reservation held.
#[derive(Debug, Serialize)]
pub(crate) struct EventJson<'a> {
    id: Uuid,
    at: DateTime<Utc>,
    limiter_id: Uuid,
    model: Option<&'a str>,
    user: Option<&'a str>,
    endpoint: Endpoint,
    prompt_tokens: i64,
    cached_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    cost: i64,
    unpriced: bool,
    estimated: bool,
    status: i32,
    streamed: bool,
    latency_ms: i64,
    price_version: Option<&'a str>,
    leases: &'a [i64],
}

impl<'a> EventJson<'a> {
    pub(crate) fn new(r: &'a UsageRecord, leases: &'a [i64]) -> Self {
        EventJson {
            id: r.id,
            at: r.at,
            limiter_id: r.limiter_id.0,
            model: r.model.as_deref(),
            user: r.user.as_deref(),
            endpoint: r.endpoint,
            prompt_tokens: count(r.prompt_tokens),
            cached_tokens: count(r.cached_tokens),
            completion_tokens: count(r.completion_tokens),
            reasoning_tokens: count(r.reasoning_tokens),
            cost: r.cost.as_nanos(),
            unpriced: r.unpriced,
            estimated: r.estimated,
            status: i32::from(r.status),
            streamed: r.streamed,
            latency_ms: count(r.latency_ms),
            price_version: r.price_version.as_deref(),
            leases,
        }
    }
}

pub(crate) fn record_from_row(row: &PgRow) -> Result<UsageRecord, PostgresStoreError> {
    const T: &str = "usage_events";
    let endpoint: String = row.try_get("endpoint")?;
    let tokens = |c: &str| row.try_get::<i64, _>(c).map(uncount);
    Ok(UsageRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        limiter_id: budget_core::LimiterId(row.try_get("limiter_id")?),
        model: row.try_get("model")?,
        user: row.try_get("user")?,
        endpoint: serde_json::from_value(serde_json::Value::String(endpoint.clone()))
            .map_err(|e| PostgresStoreError::corrupt(T, format!("endpoint {endpoint:?}: {e}")))?,
        prompt_tokens: tokens("prompt_tokens")?,
        cached_tokens: tokens("cached_tokens")?,
        completion_tokens: tokens("completion_tokens")?,
        reasoning_tokens: tokens("reasoning_tokens")?,
        cost: Money::from_nanos(row.try_get("cost")?),
        unpriced: row.try_get("unpriced")?,
        estimated: row.try_get("estimated")?,
        status: u16::try_from(row.try_get::<i32, _>("status")?).unwrap_or(0),
        streamed: row.try_get("streamed")?,
        latency_ms: tokens("latency_ms")?,
        price_version: row.try_get("price_version")?,
    })
}

//! Time series, breakdowns by model, user or limiter, and recent usage.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use budget_core::store::{GroupBy, UsageRecord};
use budget_core::{LimiterId, Money};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::limiters_by_id;
use super::params::{BreakdownBy, Bucket, Params, RangeParams, StatsParams};
use crate::admin::auth::AdminUser;
use crate::admin::error::{ApiError, ErrorBody};
use crate::admin::schemas::{MoneySchema, UsageRecordFields};
use crate::state::AppState;

/// One time-series point.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TimeseriesPoint)]
pub struct SeriesPoint {
    /// Bucket start.
    pub start: DateTime<Utc>,
    /// Requests.
    pub requests: u64,
    /// Tokens.
    pub total_tokens: u64,
    /// Cost.
    #[schema(value_type = MoneySchema)]
    pub cost: Money,
}

/// `GET /stats/timeseries?bucket=minute|hour|day`: UTC-aligned buckets, oldest first, empty
/// ones left out.
#[utoipa::path(
    get,
    path = "/api/stats/timeseries",
    operation_id = "timeseries",
    tag = "stats",
    params(
        RangeParams,
        ("bucket" = Option<Bucket>, Query, description = "Bucket width (default hour)"),
    ),
    responses(
        (status = 200, description = "Points, oldest first; empty buckets left out", body = Vec<SeriesPoint>),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn timeseries(
    _admin: AdminUser,
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Vec<SeriesPoint>>, ApiError> {
    let p = StatsParams::from_request(params)?;
    let (query, bucket) = (p.usage_query()?, p.bucket()?);
    let series = state.store.usage_series(&query, bucket).await?;
    Ok(Json(
        series
            .into_iter()
            .map(|b| SeriesPoint {
                start: b.start,
                requests: b.totals.requests,
                total_tokens: b.totals.total_tokens,
                cost: b.totals.cost,
            })
            .collect(),
    ))
}

/// One breakdown row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// Model, user or limiter id; `null` for records without a model or user.
    pub key: Option<String>,
    /// What to show: the model, the user, the limiter's name; `(none)` for a null key.
    pub label: String,
    /// Requests.
    pub requests: u64,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Input + output tokens.
    pub total_tokens: u64,
    /// Cost.
    #[schema(value_type = MoneySchema)]
    pub cost: Money,
    /// Requests for unpriced models.
    pub unpriced_requests: u64,
}

/// `GET /stats/breakdown?by=model|user|limiter&limit=50`: most expensive first.
#[utoipa::path(
    get,
    path = "/api/stats/breakdown",
    operation_id = "breakdown",
    tag = "stats",
    params(
        RangeParams,
        ("by" = Option<BreakdownBy>, Query, description = "Group by (default model)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows (default 50)"),
    ),
    responses(
        (status = 200, description = "Rows, most expensive first", body = Vec<BreakdownRow>),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn breakdown(
    _admin: AdminUser,
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Vec<BreakdownRow>>, ApiError> {
    let p = StatsParams::from_request(params)?;
    let (query, by, limit) = (p.usage_query()?, p.group_by()?, p.limit()?);
    let groups = state.store.usage_breakdown(&query, by, limit).await?;
    let names = if by == GroupBy::Limiter {
        limiters_by_id(&state).await?
    } else {
        HashMap::new()
    };
    let label = |key: &Option<String>| -> String {
        match (key, by) {
            (None, _) => "(none)".into(),
            (Some(k), GroupBy::Limiter) => k
                .parse::<LimiterId>()
                .ok()
                .and_then(|id| names.get(&id))
                .map_or_else(|| "(purged)".to_owned(), |l| l.name.clone()),
            (Some(k), _) => k.clone(),
        }
    };
    Ok(Json(
        groups
            .into_iter()
            .map(|g| BreakdownRow {
                label: label(&g.key),
                key: g.key,
                requests: g.totals.requests,
                prompt_tokens: g.totals.prompt_tokens,
                completion_tokens: g.totals.completion_tokens,
                total_tokens: g.totals.total_tokens,
                cost: g.totals.cost,
                unpriced_requests: g.totals.unpriced_requests,
            })
            .collect(),
    ))
}

/// A usage record with its limiter's name and its token total.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = UsageRecord)]
pub struct RecentUsage {
    /// The record.
    #[serde(flatten)]
    #[schema(value_type = UsageRecordFields)]
    pub record: UsageRecord,
    /// Input + output tokens.
    pub total_tokens: u64,
    /// The limiter's name (`(purged)` when it no longer exists).
    pub limiter_name: String,
}

/// `GET /usage/recent?limit=50`: the latest records, newest first.
#[utoipa::path(
    get,
    path = "/api/usage/recent",
    operation_id = "recentUsage",
    tag = "stats",
    params(
        RangeParams,
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "Rows (default 50)"),
    ),
    responses(
        (status = 200, description = "Records, newest first", body = Vec<RecentUsage>),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn recent(
    _admin: AdminUser,
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Vec<RecentUsage>>, ApiError> {
    let p = StatsParams::from_request(params)?;
    let (query, limit) = (p.usage_query()?, p.limit()?);
    let records = state.store.recent_usage(&query, limit).await?;
    let names = limiters_by_id(&state).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|r| RecentUsage {
                total_tokens: r.total_tokens(),
                limiter_name: names
                    .get(&r.limiter_id)
                    .map_or_else(|| "(purged)".to_owned(), |l| l.name.clone()),
                record: r,
            })
            .collect(),
    ))
}

//! `GET /stats`: totals over the range and one row per limiter.

use std::collections::HashMap;

use axum::extract::State;
use axum::Json;
use budget_core::store::{GroupBy, UsageTotals};
use budget_core::{LimiterId, Money};
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;

use super::limiters_by_id;
use super::params::{Params, RangeParams, StatsParams};
use crate::admin::auth::AdminUser;
use crate::admin::error::{ApiError, ErrorBody};
use crate::admin::limiters::{budget_use, window_of};
use crate::admin::schemas::MoneySchema;
use crate::state::AppState;

/// One row of the overview's per-limiter table.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimiterUsageRow {
    /// The limiter.
    #[schema(value_type = uuid::Uuid)]
    pub limiter_id: LimiterId,
    /// Its name (`(purged)` when it no longer exists).
    pub limiter_name: String,
    /// Whether it admits requests.
    pub is_active: bool,
    /// Whether it was deleted (its usage still counts).
    pub is_deleted: bool,
    /// Requests in the range.
    pub requests: u64,
    /// Tokens in the range.
    pub total_tokens: u64,
    /// Cost in the range.
    #[schema(value_type = MoneySchema)]
    pub cost: Money,
    /// Settled spend in its current window.
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// Its budget per period.
    #[schema(value_type = MoneySchema)]
    pub budget_limit: Money,
    /// Its current window's use, percent with two decimals.
    pub usage_percentage: f64,
    /// Requests the proxy refused in the range (whole minutes), by reason.
    pub refused: crate::admin::limiters::RefusalCounts,
}

/// `GET /stats` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Overview {
    /// Requests in the range.
    pub total_requests: u64,
    /// Tokens in the range.
    pub total_tokens: u64,
    /// Cost in the range.
    #[schema(value_type = MoneySchema)]
    pub total_cost: Money,
    /// Distinct end users in the range.
    pub active_users: u64,
    /// Requests for unpriced models.
    pub unpriced_requests: u64,
    /// Requests with estimated counts.
    pub estimated_requests: u64,
    /// Requests answered with status ≥ 400.
    pub error_requests: u64,
    /// Per limiter, most expensive first: every live limiter, and deleted ones with usage.
    pub limiters: Vec<LimiterUsageRow>,
}

/// `GET /stats`: totals over the range and one row per limiter.
#[utoipa::path(
    get,
    path = "/api/stats",
    operation_id = "stats",
    tag = "stats",
    params(RangeParams),
    responses(
        (status = 200, description = "Totals and one row per limiter, most expensive first", body = Overview),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn overview(
    _admin: AdminUser,
    State(state): State<AppState>,
    params: Params,
) -> Result<Json<Overview>, ApiError> {
    let p = StatsParams::from_request(params)?;
    let query = p.usage_query()?;
    let totals = state.store.usage_totals(&query).await?;
    let groups = state
        .store
        .usage_breakdown(&query, GroupBy::Limiter, 1_000_000)
        .await?;
    let mut by_limiter: HashMap<LimiterId, UsageTotals> = groups
        .into_iter()
        .filter_map(|g| Some((g.key?.parse::<LimiterId>().ok()?, g.totals)))
        .collect();
    let known = limiters_by_id(&state).await?;
    let mut refused = crate::admin::limiters::refusals_of(&state, &query).await?;
    let now = Utc::now();
    let mut rows = Vec::new();
    let mut ids: Vec<LimiterId> = known
        .values()
        .filter(|l| l.deleted_at.is_none() || by_limiter.contains_key(&l.id))
        .map(|l| l.id)
        .chain(by_limiter.keys().copied())
        .filter(|id| query.limiter_id.is_none_or(|q| q == *id))
        .collect();
    ids.sort();
    ids.dedup();
    for id in ids {
        let t = by_limiter.remove(&id).unwrap_or_default();
        let row = match known.get(&id) {
            Some(l) => {
                let w = window_of(&state, l, now).await?;
                let (_, usage_percentage) = budget_use(l.budget_limit, &w);
                LimiterUsageRow {
                    limiter_id: id,
                    limiter_name: l.name.clone(),
                    is_active: l.is_active && l.deleted_at.is_none(),
                    is_deleted: l.deleted_at.is_some(),
                    requests: t.requests,
                    total_tokens: t.total_tokens,
                    cost: t.cost,
                    current_spend: w.spent,
                    budget_limit: l.budget_limit,
                    usage_percentage,
                    refused: refused.remove(&id).unwrap_or_default(),
                }
            }
            None => LimiterUsageRow {
                limiter_id: id,
                limiter_name: "(purged)".into(),
                is_active: false,
                is_deleted: true,
                requests: t.requests,
                total_tokens: t.total_tokens,
                cost: t.cost,
                current_spend: Money::ZERO,
                budget_limit: Money::ZERO,
                usage_percentage: 0.0,
                refused: refused.remove(&id).unwrap_or_default(),
            },
        };
        rows.push(row);
    }
    rows.sort_by(|a, b| {
        b.cost
            .cmp(&a.cost)
            .then_with(|| a.limiter_name.cmp(&b.limiter_name))
    });
    Ok(Json(Overview {
        total_requests: totals.requests,
        total_tokens: totals.total_tokens,
        total_cost: totals.cost,
        active_users: totals.distinct_users,
        unpriced_requests: totals.unpriced_requests,
        estimated_requests: totals.estimated_requests,
        error_requests: totals.error_requests,
        limiters: rows,
    }))
}

//! Statistics for the dashboard: overview with per-limiter rows, time series, breakdowns by
//! model, user or limiter, recent usage, and the price table in force.
//!
//! Query parameters are read as text and checked here, so a bad one is a `400` naming it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Json;
use budget_core::pricing::{ModelPrice, TierPrice};
use budget_core::store::{BucketSize, GroupBy, UsageQuery, UsageRecord, UsageTotals};
use budget_core::{Limiter, LimiterId, Money, Provider, Rate};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminUser;
use super::error::{ApiError, ErrorBody};
use super::limiters::{budget_use, window_of};
use super::schemas::{MoneySchema, ProviderSchema, UsageRecordFields};
use crate::state::AppState;

/// Most rows a breakdown or recent-usage answer may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Rows when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// The query parameters of the statistics endpoints, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatsParams {
    /// RFC 3339; records at or after.
    pub from: Option<String>,
    /// RFC 3339; records before.
    pub to: Option<String>,
    /// Only this limiter.
    pub limiter_id: Option<String>,
    /// `minute | hour | day` (time series).
    pub bucket: Option<String>,
    /// `model | user | limiter` (breakdown).
    pub by: Option<String>,
    /// Rows, 1 to [`MAX_LIMIT`].
    pub limit: Option<String>,
}

type Params = Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>;

/// The range parameters every statistics endpoint takes, as documented (they are read as
/// [`StatsParams`] and checked there).
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RangeParams {
    /// Records at or after this time (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Records before this time (RFC 3339); not before `from`.
    to: Option<DateTime<Utc>>,
    /// Only this limiter's records.
    limiter_id: Option<uuid::Uuid>,
}

/// `bucket` of `GET /stats/timeseries`.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Bucket {
    /// One-minute buckets.
    Minute,
    /// One-hour buckets (the default).
    Hour,
    /// One-day buckets (UTC days).
    Day,
}

/// `by` of `GET /stats/breakdown`.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum BreakdownBy {
    /// Per model (the default).
    Model,
    /// Per end user.
    User,
    /// Per limiter.
    Limiter,
}

impl StatsParams {
    fn from_request(params: Params) -> Result<StatsParams, ApiError> {
        params
            .map(|Query(p)| p)
            .map_err(|e| ApiError::bad_param("query", e.body_text()))
    }

    /// The records asked for: `[from, to)` and maybe one limiter.
    pub fn usage_query(&self) -> Result<UsageQuery, ApiError> {
        let time = |field: &str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    DateTime::parse_from_rfc3339(s)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|e| {
                            ApiError::bad_param(
                                field,
                                format!("`{s}` is not an RFC 3339 time ({e})"),
                            )
                        })
                })
                .transpose()
        };
        let from = time("from", &self.from)?;
        let to = time("to", &self.to)?;
        if let (Some(f), Some(t)) = (from, to) {
            if t < f {
                return Err(ApiError::bad_param("to", "must not be before `from`"));
            }
        }
        let limiter_id = self
            .limiter_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<LimiterId>().map_err(|_| {
                    ApiError::bad_param("limiter_id", format!("`{s}` is not a limiter id"))
                })
            })
            .transpose()?;
        Ok(UsageQuery {
            limiter_id,
            from,
            to,
        })
    }

    /// `limit`, default [`DEFAULT_LIMIT`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(DEFAULT_LIMIT),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_param(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            },
        }
    }

    /// `bucket`, default `hour`.
    pub fn bucket(&self) -> Result<BucketSize, ApiError> {
        match self.bucket.as_deref().unwrap_or("hour") {
            "minute" => Ok(BucketSize::Minute),
            "hour" | "" => Ok(BucketSize::Hour),
            "day" => Ok(BucketSize::Day),
            other => Err(ApiError::bad_param(
                "bucket",
                format!("`{other}` is not one of minute, hour, day"),
            )),
        }
    }

    /// `by`, default `model`.
    pub fn group_by(&self) -> Result<GroupBy, ApiError> {
        match self.by.as_deref().unwrap_or("model") {
            "model" | "" => Ok(GroupBy::Model),
            "user" => Ok(GroupBy::User),
            "limiter" => Ok(GroupBy::Limiter),
            other => Err(ApiError::bad_param(
                "by",
                format!("`{other}` is not one of model, user, limiter"),
            )),
        }
    }
}

/// Every limiter the store knows, deleted ones included, by id.
async fn limiters_by_id(state: &AppState) -> Result<HashMap<LimiterId, Limiter>, ApiError> {
    Ok(state
        .store
        .list_limiters(true)
        .await?
        .into_iter()
        .map(|l| (l.id, l))
        .collect())
}

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

/// Dollars per 1M units, as a JSON number.
fn per_million(rate: Option<Rate>) -> Option<f64> {
    rate.and_then(|r| r.per_million_string().parse::<f64>().ok())
}

/// Dollars per unit, as a JSON number.
fn per_unit(rate: Option<Rate>) -> Option<f64> {
    rate.map(Rate::to_f64_lossy)
}

/// The price table in force (`GET /pricing`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pricing {
    /// Where the table came from (a file or URL), if known.
    pub source: Option<String>,
    /// One entry per model.
    pub models: Vec<PriceView>,
}

/// One model of the price table: token prices in US dollars per 1M tokens, other prices in
/// dollars per unit (second, character, image); absent prices are left out, except the three
/// token prices, which are `null` when absent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ModelPrice)]
pub struct PriceView {
    /// The model name.
    pub name: String,
    /// The provider that lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ProviderSchema>)]
    pub provider: Option<Provider>,
    /// The source's mode (`chat`, `embedding`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Uncached input tokens, per 1M.
    #[schema(required = true)]
    pub input: Option<f64>,
    /// Cached input tokens, per 1M.
    #[schema(required = true)]
    pub cached_input: Option<f64>,
    /// Output tokens, per 1M.
    #[schema(required = true)]
    pub output: Option<f64>,
    /// Cache writes, per 1M tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// Reasoning tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
    /// Audio input tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_input: Option<f64>,
    /// Audio output tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_output: Option<f64>,
    /// Image input tokens, per 1M.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_input: Option<f64>,
    /// Per second of input audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_per_second: Option<f64>,
    /// Per second of output audio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_per_second: Option<f64>,
    /// Per input character.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_per_character: Option<f64>,
    /// Per image produced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_image: Option<f64>,
    /// Batch API prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<TierView>,
    /// `service_tier: "priority"` prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<TierView>,
    /// `service_tier: "flex"` prices.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flex: Option<TierView>,
    /// Known but without a price: its usage is recorded as unpriced.
    pub unpriced: bool,
    /// Context window, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_input_tokens: Option<u64>,
    /// Largest completion, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// When the provider retires the model (`YYYY-MM-DD`), if announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_date: Option<String>,
}

/// Token prices of a service tier, US dollars per 1M tokens (`null` when absent).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = TierPrice)]
pub struct TierView {
    /// Uncached input tokens.
    #[schema(required = true)]
    pub input: Option<f64>,
    /// Cached input tokens.
    #[schema(required = true)]
    pub cached_input: Option<f64>,
    /// Output tokens.
    #[schema(required = true)]
    pub output: Option<f64>,
}

fn tier(t: &Option<TierPrice>) -> Option<TierView> {
    t.as_ref().map(|t| TierView {
        input: per_million(t.input),
        cached_input: per_million(t.cached_input),
        output: per_million(t.output),
    })
}

impl PriceView {
    fn new(name: &str, p: &ModelPrice) -> Self {
        PriceView {
            name: name.to_owned(),
            provider: p.provider,
            mode: p.mode.clone(),
            input: per_million(p.input),
            cached_input: per_million(p.cached_input),
            output: per_million(p.output),
            cache_write: per_million(p.cache_write),
            reasoning: per_million(p.reasoning),
            audio_input: per_million(p.audio_input),
            audio_output: per_million(p.audio_output),
            image_input: per_million(p.image_input),
            input_per_second: per_unit(p.input_per_second),
            output_per_second: per_unit(p.output_per_second),
            input_per_character: per_unit(p.input_per_character),
            per_image: per_unit(p.per_image),
            batch: tier(&p.batch),
            priority: tier(&p.priority),
            flex: tier(&p.flex),
            unpriced: p.unpriced,
            max_input_tokens: p.max_input_tokens,
            max_output_tokens: p.max_output_tokens,
            deprecation_date: p.deprecation_date.clone(),
        }
    }
}

/// `GET /pricing`: the price table in force.
#[utoipa::path(
    get,
    path = "/api/pricing",
    operation_id = "pricing",
    tag = "stats",
    responses((status = 200, description = "The price table in force", body = Pricing))
)]
pub async fn pricing(_admin: AdminUser, State(state): State<AppState>) -> Json<Pricing> {
    Json(Pricing {
        source: state.prices.source().map(str::to_owned),
        models: state
            .prices
            .iter()
            .map(|(name, p)| PriceView::new(name, p))
            .collect(),
    })
}

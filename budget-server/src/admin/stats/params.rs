//! The query parameters of the statistics endpoints: read as text and checked here, so a bad
//! one is a `400` naming it.

use axum::extract::Query;
use budget_core::store::{BucketSize, GroupBy, UsageQuery};
use budget_core::LimiterId;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::admin::error::ApiError;

/// Most rows a breakdown or recent-usage answer may ask for.
pub const MAX_LIMIT: usize = 1000;
/// Rows when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 50;

/// A `limit` query parameter: 1 to [`MAX_LIMIT`], `default` when absent or empty; a `400`
/// naming it otherwise.
pub fn parse_limit(raw: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_param(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

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

pub(super) type Params = Result<Query<StatsParams>, axum::extract::rejection::QueryRejection>;

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
    pub(super) fn from_request(params: Params) -> Result<StatsParams, ApiError> {
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
        parse_limit(self.limit.as_deref(), DEFAULT_LIMIT)
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

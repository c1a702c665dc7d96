//! Statistics for the dashboard: overview with per-limiter rows, time series, breakdowns by
//! model, user or limiter, recent usage, and the price table in force.
//!
//! - `params`: the query parameters, read as text and checked, so a bad one is a `400`
//!   naming it;
//! - `overview`: totals and the per-limiter table (`GET /stats`);
//! - `usage`: time series, breakdowns and recent usage;
//! - `pricing`: the price table in force (`GET /pricing`);
//! - `export`: usage records as CSV or JSON Lines, streamed (`GET /usage/export`).

use std::collections::HashMap;

use budget_core::{Limiter, LimiterId};

use super::error::ApiError;
use crate::state::AppState;

mod export;
mod overview;
mod params;
mod pricing;
mod usage;

pub use export::{
    __path_export, export, ExportFormat, ExportParams, COLUMNS as EXPORT_COLUMNS,
    PAGE as EXPORT_PAGE,
};
pub use overview::{__path_overview, overview, LimiterUsageRow, Overview};
pub use params::{
    parse_limit, BreakdownBy, Bucket, RangeParams, StatsParams, DEFAULT_LIMIT, MAX_LIMIT,
};
pub use pricing::{__path_pricing, pricing, PriceView, Pricing, TierView};
pub use usage::{
    __path_breakdown, __path_recent, __path_timeseries, breakdown, recent, timeseries,
    BreakdownRow, RecentUsage, SeriesPoint,
};

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

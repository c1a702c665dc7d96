//! Statistics from roll-ups: a query range is cut into month-, day- and hour-aligned pieces
//! read from `usage_monthly`, `usage_daily` and `usage_hourly`, plus unaligned edges read from
//! the raw `usage_events`. Only those edges (less than an hour each) touch raw events.
//!
//! - [`plan`]: cutting a range into pieces by roll-up level;
//! - [`sql`]: the `SELECT`s over those pieces and the columns they sum;
//! - [`queries`]: totals, breakdowns, time series and recent records;
//! - [`counter`]: the cost counted in one budget counter.

mod counter;
mod plan;
mod queries;
mod sql;

pub(crate) use counter::counter_cost;
pub(crate) use plan::Level;
pub(crate) use queries::{breakdown, page, recent, series, totals};

//! Range planning: a query range cut into month-, day- and hour-aligned pieces, read from the
//! roll-up of their level (migration `0002_rollups.sql`), and unaligned edges read from the
//! raw events. Times are microseconds since the epoch, as PostgreSQL keeps them.
//!
//! The same planner as the SQLite store's (`budget-store-sqlite/src/stats/plan.rs`).

use budget_core::store::UsageQuery;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

pub(super) const HOUR_US: i64 = 3_600_000_000;
pub(super) const DAY_US: i64 = 24 * HOUR_US;

/// A roll-up granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Month,
    Day,
    Hour,
}

impl Level {
    pub(super) const ALL: [Level; 3] = [Level::Month, Level::Day, Level::Hour];

    /// The per limiter × model × user roll-up.
    pub(super) fn table(self) -> &'static str {
        match self {
            Level::Month => "usage_monthly",
            Level::Day => "usage_daily",
            Level::Hour => "usage_hourly",
        }
    }

    /// The global roll-up: one row per bucket, with its distinct users.
    pub(super) fn global_table(self) -> &'static str {
        match self {
            Level::Month => "usage_global_monthly",
            Level::Day => "usage_global_daily",
            Level::Hour => "usage_global_hourly",
        }
    }

    /// The (bucket, user) set.
    pub(super) fn users_table(self) -> &'static str {
        match self {
            Level::Month => "usage_users_monthly",
            Level::Day => "usage_users_daily",
            Level::Hour => "usage_users_hourly",
        }
    }

    pub(super) fn column(self) -> &'static str {
        match self {
            Level::Month => "month_start",
            Level::Day => "day_start",
            Level::Hour => "hour_start",
        }
    }

    /// The start of the bucket containing `us`; `None` when out of chrono's range.
    fn floor(self, us: i64) -> Option<i64> {
        match self {
            Level::Hour => Some(us.div_euclid(HOUR_US) * HOUR_US),
            Level::Day => Some(us.div_euclid(DAY_US) * DAY_US),
            Level::Month => {
                let d = DateTime::from_timestamp_micros(us)?.date_naive();
                month_start(d.year(), d.month())
            }
        }
    }

    /// The first bucket start at or after `us`.
    fn ceil(self, us: i64) -> Option<i64> {
        let f = self.floor(us)?;
        if f == us {
            return Some(us);
        }
        match self {
            Level::Hour => f.checked_add(HOUR_US),
            Level::Day => f.checked_add(DAY_US),
            Level::Month => {
                let d = DateTime::from_timestamp_micros(f)?.date_naive();
                let (y, m) = if d.month() == 12 {
                    (d.year() + 1, 1)
                } else {
                    (d.year(), d.month() + 1)
                };
                month_start(y, m)
            }
        }
    }
}

fn month_start(y: i32, m: u32) -> Option<i64> {
    let d = NaiveDate::from_ymd_opt(y, m, 1)?;
    Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros())
}

/// Where one piece of a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    Rollup(Level),
    Raw,
}

/// One piece `[lo, hi)` of a query range and where to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Segment {
    pub(super) source: Source,
    pub(super) lo: i64,
    pub(super) hi: i64,
}

/// Cut `[lo, hi)` into the coarsest aligned pieces `levels` allow (coarsest first); the
/// ends that align with nothing go to the raw events. `i64::MIN` / `i64::MAX` stand for
/// "unbounded" and count as aligned to everything.
pub(super) fn plan(lo: i64, hi: i64, levels: &[Level], out: &mut Vec<Segment>) {
    if lo >= hi {
        return;
    }
    let Some((&level, finer)) = levels.split_first() else {
        out.push(Segment {
            source: Source::Raw,
            lo,
            hi,
        });
        return;
    };
    let a = if lo == i64::MIN {
        Some(lo)
    } else {
        level.ceil(lo)
    };
    let b = if hi == i64::MAX {
        Some(hi)
    } else {
        level.floor(hi)
    };
    match (a, b) {
        (Some(a), Some(b)) if a < b => {
            plan(lo, a, finer, out);
            out.push(Segment {
                source: Source::Rollup(level),
                lo: a,
                hi: b,
            });
            plan(b, hi, finer, out);
        }
        _ => plan(lo, hi, finer, out),
    }
}

/// `t` in microseconds, rounded up: events are kept to the microsecond, so `at >= t` and
/// `at < t` select the same events as `at >= ceil(t)` and `at < ceil(t)`.
pub(super) fn micros_up(t: DateTime<Utc>) -> i64 {
    let us = t.timestamp_micros();
    if t.timestamp_subsec_nanos() % 1_000 == 0 {
        us
    } else {
        us.saturating_add(1)
    }
}

/// The query's range in microseconds, unbounded ends as `i64::MIN` / `i64::MAX`.
pub(super) fn bounds(q: &UsageQuery) -> (i64, i64) {
    (
        q.from.map_or(i64::MIN, micros_up),
        q.to.map_or(i64::MAX, micros_up),
    )
}

pub(super) fn segments(q: &UsageQuery, levels: &[Level]) -> Vec<Segment> {
    let (lo, hi) = bounds(q);
    let mut out = Vec::new();
    plan(lo, hi, levels, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros()
    }

    #[test]
    fn plan_uses_coarsest_aligned_pieces() {
        let mut out = Vec::new();
        plan(
            us("2025-09-30T22:30:00Z"),
            us("2025-12-02T01:15:00Z"),
            &Level::ALL,
            &mut out,
        );
        let got: Vec<_> = out.iter().map(|s| (s.source, s.lo, s.hi)).collect();
        let seg = |source, lo, hi| (source, us(lo), us(hi));
        assert_eq!(
            got,
            vec![
                seg(Source::Raw, "2025-09-30T22:30:00Z", "2025-09-30T23:00:00Z"),
                seg(
                    Source::Rollup(Level::Hour),
                    "2025-09-30T23:00:00Z",
                    "2025-10-01T00:00:00Z"
                ),
                seg(
                    Source::Rollup(Level::Month),
                    "2025-10-01T00:00:00Z",
                    "2025-12-01T00:00:00Z"
                ),
                seg(
                    Source::Rollup(Level::Day),
                    "2025-12-01T00:00:00Z",
                    "2025-12-02T00:00:00Z"
                ),
                seg(
                    Source::Rollup(Level::Hour),
                    "2025-12-02T00:00:00Z",
                    "2025-12-02T01:00:00Z"
                ),
                seg(Source::Raw, "2025-12-02T01:00:00Z", "2025-12-02T01:15:00Z"),
            ]
        );
        out.clear();
        plan(i64::MIN, i64::MAX, &Level::ALL, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source, Source::Rollup(Level::Month));
    }

    #[test]
    fn bounds_round_nanoseconds_up() {
        let t = DateTime::parse_from_rfc3339("2025-10-10T12:00:00.000000500Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(micros_up(t), us("2025-10-10T12:00:00.000001Z"));
        let t = DateTime::parse_from_rfc3339("1969-12-31T23:59:59.999999500Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(micros_up(t), 0);
    }
}

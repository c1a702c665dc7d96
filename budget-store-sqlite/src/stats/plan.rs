//! Range planning: a query range cut into month-, day- and hour-aligned pieces, read from the
//! roll-up of their level, and unaligned edges read from the raw events.

use budget_core::store::UsageQuery;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};

use crate::rows::micros;

pub(super) const HOUR_US: i64 = 3_600_000_000;
pub(super) const DAY_US: i64 = 24 * HOUR_US;

/// A roll-up granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Month,
    Day,
    Hour,
}

impl Level {
    pub(crate) const ALL: [Level; 3] = [Level::Month, Level::Day, Level::Hour];

    pub(crate) fn table(self) -> &'static str {
        match self {
            Level::Month => "usage_monthly",
            Level::Day => "usage_daily",
            Level::Hour => "usage_hourly",
        }
    }

    /// The global roll-up of this level: one row per bucket, with its distinct users.
    pub(crate) fn global_table(self) -> &'static str {
        match self {
            Level::Month => "usage_global_monthly",
            Level::Day => "usage_global_daily",
            Level::Hour => "usage_global_hourly",
        }
    }

    /// The (bucket, user) presence set of this level.
    pub(crate) fn users_table(self) -> &'static str {
        match self {
            Level::Month => "usage_users_monthly",
            Level::Day => "usage_users_daily",
            Level::Hour => "usage_users_hourly",
        }
    }

    pub(crate) fn column(self) -> &'static str {
        match self {
            Level::Month => "month_start",
            Level::Day => "day_start",
            Level::Hour => "hour_start",
        }
    }

    /// The start of the bucket containing `us`; `None` when out of chrono's range.
    pub(crate) fn floor(self, us: i64) -> Option<i64> {
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
    Some(micros(Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)))
}

/// Where one piece of a range is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Rollup(Level),
    Raw,
}

/// One piece `[lo, hi)` of a query range and where to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) source: Source,
    pub(crate) lo: i64,
    pub(crate) hi: i64,
}

/// Cut `[lo, hi)` into the coarsest aligned pieces `levels` allow (coarsest first); the
/// ends that align with nothing go to the raw events. `i64::MIN` / `i64::MAX` stand for
/// "unbounded" and count as aligned to everything.
pub(crate) fn plan(lo: i64, hi: i64, levels: &[Level], out: &mut Vec<Segment>) {
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

/// The query's range in microseconds, unbounded ends as `i64::MIN` / `i64::MAX`.
pub(super) fn bounds(q: &UsageQuery) -> (i64, i64) {
    (
        q.from.map_or(i64::MIN, micros),
        q.to.map_or(i64::MAX, micros),
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
        micros(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
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
        assert_eq!(
            got,
            vec![
                (
                    Source::Raw,
                    us("2025-09-30T22:30:00Z"),
                    us("2025-09-30T23:00:00Z")
                ),
                (
                    Source::Rollup(Level::Hour),
                    us("2025-09-30T23:00:00Z"),
                    us("2025-10-01T00:00:00Z")
                ),
                (
                    Source::Rollup(Level::Month),
                    us("2025-10-01T00:00:00Z"),
                    us("2025-12-01T00:00:00Z")
                ),
                (
                    Source::Rollup(Level::Day),
                    us("2025-12-01T00:00:00Z"),
                    us("2025-12-02T00:00:00Z")
                ),
                (
                    Source::Rollup(Level::Hour),
                    us("2025-12-02T00:00:00Z"),
                    us("2025-12-02T01:00:00Z")
                ),
                (
                    Source::Raw,
                    us("2025-12-02T01:00:00Z"),
                    us("2025-12-02T01:15:00Z")
                ),
            ]
        );
        // Inside one hour: raw only. Unbounded: the coarsest table only.
        out.clear();
        plan(
            us("2025-10-10T12:00:30Z"),
            us("2025-10-10T12:10:00Z"),
            &Level::ALL,
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].source, Source::Raw);
        out.clear();
        plan(i64::MIN, i64::MAX, &Level::ALL, &mut out);
        assert_eq!(
            out,
            vec![Segment {
                source: Source::Rollup(Level::Month),
                lo: i64::MIN,
                hi: i64::MAX
            }]
        );
        out.clear();
        plan(
            i64::MIN,
            us("2025-10-10T12:00:30Z"),
            &[Level::Hour],
            &mut out,
        );
        assert_eq!(out.len(), 2);
        out.clear();
        plan(5, 5, &Level::ALL, &mut out);
        assert!(out.is_empty());
    }
}

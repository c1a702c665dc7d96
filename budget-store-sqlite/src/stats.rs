//! Statistics from roll-ups: a query range is cut into month-, day- and hour-aligned pieces
//! read from `usage_monthly`, `usage_daily` and `usage_hourly`, plus unaligned edges read from
//! the raw `usage_events`. Only those edges (less than an hour each) touch raw events.

use budget_core::store::{
    sort_groups, BucketSize, CounterKey, GroupBy, UsageBucket, UsageGroup, UsageQuery, UsageRecord,
    UsageTotals,
};
use budget_core::{LimiterId, Money};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, SqlitePool};

use crate::rows::{micros, record_from_row, uncount};
use crate::SqliteStoreError;

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

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
fn bounds(q: &UsageQuery) -> (i64, i64) {
    (
        q.from.map_or(i64::MIN, micros),
        q.to.map_or(i64::MAX, micros),
    )
}

/// A `SELECT` of uniform rows (`limiter_id, model, user, t, requests, …, errors`) over every
/// segment, `UNION ALL`-ed, and its arguments.
struct RowsSql {
    sql: String,
    args: SqliteArguments<'static>,
}

fn rows_sql(limiter: Option<LimiterId>, segments: &[Segment]) -> Result<RowsSql, SqliteStoreError> {
    let mut sql = String::new();
    let mut args = SqliteArguments::default();
    let limiter = limiter.map(|l| l.to_string());
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.table(), level.column());
                sql.push_str(&format!(
                    "SELECT limiter_id, model, user, {c} AS t, requests, prompt_tokens, cached_tokens, \
                     completion_tokens, reasoning_tokens, cost, unpriced, estimated, errors \
                     FROM {t} WHERE {c} >= ? AND {c} < ?"
                ));
                if limiter.is_some() {
                    sql.push_str(" AND limiter_id = ?");
                }
            }
            Source::Raw => {
                sql.push_str(
                    "SELECT limiter_id, IFNULL(model, '') AS model, IFNULL(user, '') AS user, at AS t, \
                     1 AS requests, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost, \
                     unpriced, estimated, status >= 400 AS errors \
                     FROM usage_events WHERE at >= ? AND at < ?",
                );
                if limiter.is_some() {
                    sql.push_str(" AND limiter_id = ?");
                }
            }
        }
        args.add(s.lo).map_err(sqlx::Error::Encode)?;
        args.add(s.hi).map_err(sqlx::Error::Encode)?;
        if let Some(l) = &limiter {
            args.add(l.clone()).map_err(sqlx::Error::Encode)?;
        }
    }
    Ok(RowsSql { sql, args })
}

/// The summed columns of every statistics query: the first nine read by [`totals_at`].
const SUMS: &str =
    "IFNULL(SUM(requests), 0), IFNULL(SUM(prompt_tokens), 0), IFNULL(SUM(cached_tokens), 0), \
     IFNULL(SUM(completion_tokens), 0), IFNULL(SUM(reasoning_tokens), 0), IFNULL(SUM(cost), 0), \
     IFNULL(SUM(unpriced), 0), IFNULL(SUM(estimated), 0), IFNULL(SUM(errors), 0)";

/// The aggregate columns of the per-(limiter, model, user) rows of [`rows_sql`], in
/// [`totals_at`] order: the sums, then the distinct users.
const AGGREGATES: &str = concat!(
    "IFNULL(SUM(requests), 0), IFNULL(SUM(prompt_tokens), 0), IFNULL(SUM(cached_tokens), 0), \
     IFNULL(SUM(completion_tokens), 0), IFNULL(SUM(reasoning_tokens), 0), IFNULL(SUM(cost), 0), \
     IFNULL(SUM(unpriced), 0), IFNULL(SUM(estimated), 0), IFNULL(SUM(errors), 0)",
    ", COUNT(DISTINCT NULLIF(user, ''))"
);

/// A `SELECT` of uniform rows (`t, requests, …, errors, users`) over every segment, all
/// limiters together, `UNION ALL`-ed: roll-up segments read the global roll-ups (one row per
/// bucket), raw segments the events. `users` is the bucket's distinct users for segments of
/// level `users_of`, NULL for the others.
fn global_rows_sql(
    segments: &[Segment],
    users_of: Option<Level>,
    sql: &mut String,
    args: &mut SqliteArguments<'static>,
) -> Result<(), SqliteStoreError> {
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.global_table(), level.column());
                let users = if users_of == Some(level) {
                    "users"
                } else {
                    "NULL"
                };
                sql.push_str(&format!(
                    "SELECT {c} AS t, requests, prompt_tokens, cached_tokens, completion_tokens, \
                     reasoning_tokens, cost, unpriced, estimated, errors, {users} AS users \
                     FROM {t} WHERE {c} >= ? AND {c} < ?"
                ));
            }
            Source::Raw => sql.push_str(
                "SELECT at AS t, 1 AS requests, prompt_tokens, cached_tokens, completion_tokens, \
                 reasoning_tokens, cost, unpriced, estimated, status >= 400 AS errors, NULL AS users \
                 FROM usage_events WHERE at >= ? AND at < ?",
            ),
        }
        args.add(s.lo).map_err(sqlx::Error::Encode)?;
        args.add(s.hi).map_err(sqlx::Error::Encode)?;
    }
    Ok(())
}

/// A `SELECT COUNT(DISTINCT user)` of the non-empty users over every segment, all limiters
/// together: roll-up segments read the (bucket, user) sets, raw segments the events.
fn global_users_sql(
    segments: &[Segment],
    sql: &mut String,
    args: &mut SqliteArguments<'static>,
) -> Result<(), SqliteStoreError> {
    sql.push_str("SELECT COUNT(DISTINCT user) FROM (");
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push_str(" UNION ALL ");
        }
        match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.users_table(), level.column());
                sql.push_str(&format!("SELECT user FROM {t} WHERE {c} >= ? AND {c} < ?"));
            }
            Source::Raw => sql
                .push_str("SELECT user FROM usage_events WHERE at >= ? AND at < ? AND user <> ''"),
        }
        args.add(s.lo).map_err(sqlx::Error::Encode)?;
        args.add(s.hi).map_err(sqlx::Error::Encode)?;
    }
    sql.push(')');
    Ok(())
}

/// The distinct non-empty users over `segments`, all limiters together.
async fn global_users(pool: &SqlitePool, segments: &[Segment]) -> Result<u64, SqliteStoreError> {
    let (mut sql, mut args) = (String::new(), SqliteArguments::default());
    global_users_sql(segments, &mut sql, &mut args)?;
    let n: i64 = sqlx::query_scalar_with(&sql, args).fetch_one(pool).await?;
    Ok(uncount(n))
}

fn totals_at(row: &SqliteRow, first: usize) -> Result<UsageTotals, sqlx::Error> {
    let n = |i: usize| row.try_get::<i64, _>(first + i).map(uncount);
    let (prompt, completion) = (n(1)?, n(3)?);
    Ok(UsageTotals {
        requests: n(0)?,
        prompt_tokens: prompt,
        cached_tokens: n(2)?,
        completion_tokens: completion,
        reasoning_tokens: n(4)?,
        total_tokens: prompt.saturating_add(completion),
        cost: Money::from_nanos(row.try_get(first + 5)?),
        unpriced_requests: n(6)?,
        estimated_requests: n(7)?,
        error_requests: n(8)?,
        distinct_users: n(9)?,
    })
}

fn segments(q: &UsageQuery, levels: &[Level]) -> Vec<Segment> {
    let (lo, hi) = bounds(q);
    let mut out = Vec::new();
    plan(lo, hi, levels, &mut out);
    out
}

/// Totals over the records matching `q`.
pub(crate) async fn totals(
    pool: &SqlitePool,
    q: &UsageQuery,
) -> Result<UsageTotals, SqliteStoreError> {
    let segs = segments(q, &Level::ALL);
    if segs.is_empty() {
        return Ok(UsageTotals::default());
    }
    if q.limiter_id.is_none() {
        // All limiters: one row per bucket from the global roll-ups; the distinct users over
        // the range from the (bucket, user) sets, as a scalar subquery (its `?`s come first).
        let mut sql = String::from("SELECT ");
        let mut args = SqliteArguments::default();
        sql.push_str(SUMS);
        sql.push_str(", (");
        global_users_sql(&segs, &mut sql, &mut args)?;
        sql.push_str(") FROM (");
        global_rows_sql(&segs, None, &mut sql, &mut args)?;
        sql.push(')');
        let row = sqlx::query_with(&sql, args).fetch_one(pool).await?;
        return Ok(totals_at(&row, 0)?);
    }
    let rows = rows_sql(q.limiter_id, &segs)?;
    let sql = format!("SELECT {AGGREGATES} FROM ({})", rows.sql);
    let row = sqlx::query_with(&sql, rows.args).fetch_one(pool).await?;
    Ok(totals_at(&row, 0)?)
}

/// The cost of the usage that counts in `key`: a limiter's window (from the roll-ups), or one
/// end user's window inside a limiter (from the raw events of that limiter and window).
pub(crate) async fn counter_cost(
    pool: &SqlitePool,
    key: &CounterKey,
) -> Result<Money, SqliteStoreError> {
    let (start, end) = (micros(key.window.start), micros(key.window.end));
    if let Some(user) = &key.user {
        let nanos: i64 = sqlx::query_scalar(
            "SELECT IFNULL(SUM(cost), 0) FROM usage_events \
             WHERE limiter_id = ? AND at >= ? AND at < ? AND user = ?",
        )
        .bind(key.limiter_id.to_string())
        .bind(start)
        .bind(end)
        .bind(user)
        .fetch_one(pool)
        .await?;
        return Ok(Money::from_nanos(nanos));
    }
    let mut segs = Vec::new();
    plan(start, end, &Level::ALL, &mut segs);
    if segs.is_empty() {
        return Ok(Money::ZERO);
    }
    let rows = rows_sql(Some(key.limiter_id), &segs)?;
    let sql = format!("SELECT IFNULL(SUM(cost), 0) FROM ({})", rows.sql);
    let nanos: i64 = sqlx::query_scalar_with(&sql, rows.args)
        .fetch_one(pool)
        .await?;
    Ok(Money::from_nanos(nanos))
}

/// Totals per limiter, model or user, in [`sort_groups`] order, at most `limit`.
pub(crate) async fn breakdown(
    pool: &SqlitePool,
    q: &UsageQuery,
    by: GroupBy,
    limit: usize,
) -> Result<Vec<UsageGroup>, SqliteStoreError> {
    let segs = segments(q, &Level::ALL);
    if segs.is_empty() || limit == 0 {
        return Ok(Vec::new());
    }
    let key = match by {
        GroupBy::Limiter => "limiter_id",
        GroupBy::Model => "model",
        GroupBy::User => "user",
    };
    let rows = rows_sql(q.limiter_id, &segs)?;
    let sql = format!(
        "SELECT {key} AS k, {AGGREGATES} FROM ({}) GROUP BY k",
        rows.sql
    );
    let found = sqlx::query_with(&sql, rows.args).fetch_all(pool).await?;
    let mut groups = found
        .iter()
        .map(|row| {
            let k: String = row.try_get(0)?;
            Ok(UsageGroup {
                key: (!k.is_empty()).then_some(k),
                totals: totals_at(row, 1)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    sort_groups(&mut groups);
    groups.truncate(limit);
    Ok(groups)
}

/// Totals per UTC bucket, oldest first, empty buckets left out. Minute buckets read raw
/// events; hour buckets hourly roll-ups; day buckets daily and hourly roll-ups.
pub(crate) async fn series(
    pool: &SqlitePool,
    q: &UsageQuery,
    bucket: BucketSize,
) -> Result<Vec<UsageBucket>, SqliteStoreError> {
    let (levels, width): (&[Level], i64) = match bucket {
        BucketSize::Minute => (&[], 60_000_000),
        BucketSize::Hour => (&[Level::Hour], HOUR_US),
        BucketSize::Day => (&[Level::Day, Level::Hour], DAY_US),
    };
    let segs = segments(q, levels);
    if segs.is_empty() {
        return Ok(Vec::new());
    }
    let bucket_of = format!("t - (((t % {width}) + {width}) % {width})");
    let (found, partial) = match (q.limiter_id, levels.first()) {
        (None, Some(&level)) => {
            // All limiters: whole buckets come from the global roll-up of the bucket's own
            // level, with their distinct users. Buckets cut by the range's edges are made of
            // finer pieces; their distinct users are counted over those pieces afterwards.
            let (mut sql, mut args) = (String::new(), SqliteArguments::default());
            global_rows_sql(&segs, Some(level), &mut sql, &mut args)?;
            let sql = format!(
                "SELECT {bucket_of} AS b, {SUMS}, IFNULL(SUM(users), 0) FROM ({sql}) GROUP BY b ORDER BY b"
            );
            let found = sqlx::query_with(&sql, args).fetch_all(pool).await?;
            (found, partial_buckets(&segs, level, width))
        }
        _ => {
            let rows = rows_sql(q.limiter_id, &segs)?;
            let sql = format!(
                "SELECT {bucket_of} AS b, {AGGREGATES} FROM ({}) GROUP BY b ORDER BY b",
                rows.sql
            );
            let found = sqlx::query_with(&sql, rows.args).fetch_all(pool).await?;
            (found, Vec::new())
        }
    };
    let mut buckets = found
        .iter()
        .map(|row| {
            let start = crate::rows::from_micros("usage_events", row.try_get(0)?)?;
            Ok(UsageBucket {
                start,
                totals: totals_at(row, 1)?,
            })
        })
        .collect::<Result<Vec<_>, SqliteStoreError>>()?;
    for (start, pieces) in partial {
        if let Some(b) = buckets.iter_mut().find(|b| micros(b.start) == start) {
            b.totals.distinct_users = global_users(pool, &pieces).await?;
        }
    }
    Ok(buckets)
}

/// The buckets (of `width`, whose roll-up level is `level`) that `segs` covers only in part,
/// each with the pieces of `segs` inside it: the segments of other sources, cut at bucket
/// edges. A bucket read from `level` is whole and has none.
fn partial_buckets(segs: &[Segment], level: Level, width: i64) -> Vec<(i64, Vec<Segment>)> {
    let mut out: Vec<(i64, Vec<Segment>)> = Vec::new();
    for s in segs.iter().filter(|s| s.source != Source::Rollup(level)) {
        let mut b = s.lo - s.lo.rem_euclid(width);
        while b < s.hi {
            let piece = Segment {
                source: s.source,
                lo: s.lo.max(b),
                hi: s.hi.min(b.saturating_add(width)),
            };
            match out.last_mut() {
                Some((start, pieces)) if *start == b => pieces.push(piece),
                _ => out.push((b, vec![piece])),
            }
            b = match b.checked_add(width) {
                Some(next) => next,
                None => break,
            };
        }
    }
    out
}

/// The most recent records matching `q`, newest first.
pub(crate) async fn recent(
    pool: &SqlitePool,
    q: &UsageQuery,
    limit: usize,
) -> Result<Vec<UsageRecord>, SqliteStoreError> {
    let (lo, hi) = bounds(q);
    let mut sql = format!(
        "SELECT {} FROM usage_events WHERE at >= ? AND at < ?",
        crate::rows::EVENT_COLUMNS
    );
    if q.limiter_id.is_some() {
        sql.push_str(" AND limiter_id = ?");
    }
    sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
    let mut query = sqlx::query(&sql).bind(lo).bind(hi);
    if let Some(l) = q.limiter_id {
        query = query.bind(l.to_string());
    }
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(record_from_row).collect()
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

//! The statistics queries: totals, breakdowns, time series and recent records.

use budget_core::store::{
    sort_groups, BucketSize, GroupBy, UsageBucket, UsageGroup, UsageQuery, UsageRecord, UsageTotals,
};
use sqlx::sqlite::SqliteArguments;
use sqlx::{Row, SqlitePool};

use super::plan::{bounds, segments, Level, Segment, Source, DAY_US, HOUR_US};
use super::sql::{
    global_rows_sql, global_users, global_users_sql, rows_sql, totals_at, AGGREGATES, SUMS,
};
use crate::rows::{micros, record_from_row};
use crate::SqliteStoreError;

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

/// The newest records matching `q`, newest first, at most `limit`.
pub(crate) async fn recent(
    pool: &SqlitePool,
    q: &UsageQuery,
    limit: usize,
) -> Result<Vec<UsageRecord>, SqliteStoreError> {
    records(pool, q, None, limit, true).await
}

/// A page of an export: the records matching `q` after `after` in `(at, id)` order, oldest
/// first, at most `limit` (a keyset query on the `(at)` and `(limiter_id, at)` indexes).
pub(crate) async fn page(
    pool: &SqlitePool,
    q: &UsageQuery,
    after: Option<budget_core::store::UsageCursor>,
    limit: usize,
) -> Result<Vec<UsageRecord>, SqliteStoreError> {
    records(pool, q, after, limit, false).await
}

/// The records matching `q` in `(at, id)` order (`newest_first`: reversed), after the
/// cursor `after` when given (oldest first only), at most `limit`.
async fn records(
    pool: &SqlitePool,
    q: &UsageQuery,
    after: Option<budget_core::store::UsageCursor>,
    limit: usize,
    newest_first: bool,
) -> Result<Vec<UsageRecord>, SqliteStoreError> {
    let (lo, hi) = bounds(q);
    // The cursor bounds the index range too: without it every page walked past all the
    // records already sent (quadratic over an export; 150 ms a page near the end of 1M).
    let lo = after.map_or(lo, |c| lo.max(micros(c.at)));
    let mut sql = format!(
        "SELECT {} FROM usage_events WHERE at >= ? AND at < ?",
        crate::rows::EVENT_COLUMNS
    );
    if q.limiter_id.is_some() {
        sql.push_str(" AND limiter_id = ?");
    }
    if after.is_some() {
        // Ids are hyphenated lower-case UUIDs: as text they sort as the UUIDs do.
        sql.push_str(" AND (at > ? OR (at = ? AND id > ?))");
    }
    sql.push_str(if newest_first {
        " ORDER BY at DESC, id DESC LIMIT ?"
    } else {
        " ORDER BY at, id LIMIT ?"
    });
    let mut query = sqlx::query(&sql).bind(lo).bind(hi);
    if let Some(l) = q.limiter_id {
        query = query.bind(l.to_string());
    }
    if let Some(c) = after {
        query = query
            .bind(micros(c.at))
            .bind(micros(c.at))
            .bind(c.id.to_string());
    }
    let rows = query
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(record_from_row).collect()
}

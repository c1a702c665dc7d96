//! The `SELECT`s over a planned range: uniform rows per (limiter, model, user) or, for all
//! limiters together, per bucket from the global roll-ups; the columns every query sums.

use budget_core::store::UsageTotals;
use budget_core::{LimiterId, Money};
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Row, SqlitePool};

use super::plan::{Level, Segment, Source};
use crate::rows::uncount;
use crate::SqliteStoreError;

/// A `SELECT` of uniform rows (`limiter_id, model, user, t, requests, …, errors`) over every
/// segment, `UNION ALL`-ed, and its arguments.
pub(super) struct RowsSql {
    pub(super) sql: String,
    pub(super) args: SqliteArguments<'static>,
}

pub(super) fn rows_sql(
    limiter: Option<LimiterId>,
    segments: &[Segment],
) -> Result<RowsSql, SqliteStoreError> {
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
pub(super) const SUMS: &str =
    "IFNULL(SUM(requests), 0), IFNULL(SUM(prompt_tokens), 0), IFNULL(SUM(cached_tokens), 0), \
     IFNULL(SUM(completion_tokens), 0), IFNULL(SUM(reasoning_tokens), 0), IFNULL(SUM(cost), 0), \
     IFNULL(SUM(unpriced), 0), IFNULL(SUM(estimated), 0), IFNULL(SUM(errors), 0)";

/// The aggregate columns of the per-(limiter, model, user) rows of [`rows_sql`], in
/// [`totals_at`] order: the sums, then the distinct users.
pub(super) const AGGREGATES: &str = concat!(
    "IFNULL(SUM(requests), 0), IFNULL(SUM(prompt_tokens), 0), IFNULL(SUM(cached_tokens), 0), \
     IFNULL(SUM(completion_tokens), 0), IFNULL(SUM(reasoning_tokens), 0), IFNULL(SUM(cost), 0), \
     IFNULL(SUM(unpriced), 0), IFNULL(SUM(estimated), 0), IFNULL(SUM(errors), 0)",
    ", COUNT(DISTINCT NULLIF(user, ''))"
);

/// A `SELECT` of uniform rows (`t, requests, …, errors, users`) over every segment, all
/// limiters together, `UNION ALL`-ed: roll-up segments read the global roll-ups (one row per
/// bucket), raw segments the events. `users` is the bucket's distinct users for segments of
/// level `users_of`, NULL for the others.
pub(super) fn global_rows_sql(
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
pub(super) fn global_users_sql(
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
pub(super) async fn global_users(
    pool: &SqlitePool,
    segments: &[Segment],
) -> Result<u64, SqliteStoreError> {
    let (mut sql, mut args) = (String::new(), SqliteArguments::default());
    global_users_sql(segments, &mut sql, &mut args)?;
    let n: i64 = sqlx::query_scalar_with(&sql, args).fetch_one(pool).await?;
    Ok(uncount(n))
}

pub(super) fn totals_at(row: &SqliteRow, first: usize) -> Result<UsageTotals, sqlx::Error> {
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

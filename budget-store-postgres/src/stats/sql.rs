//! The `SELECT`s over a planned range: uniform rows per (limiter, model, user) or, for all
//! limiters together, per bucket from the global roll-ups; the columns every query sums.

use budget_core::store::UsageTotals;
use budget_core::{LimiterId, Money};
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Row};

use super::plan::{Segment, Source};
use crate::rows::uncount;
use crate::PostgresStoreError;

/// SQL text and its arguments, built together (`$n` placeholders numbered as they are bound).
#[derive(Default)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: PgArguments,
}

impl Sql {
    pub(super) fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    /// Bind `v` and write its placeholder.
    pub(super) fn bind<'q, T>(&mut self, v: T) -> Result<(), PostgresStoreError>
    where
        T: 'q + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        self.args.add(v).map_err(sqlx::Error::Encode)?;
        let n = self.args.len();
        self.text.push_str(&format!("${n}"));
        Ok(())
    }

    /// ` AND {column} >= lo AND {column} < hi`, leaving out unbounded ends.
    pub(super) fn range(&mut self, column: &str, s: &Segment) -> Result<(), PostgresStoreError> {
        if s.lo != i64::MIN {
            self.push(&format!(" AND {column} >= "));
            self.bind(time(s.lo))?;
        }
        if s.hi != i64::MAX {
            self.push(&format!(" AND {column} < "));
            self.bind(time(s.hi))?;
        }
        Ok(())
    }
}

/// Microseconds as a time (the planner's values are all in chrono's range or unbounded).
fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(if us < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

/// Append a `SELECT` of uniform rows (`limiter_id, model, "user", t, requests, …, errors`)
/// over every segment, `UNION ALL`-ed; `model` and `"user"` are '' where there is none.
pub(super) fn rows_sql(
    sql: &mut Sql,
    limiter: Option<LimiterId>,
    segments: &[Segment],
) -> Result<(), PostgresStoreError> {
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let column = match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.table(), level.column());
                sql.push(&format!(
                    "SELECT limiter_id, model, \"user\", {c} AS t, requests, prompt_tokens, \
                     cached_tokens, completion_tokens, reasoning_tokens, cost, unpriced, \
                     estimated, errors FROM {t} WHERE TRUE"
                ));
                c
            }
            Source::Raw => {
                sql.push(
                    "SELECT limiter_id, COALESCE(model, '') AS model, \
                     COALESCE(\"user\", '') AS \"user\", at AS t, 1::bigint AS requests, \
                     prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost, \
                     unpriced::int::bigint AS unpriced, estimated::int::bigint AS estimated, \
                     (status >= 400)::int::bigint AS errors FROM usage_events WHERE TRUE",
                );
                "at"
            }
        };
        sql.range(column, s)?;
        if let Some(l) = limiter {
            sql.push(" AND limiter_id = ");
            sql.bind(l.0)?;
        }
    }
    Ok(())
}

/// The summed columns of every statistics query: the first nine read by [`totals_at`].
pub(super) const SUMS: &str = "COALESCE(SUM(requests), 0)::bigint, \
     COALESCE(SUM(prompt_tokens), 0)::bigint, COALESCE(SUM(cached_tokens), 0)::bigint, \
     COALESCE(SUM(completion_tokens), 0)::bigint, COALESCE(SUM(reasoning_tokens), 0)::bigint, \
     COALESCE(SUM(cost), 0)::bigint, COALESCE(SUM(unpriced), 0)::bigint, \
     COALESCE(SUM(estimated), 0)::bigint, COALESCE(SUM(errors), 0)::bigint";

/// The distinct non-empty users of the per-(limiter, model, user) rows of [`rows_sql`]: the
/// tenth column read by [`totals_at`].
pub(super) const USERS: &str = "COUNT(DISTINCT NULLIF(\"user\", ''))::bigint";

/// Append a `SELECT` of uniform rows (`t, requests, …, errors, users`) over every segment,
/// all limiters together, `UNION ALL`-ed: roll-up segments read the global roll-ups (one row
/// per bucket), raw segments the events. `users` is the bucket's distinct users for segments
/// of level `users_of`, NULL for the others.
pub(super) fn global_rows_sql(
    sql: &mut Sql,
    segments: &[Segment],
    users_of: Option<super::plan::Level>,
) -> Result<(), PostgresStoreError> {
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let column = match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.global_table(), level.column());
                let users = if users_of == Some(level) {
                    "users"
                } else {
                    "NULL::bigint"
                };
                sql.push(&format!(
                    "SELECT {c} AS t, requests, prompt_tokens, cached_tokens, completion_tokens, \
                     reasoning_tokens, cost, unpriced, estimated, errors, {users} AS users \
                     FROM {t} WHERE TRUE"
                ));
                c
            }
            Source::Raw => {
                sql.push(
                    "SELECT at AS t, 1::bigint AS requests, prompt_tokens, cached_tokens, \
                     completion_tokens, reasoning_tokens, cost, unpriced::int::bigint AS unpriced, \
                     estimated::int::bigint AS estimated, (status >= 400)::int::bigint AS errors, \
                     NULL::bigint AS users \
                     FROM usage_events WHERE TRUE",
                );
                "at"
            }
        };
        sql.range(column, s)?;
    }
    Ok(())
}

/// Append a `SELECT` of the number of distinct non-empty users over every segment, all
/// limiters together: roll-up segments read the (bucket, user) sets, raw segments the events.
pub(super) fn global_users_sql(
    sql: &mut Sql,
    segments: &[Segment],
) -> Result<(), PostgresStoreError> {
    // GROUP BY, not COUNT(DISTINCT): a hash aggregate, ~3× faster than COUNT(DISTINCT)'s sort.
    sql.push("SELECT COUNT(*)::bigint FROM (SELECT u FROM (");
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let column = match s.source {
            Source::Rollup(level) => {
                let (t, c) = (level.users_table(), level.column());
                sql.push(&format!("SELECT \"user\" AS u FROM {t} WHERE TRUE"));
                c
            }
            Source::Raw => {
                sql.push("SELECT \"user\" AS u FROM usage_events WHERE \"user\" <> ''");
                "at"
            }
        };
        sql.range(column, s)?;
    }
    sql.push(") x GROUP BY u) y");
    Ok(())
}

/// Totals from the ten columns at `first`: [`SUMS`] then the distinct users.
pub(super) fn totals_at(row: &PgRow, first: usize) -> Result<UsageTotals, sqlx::Error> {
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

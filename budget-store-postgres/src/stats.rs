//! Statistics over every replica's usage: window spend from the budget rows and leases;
//! totals, breakdowns, series and recent records from the roll-ups of `0002_rollups.sql`.
//!
//! A query range is cut into month-, day- and hour-aligned pieces read from `usage_monthly`,
//! `usage_daily` and `usage_hourly` (all limiters together: `usage_global_*`, one row per
//! bucket, with distinct users from the `usage_users_*` sets), plus unaligned edges read from
//! the raw `usage_events`. Only those edges (less than an hour each) touch raw events.
//!
//! - [`plan`]: cutting a range into pieces by roll-up level;
//! - [`sql`]: the `SELECT`s over those pieces and the columns they sum.

mod plan;
mod sql;

use async_trait::async_trait;
use budget_core::store::{
    sort_groups, BucketSize, CounterKey, Error, GroupBy, Result, UsageBucket, UsageGroup,
    UsageQuery, UsageRecord, UsageStats, UsageTotals, WindowSpend,
};
use budget_core::Money;
use sqlx::Row;

use self::plan::{bounds, segments, Level, Segment, Source, DAY_US, HOUR_US};
use self::sql::{global_rows_sql, global_users_sql, rows_sql, totals_at, Sql, SUMS, USERS};
use crate::rows::{record_from_row, uncount, EVENT_COLUMNS};
use crate::tasks::timed;
use crate::{PostgresStore, PostgresStoreError};

impl PostgresStore {
    /// Statistics must see everything settled before they were asked for. While the database
    /// fails they answer from what is written.
    async fn read_barrier(&self) -> Result<()> {
        match self.flush_writer().await {
            Err(Error::Closed) => Err(Error::Closed),
            Ok(()) | Err(_) => Ok(()),
        }
    }

    /// The cost of the usage that counts in `key`: a limiter's window (from the roll-ups), or
    /// one end user's window inside a limiter (from the raw events of that limiter and window).
    async fn counter_cost(&self, key: &CounterKey) -> Result<Money> {
        let q = UsageQuery::window(key.limiter_id, key.window);
        let mut sql = Sql::default();
        sql.push("SELECT COALESCE(SUM(cost), 0)::bigint FROM (");
        if let Some(user) = &key.user {
            let (lo, hi) = bounds(&q);
            let raw = [Segment {
                source: Source::Raw,
                lo,
                hi,
            }];
            rows_sql(&mut sql, q.limiter_id, &raw)?;
            sql.push(") x WHERE \"user\" = ");
            sql.bind(user.clone())?;
        } else {
            let segs = segments(&q, &Level::ALL);
            if segs.is_empty() {
                return Ok(Money::ZERO);
            }
            rows_sql(&mut sql, q.limiter_id, &segs)?;
            sql.push(") x");
        }
        let row = self.fetch_one(sql).await?;
        Ok(Money::from_nanos(
            row.try_get(0).map_err(PostgresStoreError::from)?,
        ))
    }

    async fn fetch_one(&self, sql: Sql) -> Result<sqlx::postgres::PgRow> {
        let s = &self.inner;
        s.trip();
        Ok(timed(s, sqlx::query_with(&sql.text, sql.args).fetch_one(&s.pool)).await?)
    }

    async fn fetch_all(&self, sql: Sql) -> Result<Vec<sqlx::postgres::PgRow>> {
        let s = &self.inner;
        s.trip();
        Ok(timed(s, sqlx::query_with(&sql.text, sql.args).fetch_all(&s.pool)).await?)
    }
}

#[async_trait]
impl UsageStats for PostgresStore {
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend> {
        let s = &self.inner;
        let (is_line, local) = {
            let hot = s.lock();
            let Some(l) = hot.limiters.get(key.limiter_id) else {
                return Err(Error::LimiterNotFound(key.limiter_id));
            };
            let local = hot
                .slices
                .get(key)
                .filter(|x| x.lease.is_some())
                .map(|x| (x.held, x.in_flight));
            (key.is_line_of(l), local)
        };
        self.read_barrier().await?;
        let empty = WindowSpend {
            window: key.window,
            spent: Money::ZERO,
            held: Money::ZERO,
            in_flight: 0,
            leased: Money::ZERO,
        };
        if is_line {
            s.trip();
            let row = timed(
                s,
                sqlx::query(
                    "SELECT w.spent, w.leased, \
                       COALESCE((SELECT SUM(held) FROM budget_leases l WHERE l.state = 'active' \
                         AND l.replica <> $5 AND (l.limiter_id, l.user_key, l.window_end, \
                         l.window_start) = (w.limiter_id, w.user_key, w.window_end, w.window_start)), 0)::bigint AS held, \
                       COALESCE((SELECT SUM(in_flight) FROM budget_leases l WHERE l.state = 'active' \
                         AND l.replica <> $5 AND (l.limiter_id, l.user_key, l.window_end, \
                         l.window_start) = (w.limiter_id, w.user_key, w.window_end, w.window_start)), 0)::bigint AS in_flight \
                     FROM budget_windows w WHERE w.limiter_id = $1 AND w.user_key = $2 \
                       AND w.window_end = $3 AND w.window_start = $4",
                )
                .bind(key.limiter_id.0)
                .bind(key.user.as_deref().unwrap_or(""))
                .bind(key.window.end)
                .bind(key.window.start)
                .bind(s.replica)
                .fetch_optional(&s.pool),
            )
            .await?;
            if let Some(row) = row {
                let get = |c: &str| row.try_get::<i64, _>(c).map_err(PostgresStoreError::from);
                let (my_held, my_flight) = local.unwrap_or((Money::ZERO, 0));
                let held = Money::from_nanos(get("held")?).saturating_add(my_held);
                let leased = Money::from_nanos(get("leased")?);
                return Ok(WindowSpend {
                    spent: Money::from_nanos(get("spent")?),
                    held,
                    in_flight: uncount(get("in_flight")?).saturating_add(my_flight),
                    leased: leased.saturating_sub(held).max(Money::ZERO),
                    ..empty
                });
            }
        }
        Ok(WindowSpend {
            spent: self.counter_cost(key).await?,
            ..empty
        })
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals> {
        self.read_barrier().await?;
        let segs = segments(query, &Level::ALL);
        if segs.is_empty() {
            return Ok(UsageTotals::default());
        }
        let mut sql = Sql::default();
        if query.limiter_id.is_none() {
            // All limiters: one row per bucket from the global roll-ups; the distinct users
            // over the range from the (bucket, user) sets, as a scalar subquery.
            sql.push(&format!("SELECT {SUMS}, ("));
            global_users_sql(&mut sql, &segs)?;
            sql.push(") FROM (");
            global_rows_sql(&mut sql, &segs, None)?;
            sql.push(") x");
        } else {
            sql.push(&format!("SELECT {SUMS}, {USERS} FROM ("));
            rows_sql(&mut sql, query.limiter_id, &segs)?;
            sql.push(") x");
        }
        let row = self.fetch_one(sql).await?;
        Ok(totals_at(&row, 0).map_err(PostgresStoreError::from)?)
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        self.read_barrier().await?;
        let segs = segments(query, &Level::ALL);
        if segs.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let key = match by {
            GroupBy::Limiter => "limiter_id::text",
            GroupBy::Model => "model",
            GroupBy::User => "\"user\"",
        };
        // '' (none) sorts first, and "C" compares bytes: the order of `sort_groups`.
        let mut sql = Sql::default();
        sql.push(&format!("SELECT {key} AS k, {SUMS}, {USERS} FROM ("));
        rows_sql(&mut sql, query.limiter_id, &segs)?;
        sql.push(&format!(
            ") x GROUP BY 1 ORDER BY 7 DESC, 2 DESC, {key} COLLATE \"C\" LIMIT "
        ));
        sql.bind(i64::try_from(limit).unwrap_or(i64::MAX))?;
        let rows = self.fetch_all(sql).await?;
        let mut groups = rows
            .iter()
            .map(|r| {
                let k: String = r.try_get(0)?;
                Ok(UsageGroup {
                    key: (!k.is_empty()).then_some(k),
                    totals: totals_at(r, 1)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(PostgresStoreError::from)?;
        sort_groups(&mut groups);
        Ok(groups)
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        self.read_barrier().await?;
        let (levels, width, unit): (&[Level], i64, &str) = match bucket {
            BucketSize::Minute => (&[], 60_000_000, "minute"),
            BucketSize::Hour => (&[Level::Hour], HOUR_US, "hour"),
            BucketSize::Day => (&[Level::Day, Level::Hour], DAY_US, "day"),
        };
        let segs = segments(query, levels);
        if segs.is_empty() {
            return Ok(Vec::new());
        }
        let bucket_of = format!("date_trunc('{unit}', t, 'UTC')");
        let mut sql = Sql::default();
        let partial = match (query.limiter_id, levels.first()) {
            (None, Some(&level)) => {
                // All limiters: whole buckets come from the global roll-up of the bucket's
                // own level, with their distinct users. Buckets cut by the range's edges are
                // made of finer pieces; their distinct users are counted over those pieces.
                sql.push(&format!(
                    "SELECT {bucket_of} AS b, {SUMS}, COALESCE(SUM(users), 0)::bigint FROM ("
                ));
                global_rows_sql(&mut sql, &segs, Some(level))?;
                sql.push(") x GROUP BY 1 ORDER BY 1");
                partial_buckets(&segs, level, width)
            }
            _ => {
                sql.push(&format!("SELECT {bucket_of} AS b, {SUMS}, {USERS} FROM ("));
                rows_sql(&mut sql, query.limiter_id, &segs)?;
                sql.push(") x GROUP BY 1 ORDER BY 1");
                Vec::new()
            }
        };
        let rows = self.fetch_all(sql).await?;
        let mut buckets = rows
            .iter()
            .map(|r| {
                Ok(UsageBucket {
                    start: r.try_get(0)?,
                    totals: totals_at(r, 1)?,
                })
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(PostgresStoreError::from)?;
        for (start, pieces) in partial {
            if let Some(b) = buckets
                .iter_mut()
                .find(|b| b.start.timestamp_micros() == start)
            {
                let mut sql = Sql::default();
                global_users_sql(&mut sql, &pieces)?;
                let row = self.fetch_one(sql).await?;
                let n: i64 = row.try_get(0).map_err(PostgresStoreError::from)?;
                b.totals.distinct_users = uncount(n);
            }
        }
        Ok(buckets)
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        self.records(query, None, limit, true).await
    }

    async fn refusals(
        &self,
        query: &UsageQuery,
    ) -> Result<Vec<budget_core::refusal::RefusalGroup>> {
        self.refusals_sum(query).await
    }

    async fn usage_page(
        &self,
        query: &UsageQuery,
        after: Option<budget_core::store::UsageCursor>,
        limit: usize,
    ) -> Result<Vec<UsageRecord>> {
        self.records(query, after, limit, false).await
    }
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

impl PostgresStore {
    /// The records matching `query` in `(at, id)` order (`newest_first`: reversed), after
    /// the cursor `after` when given (oldest first only), at most `limit`.
    async fn records(
        &self,
        query: &UsageQuery,
        after: Option<budget_core::store::UsageCursor>,
        limit: usize,
        newest_first: bool,
    ) -> Result<Vec<UsageRecord>> {
        self.read_barrier().await?;
        let (lo, hi) = bounds(query);
        let mut sql = Sql::default();
        sql.push(&format!(
            "SELECT {EVENT_COLUMNS} FROM usage_events WHERE TRUE"
        ));
        sql.range(
            "at",
            &Segment {
                source: Source::Raw,
                lo,
                hi,
            },
        )?;
        if let Some(l) = query.limiter_id {
            sql.push(" AND limiter_id = ");
            sql.bind(l.0)?;
        }
        if let Some(c) = after {
            // `at >= cursor` bounds the index range on `at`; the row comparison breaks ties.
            sql.push(" AND at >= ");
            sql.bind(c.at)?;
            sql.push(" AND (at, id) > (");
            sql.bind(c.at)?;
            sql.push(", ");
            sql.bind(c.id)?;
            sql.push(")");
        }
        sql.push(if newest_first {
            " ORDER BY at DESC, id DESC LIMIT "
        } else {
            " ORDER BY at, id LIMIT "
        });
        sql.bind(i64::try_from(limit).unwrap_or(i64::MAX))?;
        let rows = self.fetch_all(sql).await?;
        rows.iter().map(|r| Ok(record_from_row(r)?)).collect()
    }
}

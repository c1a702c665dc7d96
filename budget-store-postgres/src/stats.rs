//! Statistics over every replica's usage: window spend from the budget rows and leases,
//! totals, breakdowns, series and recent records from `usage_events`.

use async_trait::async_trait;
use budget_core::store::{
    BucketSize, CounterKey, Error, GroupBy, Result, UsageBucket, UsageGroup, UsageQuery,
    UsageRecord, UsageStats, UsageTotals, WindowSpend,
};
use budget_core::Money;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Arguments, Row};

use crate::rows::{record_from_row, uncount, EVENT_COLUMNS};
use crate::tasks::timed;
use crate::{PostgresStore, PostgresStoreError};

/// The summed columns, in [`totals_at`] order.
const SUMS: &str = "COUNT(*)::bigint, COALESCE(SUM(prompt_tokens), 0)::bigint, \
     COALESCE(SUM(cached_tokens), 0)::bigint, COALESCE(SUM(completion_tokens), 0)::bigint, \
     COALESCE(SUM(reasoning_tokens), 0)::bigint, COALESCE(SUM(cost), 0)::bigint, \
     COUNT(*) FILTER (WHERE unpriced)::bigint, COUNT(*) FILTER (WHERE estimated)::bigint, \
     COUNT(*) FILTER (WHERE status >= 400)::bigint, \
     COUNT(DISTINCT NULLIF(\"user\", ''))::bigint";

fn totals_at(row: &PgRow, first: usize) -> std::result::Result<UsageTotals, sqlx::Error> {
    let n = |i: usize| row.try_get::<i64, _>(first + i).map(uncount);
    let prompt = n(1)?;
    let completion = n(3)?;
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

/// `WHERE …` for a query, with its arguments.
fn filter(query: &UsageQuery) -> std::result::Result<(String, PgArguments), sqlx::Error> {
    let mut args = PgArguments::default();
    let mut clauses = Vec::new();
    if let Some(l) = query.limiter_id {
        args.add(l.0).map_err(sqlx::Error::Encode)?;
        clauses.push(format!("limiter_id = ${}", args.len()));
    }
    if let Some(f) = query.from {
        args.add(f).map_err(sqlx::Error::Encode)?;
        clauses.push(format!("at >= ${}", args.len()));
    }
    if let Some(t) = query.to {
        args.add(t).map_err(sqlx::Error::Encode)?;
        clauses.push(format!("at < ${}", args.len()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    Ok((sql, args))
}

impl PostgresStore {
    /// Statistics must see everything settled before they were asked for. While the database
    /// fails they answer from what is written.
    async fn read_barrier(&self) -> Result<()> {
        match self.flush_writer().await {
            Err(Error::Closed) => Err(Error::Closed),
            Ok(()) | Err(_) => Ok(()),
        }
    }

    async fn counter_cost(&self, key: &CounterKey) -> Result<Money> {
        let s = &self.inner;
        s.trip();
        let cost: i64 = timed(
            s,
            sqlx::query_scalar(
                "SELECT COALESCE(SUM(cost), 0)::bigint FROM usage_events \
                 WHERE limiter_id = $1 AND at >= $2 AND at < $3 AND ($4::text IS NULL OR \"user\" = $4)",
            )
            .bind(key.limiter_id.0)
            .bind(key.window.start)
            .bind(key.window.end)
            .bind(key.user.as_deref())
            .fetch_one(&s.pool),
        )
        .await?;
        Ok(Money::from_nanos(cost))
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
        let (w, args) = filter(query).map_err(PostgresStoreError::from)?;
        let s = &self.inner;
        s.trip();
        let sql = format!("SELECT {SUMS} FROM usage_events{w}");
        let row = timed(s, sqlx::query_with(&sql, args).fetch_one(&s.pool)).await?;
        Ok(totals_at(&row, 0).map_err(PostgresStoreError::from)?)
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        self.read_barrier().await?;
        let (w, mut args) = filter(query).map_err(PostgresStoreError::from)?;
        let key = match by {
            GroupBy::Limiter => "limiter_id::text",
            GroupBy::Model => "model",
            GroupBy::User => "\"user\"",
        };
        args.add(i64::try_from(limit).unwrap_or(i64::MAX))
            .map_err(|e| PostgresStoreError::from(sqlx::Error::Encode(e)))?;
        let sql = format!(
            "SELECT {key} AS k, {SUMS} FROM usage_events{w} GROUP BY 1 \
             ORDER BY 7 DESC, 1 ASC NULLS FIRST LIMIT ${}",
            args.len()
        );
        let s = &self.inner;
        s.trip();
        let rows = timed(s, sqlx::query_with(&sql, args).fetch_all(&s.pool)).await?;
        rows.iter()
            .map(|r| {
                Ok(UsageGroup {
                    key: r.try_get("k").map_err(PostgresStoreError::from)?,
                    totals: totals_at(r, 1).map_err(PostgresStoreError::from)?,
                })
            })
            .collect()
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        self.read_barrier().await?;
        let (w, args) = filter(query).map_err(PostgresStoreError::from)?;
        let unit = match bucket {
            BucketSize::Minute => "minute",
            BucketSize::Hour => "hour",
            BucketSize::Day => "day",
        };
        let sql = format!(
            "SELECT date_trunc('{unit}', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, {SUMS} \
             FROM usage_events{w} GROUP BY 1 ORDER BY 1"
        );
        let s = &self.inner;
        s.trip();
        let rows = timed(s, sqlx::query_with(&sql, args).fetch_all(&s.pool)).await?;
        rows.iter()
            .map(|r| {
                Ok(UsageBucket {
                    start: r.try_get("b").map_err(PostgresStoreError::from)?,
                    totals: totals_at(r, 1).map_err(PostgresStoreError::from)?,
                })
            })
            .collect()
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        self.read_barrier().await?;
        let (w, mut args) = filter(query).map_err(PostgresStoreError::from)?;
        args.add(i64::try_from(limit).unwrap_or(i64::MAX))
            .map_err(|e| PostgresStoreError::from(sqlx::Error::Encode(e)))?;
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM usage_events{w} ORDER BY at DESC, id DESC LIMIT ${}",
            args.len()
        );
        let s = &self.inner;
        s.trip();
        let rows = timed(s, sqlx::query_with(&sql, args).fetch_all(&s.pool)).await?;
        rows.iter()
            .map(|r| Ok(record_from_row(r)?))
            .collect()
    }
}

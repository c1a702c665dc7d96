//! Refusal counts: the `refusals` table (limiter × minute × reason), shared by every replica.

use budget_core::refusal::{minute_of, sort_groups, RefusalCount, RefusalGroup};
use budget_core::store::{Error, Result, UsageQuery};
use budget_core::LimiterId;
use sqlx::Row;

use crate::{PostgresStore, PostgresStoreError};

impl PostgresStore {
    pub(crate) async fn refusals_add(&self, counts: &[RefusalCount]) -> Result<()> {
        self.check_open()?;
        let known: Vec<&RefusalCount> = {
            let hot = self.inner.lock();
            counts
                .iter()
                .filter(|c| hot.limiters.get(c.limiter_id).is_some())
                .collect()
        };
        if known.is_empty() {
            return Ok(());
        }
        let s = &self.inner;
        s.trip();
        // One statement for the batch: arrays unnested, summed per key first (a batch may
        // name a key twice).
        let ids: Vec<uuid::Uuid> = known.iter().map(|c| c.limiter_id.0).collect();
        let minutes: Vec<chrono::DateTime<chrono::Utc>> =
            known.iter().map(|c| minute_of(c.minute)).collect();
        let reasons: Vec<&str> = known.iter().map(|c| c.reason.as_str()).collect();
        let ns: Vec<i64> = known
            .iter()
            .map(|c| i64::try_from(c.count).unwrap_or(i64::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO refusals (limiter_id, minute, reason, count) \
             SELECT l, m, r, SUM(n) FROM UNNEST($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[]) \
             AS t(l, m, r, n) GROUP BY l, m, r ORDER BY l, m, r \
             ON CONFLICT (limiter_id, minute, reason) DO UPDATE SET count = refusals.count + excluded.count",
        )
        .bind(&ids)
        .bind(&minutes)
        .bind(&reasons)
        .bind(&ns)
        .execute(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
        Ok(())
    }

    pub(crate) async fn refusals_sum(&self, q: &UsageQuery) -> Result<Vec<RefusalGroup>> {
        let s = &self.inner;
        s.trip();
        let rows = sqlx::query(
            "SELECT limiter_id, reason, SUM(count)::bigint AS n FROM refusals \
             WHERE ($1::timestamptz IS NULL OR minute >= $1) AND ($2::timestamptz IS NULL OR minute < $2) \
             AND ($3::uuid IS NULL OR limiter_id = $3) GROUP BY limiter_id, reason",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.limiter_id.map(|l| l.0))
        .fetch_all(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let reason: String = row.try_get("reason").map_err(PostgresStoreError::from)?;
            let n: i64 = row.try_get("n").map_err(PostgresStoreError::from)?;
            out.push(RefusalGroup {
                limiter_id: LimiterId(
                    row.try_get("limiter_id")
                        .map_err(PostgresStoreError::from)?,
                ),
                reason: reason
                    .parse()
                    .map_err(|e: String| Error::from(PostgresStoreError::corrupt("refusals", e)))?,
                count: u64::try_from(n).unwrap_or(0),
            });
        }
        sort_groups(&mut out);
        Ok(out)
    }
}

//! Refusal counts: the `refusals` table (limiter × minute × reason).

use budget_core::refusal::{minute_of, sort_groups, RefusalCount, RefusalGroup};
use budget_core::store::{Result, UsageQuery};
use sqlx::Row;

use crate::error::SqliteStoreError;
use crate::SqliteStore;

impl SqliteStore {
    pub(crate) async fn refusals_add(&self, counts: &[RefusalCount]) -> Result<()> {
        self.check_open()?;
        let known: Vec<&RefusalCount> = {
            let st = self.lock();
            counts
                .iter()
                .filter(|c| st.limiters.get(c.limiter_id).is_some())
                .collect()
        };
        if known.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .inner
            .pool
            .begin()
            .await
            .map_err(SqliteStoreError::from)?;
        for c in known {
            sqlx::query(
                "INSERT INTO refusals (limiter_id, minute, reason, count) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (limiter_id, minute, reason) DO UPDATE SET count = count + excluded.count",
            )
            .bind(c.limiter_id.to_string())
            .bind(minute_of(c.minute).timestamp_micros())
            .bind(c.reason.as_str())
            .bind(i64::try_from(c.count).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(SqliteStoreError::from)?;
        }
        tx.commit().await.map_err(SqliteStoreError::from)?;
        Ok(())
    }

    pub(crate) async fn refusals_sum(&self, q: &UsageQuery) -> Result<Vec<RefusalGroup>> {
        let mut sql = String::from(
            "SELECT limiter_id, reason, SUM(count) AS n FROM refusals WHERE minute >= ? AND minute < ?",
        );
        if q.limiter_id.is_some() {
            sql.push_str(" AND limiter_id = ?");
        }
        sql.push_str(" GROUP BY limiter_id, reason");
        let mut query = sqlx::query(&sql)
            .bind(q.from.map_or(i64::MIN, |t| t.timestamp_micros()))
            .bind(q.to.map_or(i64::MAX, |t| t.timestamp_micros()));
        if let Some(l) = q.limiter_id {
            query = query.bind(l.to_string());
        }
        let rows = query
            .fetch_all(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let corrupt = |e: String| SqliteStoreError::corrupt("refusals", e);
            let id: String = row.try_get("limiter_id").map_err(SqliteStoreError::from)?;
            let reason: String = row.try_get("reason").map_err(SqliteStoreError::from)?;
            let n: i64 = row.try_get("n").map_err(SqliteStoreError::from)?;
            out.push(RefusalGroup {
                limiter_id: id
                    .parse()
                    .map_err(|e| corrupt(format!("limiter_id {id:?}: {e}")))?,
                reason: reason.parse().map_err(corrupt)?,
                count: u64::try_from(n).unwrap_or(0),
            });
        }
        sort_groups(&mut out);
        Ok(out)
    }
}

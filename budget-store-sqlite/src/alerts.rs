//! The alert outbox: the `alert_outbox` table.

use budget_core::alert::{AlertDelivery, AlertEvent, AlertOutcome, AlertQuery, DeliveryStatus};
use budget_core::store::Result;
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::error::SqliteStoreError;
use crate::SqliteStore;

const COLUMNS: &str = "status, attempts, next_attempt_at, last_error, delivered_at, event";

impl SqliteStore {
    pub(crate) async fn alert_enqueue(&self, e: &AlertEvent) -> Result<bool> {
        self.check_open()?;
        let mut e = e.clone();
        e.at = budget_core::alert::to_micros(e.at);
        let json = serde_json::to_string(&e).map_err(budget_core::store::Error::backend)?;
        let done = sqlx::query(
            "INSERT INTO alert_outbox (id, limiter_id, created_at, status, next_attempt_at, event) \
             VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(e.limiter_id.to_string())
        .bind(e.at.timestamp_micros())
        .bind(e.at.timestamp_micros())
        .bind(json)
        .execute(&self.inner.pool)
        .await
        .map_err(SqliteStoreError::from)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn alert_claim(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AlertDelivery>> {
        self.check_open()?;
        // One statement: SQLite runs it under the database's write lock, so two claimers
        // never take the same row.
        let rows = sqlx::query(&format!(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = ? \
             WHERE seq IN (SELECT seq FROM alert_outbox WHERE status = 'pending' \
                           AND next_attempt_at <= ? ORDER BY next_attempt_at, seq LIMIT ?) \
             RETURNING {COLUMNS}"
        ))
        .bind(until.timestamp_micros())
        .bind(now.timestamp_micros())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(SqliteStoreError::from)?;
        let mut out = rows
            .iter()
            .map(|r| from_row(r).map_err(Into::into))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| {
            a.event
                .at
                .cmp(&b.event.at)
                .then(a.event.id.cmp(&b.event.id))
        });
        Ok(out)
    }

    pub(crate) async fn alert_finish(&self, id: &str, outcome: &AlertOutcome) -> Result<()> {
        self.check_open()?;
        let q = match outcome {
            AlertOutcome::Delivered(at) => sqlx::query(
                "UPDATE alert_outbox SET status = 'delivered', delivered_at = ? WHERE id = ?",
            )
            .bind(at.timestamp_micros()),
            AlertOutcome::Retry { at, error } => sqlx::query(
                "UPDATE alert_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
            )
            .bind(at.timestamp_micros())
            .bind(error.clone()),
            AlertOutcome::Failed { error } => sqlx::query(
                "UPDATE alert_outbox SET status = 'failed', last_error = ? WHERE id = ?",
            )
            .bind(error.clone()),
        };
        q.bind(id.to_owned())
            .execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        Ok(())
    }

    pub(crate) async fn alert_list(&self, q: &AlertQuery) -> Result<Vec<AlertDelivery>> {
        self.check_open()?;
        let mut sql = format!("SELECT {COLUMNS} FROM alert_outbox WHERE 1 = 1");
        if q.limiter_id.is_some() {
            sql.push_str(" AND limiter_id = ?");
        }
        if q.status.is_some() {
            sql.push_str(" AND status = ?");
        }
        sql.push_str(" ORDER BY seq DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(l) = q.limiter_id {
            query = query.bind(l.to_string());
        }
        if let Some(s) = q.status {
            query = query.bind(s.as_str());
        }
        let rows = query
            .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        rows.iter()
            .map(|r| from_row(r).map_err(Into::into))
            .collect()
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<AlertDelivery, SqliteStoreError> {
    const T: &str = "alert_outbox";
    let corrupt = |what: String| SqliteStoreError::corrupt(T, what);
    let instant = |us: i64| {
        DateTime::from_timestamp_micros(us).ok_or_else(|| corrupt(format!("instant {us}")))
    };
    let status: String = row.try_get("status")?;
    let event: String = row.try_get("event")?;
    Ok(AlertDelivery {
        event: serde_json::from_str(&event).map_err(|e| corrupt(format!("event: {e}")))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("status {status:?}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: instant(row.try_get("next_attempt_at")?)?,
        last_error: row.try_get("last_error")?,
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(instant)
            .transpose()?,
    })
}

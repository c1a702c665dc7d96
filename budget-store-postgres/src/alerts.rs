//! The alert outbox: the `alert_outbox` table, shared by every replica.

use budget_core::alert::{AlertDelivery, AlertEvent, AlertOutcome, AlertQuery, DeliveryStatus};
use budget_core::store::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::{PostgresStore, PostgresStoreError};

const COLUMNS: &str = "status, attempts, next_attempt_at, last_error, delivered_at, event";

impl PostgresStore {
    pub(crate) async fn alert_enqueue(&self, e: &AlertEvent) -> Result<bool> {
        self.check_open()?;
        let s = &self.inner;
        s.trip();
        let mut e = e.clone();
        e.at = budget_core::alert::to_micros(e.at);
        let json = serde_json::to_value(&e).map_err(Error::backend)?;
        let done = sqlx::query(
            "INSERT INTO alert_outbox (id, limiter_id, created_at, status, next_attempt_at, event) \
             VALUES ($1, $2, $3, 'pending', $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&e.id)
        .bind(e.limiter_id.0)
        .bind(e.at)
        .bind(json)
        .execute(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn alert_claim(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<AlertDelivery>> {
        self.check_open()?;
        let s = &self.inner;
        s.trip();
        // SKIP LOCKED: replicas claiming at once take different rows.
        let rows = sqlx::query(&format!(
            "UPDATE alert_outbox o SET attempts = o.attempts + 1, next_attempt_at = $1 \
             FROM (SELECT seq FROM alert_outbox WHERE status = 'pending' AND next_attempt_at <= $2 \
                   ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED) due \
             WHERE o.seq = due.seq RETURNING o.seq, {}",
            COLUMNS
                .split(", ")
                .map(|c| format!("o.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(until)
        .bind(now)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
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
        let s = &self.inner;
        s.trip();
        let q = match outcome {
            AlertOutcome::Delivered(at) => sqlx::query(
                "UPDATE alert_outbox SET status = 'delivered', delivered_at = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(*at),
            AlertOutcome::Retry { at, error } => sqlx::query(
                "UPDATE alert_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(*at)
            .bind(error),
            AlertOutcome::Failed { error } => sqlx::query(
                "UPDATE alert_outbox SET status = 'failed', last_error = $2 WHERE id = $1",
            )
            .bind(id)
            .bind(error),
        };
        q.execute(&s.pool).await.map_err(PostgresStoreError::from)?;
        Ok(())
    }

    pub(crate) async fn alert_list(&self, q: &AlertQuery) -> Result<Vec<AlertDelivery>> {
        let s = &self.inner;
        s.trip();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM alert_outbox \
             WHERE ($1::uuid IS NULL OR limiter_id = $1) AND ($2::text IS NULL OR status = $2) \
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(q.limiter_id.map(|l| l.0))
        .bind(q.status.map(DeliveryStatus::as_str))
        .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
        .fetch_all(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
        rows.iter()
            .map(|r| from_row(r).map_err(Into::into))
            .collect()
    }
}

fn from_row(row: &sqlx::postgres::PgRow) -> std::result::Result<AlertDelivery, PostgresStoreError> {
    let status: String = row.try_get("status")?;
    let event: serde_json::Value = row.try_get("event")?;
    let corrupt = |reason: String| PostgresStoreError::Corrupt {
        table: "alert_outbox",
        reason,
    };
    Ok(AlertDelivery {
        event: serde_json::from_value(event).map_err(|e| corrupt(format!("event: {e}")))?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("status {status:?}")))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

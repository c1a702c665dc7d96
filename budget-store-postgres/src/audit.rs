//! The audit trail: the append-only `audit_log` table.

use budget_core::audit::{AuditEntry, AuditQuery};
use budget_core::store::{Error, Result};
use budget_core::LimiterId;
use sqlx::Row;

use crate::{PostgresStore, PostgresStoreError};

impl PostgresStore {
    pub(crate) async fn audit_append(&self, e: &AuditEntry) -> Result<()> {
        self.check_open()?;
        let s = &self.inner;
        s.trip();
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, client, action, limiter_id, target, before, after) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.id)
        .bind(e.at)
        .bind(&e.actor)
        .bind(&e.client)
        .bind(&e.action)
        .bind(e.limiter_id.map(|l| l.0))
        .bind(&e.target)
        .bind(&e.before)
        .bind(&e.after)
        .execute(&s.pool)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::Conflict(format!("audit entry {} already exists", e.id))
            }
            _ => PostgresStoreError::from(err).into(),
        })?;
        Ok(())
    }

    pub(crate) async fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let s = &self.inner;
        s.trip();
        let rows = sqlx::query(
            "SELECT id, at, actor, client, action, limiter_id, target, before, after FROM audit_log \
             WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2) \
             AND ($3::uuid IS NULL OR limiter_id = $3) AND ($4::text IS NULL OR actor = $4) \
             ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(q.limiter_id.map(|l| l.0))
        .bind(&q.actor)
        .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
        .fetch_all(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?;
        rows.iter()
            .map(|r| -> std::result::Result<AuditEntry, PostgresStoreError> {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    client: r.try_get("client")?,
                    action: r.try_get("action")?,
                    limiter_id: r
                        .try_get::<Option<uuid::Uuid>, _>("limiter_id")?
                        .map(LimiterId),
                    target: r.try_get("target")?,
                    before: r.try_get("before")?,
                    after: r.try_get("after")?,
                })
            })
            .map(|r| r.map_err(Error::from))
            .collect()
    }
}

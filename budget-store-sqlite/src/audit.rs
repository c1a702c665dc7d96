//! The audit trail: the append-only `audit_log` table.

use budget_core::audit::{AuditEntry, AuditQuery};
use budget_core::store::Result;
use chrono::DateTime;
use sqlx::Row;

use crate::error::SqliteStoreError;
use crate::SqliteStore;

fn json(v: &Option<serde_json::Value>) -> Option<String> {
    v.as_ref().map(serde_json::Value::to_string)
}

impl SqliteStore {
    pub(crate) async fn audit_append(&self, e: &AuditEntry) -> Result<()> {
        self.check_open()?;
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, client, action, limiter_id, target, before, after) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(e.id.to_string())
        .bind(e.at.timestamp_micros())
        .bind(&e.actor)
        .bind(&e.client)
        .bind(&e.action)
        .bind(e.limiter_id.map(|l| l.to_string()))
        .bind(&e.target)
        .bind(json(&e.before))
        .bind(json(&e.after))
        .execute(&self.inner.pool)
        .await
        .map_err(SqliteStoreError::from)?;
        Ok(())
    }

    pub(crate) async fn audit_list(&self, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut sql = String::from(
            "SELECT id, at, actor, client, action, limiter_id, target, before, after \
             FROM audit_log WHERE at >= ? AND at < ?",
        );
        if q.limiter_id.is_some() {
            sql.push_str(" AND limiter_id = ?");
        }
        if q.actor.is_some() {
            sql.push_str(" AND actor = ?");
        }
        sql.push_str(" ORDER BY at DESC, id DESC LIMIT ?");
        let mut query = sqlx::query(&sql)
            .bind(q.from.map_or(i64::MIN, |t| t.timestamp_micros()))
            .bind(q.to.map_or(i64::MAX, |t| t.timestamp_micros()));
        if let Some(l) = q.limiter_id {
            query = query.bind(l.to_string());
        }
        if let Some(a) = &q.actor {
            query = query.bind(a.clone());
        }
        let rows = query
            .bind(i64::try_from(q.limit).unwrap_or(i64::MAX))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        rows.iter()
            .map(|row| from_row(row).map_err(Into::into))
            .collect()
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<AuditEntry, SqliteStoreError> {
    const T: &str = "audit_log";
    let corrupt = |what: String| SqliteStoreError::corrupt(T, what);
    let id: String = row.try_get("id")?;
    let at: i64 = row.try_get("at")?;
    let parse_json = |c: &str| -> std::result::Result<Option<serde_json::Value>, SqliteStoreError> {
        row.try_get::<Option<String>, _>(c)?
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(format!("{c}: {e}"))))
            .transpose()
    };
    Ok(AuditEntry {
        id: id.parse().map_err(|e| corrupt(format!("id {id:?}: {e}")))?,
        at: DateTime::from_timestamp_micros(at).ok_or_else(|| corrupt(format!("at {at}")))?,
        actor: row.try_get("actor")?,
        client: row.try_get("client")?,
        action: row.try_get("action")?,
        limiter_id: row
            .try_get::<Option<String>, _>("limiter_id")?
            .map(|s| {
                s.parse()
                    .map_err(|e| corrupt(format!("limiter_id {s:?}: {e}")))
            })
            .transpose()?,
        target: row.try_get("target")?,
        before: parse_json("before")?,
        after: parse_json("after")?,
    })
}

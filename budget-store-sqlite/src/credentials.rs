//! Upstream credentials: the `credentials` table, mirrored in memory for the hot path.

use budget_core::credential::{Credential, CredentialId, SealedSecret};
use budget_core::store::Result;
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::error::SqliteStoreError;
use crate::SqliteStore;

const COLUMNS: &str = "id, name, kind, organization, project, sealed, hint, fingerprint, \
                       created_at, updated_at, rotated_at";

/// Every stored credential (at open).
pub(crate) async fn load(
    pool: &SqlitePool,
) -> std::result::Result<Vec<Credential>, SqliteStoreError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM credentials"))
        .fetch_all(pool)
        .await?
        .iter()
        .map(from_row)
        .collect()
}

fn from_row(row: &SqliteRow) -> std::result::Result<Credential, SqliteStoreError> {
    const T: &str = "credentials";
    let id: String = row.try_get("id")?;
    let kind: String = row.try_get("kind")?;
    let time = |c: &str| -> std::result::Result<DateTime<Utc>, SqliteStoreError> {
        let us: i64 = row.try_get(c)?;
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| SqliteStoreError::corrupt(T, format!("{c} {us} out of range")))
    };
    Ok(Credential {
        id: id
            .parse()
            .map_err(|e| SqliteStoreError::corrupt(T, format!("id {id:?}: {e}")))?,
        name: row.try_get("name")?,
        kind: kind
            .parse()
            .map_err(|e: String| SqliteStoreError::corrupt(T, e))?,
        organization: row.try_get("organization")?,
        project: row.try_get("project")?,
        sealed: SealedSecret(row.try_get("sealed")?),
        hint: row.try_get("hint")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        rotated_at: time("rotated_at")?,
    })
}

/// `c` with its times to the microsecond, as it reads back.
impl SqliteStore {
    pub(crate) async fn write_credential(&self, c: &Credential, new: bool) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        {
            let st = self.lock();
            if new {
                st.credentials.check_new(c)?;
            } else {
                st.credentials.check_update(c)?;
            }
        }
        let sql = if new {
            format!("INSERT INTO credentials ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
        } else {
            format!("UPDATE credentials SET ({COLUMNS}) = (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?")
        };
        let mut q = sqlx::query(&sql)
            .bind(c.id.to_string())
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(&c.organization)
            .bind(&c.project)
            .bind(&c.sealed.0)
            .bind(&c.hint)
            .bind(&c.fingerprint)
            .bind(c.created_at.timestamp_micros())
            .bind(c.updated_at.timestamp_micros())
            .bind(c.rotated_at.timestamp_micros());
        if !new {
            q = q.bind(c.id.to_string());
        }
        q.execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        self.lock().credentials.put(c.normalized());
        Ok(())
    }

    pub(crate) async fn remove_credential(&self, id: CredentialId) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        {
            let st = self.lock();
            st.credentials.check_delete(id, &st.limiters)?;
        }
        sqlx::query("DELETE FROM credentials WHERE id = ?")
            .bind(id.to_string())
            .execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        self.lock().credentials.remove(id);
        Ok(())
    }

    pub(crate) fn credential(&self, id: CredentialId) -> Option<std::sync::Arc<Credential>> {
        self.lock().credentials.get(id)
    }

    pub(crate) fn credential_list(&self) -> Vec<Credential> {
        self.lock().credentials.list()
    }
}

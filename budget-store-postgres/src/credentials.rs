//! Upstream credentials: the `credentials` table, kept whole in every replica's memory.

use budget_core::credential::{Credential, CredentialId, SealedSecret};
use budget_core::store::{CredentialIndex, Error, Result};
use sqlx::Row;

use crate::store::Shared;
use crate::{PostgresStore, PostgresStoreError};

const COLUMNS: &str = "id, name, kind, organization, project, sealed, hint, fingerprint, \
                       created_at, updated_at, rotated_at";

/// The notification payload that announces a change of credential `id`.
pub(crate) const PREFIX: &str = "credential:";

impl Shared {
    /// Load every credential (there are few) and replace the in-memory copy.
    pub(crate) async fn refresh_credentials(&self) -> std::result::Result<(), PostgresStoreError> {
        self.trip();
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM credentials"))
            .fetch_all(&self.pool)
            .await?;
        let all = rows
            .iter()
            .map(from_row)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        self.lock().credentials = CredentialIndex::new(all);
        Ok(())
    }
}

fn from_row(row: &sqlx::postgres::PgRow) -> std::result::Result<Credential, PostgresStoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(Credential {
        id: CredentialId(row.try_get("id")?),
        name: row.try_get("name")?,
        kind: kind
            .parse()
            .map_err(|e: String| PostgresStoreError::corrupt("credentials", e))?,
        organization: row.try_get("organization")?,
        project: row.try_get("project")?,
        sealed: SealedSecret(row.try_get("sealed")?),
        hint: row.try_get("hint")?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rotated_at: row.try_get("rotated_at")?,
    })
}

/// `c` with its times to the microsecond, as it reads back.
impl PostgresStore {
    /// Insert (`new`) or replace a credential and tell every replica, in one transaction.
    pub(crate) async fn write_credential(&self, c: &Credential, new: bool) -> Result<()> {
        self.check_open()?;
        let s = &self.inner;
        let _crud = s.crud.lock().await;
        // The names and ids as the database has them now (another replica may have changed
        // them since this one last heard).
        s.refresh_credentials().await.map_err(Error::from)?;
        {
            let hot = s.lock();
            if new {
                hot.credentials.check_new(c)?;
            } else {
                hot.credentials.check_update(c)?;
            }
        }
        let sql = if new {
            format!(
                "INSERT INTO credentials ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )
        } else {
            format!(
                "UPDATE credentials SET ({COLUMNS}) = \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) WHERE id = $1"
            )
        };
        s.trip();
        let mut tx = s.pool.begin().await.map_err(PostgresStoreError::from)?;
        let done = sqlx::query(&sql)
            .bind(c.id.0)
            .bind(&c.name)
            .bind(c.kind.as_str())
            .bind(&c.organization)
            .bind(&c.project)
            .bind(&c.sealed.0)
            .bind(&c.hint)
            .bind(&c.fingerprint)
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.rotated_at)
            .execute(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(format!(
                    "credential id or name already in use: {:?}",
                    c.name
                )),
                _ => PostgresStoreError::from(e).into(),
            })?;
        if done.rows_affected() == 0 {
            return Err(Error::CredentialNotFound(c.id));
        }
        notify(&mut tx, c.id).await?;
        tx.commit().await.map_err(PostgresStoreError::from)?;
        s.lock().credentials.put(c.normalized());
        Ok(())
    }

    /// Delete a credential no live limiter names (checked in the database, in the same
    /// transaction, with the limiters locked against a concurrent attach).
    pub(crate) async fn remove_credential(&self, id: CredentialId) -> Result<()> {
        self.check_open()?;
        let s = &self.inner;
        let _crud = s.crud.lock().await;
        s.trip();
        let mut tx = s.pool.begin().await.map_err(PostgresStoreError::from)?;
        let users: Vec<String> = sqlx::query_scalar(
            "SELECT doc->>'name' FROM limiters WHERE deleted_at IS NULL \
             AND doc->'policy'->>'credential_id' = $1 ORDER BY created_at FOR UPDATE",
        )
        .bind(id.to_string())
        .fetch_all(&mut *tx)
        .await
        .map_err(PostgresStoreError::from)?;
        if !users.is_empty() {
            return Err(Error::Conflict(format!(
                "the credential is used by {} limiter(s): {}; detach it from them first",
                users.len(),
                users.join(", ")
            )));
        }
        let done = sqlx::query("DELETE FROM credentials WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(PostgresStoreError::from)?;
        if done.rows_affected() == 0 {
            return Err(Error::CredentialNotFound(id));
        }
        notify(&mut tx, id).await?;
        tx.commit().await.map_err(PostgresStoreError::from)?;
        s.lock().credentials.remove(id);
        Ok(())
    }
}

async fn notify(tx: &mut sqlx::PgConnection, id: CredentialId) -> Result<()> {
    sqlx::query("SELECT pg_notify('budget_limiters', $1)")
        .bind(format!("{PREFIX}{id}"))
        .execute(tx)
        .await
        .map_err(PostgresStoreError::from)?;
    Ok(())
}

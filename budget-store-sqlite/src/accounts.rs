//! Admin accounts: the `accounts` table, read per admin request (not cached).

use budget_core::account::{Account, Role};
use budget_core::store::{Error, Result};
use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::error::{is_unique_violation, SqliteStoreError};
use crate::SqliteStore;

const COLUMNS: &str =
    "id, username, role, password_hash, disabled, token_version, created_at, updated_at";

fn from_row(row: &SqliteRow) -> std::result::Result<Account, SqliteStoreError> {
    const T: &str = "accounts";
    let id: String = row.try_get("id")?;
    let role: String = row.try_get("role")?;
    let time = |c: &str| -> std::result::Result<DateTime<Utc>, SqliteStoreError> {
        let us: i64 = row.try_get(c)?;
        DateTime::from_timestamp_micros(us)
            .ok_or_else(|| SqliteStoreError::corrupt(T, format!("{c} {us} out of range")))
    };
    Ok(Account {
        id: id
            .parse()
            .map_err(|e| SqliteStoreError::corrupt(T, format!("id {id:?}: {e}")))?,
        username: row.try_get("username")?,
        role: role
            .parse::<Role>()
            .map_err(|e| SqliteStoreError::corrupt(T, e))?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get("disabled")?,
        token_version: row.try_get("token_version")?,
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
    })
}

/// A unique violation as the conflict it is; other errors as usual.
fn conflict(username: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| {
        if is_unique_violation(&e) {
            Error::Conflict(format!("an account named {username:?} already exists"))
        } else {
            SqliteStoreError::from(e).into()
        }
    }
}

impl SqliteStore {
    pub(crate) async fn account_create(&self, a: &Account) -> Result<()> {
        self.check_open()?;
        a.validate()?;
        sqlx::query(&format!(
            "INSERT INTO accounts ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(a.id.to_string())
        .bind(&a.username)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(a.disabled)
        .bind(a.token_version)
        .bind(a.created_at.timestamp_micros())
        .bind(a.updated_at.timestamp_micros())
        .execute(&self.inner.pool)
        .await
        .map_err(conflict(&a.username))?;
        Ok(())
    }

    pub(crate) async fn account_list(&self) -> Result<Vec<Account>> {
        self.check_open()?;
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts ORDER BY username COLLATE BINARY, id"
        ))
        .fetch_all(&self.inner.pool)
        .await
        .map_err(SqliteStoreError::from)?
        .iter()
        .map(|r| from_row(r).map_err(Into::into))
        .collect()
    }

    pub(crate) async fn account_find(&self, username: &str) -> Result<Option<Account>> {
        self.check_open()?;
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE username = ? COLLATE NOCASE"
        ))
        .bind(username)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(SqliteStoreError::from)?
        .map(|r| from_row(&r).map_err(Into::into))
        .transpose()
    }

    pub(crate) async fn account_update(&self, a: &Account) -> Result<()> {
        self.check_open()?;
        a.validate()?;
        let done = sqlx::query(
            "UPDATE accounts SET username = ?, role = ?, password_hash = ?, disabled = ?, \
             token_version = ?, created_at = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&a.username)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(a.disabled)
        .bind(a.token_version)
        .bind(a.created_at.timestamp_micros())
        .bind(a.updated_at.timestamp_micros())
        .bind(a.id.to_string())
        .execute(&self.inner.pool)
        .await
        .map_err(conflict(&a.username))?;
        if done.rows_affected() == 0 {
            return Err(Error::AccountNotFound(a.id));
        }
        Ok(())
    }
}

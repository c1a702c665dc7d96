//! Admin accounts: the `accounts` table, read per admin request (not cached, so a disabled
//! account or a new password holds on every replica at once).

use budget_core::account::{Account, AccountId, Role};
use budget_core::store::{Error, Result};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::{PostgresStore, PostgresStoreError};

const COLUMNS: &str =
    "id, username, role, password_hash, disabled, token_version, created_at, updated_at";

fn from_row(r: &PgRow) -> std::result::Result<Account, PostgresStoreError> {
    let role: String = r.try_get("role")?;
    Ok(Account {
        id: AccountId(r.try_get("id")?),
        username: r.try_get("username")?,
        role: role
            .parse::<Role>()
            .map_err(|e| PostgresStoreError::corrupt("accounts", e))?,
        password_hash: r.try_get("password_hash")?,
        disabled: r.try_get("disabled")?,
        token_version: r.try_get("token_version")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// A unique violation as the conflict it is; other errors as usual.
fn conflict(username: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict(format!("an account named {username:?} already exists"))
        }
        _ => PostgresStoreError::from(e).into(),
    }
}

impl PostgresStore {
    pub(crate) async fn account_create(&self, a: &Account) -> Result<()> {
        self.check_open()?;
        a.validate()?;
        let s = &self.inner;
        s.trip();
        sqlx::query(&format!(
            "INSERT INTO accounts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(a.id.0)
        .bind(&a.username)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(a.disabled)
        .bind(a.token_version)
        .bind(a.created_at)
        .bind(a.updated_at)
        .execute(&s.pool)
        .await
        .map_err(conflict(&a.username))?;
        Ok(())
    }

    pub(crate) async fn account_list(&self) -> Result<Vec<Account>> {
        self.check_open()?;
        let s = &self.inner;
        s.trip();
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts ORDER BY username COLLATE \"C\", id"
        ))
        .fetch_all(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?
        .iter()
        .map(|r| from_row(r).map_err(Error::from))
        .collect()
    }

    pub(crate) async fn account_find(&self, username: &str) -> Result<Option<Account>> {
        self.check_open()?;
        let s = &self.inner;
        s.trip();
        sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE lower(username) = lower($1)"
        ))
        .bind(username)
        .fetch_optional(&s.pool)
        .await
        .map_err(PostgresStoreError::from)?
        .map(|r| from_row(&r).map_err(Error::from))
        .transpose()
    }

    pub(crate) async fn account_update(&self, a: &Account) -> Result<()> {
        self.check_open()?;
        a.validate()?;
        let s = &self.inner;
        s.trip();
        let done = sqlx::query(
            "UPDATE accounts SET username = $1, role = $2, password_hash = $3, disabled = $4, \
             token_version = $5, created_at = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(&a.username)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(a.disabled)
        .bind(a.token_version)
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(a.id.0)
        .execute(&s.pool)
        .await
        .map_err(conflict(&a.username))?;
        if done.rows_affected() == 0 {
            return Err(Error::AccountNotFound(a.id));
        }
        Ok(())
    }
}

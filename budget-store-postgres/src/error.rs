//! [`PostgresStoreError`]: what opening or running the store can fail with.

/// Errors of the PostgreSQL store (they reach the store traits as
/// [`budget_core::store::Error::Backend`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresStoreError {
    /// The database could not be reached or opened.
    #[error("cannot open {url}: {reason}")]
    Open {
        /// The URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
    /// A query failed.
    #[error("PostgreSQL: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A row could not be read back.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Too much settled usage waits unsaved while the database fails: new reservations are
    /// refused until it is written.
    #[error(transparent)]
    Unsaved(#[from] budget_core::store::backlog::Unsaved),
    /// This replica's slice of a budget expired while the database could not be reached:
    /// requests are refused until it answers again.
    #[error("the budget database cannot be reached and this replica's lease on the budget has expired ({0}); refusing requests until it answers")]
    LeaseExpired(String),
}

impl PostgresStoreError {
    pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> Self {
        PostgresStoreError::Corrupt {
            table,
            reason: reason.into(),
        }
    }
}

impl From<PostgresStoreError> for budget_core::store::Error {
    fn from(e: PostgresStoreError) -> Self {
        budget_core::store::Error::backend(e)
    }
}

//! [`SqliteStoreError`]: what opening or running the SQLite store can fail with.

use std::path::PathBuf;

use budget_core::store::Error;

/// Everything the SQLite store can fail with. Converts into [`budget_core::store::Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqliteStoreError {
    /// The database file (or its folder) could not be created or opened.
    #[error("cannot open SQLite database at {}: {reason}", path.display())]
    Open {
        /// The file we tried to open.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// The location was not understood (e.g. an empty path).
    #[error("invalid SQLite location {0:?}: expected `sqlite:path`, `sqlite://path`, a plain path or `sqlite::memory:`")]
    InvalidLocation(String),
    /// Applying the embedded migrations failed.
    #[error("SQLite migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("SQLite error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A row could not be turned back into a domain value.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The background writer failed to commit (it keeps the usage queued and retries).
    #[error("usage writer failed: {0}")]
    Writer(String),
    /// The writer keeps failing and too much settled usage waits unsaved (see
    /// [`SqliteStoreOptions::with_max_unsaved_events`](crate::SqliteStoreOptions::with_max_unsaved_events)):
    /// new reservations are refused until it is written.
    #[error("usage cannot be saved ({error}): {events} settled usage event(s) unsaved, the oldest for {seconds} s; refusing new requests until they are written")]
    Unsaved {
        /// Events waiting.
        events: usize,
        /// Seconds the oldest has waited.
        seconds: u64,
        /// The writer's last error.
        error: String,
    },
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

impl From<budget_core::store::backlog::Unsaved> for SqliteStoreError {
    fn from(u: budget_core::store::backlog::Unsaved) -> Self {
        SqliteStoreError::Unsaved {
            events: u.events,
            seconds: u.seconds,
            error: u.error,
        }
    }
}

impl SqliteStoreError {
    pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> Self {
        SqliteStoreError::Corrupt {
            table,
            reason: reason.into(),
        }
    }
}

impl From<SqliteStoreError> for Error {
    fn from(e: SqliteStoreError) -> Self {
        match e {
            SqliteStoreError::Closed => Error::Closed,
            SqliteStoreError::Sqlx(sqlx::Error::PoolClosed) => Error::Closed,
            SqliteStoreError::Sqlx(ref s) if is_unique_violation(s) => {
                Error::Conflict(s.to_string())
            }
            other => Error::backend(other),
        }
    }
}

/// A UNIQUE or PRIMARY KEY constraint failed.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

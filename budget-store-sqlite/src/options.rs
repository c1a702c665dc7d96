//! [`SqliteStoreOptions`]: where the database lives and how the writer batches.

use std::path::PathBuf;
use std::time::Duration;

use crate::SqliteStoreError;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    /// A private in-memory database (one connection, gone when the store is).
    Memory,
    /// A file, created with its parent folder if missing.
    File(PathBuf),
}

impl Location {
    /// Understand `sqlite:usage_data.db`, `sqlite://path`, `sqlite:///abs/path`, a plain path,
    /// `sqlite::memory:` or `:memory:`. Query parameters (`?mode=rwc`) are ignored: the store
    /// always creates missing files.
    pub(crate) fn parse(s: &str) -> Result<Location, SqliteStoreError> {
        let t = s.trim();
        let rest = t
            .strip_prefix("sqlite://")
            .or_else(|| t.strip_prefix("sqlite:"))
            .unwrap_or(t);
        let rest = rest.split('?').next().unwrap_or_default();
        match rest {
            "" => Err(SqliteStoreError::InvalidLocation(s.to_owned())),
            ":memory:" => Ok(Location::Memory),
            path => Ok(Location::File(PathBuf::from(path))),
        }
    }
}

/// How to open a [`SqliteStore`](crate::SqliteStore): location, write batching and pool
/// knobs. The defaults suit a proxy on a small machine.
///
/// ```
/// use std::time::Duration;
/// use budget_store_sqlite::SqliteStoreOptions;
/// let options = SqliteStoreOptions::new("sqlite:usage_data.db")
///     .with_batch_size(500)
///     .with_flush_interval(Duration::from_millis(20));
/// assert_eq!(options.batch_size(), 500);
/// ```
#[derive(Debug, Clone)]
pub struct SqliteStoreOptions {
    pub(crate) location: String,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) max_connections: u32,
    pub(crate) busy_timeout: Duration,
    pub(crate) max_pending: usize,
    pub(crate) full_sync: bool,
    pub(crate) cache_kib: u32,
    pub(crate) max_page_count: Option<u32>,
    pub(crate) max_unsaved_events: usize,
    pub(crate) max_unsaved_age: Duration,
}

impl SqliteStoreOptions {
    /// Options for the database at `url_or_path` (`sqlite:usage_data.db`, `sqlite://path`,
    /// a plain path, or `sqlite::memory:`), with default knobs.
    pub fn new(url_or_path: impl Into<String>) -> Self {
        SqliteStoreOptions {
            location: url_or_path.into(),
            batch_size: 1_000,
            flush_interval: Duration::from_millis(100),
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            max_pending: 250_000,
            full_sync: false,
            cache_kib: 32 * 1024,
            max_page_count: None,
            max_unsaved_events: 10_000,
            max_unsaved_age: Duration::from_secs(60),
        }
    }

    /// How many usage events make a batch (default 1 000): the writer commits when it holds
    /// this many and nothing more is queued. While a backlog is queued it keeps filling the
    /// batch (group commit) up to 8 times this size, never past the batch's flush interval.
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite::memory:").with_batch_size(5_000);
    /// assert_eq!(o.batch_size(), 5_000);
    /// ```
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// The longest a settled event waits in memory before its batch is committed (default
    /// and maximum 100 ms; a kill -9 can lose at most this much settled usage).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite::memory:").with_flush_interval(Duration::from_secs(5));
    /// assert_eq!(o.flush_interval(), Duration::from_millis(100), "capped");
    /// ```
    pub fn with_flush_interval(mut self, d: Duration) -> Self {
        self.flush_interval = d.clamp(Duration::from_millis(1), Duration::from_millis(100));
        self
    }

    /// Connections in the pool used for statistics and limiter writes (default 4; an
    /// in-memory database always uses one).
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_max_connections(8);
    /// ```
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a statement waits for another process's write lock (default 5 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_busy_timeout(Duration::from_secs(30));
    /// ```
    pub fn with_busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Settled events waiting for the writer above which `settle` and `record_usage` wait
    /// for a flush before returning (back-pressure; default 250 000).
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_max_pending(10_000);
    /// ```
    pub fn with_max_pending(mut self, n: usize) -> Self {
        self.max_pending = n.max(1);
        self
    }

    /// `PRAGMA synchronous = FULL` instead of `NORMAL`: every commit is fsynced, so a power
    /// failure (not just a process crash) loses nothing committed. Costs a disk sync per batch.
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_full_sync(true);
    /// ```
    pub fn with_full_sync(mut self, on: bool) -> Self {
        self.full_sync = on;
        self
    }

    /// SQLite page cache per connection, in KiB (default 32 MiB).
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_cache_kib(8 * 1024);
    /// ```
    pub fn with_cache_kib(mut self, kib: u32) -> Self {
        self.cache_kib = kib;
        self
    }

    /// While the writer fails to commit (a full disk, a broken file), [`reserve`] fails once
    /// this many settled events are waiting unsaved (default 10 000), so the proxy refuses
    /// new requests (503) instead of spending money it cannot record. Usage already settled
    /// stays queued and is written once the writer recovers.
    ///
    /// [`reserve`]: budget_core::BudgetStore::reserve
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_max_unsaved_events(1_000);
    /// assert_eq!(o.max_unsaved_events(), 1_000);
    /// ```
    pub fn with_max_unsaved_events(mut self, n: usize) -> Self {
        self.max_unsaved_events = n.max(1);
        self
    }

    /// While the writer fails to commit, [`reserve`] also fails once the oldest unsaved event
    /// has waited this long (default 60 s).
    ///
    /// [`reserve`]: budget_core::BudgetStore::reserve
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_max_unsaved_age(Duration::from_secs(10));
    /// assert_eq!(o.max_unsaved_age(), Duration::from_secs(10));
    /// ```
    pub fn with_max_unsaved_age(mut self, d: Duration) -> Self {
        self.max_unsaved_age = d;
        self
    }

    /// `PRAGMA max_page_count` on every connection: the database file may not grow past this
    /// many pages (never below its size when a connection opens). A size quota, and a way to
    /// rehearse a full disk without filling one: writes that need more room fail with
    /// `SQLITE_FULL` (default: no limit).
    ///
    /// ```
    /// # use budget_store_sqlite::SqliteStoreOptions;
    /// let o = SqliteStoreOptions::new("sqlite:x.db").with_max_page_count(262_144); // 1 GiB of 4 KiB pages
    /// ```
    pub fn with_max_page_count(mut self, pages: u32) -> Self {
        self.max_page_count = Some(pages.max(1));
        self
    }

    /// The configured limit on unsaved events while the writer fails.
    pub fn max_unsaved_events(&self) -> usize {
        self.max_unsaved_events
    }

    /// The configured limit on the age of unsaved usage while the writer fails.
    pub fn max_unsaved_age(&self) -> Duration {
        self.max_unsaved_age
    }

    /// The configured batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The configured flush interval.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let f = |s: &str| Location::parse(s).unwrap();
        assert_eq!(
            f("sqlite:usage_data.db"),
            Location::File("usage_data.db".into())
        );
        assert_eq!(f("sqlite://data/u.db"), Location::File("data/u.db".into()));
        assert_eq!(
            f("sqlite:///abs/u.db?mode=rwc"),
            Location::File("/abs/u.db".into())
        );
        assert_eq!(f("plain/path.db"), Location::File("plain/path.db".into()));
        assert_eq!(f("sqlite::memory:"), Location::Memory);
        assert_eq!(f(":memory:"), Location::Memory);
        assert!(Location::parse("sqlite:").is_err());
    }
}

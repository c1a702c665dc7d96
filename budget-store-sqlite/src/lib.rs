//! `budget-store-sqlite`: the embedded default store of the budget proxy, on SQLite: the
//! complete contract ([`BudgetStore`], [`LimiterCatalog`], [`UsageStats`]: a [`Store`]).
//!
//! One file (`DATABASE_URL=sqlite:usage_data.db`) holds every limiter and every metered
//! request. The store is built so that a budget decision never waits for the disk and the
//! dashboard's questions stay fast after months of traffic:
//!
//! - **Hot path in memory.** [`reserve`], [`settle`] and [`release`] decide from in-memory
//!   counters (budget-core's [`Ledger`]: per limiter window, all or nothing over every budget
//!   a request counts in), authoritative for this process. A counter is summed from the
//!   database the first time the process touches it (the current windows at open). Limiters are cached too; every limiter write goes to the database first.
//! - **One writer, batched.** Settled usage goes through a channel to a single writer task
//!   that commits batches of 1 000 events (up to 8 000 while a backlog is queued: group
//!   commit), at most 100 ms after the first one arrived (both configurable, see
//!   [`SqliteStoreOptions`]). [`flush`] waits for it; [`close`] flushes and stops it.
//! - **Roll-ups.** Each batch's transaction also upserts per limiter × model × user roll-ups
//!   by hour, UTC day and UTC month, plus global ones (one row per bucket, with its distinct
//!   users, kept exact through per-bucket user sets), so totals, breakdowns and series read a
//!   few thousand roll-up rows at most; only the unaligned edges of a range (less than an hour
//!   each) and minute series read raw events. Statistics first wait for the writer, so they see everything
//!   settled before they were asked for.
//! - **Embedded migrations** ([`migrate`]), run on open; older databases upgrade in place.
//!   WAL, `synchronous = NORMAL`, a busy timeout and foreign keys are set on every connection.
//! - **Soft delete**: a deleted limiter's code stops working at once and its usage stays for
//!   statistics; purging removes the limiter, its events and its roll-ups.
//!
//! Money is stored as INTEGER nano-dollars, times as INTEGER unix microseconds (UTC), ids as
//! TEXT. The schema and operations (tuning, backups) are described in `docs/storage-sqlite.md`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use budget_core::store::Store;
//! use budget_store_sqlite::SqliteStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let sqlite = SqliteStore::open("sqlite:usage_data.db").await?;
//! let store: Arc<dyn Store> = Arc::new(sqlite.clone());
//! let limiters = store.list_limiters(false).await?;
//! println!("{} limiters", limiters.len());
//! // ... serve requests with `store` ...
//! sqlite.close().await; // commit the last batch before exiting
//! # Ok(())
//! # }
//! ```
//!
//! # Durability: what a `kill -9` can lose
//!
//! A settled charge is in memory (and counts against the budget at once) until the writer
//! commits its batch, at most `flush_interval` (100 ms by default) later, or when anything
//! calls [`flush`], [`close`] or a statistics query. A crash or `kill -9` of the process loses
//! **at most the usage settled since the last commit**: the last unflushed batch. Everything
//! committed survives (WAL with `synchronous = NORMAL` is safe against process crashes; against
//! power loss or an OS crash the last commits before a checkpoint can roll back unless
//! [`SqliteStoreOptions::with_full_sync`] is on). Reservations in flight are not persisted: on
//! restart their holds are gone and the counters equal the committed spend.
//!
//! Dropping the last handle without [`close`] asks the writer to commit what is queued, but if
//! the runtime or the process ends first, that last batch is lost: call [`close`] on shutdown.
//!
//! # When commits fail (a full disk)
//!
//! The writer has a connection of its own and writes each batch between an explicit
//! `BEGIN IMMEDIATE` and a checked `COMMIT`; after any error it rolls back and replaces the
//! connection, so no connection is ever left inside a transaction. Usage whose commit failed
//! stays queued (still counted against budgets) and is retried every second; it leaves the
//! queue only when a `COMMIT` succeeded, so after recovery every event is written once.
//! Meanwhile statistics answer from what is committed, [`write_status`] reports the unsaved
//! events and the failures (the server's `/health` and metrics read it), and once more than
//! [`with_max_unsaved_events`] events (default 10 000) or [`with_max_unsaved_age`] (default 60 s)
//! of usage waits unsaved, [`reserve`] fails, so a proxy refuses new requests instead of
//! spending money it cannot record.
//!
//! [`write_status`]: budget_core::BudgetStore::write_status
//! [`with_max_unsaved_events`]: SqliteStoreOptions::with_max_unsaved_events
//! [`with_max_unsaved_age`]: SqliteStoreOptions::with_max_unsaved_age
//!
//! # Dependencies
//!
//! - `sqlx` (features `sqlite`, `runtime-tokio`, `migrate`, `macros`): the driver, the pool,
//!   and `migrate!` to embed `migrations/` in the binary. SQLite itself is compiled in
//!   (bundled), so no system library is needed. Queries are built at run time; no database
//!   is needed to compile.
//! - `tokio`: the writer task, its channel and timers (`sqlx` runs on Tokio anyway).
//! - `serde` / `serde_json`: to store enums (`Endpoint`, `Provider`, …) under the same
//!   snake_case names as the JSON API, without a second list of names to keep in sync.
//! - `chrono`, `chrono-tz`, `uuid`: the domain's time, time-zone and id types.
//! - `tracing`: the writer logs failed commits with the usage waiting (it keeps it and
//!   retries), and the recovery.
//!
//! No HTTP dependency.
//!
//! [`BudgetStore`]: budget_core::BudgetStore
//! [`LimiterCatalog`]: budget_core::store::LimiterCatalog
//! [`UsageStats`]: budget_core::store::UsageStats
//! [`Store`]: budget_core::store::Store
//! [`Ledger`]: budget_core::store::Ledger
//! [`reserve`]: budget_core::BudgetStore::reserve
//! [`settle`]: budget_core::BudgetStore::settle
//! [`release`]: budget_core::BudgetStore::release
//! [`flush`]: budget_core::BudgetStore::flush
//! [`close`]: SqliteStore::close

#![deny(missing_docs)]

mod accounts;
mod alerts;
mod audit;
mod batch;
mod credentials;
mod error;
mod options;
mod refusals;
mod rows;
mod state;
mod stats;
mod store;
mod writer;

pub use error::SqliteStoreError;
pub use options::SqliteStoreOptions;
pub use store::SqliteStore;

use sqlx::SqlitePool;

/// Apply the embedded migrations (`migrations/` in this crate) that `pool`'s database has not
/// seen yet. Idempotent; [`SqliteStore::open`] runs it.
pub async fn migrate(pool: &SqlitePool) -> Result<(), SqliteStoreError> {
    sqlx::migrate!().run(pool).await?;
    Ok(())
}

/// Recompute every roll-up from the raw events, in one transaction: for tooling that wrote
/// `usage_events` directly (a bulk import, the benchmark). Not needed in normal operation.
/// Run it while no [`SqliteStore`] is writing to the file.
pub async fn rebuild_rollups(pool: &SqlitePool) -> Result<(), SqliteStoreError> {
    let mut tx = pool.begin().await?;
    for sql in [
        "DELETE FROM usage_users_hourly",
        "DELETE FROM usage_users_daily",
        "DELETE FROM usage_users_monthly",
        "DELETE FROM usage_global_hourly",
        "DELETE FROM usage_global_daily",
        "DELETE FROM usage_global_monthly",
        "DELETE FROM usage_hourly",
        "DELETE FROM usage_daily",
        "DELETE FROM usage_monthly",
        "INSERT INTO usage_hourly \
         SELECT limiter_id, (at / 3600000000) * 3600000000, IFNULL(model, ''), IFNULL(user, ''), \
                COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens), \
                SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(status >= 400) \
         FROM usage_events GROUP BY 1, 2, 3, 4",
        "INSERT INTO usage_daily \
         SELECT limiter_id, (hour_start / 86400000000) * 86400000000, model, user, \
                SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens), \
                SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors) \
         FROM usage_hourly GROUP BY 1, 2, 3, 4",
        "INSERT INTO usage_monthly \
         SELECT limiter_id, \
                CAST(strftime('%s', day_start / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000, \
                model, user, \
                SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens), \
                SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors) \
         FROM usage_daily GROUP BY 1, 2, 3, 4",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    // Inserting the roll-ups above filled the user sets (trigger); now the global sums, with
    // each bucket's users counted from its set.
    for (global, users, table, c) in [
        (
            "usage_global_hourly",
            "usage_users_hourly",
            "usage_hourly",
            "hour_start",
        ),
        (
            "usage_global_daily",
            "usage_users_daily",
            "usage_daily",
            "day_start",
        ),
        (
            "usage_global_monthly",
            "usage_users_monthly",
            "usage_monthly",
            "month_start",
        ),
    ] {
        let sql = format!(
            "INSERT INTO {global} \
             SELECT {c}, SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), \
                    SUM(completion_tokens), SUM(reasoning_tokens), SUM(cost), SUM(unpriced), \
                    SUM(estimated), SUM(errors), \
                    (SELECT COUNT(*) FROM {users} u WHERE u.{c} = r.{c}) \
             FROM {table} r GROUP BY {c}"
        );
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

//! `budget-store-postgres`: one budget shared by several `budget-server` replicas, on
//! PostgreSQL (14 or newer), strict across replicas, with few round trips.
//!
//! The complete store contract ([`BudgetStore`], [`LimiterCatalog`], [`UsageStats`]: a
//! [`Store`]), passing the same conformance suite as the other stores.
//!
//! # How replicas share a budget: leased slices
//!
//! Each budget counter (a limiter's window; an extra window; an end user's budget) is a row
//! in `budget_windows` with its `budget`, `spent` and `leased`. A replica does not ask the
//! database about every request. It asks for a **slice** — a lease row in `budget_leases`
//! with an amount `granted` to it — and admits requests from the slice in memory, with the
//! same rules as a single node (strict: `settled + held + amount ≤ slice`). The database
//! keeps `spent + leased ≤ budget`, so the sum of every replica's admissions cannot pass the
//! budget (strict), however many replicas there are.
//!
//! - **Sizes follow demand and shrink at the end.** A slice is about two seconds of the
//!   replica's recent demand, capped at a share of what is free (a half, a quarter, then a
//!   tenth as the budget fills, split among the replicas using it). When less than four
//!   requests' worth per replica is free, grants are exactly one request's worth and are given
//!   back as soon as the request ends, so the last dollars can be spent from any replica.
//! - **Unused money goes back.** A slice nobody used for two seconds is given back at the
//!   next report; a replica refused a grant while others hold unused money asks them (via
//!   `NOTIFY`) to give it back at once, and waits up to 1.5 s for it.
//! - **Exposure bounds a crash.** Each lease also has `exposed`: a durable upper bound of what
//!   the replica may have spent or hold in flight, raised in small steps (a quarter second of
//!   demand) ahead of admissions. If a replica dies, its lease expires after the TTL (15 s) and
//!   a grace (5 s); the next grant or a sweep **reclaims** it: `exposed − settled` is charged
//!   (what it may have spent without reporting), the rest returns to the pool.
//! - **Reports are fenced.** Usage is written in batches (every 100 ms) by `budget_apply`,
//!   exactly once (by record id), moving its cost from `leased` to `spent`. A record arriving
//!   for a reclaimed lease is first absorbed by what the reclaim charged for it, so no money
//!   is counted twice.
//! - **Database down.** A replica keeps admitting from slices it holds until its own deadline
//!   (80 % of the TTL after the last renewal, before anyone may reclaim them), then refuses
//!   (the server answers 503 with `Retry-After`). Settled usage queues in memory and is written
//!   once the database is back; past 10 000 events or 60 s unsaved, new requests are refused.
//! - **Changes reach every replica at once.** Every limiter change bumps its `change_seq` and
//!   sends `NOTIFY budget_limiters`; replicas reload it within milliseconds (and poll every
//!   second in case a notification was lost). A grant made from an out-of-date copy of a
//!   limiter is refused and retried with the current one.
//! - **No reset job.** Window rows are created when first needed (their spend summed from the
//!   usage already recorded in the window); old rows are history.
//!
//! Round trips at steady load: a report per second, a usage batch per 100 ms, and a grant or
//! exposure per slice step — about 0.015 per request at 1 000 requests per second.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use budget_core::store::Store;
//! use budget_store_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pg = PostgresStore::open("postgres://budget:secret@db:5432/budget").await?;
//! let store: Arc<dyn Store> = Arc::new(pg.clone());
//! // ... serve requests with `store` ...
//! pg.close().await; // write the last usage and give the slices back
//! # Ok(())
//! # }
//! ```
//!
//! Money is stored as BIGINT nano-dollars, times as `timestamptz`. Setup, tuning and backups
//! are described in `docs/storage-postgres.md`. No HTTP dependency.
//!
//! [`BudgetStore`]: budget_core::BudgetStore
//! [`LimiterCatalog`]: budget_core::store::LimiterCatalog
//! [`UsageStats`]: budget_core::store::UsageStats
//! [`Store`]: budget_core::store::Store

#![deny(missing_docs)]

mod accounts;
mod alerts;
mod audit;
mod credentials;
mod error;
mod options;
mod refusals;
mod rows;
mod slices;
mod stats;
mod store;
mod tasks;
#[cfg(feature = "test-cluster")]
pub mod testing;

pub use error::PostgresStoreError;
pub use options::PostgresStoreOptions;
pub use store::{redact_url, PostgresStore};

/// Apply the embedded migrations (`migrations/` in this crate) that the database has not seen
/// yet. Idempotent; [`PostgresStore::open`] runs it (several replicas starting at once take
/// turns: sqlx holds an advisory lock while migrating).
pub async fn migrate(pool: &sqlx::PgPool) -> Result<(), PostgresStoreError> {
    sqlx::migrate!().run(pool).await?;
    Ok(())
}

/// The README's example, compiled as a doctest so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

//! The storage contract: limiters, atomic budget reservations, usage records and statistics.
//!
//! A request's life in a store:
//!
//! 1. [`BudgetStore::reserve`] atomically checks the limiter's budget for the window the
//!    request falls in and, if admitted, *holds* an amount against it ([`Reservation`]).
//! 2. The request runs.
//! 3. [`BudgetStore::settle`] replaces the hold with the actual cost and records the usage, or
//!    [`BudgetStore::release`] drops the hold and charges nothing (the upstream failed).
//!
//! Spend of a window is, by definition, the sum of the costs of the usage records whose `at`
//! lies in that window; `settle` stamps the record with the reservation's time so a request is
//! charged to the window it was admitted in.
//!
//! Two enforcement modes ([`EnforcementMode`]):
//! - **soft**: admit while `spent + held < budget`; overspend is bounded by what is in flight.
//! - **strict**: admit only if `spent + held + amount <= budget`; spend never passes the budget
//!   as long as each request's cost stays within the amount reserved for it.
//!
//! Every store, ours and yours, runs the same conformance suite (`conformance`, behind the
//! `test-utils` feature).

mod cache;
mod index;
mod memory;
mod types;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use cache::{CachingStore, DEFAULT_CACHE_CAPACITY};
pub use index::LimiterIndex;
pub use memory::{sort_groups, MemoryStore};
pub use types::*;

use crate::{EnforcementMode, Limiter, LimiterId, LimiterUpdate, ValidationError};

/// The result type of every store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No such limiter (or it was deleted).
    #[error("limiter {0} not found")]
    LimiterNotFound(LimiterId),
    /// The reservation was already settled or released, or never existed here.
    #[error("reservation {0} not found (already settled or released?)")]
    ReservationNotFound(ReservationId),
    /// A unique value (id, code) is already taken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Input failed validation.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The store is shut down.
    #[error("the store is closed")]
    Closed,
    /// The backend failed (database, network, disk).
    #[error("store backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// Wrap a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// Where limiters, budgets and usage live.
///
/// Object-safe: use it as `Arc<dyn BudgetStore>`. Implementations must make [`reserve`]
/// atomic with respect to every other `reserve`, `settle`, `release` and `record_usage` of the
/// same limiter: concurrent requests must never together pass what the limiter's mode promises.
///
/// [`reserve`]: BudgetStore::reserve
#[async_trait]
pub trait BudgetStore: std::fmt::Debug + Send + Sync + 'static {
    // ---- limiters ----

    /// Store a new limiter (built with [`Limiter::create`]). [`Error::Conflict`] if its id or
    /// code is taken.
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()>;

    /// A limiter by id, including a deleted one (its `deleted_at` is set); `None` if unknown
    /// or purged.
    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>>;

    /// The live (not deleted) limiter with this proxy code.
    async fn limiter_by_code(&self, code: &str) -> Result<Option<Limiter>>;

    /// All limiters, oldest first; deleted ones only when asked.
    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>>;

    /// Apply a partial update atomically ([`Limiter::apply`]) and return the result.
    /// [`Error::LimiterNotFound`] for unknown or deleted limiters; [`Error::Validation`] leaves
    /// the limiter unchanged.
    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter>;

    /// Give the limiter a new random code; the old one stops working at once.
    async fn rotate_code(&self, id: LimiterId) -> Result<Limiter>;

    /// Delete a limiter: its code stops working at once. Its usage stays for statistics and
    /// audit unless `purge` is set, in which case the limiter and its usage are removed.
    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()>;

    // ---- budget decisions ----

    /// Atomically decide whether a request may spend from its limiter's budget in the window
    /// containing `request.at`, and hold `request.amount` if so. The decision uses the
    /// store's current copy of the limiter (budget, period, mode, active flag), so updates
    /// take effect on the next request. [`Error::LimiterNotFound`] for unknown or deleted
    /// limiters.
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome>;

    /// Replace the reservation's hold with the record's cost and store the record (its
    /// `limiter_id` and `at` are taken from the reservation). [`Error::ReservationNotFound`]
    /// if it was already settled or released.
    async fn settle(&self, reservation: &Reservation, record: UsageRecord) -> Result<()>;

    /// Drop the reservation's hold, charging nothing.
    async fn release(&self, reservation: &Reservation) -> Result<()>;

    /// Record usage that had no reservation (it still counts against the window of
    /// `record.at`).
    async fn record_usage(&self, record: UsageRecord) -> Result<()>;

    /// Spend, holds and in-flight count of the limiter's window containing `at`.
    async fn window_spend(&self, id: LimiterId, at: DateTime<Utc>) -> Result<WindowSpend>;

    // ---- statistics ----

    /// Totals over the records matching `query`.
    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals>;

    /// Totals per limiter, model or user, most expensive first (then by key), at most
    /// `limit` groups.
    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>>;

    /// Totals per UTC-aligned time bucket, oldest first; empty buckets are left out.
    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>>;

    /// The most recent records matching `query`, newest first.
    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>>;

    // ---- lifecycle ----

    /// Check the store can serve requests (for `/health`).
    async fn health(&self) -> Result<()> {
        Ok(())
    }

    /// Make everything settled so far durable (stores that write behind).
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    /// Usage accepted but not yet durable, and whether writing it fails (for `/health` and
    /// metrics; cheap, never waits). Stores that write behind override it; the default, right
    /// for a store that writes before `settle` returns, reports nothing waiting.
    fn write_status(&self) -> WriteStatus {
        WriteStatus::default()
    }
}

/// The admission rule shared by every store: given what the window has spent and holds, may a
/// request reserving `amount` go ahead?
///
/// ```
/// use budget_core::{EnforcementMode, Money};
/// use budget_core::store::admits;
/// let (budget, spent) = (Money::from_dollars(20), Money::from_cents(1999));
/// assert!(admits(EnforcementMode::Soft, budget, spent, Money::ZERO, Money::from_dollars(5)));
/// assert!(!admits(EnforcementMode::Strict, budget, spent, Money::ZERO, Money::from_dollars(5)));
/// ```
pub fn admits(
    mode: EnforcementMode,
    budget: crate::Money,
    spent: crate::Money,
    held: crate::Money,
    amount: crate::Money,
) -> bool {
    let committed = spent.saturating_add(held);
    match mode {
        EnforcementMode::Soft => committed < budget,
        EnforcementMode::Strict => committed.saturating_add(amount) <= budget,
    }
}

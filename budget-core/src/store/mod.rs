//! The storage contract, in three small traits, and the building blocks to implement them.
//!
//! - [`BudgetStore`] — **the hot path**: find a limiter, reserve, settle, release. The
//!   request path (the `budget-tower` layer, the proxy) needs nothing else. Four methods.
//! - [`LimiterCatalog`] — limiters for the admin API and dashboard: create, list, update,
//!   rotate, delete; and usage recorded without a reservation.
//! - [`UsageStats`] — what the dashboard reads: window spend, totals, breakdowns, series,
//!   recent records.
//!
//! [`Store`] is all three (implemented for any type that has them); `budget-server` runs on an
//! `Arc<dyn Store>` and hands the layer the same store as an `Arc<dyn BudgetStore>`.
//!
//! A request's life in a store:
//!
//! 1. [`BudgetStore::reserve`] atomically checks **every budget the request counts in** (its
//!    [`BudgetLine`]s: the limiter's window today; more windows and per-user budgets with
//!    policies) and, only if all of them admit it, *holds* the amount against each
//!    ([`Reservation`]) — all or nothing.
//! 2. The request runs.
//! 3. [`BudgetStore::settle`] replaces the holds with the actual cost and records the usage,
//!    or [`BudgetStore::release`] drops them and charges nothing (the upstream failed).
//!
//! Spend of a counter is, by definition, the sum of the costs of the usage records that count
//! in it ([`CounterKey::counts`]); `settle` stamps the record with the reservation's time so a
//! request is charged to the windows it was admitted in.
//!
//! Two enforcement modes ([`EnforcementMode`]), per budget line:
//! - **soft**: admit while `spent + held < budget`; overspend is bounded by what is in flight.
//! - **strict**: admit only if `spent + held + amount <= budget`; spend never passes the budget
//!   as long as each request's cost stays within the amount reserved for it.
//!
//! Building blocks for your own store: [`Ledger`] (the arithmetic above, all or nothing, for
//! stores that decide in memory), [`LimiterIndex`] (limiters by id and code),
//! [`CachingStore`] (limiter look-ups from memory in front of a slow store), [`MemoryStore`]
//! (a complete store to delegate to, e.g. for statistics). Every store, ours and yours, runs
//! the same conformance suite (`conformance`, behind the `test-utils` feature).

pub mod backlog;
mod cache;
mod credentials;
mod index;
mod ledger;
mod memory;
mod types;

use std::sync::Arc;

use async_trait::async_trait;

pub use cache::{CachingStore, DEFAULT_CACHE_CAPACITY};
pub use credentials::CredentialIndex;
pub use index::LimiterIndex;
pub use ledger::{Counter, Ledger, Unloaded};
pub use memory::{sort_groups, MemoryStore};
pub use types::*;

/// The three store traits and [`Store`], to call store methods on a concrete store:
/// `use budget_core::store::prelude::*;`.
pub mod prelude {
    pub use super::{BudgetStore, LimiterCatalog, Store, UsageStats};
}

use crate::credential::{Credential, CredentialId};
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
    /// No such upstream credential.
    #[error("credential {0} not found")]
    CredentialNotFound(CredentialId),
    /// No such admin account.
    #[error("account {0} not found")]
    AccountNotFound(crate::account::AccountId),
    /// The store does not offer this (e.g. a custom store without upstream credentials).
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

impl Error {
    /// Wrap a backend error.
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// How the request path names a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimiterRef<'a> {
    /// By its proxy code (`/v1/{code}/...`).
    Code(&'a str),
    /// By id.
    Id(LimiterId),
}

/// The hot path: what a budget decision needs, and nothing else.
///
/// Object-safe: use it as `Arc<dyn BudgetStore>`. Implementations must make [`reserve`]
/// atomic with respect to every other `reserve`, `settle` and `release` touching any of the
/// same counters: concurrent requests must never together pass what a budget's mode
/// promises, and a reservation holds on all of its counters or on none. [`Ledger`] does this
/// arithmetic for a store that decides in memory.
///
/// [`reserve`]: BudgetStore::reserve
#[async_trait]
pub trait BudgetStore: std::fmt::Debug + Send + Sync + 'static {
    /// The live (not deleted) limiter a request names; `None` if unknown or deleted.
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>>;

    /// Atomically decide whether a request may spend from every budget it counts in
    /// ([`Limiter::budget_lines`] for `request.at` and `request.user`) and hold
    /// `request.amount` on each if — and only if — all admit it. The decision uses the
    /// store's current copy of the limiter (budgets, periods, mode, active flag), so updates
    /// take effect on the next request. [`Error::LimiterNotFound`] for unknown or deleted
    /// limiters.
    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome>;

    /// Replace the reservation's holds with the record's cost (on every counter it held) and
    /// store the record (its `limiter_id` and `at` are taken from the reservation).
    /// [`Error::ReservationNotFound`] if it was already settled or released: settling twice
    /// charges once.
    async fn settle(&self, reservation: &Reservation, record: UsageRecord) -> Result<()>;

    /// Drop the reservation's holds, charging nothing. [`Error::ReservationNotFound`] if it was
    /// already settled or released.
    async fn release(&self, reservation: &Reservation) -> Result<()>;

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

    /// The time budget decisions go by: when a request arrived, and so which windows it
    /// counts in. This machine's clock by default; a store shared by several machines answers
    /// with its database's clock, so that every replica rolls windows over at the same
    /// instant whatever its own clock says. The layer stamps each request with it.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }

    /// The upstream credential a limiter names ([`Limiter::credential_id`]), for the proxy to
    /// send in place of the client's key; `None` if there is no such credential. Called on
    /// every request of such a limiter, so answer from memory. The default, for a store that
    /// keeps no credentials, answers `None` (the proxy then refuses the request rather than
    /// forward the client's key).
    async fn find_credential(&self, id: CredentialId) -> Result<Option<Arc<Credential>>> {
        let _ = id;
        Ok(None)
    }
}

/// Limiters for the admin API and the dashboard.
#[async_trait]
pub trait LimiterCatalog: std::fmt::Debug + Send + Sync + 'static {
    /// Store a new limiter (built with [`Limiter::create`]). [`Error::Conflict`] if its id or
    /// code is taken.
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()>;

    /// A limiter by id, including a deleted one (its `deleted_at` is set); `None` if unknown
    /// or purged.
    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>>;

    /// All limiters, oldest first; deleted ones only when asked.
    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>>;

    /// Apply a partial update atomically ([`Limiter::apply`]) and return the result.
    /// [`Error::LimiterNotFound`] for unknown or deleted limiters; [`Error::Validation`] leaves
    /// the limiter unchanged.
    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter>;

    /// Give the limiter a new random code ([`Limiter::rotate_code`]). The old one stops working
    /// at once, or, with `keep_old_until` in the future, at that instant (a grace period for
    /// clients to switch). [`Error::LimiterNotFound`] for unknown or deleted limiters.
    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Limiter>;

    /// Delete a limiter: its code stops working at once. Its usage stays for statistics and
    /// audit unless `purge` is set, in which case the limiter and its usage are removed.
    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()>;

    /// Record usage that had no reservation (imported, or metered elsewhere). It counts in
    /// every counter of `record.at` and `record.user`. [`Error::LimiterNotFound`] for unknown
    /// or deleted limiters.
    async fn record_usage(&self, record: UsageRecord) -> Result<()>;

    /// Store a new upstream credential (its secret already sealed). [`Error::Conflict`] if its
    /// id or name is taken. Every credential method defaults to [`Error::Unsupported`]: a
    /// store without credentials still works, with pass-through keys only.
    async fn create_credential(&self, credential: &Credential) -> Result<()> {
        let _ = credential;
        Err(Error::Unsupported("upstream credentials"))
    }

    /// Every credential, by name.
    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        Err(Error::Unsupported("upstream credentials"))
    }

    /// Replace a credential (rename, new headers, a rotated secret): every limiter using it
    /// sends the new one from its next request, on every replica.
    /// [`Error::CredentialNotFound`] if it does not exist; [`Error::Conflict`] if the new name
    /// is another's.
    async fn update_credential(&self, credential: &Credential) -> Result<()> {
        let _ = credential;
        Err(Error::Unsupported("upstream credentials"))
    }

    /// Delete a credential. [`Error::Conflict`] while a live limiter uses it (detach it
    /// first); [`Error::CredentialNotFound`] if it does not exist.
    async fn delete_credential(&self, id: CredentialId) -> Result<()> {
        let _ = id;
        Err(Error::Unsupported("upstream credentials"))
    }

    /// Put an alert event in the outbox ([`crate::alert`]), pending, due at once. An event
    /// whose id is already there (from this replica or another, delivered or not) is left as
    /// it is: `Ok(false)`. `Ok(true)` when it was added. Every outbox method defaults to
    /// [`Error::Unsupported`]: a store without an outbox sends no alerts.
    async fn enqueue_alert(&self, event: &crate::alert::AlertEvent) -> Result<bool> {
        let _ = event;
        Err(Error::Unsupported("alert outbox"))
    }

    /// Claim up to `limit` pending events due at `now` (oldest due first) for one attempt:
    /// each gets one more attempt counted and is not due again until `claim_until`, so
    /// another replica does not send it meanwhile; a sender that dies leaves it to be retried
    /// then. Report how the attempt went with [`finish_alert`](Self::finish_alert).
    async fn claim_alerts(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        claim_until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        let _ = (now, claim_until, limit);
        Err(Error::Unsupported("alert outbox"))
    }

    /// Record how an attempt at event `id` ended. Unknown ids are ignored.
    async fn finish_alert(&self, id: &str, outcome: &crate::alert::AlertOutcome) -> Result<()> {
        let _ = (id, outcome);
        Err(Error::Unsupported("alert outbox"))
    }

    /// Events in the outbox, newest first, filtered by `query`.
    async fn list_alerts(
        &self,
        query: &crate::alert::AlertQuery,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        let _ = query;
        Err(Error::Unsupported("alert outbox"))
    }

    /// Add refusal counts (a batch the server collected in memory): each adds to its
    /// limiter's, minute's and reason's total. Counts of unknown or purged limiters are
    /// dropped. Defaults to [`Error::Unsupported`].
    async fn add_refusals(&self, counts: &[crate::refusal::RefusalCount]) -> Result<()> {
        let _ = counts;
        Err(Error::Unsupported("refusal counts"))
    }

    /// Store a new admin account ([`crate::account`]). [`Error::Conflict`] if its id is taken
    /// or its user name is another's ignoring ASCII case. Every account method defaults to
    /// [`Error::Unsupported`]: a store without accounts still works, with the bootstrap admin
    /// only. Accounts are catalogue data, read once per admin request: no need to cache them.
    async fn create_account(&self, account: &crate::account::Account) -> Result<()> {
        let _ = account;
        Err(Error::Unsupported("admin accounts"))
    }

    /// Every account, by user name.
    async fn list_accounts(&self) -> Result<Vec<crate::account::Account>> {
        Err(Error::Unsupported("admin accounts"))
    }

    /// The account named `username`, ignoring ASCII case; `None` if there is none.
    async fn find_account(&self, username: &str) -> Result<Option<crate::account::Account>> {
        let _ = username;
        Err(Error::Unsupported("admin accounts"))
    }

    /// Replace the account with `account.id` (role, disabled flag, password hash, token
    /// version, even the name). [`Error::AccountNotFound`] if it does not exist;
    /// [`Error::Conflict`] if the new name is another's ignoring ASCII case.
    async fn update_account(&self, account: &crate::account::Account) -> Result<()> {
        let _ = account;
        Err(Error::Unsupported("admin accounts"))
    }

    /// Append an entry to the audit trail (never changed or removed afterwards; purging a
    /// limiter keeps its entries). Defaults to [`Error::Unsupported`].
    async fn append_audit(&self, entry: &crate::audit::AuditEntry) -> Result<()> {
        let _ = entry;
        Err(Error::Unsupported("an audit trail"))
    }

    /// Audit entries matching `query`, newest first (then by id), at most `query.limit`.
    async fn list_audit(
        &self,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEntry>> {
        let _ = query;
        Err(Error::Unsupported("an audit trail"))
    }
}

/// What the dashboard and statistics read.
#[async_trait]
pub trait UsageStats: std::fmt::Debug + Send + Sync + 'static {
    /// Spend, holds and in-flight count of one counter (a limiter's window, or a user's).
    /// [`Error::LimiterNotFound`] for an unknown limiter (a deleted one still answers).
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend>;

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

    /// Refusals per limiter and reason over `query`'s range (whole minutes: a minute counts
    /// when it starts in `[from, to)`) and limiter, most first (then by limiter and reason).
    /// Defaults to [`Error::Unsupported`].
    async fn refusals(&self, query: &UsageQuery) -> Result<Vec<crate::refusal::RefusalGroup>> {
        let _ = query;
        Err(Error::Unsupported("refusal counts"))
    }

    /// One page of an export: the records matching `query` that come after `after` in
    /// `(at, id)` order (from the first when `None`), oldest first, at most `limit`. Paging
    /// with the last record's [`UsageCursor`] reads every record exactly once, whatever is
    /// written meanwhile behind the cursor, with memory bounded by `limit`.
    ///
    /// The default reads every matching record with [`recent_usage`](Self::recent_usage) and
    /// pages in memory: correct, but not bounded. Stores with many records override it with a
    /// keyset query (`WHERE (at, id) > (…) ORDER BY at, id LIMIT …`).
    async fn usage_page(
        &self,
        query: &UsageQuery,
        after: Option<UsageCursor>,
        limit: usize,
    ) -> Result<Vec<UsageRecord>> {
        let all = self.recent_usage(query, usize::MAX).await?;
        Ok(page_of(all, after, limit))
    }
}

/// `records` in `(at, id)` order, those after `after`, at most `limit`: a page for stores that
/// page in memory.
pub fn page_of(
    records: impl IntoIterator<Item = UsageRecord>,
    after: Option<UsageCursor>,
    limit: usize,
) -> Vec<UsageRecord> {
    let mut out: Vec<UsageRecord> = records
        .into_iter()
        .filter(|r| after.is_none_or(|c| c.precedes(r)))
        .collect();
    out.sort_by_key(|r| (r.at, r.id));
    out.truncate(limit);
    out
}

/// A complete store: the hot path, the catalogue and the statistics. Implemented for every
/// type that implements the three; `budget-server` runs on an `Arc<dyn Store>`.
///
/// ```
/// use std::sync::Arc;
/// use budget_core::store::{BudgetStore, Store};
/// use budget_core::MemoryStore;
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let hot_path: Arc<dyn BudgetStore> = store.clone(); // what the layer takes
/// ```
pub trait Store: BudgetStore + LimiterCatalog + UsageStats {}

impl<T: BudgetStore + LimiterCatalog + UsageStats + ?Sized> Store for T {}

/// Spend, holds and in-flight count of the limiter's primary window containing `at` (the
/// window of its current period): [`UsageStats::window_spend`] of
/// [`CounterKey::limiter`]. [`Error::LimiterNotFound`] for an unknown limiter.
pub async fn primary_window_spend<S: LimiterCatalog + UsageStats + ?Sized>(
    store: &S,
    id: LimiterId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<WindowSpend> {
    let limiter = store
        .get_limiter(id)
        .await?
        .ok_or(Error::LimiterNotFound(id))?;
    store
        .window_spend(&CounterKey::limiter(id, limiter.window_at(at)))
        .await
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

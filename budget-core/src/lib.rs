//! `budget-core`: the domain of the budget proxy, with no HTTP and no SQL.
//!
//! - [`Money`] and [`Rate`]: fixed-point dollars (nano-dollars) and prices (pico-dollars per
//!   unit); never a float in arithmetic.
//! - [`Period`] and [`Window`]: calendar budget windows (`minute` … `year`), UTC or a time zone.
//! - [`Limiter`]: a budget, a period, an upstream and a secret proxy code.
//! - [`pricing`]: OpenAI and Azure OpenAI list prices shipped as data, with lookup by model
//!   name and exact cost computation; unknown models are reported as unpriced, never $0.
//! - [`usage`]: pure, incremental parsing of OpenAI requests and responses (JSON and SSE) into
//!   token counts.
//! - [`BudgetStore`]: the storage contract (limiters, atomic reservations, usage, statistics),
//!   `dyn`-usable, with [`MemoryStore`] and a conformance suite (feature `test-utils`).
//!
//! # Pricing a response
//!
//! ```
//! use budget_core::pricing::PriceTable;
//! use budget_core::usage::{Endpoint, RequestInfo, UsageMeter};
//!
//! let request = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#;
//! let info = RequestInfo::parse(Endpoint::ChatCompletions, request);
//! let mut meter = UsageMeter::json(&info);
//! meter.feed(br#"{"model":"gpt-4o-2024-08-06","choices":[],
//!     "usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500}}"#);
//! let usage = meter.finish();
//!
//! let table = PriceTable::builtin();
//! let cost = table.cost(&usage, budget_core::Provider::Openai);
//! // gpt-4o: $2.50 / 1M input, $10 / 1M output
//! assert_eq!(cost.total().unwrap().to_string(), "$0.0075");
//! ```
//!
//! # Implementing a store
//!
//! A store implements [`BudgetStore`]. The quickest correct start decides in memory by
//! delegating to [`MemoryStore`] and adds what your backend is for — here, an audit log of
//! every settled charge (`examples/custom-store` journals everything to a file instead):
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use async_trait::async_trait;
//! use budget_core::store::*;
//! use budget_core::{BudgetStore, Limiter, LimiterId, LimiterUpdate, MemoryStore, Money, NewLimiter, Period};
//! use chrono::{DateTime, Utc};
//!
//! #[derive(Debug, Default)]
//! struct AuditedStore {
//!     memory: MemoryStore,
//!     audit: Mutex<Vec<(LimiterId, Money)>>,
//! }
//!
//! #[async_trait]
//! impl BudgetStore for AuditedStore {
//!     async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
//!         self.memory.reserve(request).await // atomic: the decision and the hold together
//!     }
//!     async fn settle(&self, reservation: &Reservation, record: UsageRecord) -> Result<()> {
//!         let cost = record.cost;
//!         self.memory.settle(reservation, record).await?;
//!         self.audit.lock().unwrap().push((reservation.limiter_id, cost));
//!         Ok(())
//!     }
//!     // The rest delegates unchanged:
//! #   async fn create_limiter(&self, l: &Limiter) -> Result<()> { self.memory.create_limiter(l).await }
//! #   async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> { self.memory.get_limiter(id).await }
//! #   async fn limiter_by_code(&self, c: &str) -> Result<Option<Limiter>> { self.memory.limiter_by_code(c).await }
//! #   async fn list_limiters(&self, d: bool) -> Result<Vec<Limiter>> { self.memory.list_limiters(d).await }
//! #   async fn update_limiter(&self, id: LimiterId, u: &LimiterUpdate) -> Result<Limiter> { self.memory.update_limiter(id, u).await }
//! #   async fn rotate_code(&self, id: LimiterId) -> Result<Limiter> { self.memory.rotate_code(id).await }
//! #   async fn delete_limiter(&self, id: LimiterId, p: bool) -> Result<()> { self.memory.delete_limiter(id, p).await }
//! #   async fn release(&self, r: &Reservation) -> Result<()> { self.memory.release(r).await }
//! #   async fn record_usage(&self, r: UsageRecord) -> Result<()> { self.memory.record_usage(r).await }
//! #   async fn window_spend(&self, id: LimiterId, at: DateTime<Utc>) -> Result<WindowSpend> { self.memory.window_spend(id, at).await }
//! #   async fn usage_totals(&self, q: &UsageQuery) -> Result<UsageTotals> { self.memory.usage_totals(q).await }
//! #   async fn usage_breakdown(&self, q: &UsageQuery, b: GroupBy, n: usize) -> Result<Vec<UsageGroup>> { self.memory.usage_breakdown(q, b, n).await }
//! #   async fn usage_series(&self, q: &UsageQuery, b: BucketSize) -> Result<Vec<UsageBucket>> { self.memory.usage_series(q, b).await }
//! #   async fn recent_usage(&self, q: &UsageQuery, n: usize) -> Result<Vec<UsageRecord>> { self.memory.recent_usage(q, n).await }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store: Arc<dyn BudgetStore> = Arc::new(AuditedStore::default());
//! let limiter = Limiter::create(
//!     NewLimiter::new("Customer A", Money::from_dollars(20), Period::Day, "https://api.openai.com"),
//!     Utc::now(),
//! ).unwrap();
//! store.create_limiter(&limiter).await.unwrap();
//! let request = ReserveRequest { limiter_id: limiter.id, amount: Money::from_cents(1), at: Utc::now() };
//! let ReserveOutcome::Reserved(reservation) = store.reserve(&request).await.unwrap() else { panic!() };
//! let usage = budget_core::usage::Usage { model: Some("gpt-4o".into()), ..Default::default() };
//! let record = UsageRecord::new(limiter.id, request.at, budget_core::usage::Endpoint::ChatCompletions, &usage, Some(Money::from_cents(2)));
//! store.settle(&reservation, record).await.unwrap();
//! assert_eq!(store.window_spend(limiter.id, Utc::now()).await.unwrap().spent, Money::from_cents(2));
//! # }
//! ```
//!
//! Every store proves itself against the same conformance suite, one line in its tests:
//! `budget_core::store_conformance_tests!(async { /* a fresh, empty store */ });`, with
//! `budget-core`'s `test-utils` feature (see [Features](crate#features) and the
//! `conformance` module it enables).
//!
//! # Features
//!
//! - `test-utils`: the store conformance suite (`budget_core::conformance` and the
//!   `store_conformance_tests!` macro).

#![deny(missing_docs)]

pub mod api;
pub mod limiter;
pub mod money;
pub mod period;
pub mod pricing;
pub mod store;
pub mod usage;

#[cfg(any(test, feature = "test-utils"))]
pub mod conformance;

pub use limiter::{
    EnforcementMode, Limiter, LimiterCode, LimiterId, LimiterUpdate, NewLimiter, Provider,
    UnpricedPolicy, ValidationError,
};
pub use money::{Money, MoneyError, Rate};
pub use period::{Period, Window};
pub use store::{BudgetStore, MemoryStore};

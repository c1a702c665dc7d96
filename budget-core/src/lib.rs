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
//! - [`store`]: the storage contract in three small `dyn`-usable traits — [`BudgetStore`] (the
//!   hot path: atomic reservations against several budgets at once), `LimiterCatalog` and
//!   `UsageStats` — with [`MemoryStore`], the [`store::Ledger`] building block, a caching
//!   decorator and a conformance suite (feature `test-utils`).
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
//! The request path needs only [`BudgetStore`]: find a limiter, reserve, settle, release.
//! [`store::Ledger`] does the budget arithmetic (all or nothing over every budget a request
//! counts in) and [`store::LimiterIndex`] keeps limiters by id and code, so a store that
//! decides in memory is a few lines; what it adds is where its limiters and usage live (here a
//! `Vec`; `examples/custom-store` journals to a file, `budget-store-sqlite` to SQLite).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use async_trait::async_trait;
//! use budget_core::store::*;
//! use budget_core::{Limiter, Money, NewLimiter, Period};
//! use chrono::Utc;
//!
//! #[derive(Debug, Default)]
//! struct TinyStore {
//!     state: Mutex<(LimiterIndex, Ledger)>,
//!     usage: Mutex<Vec<UsageRecord>>, // your database
//! }
//!
//! #[async_trait]
//! impl BudgetStore for TinyStore {
//!     async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
//!         Ok(self.state.lock().unwrap().0.find(by))
//!     }
//!     async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
//!         let mut state = self.state.lock().unwrap(); // one lock: the decision is atomic
//!         let (limiters, ledger) = &mut *state;
//!         let limiter = limiters.live(request.limiter_id)?.clone();
//!         loop {
//!             match ledger.reserve(&limiter, request) {
//!                 Ok(outcome) => return Ok(outcome),
//!                 // A counter seen for the first time starts from the spend already stored.
//!                 Err(Unloaded(key)) => {
//!                     let usage = self.usage.lock().unwrap();
//!                     let spent = usage.iter().filter(|r| key.counts(r)).map(|r| r.cost).sum();
//!                     ledger.load(key, spent);
//!                 }
//!             }
//!         }
//!     }
//!     async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
//!         let mut state = self.state.lock().unwrap();
//!         let held = state.1.settle(reservation.id, record.cost)
//!             .ok_or(Error::ReservationNotFound(reservation.id))?; // settling twice charges once
//!         (record.limiter_id, record.at) = (held.limiter_id, held.at);
//!         self.usage.lock().unwrap().push(record);
//!         Ok(())
//!     }
//!     async fn release(&self, reservation: &Reservation) -> Result<()> {
//!         let released = self.state.lock().unwrap().1.release(reservation.id);
//!         released.map(|_| ()).ok_or(Error::ReservationNotFound(reservation.id))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let tiny = TinyStore::default();
//! let limiter = Limiter::create(
//!     NewLimiter::new("Customer A", Money::from_dollars(20), Period::Day, "https://api.openai.com"),
//!     Utc::now(),
//! ).unwrap();
//! tiny.state.lock().unwrap().0.put(limiter.clone());
//! let store: Arc<dyn BudgetStore> = Arc::new(tiny); // what `budget-tower`'s layer takes
//! let request = ReserveRequest::new(limiter.id, Money::from_cents(1), Utc::now());
//! let ReserveOutcome::Reserved(reservation) = store.reserve(&request).await.unwrap() else { panic!() };
//! let usage = budget_core::usage::Usage { model: Some("gpt-4o".into()), ..Default::default() };
//! let record = UsageRecord::new(limiter.id, request.at, budget_core::usage::Endpoint::ChatCompletions, &usage, Some(Money::from_cents(2)));
//! store.settle(&reservation, record.clone()).await.unwrap();
//! assert!(store.settle(&reservation, record).await.is_err());
//! # }
//! ```
//!
//! The admin API and the dashboard also need [`store::LimiterCatalog`] and
//! [`store::UsageStats`]; a store with all three is a [`store::Store`], which is what
//! `budget-server` runs on. The quickest complete store delegates to [`MemoryStore`] for what
//! it does not do itself.
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

pub mod account;
pub mod alert;
pub mod api;
pub mod audit;
pub mod credential;
pub mod limiter;
pub mod money;
pub mod period;
pub mod policy;
pub mod pricing;
pub mod refusal;
pub mod store;
pub mod usage;

#[cfg(any(test, feature = "test-utils"))]
pub mod conformance;

pub use credential::{Credential, CredentialId, CredentialKind};
pub use limiter::{
    EnforcementMode, Limiter, LimiterCode, LimiterId, LimiterUpdate, NewLimiter, PreviousCode,
    Provider, UnpricedPolicy, ValidationError,
};
pub use money::{Money, MoneyError, Rate};
pub use period::{Period, Window};
pub use store::{BudgetStore, MemoryStore};

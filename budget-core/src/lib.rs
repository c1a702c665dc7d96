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
//! A store implements [`BudgetStore`]; the simplest correct one wraps [`MemoryStore`] (the
//! `examples/custom-store` crate shows a complete one). Every store proves itself against the
//! same conformance suite, one line in its tests:
//!
//! ```ignore
//! // tests/conformance.rs of your store crate, with budget-core's `test-utils` feature
//! budget_core::store_conformance_tests!(async { my_store::MyStore::open_for_tests().await });
//! ```

#![deny(missing_docs)]

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

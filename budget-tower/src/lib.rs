//! `budget-tower`: a Tower layer that puts a hard dollar budget in front of any service that
//! speaks the OpenAI API — a proxy, or your app's own OpenAI-compatible endpoint.
//!
//! One `.layer(BudgetLayer::new(store, prices))` gives every request:
//!
//! - **limiter resolution** — from a request extension your auth sets ([`UseLimiter`]), the
//!   `/v1/{code}/...` path ([`BudgetLayer::by_path_code`]) or your own closure
//!   ([`BudgetLayer::with_resolver`]); unknown → 404, inactive → 403, in OpenAI's error shape;
//! - **atomic reservation** against every budget the request counts in (soft or strict mode;
//!   all or nothing) before the inner service is called, through the store's hot path only
//!   ([`budget_core::BudgetStore`]); the inner service finds the `Arc<Limiter>` in the request
//!   extensions; over budget → 429 with the product's message,
//!   `x-should-retry: false` (the official SDKs would otherwise retry twice) and `Retry-After`;
//! - **metering without buffering** — [`MeteredBody`] forwards each frame the moment it
//!   arrives and parses a copy on the side (JSON or SSE); streaming chat/completions requests
//!   that did not ask for usage get `stream_options.include_usage` added upstream and the extra
//!   usage chunk removed, so the client sees exactly what OpenAI would have sent;
//! - **settlement** when the body ends or is dropped (client hang-up: charged for what was
//!   delivered); a failed upstream call is charged nothing;
//! - `x-budget-limit`, `x-budget-remaining` and `x-budget-reset` headers on admitted responses;
//! - fail closed (503 with `Retry-After`) when the store fails, or fail open if you choose.
//!
//! It works on an `axum::Router`, a bare hyper service and under `tower::ServiceBuilder`.
//! Settling runs on the Tokio runtime as tracked tasks: [`BudgetLayer::settlements`] waits
//! for all of them (graceful shutdown, tests).
//!
//! The request body type must implement `From<Bytes>` (the layer reads the bounded request
//! body to learn the model and output limits, and may rewrite it): `axum::body::Body` and
//! `http_body_util::Full<Bytes>` do. In a bare hyper server, wrap hyper's `Incoming` in one of
//! them, e.g. `req.map(axum::body::Body::new)` (see `tests/bare_hyper.rs`).
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use axum::{routing::post, Router};
//! use budget_core::{pricing::PriceTable, BudgetStore, MemoryStore};
//! use budget_tower::BudgetLayer;
//!
//! # async fn chat() -> &'static str { "{}" }
//! # async fn run() {
//! let store: Arc<dyn BudgetStore> = Arc::new(MemoryStore::new());
//! let app: Router = Router::new()
//!     .route("/v1/{code}/chat/completions", post(chat))
//!     .layer(BudgetLayer::new(store, PriceTable::builtin()).by_path_code());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

#![deny(missing_docs)]

mod body;
mod error;
mod future;
mod headers;
mod hooks;
mod layer;
mod policy;
mod resolve;
mod service;
mod settlements;

pub use body::MeteredBody;
pub use error::{Refusal, STORE_RETRY_AFTER_SECS};
pub use future::ResponseFuture;
pub use hooks::{NoHooks, UsageHooks};
pub use layer::BudgetLayer;
pub use resolve::{LimiterKey, UseLimiter};
pub use service::BudgetService;

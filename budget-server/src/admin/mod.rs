//! The JWT admin API, mounted at `/api` (contract: `docs/admin-api.md`; machine-readable:
//! `GET /api/openapi.json`).
//!
//! - [`auth`]: login, tokens, the [`AdminUser`] and [`auth::SignedIn`] extractors (roles)
//!   and the login throttle.
//! - [`accounts`]: team accounts (admin and viewer), `GET /auth/me`, own password changes.
//! - [`error`]: the one error shape ([`ApiError`]) and the [`ApiJson`] body extractor.
//! - [`limiters`]: limiter CRUD, code rotation and per-limiter stats.
//! - [`policies`]: every window of a limiter, end users' spend, per-user budget overrides.
//! - [`stats`]: overview, time series, breakdowns, recent usage and prices.
//! - [`openapi`]: the OpenAPI 3.1 document, generated from the handlers' types.
//! - [`schemas`]: OpenAPI schemas for the `budget-core` types the API reads and writes.
//!
//! Every route but `POST /auth/login`, `POST /auth/logout` and `GET /openapi.json` needs
//! `Authorization: Bearer <token>`, or the dashboard's session cookie ([`session`]).

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod auth;
pub mod credentials;
pub mod error;
pub mod limiters;
pub mod openapi;
pub mod policies;
pub mod schemas;
pub mod session;
pub mod stats;

use axum::routing::{get, post};
use axum::Router;

pub use auth::{AdminAuth, AdminUser};
pub use error::{ApiError, ApiJson};

use crate::state::AppState;

/// Every `(method, path)` the router serves, paths relative to `/api` in OpenAPI syntax. The
/// OpenAPI document and the tests are checked against this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
    ("GET", "/auth/me"),
    ("POST", "/auth/password"),
    ("GET", "/accounts"),
    ("POST", "/accounts"),
    ("GET", "/accounts/{id}"),
    ("PUT", "/accounts/{id}"),
    ("GET", "/limiters"),
    ("POST", "/limiters"),
    ("GET", "/limiters/{id}"),
    ("PUT", "/limiters/{id}"),
    ("DELETE", "/limiters/{id}"),
    ("POST", "/limiters/{id}/rotate-code"),
    ("GET", "/credentials"),
    ("POST", "/credentials"),
    ("GET", "/credentials/{id}"),
    ("PUT", "/credentials/{id}"),
    ("DELETE", "/credentials/{id}"),
    ("GET", "/limiters/{id}/stats"),
    ("GET", "/limiters/{id}/users"),
    ("PUT", "/limiters/{id}/users/{user}"),
    ("DELETE", "/limiters/{id}/users/{user}"),
    ("GET", "/stats"),
    ("GET", "/stats/timeseries"),
    ("GET", "/stats/breakdown"),
    ("GET", "/usage/recent"),
    ("GET", "/usage/export"),
    ("GET", "/audit"),
    ("GET", "/alerts"),
    ("GET", "/pricing"),
    ("GET", "/openapi.json"),
];

/// The admin API's routes, to be nested at `/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(session::logout))
        .route("/auth/me", get(accounts::me))
        .route("/auth/password", post(accounts::change_password))
        .route("/accounts", get(accounts::list).post(accounts::create))
        .route("/accounts/{id}", get(accounts::get).put(accounts::update))
        .route("/limiters", get(limiters::list).post(limiters::create))
        .route(
            "/limiters/{id}",
            get(limiters::get)
                .put(limiters::update)
                .delete(limiters::delete),
        )
        .route("/limiters/{id}/rotate-code", post(limiters::rotate_code))
        .route(
            "/credentials",
            get(credentials::list).post(credentials::create),
        )
        .route(
            "/credentials/{id}",
            get(credentials::get)
                .put(credentials::update)
                .delete(credentials::delete),
        )
        .route("/limiters/{id}/stats", get(limiters::stats))
        .route("/limiters/{id}/users", get(policies::users))
        .route(
            "/limiters/{id}/users/{user}",
            axum::routing::put(policies::set_user).delete(policies::remove_user),
        )
        .route("/stats", get(stats::overview))
        .route("/stats/timeseries", get(stats::timeseries))
        .route("/stats/breakdown", get(stats::breakdown))
        .route("/usage/recent", get(stats::recent))
        .route("/usage/export", get(stats::export))
        .route("/audit", get(audit::list))
        .route("/alerts", get(alerts::list))
        .route("/pricing", get(stats::pricing))
        .route("/openapi.json", get(openapi::serve))
}

//! `budget-server`: a hard dollar budget in front of the OpenAI API, in one binary.
//!
//! - **Proxy** — `/v1/{limiter_code}/...` forwards to the limiter's upstream (OpenAI or Azure
//!   OpenAI) behind [`budget_tower::BudgetLayer`]: any OpenAI SDK works by changing `base_url`.
//!   `GET /v1/{limiter_code}/budget` shows the key holder their remaining budget.
//! - **Admin API** — `/api/...` with JWT auth (see `docs/admin-api.md`, and
//!   `/api/openapi.json`).
//! - **Dashboard** — the web UI at `/`, embedded in the binary.
//! - **Operations** — `/health`, `/metrics` (Prometheus), graceful shutdown, and connection
//!   timeouts and limits ([`serve`]).
//!
//! `cargo run -p budget-server` starts it all on port 8000 with a SQLite file
//! (`usage_data.db`); configuration is by environment, `.env` or flags (`--help`).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use budget_server::serve::{serve, ServeOptions};
//! use budget_server::{app, config::Config, state::AppState};
//! let state = AppState::build(Config::for_tests()).await?;
//! let options = ServeOptions::from_config(&state.config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, app(state), options, std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod admin;
pub mod alerts;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod egress;
pub mod forwarded;
pub mod keymode;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod refusals;
pub mod secrets;
pub mod security_headers;
pub mod serve;
pub mod state;

use axum::routing::{any_service, get};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::proxy::ProxyService;
use crate::state::AppState;

/// The whole application: proxy, admin API, dashboard and operations endpoints.
pub fn app(state: AppState) -> Router {
    let proxy = ProxyService {
        upstream: std::sync::Arc::new(state.upstream.clone()),
        metrics: state.metrics.clone(),
        store: (!state.config.budgets_enabled)
            .then(|| state.store.clone() as std::sync::Arc<dyn budget_core::BudgetStore>),
        keys: std::sync::Arc::new(proxy::UpstreamKeys::new(
            state.store.clone(),
            state.sealer.clone(),
        )),
    };
    let proxy_route = if state.config.budgets_enabled {
        any_service(
            ServiceBuilder::new()
                .layer(state.layer.clone())
                .service(proxy),
        )
    } else {
        any_service(proxy)
    };
    let cors = cors(&state.config.cors_origins);
    let api = security_headers::no_store(admin::router().layer(cors));
    // Everything the server answers itself gets the browser security headers; the proxy
    // routes, added after, forward the upstream's headers as they are.
    let routes = security_headers::apply(
        Router::new()
            .nest("/api", api)
            .route("/health", get(ops::health))
            .route("/metrics", get(ops::metrics))
            .fallback(dashboard::serve),
    )
    .route("/v1/{code}/budget", get(ops::own_budget))
    .route("/v1/{code}/{*rest}", proxy_route)
    .layer(TraceLayer::new_for_http().make_span_with(|req: &http::Request<axum::body::Body>| {
        // The limiter code in `/v1/{code}/...` is a credential: never log it.
        tracing::info_span!("request", method = %req.method(), path = %RedactedPath(req.uri().path()))
    }))
    .with_state(state.clone());
    // The limiter code as the API key (`/v1/chat/completions` with `Bearer <code>`) becomes
    // `/v1/<code>/chat/completions` before routing.
    Router::new().fallback_service(
        ServiceBuilder::new()
            .layer(axum::middleware::map_request_with_state(
                state,
                keymode::rewrite,
            ))
            .service(routes),
    )
}

/// Request paths as they may be logged, with limiter codes replaced by `{…}`: the segment after
/// a `v1` segment however it is spelled (`/v1/`, `//V1/`, `/%76%31/`), and any other segment
/// that looks like a generated code (16+ letters, digits, `-` or `_`, with a digit in them).
pub fn redact_code(path: &str) -> String {
    RedactedPath(path).to_string()
}

/// [`redact_code`] as it is written into a log line, without building the string first (the
/// request span formats it once per request).
struct RedactedPath<'a>(&'a str);

impl std::fmt::Display for RedactedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write;
        let mut after_v1 = false;
        for (i, seg) in self.0.split('/').enumerate() {
            if i > 0 {
                f.write_char('/')?;
            }
            if seg.is_empty() {
                continue;
            }
            let looks_like_code = seg.len() >= 16
                && seg.bytes().any(|b| b.is_ascii_digit())
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'%');
            if after_v1 || looks_like_code {
                f.write_str("{…}")?;
            } else {
                f.write_str(seg)?;
            }
            after_v1 = percent_decoded_eq(seg, "v1");
        }
        Ok(())
    }
}

/// `seg`, percent-decoded, equals `word` ignoring ASCII case.
fn percent_decoded_eq(seg: &str, word: &str) -> bool {
    let bytes = seg.as_bytes();
    let mut word = word.bytes();
    let mut i = 0;
    while i < bytes.len() {
        let mut b = bytes[i];
        i += 1;
        if b == b'%' && i + 1 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i..i + 2]).unwrap_or("");
            if let Ok(d) = u8::from_str_radix(hex, 16) {
                b = d;
                i += 2;
            }
        }
        if !word.next().is_some_and(|w| w.eq_ignore_ascii_case(&b)) {
            return false;
        }
    }
    word.next().is_none()
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<_> = origins.iter().filter(|o| !o.is_empty()).collect();
    let layer = CorsLayer::new()
        .allow_methods([
            http::Method::GET,
            http::Method::POST,
            http::Method::PUT,
            http::Method::DELETE,
        ])
        .allow_headers([http::header::AUTHORIZATION, http::header::CONTENT_TYPE]);
    if origins.iter().any(|o| o.as_str() == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        layer.allow_origin(AllowOrigin::list(
            origins.iter().filter_map(|o| o.parse().ok()),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn limiter_codes_are_redacted_from_logged_paths() {
        let code = "3f9a0c1d2e3f4a5b6c7d8e9f0a1b2c3d";
        let p = super::redact_code(&format!("/v1/{code}/chat/completions"));
        assert_eq!(p, "/v1/{…}/chat/completions");
        assert_eq!(super::redact_code(&format!("/v1/{code}")), "/v1/{…}");
        assert_eq!(super::redact_code("/api/limiters"), "/api/limiters");
        for spelled in [
            format!("//v1/{code}/chat/completions"),
            format!("/V1/{code}/chat/completions"),
            format!("/%76%31/{code}/x"),
            format!("/v1//{code}"),
            format!("/anything/{code}"),
        ] {
            let p = super::redact_code(&spelled);
            assert!(!p.contains(code), "{spelled} → {p}");
        }
        assert_eq!(
            super::redact_code("/v1/realtime/transcription_sessions"),
            "/v1/{…}/transcription_sessions"
        );
    }
}

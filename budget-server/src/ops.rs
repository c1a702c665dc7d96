//! `/health`, `/metrics` and the key holder's `GET /v1/{code}/budget`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use budget_core::store::{percent_tenths, LimiterRef};
use budget_core::{Money, Period};
use budget_tower::Refusal;
use chrono::{DateTime, Utc};
use serde::Serialize;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::admin::error::ErrorBody;
use crate::admin::schemas::{MoneySchema, PeriodSchema};
use crate::state::AppState;

/// Every `(method, path)` served here, in OpenAPI syntax (the tests check the OpenAPI document
/// against it).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/v1/{code}/budget"),
];

/// `status` of the `/health` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// `200`: the store answers and saves usage.
    Ok,
    /// `503`: settled usage cannot be saved (e.g. a full disk).
    Degraded,
    /// `503`: the store does not answer.
    Unavailable,
}

/// The `/health` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (200); `degraded` (503) while settled usage cannot be saved (e.g. a full disk);
    /// `unavailable` (503) when the store does not answer.
    pub status: HealthStatus,
    /// Seconds since the server started (unless `unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    /// Why the store is unavailable, or why usage cannot be saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Settled requests whose usage is not saved yet (counted against budgets, kept queued
    /// and saved once writes work again; a few at most while healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unsaved_events: Option<u64>,
    /// Failed attempts to save usage since the server started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_errors: Option<u64>,
    /// When saving usage started failing (when `degraded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Seconds the oldest unsaved usage has waited (when `degraded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_unsaved_seconds: Option<u64>,
    /// True while proxy requests are refused with `503` + `Retry-After` because more usage
    /// waits unsaved than `MAX_UNSAVED_USAGE_EVENTS` / `MAX_UNSAVED_USAGE_SECS` allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusing_requests: Option<bool>,
}

/// `200 {"status":"ok",...}` when the store answers and saves usage; `503` with
/// `"status":"degraded"` while usage cannot be saved, `"unavailable"` when the store fails.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "The store answers and saves usage", body = Health),
        (status = 503, description = "The store does not answer (`unavailable`) or cannot save usage (`degraded`)", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.health().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: HealthStatus::Unavailable,
                uptime_seconds: None,
                error: Some(e.to_string()),
                unsaved_events: None,
                write_errors: None,
                failing_since: None,
                oldest_unsaved_seconds: None,
                refusing_requests: None,
            }),
        )
            .into_response();
    }
    let w = state.store.write_status();
    let mut health = Health {
        status: HealthStatus::Ok,
        uptime_seconds: Some(state.started.elapsed().as_secs()),
        error: None,
        unsaved_events: Some(w.unsaved_events),
        write_errors: Some(w.write_errors),
        failing_since: None,
        oldest_unsaved_seconds: None,
        refusing_requests: None,
    };
    let Some(f) = w.failing else {
        return Json(health).into_response();
    };
    health.status = HealthStatus::Degraded;
    health.error = Some(f.error);
    health.failing_since = Some(f.since);
    health.oldest_unsaved_seconds = Some(f.oldest_unsaved_seconds);
    health.refusing_requests = Some(w.refusing);
    (StatusCode::SERVICE_UNAVAILABLE, Json(health)).into_response()
}

/// Prometheus text exposition. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time); `401` otherwise.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    security((), ("metricsToken" = [])),
    responses(
        (status = 200, description = "Prometheus metrics (OpenMetrics text)", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "`METRICS_TOKEN` is set and was not sent", body = ErrorBody),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.config.metrics_token() {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .unwrap_or_default()
            .trim();
        if !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
            return crate::admin::ApiError::unauthorized(
                "invalid_token",
                "`/metrics` needs `Authorization: Bearer <METRICS_TOKEN>`",
            )
            .into_response();
        }
    }
    let body = state.metrics.render().await;
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `GET /v1/{code}/budget` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OwnBudget {
    /// The limiter's name.
    pub name: String,
    /// Inactive limiters refuse every request.
    pub is_active: bool,
    /// Budget per period.
    #[schema(value_type = MoneySchema)]
    pub budget_limit: Money,
    /// How often the budget resets.
    #[schema(value_type = PeriodSchema)]
    pub period_type: Period,
    /// Settled spend in the current window.
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// Held by requests in flight.
    #[schema(value_type = MoneySchema)]
    pub held: Money,
    /// Budget minus spend and holds, never negative.
    #[schema(value_type = MoneySchema)]
    pub remaining_budget: Money,
    /// Spend and holds as a percentage of the budget, two decimals.
    pub usage_percentage: f64,
    /// Start of the current window.
    pub period_start: DateTime<Utc>,
    /// End of the current window.
    pub period_end: DateTime<Utc>,
    /// Seconds until the window ends.
    pub resets_in_seconds: u64,
    /// Every budget window, primary first (the fields above describe the primary one): with
    /// `extra_budgets`, a request must fit each of them.
    pub windows: Vec<crate::admin::policies::WindowView>,
}

/// What the holder of a limiter code may know: their budget, spend, remaining and reset time.
/// The code is the credential; no admin token is needed.
#[utoipa::path(
    get,
    path = "/v1/{code}/budget",
    operation_id = "ownBudget",
    tag = "operations",
    security(()),
    params(("code" = String, Path, description = "The limiter's code (a credential)")),
    responses(
        (status = 200, description = "The limiter's current window", body = OwnBudget),
        (status = 404, description = "Unknown, rotated or deleted code (OpenAI error shape)", body = ErrorBody),
        (status = 503, description = "The store is unavailable (OpenAI error shape)", body = ErrorBody),
    )
)]
pub async fn own_budget(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let limiter = match state.store.find_limiter(LimiterRef::Code(&code)).await {
        Ok(Some(l)) => l,
        Ok(None) => return Refusal::unknown_limiter().into_response(axum::body::Body::from),
        Err(_) => return Refusal::store_unavailable().into_response(axum::body::Body::from),
    };
    let now = chrono::Utc::now();
    // Every window, primary first: the top-level fields describe the primary one.
    let windows = match crate::admin::policies::windows_of(&state, &limiter, now).await {
        Ok(ws) => ws,
        Err(_) => return Refusal::store_unavailable().into_response(axum::body::Body::from),
    };
    let primary = &windows[0];
    let used = primary.current_spend + primary.held;
    let pct = used.percent_of_bp(limiter.budget_limit).unwrap_or(0);
    Json(OwnBudget {
        name: limiter.name.clone(),
        is_active: limiter.is_active,
        budget_limit: limiter.budget_limit,
        period_type: limiter.period_type,
        current_spend: primary.current_spend,
        held: primary.held,
        remaining_budget: limiter.budget_limit.saturating_sub(used).non_negative(),
        usage_percentage: percent_tenths(pct) as f64 / 10.0,
        period_start: primary.period_start,
        period_end: primary.period_end,
        resets_in_seconds: limiter.window_at(now).seconds_until_end(now),
        windows,
    })
    .into_response()
}

//! `/health`, `/metrics` and the key holder's `GET /v1/{code}/budget`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use budget_core::store::format_percent_bp;
use budget_tower::Refusal;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// `200 {"status":"ok",...}` when the store answers and saves usage; `503` with
/// `"status":"degraded"` while usage cannot be saved, `"unavailable"` when the store fails.
pub async fn health(State(state): State<AppState>) -> Response {
    if let Err(e) = state.store.health().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "error": e.to_string()})),
        )
            .into_response();
    }
    let w = state.store.write_status();
    let uptime = state.started.elapsed().as_secs();
    match w.failing {
        None => Json(json!({
            "status": "ok",
            "uptime_seconds": uptime,
            "unsaved_events": w.unsaved_events,
            "write_errors": w.write_errors,
        }))
        .into_response(),
        Some(f) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "degraded",
                "uptime_seconds": uptime,
                "error": f.error,
                "unsaved_events": w.unsaved_events,
                "write_errors": w.write_errors,
                "failing_since": f.since,
                "oldest_unsaved_seconds": f.oldest_unsaved_seconds,
                "refusing_requests": w.refusing,
            })),
        )
            .into_response(),
    }
}

/// Prometheus text exposition. With `METRICS_TOKEN` set, only for
/// `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time); `401` otherwise.
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

/// What the holder of a limiter code may know: their budget, spend, remaining and reset time.
/// The code is the credential; no admin token is needed.
pub async fn own_budget(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let limiter = match state.store.limiter_by_code(&code).await {
        Ok(Some(l)) => l,
        Ok(None) => return Refusal::unknown_limiter().into_response(axum::body::Body::from),
        Err(_) => return Refusal::store_unavailable().into_response(axum::body::Body::from),
    };
    let now = chrono::Utc::now();
    let w = match state.store.window_spend(limiter.id, now).await {
        Ok(w) => w,
        Err(_) => return Refusal::store_unavailable().into_response(axum::body::Body::from),
    };
    let used = w.spent + w.held;
    let pct = used.percent_of_bp(limiter.budget_limit).unwrap_or(0);
    Json(json!({
        "name": limiter.name,
        "is_active": limiter.is_active,
        "budget_limit": limiter.budget_limit,
        "period_type": limiter.period_type,
        "current_spend": w.spent,
        "held": w.held,
        "remaining_budget": limiter.budget_limit.saturating_sub(used).non_negative(),
        "usage_percentage": format_percent_bp(pct).parse::<f64>().unwrap_or(0.0),
        "period_start": w.window.start,
        "period_end": w.window.end,
        "resets_in_seconds": w.window.seconds_until_end(now),
    }))
    .into_response()
}

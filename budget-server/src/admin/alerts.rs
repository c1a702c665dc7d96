//! Alerts in the admin API: the server's alert settings and the outbox's deliveries
//! (`GET /api/alerts`), and the checks on a limiter's `alerts` settings.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use budget_core::alert::{AlertDelivery, AlertQuery, AlertSettings, DeliveryStatus};
use budget_core::LimiterId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminUser;
use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// A limiter's `alerts` settings must be usable on this server: a webhook URL needs
/// `ALERT_WEBHOOK_SECRET` (every delivery is signed), and may not point at a link-local or
/// cloud-metadata address.
pub fn check_settings(state: &AppState, settings: Option<&AlertSettings>) -> Result<(), ApiError> {
    let Some(url) = settings.and_then(|s| s.webhook_url.as_deref()) else {
        return Ok(());
    };
    if !state.alerts.enabled() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "alert_secret_missing",
            "The server cannot sign webhook deliveries: ALERT_WEBHOOK_SECRET is not set. \
             Generate one with `openssl rand -hex 32`, set it and restart (see docs/alerts.md)",
        )
        .with_field("alerts.webhook_url"));
    }
    if !state.config.allow_link_local_upstreams {
        if let Ok(u) = url::Url::parse(url) {
            if crate::egress::host_is_metadata(&u) {
                return Err(budget_core::ValidationError::new(
                    "alerts.webhook_url",
                    "points at a link-local or cloud-metadata address; set \
                     ALLOW_LINK_LOCAL_UPSTREAMS=true on the server to allow it",
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The server's alert settings, as `GET /api/alerts` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDefaults {
    /// Whether alerts can be sent at all (`ALERT_WEBHOOK_SECRET` is set).
    pub enabled: bool,
    /// `ALERT_WEBHOOK_URL`, cut to its scheme and host (its path may hold a secret); `null`
    /// when unset: only limiters with a webhook of their own alert.
    pub webhook: Option<String>,
    /// `ALERT_WEBHOOK_FORMAT`.
    #[schema(value_type = super::schemas::WebhookFormatSchema)]
    pub format: budget_core::alert::WebhookFormat,
    /// `ALERT_THRESHOLDS`: percentages of each window's budget, for limiters that name none.
    pub thresholds: Vec<u16>,
    /// `ALERT_RETRY_FOR_SECS`: how long an undelivered event is retried.
    pub retry_for_seconds: u64,
}

/// One event in the outbox and how its delivery goes.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertDeliveryView {
    /// The event's stable id (sent as `X-Budget-Event-Id`).
    pub id: String,
    /// What happened.
    #[schema(value_type = super::schemas::AlertKindSchema)]
    pub kind: budget_core::alert::AlertKind,
    /// The limiter.
    #[schema(value_type = uuid::Uuid)]
    pub limiter_id: LimiterId,
    /// Its name at the time.
    pub limiter_name: String,
    /// When it was noticed.
    pub created_at: DateTime<Utc>,
    /// The threshold reached, in percent (threshold events).
    pub threshold: Option<u16>,
    /// The window's period (threshold and exhausted events).
    #[schema(value_type = Option<super::schemas::PeriodSchema>)]
    pub period: Option<budget_core::Period>,
    /// The window's start.
    pub window_start: Option<DateTime<Utc>>,
    /// Spend in the window when it was noticed.
    #[schema(value_type = Option<super::schemas::MoneySchema>)]
    pub spent: Option<budget_core::Money>,
    /// The window's budget.
    #[schema(value_type = Option<super::schemas::MoneySchema>)]
    pub budget: Option<budget_core::Money>,
    /// Where it goes, cut to scheme and host.
    pub destination: String,
    /// The body format.
    #[schema(value_type = super::schemas::WebhookFormatSchema)]
    pub format: budget_core::alert::WebhookFormat,
    /// Where it stands.
    #[schema(value_type = super::schemas::DeliveryStatusSchema)]
    pub status: DeliveryStatus,
    /// Attempts started.
    pub attempts: u32,
    /// When it is next tried (pending).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// What the last failed attempt got (`HTTP 500`, a connection error, a timeout).
    pub last_error: Option<String>,
    /// When a receiver took it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<AlertDelivery> for AlertDeliveryView {
    fn from(d: AlertDelivery) -> Self {
        let e = d.event;
        AlertDeliveryView {
            destination: budget_core::alert::redact_url(&e.destination.url),
            format: e.destination.format,
            id: e.id,
            kind: e.kind,
            limiter_id: e.limiter_id,
            limiter_name: e.limiter_name,
            created_at: e.at,
            threshold: e.threshold,
            period: e.window.as_ref().map(|w| w.period),
            window_start: e.window.as_ref().map(|w| w.start),
            spent: e.window.as_ref().map(|w| w.spent),
            budget: e.window.as_ref().map(|w| w.budget),
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            last_error: d.last_error,
            delivered_at: d.delivered_at,
        }
    }
}

/// `GET /api/alerts` answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertsView {
    /// The server's settings.
    pub defaults: AlertDefaults,
    /// Events, newest first.
    pub deliveries: Vec<AlertDeliveryView>,
}

/// The query of `GET /alerts`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Only this limiter's events.
    #[param(value_type = Option<uuid::Uuid>)]
    pub limiter_id: Option<String>,
    /// Only events in this state: `pending`, `delivered` or `failed`.
    #[param(value_type = Option<super::schemas::DeliveryStatusSchema>)]
    pub status: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// `GET /alerts`: the server's alert settings and the events in the outbox, newest first.
#[utoipa::path(
    get,
    path = "/api/alerts",
    operation_id = "listAlerts",
    tag = "alerts",
    params(AlertParams),
    responses(
        (status = 200, description = "Settings and deliveries", body = AlertsView),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn list(
    _reader: AdminUser,
    State(state): State<AppState>,
    params: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertsView>, ApiError> {
    let Query(p) = params.map_err(|e| ApiError::bad_param("query", e.body_text()))?;
    let limiter_id = super::stats::StatsParams {
        limiter_id: p.limiter_id,
        ..Default::default()
    }
    .usage_query()?
    .limiter_id;
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::bad_param("status", "must be pending, delivered or failed")
        })?),
    };
    let limit = super::stats::parse_limit(p.limit.as_deref(), 100)?;
    let deliveries = super::error::or_empty(
        state
            .store
            .list_alerts(&AlertQuery {
                limiter_id,
                status,
                limit,
            })
            .await,
    )?;
    let c = state.alerts.config();
    Ok(Json(AlertsView {
        defaults: AlertDefaults {
            enabled: state.alerts.enabled(),
            webhook: c
                .default_destination
                .as_ref()
                .map(|d| budget_core::alert::redact_url(&d.url)),
            format: c
                .default_destination
                .as_ref()
                .map(|d| d.format)
                .unwrap_or_default(),
            thresholds: c.thresholds.clone(),
            retry_for_seconds: c.retry_for.as_secs(),
        },
        deliveries: deliveries.into_iter().map(Into::into).collect(),
    }))
}

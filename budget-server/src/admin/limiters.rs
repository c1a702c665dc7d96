//! Limiter management: create, list, read, update, delete, rotate the code, and the seed's
//! per-limiter stats.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use budget_core::store::{CounterKey, UsageQuery, WindowSpend};
use budget_core::{Limiter, LimiterId, LimiterUpdate, Money, NewLimiter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminUser;
use super::error::{ApiError, ApiJson, ErrorBody};
use super::schemas::{LimiterRecord, MoneySchema};
use crate::state::AppState;

/// A limiter as the admin API shows it: the stored limiter, its proxy URL and the figures of
/// its current budget window.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Limiter)]
pub struct LimiterView {
    /// The stored limiter.
    #[serde(flatten)]
    #[schema(value_type = LimiterRecord)]
    pub limiter: Limiter,
    /// `{PUBLIC_URL or http(s)://{Host}}/v1/{code}`: what an SDK's `base_url` is set to.
    #[schema(format = "uri")]
    pub proxy_endpoint: String,
    /// Settled spend in the current window.
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// Budget minus spend and holds of requests in flight, never negative.
    #[schema(value_type = MoneySchema)]
    pub remaining_budget: Money,
    /// Spend and holds as a percentage of the budget, two decimals.
    pub usage_percentage: f64,
    /// Start of the current window.
    pub period_start: DateTime<Utc>,
    /// End of the current window.
    pub period_end: DateTime<Utc>,
    /// Every window with its figures, primary first, when the limiter has extra windows
    /// (`extra_budgets`); empty otherwise (the fields above are the only window).
    pub windows: Vec<super::policies::WindowView>,
    /// Requests the proxy refused in the current window (whole minutes), by reason: an idle
    /// limiter and a blocked one look different.
    pub refused: RefusalCounts,
}

/// The seed's `GET /limiters/{id}/stats` answer, plus holds and token counts.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LimiterStats {
    /// The limiter's id.
    #[schema(value_type = uuid::Uuid)]
    pub limiter_id: LimiterId,
    /// Its name.
    pub limiter_name: String,
    /// Settled spend in the current window.
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// The budget per period.
    #[schema(value_type = MoneySchema)]
    pub budget_limit: Money,
    /// Budget minus spend and holds, never negative.
    #[schema(value_type = MoneySchema)]
    pub remaining_budget: Money,
    /// Spend and holds as a percentage of the budget, two decimals.
    pub usage_percentage: f64,
    /// Requests recorded in the current window.
    pub total_requests: u64,
    /// Start of the current window.
    pub period_start: DateTime<Utc>,
    /// End of the current window.
    pub period_end: DateTime<Utc>,
    /// Held by requests in flight.
    #[schema(value_type = MoneySchema)]
    pub held: Money,
    /// Requests in flight.
    pub in_flight: u64,
    /// Set aside in replicas' slices of the budget but neither spent nor held yet (PostgreSQL
    /// store with several replicas; otherwise 0). `current_spend + held + leased` never
    /// passes a strict budget.
    #[schema(value_type = MoneySchema)]
    pub leased: Money,
    /// Input tokens in the current window.
    pub prompt_tokens: u64,
    /// Output tokens in the current window.
    pub completion_tokens: u64,
    /// Input + output tokens in the current window.
    pub total_tokens: u64,
    /// Requests for unpriced models in the current window.
    pub unpriced_requests: u64,
    /// Requests with estimated counts in the current window.
    pub estimated_requests: u64,
    /// Requests the proxy refused in the current window, by reason.
    pub refused: RefusalCounts,
}

/// `(remaining, percentage)` of a window: spend and holds count as used.
pub(crate) fn budget_use(budget: Money, w: &WindowSpend) -> (Money, f64) {
    let used = w.spent.saturating_add(w.held);
    let bp = used.percent_of_bp(budget).unwrap_or(0);
    (
        budget.saturating_sub(used).non_negative(),
        bp as f64 / 100.0,
    )
}

/// The limiter's current window figures; an empty window where the store has none (a deleted
/// limiter in some stores).
pub(crate) async fn window_of(
    state: &AppState,
    limiter: &Limiter,
    now: DateTime<Utc>,
) -> Result<WindowSpend, ApiError> {
    spend_or_empty(
        state,
        &CounterKey::limiter(limiter.id, limiter.window_at(now)),
    )
    .await
}

/// One counter's figures; an empty window where the store no longer knows the limiter (a
/// deleted limiter in some stores).
pub(crate) async fn spend_or_empty(
    state: &AppState,
    key: &CounterKey,
) -> Result<WindowSpend, ApiError> {
    match state.store.window_spend(key).await {
        Ok(w) => Ok(w),
        Err(budget_core::store::Error::LimiterNotFound(_)) => Ok(WindowSpend {
            window: key.window,
            spent: Money::ZERO,
            held: Money::ZERO,
            in_flight: 0,
            leased: Default::default(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Refused requests by reason over `query` (per limiter), as the views show them: every
/// reason with its count (zeros included, in a fixed order), and the total. A store that
/// keeps no refusal counts shows zeros.
pub(crate) async fn refusals_of(
    state: &AppState,
    query: &UsageQuery,
) -> Result<std::collections::HashMap<LimiterId, RefusalCounts>, ApiError> {
    let groups = super::error::or_empty(state.store.refusals(query).await)?;
    let mut out: std::collections::HashMap<LimiterId, RefusalCounts> = Default::default();
    for g in groups {
        let c = out.entry(g.limiter_id).or_default();
        c.total += g.count;
        *c.by_reason.entry(g.reason.as_str().to_owned()).or_default() += g.count;
    }
    Ok(out)
}

/// Refused requests: the total and the count per reason.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RefusalCounts {
    /// Every refused request.
    pub total: u64,
    /// Per reason: `budget`, `inactive`, `expired`, `model_rule`, `price_guard`,
    /// `unknown_endpoint`, `other` (reasons without refusals are left out).
    pub by_reason: std::collections::BTreeMap<String, u64>,
}

/// Where clients reach this server: `PUBLIC_URL`, else `http(s)://{Host}` from the request.
#[derive(Debug, Clone)]
pub struct PublicBase(pub String);

impl FromRequestParts<AppState> for PublicBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.config.public_url {
            return Ok(PublicBase(url.trim_end_matches('/').to_owned()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.parse::<http::uri::Authority>().ok())
            .or_else(|| parts.uri.authority().cloned());
        // Only for display: a TLS-terminating reverse proxy says the outside scheme here.
        let scheme = match parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
        {
            Some("https") => "https",
            _ => parts
                .uri
                .scheme_str()
                .filter(|s| *s == "https")
                .unwrap_or("http"),
        };
        let base = match host {
            Some(h) => format!("{scheme}://{h}"),
            None => format!("http://localhost:{}", state.config.port),
        };
        Ok(PublicBase(base))
    }
}

impl PublicBase {
    /// The limiter's proxy endpoint.
    pub fn endpoint(&self, limiter: &Limiter) -> String {
        format!("{}/v1/{}", self.0, limiter.code)
    }
}

pub(crate) async fn view(
    state: &AppState,
    base: &PublicBase,
    limiter: Limiter,
    now: DateTime<Utc>,
) -> Result<LimiterView, ApiError> {
    let refused = refusals_of(
        state,
        &UsageQuery::window(limiter.id, limiter.window_at(now)),
    )
    .await?
    .remove(&limiter.id)
    .unwrap_or_default();
    view_with(state, base, limiter, now, refused).await
}

/// The views of `limiters`, their refusal counts read with one query per distinct current
/// window (limiters of the same period and time zone share one), not one per limiter.
async fn views(
    state: &AppState,
    base: &PublicBase,
    limiters: Vec<Limiter>,
    now: DateTime<Utc>,
) -> Result<Vec<LimiterView>, ApiError> {
    let mut by_window: std::collections::HashMap<
        (DateTime<Utc>, DateTime<Utc>),
        std::collections::HashMap<LimiterId, RefusalCounts>,
    > = Default::default();
    for l in &limiters {
        let w = l.window_at(now);
        if let std::collections::hash_map::Entry::Vacant(e) = by_window.entry((w.start, w.end)) {
            let all = UsageQuery {
                limiter_id: None,
                from: Some(w.start),
                to: Some(w.end),
            };
            e.insert(refusals_of(state, &all).await?);
        }
    }
    futures::future::try_join_all(limiters.into_iter().map(|l| {
        let w = l.window_at(now);
        let refused = by_window
            .get_mut(&(w.start, w.end))
            .and_then(|m| m.remove(&l.id))
            .unwrap_or_default();
        view_with(state, base, l, now, refused)
    }))
    .await
}

async fn view_with(
    state: &AppState,
    base: &PublicBase,
    mut limiter: Limiter,
    now: DateTime<Utc>,
    refused: RefusalCounts,
) -> Result<LimiterView, ApiError> {
    // A previous code whose grace period is over no longer works: not shown either.
    if limiter
        .previous_code
        .as_ref()
        .is_some_and(|p| !p.valid_at(now))
    {
        limiter.previous_code = None;
    }
    let windows = if limiter.extra_budgets.is_empty() {
        Vec::new()
    } else {
        super::policies::windows_of(state, &limiter, now).await?
    };
    // The primary window: the first of `windows` when they were read, else read alone.
    let (current_spend, remaining_budget, usage_percentage, period_start, period_end) =
        match windows.first() {
            Some(p) => (
                p.current_spend,
                p.remaining_budget,
                p.usage_percentage,
                p.period_start,
                p.period_end,
            ),
            None => {
                let w = window_of(state, &limiter, now).await?;
                let (remaining, percentage) = budget_use(limiter.budget_limit, &w);
                (w.spent, remaining, percentage, w.window.start, w.window.end)
            }
        };
    Ok(LimiterView {
        refused,
        proxy_endpoint: base.endpoint(&limiter),
        windows,
        current_spend,
        remaining_budget,
        usage_percentage,
        period_start,
        period_end,
        limiter,
    })
}

/// Parse a limiter id from the path; a malformed one is as unknown as a missing one.
pub(crate) fn parse_id(raw: &str) -> Result<LimiterId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("limiter {raw} not found")))
}

/// A live limiter by id, `404` for unknown and deleted ones.
pub(crate) async fn live_limiter(state: &AppState, raw: &str) -> Result<Limiter, ApiError> {
    let id = parse_id(raw)?;
    match state.store.get_limiter(id).await? {
        Some(l) if l.deleted_at.is_none() => Ok(l),
        _ => Err(ApiError::not_found(format!("limiter {id} not found"))),
    }
}

/// `GET /limiters` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Include deleted limiters.
    #[serde(default)]
    pub include_deleted: Option<bool>,
}

/// `GET /limiters`: live limiters, oldest first (`?include_deleted=true` adds deleted ones).
/// A viewer account sees every code masked.
#[utoipa::path(
    get,
    path = "/api/limiters",
    operation_id = "listLimiters",
    tag = "limiters",
    params(ListQuery),
    responses(
        (status = 200, description = "Limiters, oldest first", body = Vec<LimiterView>),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn list(
    reader: AdminUser,
    State(state): State<AppState>,
    base: PublicBase,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) =
        query.map_err(|_| ApiError::bad_param("include_deleted", "must be true or false"))?;
    let now = Utc::now();
    let limiters = state
        .store
        .list_limiters(q.include_deleted.unwrap_or(false))
        .await?;
    shown_to(&reader, &views(&state, &base, limiters, now).await?)
}

/// Views as `reader` may see them: whole for an admin; for a viewer, every code (`code`,
/// `previous_code.code` and the code in `proxy_endpoint`) cut to its prefix and four
/// characters, as the audit trail shows it, and a webhook URL cut to its scheme and host.
/// Viewers never see a code that works.
pub(crate) fn shown_to<T: Serialize>(
    reader: &AdminUser,
    views: &T,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut v = serde_json::to_value(views).map_err(|e| ApiError::internal(e.to_string()))?;
    if reader.role == budget_core::account::Role::Viewer {
        match &mut v {
            serde_json::Value::Array(all) => all.iter_mut().for_each(mask_codes),
            one => mask_codes(one),
        }
    }
    Ok(Json(v))
}

fn mask_codes(view: &mut serde_json::Value) {
    let Some(o) = view.as_object_mut() else {
        return;
    };
    let code = o.get("code").and_then(|c| c.as_str()).map(str::to_owned);
    if let Some(code) = code {
        let masked = super::audit::mask(&code);
        if let Some(endpoint) = o.get("proxy_endpoint").and_then(|e| e.as_str()) {
            let endpoint = endpoint.replace(&code, &masked);
            o.insert("proxy_endpoint".into(), endpoint.into());
        }
        o.insert("code".into(), masked.into());
    }
    if let Some(p) = o.get_mut("previous_code").and_then(|p| p.as_object_mut()) {
        let code = p
            .get("code")
            .and_then(|c| c.as_str())
            .map(super::audit::mask);
        if let Some(code) = code {
            p.insert("code".into(), code.into());
        }
    }
    // A webhook URL may carry its secret in the path (Slack's do): scheme and host only.
    if let Some(a) = o.get_mut("alerts").and_then(|a| a.as_object_mut()) {
        let url = a
            .get("webhook_url")
            .and_then(|u| u.as_str())
            .map(budget_core::alert::redact_url);
        if let Some(url) = url {
            a.insert("webhook_url".into(), url.into());
        }
    }
}

/// `POST /limiters`: the seed's `{name, budget_limit, period_type, base_url}` plus optional
/// fields; `base_url` defaults to `OPENAI_API_BASE_URL`. `201` with the limiter.
#[utoipa::path(
    post,
    path = "/api/limiters",
    operation_id = "createLimiter",
    tag = "limiters",
    request_body = super::schemas::LimiterCreate,
    responses((status = 201, description = "The new limiter", body = LimiterView))
)]
pub async fn create(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    base: PublicBase,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<(StatusCode, Json<LimiterView>), ApiError> {
    let Some(fields) = body.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "invalid_body",
            "The body must be a JSON object",
        ));
    };
    if fields
        .get("base_url")
        .is_none_or(serde_json::Value::is_null)
    {
        fields.insert(
            "base_url".into(),
            state.config.openai_api_base_url.clone().into(),
        );
    }
    let new: NewLimiter = ApiJson::<NewLimiter>::from_value(&body)?;
    crate::egress::check_base_url(&new.base_url, state.config.allow_link_local_upstreams)?;
    check_credential(&state, new.credential_id, new.provider.unwrap_or_default()).await?;
    super::alerts::check_settings(&state, new.alerts.as_ref())?;
    let now = Utc::now();
    let limiter = Limiter::create(new, now)?;
    state.store.create_limiter(&limiter).await?;
    tracing::info!(limiter = %limiter.id, name = %limiter.name, "limiter created");
    let after = super::audit::limiter_json(&limiter);
    super::audit::record(
        &state,
        &actor,
        "limiter.create",
        Some(limiter.id),
        None,
        None,
        Some(after),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &base, limiter, now).await?),
    ))
}

/// `GET /limiters/{id}`.
#[utoipa::path(
    get,
    path = "/api/limiters/{id}",
    operation_id = "getLimiter",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id")),
    responses(
        (status = 200, description = "The limiter", body = LimiterView),
        (status = 404, description = "Unknown or deleted", body = ErrorBody),
    )
)]
pub async fn get(
    reader: AdminUser,
    State(state): State<AppState>,
    base: PublicBase,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limiter = live_limiter(&state, &id).await?;
    shown_to(&reader, &view(&state, &base, limiter, Utc::now()).await?)
}

/// `PUT /limiters/{id}`: any subset of the create fields.
#[utoipa::path(
    put,
    path = "/api/limiters/{id}",
    operation_id = "updateLimiter",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id")),
    request_body = super::schemas::LimiterUpdate,
    responses(
        (status = 200, description = "The changed limiter", body = LimiterView),
        (status = 404, description = "Unknown or deleted", body = ErrorBody),
    )
)]
pub async fn update(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    base: PublicBase,
    Path(id): Path<String>,
    ApiJson(update): ApiJson<LimiterUpdate>,
) -> Result<Json<LimiterView>, ApiError> {
    let id = parse_id(&id)?;
    update.validate()?;
    if let Some(url) = &update.base_url {
        crate::egress::check_base_url(url, state.config.allow_link_local_upstreams)?;
    }
    let before = live_limiter(&state, &id.to_string()).await?;
    if update.credential_id.is_some() || update.provider.is_some() {
        let current = before.clone();
        check_credential(
            &state,
            update.credential_id.unwrap_or(current.credential_id),
            update.provider.unwrap_or(current.provider),
        )
        .await?;
    }
    if let Some(settings) = &update.alerts {
        super::alerts::check_settings(&state, settings.as_ref())?;
    }
    let limiter = state.store.update_limiter(id, &update).await?;
    tracing::info!(limiter = %limiter.id, "limiter updated");
    if before.is_active && !limiter.is_active {
        state
            .alerts
            .limiter_event(
                budget_core::alert::AlertKind::Deactivated,
                &limiter,
                limiter.updated_at,
            )
            .await;
    }
    super::audit::record_change(&state, &actor, "limiter.update", &before, &limiter).await;
    Ok(Json(view(&state, &base, limiter, Utc::now()).await?))
}

/// `DELETE /limiters/{id}` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Also delete the limiter's usage records.
    #[serde(default)]
    pub purge: Option<bool>,
}

/// `DELETE /limiters/{id}`: `204`; the code stops working at once. `?purge=true` also deletes
/// its usage (and works on an already deleted limiter).
#[utoipa::path(
    delete,
    path = "/api/limiters/{id}",
    operation_id = "deleteLimiter",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id"), DeleteQuery),
    responses(
        (status = 204, description = "Deleted; its code stops working at once"),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
        (status = 404, description = "Unknown, or already deleted (without `purge`)", body = ErrorBody),
    )
)]
pub async fn delete(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::bad_param("purge", "must be true or false"))?;
    let purge = q.purge.unwrap_or(false);
    let id = parse_id(&id)?;
    let before = match state.store.get_limiter(id).await? {
        Some(l) if purge || l.deleted_at.is_none() => l,
        _ => return Err(ApiError::not_found(format!("limiter {id} not found"))),
    };
    state.store.delete_limiter(id, purge).await?;
    tracing::info!(limiter = %id, purge, "limiter deleted");
    // Named by the deletion's time, so purging a limiter deleted before raises nothing new.
    state
        .alerts
        .limiter_event(
            budget_core::alert::AlertKind::Deleted,
            &before,
            before.deleted_at.unwrap_or_else(Utc::now),
        )
        .await;
    let action = if purge {
        "limiter.purge"
    } else {
        "limiter.delete"
    };
    let before = super::audit::limiter_json(&before);
    super::audit::record(&state, &actor, action, Some(id), None, Some(before), None).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The longest grace period a rotated code may keep working: 30 days.
pub const MAX_GRACE_SECONDS: u64 = 30 * 24 * 3600;

/// The optional body of `POST /limiters/{id}/rotate-code`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCode {
    /// How long the old code keeps working, in seconds (0 to 2592000, default 0: it stops at
    /// once). During the grace period both codes work, so clients can switch without downtime.
    #[serde(default)]
    #[schema(maximum = 2592000)]
    pub grace_seconds: u64,
}

/// A limiter's credential must exist and be of its provider's kind (an OpenAI key goes in
/// `Authorization`, an Azure key in `api-key`): 422 naming `credential_id` otherwise.
async fn check_credential(
    state: &AppState,
    id: Option<budget_core::CredentialId>,
    provider: budget_core::Provider,
) -> Result<(), ApiError> {
    let Some(id) = id else { return Ok(()) };
    match super::credentials::find(state, id).await {
        Ok(c) => {
            let fits = matches!(
                (provider, c.kind),
                (
                    budget_core::Provider::Openai,
                    budget_core::CredentialKind::Openai
                ) | (
                    budget_core::Provider::Azure,
                    budget_core::CredentialKind::Azure
                )
            );
            if fits {
                Ok(())
            } else {
                Err(budget_core::ValidationError::new(
                    "credential_id",
                    format!(
                        "credential {:?} is an {} key but the limiter's provider is {}: \
                         attach a key of the same kind",
                        c.name,
                        c.kind.as_str(),
                        match provider {
                            budget_core::Provider::Openai => "openai",
                            budget_core::Provider::Azure => "azure",
                        }
                    ),
                )
                .into())
            }
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(budget_core::ValidationError::new(
            "credential_id",
            format!("no credential {id}; create it with POST /api/credentials first"),
        )
        .into()),
        Err(e) => Err(e),
    }
}

/// `POST /limiters/{id}/rotate-code`: a new code. The old one stops working at once, or after
/// `grace_seconds`.
#[utoipa::path(
    post,
    path = "/api/limiters/{id}/rotate-code",
    operation_id = "rotateCode",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id")),
    request_body(content = Option<RotateCode>, description = "Optional: a grace period for the old code"),
    responses(
        (status = 200, description = "The limiter with its new code", body = LimiterView),
        (status = 404, description = "Unknown or deleted", body = ErrorBody),
    )
)]
pub async fn rotate_code(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    base: PublicBase,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<LimiterView>, ApiError> {
    let old = live_limiter(&state, &id).await?;
    let options: RotateCode = if body.iter().all(u8::is_ascii_whitespace) {
        RotateCode::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                "The body is not valid JSON",
            )
        })?;
        ApiJson::<RotateCode>::from_value(&value)?
    };
    if options.grace_seconds > MAX_GRACE_SECONDS {
        return Err(budget_core::ValidationError::new(
            "grace_seconds",
            format!("must be at most {MAX_GRACE_SECONDS} (30 days)"),
        )
        .into());
    }
    let keep_old_until = (options.grace_seconds > 0)
        .then(|| Utc::now() + chrono::Duration::seconds(options.grace_seconds as i64));
    let limiter = state.store.rotate_code(old.id, keep_old_until).await?;
    tracing::info!(limiter = %limiter.id, grace_seconds = options.grace_seconds, "limiter code rotated");
    super::audit::record_change(&state, &actor, "limiter.rotate_code", &old, &limiter).await;
    Ok(Json(view(&state, &base, limiter, Utc::now()).await?))
}

/// `GET /limiters/{id}/stats`: the current window's spend, budget and request count.
#[utoipa::path(
    get,
    path = "/api/limiters/{id}/stats",
    operation_id = "limiterStats",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id")),
    responses(
        (status = 200, description = "The current window", body = LimiterStats),
        (status = 404, description = "Unknown or deleted", body = ErrorBody),
    )
)]
pub async fn stats(
    _admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LimiterStats>, ApiError> {
    let limiter = live_limiter(&state, &id).await?;
    let now = Utc::now();
    let w = window_of(&state, &limiter, now).await?;
    let totals = state
        .store
        .usage_totals(&UsageQuery::window(limiter.id, w.window))
        .await?;
    let (remaining_budget, usage_percentage) = budget_use(limiter.budget_limit, &w);
    let refused = refusals_of(&state, &UsageQuery::window(limiter.id, w.window))
        .await?
        .remove(&limiter.id)
        .unwrap_or_default();
    Ok(Json(LimiterStats {
        refused,
        limiter_id: limiter.id,
        limiter_name: limiter.name,
        current_spend: w.spent,
        budget_limit: limiter.budget_limit,
        remaining_budget,
        usage_percentage,
        total_requests: totals.requests,
        period_start: w.window.start,
        period_end: w.window.end,
        held: w.held,
        in_flight: w.in_flight,
        leased: w.leased,
        prompt_tokens: totals.prompt_tokens,
        completion_tokens: totals.completion_tokens,
        total_tokens: totals.total_tokens,
        unpriced_requests: totals.unpriced_requests,
        estimated_requests: totals.estimated_requests,
    }))
}

//! Budget policies on the admin API: every window of a limiter with its figures, end users'
//! spend against their budgets, and per-user budget overrides.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use budget_core::policy::BudgetWindow;
use std::collections::HashMap;

use budget_core::store::{GroupBy, UsageQuery};
use budget_core::{Limiter, LimiterUpdate, Money, Period, Window};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::AdminUser;
use super::error::{ApiError, ApiJson, ErrorBody};
use super::limiters::{budget_use, live_limiter, spend_or_empty, view, LimiterView, PublicBase};
use super::schemas::{BudgetWindowSchema, MoneySchema, PeriodSchema};
use crate::state::AppState;

/// One budget window of a limiter, now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WindowView {
    /// The period (`hour`, `day`, …).
    #[schema(value_type = PeriodSchema)]
    pub period_type: Period,
    /// The budget per period.
    #[schema(value_type = MoneySchema)]
    pub budget_limit: Money,
    /// True for the limiter's own `budget_limit`/`period_type`; false for an extra window.
    pub primary: bool,
    /// Settled spend in the window.
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// Held by requests in flight.
    #[schema(value_type = MoneySchema)]
    pub held: Money,
    /// Set aside in replicas' slices but neither spent nor held yet (PostgreSQL store with
    /// several replicas; otherwise 0).
    #[schema(value_type = MoneySchema)]
    pub leased: Money,
    /// Budget minus spend and holds, never negative.
    #[schema(value_type = MoneySchema)]
    pub remaining_budget: Money,
    /// Spend and holds as a percentage of the budget, two decimals.
    pub usage_percentage: f64,
    /// Start of the window.
    pub period_start: DateTime<Utc>,
    /// End of the window (when it resets).
    pub period_end: DateTime<Utc>,
}

/// Every window of `limiter` at `now`, primary first. A store that no longer knows the
/// limiter (deleted, in some stores) shows empty windows.
pub(crate) async fn windows_of(
    state: &AppState,
    limiter: &Limiter,
    now: DateTime<Utc>,
) -> Result<Vec<WindowView>, ApiError> {
    let lines = limiter.budget_lines(now, None);
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.into_iter().enumerate() {
        let w = spend_or_empty(state, &line.key).await?;
        let (remaining_budget, usage_percentage) = budget_use(line.budget, &w);
        out.push(WindowView {
            period_type: line.period,
            budget_limit: line.budget,
            primary: i == 0,
            current_spend: w.spent,
            held: w.held,
            leased: w.leased,
            remaining_budget,
            usage_percentage,
            period_start: w.window.start,
            period_end: w.window.end,
        });
    }
    Ok(out)
}

/// An end user of a limiter: their spend in their budget's current window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// The end-user id (the request's `user` field or the configured header).
    pub user: String,
    /// Their budget: an override, else the limiter's `user_budget`; `null` when neither.
    #[schema(value_type = Option<BudgetWindowSchema>)]
    pub budget: Option<BudgetWindow>,
    /// True when the budget is an override for this user.
    pub is_override: bool,
    /// Settled spend in the window (their budget's, else the limiter's primary window).
    #[schema(value_type = MoneySchema)]
    pub current_spend: Money,
    /// Requests in that window.
    pub requests: u64,
    /// Spend as a percentage of their budget (two decimals); `null` without a budget.
    pub usage_percentage: Option<f64>,
    /// Start of the window.
    pub period_start: DateTime<Utc>,
    /// End of the window.
    pub period_end: DateTime<Utc>,
}

/// One period's window and each user's spend and requests in it.
type PeriodUsers = (Window, HashMap<String, (Money, u64)>);

/// `GET /limiters/{id}/users` query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// At most this many users, top spenders first (1 to 1000, default 20); users with an
    /// override are always listed.
    pub limit: Option<usize>,
}

/// `GET /limiters/{id}/users`: the limiter's top-spending end users in the current window of
/// the per-user budget (else of the limiter's own period), and every user with an override.
#[utoipa::path(
    get,
    path = "/api/limiters/{id}/users",
    operation_id = "limiterUsers",
    tag = "limiters",
    params(("id" = uuid::Uuid, Path, description = "The limiter's id"), UsersQuery),
    responses(
        (status = 200, description = "End users, top spenders first", body = Vec<UserView>),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
        (status = 404, description = "Unknown or deleted", body = ErrorBody),
    )
)]
pub async fn users(
    _admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let Query(q) = query.map_err(|_| ApiError::bad_param("limit", "must be a number"))?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_param("limit", "must be between 1 and 1000"));
    }
    let limiter = live_limiter(&state, &id).await?;
    let now = Utc::now();
    let period = limiter
        .user_budget
        .map_or(limiter.period_type, |w| w.period_type);
    let window = period.window_at_in(now, limiter.timezone);
    let top = state
        .store
        .usage_breakdown(
            &UsageQuery::window(limiter.id, window),
            GroupBy::User,
            limit,
        )
        .await?;
    let mut users: Vec<(String, Option<(Money, u64)>)> = top
        .into_iter()
        .filter_map(|g| g.key.map(|u| (u, Some((g.totals.cost, g.totals.requests)))))
        .collect();
    for user in limiter.user_overrides.keys() {
        if !users.iter().any(|(u, _)| u == user) {
            users.push((user.clone(), None));
        }
    }
    // Each user's spend and requests in their own budget's window: the listing's figures when
    // that is the listing's window and it had them, else one breakdown per period (every user
    // of the window at once, so an override with little spend is not cut off by the limit).
    let own_period = |user: &str| {
        limiter
            .user_budget_of(user)
            .map_or(period, |b| b.period_type)
    };
    let mut by_period: HashMap<Period, PeriodUsers> = HashMap::new();
    for (user, listed) in &users {
        let own = own_period(user);
        if (listed.is_none() || own != period) && !by_period.contains_key(&own) {
            let w = own.window_at_in(now, limiter.timezone);
            let groups = state
                .store
                .usage_breakdown(
                    &UsageQuery::window(limiter.id, w),
                    GroupBy::User,
                    usize::MAX,
                )
                .await?;
            let all = groups
                .into_iter()
                .filter_map(|g| g.key.map(|u| (u, (g.totals.cost, g.totals.requests))))
                .collect();
            by_period.insert(own, (w, all));
        }
    }
    let mut out = Vec::with_capacity(users.len());
    for (user, listed) in users {
        let budget = limiter.user_budget_of(&user).copied();
        let own = own_period(&user);
        let (window, (spent, requests)) = match listed {
            Some(figures) if own == period => (window, figures),
            _ => {
                let (w, all) = &by_period[&own];
                (*w, all.get(&user).copied().unwrap_or((Money::ZERO, 0)))
            }
        };
        out.push(UserView {
            is_override: limiter.user_overrides.contains_key(&user),
            usage_percentage: budget
                .map(|b| spent.percent_of_bp(b.budget_limit).unwrap_or(0) as f64 / 100.0),
            budget,
            current_spend: spent,
            requests,
            period_start: window.start,
            period_end: window.end,
            user,
        });
    }
    Ok(Json(out))
}

/// `PUT /limiters/{id}/users/{user}`: give one end user a budget of their own (in place of the
/// limiter's `user_budget`).
#[utoipa::path(
    put,
    path = "/api/limiters/{id}/users/{user}",
    operation_id = "setUserBudget",
    tag = "limiters",
    params(
        ("id" = uuid::Uuid, Path, description = "The limiter's id"),
        ("user" = String, Path, description = "The end-user id, 1 to 256 characters"),
    ),
    request_body = BudgetWindowSchema,
    responses(
        (status = 200, description = "The limiter with the override", body = LimiterView),
        (status = 400, description = "Invalid budget or user id (named in `field`)", body = ErrorBody),
        (status = 404, description = "Unknown or deleted limiter", body = ErrorBody),
    )
)]
pub async fn set_user(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    base: PublicBase,
    Path((id, user)): Path<(String, String)>,
    ApiJson(budget): ApiJson<BudgetWindow>,
) -> Result<Json<LimiterView>, ApiError> {
    let before = live_limiter(&state, &id).await?;
    let update = LimiterUpdate {
        user_override: Some((user.clone(), Some(budget))),
        ..Default::default()
    };
    let limiter = state.store.update_limiter(before.id, &update).await?;
    tracing::info!(limiter = %limiter.id, "user budget override set");
    super::audit::record(
        &state,
        &actor,
        "limiter.user_override.set",
        Some(limiter.id),
        Some(user.clone()),
        before
            .user_overrides
            .get(&user)
            .map(|w| serde_json::to_value(w).unwrap_or_default()),
        limiter
            .user_overrides
            .get(&user)
            .map(|w| serde_json::to_value(w).unwrap_or_default()),
    )
    .await;
    Ok(Json(view(&state, &base, limiter, Utc::now()).await?))
}

/// `DELETE /limiters/{id}/users/{user}`: remove one end user's override (they fall back to
/// the limiter's `user_budget`).
#[utoipa::path(
    delete,
    path = "/api/limiters/{id}/users/{user}",
    operation_id = "removeUserBudget",
    tag = "limiters",
    params(
        ("id" = uuid::Uuid, Path, description = "The limiter's id"),
        ("user" = String, Path, description = "The end-user id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Unknown limiter, or no override for this user", body = ErrorBody),
    )
)]
pub async fn remove_user(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    Path((id, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let limiter = live_limiter(&state, &id).await?;
    if !limiter.user_overrides.contains_key(&user) {
        return Err(ApiError::not_found(format!(
            "limiter {} has no budget override for this user",
            limiter.id
        )));
    }
    let before = limiter
        .user_overrides
        .get(&user)
        .map(|w| serde_json::to_value(w).unwrap_or_default());
    let update = LimiterUpdate {
        user_override: Some((user.clone(), None)),
        ..Default::default()
    };
    state.store.update_limiter(limiter.id, &update).await?;
    super::audit::record(
        &state,
        &actor,
        "limiter.user_override.remove",
        Some(limiter.id),
        Some(user),
        before,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

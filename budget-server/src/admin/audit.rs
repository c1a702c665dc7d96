//! The audit trail of admin actions (`GET /api/audit`): who (the account), when, from where
//! (the client address; the forwarded client behind a trusted proxy), what, and the changed
//! fields before → after. Limiter codes are masked to their first characters and upstream
//! keys never appear. Entries are append-only: the API has no way to change or remove one.

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::Json;
use budget_core::audit::{changed, AuditEntry, AuditQuery};
use budget_core::{Limiter, LimiterId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::{peer_ip, AdminUser};
use super::error::{ApiError, ErrorBody};
use crate::forwarded;
use crate::state::AppState;

/// Who acts, and from where: the admin account and the client's address. Extracting it
/// takes an [`AdminUser`], so a viewer account gets `403 forbidden`.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The account's name.
    pub name: String,
    /// The client's address.
    pub client: Option<String>,
}

/// The client address an audit entry records: the forwarded client when the peer is a
/// trusted proxy, else the peer.
pub fn client_of(parts: &Parts, state: &AppState) -> Option<String> {
    forwarded::client_addrs(peer_ip(parts), &parts.headers, state.auth.trusted_proxies())
        .into_iter()
        .filter_map(|(_, ip)| ip)
        .next_back()
        .map(|ip| ip.to_string())
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let admin = AdminUser::from_request_parts(parts, state).await?;
        Ok(Actor {
            name: admin.0.username,
            client: client_of(parts, state),
        })
    }
}

/// A limiter as the audit trail shows it: its fields, with codes masked.
pub fn limiter_json(l: &Limiter) -> serde_json::Value {
    let mut v = serde_json::to_value(l).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("code".into(), mask(l.code.as_str()).into());
        if let Some(url) = l.alerts.as_ref().and_then(|a| a.webhook_url.as_deref()) {
            // A webhook URL's path may be its secret (Slack's are).
            if let Some(a) = o.get_mut("alerts").and_then(|a| a.as_object_mut()) {
                a.insert(
                    "webhook_url".into(),
                    budget_core::alert::redact_url(url).into(),
                );
            }
        }
        if let Some(p) = &l.previous_code {
            o.insert(
                "previous_code".into(),
                serde_json::json!({"code": mask(p.code.as_str()), "until": p.until}),
            );
        }
    }
    v
}

/// A code as the audit trail shows it: its prefix and four characters.
pub fn mask(code: &str) -> String {
    let keep = code
        .strip_prefix(budget_core::LimiterCode::PREFIX)
        .map_or(0, |_| budget_core::LimiterCode::PREFIX.len())
        + 4;
    format!("{}…", &code[..code.len().min(keep)])
}

/// Record one action. A store that keeps no audit trail is skipped; a failure to write is
/// logged at error level (the action itself already happened).
pub async fn record(
    state: &AppState,
    actor: &Actor,
    action: &str,
    limiter_id: Option<LimiterId>,
    target: Option<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    let mut e = AuditEntry::new(actor.name.clone(), action);
    e.client = actor.client.clone();
    e.limiter_id = limiter_id;
    e.target = target;
    e.before = before;
    e.after = after;
    append(state, &e).await;
}

/// Record a change of a limiter: only the fields that changed, before and after.
pub async fn record_change(
    state: &AppState,
    actor: &Actor,
    action: &str,
    before: &Limiter,
    after: &Limiter,
) {
    let (b, a) = changed(&limiter_json(before), &limiter_json(after));
    record(state, actor, action, Some(after.id), None, Some(b), Some(a)).await;
}

/// Append `e` (see [`record`]).
pub async fn append(state: &AppState, e: &AuditEntry) {
    match state.store.append_audit(e).await {
        Ok(()) | Err(budget_core::store::Error::Unsupported(_)) => {}
        Err(err) => {
            tracing::error!(error = %err, action = %e.action, actor = %e.actor, "audit entry not written")
        }
    }
}

/// An audit entry as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Identifier.
    #[schema(value_type = uuid::Uuid)]
    pub id: uuid::Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// The account (for a failed login, the name that was tried).
    pub actor: String,
    /// The client's address.
    pub client: Option<String>,
    /// What: `login.succeeded`, `login.failed`, `limiter.create`, `limiter.update`,
    /// `limiter.delete`, `limiter.purge`, `limiter.rotate_code`, `limiter.user_override.set`,
    /// `limiter.user_override.remove`, `credential.create`, `credential.update`,
    /// `credential.rotate`, `credential.delete`, `credential.reseal` (at start-up, by
    /// `budget-server`, when `SECRETS_KEY` is replaced), `account.create`, `account.update`
    /// (role or disabled, before → after), `account.password_reset` (by an admin),
    /// `account.password_change` (by the account itself).
    pub action: String,
    /// The limiter it concerns.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub limiter_id: Option<LimiterId>,
    /// Another object it concerns (a credential's id, an end user's id).
    pub target: Option<String>,
    /// The changed fields before (codes masked, keys never included).
    pub before: Option<serde_json::Value>,
    /// The changed fields after.
    pub after: Option<serde_json::Value>,
}

/// The query of `GET /audit`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this limiter's entries.
    #[param(value_type = Option<uuid::Uuid>)]
    pub limiter_id: Option<String>,
    /// Only this account's entries.
    pub actor: Option<String>,
    /// Entries at or after (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Entries before (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// `GET /audit`: the audit trail, newest first.
#[utoipa::path(
    get,
    path = "/api/audit",
    operation_id = "listAudit",
    tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuditView>),
        (status = 403, description = "A viewer account (`forbidden`): the audit trail is for admins", body = ErrorBody),
        (status = 400, description = "Bad query parameter (named in `field`)", body = ErrorBody),
    )
)]
pub async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
    params: Result<Query<AuditParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    admin.require_admin()?;
    let Query(p) = params.map_err(|e| ApiError::bad_param("query", e.body_text()))?;
    let range = super::stats::StatsParams {
        from: p.from,
        to: p.to,
        limiter_id: p.limiter_id,
        ..Default::default()
    }
    .usage_query()?;
    let limit = super::stats::parse_limit(p.limit.as_deref(), 100)?;
    let query = AuditQuery {
        limiter_id: range.limiter_id,
        actor: p.actor.filter(|a| !a.is_empty()),
        from: range.from,
        to: range.to,
        limit,
    };
    let entries = super::error::or_empty(state.store.list_audit(&query).await)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: e.at,
                actor: e.actor,
                client: e.client,
                action: e.action,
                limiter_id: e.limiter_id,
                target: e.target,
                before: e.before,
                after: e.after,
            })
            .collect(),
    ))
}

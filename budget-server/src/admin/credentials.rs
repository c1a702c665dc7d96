//! Upstream credentials held by the server (`/api/credentials`): an OpenAI key or an Azure
//! `api-key`, sealed under `SECRETS_KEY` before it reaches the store. The key is write-only:
//! no answer ever carries it, only its last four characters and a fingerprint.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use budget_core::credential::{Credential, CredentialId, CredentialKind};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::AdminUser;
use super::error::{or_empty, ApiError, ApiJson, ErrorBody};
use crate::secrets::{check_key, fingerprint, hint, Sealer};
use crate::state::AppState;

/// An upstream credential as the admin API shows it (never the key itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CredentialView {
    /// Identifier.
    #[schema(value_type = uuid::Uuid)]
    pub id: CredentialId,
    /// Unique name.
    pub name: String,
    /// `openai` (sent as `Authorization: Bearer`) or `azure` (sent as `api-key`).
    #[schema(value_type = CredentialKindSchema)]
    pub kind: CredentialKind,
    /// `OpenAI-Organization` sent with the key.
    pub organization: Option<String>,
    /// `OpenAI-Project` sent with the key.
    pub project: Option<String>,
    /// The key's last four characters, e.g. `…x9Qa`.
    pub key_hint: String,
    /// `sha256:` and the first 12 hex digits of the key's SHA-256 (compare with
    /// `printf %s "$KEY" | sha256sum`).
    pub fingerprint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the key itself was last set.
    pub rotated_at: DateTime<Utc>,
    /// Live limiters that send it.
    pub limiter_count: u64,
}

/// Which header the key goes upstream in.
#[derive(ToSchema)]
#[schema(as = CredentialKind)]
#[allow(dead_code)]
pub enum CredentialKindSchema {
    /// OpenAI or OpenAI-compatible: `Authorization: Bearer <key>`.
    #[schema(rename = "openai")]
    Openai,
    /// Azure OpenAI: `api-key: <key>`.
    #[schema(rename = "azure")]
    Azure,
}

/// The body of `POST /api/credentials`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialCreate {
    /// Unique name, 1 to 100 characters of letters, digits, `.`, `_`, `-` and spaces.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// `openai` (default) or `azure`.
    #[serde(default)]
    #[schema(value_type = Option<CredentialKindSchema>)]
    pub kind: CredentialKind,
    /// The key, 8 to 1024 visible ASCII characters. Stored sealed; never shown again.
    #[schema(min_length = 8, max_length = 1024, format = "password")]
    pub api_key: String,
    /// `OpenAI-Organization` to send with it (OpenAI only).
    #[serde(default)]
    pub organization: Option<String>,
    /// `OpenAI-Project` to send with it (OpenAI only).
    #[serde(default)]
    pub project: Option<String>,
}

/// The body of `PUT /api/credentials/{id}`: any of the fields. A new `api_key` is a rotation:
/// every limiter using the credential sends it from its next request, on every replica.
/// `organization` and `project` set to `null` remove them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdate {
    /// New name.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// A new key (rotation).
    #[serde(default)]
    #[schema(min_length = 8, max_length = 1024, format = "password")]
    pub api_key: Option<String>,
    /// New `OpenAI-Organization`; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub organization: Option<Option<String>>,
    /// New `OpenAI-Project`; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub project: Option<Option<String>>,
}

/// A credential as the audit trail shows it: never the key, only its hint and fingerprint.
fn audit_json(c: &Credential) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "kind": c.kind.as_str(),
        "organization": c.organization,
        "project": c.project,
        "key_hint": c.hint,
        "fingerprint": c.fingerprint,
    })
}

/// Now, to the microsecond: what the store keeps, so answers before and after a restart agree.
fn micros_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// A present field (even `null`) is `Some`.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The sealer, or the 400 that says how to get one.
fn sealer(state: &AppState) -> Result<&Sealer, ApiError> {
    state.sealer.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "secrets_key_missing",
            "The server cannot store upstream keys: SECRETS_KEY is not set. Generate one with \
             `openssl rand -base64 32`, set SECRETS_KEY to it and restart (see \
             docs/upstream-keys.md)",
        )
    })
}

fn checked_key(kind: CredentialKind, key: &str) -> Result<(), ApiError> {
    check_key(kind, key).map_err(|reason| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "validation_failed",
            format!("api_key: {reason}"),
        )
        .with_field("api_key")
    })
}

async fn views(
    state: &AppState,
    credentials: Vec<Credential>,
) -> Result<Vec<CredentialView>, ApiError> {
    let limiters = state.store.list_limiters(false).await?;
    Ok(credentials
        .into_iter()
        .map(|c| {
            let limiter_count = limiters
                .iter()
                .filter(|l| l.credential_id == Some(c.id))
                .count() as u64;
            CredentialView {
                id: c.id,
                name: c.name,
                kind: c.kind,
                organization: c.organization,
                project: c.project,
                key_hint: c.hint,
                fingerprint: c.fingerprint,
                created_at: c.created_at,
                updated_at: c.updated_at,
                rotated_at: c.rotated_at,
                limiter_count,
            }
        })
        .collect())
}

async fn one_view(state: &AppState, c: Credential) -> Result<CredentialView, ApiError> {
    Ok(views(state, vec![c]).await?.remove(0))
}

pub(crate) fn parse_id(raw: &str) -> Result<CredentialId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("credential {raw:?} not found")))
}

/// The stored credential `id` (the store's own look-up, from memory); 404 if there is none.
pub(crate) async fn find(state: &AppState, id: CredentialId) -> Result<Credential, ApiError> {
    state
        .store
        .find_credential(id)
        .await?
        .map(|c| Credential::clone(&c))
        .ok_or_else(|| ApiError::not_found(format!("credential {id} not found")))
}

/// `GET /credentials`: every credential, by name.
#[utoipa::path(
    get,
    path = "/api/credentials",
    operation_id = "listCredentials",
    tag = "credentials",
    responses((status = 200, description = "Every credential, by name (never the keys)", body = Vec<CredentialView>))
)]
pub async fn list(
    _admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<CredentialView>>, ApiError> {
    let all = or_empty(state.store.list_credentials().await)?;
    Ok(Json(views(&state, all).await?))
}

/// `POST /credentials`: store an upstream key, sealed.
#[utoipa::path(
    post,
    path = "/api/credentials",
    operation_id = "createCredential",
    tag = "credentials",
    request_body = CredentialCreate,
    responses(
        (status = 201, description = "Stored; the key is never shown again", body = CredentialView),
        (status = 400, description = "`SECRETS_KEY` is not set (`secrets_key_missing`)", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    )
)]
pub async fn create(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CredentialCreate>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    let sealer = sealer(&state)?;
    let key = Zeroizing::new(body.api_key);
    checked_key(body.kind, &key)?;
    let now = micros_now();
    let id = CredentialId::new();
    let credential = Credential {
        id,
        name: body.name.trim().to_owned(),
        kind: body.kind,
        organization: body.organization,
        project: body.project,
        sealed: sealer.seal(id, &key),
        hint: hint(&key),
        fingerprint: fingerprint(&key),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    };
    credential.validate()?;
    state.store.create_credential(&credential).await?;
    tracing::info!(credential = %id, name = %credential.name, kind = credential.kind.as_str(), "upstream credential created");
    let after = audit_json(&credential);
    super::audit::record(
        &state,
        &actor,
        "credential.create",
        None,
        Some(id.to_string()),
        None,
        Some(after),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(one_view(&state, credential).await?),
    ))
}

/// `GET /credentials/{id}`.
#[utoipa::path(
    get,
    path = "/api/credentials/{id}",
    operation_id = "getCredential",
    tag = "credentials",
    params(("id" = uuid::Uuid, Path, description = "The credential's id")),
    responses(
        (status = 200, description = "The credential (never the key)", body = CredentialView),
        (status = 404, description = "Unknown", body = ErrorBody),
    )
)]
pub async fn get(
    _admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CredentialView>, ApiError> {
    let c = find(&state, parse_id(&id)?).await?;
    Ok(Json(one_view(&state, c).await?))
}

/// `PUT /credentials/{id}`: rename, change headers, or rotate the key.
#[utoipa::path(
    put,
    path = "/api/credentials/{id}",
    operation_id = "updateCredential",
    tag = "credentials",
    params(("id" = uuid::Uuid, Path, description = "The credential's id")),
    request_body = CredentialUpdate,
    responses(
        (status = 200, description = "The credential as changed", body = CredentialView),
        (status = 400, description = "A new key without `SECRETS_KEY` (`secrets_key_missing`)", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "The new name is another's", body = ErrorBody),
    )
)]
pub async fn update(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CredentialUpdate>,
) -> Result<Json<CredentialView>, ApiError> {
    let mut c = find(&state, parse_id(&id)?).await?;
    let before = audit_json(&c);
    let now = micros_now();
    if let Some(name) = body.name {
        c.name = name.trim().to_owned();
    }
    if let Some(o) = body.organization {
        c.organization = o;
    }
    if let Some(p) = body.project {
        c.project = p;
    }
    let rotated = body.api_key.is_some();
    if let Some(key) = body.api_key {
        let key = Zeroizing::new(key);
        checked_key(c.kind, &key)?;
        c.sealed = sealer(&state)?.seal(c.id, &key);
        c.hint = hint(&key);
        c.fingerprint = fingerprint(&key);
        c.rotated_at = now;
    }
    c.updated_at = now;
    c.validate()?;
    state.store.update_credential(&c).await?;
    tracing::info!(credential = %c.id, name = %c.name, rotated, "upstream credential updated");
    let (b, a) = budget_core::audit::changed(&before, &audit_json(&c));
    let action = if rotated {
        "credential.rotate"
    } else {
        "credential.update"
    };
    super::audit::record(
        &state,
        &actor,
        action,
        None,
        Some(c.id.to_string()),
        Some(b),
        Some(a),
    )
    .await;
    Ok(Json(one_view(&state, c).await?))
}

/// `DELETE /credentials/{id}`: only when no live limiter uses it.
#[utoipa::path(
    delete,
    path = "/api/credentials/{id}",
    operation_id = "deleteCredential",
    tag = "credentials",
    params(("id" = uuid::Uuid, Path, description = "The credential's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Live limiters use it (named in the message); detach it first", body = ErrorBody),
    )
)]
pub async fn delete(
    actor: super::audit::Actor,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let before = find(&state, id).await.ok().map(|c| audit_json(&c));
    state.store.delete_credential(id).await?;
    tracing::info!(credential = %id, "upstream credential deleted");
    super::audit::record(
        &state,
        &actor,
        "credential.delete",
        None,
        Some(id.to_string()),
        before,
        None,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

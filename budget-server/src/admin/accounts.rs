//! Team accounts (`/api/accounts`, `/api/auth/me`, `/api/auth/password`): named admin and
//! viewer accounts kept in the store, beside the bootstrap admin of `ADMIN_USERNAME`.
//!
//! - Admins create accounts, change their role, disable and enable them, and reset their
//!   password. Nobody disables or demotes themselves (`409`), so an admin cannot lock
//!   themselves out by accident; the bootstrap admin always remains.
//! - Anyone signed in reads who they are (`GET /auth/me`) and changes their own password
//!   with the current one (`POST /auth/password`); the bootstrap admin's password lives in
//!   `ADMIN_PASSWORD` only.
//! - A password change (own or reset) and disabling bump the account's `token_version`: every
//!   token it held stops working at once.
//! - Passwords are hashed with argon2id ([`super::auth::hash_password`], off the async
//!   runtime) and neither they nor their hashes are ever answered or audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use budget_core::account::{validate_username, Account, AccountId, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::audit::Actor;
use super::auth::{
    attempt_succeeded, begin_attempt, session_answer, AdminUser, LoginAddress, LoginClient,
    LoginResponse, RoleSchema, SessionCookies, SignedIn,
};
use super::error::{ApiError, ApiJson, ErrorBody};
use super::session::OverTls;
use crate::state::AppState;

/// The fewest characters a password may have.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The most bytes a password may have (argon2 hashes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// An account as the API shows it (never its password or hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountView {
    /// Identifier.
    #[schema(value_type = uuid::Uuid)]
    pub id: AccountId,
    /// The name it logs in with (unique ignoring case).
    pub username: String,
    /// `admin` or `viewer`.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// A disabled account cannot log in and its tokens are refused.
    pub disabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id,
            username: a.username.clone(),
            role: a.role,
            disabled: a.disabled,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// `GET /auth/me`: who is signed in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MeView {
    /// The account's user name.
    pub username: String,
    /// `admin` or `viewer`.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// Whether this is the bootstrap admin of `ADMIN_USERNAME` (its password is changed in
    /// `ADMIN_PASSWORD`, not through the API).
    pub bootstrap: bool,
    /// The stored account's id (`null` for the bootstrap admin).
    #[schema(value_type = Option<uuid::Uuid>)]
    pub id: Option<AccountId>,
}

/// The body of `POST /api/accounts`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountCreate {
    /// 1 to 64 characters of ASCII letters, digits, `.`, `_`, `@` and `-`; unique ignoring
    /// case, and not the bootstrap admin's name.
    #[schema(min_length = 1, max_length = 64)]
    pub username: String,
    /// At least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024, format = "password")]
    pub password: String,
    /// `admin` or `viewer`.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
}

/// The body of `PUT /api/accounts/{id}`: any of the fields. A new password (a reset) or
/// `disabled: true` ends every session of the account at once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountUpdate {
    /// New role.
    #[serde(default)]
    #[schema(value_type = Option<RoleSchema>)]
    pub role: Option<Role>,
    /// Disable (`true`) or enable (`false`).
    #[serde(default)]
    pub disabled: Option<bool>,
    /// A new password (a reset by an admin), at least 12 characters, at most 1024 bytes.
    #[serde(default)]
    #[schema(min_length = 12, max_length = 1024, format = "password")]
    pub password: Option<String>,
}

/// The body of `POST /api/auth/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The account's password now.
    #[schema(format = "password")]
    pub current_password: String,
    /// The new one, at least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024, format = "password")]
    pub new_password: String,
}

fn conflict(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "invalid_request_error",
        "conflict",
        message,
    )
}

fn invalid(field: &'static str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_request_error",
        "validation_failed",
        format!("{field}: {reason}"),
    )
    .with_field(field)
}

/// Check a new password's length: 422 naming `field`.
pub fn check_password(field: &'static str, password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(invalid(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(invalid(
            field,
            format!("must be at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// The argon2id hash of `password`, computed off the async runtime.
async fn hash(password: String) -> Result<String, ApiError> {
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || super::auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

/// Now, to the microsecond: what the stores keep, so answers before and after a restart agree.
fn micros_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// An account as the audit trail shows it: never the password or its hash.
fn audit_json(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "username": a.username,
        "role": a.role.as_str(),
        "disabled": a.disabled,
    })
}

fn parse_id(raw: &str) -> Result<AccountId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("account {raw:?} not found")))
}

/// Every stored account (none when the store keeps none).
async fn all(state: &AppState) -> Result<Vec<Account>, ApiError> {
    super::error::or_empty(state.store.list_accounts().await)
}

async fn find(state: &AppState, id: AccountId) -> Result<Account, ApiError> {
    all(state)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))
}

/// `GET /auth/me`: the signed-in account, in any role.
#[utoipa::path(
    get,
    path = "/api/auth/me",
    operation_id = "me",
    tag = "auth",
    responses((status = 200, description = "Who is signed in", body = MeView))
)]
pub async fn me(user: SignedIn) -> Json<MeView> {
    Json(MeView {
        bootstrap: user.is_bootstrap(),
        id: user.account.as_ref().map(|a| a.id),
        username: user.username,
        role: user.role,
    })
}

/// `POST /auth/password`: change one's own password (any role). Every other session of the
/// account ends; the answer is a new session, like a login's. Wrong current passwords count
/// against the client's login throttle.
#[utoipa::path(
    post,
    path = "/api/auth/password",
    operation_id = "changePassword",
    tag = "auth",
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Changed; a new token (also set as the session cookies), every older one stops working", body = LoginResponse),
        (status = 409, description = "The bootstrap admin: its password is `ADMIN_PASSWORD`", body = ErrorBody),
        (status = 422, description = "`current_password` is wrong, or `new_password` too short or long", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords from this client", body = ErrorBody),
    )
)]
pub async fn change_password(
    user: SignedIn,
    State(state): State<AppState>,
    client: LoginClient,
    address: LoginAddress,
    OverTls(secure): OverTls,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<(SessionCookies, Json<LoginResponse>), ApiError> {
    let Some(mut account) = user.account.clone() else {
        return Err(conflict(
            "The bootstrap admin's password is set by ADMIN_PASSWORD in the server's \
             environment; change it there and restart",
        ));
    };
    let current = Zeroizing::new(body.current_password);
    let new = body.new_password;
    check_password("new_password", &new)?;
    begin_attempt(&state, &client)?;
    let auth = state.auth.clone();
    let checked = account.clone();
    let ok =
        tokio::task::spawn_blocking(move || auth.check_account_password(Some(&checked), &current))
            .await
            .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?;
    if !ok {
        tracing::warn!(account = %account.username, client = ?client.0, "password change with a wrong current password");
        return Err(invalid(
            "current_password",
            "is not this account's password",
        ));
    }
    attempt_succeeded(&state, &client);
    account.password_hash = hash(new).await?;
    account.token_version += 1;
    account.updated_at = micros_now();
    state.store.update_account(&account).await?;
    tracing::info!(account = %account.username, "account password changed by its owner");
    let actor = Actor {
        name: account.username.clone(),
        client: address.0,
    };
    super::audit::record(
        &state,
        &actor,
        "account.password_change",
        None,
        Some(account.id.to_string()),
        None,
        None,
    )
    .await;
    session_answer(&state, Some(&account), secure)
}

/// `GET /accounts`: every stored account, by name (admins only).
#[utoipa::path(
    get,
    path = "/api/accounts",
    operation_id = "listAccounts",
    tag = "accounts",
    responses(
        (status = 200, description = "Every stored account, by name (the bootstrap admin is not one)", body = Vec<AccountView>),
        (status = 403, description = "A viewer account (`forbidden`)", body = ErrorBody),
    )
)]
pub async fn list(
    admin: AdminUser,
    State(state): State<AppState>,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    admin.require_admin()?;
    Ok(Json(all(&state).await?.iter().map(Into::into).collect()))
}

/// `POST /accounts`: a new account.
#[utoipa::path(
    post,
    path = "/api/accounts",
    operation_id = "createAccount",
    tag = "accounts",
    request_body = AccountCreate,
    responses(
        (status = 201, description = "Created", body = AccountView),
        (status = 403, description = "A viewer account (`forbidden`)", body = ErrorBody),
        (status = 409, description = "The name is taken (ignoring case), or is the bootstrap admin's", body = ErrorBody),
    )
)]
pub async fn create(
    actor: Actor,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<AccountCreate>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    let username = body.username.trim().to_owned();
    validate_username(&username)?;
    check_password("password", &body.password)?;
    if username.eq_ignore_ascii_case(state.auth.username()) {
        return Err(conflict(format!(
            "{username:?} is the bootstrap admin's name (ADMIN_USERNAME); choose another"
        )));
    }
    let now = micros_now();
    let account = Account {
        id: AccountId::new(),
        username,
        role: body.role,
        password_hash: hash(body.password).await?,
        disabled: false,
        token_version: 0,
        created_at: now,
        updated_at: now,
    };
    state.store.create_account(&account).await?;
    tracing::info!(account = %account.username, role = account.role.as_str(), "account created");
    super::audit::record(
        &state,
        &actor,
        "account.create",
        None,
        Some(account.id.to_string()),
        None,
        Some(audit_json(&account)),
    )
    .await;
    Ok((StatusCode::CREATED, Json((&account).into())))
}

/// `GET /accounts/{id}` (admins only).
#[utoipa::path(
    get,
    path = "/api/accounts/{id}",
    operation_id = "getAccount",
    tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    responses(
        (status = 200, description = "The account", body = AccountView),
        (status = 403, description = "A viewer account (`forbidden`)", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
    )
)]
pub async fn get(
    admin: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    admin.require_admin()?;
    Ok(Json((&find(&state, parse_id(&id)?).await?).into()))
}

/// `PUT /accounts/{id}`: change the role, disable or enable, or reset the password.
#[utoipa::path(
    put,
    path = "/api/accounts/{id}",
    operation_id = "updateAccount",
    tag = "accounts",
    params(("id" = uuid::Uuid, Path, description = "The account's id")),
    request_body = AccountUpdate,
    responses(
        (status = 200, description = "The account as changed; a reset or disabling ends its sessions", body = AccountView),
        (status = 403, description = "A viewer account (`forbidden`)", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Disabling or demoting yourself, or resetting your own password here (use `POST /api/auth/password`)", body = ErrorBody),
    )
)]
pub async fn update(
    admin: AdminUser,
    State(state): State<AppState>,
    address: LoginAddress,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AccountUpdate>,
) -> Result<Json<AccountView>, ApiError> {
    let mut account = find(&state, parse_id(&id)?).await?;
    let own = admin.account.as_ref().is_some_and(|a| a.id == account.id);
    if own {
        if body.disabled == Some(true) {
            return Err(conflict("You cannot disable your own account"));
        }
        if body.role == Some(Role::Viewer) {
            return Err(conflict(
                "You cannot demote your own account; another admin can",
            ));
        }
        if body.password.is_some() {
            return Err(conflict(
                "Change your own password with POST /api/auth/password (it asks for the current one)",
            ));
        }
    }
    if let Some(p) = &body.password {
        check_password("password", p)?;
    }
    let before = audit_json(&account);
    if let Some(role) = body.role {
        account.role = role;
    }
    let disabling = body.disabled == Some(true) && !account.disabled;
    if let Some(disabled) = body.disabled {
        account.disabled = disabled;
    }
    let reset = body.password.is_some();
    if let Some(p) = body.password {
        account.password_hash = hash(p).await?;
    }
    if reset || disabling {
        account.token_version += 1;
    }
    account.updated_at = micros_now();
    state.store.update_account(&account).await?;
    tracing::info!(account = %account.username, role = account.role.as_str(), disabled = account.disabled, reset, "account updated");
    let actor = Actor {
        name: admin.username.clone(),
        client: address.0,
    };
    let (b, a) = budget_core::audit::changed(&before, &audit_json(&account));
    let target = Some(account.id.to_string());
    if b.as_object().is_some_and(|o| !o.is_empty()) {
        super::audit::record(
            &state,
            &actor,
            "account.update",
            None,
            target.clone(),
            Some(b),
            Some(a),
        )
        .await;
    }
    if reset {
        super::audit::record(
            &state,
            &actor,
            "account.password_reset",
            None,
            target,
            None,
            Some(serde_json::json!({"username": account.username})),
        )
        .await;
    }
    Ok(Json((&account).into()))
}

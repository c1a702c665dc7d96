//! Admin authentication: the argon2id password check, HS256 JWTs, the [`AdminUser`]
//! extractor and a per-client login throttle.
//!
//! - The admin password is kept only as an argon2id PHC hash. `ADMIN_PASSWORD` may be that
//!   hash already (`$argon2id$v=19$...`); a plain password is hashed at start with
//!   [`HASH_PARAMS`] (m = 19 MiB, t = 2, p = 1: OWASP's minimum for argon2id, about 20–40 ms
//!   in a release build, so start-up and tests stay quick). A plain password hashed once is
//!   remembered for the life of the process, so test suites that build many servers hash it
//!   once.
//! - Besides this bootstrap admin (`ADMIN_USERNAME`, role admin, not in the store), the store
//!   may keep named accounts ([`budget_core::account`], managed in [`super::accounts`]). A
//!   login looks the name up (the bootstrap name first, compared in constant time with
//!   [`subtle`]) and always runs exactly one argon2 verification: against a fixed dummy hash
//!   when the name is unknown or the account is disabled, so neither timing nor the answer
//!   tells which accounts exist or which of name and password was wrong.
//! - Tokens are HS256 JWTs (`sub`, `iat`, `exp`, `csrf`, `role`; a stored account's also `aid`
//!   and `ver`) signed with `JWT_SECRET`, or with a random 64-byte secret when it is unset
//!   (tokens then die with the process). Expiry is checked with no leeway. A stored account's
//!   token is checked against the store on every request: it stops working as soon as the
//!   account is disabled or its password changes (its `token_version` moves past `ver`), and
//!   the role is the stored one, so a demotion holds at once.
//! - Roles are enforced here: [`AdminUser`] refuses a viewer anything but `GET`/`HEAD`
//!   (`403 forbidden`); [`SignedIn`] admits any role, for the few routes a viewer may write
//!   to (its own password).
//! - Failed logins are counted per client IP address (IPv6 per /64) from the connection
//!   (`ConnectInfo`). Forwarding headers count only when the connection comes from one of the
//!   `TRUSTED_PROXIES` (see [`crate::forwarded`]); a guess then counts against every client
//!   address the headers name. Without connection info (a server not started with
//!   `into_make_service_with_connect_info`, or tests) every client shares one bucket.
//!   [`MAX_FAILURES`] failures within [`THROTTLE_WINDOW`] get `429` with `Retry-After` until
//!   the window ends; a success clears the client's count. At most
//!   [`THROTTLE_CAPACITY`] clients are tracked.
//! - The dashboard authenticates with an HttpOnly session cookie instead of the bearer
//!   header, with CSRF protection: see [`super::session`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::AppendHeaders;
use axum::Json;
use budget_core::account::{Account, AccountId, Role};
use chrono::{DateTime, TimeDelta, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::error::{ApiError, ApiJson};
use super::session::{self, OverTls};
use crate::config::{Config, ConfigError};
use crate::forwarded::{self, IpCidr, Source};
use crate::state::AppState;

/// Argon2id cost used to hash a plain `ADMIN_PASSWORD`: (memory KiB, iterations, lanes).
pub const HASH_PARAMS: (u32, u32, u32) = (19 * 1024, 2, 1);
/// Failed logins a client may make within [`THROTTLE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// The window failed logins are counted in.
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Most clients the throttle remembers (oldest forgotten first).
pub const THROTTLE_CAPACITY: usize = 10_000;

/// Admin credentials, token keys and the login throttle.
pub struct AdminAuth {
    username: String,
    password_hash: String,
    /// What a login with an unknown name or a disabled account is checked against, so it
    /// takes as long as one with a real account.
    dummy_hash: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    expire: TimeDelta,
    throttle: LoginThrottle,
    /// `TRUSTED_PROXIES`: peers whose forwarding headers are believed.
    trusted_proxies: Vec<IpCidr>,
    /// Argon2's working memory (19 MiB with the default cost), allocated once and reused by
    /// every check. Allocating it per check from `spawn_blocking` threads left one such block
    /// resident per thread's malloc arena (RSS grew ~19 MiB per login).
    argon2_memory: std::sync::Mutex<Vec<argon2::Block>>,
}

impl std::fmt::Debug for AdminAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("username", &self.username)
            .field("expire", &self.expire)
            .finish_non_exhaustive()
    }
}

/// The claims of an admin token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The admin user name.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// The CSRF value the session cookie's requests must echo (empty in tokens from before
    /// it existed, which then cannot be used as a cookie).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub csrf: String,
    /// The role when the token was issued (informative: a stored account's role is read
    /// from the store on every request). Tokens from before roles existed are the bootstrap
    /// admin's.
    #[serde(default = "admin_role")]
    pub role: Role,
    /// The stored account's id; absent for the bootstrap admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aid: Option<AccountId>,
    /// The stored account's `token_version` when the token was issued.
    #[serde(default)]
    pub ver: i64,
}

fn admin_role() -> Role {
    Role::Admin
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Its CSRF value (the `csrf` claim).
    pub csrf: String,
}

impl AdminAuth {
    /// From the configuration: hash a plain `ADMIN_PASSWORD` (or check a given PHC hash), and
    /// set up the token keys (`JWT_SECRET`, or a random 64-byte secret).
    pub fn new(config: &Config) -> Result<AdminAuth, ConfigError> {
        let password_hash = if config.admin_password.starts_with("$argon2") {
            let bad = |why: String| ConfigError {
                variable: "ADMIN_PASSWORD",
                reason: format!("looks like an argon2 hash but is not a valid one: {why}"),
            };
            let hash = PasswordHash::new(&config.admin_password).map_err(|e| bad(e.to_string()))?;
            Algorithm::try_from(hash.algorithm).map_err(|e| bad(e.to_string()))?;
            Params::try_from(&hash).map_err(|e| bad(e.to_string()))?;
            if hash.salt.is_none() || hash.hash.is_none() {
                return Err(bad("salt or hash missing".into()));
            }
            config.admin_password.clone()
        } else {
            hash_once(&config.admin_password)?
        };
        let secret = match &config.jwt_secret {
            Some(s) => s.as_bytes().to_vec(),
            None => {
                let mut bytes = vec![0u8; 64];
                rand::rng().fill_bytes(&mut bytes);
                bytes
            }
        };
        Ok(AdminAuth {
            username: config.admin_username.clone(),
            password_hash,
            dummy_hash: hash_once("budget-server: the dummy password of no account")?,
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
            expire: TimeDelta::hours(i64::from(config.jwt_expire_hours)),
            throttle: LoginThrottle::default(),
            trusted_proxies: config.trusted_proxies()?,
            argon2_memory: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The admin user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// `TRUSTED_PROXIES`, parsed.
    pub fn trusted_proxies(&self) -> &[IpCidr] {
        &self.trusted_proxies
    }

    /// Check a user name and password. Always runs the argon2 verification (tens of
    /// milliseconds of CPU: call it off the async runtime) and compares the name in constant
    /// time.
    pub fn check_credentials(&self, username: &str, password: &str) -> bool {
        let password_ok = self.verify_password(&self.password_hash, password.as_bytes());
        password_ok & self.is_bootstrap_name(username)
    }

    /// Whether `username` is the bootstrap admin's name (compared in constant time).
    pub fn is_bootstrap_name(&self, username: &str) -> bool {
        username.as_bytes().ct_eq(self.username.as_bytes()).into()
    }

    /// Check a password against a stored account's hash, or, with `None` (no such account, or
    /// a disabled one), against the dummy hash and answer `false`: the same argon2 work either
    /// way. Call it off the async runtime.
    pub fn check_account_password(&self, account: Option<&Account>, password: &str) -> bool {
        match account {
            Some(a) => self.verify_password(&a.password_hash, password.as_bytes()),
            None => {
                self.verify_password(&self.dummy_hash, password.as_bytes());
                false
            }
        }
    }

    /// Argon2 verification against a PHC hash, in the reused working memory; the outputs are
    /// compared in constant time.
    fn verify_password(&self, phc: &str, password: &[u8]) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Ok(algorithm), Ok(params)) =
            (Algorithm::try_from(hash.algorithm), Params::try_from(&hash))
        else {
            return false;
        };
        let version = match hash.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return false,
        };
        let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let blocks = params.block_count();
        let argon = Argon2::new(algorithm, version, params);
        let mut memory = self.argon2_memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.resize(blocks, argon2::Block::default());
        if argon
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
            .is_err()
        {
            return false;
        }
        out.as_slice().ct_eq(expected.as_bytes()).into()
    }

    /// Issue a token for the bootstrap admin, valid for `JWT_EXPIRE_HOURS` from `now`.
    pub fn issue(&self, now: DateTime<Utc>) -> Result<IssuedToken, ApiError> {
        self.issue_for(None, now)
    }

    /// Issue a token for a stored account (`None`: the bootstrap admin), carrying its id,
    /// role and `token_version`.
    pub fn issue_for(
        &self,
        account: Option<&Account>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, ApiError> {
        let expires_at = now + self.expire;
        let claims = Claims {
            sub: account.map_or_else(|| self.username.clone(), |a| a.username.clone()),
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            csrf: session::new_csrf_value(),
            role: account.map_or(Role::Admin, |a| a.role),
            aid: account.map(|a| a.id),
            ver: account.map_or(0, |a| a.token_version),
        };
        let token = jsonwebtoken::encode(&Header::default(), &claims, &self.encoding)
            .map_err(|e| ApiError::internal(format!("cannot sign token: {e}")))?;
        Ok(IssuedToken {
            token,
            expires_at,
            csrf: claims.csrf,
        })
    }

    /// Check a token's signature and expiry, and, for the bootstrap admin's (no `aid`), its
    /// subject. A stored account's token is checked against the store by [`SignedIn`].
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "The token has expired; log in again")
                }
                _ => ApiError::unauthorized("invalid_token", "The token is not valid"),
            },
        )?;
        if data.claims.aid.is_none() && data.claims.sub != self.username {
            return Err(ApiError::unauthorized(
                "invalid_token",
                "The token is not valid",
            ));
        }
        Ok(data.claims)
    }
}

/// Hash a plain password with [`HASH_PARAMS`], once per process per password.
fn hash_once(password: &str) -> Result<String, ConfigError> {
    static MEMO: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    if let Some(hash) = memo
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(password)
    {
        return Ok(hash.clone());
    }
    let hash = hash_password(password).map_err(|e| ConfigError {
        variable: "ADMIN_PASSWORD",
        reason: format!("cannot hash: {e}"),
    })?;
    let mut memo = memo.lock().unwrap_or_else(PoisonError::into_inner);
    if memo.len() < 16 {
        memo.insert(password.to_owned(), hash.clone());
    }
    Ok(hash)
}

/// An argon2id PHC string for `password` with [`HASH_PARAMS`] and a random salt.
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let (m, t, p) = HASH_PARAMS;
    let params = Params::new(m, t, p, None)?;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)?;
    Ok(hash.to_string())
}

/// Whoever is signed in, in any role: extracting it checks `Authorization: Bearer <jwt>`, or
/// else the session cookie (with the CSRF check of [`session::check_csrf`] on state-changing
/// methods), and for a stored account that it still exists, is not disabled and has not
/// changed its password since (`401 invalid_token` otherwise). Only the routes a viewer may
/// write to take it; every other route takes [`AdminUser`].
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The token's claims.
    pub claims: Claims,
    /// The account's name (the stored spelling).
    pub username: String,
    /// The account's role now (from the store, not the token).
    pub role: Role,
    /// The stored account; `None` for the bootstrap admin of `ADMIN_USERNAME`.
    pub account: Option<Account>,
}

impl SignedIn {
    /// Whether this is the bootstrap admin of `ADMIN_USERNAME`/`ADMIN_PASSWORD`.
    pub fn is_bootstrap(&self) -> bool {
        self.account.is_none()
    }

    /// `403 forbidden` unless the account is an admin (for admin-only reads).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Viewer => Err(forbidden()),
        }
    }
}

/// `403 forbidden`: what a viewer gets for anything but reading.
pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "permission_error",
        "forbidden",
        "This account is a viewer: viewer accounts can read limiters and statistics but not \
         change anything (or read accounts and the audit trail)",
    )
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "The token is not valid")
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let claims = match parts.headers.get(header::AUTHORIZATION) {
            None => {
                let token = session::cookie(&parts.headers, session::SESSION_COOKIE).ok_or_else(|| {
                    ApiError::unauthorized(
                        "missing_token",
                        "Missing `Authorization: Bearer <token>` header (or the dashboard's session cookie)",
                    )
                })?;
                let claims = state.auth.verify(token)?;
                session::check_csrf(parts, &claims)?;
                claims
            }
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| {
                        v.strip_prefix("Bearer ")
                            .or_else(|| v.strip_prefix("bearer "))
                    })
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| {
                        ApiError::unauthorized(
                            "invalid_token",
                            "Expected `Authorization: Bearer <token>`",
                        )
                    })?;
                state.auth.verify(token)?
            }
        };
        let Some(aid) = claims.aid else {
            return Ok(SignedIn {
                username: claims.sub.clone(),
                role: Role::Admin,
                account: None,
                claims,
            });
        };
        let account = match state.store.find_account(&claims.sub).await {
            Ok(found) => found,
            Err(budget_core::store::Error::Unsupported(_)) => None,
            Err(e) => return Err(e.into()),
        };
        match account {
            Some(a) if a.id == aid && !a.disabled && a.token_version == claims.ver => {
                Ok(SignedIn {
                    username: a.username.clone(),
                    role: a.role,
                    account: Some(a),
                    claims,
                })
            }
            _ => Err(invalid_token()),
        }
    }
}

/// The signed-in account, allowed to change things: [`SignedIn`], and a viewer account gets
/// `403 forbidden` on anything but `GET` and `HEAD`. Admin-only reads (accounts, the audit
/// trail) also call [`SignedIn::require_admin`] (through `Deref`).
#[derive(Debug, Clone)]
pub struct AdminUser(pub SignedIn);

impl std::ops::Deref for AdminUser {
    type Target = SignedIn;
    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = SignedIn::from_request_parts(parts, state).await?;
        if user.role == Role::Viewer && !matches!(parts.method, Method::GET | Method::HEAD) {
            return Err(forbidden());
        }
        Ok(AdminUser(user))
    }
}

/// One throttle bucket: a client address (IPv6 by /64) and where it was read from (a
/// forged header cannot charge the bucket of an address some other source reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey(Source, Option<IpAddr>);

impl ClientKey {
    /// The bucket of an address: IPv4 as is, IPv6 by /64.
    pub fn of(source: Source, addr: Option<IpAddr>) -> Self {
        ClientKey(
            source,
            addr.map(|ip| match ip {
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => {
                        let s = v6.segments();
                        IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                    }
                },
                v4 => v4,
            }),
        )
    }
}

/// Who is logging in, for the throttle: the peer address, or the client(s) that a trusted
/// proxy's forwarding headers name (see [`crate::forwarded::client_addrs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginClient(pub Vec<ClientKey>);

/// The connection's peer address, when the server was started with connection info.
pub fn peer_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

impl FromRequestParts<AppState> for LoginClient {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let addrs =
            forwarded::client_addrs(peer_ip(parts), &parts.headers, state.auth.trusted_proxies());
        Ok(LoginClient(
            addrs
                .into_iter()
                .map(|(source, ip)| ClientKey::of(source, ip))
                .collect(),
        ))
    }
}

/// The client address a login is recorded with in the audit trail.
#[derive(Debug, Clone)]
pub struct LoginAddress(pub Option<String>);

impl FromRequestParts<AppState> for LoginAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(LoginAddress(super::audit::client_of(parts, state)))
    }
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    failures: u32,
    first: Instant,
}

/// Failed-login counts per client (fixed window from the first failure).
#[derive(Debug, Default)]
struct LoginThrottle {
    clients: Mutex<HashMap<ClientKey, Attempts>>,
}

impl LoginThrottle {
    /// Count an attempt against each of the client's buckets before checking it (so parallel
    /// guesses are bounded too); `Err` with the seconds to wait when any bucket is over the
    /// limit (then nothing is counted).
    fn begin(&self, keys: &[ClientKey], now: Instant) -> Result<(), u64> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let mut wait = 0;
        for key in keys {
            if let Err(w) = Self::check(&mut clients, *key, now) {
                wait = wait.max(w);
            }
        }
        if wait > 0 {
            return Err(wait);
        }
        for key in keys {
            if let Some(entry) = clients.get_mut(key) {
                entry.failures += 1;
            }
        }
        Ok(())
    }

    /// Make room for and reset the bucket of `key`; `Err` with the seconds to wait when it is
    /// over the limit.
    fn check(
        clients: &mut HashMap<ClientKey, Attempts>,
        key: ClientKey,
        now: Instant,
    ) -> Result<(), u64> {
        if clients.len() >= THROTTLE_CAPACITY && !clients.contains_key(&key) {
            clients.retain(|_, a| now.duration_since(a.first) < THROTTLE_WINDOW);
            if clients.len() >= THROTTLE_CAPACITY {
                if let Some(oldest) = clients.iter().min_by_key(|(_, a)| a.first).map(|(k, _)| *k) {
                    clients.remove(&oldest);
                }
            }
        }
        let entry = clients.entry(key).or_insert(Attempts {
            failures: 0,
            first: now,
        });
        let elapsed = now.duration_since(entry.first);
        if elapsed >= THROTTLE_WINDOW {
            *entry = Attempts {
                failures: 0,
                first: now,
            };
        }
        if entry.failures >= MAX_FAILURES {
            let wait = THROTTLE_WINDOW.saturating_sub(now.duration_since(entry.first));
            return Err((wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1));
        }
        Ok(())
    }

    /// The client got in: forget its failures.
    fn succeeded(&self, keys: &[ClientKey]) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        for key in keys {
            clients.remove(key);
        }
    }
}

/// `POST /auth/login` body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Admin user name.
    pub username: String,
    /// Admin password.
    #[schema(format = Password)]
    pub password: String,
}

/// `POST /auth/login` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// The bearer token.
    pub token: String,
    /// The account's user name.
    pub username: String,
    /// What it may do: `admin` or `viewer`.
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// When the token stops working.
    pub expires_at: DateTime<Utc>,
}

/// What an account may do.
#[derive(utoipa::ToSchema)]
#[schema(as = Role)]
#[allow(dead_code)]
pub enum RoleSchema {
    /// Everything: limiters, keys, accounts, the audit trail.
    #[schema(rename = "admin")]
    Admin,
    /// Reads limiters (codes masked) and statistics; changes nothing but its own password.
    #[schema(rename = "viewer")]
    Viewer,
}

/// The two `Set-Cookie` headers of a new session.
pub type SessionCookies = AppendHeaders<[(HeaderName, HeaderValue); 2]>;

/// `POST /auth/login`: `200 {token, username, role, expires_at}` and the dashboard's session
/// cookies (see `admin::session`), `401` on wrong credentials (or a disabled account: the same
/// answer), `429` after too many failures from one client, whatever names it tries.
#[utoipa::path(
    post,
    path = "/api/auth/login",
    operation_id = "login",
    tag = "auth",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A token (also set as the dashboard's session cookies)", body = LoginResponse),
        (status = 401, description = "Wrong user name or password", body = super::error::ErrorBody),
        (status = 429, description = "Too many failed attempts from this client", body = super::error::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    client: LoginClient,
    address: LoginAddress,
    OverTls(secure): OverTls,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<(SessionCookies, Json<LoginResponse>), ApiError> {
    state
        .auth
        .throttle
        .begin(&client.0, Instant::now())
        .map_err(ApiError::too_many_attempts)?;
    // Who tried, as the audit trail records it: the name given, cut to 64 characters.
    let tried: String = body.username.chars().take(64).collect();
    // The bootstrap admin first; else a stored account that is not disabled (a name that is
    // not a valid user name cannot be one).
    let bootstrap = state.auth.is_bootstrap_name(&body.username);
    let account = if bootstrap || budget_core::account::validate_username(&body.username).is_err() {
        None
    } else {
        match state.store.find_account(&body.username).await {
            Ok(found) => found.filter(|a| !a.disabled),
            Err(budget_core::store::Error::Unsupported(_)) => None,
            Err(e) => return Err(e.into()),
        }
    };
    let auth = state.auth.clone();
    let checked = account.clone();
    let ok = tokio::task::spawn_blocking(move || {
        if bootstrap {
            auth.check_credentials(&body.username, &body.password)
        } else {
            auth.check_account_password(checked.as_ref(), &body.password)
        }
    })
    .await
    .map_err(|e| ApiError::internal(format!("password check failed: {e}")))?;
    let actor = super::audit::Actor {
        name: account.as_ref().map_or(tried, |a| a.username.clone()),
        client: address.0,
    };
    let action = if ok {
        "login.succeeded"
    } else {
        "login.failed"
    };
    super::audit::record(&state, &actor, action, None, None, None, None).await;
    if !ok {
        tracing::warn!(client = ?client.0, "admin login failed");
        return Err(ApiError::unauthorized(
            "invalid_credentials",
            "Invalid username or password",
        ));
    }
    state.auth.throttle.succeeded(&client.0);
    if bootstrap && state.config.default_password() {
        tracing::warn!("admin logged in with the default password `changeme`: set ADMIN_PASSWORD");
    }
    session_answer(&state, account.as_ref(), secure)
}

/// A new session for a stored account (`None`: the bootstrap admin): the token in the body
/// and the dashboard's session cookies.
pub(crate) fn session_answer(
    state: &AppState,
    account: Option<&Account>,
    secure: bool,
) -> Result<(SessionCookies, Json<LoginResponse>), ApiError> {
    let issued = state.auth.issue_for(account, Utc::now())?;
    let [session_cookie, csrf_cookie] = session::set_cookies(
        &issued.token,
        &issued.csrf,
        state.auth.expire.num_seconds(),
        secure,
    );
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, session_cookie),
            (header::SET_COOKIE, csrf_cookie),
        ]),
        Json(LoginResponse {
            token: issued.token,
            username: account.map_or_else(|| state.auth.username.clone(), |a| a.username.clone()),
            role: account.map_or(Role::Admin, |a| a.role),
            expires_at: issued.expires_at,
        }),
    ))
}

/// Count an attempt at a password (login, or a password change) against the client's
/// throttle buckets; `429` when one is over the limit.
pub(crate) fn begin_attempt(state: &AppState, client: &LoginClient) -> Result<(), ApiError> {
    state
        .auth
        .throttle
        .begin(&client.0, Instant::now())
        .map_err(ApiError::too_many_attempts)
}

/// The client got the password right: forget its failures.
pub(crate) fn attempt_succeeded(state: &AppState, client: &LoginClient) {
    state.auth.throttle.succeeded(&client.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_blocks_after_max_failures_and_resets_on_success() {
        let t = LoginThrottle::default();
        let k = ClientKey::of(Source::Peer, None);
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(t.begin(&[k], now).is_ok());
        }
        let wait = t.begin(&[k], now).unwrap_err();
        assert!(wait > 0 && wait <= THROTTLE_WINDOW.as_secs());
        // Another client is not affected.
        let other = ClientKey::of(Source::Peer, Some("10.0.0.2".parse().unwrap()));
        assert!(t.begin(&[other], now).is_ok());
        // A request that names a locked-out client too is refused.
        assert!(t.begin(&[other, k], now).is_err());
        // After the window the client may try again.
        assert!(t.begin(&[k], now + THROTTLE_WINDOW).is_ok());
        t.succeeded(&[k]);
        assert!(t.clients.lock().unwrap().get(&k).is_none());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let key = |ip: &str| ClientKey::of(Source::Peer, Some(ip.parse().unwrap()));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::9"));
        assert_eq!(key("::ffff:10.0.0.1"), key("10.0.0.1"));
        assert_ne!(
            key("10.0.0.1"),
            ClientKey::of(Source::XForwardedFor, Some("10.0.0.1".parse().unwrap()))
        );
    }

    #[test]
    fn phc_hashes_verify() {
        let mut c = Config::for_tests();
        c.admin_password = hash_password("s3cret").unwrap();
        let auth = AdminAuth::new(&c).unwrap();
        assert!(auth.check_credentials("admin", "s3cret"));
        assert!(!auth.check_credentials("admin", "nope"));
        assert!(!auth.check_credentials("root", "s3cret"));
        c.admin_password = "$argon2id$garbage".into();
        assert_eq!(AdminAuth::new(&c).unwrap_err().variable, "ADMIN_PASSWORD");
    }
}

//! The dashboard's session: the admin token in an HttpOnly cookie, and CSRF protection for
//! requests that authenticate with it.
//!
//! `POST /auth/login` sets two cookies beside returning the token in its body (for API
//! clients, which keep sending `Authorization: Bearer`):
//!
//! - [`SESSION_COOKIE`]: the JWT; `HttpOnly` (page scripts cannot read it),
//!   `SameSite=Strict` (other sites' pages cannot make the browser send it), `Path=/api`,
//!   `Secure` when the request came over TLS (`PUBLIC_URL` is `https://…`, or a trusted proxy
//!   says so).
//! - [`CSRF_COOKIE`]: a random value that is also a claim of the JWT, readable by the
//!   dashboard's scripts (`Path=/`, not `HttpOnly`), same lifetime.
//!
//! A state-changing request (anything but `GET`, `HEAD`, `OPTIONS`) authenticated by the
//! cookie must echo the CSRF value in [`CSRF_HEADER`]; the value must equal the token's own
//! claim (signed double submit). A page on another origin can neither read the cookie to
//! learn the value nor send a custom header without a CORS preflight, and a cookie planted by
//! a sibling subdomain does not match the signed claim. Requests with `Authorization` ignore
//! the cookies and need no CSRF header.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::auth::Claims;
use super::error::ApiError;
use crate::state::AppState;

/// The HttpOnly cookie that carries the admin token.
pub const SESSION_COOKIE: &str = "budget_session";
/// The script-readable cookie with the CSRF value.
pub const CSRF_COOKIE: &str = "budget_csrf";
/// The request header that must echo [`CSRF_COOKIE`] on state-changing cookie requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A fresh random CSRF value (128 bits, hex).
pub fn new_csrf_value() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Whether the request came over TLS (so cookies get `Secure`): `PUBLIC_URL` is
/// `https://…`, the request URI says so, or a trusted proxy reports it
/// ([`crate::forwarded::forwarded_https`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls(pub bool);

impl FromRequestParts<AppState> for OverTls {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let public = state.config.public_url.as_deref().is_some_and(|u| {
            u.get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
        });
        Ok(OverTls(
            public
                || parts.uri.scheme_str() == Some("https")
                || crate::forwarded::forwarded_https(
                    super::auth::peer_ip(parts),
                    &parts.headers,
                    state.auth.trusted_proxies(),
                ),
        ))
    }
}

/// The two `Set-Cookie` values of a new session lasting `max_age_secs`.
pub fn set_cookies(token: &str, csrf: &str, max_age_secs: i64, secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    let session = format!(
        "{SESSION_COOKIE}={token}; Path=/api; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    );
    let csrf =
        format!("{CSRF_COOKIE}={csrf}; Path=/; Max-Age={max_age_secs}; SameSite=Strict{secure}");
    // Tokens are base64url and dots, the CSRF value hex: always valid header values.
    [session, csrf].map(|c| HeaderValue::try_from(c).unwrap_or(HeaderValue::from_static("")))
}

/// `Set-Cookie` values that delete both cookies.
pub fn clear_cookies(secure: bool) -> [HeaderValue; 2] {
    let secure = if secure { "; Secure" } else { "" };
    [
        format!("{SESSION_COOKIE}=; Path=/api; Max-Age=0; HttpOnly; SameSite=Strict{secure}"),
        format!("{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{secure}"),
    ]
    .map(|c| HeaderValue::try_from(c).unwrap_or(HeaderValue::from_static("")))
}

/// Check the CSRF header of a cookie-authenticated request: safe methods pass; others need
/// [`CSRF_HEADER`] equal to the token's `csrf` claim, else `403 csrf_failed`.
pub fn check_csrf(parts: &Parts, claims: &Claims) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    let ok = !claims.csrf.is_empty() && bool::from(sent.ct_eq(claims.csrf.as_bytes()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "csrf_failed",
            format!("Requests authenticated by the session cookie must send the `{CSRF_COOKIE}` cookie's value in `{CSRF_HEADER}`"),
        ))
    }
}

/// `POST /auth/logout`: `204`, deleting the session cookies. Needs no token (a stale or
/// missing session logs out too). The token itself stays valid until it expires; only this
/// browser forgets it.
#[utoipa::path(
    post,
    path = "/api/auth/logout",
    operation_id = "logout",
    tag = "auth",
    security(()),
    responses(
        (status = 204, description = "The session cookies are deleted (`Set-Cookie` with `Max-Age=0`)"),
    )
)]
pub async fn logout(OverTls(secure): OverTls) -> impl IntoResponse {
    let [session, csrf] = clear_cookies(secure);
    (
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, session), (header::SET_COOKIE, csrf)]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; budget_session_x=2".parse().unwrap());
        h.append(
            header::COOKIE,
            "budget_session=tok.en; other=3".parse().unwrap(),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok.en"));
        assert_eq!(cookie(&h, CSRF_COOKIE), None);
        h.append(header::COOKIE, "budget_csrf=".parse().unwrap());
        assert_eq!(cookie(&h, CSRF_COOKIE), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let [s, c] = set_cookies("a.b.c", "f00", 3600, false);
        let s = s.to_str().unwrap();
        assert_eq!(
            s,
            "budget_session=a.b.c; Path=/api; Max-Age=3600; HttpOnly; SameSite=Strict"
        );
        let c = c.to_str().unwrap();
        assert!(!c.contains("HttpOnly") && c.contains("Path=/;") && c.contains("SameSite=Strict"));
        let [s, c] = set_cookies("a.b.c", "f00", 3600, true);
        assert!(
            s.to_str().unwrap().ends_with("; Secure") && c.to_str().unwrap().ends_with("; Secure")
        );
        let [s, _] = clear_cookies(false);
        assert!(s.to_str().unwrap().contains("Max-Age=0"));
        assert_eq!(new_csrf_value().len(), 32);
        assert_ne!(new_csrf_value(), new_csrf_value());
    }
}

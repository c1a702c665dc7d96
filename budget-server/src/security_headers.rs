//! Response headers that tell browsers how to treat what the server answers itself (the
//! dashboard, the admin API, `/health`, `/metrics`): no script but the dashboard's own files,
//! no framing, no MIME sniffing, no referrer, and no caching of API answers. Proxied responses
//! (`/v1/{code}/...`) keep the upstream's headers untouched.

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every answer: scripts, styles, fonts and API calls only
/// from this origin (the dashboard's build has no inline script or style), images from this
/// origin or `data:` (the favicon), no plugins, no `<base>`, forms only to this origin, and
/// no framing by any page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Add the browser security headers to every answer of `router` (where a handler set one
/// already, its value stays) and `Cache-Control: no-store` where no handler chose a cache
/// policy (the dashboard's files choose their own).
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let set =
        |name, value| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value));
    router
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "no-referrer"))
        .layer(set(header::CACHE_CONTROL, "no-store"))
}

/// `Cache-Control: no-store` on every answer of `router`, whatever a handler set: admin API
/// answers (tokens, limiter codes, spend) must not stay in browser or proxy caches.
pub fn no_store<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router.layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ))
}

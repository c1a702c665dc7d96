//! The dashboard: the built single-page app from `dashboard/dist`, embedded in the binary.
//!
//! Files are served by path; any other path that is not an API path (`/login`,
//! `/statistics`, …) gets `index.html` so the app's client-side router can take over.
//! `/api`, `/v1`, `/health` and `/metrics` are routed before this fallback and never shadowed;
//! an unknown `/api/...` path gets a JSON 404.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "dashboard/dist/"]
struct Assets;

/// Serve a dashboard file or the app shell.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if path == "api" || path.starts_with("api/") || path.starts_with("v1/") {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": {"message": format!("No route for /{path}"), "type": "invalid_request_error", "code": "not_found"}})),
        )
            .into_response();
    }
    if let Some(file) = Assets::get(path).filter(|_| !path.is_empty()) {
        let cache = if path.starts_with("assets/") {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        return (
            [
                (header::CONTENT_TYPE, file.metadata.mimetype().to_owned()),
                (header::CACHE_CONTROL, cache.to_owned()),
            ],
            file.data,
        )
            .into_response();
    }
    match Assets::get("index.html") {
        Some(index) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            index.data,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "The dashboard was not built into this binary.\n",
        )
            .into_response(),
    }
}

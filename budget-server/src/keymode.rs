//! The limiter code as the API key, for limiters whose upstream key the server holds:
//! `OpenAI(base_url="http://HOST/v1", api_key="<code>")` and
//! `AzureOpenAI(azure_endpoint="http://HOST", api_key="<code>")`.
//!
//! Before routing, a request for `/v1/<API path>` (whose first segment cannot be a code) or
//! `/openai/...` that presents a code as `Authorization: Bearer <code>` or `api-key: <code>`
//! is rewritten to `/v1/<code>/<path>`, the seed's form, so the budget layer, the proxy and
//! `/v1/{code}/budget` work unchanged. The code itself never goes upstream: the proxy replaces
//! the client's credential headers with the stored key.
//!
//! A limiter that has no server-held key cannot be used this way (the client would have no
//! way to send its own OpenAI key): 401 `invalid_api_key`, as is a code no limiter has.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use budget_core::store::LimiterRef;
use budget_core::LimiterCode;
use http::{header, HeaderMap, HeaderValue, StatusCode, Uri};

use crate::state::AppState;

/// The code the client presents as its API key, if the header holds something shaped like one.
fn presented_code(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.get(..7)
                .filter(|p| p.eq_ignore_ascii_case("bearer "))
                .map(|_| v[7..].trim())
        });
    let api_key = || {
        headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    bearer
        .filter(|c| LimiterCode::is_well_formed(c))
        .or_else(|| api_key().filter(|c| LimiterCode::is_well_formed(c)))
}

/// Where the API path begins, if this request may be in code-as-key form: after `/v1/` when
/// the next segment cannot be a code, or the whole path for Azure's `/openai/...`.
fn api_path(path: &str) -> Option<&str> {
    if let Some(rest) = path.strip_prefix("/v1/") {
        let first = rest.split('/').next().unwrap_or("");
        return (!LimiterCode::is_well_formed(first)).then_some(rest);
    }
    if path.starts_with("/openai/") {
        return Some(&path[1..]);
    }
    None
}

fn unauthorized(message: &str) -> Response {
    let body = serde_json::json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key",
    }});
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// The middleware (`axum::middleware::map_request_with_state`).
pub async fn rewrite(State(state): State<AppState>, mut req: Request) -> Result<Request, Response> {
    let Some(rest) = api_path(req.uri().path()) else {
        return Ok(req);
    };
    let Some(code) = presented_code(req.headers()) else {
        return Ok(req);
    };
    match state.store.find_limiter(LimiterRef::Code(code)).await {
        Ok(Some(l)) if l.credential_id.is_none() => {
            return Err(unauthorized(
                "This limiter has no upstream key held by the server, so its code cannot be \
                 used as the API key: use base_url http(s)://<this server>/v1/<code> and your \
                 own OpenAI key, or ask the administrator to attach an upstream key to it",
            ))
        }
        Ok(None) => {
            return Err(unauthorized(
                "Incorrect API key provided: it is not a limiter code this server knows (it may \
                 have been rotated or deleted)",
            ))
        }
        // Found with a server-held key, or the store failed (the budget layer answers that).
        Ok(Some(_)) | Err(_) => {}
    }
    let query = req.uri().query();
    let mut target =
        String::with_capacity(5 + code.len() + rest.len() + query.map_or(0, |q| q.len() + 1));
    target.push_str("/v1/");
    target.push_str(code);
    target.push('/');
    target.push_str(rest);
    if let Some(q) = query {
        target.push('?');
        target.push_str(q);
    }
    let Ok(uri) = Uri::try_from(target) else {
        return Ok(req);
    };
    *req.uri_mut() = uri;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_paths_and_headers_are_code_as_key() {
        assert_eq!(api_path("/v1/chat/completions"), Some("chat/completions"));
        assert_eq!(api_path("/v1/models"), Some("models"));
        assert_eq!(
            api_path("/openai/deployments/d/chat/completions"),
            Some("openai/deployments/d/chat/completions")
        );
        assert_eq!(
            api_path("/v1/sk-budget-0123456789abcdef0123456789abcdef/chat/completions"),
            None
        );
        assert_eq!(api_path("/api/limiters"), None);

        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer sk-budget-0123456789abcdef"),
        );
        assert_eq!(presented_code(&h), Some("sk-budget-0123456789abcdef"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  sk-budget-0123456789abcdef "),
        );
        assert_eq!(presented_code(&h), Some("sk-budget-0123456789abcdef"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer short"),
        );
        assert_eq!(presented_code(&h), None);
        h.insert(
            "api-key",
            HeaderValue::from_static("0123456789abcdef0123456789abcdef"),
        );
        assert_eq!(presented_code(&h), Some("0123456789abcdef0123456789abcdef"));
        h.clear();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYXNz"),
        );
        assert_eq!(presented_code(&h), None);
    }
}

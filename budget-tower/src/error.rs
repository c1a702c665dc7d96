//! Refusals in OpenAI's error shape: `{"error":{"message","type","code"}}`.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use budget_core::store::Denial;

/// `Retry-After` of the 503 that refuses requests while the budget store is unavailable.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

/// A refusal the layer answers itself, before or instead of calling the inner service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Human message.
    pub message: String,
    /// OpenAI's `type` field.
    pub kind: &'static str,
    /// OpenAI's `code` field.
    pub code: &'static str,
    /// `Retry-After` in seconds: until the budget resets (429), or
    /// [`STORE_RETRY_AFTER_SECS`] when the store is unavailable (503).
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// 404: no limiter for this request.
    pub fn unknown_limiter() -> Self {
        Refusal::new(
            StatusCode::NOT_FOUND,
            "Unknown limiter: check the code in the URL (it may have been rotated or deleted)",
            "invalid_request_error",
            "limiter_not_found",
        )
    }

    /// 403: the limiter is switched off.
    pub fn inactive() -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "This limiter is inactive",
            "permission_error",
            "limiter_inactive",
        )
    }

    /// 429: over budget, with the product's message and `Retry-After`.
    pub fn budget_exceeded(denial: &Denial, now: chrono::DateTime<chrono::Utc>) -> Self {
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: denial.message(),
            kind: "429",
            code: "budget_exceeded",
            retry_after: Some(denial.window.seconds_until_end(now).max(1)),
        }
    }

    /// 400: the model has no price and the limiter refuses unpriced models.
    pub fn unpriced(model: Option<&str>) -> Self {
        let message = match model {
            Some(m) => format!("Model `{m}` has no known price and this limiter refuses unpriced models"),
            None => "The request names no model, so its cost cannot be known; this limiter refuses unpriced requests".to_owned(),
        };
        Refusal::new(
            StatusCode::BAD_REQUEST,
            message,
            "invalid_request_error",
            "model_not_priced",
        )
    }

    /// 503: the budget store failed, or cannot save usage and holds too much unsaved (a full
    /// disk), and the layer fails closed. With `Retry-After` ([`STORE_RETRY_AFTER_SECS`]) and
    /// `x-should-retry: true`: it is temporary, and the official SDKs retry after that wait.
    pub fn store_unavailable() -> Self {
        Refusal {
            retry_after: Some(STORE_RETRY_AFTER_SECS),
            ..Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The budget store is unavailable; the request was not sent. Try again shortly",
                "server_error",
                "budget_store_unavailable",
            )
        }
    }

    /// 413: the request body is larger than the layer will read.
    pub fn too_large(limit: usize) -> Self {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {limit} bytes"),
            "invalid_request_error",
            "request_too_large",
        )
    }

    /// 400: the path is not in canonical form (see [`budget_core::api::check_canonical`]), so
    /// what the upstream would read could differ from what the layer metered.
    pub fn invalid_path(e: budget_core::api::PathError) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid request path: {e}. Send the path exactly as the API documents it"),
            "invalid_request_error",
            "invalid_path",
        )
    }

    /// 404: the path is not part of the provider's API.
    pub fn outside_api(provider: budget_core::Provider) -> Self {
        let api = match provider {
            budget_core::Provider::Openai => "OpenAI API (/v1/...)",
            budget_core::Provider::Azure => "Azure OpenAI API (openai/...)",
        };
        Refusal::new(
            StatusCode::NOT_FOUND,
            format!("This path is not part of the {api} that this limiter forwards"),
            "invalid_request_error",
            "unknown_url",
        )
    }

    /// 403: an endpoint that costs money without reporting usage, refused by policy.
    pub fn unmetered_endpoint(what: &str) -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "The {what} endpoint costs money that the budget proxy cannot meter, so it is refused. \
                 An administrator can admit it with the server setting UNMETERED_ENDPOINTS=allow \
                 or the limiter's `unmetered_endpoints: \"allow\"` (its cost is then not counted)"
            ),
            "permission_error",
            "unmetered_endpoint",
        )
    }

    /// 403: an endpoint this version does not know, for a method that may start work.
    pub fn unknown_endpoint() -> Self {
        Refusal::new(
            StatusCode::FORBIDDEN,
            "This endpoint is not known to the budget proxy, so its cost cannot be metered and it \
             is refused. An administrator can admit it with the server setting \
             UNMETERED_ENDPOINTS=allow or the limiter's `unmetered_endpoints: \"allow\"`",
            "permission_error",
            "unknown_endpoint",
        )
    }

    /// 400: a field that is recorded with the usage (`model`, `user`) is too long.
    pub fn field_too_long(field: &str, max_chars: usize) -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("`{field}` is longer than {max_chars} characters"),
            "invalid_request_error",
            "field_too_long",
        )
    }

    /// 400: the request body could not be read.
    pub fn unreadable_body() -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "The request body could not be read",
            "invalid_request_error",
            "invalid_body",
        )
    }

    fn new(
        status: StatusCode,
        message: impl Into<String>,
        kind: &'static str,
        code: &'static str,
    ) -> Self {
        Refusal {
            status,
            message: message.into(),
            kind,
            code,
            retry_after: None,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        let v = serde_json::json!({
            "error": { "message": self.message, "type": self.kind, "code": self.code }
        });
        Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
    }

    /// The whole response, with `x-should-retry: false` so the official SDKs do not retry a
    /// refusal that cannot succeed on retry (`true` for the 503 of an unavailable store,
    /// which can).
    pub fn into_response<B>(self, wrap: impl FnOnce(Bytes) -> B) -> Response<B> {
        let mut res = Response::new(wrap(self.body()));
        *res.status_mut() = self.status;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let retry = self.status == StatusCode::SERVICE_UNAVAILABLE;
        h.insert(
            "x-should-retry",
            HeaderValue::from_static(if retry { "true" } else { "false" }),
        );
        if let Some(secs) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unavailable_store_asks_for_a_retry_later() {
        let res = Refusal::store_unavailable().into_response(|b| b);
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "5");
        assert_eq!(res.headers()["x-should-retry"], "true");
        let v: serde_json::Value = serde_json::from_slice(res.body()).unwrap();
        assert_eq!(v["error"]["code"], "budget_store_unavailable");
        assert_eq!(v["error"]["type"], "server_error");
        let res = Refusal::inactive().into_response(|b| b);
        assert_eq!(res.headers()["x-should-retry"], "false");
        assert!(res.headers().get(header::RETRY_AFTER).is_none());
    }
}

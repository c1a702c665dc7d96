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
    /// More response headers (the 429 describes the refusing budget in `x-budget-*`).
    pub headers: Vec<(&'static str, String)>,
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

    /// 429: over budget, with the product's message and `Retry-After` (when the refusing
    /// window resets). `primary` says whether the refusing budget is the limiter's own
    /// `budget_limit`/`period_type`; for another window or an end user's budget the message
    /// also names when it resets. Headers `x-budget-limit`, `x-budget-spent`,
    /// `x-budget-period`, `x-budget-reset` (and `x-budget-user`) describe the refusing budget.
    pub fn budget_exceeded(
        denial: &Denial,
        now: chrono::DateTime<chrono::Utc>,
        primary: bool,
    ) -> Self {
        let reset = denial
            .window
            .end
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut message = denial.message();
        if !primary {
            message.push_str(&format!(". Resets at {reset}"));
        }
        let dollars = crate::headers::dollar_text;
        let mut headers = vec![
            ("x-budget-limit", dollars(denial.budget)),
            ("x-budget-spent", dollars(denial.spent)),
            (
                "x-budget-remaining",
                dollars(
                    denial
                        .budget
                        .saturating_sub(denial.spent.saturating_add(denial.held))
                        .non_negative(),
                ),
            ),
            ("x-budget-period", denial.period.as_str().to_owned()),
            ("x-budget-reset", reset),
        ];
        if let Some(user) = &denial.user {
            headers.push(("x-budget-user", user.clone()));
        }
        Refusal {
            status: StatusCode::TOO_MANY_REQUESTS,
            message,
            kind: "429",
            code: "budget_exceeded",
            retry_after: Some(denial.window.seconds_until_end(now).max(1)),
            headers,
        }
    }

    /// 403: the limiter is past its `expires_at`.
    pub fn expired(at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        let message = match at {
            Some(t) => format!(
                "This limiter expired at {}",
                t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            None => "This limiter has expired".to_owned(),
        };
        Refusal::new(
            StatusCode::FORBIDDEN,
            message,
            "permission_error",
            "limiter_expired",
        )
    }

    /// 403: the model is not in the limiter's `allowed_models`.
    pub fn model_not_allowed(model: Option<&str>) -> Self {
        let message = match model {
            Some(m) => format!("Model `{m}` is not allowed for this limiter"),
            None => {
                "The request names no model, and this limiter allows only some models".to_owned()
            }
        };
        Refusal::new(
            StatusCode::FORBIDDEN,
            message,
            "permission_error",
            "model_not_allowed",
        )
    }

    /// 400: the request's worst case is above the limiter's `max_request_cost`.
    pub fn request_too_costly(
        worst_case: Option<budget_core::Money>,
        cap: budget_core::Money,
        hint: &str,
    ) -> Self {
        let message = match worst_case {
            Some(w) => format!(
                "This request could cost up to {w} (its prompt plus its output limit at the \
                 model's prices), above this limiter's per-request cap of {cap}. {hint}"
            ),
            None => format!(
                "The model has no known price, so this limiter's per-request cap of {cap} \
                 cannot be checked"
            ),
        };
        Refusal::new(
            StatusCode::BAD_REQUEST,
            message,
            "invalid_request_error",
            "request_cost_too_high",
        )
    }

    /// 400: the limiter requires an end-user id (`user` field or the configured header).
    pub fn user_required() -> Self {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            "This limiter requires an end-user id: set the request's `user` field",
            "invalid_request_error",
            "user_required",
        )
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
            headers: Vec::new(),
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
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::try_from(value) {
                h.insert(name, v);
            }
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

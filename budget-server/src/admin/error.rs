//! The admin API's one error shape, and JSON/query extractors that answer in it.
//!
//! Every 4xx/5xx answer is
//! `{"error": {"message", "type", "code", "field"?}}`, where `field` names the offending input
//! when there is one (a body field, a query parameter).

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use budget_core::{store, ValidationError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every admin API error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The `error` object of every error answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Human-readable reason; starts with the field name when there is one.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
    /// `rate_limit_error` or `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `validation_failed`, `invalid_body`, `invalid_json`, `invalid_parameter`,
    /// `unsupported_media_type`, `missing_token`, `invalid_token`, `token_expired`,
    /// `invalid_credentials`, `csrf_failed`, `too_many_login_attempts`, `not_found`, `conflict`,
    /// `store_unavailable` or `internal_error`.
    pub code: String,
    /// The body field or query parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An admin API error: a status and the JSON body that explains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Human-readable reason; starts with the field name when there is one.
    pub message: String,
    /// Broad class, OpenAI style: `invalid_request_error`, `authentication_error`,
    /// `not_found_error`, `rate_limit_error`, `server_error`.
    pub kind: &'static str,
    /// Machine-readable reason (`validation_failed`, `invalid_body`, `invalid_parameter`, …).
    pub code: &'static str,
    /// The body field or query parameter at fault.
    pub field: Option<String>,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with no field.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            message: message.into(),
            kind,
            code,
            field: None,
            retry_after: None,
        }
    }

    /// Name the field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// `400 invalid_parameter` about a query parameter: `"{field}: {reason}"`.
    pub fn bad_param(field: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_parameter",
            format!("{field}: {reason}"),
        )
        .with_field(field)
    }

    /// `401`: missing, malformed or expired token, or wrong credentials.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            code,
            message,
        )
    }

    /// `404`: no such limiter (or it was deleted).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found_error",
            "not_found",
            message,
        )
    }

    /// `429` with `Retry-After`.
    pub fn too_many_attempts(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "too_many_login_attempts",
            format!("Too many failed login attempts; try again in {retry_after_secs} s"),
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// `500`: a bug or an unexpected failure (logged).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal_error",
            message,
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                message: self.message,
                kind: self.kind.to_owned(),
                code: self.code.to_owned(),
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ValidationError> for ApiError {
    /// `422 validation_failed` naming the field.
    fn from(e: ValidationError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request_error",
            "validation_failed",
            e.to_string(),
        )
        .with_field(e.field)
    }
}

impl From<store::Error> for ApiError {
    /// Unknown limiter or credential → 404, validation → 422, conflict → 409, a feature the
    /// store lacks → 501, anything else → 503 (logged).
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::LimiterNotFound(id) => Self::not_found(format!("limiter {id} not found")),
            store::Error::CredentialNotFound(id) => {
                Self::not_found(format!("credential {id} not found"))
            }
            store::Error::AccountNotFound(id) => Self::not_found(format!("account {id} not found")),
            store::Error::Unsupported(what) => Self::new(
                StatusCode::NOT_IMPLEMENTED,
                "invalid_request_error",
                "not_supported",
                format!("This server's store does not support {what}"),
            ),
            store::Error::Validation(v) => v.into(),
            store::Error::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "conflict",
                format!("conflict: {what}"),
            ),
            other => {
                tracing::error!(error = %other, "admin API: store error");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "server_error",
                    "store_unavailable",
                    "The store is unavailable; try again shortly",
                )
            }
        }
    }
}

/// A list from something the store does not keep ([`store::Error::Unsupported`]: refusal
/// counts, the audit trail, credentials of a custom store) reads as empty; other errors map as
/// usual.
pub(crate) fn or_empty<T>(r: store::Result<Vec<T>>) -> Result<Vec<T>, ApiError> {
    match r {
        Err(store::Error::Unsupported(_)) => Ok(Vec::new()),
        other => Ok(other?),
    }
}

impl From<JsonRejection> for ApiError {
    /// Malformed JSON → 400 `invalid_json`; well-formed JSON of the wrong shape (unknown or
    /// missing field, wrong type, bad enum value) → 422 `invalid_body` naming the field; no
    /// JSON content type → 415; unreadable or too large body → its own status.
    fn from(rejection: JsonRejection) -> Self {
        let text = rejection.body_text();
        // axum's text is "<what failed>: <serde's reason>"; keep serde's reason.
        let reason = text.split_once(": ").map_or(text.as_str(), |(_, r)| r);
        let reason = strip_position(reason);
        match rejection {
            JsonRejection::JsonDataError(_) => {
                let mut e = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_request_error",
                    "invalid_body",
                    reason,
                );
                e.field = field_of(reason);
                e
            }
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_json",
                format!("The body is not valid JSON: {reason}"),
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "unsupported_media_type",
                "Expected `Content-Type: application/json`",
            ),
            other => Self::new(
                other.status(),
                "invalid_request_error",
                "invalid_body",
                other.body_text(),
            ),
        }
    }
}

/// Drop serde_json's " at line 1 column 42" suffix: the position is of little use to an API
/// client and wrong for bodies we re-serialize.
fn strip_position(reason: &str) -> &str {
    match reason.rfind(" at line ") {
        Some(i) if reason[i..].contains(" column ") => &reason[..i],
        _ => reason,
    }
}

/// The field a serde error is about: the `path: ` prefix serde_path_to_error adds, else the
/// name in "unknown field `x`" / "missing field `x`".
fn field_of(reason: &str) -> Option<String> {
    if let Some((path, _)) = reason.split_once(": ") {
        let is_path = !path.is_empty()
            && path
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']'));
        if is_path {
            return Some(path.to_owned());
        }
    }
    for marker in ["unknown field `", "missing field `"] {
        if let Some(start) = reason.find(marker) {
            let rest = &reason[start + marker.len()..];
            return rest.find('`').map(|end| rest[..end].to_owned());
        }
    }
    None
}

/// Like [`axum::Json`], but a body that does not parse is answered with an [`ApiError`] naming
/// the field.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(ApiJson(value))
    }
}

impl<T> ApiJson<T>
where
    T: DeserializeOwned,
{
    /// Deserialize an already parsed JSON value, with the same error mapping (and field paths).
    pub fn from_value(value: &serde_json::Value) -> Result<T, ApiError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Json::<T>::from_bytes(&bytes)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field() {
        let r = "period_type: unknown variant `fortnight`, expected one of `minute`, `hour`";
        assert_eq!(field_of(r).as_deref(), Some("period_type"));
        let r = "unknown field `colour`, expected one of `name`, `budget_limit`";
        assert_eq!(field_of(r).as_deref(), Some("colour"));
        assert_eq!(field_of("missing field `name`").as_deref(), Some("name"));
        assert_eq!(field_of("invalid type: string \"x\", expected a map"), None);
    }

    #[test]
    fn strips_positions() {
        assert_eq!(
            strip_position("missing field `name` at line 1 column 2"),
            "missing field `name`"
        );
        assert_eq!(strip_position("plain"), "plain");
    }
}

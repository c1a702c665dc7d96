//! OpenAI's error bodies and the headers that come with them.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use crate::body::MockBody;

/// JSON-escape `s` as a string literal (quotes included).
pub(crate) fn js(s: &str) -> String {
    serde_json::to_string(s).expect("strings always serialize")
}

/// `{"error":{"message":…,"type":…,"param":…,"code":…}}` with `status`.
pub(crate) fn openai_error(
    status: u16,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response<MockBody> {
    let opt = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), js);
    let body = format!(
        r#"{{"error":{{"message":{},"type":{},"param":{},"code":{}}}}}"#,
        js(message),
        js(kind),
        opt(param),
        opt(code)
    );
    let mut resp = Response::new(MockBody::full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The error OpenAI sends for `status`, for `fail_with` and the `mock-error-*` hooks. These
/// carry `x-should-retry: false`, so the official SDKs surface them at once instead of retrying.
pub(crate) fn status_error(status: u16, model: &str) -> Response<MockBody> {
    let mut resp = match status {
        400 => openai_error(
            400,
            "Invalid request (mock).",
            "invalid_request_error",
            None,
            None,
        ),
        401 => missing_key(),
        403 => openai_error(
            403,
            "You are not allowed to sample from this model",
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ),
        404 => openai_error(
            404,
            &format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            None,
            Some("model_not_found"),
        ),
        429 => {
            let mut resp = openai_error(
                429,
                &format!(
                    "Rate limit reached for {model} in organization org-mock on requests per min \
                     (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit \
                     https://platform.openai.com/account/rate-limits to learn more."
                ),
                "requests",
                Some("requests"),
                Some("rate_limit_exceeded"),
            );
            let h = resp.headers_mut();
            h.insert("retry-after", HeaderValue::from_static("20"));
            h.insert("x-ratelimit-limit-requests", HeaderValue::from_static("3"));
            h.insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("0"),
            );
            h.insert(
                "x-ratelimit-reset-requests",
                HeaderValue::from_static("20s"),
            );
            resp
        }
        503 => openai_error(
            503,
            "The engine is currently overloaded, please try again later.",
            "server_error",
            None,
            None,
        ),
        s if s >= 500 => openai_error(
            s,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        s => openai_error(s, "Mock failure.", "invalid_request_error", None, None),
    };
    resp.headers_mut()
        .insert("x-should-retry", HeaderValue::from_static("false"));
    resp
}

/// 401 for a request without a key.
pub(crate) fn missing_key() -> Response<MockBody> {
    openai_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization \
         header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password \
         field (with blank username) if you're accessing the API from your browser and are \
         prompted for a username and password. You can obtain an API key from \
         https://platform.openai.com/account/API-keys.",
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

/// 401 for a key the mock does not accept, masked the way OpenAI masks it (the first 8 and last
/// 4 characters of a long key; short keys are all stars).
pub(crate) fn incorrect_key(key: &str) -> Response<MockBody> {
    let chars: Vec<char> = key.chars().collect();
    let masked = if chars.len() > 12 {
        let head: String = chars[..8].iter().collect();
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(chars.len() - 12))
    } else {
        "*".repeat(chars.len())
    };
    openai_error(
        401,
        &format!(
            "Incorrect API key provided: {masked}. You can find your API key at \
             https://platform.openai.com/account/api-keys."
        ),
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

/// 404 for a path the mock does not serve.
pub(crate) fn invalid_url(method: &str, path: &str) -> Response<MockBody> {
    openai_error(
        404,
        &format!("Invalid URL ({method} {path})"),
        "invalid_request_error",
        None,
        None,
    )
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn message(resp: Response<MockBody>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["error"]["message"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn incorrect_key_masks_like_openai() {
        assert_eq!(
            message(incorrect_key("sk-proj-abcdefghij0123")).await,
            "Incorrect API key provided: sk-proj-**********0123. You can find your API key at \
             https://platform.openai.com/account/api-keys."
        );
        // Short keys are all stars; multi-byte characters are not cut.
        assert!(message(incorrect_key("short"))
            .await
            .starts_with("Incorrect API key provided: *****."));
        assert!(message(incorrect_key("ééééééééééééé"))
            .await
            .contains("éééééééé*éééé."));
    }
}

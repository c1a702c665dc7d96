//! What one endpoint needs to know to answer a request.

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::Value;

use crate::body::{MockBody, Pacing};
use crate::tokens::MockUsage;

/// `system_fingerprint` of every mock answer.
pub(crate) const FINGERPRINT: &str = "fp_mock0000";

/// Azure's content filter verdict on a choice.
pub(crate) const CONTENT_FILTER_RESULTS: &str = r#"{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}"#;

/// Azure's content filter verdict on the prompt.
pub(crate) const PROMPT_FILTER_RESULTS: &str = r#"[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]"#;

/// One request, parsed far enough to answer it.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    /// The JSON request body (`Null` when there is none).
    pub(crate) body: &'a Value,
    /// The model name the answer reports (already resolved).
    pub(crate) model: &'a str,
    /// Token usage of the answer.
    pub(crate) usage: MockUsage,
    /// Unix seconds.
    pub(crate) created: u64,
    /// Per-server sequence number, for ids.
    pub(crate) seq: u64,
    /// Answer in Azure's shape.
    pub(crate) azure: bool,
    /// `stream: true`.
    pub(crate) stream: bool,
    /// `stream_options.include_usage: true`.
    pub(crate) include_usage: bool,
    /// How events are paced.
    pub(crate) pacing: Pacing,
    /// The `mock-hang` hook: first event only, never end.
    pub(crate) hang: bool,
}

impl Call<'_> {
    /// The finish reason of every choice.
    pub(crate) fn finish_reason(&self) -> &'static str {
        if self.usage.truncated {
            "length"
        } else {
            "stop"
        }
    }

    /// The chat-style `usage` object.
    pub(crate) fn chat_usage_json(&self) -> String {
        let u = &self.usage;
        format!(
            r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":{},"audio_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":{},"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}}"#,
            u.prompt_tokens,
            u.completion_tokens,
            u.total_tokens,
            u.cached_tokens,
            u.reasoning_tokens
        )
    }

    /// A whole JSON answer, or a hanging prefix of it for `mock-hang`.
    pub(crate) fn json_response(&self, json: String) -> Response<MockBody> {
        let body = if self.hang {
            let bytes = bytes::Bytes::from(json);
            MockBody::hanging(bytes.slice(..bytes.len() / 2))
        } else {
            MockBody::full(json)
        };
        with_content_type(Response::new(body), "application/json")
    }

    /// An SSE answer.
    pub(crate) fn sse_response(&self, events: Vec<String>) -> Response<MockBody> {
        let body = MockBody::events(events, self.pacing, self.hang);
        let mut resp = with_content_type(Response::new(body), "text/event-stream; charset=utf-8");
        resp.headers_mut()
            .insert("cache-control", HeaderValue::from_static("no-cache"));
        resp
    }
}

/// Sets `content-type`.
pub(crate) fn with_content_type(
    mut resp: Response<MockBody>,
    content_type: &'static str,
) -> Response<MockBody> {
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

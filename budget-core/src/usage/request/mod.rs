//! The request side: what a client asked for, read from its body.

use std::borrow::Cow;

use super::estimate::{count_tokens, Encoding};
use super::{Endpoint, ServiceTier};

mod json;
mod multipart;
mod rewrite;

use json::{JsonRequest, StreamOptions};
use multipart::{looks_like_multipart, multipart_boundary, sniff_boundary};
pub use rewrite::rewrite_include_usage;

/// Most text kept in [`RequestInfo::input_text`] (1 MiB); the estimate extrapolates past it.
pub const MAX_INPUT_TEXT: usize = 1024 * 1024;

/// Per-message overhead of the chat format (`<|start|>role ... <|end|>`), in tokens, as in
/// OpenAI's token-counting cookbook.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Every chat reply is primed with `<|start|>assistant<|message|>`.
const TOKENS_REPLY_PRIMING: u64 = 3;

/// A prompt-token estimate made once ([`RequestInfo::prompt_estimate`]), with the tokenizer it
/// was counted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptEstimate {
    encoding: Encoding,
    tokens: u64,
}

impl PromptEstimate {
    /// The estimated prompt tokens.
    pub fn tokens(self) -> u64 {
        self.tokens
    }

    #[cfg(test)]
    pub(crate) fn for_tests(model: Option<&str>, tokens: u64) -> Self {
        PromptEstimate {
            encoding: Encoding::of(model),
            tokens,
        }
    }

    /// The tokens, when counted with the tokenizer of `model`.
    pub(crate) fn tokens_for(self, model: Option<&str>) -> Option<u64> {
        (Encoding::of(model) == self.encoding).then_some(self.tokens)
    }
}

/// What a request asked for: the fields that matter for budgets, read from its body.
///
/// Built by [`RequestInfo::parse`] / [`RequestInfo::parse_with_content_type`], which never fail:
/// a body that cannot be read gives the default info (with the endpoint set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// The API the request is for.
    pub endpoint: Endpoint,
    /// `model` (absent on Azure deployment paths, where the deployment names it).
    pub model: Option<String>,
    /// `stream: true`.
    pub stream: bool,
    /// `stream_options.include_usage: true`.
    pub include_usage: bool,
    /// `max_completion_tokens`, `max_output_tokens` or `max_tokens` (first present, in that
    /// order).
    pub max_output_tokens: Option<u64>,
    /// `n` (choices or images), default 1.
    pub n: u64,
    /// `user`, or `safety_identifier` when `user` is absent.
    pub user: Option<String>,
    /// `service_tier` when it names a tier (`auto` and unknown values are `None`).
    pub service_tier: Option<ServiceTier>,
    /// The prompt's text, for estimates only: chat message contents (text parts of arrays,
    /// tool-call arguments), `tools` as JSON, `prompt` (and `suffix`) of completions and images,
    /// `input` of embeddings, moderations, responses (strings, string arrays or message items)
    /// and speech, `instructions`. Token-array prompts appear as their decimal numbers. Capped
    /// at [`MAX_INPUT_TEXT`] bytes.
    pub input_text: String,
    /// Chat messages or Responses input items, for the per-message overhead of the estimate.
    pub message_count: u64,
    /// Length of the request body in bytes.
    pub input_bytes: u64,
    /// What the JSON body's `stream_options` was, for [`RequestInfo::rewrite_include_usage`].
    stream_options: StreamOptions,
}

impl Default for RequestInfo {
    fn default() -> Self {
        RequestInfo {
            endpoint: Endpoint::Other,
            model: None,
            stream: false,
            include_usage: false,
            max_output_tokens: None,
            n: 1,
            user: None,
            service_tier: None,
            input_text: String::new(),
            message_count: 0,
            input_bytes: 0,
            stream_options: StreamOptions::NotJson,
        }
    }
}

impl RequestInfo {
    /// Reads a JSON request body. A malformed or non-JSON body gives the default info with
    /// `endpoint` and `input_bytes` set; this never panics.
    pub fn parse(endpoint: Endpoint, body: &[u8]) -> RequestInfo {
        let mut info = RequestInfo {
            endpoint,
            input_bytes: body.len() as u64,
            ..RequestInfo::default()
        };
        if let Ok(request) = JsonRequest::read(body, Some(endpoint)) {
            info.read_json(request);
        } else if looks_like_multipart(body) {
            // No content type given, but the body is clearly a form upload.
            if let Some(boundary) = sniff_boundary(body) {
                info.read_multipart(&boundary, body);
            }
        }
        info
    }

    /// Reads a body according to its `Content-Type`: `multipart/form-data` (audio and image
    /// uploads: the `model`, `stream`, `user`, `prompt`, `n` and `service_tier` text fields are
    /// read, file parts are skipped without copying), anything else as JSON.
    pub fn parse_with_content_type(
        endpoint: Endpoint,
        content_type: Option<&str>,
        body: &[u8],
    ) -> RequestInfo {
        let boundary = content_type.and_then(multipart_boundary);
        match boundary {
            Some(b) => {
                let mut info = RequestInfo {
                    endpoint,
                    input_bytes: body.len() as u64,
                    ..RequestInfo::default()
                };
                info.read_multipart(&b, body);
                info
            }
            None => RequestInfo::parse(endpoint, body),
        }
    }

    /// Estimated prompt tokens, for when the response has no usage block (or before sending).
    ///
    /// The tokenizer count of [`input_text`](Self::input_text) for the request's model (see
    /// the `estimate` notes in the module docs), plus, for chat completions, 3 tokens per
    /// message and 3 for the reply priming (OpenAI's cookbook formula); for the Responses API,
    /// 3 tokens per input item. When the text was capped at [`MAX_INPUT_TEXT`], the count is
    /// scaled by `input_bytes / input_text.len()` (an over-estimate: JSON syntax is counted as
    /// text). Images, audio and files in the prompt are not counted. Costs a tokenizer pass over
    /// up to 1 MiB: call it once.
    pub fn estimate_prompt_tokens(&self) -> u64 {
        self.estimate_prompt_tokens_for(self.model.as_deref())
    }

    /// [`estimate_prompt_tokens`](Self::estimate_prompt_tokens), kept with the tokenizer it
    /// was counted with, so that the [`UsageMeter`](super::UsageMeter) given it
    /// ([`with_prompt_estimate`](super::UsageMeter::with_prompt_estimate)) does not count the
    /// prompt again.
    ///
    /// ```
    /// use budget_core::usage::{Endpoint, RequestInfo};
    ///
    /// let info = RequestInfo::parse(Endpoint::Embeddings, br#"{"model":"gpt-4o","input":"Hello world"}"#);
    /// assert_eq!(info.prompt_estimate().tokens(), info.estimate_prompt_tokens());
    /// ```
    pub fn prompt_estimate(&self) -> PromptEstimate {
        PromptEstimate {
            encoding: Encoding::of(self.model.as_deref()),
            tokens: self.estimate_prompt_tokens(),
        }
    }

    /// True when the prompt estimate is a long tokenizer pass (the prompt text is over
    /// [`COSTLY_TOKENIZE_BYTES`](super::COSTLY_TOKENIZE_BYTES)): make it on a blocking thread
    /// (`tokio::task::spawn_blocking`), not on an async worker.
    pub fn prompt_estimate_is_costly(&self) -> bool {
        self.input_text.len() > super::COSTLY_TOKENIZE_BYTES
    }

    /// [`estimate_prompt_tokens`](Self::estimate_prompt_tokens) with the tokenizer of `model`
    /// (the response's model, which Azure deployment requests do not name).
    pub(crate) fn estimate_prompt_tokens_for(&self, model: Option<&str>) -> u64 {
        let mut tokens = count_tokens(model, &self.input_text);
        if self.input_text.len() + 4 > MAX_INPUT_TEXT && self.input_bytes > 0 {
            let scaled = u128::from(tokens) * u128::from(self.input_bytes);
            tokens =
                u64::try_from(scaled.div_ceil(self.input_text.len() as u128)).unwrap_or(u64::MAX);
        }
        let overhead = match self.endpoint {
            Endpoint::ChatCompletions => self
                .message_count
                .saturating_mul(TOKENS_PER_MESSAGE)
                .saturating_add(TOKENS_REPLY_PRIMING),
            Endpoint::Responses => self.message_count.saturating_mul(TOKENS_PER_MESSAGE),
            _ => 0,
        };
        tokens.saturating_add(overhead)
    }

    fn read_json(&mut self, r: JsonRequest<'_>) {
        self.model = r.model.filter(|m| !m.is_empty()).map(Cow::into_owned);
        self.stream = r.stream == Some(true);
        self.stream_options = r.stream_options;
        self.include_usage = matches!(
            r.stream_options,
            StreamOptions::Object {
                include_usage: true
            }
        );
        self.max_output_tokens = r
            .max_completion_tokens
            .or(r.max_output_tokens)
            .or(r.max_tokens);
        self.n = r.n.unwrap_or(1);
        self.user = r.user.or(r.safety_identifier).map(Cow::into_owned);
        self.service_tier = r.service_tier.as_deref().and_then(parse_tier);
        self.message_count = r.input_items.or(r.messages).unwrap_or(0);
        let len: usize = r.text.iter().map(|piece| piece.len() + 1).sum();
        let mut text = TextSink {
            out: String::with_capacity(len.min(MAX_INPUT_TEXT)),
        };
        for piece in &r.text {
            text.push(piece);
        }
        self.input_text = text.out;
    }
}

fn parse_tier(s: &str) -> Option<ServiceTier> {
    match s {
        "default" => Some(ServiceTier::Default),
        "flex" => Some(ServiceTier::Flex),
        "priority" => Some(ServiceTier::Priority),
        _ => None,
    }
}

/// Collects prompt text, separated by newlines, capped at [`MAX_INPUT_TEXT`].
#[derive(Default)]
struct TextSink {
    out: String,
}

impl TextSink {
    fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        let room = MAX_INPUT_TEXT.saturating_sub(self.out.len());
        if room == 0 {
            return;
        }
        if !self.out.is_empty() {
            self.out.push('\n');
        }
        let room = room.saturating_sub(1);
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.out.push_str(&s[..end]);
    }
}

#[cfg(test)]
mod tests {
    use super::rewrite::tests::include_usage_of;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chat_request() {
        let body = br#"{
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"x\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "a cat"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 200,
            "n": 2,
            "user": "alice",
            "service_tier": "flex"
        }"#;
        let info = RequestInfo::parse(Endpoint::ChatCompletions, body);
        assert_eq!(info.model.as_deref(), Some("gpt-4o-mini"));
        assert!(info.stream && info.include_usage);
        assert_eq!(info.max_output_tokens, Some(200));
        assert_eq!(info.n, 2);
        assert_eq!(info.user.as_deref(), Some("alice"));
        assert_eq!(info.service_tier, Some(ServiceTier::Flex));
        assert_eq!(info.message_count, 4);
        assert_eq!(info.input_bytes, body.len() as u64);
        for needle in [
            "You are terse.",
            "What is in this image?",
            "{\"x\":1}",
            "a cat",
            "look",
        ] {
            assert!(
                info.input_text.contains(needle),
                "{needle}: {}",
                info.input_text
            );
        }
        assert!(!info.input_text.contains("base64"));
        let est = info.estimate_prompt_tokens();
        assert!((20..=40).contains(&est), "{est}");
    }

    #[test]
    fn other_request_shapes() {
        let info = RequestInfo::parse(
            Endpoint::Completions,
            br#"{"model":"gpt-3.5-turbo-instruct","prompt":["Say hi","Say bye"],"max_tokens":5}"#,
        );
        assert_eq!(info.input_text, "Say hi\nSay bye");
        assert_eq!(info.max_output_tokens, Some(5));
        assert_eq!(info.n, 1);

        let info = RequestInfo::parse(
            Endpoint::Embeddings,
            br#"{"model":"text-embedding-3-small","input":[[1,2,3],[4]]}"#,
        );
        assert_eq!(info.input_text, "1 2 3\n4");

        let info = RequestInfo::parse(
            Endpoint::Responses,
            br#"{"model":"gpt-5","instructions":"Be nice.","input":[
                {"role":"user","content":[{"type":"input_text","text":"Hello"}]},
                {"type":"function_call_output","call_id":"x","output":"42"}],
                "max_output_tokens":100,"safety_identifier":"u-1","service_tier":"auto"}"#,
        );
        assert_eq!(info.input_text, "Be nice.\nHello\n42");
        assert_eq!(info.message_count, 2);
        assert_eq!(info.max_output_tokens, Some(100));
        assert_eq!(info.user.as_deref(), Some("u-1"));
        assert_eq!(info.service_tier, None);

        let info = RequestInfo::parse(
            Endpoint::Responses,
            br#"{"model":"gpt-4.1","input":"Tell me a joke"}"#,
        );
        assert_eq!(info.input_text, "Tell me a joke");
        assert_eq!(info.message_count, 1);

        let info = RequestInfo::parse(
            Endpoint::Images,
            br#"{"model":"dall-e-3","prompt":"a red fox","n":3,"size":"1024x1024"}"#,
        );
        assert_eq!((info.input_text.as_str(), info.n), ("a red fox", 3));

        let info = RequestInfo::parse(
            Endpoint::AudioSpeech,
            r#"{"model":"tts-1","input":"Héllo!","voice":"alloy","instructions":"cheerful"}"#
                .as_bytes(),
        );
        assert_eq!(info.input_text, "Héllo!");
    }

    #[test]
    fn malformed_bodies_never_panic() {
        for body in [
            &b""[..],
            b"null",
            b"[1,2]",
            b"{",
            b"\xff\xfe",
            b"{\"model\":5}",
        ] {
            let info = RequestInfo::parse(Endpoint::ChatCompletions, body);
            assert_eq!(info.endpoint, Endpoint::ChatCompletions);
            assert_eq!(info.model, None);
            assert_eq!(info.n, 1);
        }
    }

    #[test]
    fn input_text_is_capped() {
        let big = "word ".repeat(MAX_INPUT_TEXT / 4);
        let body = serde_json::json!({"model":"gpt-4o","input":big}).to_string();
        let info = RequestInfo::parse(Endpoint::Embeddings, body.as_bytes());
        assert!(info.input_text.len() <= MAX_INPUT_TEXT);
        let est = info.estimate_prompt_tokens();
        let words = (MAX_INPUT_TEXT / 4) as u64;
        assert!(
            est >= words && est <= words + words / 10,
            "{est} vs {words}"
        );
    }
    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RequestInfo::parse(Endpoint::ChatCompletions, &body);
            let _ = RequestInfo::parse_with_content_type(
                Endpoint::AudioTranscription, Some("multipart/form-data; boundary=a"), &body);
            if let Some(out) = rewrite_include_usage(&body) {
                prop_assert_eq!(include_usage_of(&out), Some(true));
            }
        }
    }
}

//! OpenAI usage: what a request asked for and what its response says it used.
//!
//! Pure and incremental: nothing here does I/O. The request side ([`RequestInfo`]) reads the
//! JSON body a client sends; the response side ([`UsageMeter`]) is fed the response bytes as
//! they stream past and produces a [`Usage`] at the end, estimated from the delivered text when
//! the stream ended without a usage block.
//!
//! - [`Endpoint::from_path`]: which API a proxied path is for.
//! - [`RequestInfo`]: model, streaming, limits, user and prompt text of a JSON or
//!   `multipart/form-data` request body, read in one pass with the strings borrowed from the
//!   body; [`RequestInfo::estimate_prompt_tokens`].
//! - [`rewrite_include_usage`] (or [`RequestInfo::rewrite_include_usage`], which does not read
//!   the body again): makes a streaming request ask for the final usage chunk, and
//!   [`UsageChunkStripper`] removes that chunk again from the response when the client had not
//!   asked for it.
//! - [`SseReader`]: a bounded, split-invariant `text/event-stream` push parser.
//! - [`UsageMeter`]: response bytes in, [`Usage`] out (JSON and SSE; chat, completions,
//!   embeddings, Responses API, images, audio); [`UsageMeter::new`] takes the request's info by
//!   value.
//!
//! ```
//! use budget_core::usage::{rewrite_include_usage, Endpoint, RequestInfo, UsageMeter};
//!
//! let body = br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
//! let info = RequestInfo::parse(Endpoint::from_path("/v1/chat/completions"), body);
//! // Ask the upstream for the usage chunk (the client did not).
//! let forwarded = rewrite_include_usage(body).expect("streaming without include_usage");
//! assert!(forwarded.starts_with(br#"{"stream_options":{"include_usage":true},"#));
//!
//! let mut meter = UsageMeter::for_content_type(&info, Some("text/event-stream"));
//! meter.feed(b"data: {\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel");
//! meter.feed(b"lo\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}\n\n");
//! meter.feed(b"data: [DONE]\n\n");
//! let usage = meter.finish();
//! assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.estimated), (9, 1, false));
//! assert_eq!(usage.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
//! ```
//!
//! # Estimates
//!
//! Token estimates use `tiktoken-rs`: `o200k_base` for gpt-4o, gpt-4.1, gpt-5, the o-series
//! and anything newer or unknown, `cl100k_base` for gpt-3.5, gpt-4, embeddings and older
//! models. Text is tokenized in word-aligned segments so that a pathological input (a 1 MiB
//! "word") costs linear time. Output text is kept up to 256 KiB per response; past that the
//! count is extrapolated by bytes. Prompt text is kept up to [`MAX_INPUT_TEXT`].
//!
//! # Bounds
//!
//! Nothing here grows with the response: an SSE event, or the copy of a JSON body, is kept up
//! to `max_event_bytes` (4 MiB by default; larger events are skipped, a larger JSON body is
//! read from its last 64 KiB), audio bodies are only counted, the stripper holds at most
//! [`MAX_HELD_BYTES`] of an unfinished event.

use serde::{Deserialize, Serialize};

mod de;
mod estimate;
#[cfg(test)]
mod json_text;
mod meter;
mod request;
mod sse;
mod strip;

pub use estimate::COSTLY_TOKENIZE_BYTES;
pub use meter::{UsageMeter, DEFAULT_MAX_EVENT_BYTES};
pub use request::{rewrite_include_usage, PromptEstimate, RequestInfo, MAX_INPUT_TEXT};
pub use sse::{SseEvent, SseReader};
pub use strip::{Forward, UsageChunkStripper, MAX_HELD_BYTES};

/// Which OpenAI API a request is for, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/chat/completions`
    ChatCompletions,
    /// `/completions` (legacy)
    Completions,
    /// `/embeddings`
    Embeddings,
    /// `/responses`
    Responses,
    /// `/images/generations`, `/images/edits`, `/images/variations`
    Images,
    /// `/audio/transcriptions`, `/audio/translations`
    AudioTranscription,
    /// `/audio/speech`
    AudioSpeech,
    /// `/moderations`
    Moderations,
    /// Anything else (`/models`, files, ...): forwarded, not metered by tokens.
    Other,
}

/// The service tier a response was billed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceTier {
    /// Standard prices.
    #[default]
    Default,
    /// `service_tier: "flex"`.
    Flex,
    /// `service_tier: "priority"`.
    Priority,
    /// The Batch API.
    Batch,
}

/// What one request used, in the units OpenAI bills.
///
/// `cached_tokens`, `audio_prompt_tokens` and `image_prompt_tokens` are *subsets* of
/// `prompt_tokens`; `reasoning_tokens` and `audio_completion_tokens` are subsets of
/// `completion_tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The model that served the request (from the response, else the request).
    pub model: Option<String>,
    /// Input tokens (`prompt_tokens` / `input_tokens`).
    pub prompt_tokens: u64,
    /// Input tokens served from the prompt cache.
    pub cached_tokens: u64,
    /// Output tokens (`completion_tokens` / `output_tokens`), reasoning included.
    pub completion_tokens: u64,
    /// Reasoning tokens, inside `completion_tokens`.
    pub reasoning_tokens: u64,
    /// Audio input tokens, inside `prompt_tokens`.
    pub audio_prompt_tokens: u64,
    /// Audio output tokens, inside `completion_tokens`.
    pub audio_completion_tokens: u64,
    /// Image input tokens, inside `prompt_tokens` (gpt-image edits, vision input).
    pub image_prompt_tokens: u64,
    /// Audio duration billed per second, in milliseconds (whisper).
    pub audio_millis: u64,
    /// Input characters billed per character (tts).
    pub characters: u64,
    /// Images produced, for models billed per image.
    pub images: u64,
    /// The tier the response says it was served at.
    pub service_tier: ServiceTier,
    /// True when some counts were estimated rather than reported by the upstream.
    pub estimated: bool,
}

impl Endpoint {
    /// The endpoint's API name, as it serializes: `chat_completions`, `embeddings`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat_completions",
            Endpoint::Completions => "completions",
            Endpoint::Embeddings => "embeddings",
            Endpoint::Responses => "responses",
            Endpoint::Images => "images",
            Endpoint::AudioTranscription => "audio_transcription",
            Endpoint::AudioSpeech => "audio_speech",
            Endpoint::Moderations => "moderations",
            Endpoint::Other => "other",
        }
    }

    /// The endpoint a request path is for. The path is what follows the proxy's prefix, with
    /// or without a leading `/`, `v1/`, Azure's `openai/` and `openai/deployments/{name}/`
    /// (in that order); a query string is ignored. Anything not listed on the variants
    /// (`models`, `responses/{id}`, files, batches, ...) is [`Endpoint::Other`].
    pub fn from_path(path: &str) -> Endpoint {
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
        if segs.first().is_some_and(|s| eq(s, "openai")) {
            segs.remove(0);
        }
        if segs.first().is_some_and(|s| eq(s, "v1")) {
            segs.remove(0);
        }
        if segs.len() >= 2 && eq(segs[0], "deployments") {
            segs.drain(..2);
        }
        let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        match lower.as_slice() {
            ["chat", "completions"] => Endpoint::ChatCompletions,
            ["completions"] => Endpoint::Completions,
            ["embeddings"] => Endpoint::Embeddings,
            ["responses"] => Endpoint::Responses,
            ["images", "generations" | "edits" | "variations"] => Endpoint::Images,
            ["audio", "transcriptions" | "translations"] => Endpoint::AudioTranscription,
            ["audio", "speech"] => Endpoint::AudioSpeech,
            ["moderations"] => Endpoint::Moderations,
            _ => Endpoint::Other,
        }
    }
}

impl Usage {
    /// `prompt_tokens + completion_tokens`.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_from_path() {
        for (path, want) in [
            ("chat/completions", Endpoint::ChatCompletions),
            ("/v1/chat/completions", Endpoint::ChatCompletions),
            (
                "/v1/chat/completions?api-version=1",
                Endpoint::ChatCompletions,
            ),
            (
                "openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
                Endpoint::ChatCompletions,
            ),
            ("/openai/deployments/emb/embeddings", Endpoint::Embeddings),
            ("openai/v1/responses", Endpoint::Responses),
            ("responses", Endpoint::Responses),
            ("responses/", Endpoint::Responses),
            ("embeddings", Endpoint::Embeddings),
            ("completions", Endpoint::Completions),
            ("images/generations", Endpoint::Images),
            ("images/edits", Endpoint::Images),
            ("images/variations", Endpoint::Images),
            ("audio/transcriptions", Endpoint::AudioTranscription),
            ("audio/translations", Endpoint::AudioTranscription),
            ("audio/speech", Endpoint::AudioSpeech),
            ("moderations", Endpoint::Moderations),
            ("models", Endpoint::Other),
            ("responses/resp_123", Endpoint::Other),
            ("responses/resp_123/input_items", Endpoint::Other),
            ("chat/completions/chatcmpl-1", Endpoint::Other),
            ("files/file-1/content", Endpoint::Other),
            ("deployments", Endpoint::Other),
            ("", Endpoint::Other),
            ("?chat/completions", Endpoint::Other),
        ] {
            assert_eq!(Endpoint::from_path(path), want, "{path}");
        }
    }
}

#[cfg(test)]
mod endpoint_name_tests {
    use super::Endpoint;

    #[test]
    fn as_str_is_the_serialized_name() {
        for e in [
            Endpoint::ChatCompletions,
            Endpoint::Completions,
            Endpoint::Embeddings,
            Endpoint::Responses,
            Endpoint::Images,
            Endpoint::AudioTranscription,
            Endpoint::AudioSpeech,
            Endpoint::Moderations,
            Endpoint::Other,
        ] {
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
    }
}

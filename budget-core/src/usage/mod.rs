//! OpenAI usage: what a request asked for and what its response says it used.
//!
//! Pure and incremental: nothing here does I/O. The request side ([`RequestInfo`]) reads the
//! JSON body a client sends; the response side ([`UsageMeter`]) is fed the response bytes as
//! they stream past and produces a [`Usage`] at the end, estimated from the delivered text when
//! the stream ended without a usage block.

use serde::{Deserialize, Serialize};

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

impl Usage {
    /// `prompt_tokens + completion_tokens`.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

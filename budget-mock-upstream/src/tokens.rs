//! Deterministic token accounting: the rules tests use to compute the cost they expect.

use serde_json::Value;

/// Tokens added for every chat message (and every Responses input item with a role or content).
pub const TOKENS_PER_MESSAGE: u64 = 4;

/// Tokens added once to every chat request that has `messages` (the reply priming).
pub const TOKENS_PER_CHAT_REQUEST: u64 = 3;

/// Reasoning tokens spent per choice by a reasoning model (`o1*`, `o3*`, `o4*`, `gpt-5*` except
/// `gpt-5-chat*`), counted inside `completion_tokens` as the real API does.
pub const REASONING_TOKENS_PER_CHOICE: u64 = 16;

/// The smallest prompt that reports cached tokens; above it, prompts are cached in whole blocks
/// of [`CACHE_BLOCK`] tokens, like OpenAI's automatic prompt caching.
pub const CACHE_MIN_TOKENS: u64 = 1024;

/// The block size of cached prompt tokens.
pub const CACHE_BLOCK: u64 = 128;

/// The content deltas cycle through these pieces; each piece is one completion token.
/// They include a two-byte (`é`) and a four-byte (`🚀`) UTF-8 sequence.
const PIECES: [&str; 8] = [
    "Hello",
    " from",
    " the",
    " mock",
    " café",
    " 🚀",
    " upstream",
    ".",
];

/// Token usage of one mock response, as [`usage_for`] computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MockUsage {
    /// `prompt_tokens` / `input_tokens`: [`prompt_tokens_for`].
    pub prompt_tokens: u64,
    /// `prompt_tokens_details.cached_tokens`: [`cached_tokens_for`] of the prompt tokens.
    pub cached_tokens: u64,
    /// `completion_tokens` / `output_tokens`, all choices, reasoning included.
    pub completion_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens`, all choices.
    pub reasoning_tokens: u64,
    /// `prompt_tokens + completion_tokens`.
    pub total_tokens: u64,
    /// Content deltas sent per choice (visible completion tokens per choice).
    pub visible_deltas: usize,
    /// Number of choices (`n`, at least 1).
    pub choices: u64,
    /// `true` when the token limit cut the answer short (`finish_reason: "length"`).
    pub truncated: bool,
}

/// Number of whitespace-separated words in `s`.
fn words(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Words of a content value: a string; an array of strings or of parts (`text`, `content`,
/// `input_text`… — every string under a `text` or `content` key counts); anything else is 0.
fn content_words(v: &Value) -> u64 {
    match v {
        Value::String(s) => words(s),
        Value::Array(items) => items.iter().map(content_words).sum(),
        Value::Object(map) => {
            map.get("text").map_or(0, content_words) + map.get("content").map_or(0, content_words)
        }
        _ => 0,
    }
}

/// Words of one Responses `input` item or one chat message.
fn item_tokens(v: &Value) -> u64 {
    match v {
        Value::Object(map) if map.contains_key("role") || map.contains_key("content") => {
            TOKENS_PER_MESSAGE + map.get("content").map_or(0, content_words)
        }
        other => content_words(other),
    }
}

/// Prompt tokens the mock reports for a request body. The rules, in order:
///
/// - **`messages`** (chat completions): `3 + Σ (4 + words(content))` over the messages, where
///   `words` counts whitespace-separated words of a string content, or of every `text` of an
///   array of content parts;
/// - **`input`** (embeddings, Responses): a string → its words; an array → for each item: an
///   object with a `role` or `content` → `4 + words(content)`, a string → its words (an array of
///   token ids counts 0); plus `4 + words(instructions)` when `instructions` is a string;
/// - **`prompt`** (legacy completions, images): the words of the string or of every string in
///   the array;
/// - anything else: 0.
///
/// ```
/// use budget_mock_upstream::prompt_tokens_for;
/// let body = serde_json::json!({"model": "gpt-4o", "messages": [
///     {"role": "system", "content": "Be brief."},
///     {"role": "user", "content": "Say hello to me"},
/// ]});
/// assert_eq!(prompt_tokens_for(&body), 3 + (4 + 2) + (4 + 4));
/// ```
pub fn prompt_tokens_for(body: &Value) -> u64 {
    if let Some(messages) = body.get("messages").and_then(Value::as_array) {
        return TOKENS_PER_CHAT_REQUEST + messages.iter().map(item_tokens).sum::<u64>();
    }
    if let Some(input) = body.get("input") {
        let instructions = body
            .get("instructions")
            .and_then(Value::as_str)
            .map_or(0, |s| TOKENS_PER_MESSAGE + words(s));
        let input = match input {
            Value::Array(items) => items.iter().map(item_tokens).sum(),
            other => content_words(other),
        };
        return input + instructions;
    }
    body.get("prompt").map_or(0, content_words)
}

/// Cached prompt tokens reported for `prompt_tokens`: 0 below [`CACHE_MIN_TOKENS`], otherwise
/// the prompt rounded down to a whole number of [`CACHE_BLOCK`]s.
///
/// ```
/// use budget_mock_upstream::cached_tokens_for;
/// assert_eq!(cached_tokens_for(1000), 0);
/// assert_eq!(cached_tokens_for(1300), 1280);
/// ```
pub fn cached_tokens_for(prompt_tokens: u64) -> u64 {
    if prompt_tokens < CACHE_MIN_TOKENS {
        0
    } else {
        prompt_tokens / CACHE_BLOCK * CACHE_BLOCK
    }
}

/// The content deltas of a stream of `deltas` tokens (one token each); a JSON answer's text is
/// their concatenation.
///
/// ```
/// use budget_mock_upstream::completion_text;
/// assert_eq!(completion_text(3).concat(), "Hello from the");
/// ```
pub fn completion_text(deltas: usize) -> Vec<String> {
    pieces(deltas).map(str::to_owned).collect()
}

/// The pieces of [`completion_text`] without allocating.
pub(crate) fn pieces(deltas: usize) -> impl Iterator<Item = &'static str> {
    (0..deltas).map(|i| PIECES[i % PIECES.len()])
}

/// Whether the mock treats `model` as a reasoning model.
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    ["o1", "o3", "o4"].iter().any(|p| model.starts_with(p))
        || (model.starts_with("gpt-5") && !model.starts_with("gpt-5-chat"))
}

/// The token limit a request sets, if any.
fn max_tokens(body: &Value) -> Option<u64> {
    ["max_completion_tokens", "max_tokens", "max_output_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
}

/// Completion tokens (all choices, reasoning included) for a request body answered with
/// `deltas` content deltas; see [`usage_for`].
pub fn completion_tokens(body: &Value, deltas: usize) -> u64 {
    usage_for(body, deltas).completion_tokens
}

/// The full usage the mock reports for `body` when configured with `deltas` content deltas,
/// taking the model from the body's `model` (for Azure deployment URLs use
/// [`usage_for_model`] with the deployment name).
///
/// Per choice: reasoning = [`REASONING_TOKENS_PER_CHOICE`] for a reasoning model (0 otherwise),
/// capped by the token limit (`max_completion_tokens`, `max_tokens` or `max_output_tokens`);
/// visible = `min(deltas, limit - reasoning)`. `completion_tokens = n × (visible + reasoning)`
/// with `n` the request's `n` (default 1). The answer is `truncated` (finish reason `length`,
/// Responses status `incomplete`) when visible < `deltas`.
///
/// ```
/// use budget_mock_upstream::usage_for;
/// let body = serde_json::json!({"model": "gpt-4o-mini", "prompt": "one two", "n": 2, "max_tokens": 5});
/// let usage = usage_for(&body, 8);
/// assert_eq!((usage.prompt_tokens, usage.completion_tokens, usage.truncated), (2, 10, true));
/// ```
pub fn usage_for(body: &Value, deltas: usize) -> MockUsage {
    let model = body.get("model").and_then(Value::as_str).unwrap_or("");
    usage_for_model(model, body, deltas)
}

/// [`usage_for`] with an explicit model name (decides whether reasoning tokens are spent).
pub fn usage_for_model(model: &str, body: &Value, deltas: usize) -> MockUsage {
    let prompt_tokens = prompt_tokens_for(body);
    let choices = body.get("n").and_then(Value::as_u64).unwrap_or(1).max(1);
    let limit = max_tokens(body).unwrap_or(u64::MAX);
    let reasoning = if is_reasoning_model(model) {
        REASONING_TOKENS_PER_CHOICE.min(limit)
    } else {
        0
    };
    let visible = (deltas as u64).min(limit - reasoning);
    let completion_tokens = choices * (visible + reasoning);
    MockUsage {
        prompt_tokens,
        cached_tokens: cached_tokens_for(prompt_tokens),
        completion_tokens,
        reasoning_tokens: choices * reasoning,
        total_tokens: prompt_tokens + completion_tokens,
        visible_deltas: visible as usize,
        choices,
        truncated: (visible as usize) < deltas,
    }
}

/// Audio input tokens a `gpt-4o-transcribe`-style model reports for an uploaded file:
/// one token per started 1,000 bytes (at least 1).
///
/// ```
/// assert_eq!(budget_mock_upstream::transcription_audio_tokens(2500), 3);
/// ```
pub fn transcription_audio_tokens(file_bytes: usize) -> u64 {
    (file_bytes as u64).div_ceil(1000).max(1)
}

/// Seconds `whisper-1` reports for an uploaded file: one second per started 32,000 bytes
/// (16 kHz, 16-bit mono PCM), at least 1.
///
/// ```
/// assert_eq!(budget_mock_upstream::transcription_seconds(64_001), 3);
/// ```
pub fn transcription_seconds(file_bytes: usize) -> u64 {
    (file_bytes as u64).div_ceil(32_000).max(1)
}

/// Output (image) tokens `gpt-image-1` reports per image, from OpenAI's published table:
/// `quality` `low` / `medium` / `high` (anything else counts as `medium`) by `size`
/// `1024x1024` / `1024x1536` / `1536x1024` (anything else counts as `1024x1024`).
///
/// ```
/// assert_eq!(budget_mock_upstream::image_output_tokens("low", "1024x1024"), 272);
/// assert_eq!(budget_mock_upstream::image_output_tokens("high", "1536x1024"), 6208);
/// ```
pub fn image_output_tokens(quality: &str, size: &str) -> u64 {
    let row = match quality {
        "low" => [272, 408, 400],
        "high" => [4160, 6240, 6208],
        _ => [1056, 1584, 1568],
    };
    match size {
        "1024x1536" => row[1],
        "1536x1024" => row[2],
        _ => row[0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn responses_input_items_and_instructions() {
        let body = json!({"model": "gpt-4o", "instructions": "be nice",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "a b c"}]}]});
        assert_eq!(prompt_tokens_for(&body), (4 + 2) + (4 + 3));
        assert_eq!(prompt_tokens_for(&json!({"input": "x y"})), 2);
        assert_eq!(prompt_tokens_for(&json!({"input": ["x y", "z"]})), 3);
    }

    #[test]
    fn reasoning_models_spend_reasoning_tokens_within_the_limit() {
        let u = usage_for(&json!({"model": "o3-mini", "messages": []}), 8);
        assert_eq!((u.completion_tokens, u.reasoning_tokens), (24, 16));
        let u = usage_for(&json!({"model": "o3-mini", "max_completion_tokens": 10}), 8);
        assert_eq!(
            (u.completion_tokens, u.visible_deltas, u.truncated),
            (10, 0, true)
        );
        assert!(!is_reasoning_model("gpt-5-chat-latest"));
    }

    #[test]
    fn text_includes_multibyte_characters() {
        let text = completion_text(8).concat();
        assert!(text.contains('é') && text.contains('🚀'));
        assert_eq!(completion_text(10).len(), 10);
    }
}

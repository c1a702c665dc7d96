//! `budget-mock-upstream`: an OpenAI- and Azure-OpenAI-compatible mock upstream for tests and
//! benchmarks. It answers on the wire the way the real APIs do — same JSON shapes, same SSE
//! framing, same error bodies — with deterministic token counts, so a test can compute the
//! exact cost a proxy should charge.
//!
//! - **Real sockets**: [`MockUpstream::start`] binds `127.0.0.1:0` (or [`MockOptions::addr`]),
//!   serves HTTP/1.1 with hyper, and stops on drop or [`MockUpstream::shutdown`].
//! - **Inspection**: [`MockUpstream::requests`] returns every [`SeenRequest`] (method, path with
//!   query, headers, body) so tests can assert what a proxy forwarded;
//!   [`MockUpstream::seen_keys`] (and `GET /mock/seen-keys`, for a mock in another process)
//!   lists every distinct credential header value received ([`SeenKeys`]).
//! - **Key checking**: [`MockOptions::accepted_keys`] makes it accept only the given API keys,
//!   like a real upstream with real keys.
//! - **Truly incremental streams**: every SSE event is its own body frame, flushed before the
//!   next, [`MockOptions::chunk_delay`] apart; [`MockOptions::split_events`] cuts events at
//!   awkward byte boundaries (mid-UTF-8, between line terminators); [`MockOptions::crlf`] uses
//!   `\r\n` line endings.
//! - **Failures**: [`MockOptions::fail_with`] and the test-hook models below.
//! - **A binary** `budget-mock-upstream` (`--addr`, `--chunk-delay-ms`, `--deltas`,
//!   `--split-events`, `--crlf`, `--fail-with`, `--accept-key KEY` (repeatable)) that prints `listening on http://ADDR` as its
//!   first stdout line.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use budget_mock_upstream::{MockOptions, MockUpstream};
//!
//! # async fn run() -> std::io::Result<()> {
//! let upstream = MockUpstream::start(
//!     MockOptions::default().with_deltas(4).with_chunk_delay(Duration::from_millis(5)),
//! )
//! .await?;
//! println!("point the proxy at {}", upstream.url());
//! // … drive requests through the proxy, then:
//! assert_eq!(upstream.request_count(), 1);
//! let forwarded = &upstream.requests()[0];
//! assert!(forwarded.header("authorization").is_some());
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! Routing looks at the path **suffix**, so any prefix a proxy forwards to works
//! (`/v1/chat/completions`, `/proxy/v1/chat/completions`, …).
//!
//! | method | suffix | answer |
//! | --- | --- | --- |
//! | POST | `/chat/completions` | `chat.completion`, or `chat.completion.chunk` events |
//! | POST | `/completions` | legacy `text_completion` (JSON or stream); usage has the three totals only |
//! | POST | `/embeddings` | one embedding per input, floats or `encoding_format: "base64"` |
//! | POST | `/responses` | a `response` object, or the typed `response.*` event stream |
//! | POST | `/images/generations` | `gpt-image-1*`: `b64_json` plus token usage ([`image_output_tokens`]); others: DALL·E shape, no usage |
//! | POST | `/audio/transcriptions` | multipart; `whisper-1`: `usage: {"type":"duration","seconds":N}` ([`transcription_seconds`]); others: `usage: {"type":"tokens",…}` ([`transcription_audio_tokens`]) |
//! | GET | `/models` | a model list |
//! | GET | `/mock/seen-keys` (this exact path) | the mock's own: `{"authorization": […], "api-key": […], "openai-organization": […], "openai-project": […]}`, every distinct value of those headers received so far, in the order first seen ([`SeenKeys`]); requests to it are not counted, recorded or key-checked |
//!
//! Anything else is a 404 `Invalid URL (METHOD /path)` in OpenAI's error shape.
//!
//! **Azure.** Paths containing `/openai/deployments/{deployment}/` (which also need an
//! `api-version` query parameter, else Azure's 404 `Resource not found`) and `/openai/v1/`
//! answer in Azure's shape: the model is the one behind the deployment — a known alias resolves
//! to its snapshot (`gpt-4o` → `gpt-4o-2024-08-06`), `mock-*` and known names are kept, any other
//! deployment name reports `gpt-4o-2024-08-06` (`text-embedding-3-small` for embeddings);
//! responses carry `prompt_filter_results` and per-choice `content_filter_results`, and streams
//! begin with Azure's chunk with empty `choices`, `"model":""` and `prompt_filter_results`.
//!
//! **Auth.** OpenAI paths need `Authorization: Bearer <non-empty>`; Azure paths accept that or
//! `api-key`. Otherwise: 401 `{"error":{"message":"You didn't provide an API key…",
//! "type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`. With
//! [`MockOptions::accepted_keys`] set (`--accept-key`), the Bearer key of an OpenAI path must be
//! one of them, and on an Azure path every credential sent (`api-key` and/or Bearer) must be;
//! otherwise the same 401 with OpenAI's `"Incorrect API key provided: sk-clien****…wxyz. You
//! can find your API key at …"` message (the key masked as OpenAI masks it).
//!
//! **Models.** Responses report the requested model, resolved to a dated snapshot for
//! well-known aliases (`gpt-4o` → `gpt-4o-2024-08-06`, `gpt-4o-mini` → `gpt-4o-mini-2024-07-18`,
//! `gpt-4.1*`, `o1`, `o3`, `o3-mini`, `o4-mini`, `gpt-5*`, …); unknown models are echoed as is.
//!
//! # Streaming
//!
//! With `"stream": true` the answer is `text/event-stream`, chunked, one frame per event:
//!
//! - chat: (Azure's prompt-filter chunk,) a chunk with `delta.role` per choice, one chunk per
//!   content delta per choice (the text includes `é` and `🚀`, see [`completion_text`]), a chunk
//!   with `finish_reason` (`"stop"`, or `"length"` when the token limit cut it), then — **only**
//!   when `stream_options.include_usage` is true — a chunk with `"choices":[]` and `usage`
//!   (and `"usage":null` on every earlier chunk, as OpenAI does); finally `data: [DONE]`.
//!   Without `include_usage` no usage appears anywhere.
//! - legacy completions: the same with `text` deltas.
//! - Responses: `event: response.created`, `response.in_progress`,
//!   `response.output_item.added`, `response.content_part.added`, one
//!   `response.output_text.delta` per delta, `response.output_text.done`,
//!   `response.content_part.done`, `response.output_item.done`, and `response.completed`
//!   (`response.incomplete` when `max_output_tokens` cut it) whose `response.usage` has
//!   `input_tokens`, `input_tokens_details.cached_tokens`, `output_tokens`,
//!   `output_tokens_details.reasoning_tokens` and `total_tokens`; each event is
//!   `event: X\ndata: {…}\n\n` with an increasing `sequence_number`.
//!
//! # Token counts
//!
//! - prompt tokens: [`prompt_tokens_for`] — chat: `3 + Σ (4 + words(content))` over messages;
//!   `input`: words of strings, `4 + words(content)` per item with a role, plus
//!   `4 + words(instructions)`; `prompt`: its words. Words are whitespace-separated.
//! - cached tokens: [`cached_tokens_for`] — 0 below 1,024 prompt tokens, else the prompt
//!   rounded down to a multiple of 128.
//! - completion tokens: [`usage_for`] — per choice, `min(deltas, limit − reasoning)` visible
//!   tokens plus [`REASONING_TOKENS_PER_CHOICE`] reasoning tokens for reasoning models (`o1*`,
//!   `o3*`, `o4*`, `gpt-5*`), the limit being `max_completion_tokens`, `max_tokens` or
//!   `max_output_tokens`; times `n`.
//!
//! # Test hooks
//!
//! Chosen by the model name (the deployment name on Azure deployment URLs):
//!
//! | model | behaviour |
//! | --- | --- |
//! | `mock-error-500` | 500 `server_error` body |
//! | `mock-error-429` | 429 `rate_limit_exceeded` body with `retry-after` and `x-ratelimit-*` headers |
//! | `mock-slow` | waits 2 s before the first byte, then answers normally |
//! | `mock-hang` | sends the headers and the first event (half the JSON body when not streaming), then never ends until the client goes away |
//! | `mock-unpriced-model` | a normal answer reporting that model name |
//!
//! **Per-request latency.** A request header `x-mock-latency-ms: N` (a whole number of
//! milliseconds, at most 60 000) makes the mock wait N ms before answering — for a stream,
//! before its first byte — so a test can give every request its own upstream latency. A proxy
//! forwards it like any other header. Absent or not a whole number: no pause.
//!
//! Error answers from the hooks and from [`MockOptions::fail_with`] carry
//! `x-should-retry: false`, so the official SDKs surface them at once instead of retrying.
//! Every answer carries an `x-request-id` and `access-control-allow-origin: *` (and `OPTIONS`
//! preflights get a 204), so a browser can call the mock directly; Azure answers also carry
//! `apim-request-id`.

#![deny(missing_docs)]

mod body;
mod call;
mod chat;
mod errors;
mod handler;
mod media;
mod models;
mod options;
mod responses;
mod server;
mod tokens;

pub use options::MockOptions;
pub use server::{MockUpstream, SeenKeys, SeenRequest};
pub use tokens::{
    cached_tokens_for, completion_text, completion_tokens, image_output_tokens, prompt_tokens_for,
    transcription_audio_tokens, transcription_seconds, usage_for, usage_for_model, MockUsage,
    CACHE_BLOCK, CACHE_MIN_TOKENS, REASONING_TOKENS_PER_CHOICE, TOKENS_PER_CHAT_REQUEST,
    TOKENS_PER_MESSAGE,
};

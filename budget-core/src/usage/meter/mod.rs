//! The response side: [`UsageMeter`] is fed the response bytes as they stream past.
//!
//! - `found`: what the response said (JSON bodies and SSE events of every API), and the
//!   output text kept for an estimate.
//! - `event`, `body`: one SSE event's JSON and a whole JSON body, each read in one borrowed,
//!   typed pass (no `serde_json::Value` tree per event).
//! - `json_body`: the bounded copy of a JSON response body and the scan for its end.
//! - `usage_block`: the `usage` object, in all its shapes.

use super::sse::SseReader;
use super::strip::StripState;
use super::{Endpoint, Forward, PromptEstimate, RequestInfo, Usage, COSTLY_TOKENIZE_BYTES};

mod body;
mod event;
mod found;
mod json_body;
mod usage_block;

#[cfg(test)]
mod fixtures;

use body::BodyData;
use found::Found;
use json_body::{JsonBody, JsonKind};

/// Default bound on one SSE event and on the buffered copy of a JSON body (4 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Extracts a [`Usage`] from a response body fed to it piece by piece.
///
/// Built from the request's [`RequestInfo`], which it keeps (copied, or moved in by
/// [`UsageMeter::new`]: the meter is `Send + 'static`). Three modes:
/// - **SSE** (`text/event-stream`): events are parsed as they complete with a bounded
///   [`SseReader`]; chat / completions chunks, Responses API events (`response.completed`,
///   `response.incomplete`, `response.failed`, text deltas), transcription events
///   (`transcript.text.delta` / `.done`), image events (`image_generation.completed`) and
///   `speech.audio.done` are understood.
/// - **JSON**: a copy of the body is kept up to `max_event_bytes` (default 4 MiB) and parsed as
///   soon as the top-level value is complete (a byte-level scanner finds its end), so
///   [`saw_usage`](Self::saw_usage) is accurate before [`finish`](Self::finish). Past the
///   bound only the last 64 KiB are kept and `usage` / `model` / `service_tier` are read from
///   that tail (where OpenAI serializes them: after `data` in embeddings and images). A JSON
///   meter whose body turns out to start like an event stream (`data:`, `event:`, `:`) on a
///   streaming request switches to SSE.
/// - **count only**: audio speech and unmetered endpoints ([`Endpoint::Other`]) are not
///   buffered at all; speech is billed by the request's `input` characters.
///
/// When the body ends without a usage block (client hung up, upstream reset, `include_usage`
/// not honoured, non-JSON body), [`finish`](Self::finish) estimates: prompt tokens with
/// [`RequestInfo::estimate_prompt_tokens`], completion tokens by tokenizing the output text
/// that was delivered (deltas, `choices[].message.content`, `choices[].text`, `output_text`,
/// tool-call arguments; the raw body of a truncated JSON response), and sets
/// [`Usage::estimated`]. Exceptions: a JSON error body (or a stream whose only content was an
/// `error`) is billed nothing; images without `usage` (dall-e) are counted as `images` (the
/// number of `data` items), exactly; moderations and unmetered endpoints are zero.
#[derive(Debug)]
pub struct UsageMeter {
    request: RequestInfo,
    /// The prompt estimate made before the request was sent, if one was.
    prompt_estimate: Option<PromptEstimate>,
    /// Hiding the usage-only chunk from the client, when asked to.
    strip: Option<Box<StripState>>,
    max_event_bytes: usize,
    body: Body,
    found: Found,
}

#[derive(Debug)]
enum Body {
    Json(JsonBody),
    Sse(SseReader),
    Count,
}

impl UsageMeter {
    fn with_mode(info: RequestInfo, sse: bool) -> Self {
        let body = match info.endpoint {
            Endpoint::AudioSpeech | Endpoint::Other if !sse => Body::Count,
            _ if sse => Body::Sse(SseReader::new(DEFAULT_MAX_EVENT_BYTES)),
            _ => Body::Json(JsonBody::new(DEFAULT_MAX_EVENT_BYTES)),
        };
        UsageMeter {
            found: Found {
                endpoint: Some(info.endpoint),
                ..Found::default()
            },
            request: info,
            prompt_estimate: None,
            strip: None,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            body,
        }
    }

    /// [`for_content_type`](Self::for_content_type) taking the request's info by value, so
    /// that its prompt text (up to [`MAX_INPUT_TEXT`](super::MAX_INPUT_TEXT)) is moved into
    /// the meter rather than copied.
    ///
    /// ```
    /// use budget_core::usage::{Endpoint, RequestInfo, UsageMeter};
    ///
    /// let body = br#"{"model":"text-embedding-3-small","input":"hi"}"#;
    /// let info = RequestInfo::parse(Endpoint::Embeddings, body);
    /// let mut meter = UsageMeter::new(info, Some("application/json"));
    /// meter.feed(br#"{"data":[],"usage":{"prompt_tokens":1,"total_tokens":1}}"#);
    /// assert_eq!(meter.finish().prompt_tokens, 1);
    /// ```
    pub fn new(info: RequestInfo, content_type: Option<&str>) -> Self {
        let is_sse = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/event-stream"));
        Self::with_mode(info, is_sse)
    }

    /// A meter for a JSON (non-streaming) response body.
    pub fn json(info: &RequestInfo) -> Self {
        Self::with_mode(info.clone(), false)
    }

    /// A meter for a `text/event-stream` response body.
    pub fn sse(info: &RequestInfo) -> Self {
        Self::with_mode(info.clone(), true)
    }

    /// [`sse`](Self::sse) for `text/event-stream` (any case, parameters ignored), else
    /// [`json`](Self::json).
    pub fn for_content_type(info: &RequestInfo, content_type: Option<&str>) -> Self {
        Self::new(info.clone(), content_type)
    }

    /// Sets the bound on one SSE event and on the JSON body copy (default 4 MiB). Call it
    /// before feeding.
    pub fn with_max_event_bytes(mut self, n: usize) -> Self {
        let n = n.max(1);
        self.max_event_bytes = n;
        match &mut self.body {
            Body::Sse(reader) => *reader = SseReader::new(n),
            Body::Json(json) => json.cap = n,
            Body::Count => {}
        }
        self
    }

    /// Gives the meter the prompt estimate already made for this request
    /// ([`RequestInfo::prompt_estimate`]), so that [`finish`](Self::finish) does not tokenize
    /// the prompt a second time when it has to estimate.
    ///
    /// ```
    /// use budget_core::usage::{Endpoint, RequestInfo, UsageMeter};
    ///
    /// let info = RequestInfo::parse(Endpoint::ChatCompletions, br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi there"}]}"#);
    /// let estimate = info.prompt_estimate();
    /// let meter = UsageMeter::new(info, Some("application/json")).with_prompt_estimate(estimate);
    /// // The body never came: both sides are estimated, the prompt from the estimate given.
    /// let usage = meter.finish();
    /// assert!(usage.estimated);
    /// assert_eq!(usage.prompt_tokens, estimate.tokens());
    /// ```
    pub fn with_prompt_estimate(mut self, estimate: PromptEstimate) -> Self {
        self.prompt_estimate = Some(estimate);
        self
    }

    /// True when [`finish`](Self::finish) would run the tokenizer over more than
    /// [`COSTLY_TOKENIZE_BYTES`] (no usage block was read, and the prompt or the delivered
    /// text is long): call it on a blocking thread (`tokio::task::spawn_blocking`) then.
    pub fn finish_is_costly(&self) -> bool {
        if self.saw_usage() {
            return false;
        }
        let prompt = match self.prompt_estimate {
            Some(_) => 0,
            None => self.request.input_text.len(),
        };
        prompt + self.found.text.kept_len() > COSTLY_TOKENIZE_BYTES
    }

    /// Also hides the usage-only chunk from the client, as [`UsageChunkStripper`] does (for a
    /// request whose `include_usage` the proxy added): feed with
    /// [`feed_forward`](Self::feed_forward) and forward what it says, then
    /// [`end_forward`](Self::end_forward)'s bytes at the end of the body. Each event is read
    /// once, for the usage and for the stripping. Only an event stream is stripped, and an
    /// event the meter drops for outgrowing
    /// [`with_max_event_bytes`](Self::with_max_event_bytes) is forwarded whole.
    ///
    /// ```
    /// use budget_core::usage::{Endpoint, RequestInfo, UsageMeter};
    ///
    /// let info = RequestInfo::parse(Endpoint::ChatCompletions, br#"{"model":"gpt-4o","stream":true,"messages":[]}"#);
    /// let mut meter = UsageMeter::new(info, Some("text/event-stream")).with_usage_chunk_stripping();
    /// let body = concat!(
    ///     "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
    ///     "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n",
    ///     "data: [DONE]\n\n",
    /// );
    /// let forward = meter.feed_forward(body.as_bytes());
    /// let mut sent = forward.bytes(body.as_bytes()).to_vec();
    /// sent.extend(meter.end_forward());
    /// assert_eq!(sent, b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: [DONE]\n\n");
    /// assert_eq!(meter.finish().prompt_tokens, 5);
    /// ```
    ///
    /// [`UsageChunkStripper`]: super::UsageChunkStripper
    pub fn with_usage_chunk_stripping(mut self) -> Self {
        self.strip = Some(Box::default());
        self
    }

    /// [`feed`](Self::feed), saying what of `piece` to forward to the client: all of it as it
    /// is, unless [`with_usage_chunk_stripping`](Self::with_usage_chunk_stripping) removes or
    /// holds back some.
    pub fn feed_forward(&mut self, piece: &[u8]) -> Forward {
        let (Some(strip), Body::Sse(reader)) = (&mut self.strip, &mut self.body) else {
            self.feed(piece);
            return Forward::Piece(0..piece.len());
        };
        let found = &mut self.found;
        strip.feed(piece, |sink| {
            reader.feed_raw(piece, |e| found.on_event(e), sink);
        })
    }

    /// At the end of the body: what stripping still held back (an unfinished event), to be
    /// forwarded last; empty when not stripping.
    pub fn end_forward(&mut self) -> Vec<u8> {
        self.strip.as_mut().map(|s| s.finish()).unwrap_or_default()
    }

    /// Usage chunks removed so far by [`with_usage_chunk_stripping`](Self::with_usage_chunk_stripping).
    pub fn stripped_events(&self) -> u64 {
        self.strip.as_ref().map_or(0, |s| s.stripped())
    }

    /// True once a usage block has been read from the response.
    pub fn saw_usage(&self) -> bool {
        self.found.usage.is_some()
    }

    /// SSE events dropped for outgrowing the bound (0 for JSON).
    pub fn skipped_events(&self) -> u64 {
        match &self.body {
            Body::Sse(r) => r.skipped_events(),
            _ => 0,
        }
    }

    /// Feeds the next piece of the response body.
    pub fn feed(&mut self, bytes: &[u8]) {
        let UsageMeter {
            request,
            max_event_bytes,
            body,
            found,
            prompt_estimate: _,
            strip: _,
        } = self;
        match body {
            Body::Count => {}
            Body::Sse(reader) => reader.feed(bytes, |e| {
                found.on_event(e);
            }),
            Body::Json(json) => {
                let mut bytes = bytes;
                if json.kind == JsonKind::Unknown {
                    let Some(first) = bytes.iter().position(|b| !b.is_ascii_whitespace()) else {
                        json.store(bytes);
                        return;
                    };
                    match bytes[first] {
                        b'{' | b'[' => json.kind = JsonKind::Json,
                        b'd' | b'e' | b':' if request.stream => {
                            // An event stream after all.
                            let mut reader = SseReader::new(*max_event_bytes);
                            let prefix = std::mem::take(&mut json.buf);
                            reader.feed(&prefix, |e| {
                                found.on_event(e);
                            });
                            reader.feed(bytes, |e| {
                                found.on_event(e);
                            });
                            *body = Body::Sse(reader);
                            return;
                        }
                        _ => json.kind = JsonKind::Text,
                    }
                    json.store(&bytes[..first]);
                    bytes = &bytes[first..];
                }
                match json.kind {
                    JsonKind::Json => match json.scan(bytes) {
                        None => json.store(bytes),
                        Some(end) => {
                            json.store(&bytes[..end]);
                            json.kind = JsonKind::Done;
                            if json.overflowed {
                                found.on_json_tail(json.kept());
                            } else {
                                match BodyData::read(&json.buf) {
                                    Ok(Some(b)) => found.on_json_body(&b),
                                    Ok(None) => {}
                                    Err(_) => {
                                        // Balanced but invalid: treat like a truncated body.
                                        found.push_raw(request.endpoint, &json.buf, json.total);
                                    }
                                }
                            }
                            json.release();
                        }
                    },
                    JsonKind::Text => json.store(bytes),
                    JsonKind::Done | JsonKind::Unknown => {}
                }
            }
        }
    }

    /// Ends the body and returns what the request used (estimated when the response did not
    /// say, see the type docs).
    pub fn finish(mut self) -> Usage {
        match &mut self.body {
            Body::Count => {}
            Body::Sse(reader) => {
                let found = &mut self.found;
                reader.finish(|e| {
                    found.on_event(e);
                });
            }
            Body::Json(json) => match json.kind {
                // Cut off before the value ended, or not JSON (a `text` transcription).
                JsonKind::Json | JsonKind::Text => {
                    self.found
                        .push_raw(self.request.endpoint, json.kept(), json.total);
                }
                JsonKind::Done | JsonKind::Unknown => {}
            },
        }
        self.build()
    }

    fn build(self) -> Usage {
        let request = self.request;
        let found = self.found;
        let mut u = Usage {
            model: found.model.or_else(|| request.model.clone()),
            service_tier: found.tier.or(request.service_tier).unwrap_or_default(),
            ..Usage::default()
        };
        let endpoint = request.endpoint;
        if endpoint == Endpoint::AudioSpeech {
            u.characters = request.input_text.chars().count() as u64;
        }
        if let Some(reported) = found.usage {
            return Usage {
                model: u.model,
                service_tier: u.service_tier,
                characters: u.characters,
                ..reported
            };
        }
        match endpoint {
            Endpoint::Other | Endpoint::Moderations | Endpoint::AudioSpeech => return u,
            _ => {}
        }
        if found.error && found.text.is_empty() {
            // The upstream answered with an error: nothing was generated or billed.
            return u;
        }
        if endpoint == Endpoint::Images && found.saw_images {
            // dall-e style: billed per image, the count is exact.
            u.images = found.images;
            return u;
        }
        let model = u.model.clone();
        u.prompt_tokens = self
            .prompt_estimate
            .and_then(|e| e.tokens_for(model.as_deref()))
            .unwrap_or_else(|| request.estimate_prompt_tokens_for(model.as_deref()));
        match endpoint {
            Endpoint::Embeddings => {}
            Endpoint::Images => u.images = request.n,
            _ => u.completion_tokens = found.text.tokens(model.as_deref()),
        }
        u.estimated = true;
        u
    }
}

#[cfg(test)]
mod tests;

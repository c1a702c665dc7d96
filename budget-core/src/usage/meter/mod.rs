//! The response side: [`UsageMeter`] is fed the response bytes as they stream past.
//!
//! - `found`: what the response said (JSON bodies and SSE events of every API), and the
//!   output text kept for an estimate.
//! - `event`, `body`: one SSE event's JSON and a whole JSON body, each read in one borrowed,
//!   typed pass (no `serde_json::Value` tree per event).
//! - `json_body`: the bounded copy of a JSON response body and the scan for its end.
//! - `usage_block`: the `usage` object, in all its shapes.

use super::sse::SseReader;
use super::{Endpoint, PromptEstimate, RequestInfo, Usage, COSTLY_TOKENIZE_BYTES};

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
        } = self;
        match body {
            Body::Count => {}
            Body::Sse(reader) => reader.feed(bytes, |e| found.on_event(e)),
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
                            reader.feed(&prefix, |e| found.on_event(e));
                            reader.feed(bytes, |e| found.on_event(e));
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
                reader.finish(|e| found.on_event(e));
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
mod tests {
    use super::super::ServiceTier;
    use super::fixtures::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_given_prompt_estimate_is_used_for_the_same_tokenizer_only() {
        let info = chat_info(true);
        let counted = info.estimate_prompt_tokens();
        let fake = PromptEstimate::for_tests(info.model.as_deref(), counted + 1000);
        // Cut off before any usage: the prompt comes from the estimate given.
        let mut m = UsageMeter::sse(&info).with_prompt_estimate(fake);
        m.feed(chunk("Hello").as_bytes());
        assert_eq!(m.finish().prompt_tokens, counted + 1000);
        // A response model with another tokenizer: counted again, with that one.
        let other = PromptEstimate::for_tests(Some("gpt-3.5-turbo"), 1);
        let mut m = UsageMeter::sse(&info).with_prompt_estimate(other);
        m.feed(chunk("Hello").as_bytes());
        assert_eq!(m.finish().prompt_tokens, counted);
    }

    #[test]
    fn finish_is_costly_only_when_it_would_tokenize_much() {
        let small = chat_info(true);
        let mut m = UsageMeter::sse(&small);
        m.feed(chunk("Hello").as_bytes());
        assert!(!m.finish_is_costly());
        let long = "word ".repeat(COSTLY_TOKENIZE_BYTES / 4);
        let body = format!(
            r#"{{"model":"gpt-4o","stream":true,"messages":[{{"role":"user","content":"{long}"}}]}}"#
        );
        let big = RequestInfo::parse(Endpoint::ChatCompletions, body.as_bytes());
        assert!(big.prompt_estimate_is_costly());
        let m = UsageMeter::sse(&big);
        assert!(m.finish_is_costly());
        // Estimated already: only the delivered text would be counted.
        let estimate = big.prompt_estimate();
        let mut m = UsageMeter::sse(&big).with_prompt_estimate(estimate);
        assert!(!m.finish_is_costly());
        m.feed(chunk(&long).as_bytes());
        assert!(m.finish_is_costly());
        // A usage block makes every estimate unnecessary.
        m.feed(USAGE_CHUNK.as_bytes());
        assert!(!m.finish_is_costly());
    }

    #[test]
    fn meter_is_send_static() {
        fn assert_send_static<T: Send + 'static>() {}
        assert_send_static::<UsageMeter>();
    }

    #[test]
    fn chat_sse_with_usage() {
        let info = chat_info(true);
        let mut m = UsageMeter::for_content_type(&info, Some("text/event-stream; charset=utf-8"));
        m.feed(chat_stream(true).as_bytes());
        assert!(m.saw_usage());
        let u = m.finish();
        assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.total_tokens()),
            (11, 2, 13)
        );
        assert_eq!(u.service_tier, ServiceTier::Default);
        assert!(!u.estimated);
    }

    #[test]
    fn chat_sse_without_usage_is_estimated() {
        let info = chat_info(true);
        let u = run_whole(UsageMeter::sse(&info), &chat_stream(false));
        assert!(u.estimated);
        assert!((2..=3).contains(&u.completion_tokens), "{u:?}");
        // "Say hello world" = 3 tokens + 3 per message + 3 priming.
        assert!((8..=12).contains(&u.prompt_tokens), "{u:?}");
        assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));

        // Client hung up mid-stream: what was delivered is counted.
        let s = chat_stream(true);
        let cut = s.find(" world").unwrap();
        let u = run_whole(UsageMeter::sse(&info), &s[..cut]);
        assert!(u.estimated);
        assert_eq!(u.completion_tokens, 1);
    }

    #[test]
    fn azure_first_chunk_model_is_ignored() {
        // Azure deployment path: no model in the request.
        let info = RequestInfo::parse(
            Endpoint::ChatCompletions,
            br#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let u = run_whole(UsageMeter::sse(&info), AZURE_FIRST);
        assert_eq!(u.model, None);
        let u = run_whole(UsageMeter::sse(&info), &chat_stream(true));
        assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    }

    #[test]
    fn chat_json() {
        let info = chat_info(false);
        let body = r#"{
  "id": "chatcmpl-abc", "object": "chat.completion", "created": 1741569952,
  "model": "o3-mini-2025-01-31",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null,
      "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 7},
    "completion_tokens_details": {"reasoning_tokens": 30, "audio_tokens": 3,
      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "priority"
}"#;
        let mut m = UsageMeter::json(&info);
        m.feed(&body.as_bytes()[..100]);
        assert!(!m.saw_usage());
        m.feed(&body.as_bytes()[100..]);
        assert!(m.saw_usage());
        let u = m.finish();
        assert_eq!(
            u,
            Usage {
                model: Some("o3-mini-2025-01-31".into()),
                prompt_tokens: 1117,
                cached_tokens: 1024,
                completion_tokens: 46,
                reasoning_tokens: 30,
                audio_prompt_tokens: 7,
                audio_completion_tokens: 3,
                service_tier: ServiceTier::Priority,
                ..Usage::default()
            }
        );
    }

    #[test]
    fn chat_json_without_usage_and_truncated() {
        let info = chat_info(false);
        let body = r#"{"id":"x","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"}}]}"#;
        let u = run_whole(UsageMeter::json(&info), body);
        assert!(u.estimated);
        assert_eq!(u.completion_tokens, 2);
        let u = run_whole(UsageMeter::json(&info), &body[..60]);
        assert!(u.estimated && u.completion_tokens > 0);
        // Not JSON at all.
        let u = run_whole(UsageMeter::json(&info), "<html>bad gateway</html>");
        assert!(u.estimated);
        // Error bodies are billed nothing.
        let u = run_whole(
            UsageMeter::json(&info),
            r#"{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}"#,
        );
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (0, 0, false)
        );
    }

    #[test]
    fn legacy_completions() {
        let info = RequestInfo::parse(
            Endpoint::Completions,
            br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","stream":true}"#,
        );
        let s = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\"This\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}],\"model\":\"gpt-3.5-turbo-instruct\"}\n\n\
data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\" is a test\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"model\":\"gpt-3.5-turbo-instruct\"}\n\n\
data: [DONE]\n\n";
        let u = run_whole(UsageMeter::sse(&info), s);
        assert!(u.estimated);
        assert_eq!(u.completion_tokens, 4);
        assert_eq!(u.prompt_tokens, 5);
        let json = r#"{"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"This is a test","index":0}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (5, 7, false)
        );
    }

    #[test]
    fn oversized_sse_event_is_skipped() {
        let info = chat_info(true);
        let s = format!(
            "{}{}{}",
            chunk(&"x".repeat(5000)),
            chunk("Hello"),
            USAGE_CHUNK
        );
        let mut m = UsageMeter::sse(&info).with_max_event_bytes(2000);
        m.feed(s.as_bytes());
        assert_eq!(m.skipped_events(), 1);
        assert_eq!(m.finish().prompt_tokens, 11);
    }

    #[test]
    fn json_meter_switches_to_sse_for_streams() {
        let info = chat_info(true);
        let s = chat_stream(true);
        let u = run(UsageMeter::json(&info), &[b"\n", s.as_bytes()]);
        assert_eq!((u.prompt_tokens, u.estimated), (11, false));
    }

    proptest! {
        #[test]
        fn sse_usage_is_split_invariant(
            cuts in proptest::collection::vec(0usize..10_000, 0..16),
            with_usage in any::<bool>(),
            crlf in any::<bool>(),
        ) {
            let info = chat_info(true);
            for (info, mut s) in [
                (info.clone(), chat_stream(with_usage)),
                (responses_info(), RESPONSES_SSE.to_string()),
            ] {
                if crlf {
                    s = s.replace('\n', "\r\n");
                }
                let pieces = split(s.as_bytes(), &cuts);
                let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
                let whole = run_whole(UsageMeter::sse(&info), &s);
                let lf = run_whole(UsageMeter::sse(&info), &s.replace("\r\n", "\n"));
                prop_assert_eq!(&run(UsageMeter::sse(&info), &refs), &whole);
                prop_assert_eq!(&whole, &lf);
            }
        }

        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let info = chat_info(true);
            let _ = run_whole(UsageMeter::json(&info), &String::from_utf8_lossy(&body));
            let _ = run(UsageMeter::sse(&info).with_max_event_bytes(64), &[&body]);
        }
    }
}

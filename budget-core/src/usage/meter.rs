//! The response side: [`UsageMeter`] is fed the response bytes as they stream past.

use serde_json::{Map, Value};

use super::estimate::TextTally;
use super::sse::{SseEvent, SseReader};
use super::{Endpoint, RequestInfo, ServiceTier, Usage};

/// Default bound on one SSE event and on the buffered copy of a JSON body (4 MiB).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// Past the JSON bound, only the last bytes of the body are kept, where OpenAI puts `usage`.
const JSON_TAIL_BYTES: usize = 64 * 1024;

/// Response events that carry output text in a string `delta` (Responses API, transcription).
const TEXT_DELTA_EVENTS: &[&str] = &[
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
    "response.custom_tool_call_input.delta",
    "response.mcp_call_arguments.delta",
    "response.code_interpreter_call_code.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.audio.transcript.delta",
    "response.audio_transcript.delta",
    "transcript.text.delta",
];

/// Extracts a [`Usage`] from a response body fed to it piece by piece.
///
/// Built from the request's [`RequestInfo`] (the fields it needs are copied: the meter is
/// `Send + 'static`). Three modes:
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonKind {
    /// Only whitespace so far.
    Unknown,
    /// An object or array, being scanned for its end.
    Json,
    /// Not JSON (e.g. a `text` transcription): kept as text.
    Text,
    /// The value was complete and has been read.
    Done,
}

#[derive(Debug)]
struct JsonBody {
    kind: JsonKind,
    cap: usize,
    buf: Vec<u8>,
    overflowed: bool,
    tail: Vec<u8>,
    total: u64,
    depth: u32,
    in_str: bool,
    esc: bool,
}

impl JsonBody {
    fn new(cap: usize) -> Self {
        JsonBody {
            kind: JsonKind::Unknown,
            cap,
            buf: Vec::new(),
            overflowed: false,
            tail: Vec::new(),
            total: 0,
            depth: 0,
            in_str: false,
            esc: false,
        }
    }

    fn tail_cap(&self) -> usize {
        self.cap.clamp(1, JSON_TAIL_BYTES)
    }

    /// Keeps `bytes`: all of them while under the cap, else the last `tail_cap` bytes.
    fn store(&mut self, bytes: &[u8]) {
        self.total = self.total.saturating_add(bytes.len() as u64);
        if !self.overflowed {
            if self.buf.len() + bytes.len() <= self.cap {
                self.buf.extend_from_slice(bytes);
                return;
            }
            self.overflowed = true;
            self.tail = std::mem::take(&mut self.buf);
        }
        let cap = self.tail_cap();
        if bytes.len() >= cap {
            self.tail.clear();
            self.tail.extend_from_slice(&bytes[bytes.len() - cap..]);
        } else {
            self.tail.extend_from_slice(bytes);
            if self.tail.len() > 2 * cap {
                let cut = self.tail.len() - cap;
                self.tail.drain(..cut);
            }
        }
        if self.tail.len() > cap && self.tail.capacity() > 4 * cap {
            let cut = self.tail.len() - cap;
            self.tail.drain(..cut);
            self.tail.shrink_to(2 * cap);
        }
    }

    /// Scans for the end of the top-level value; returns the index after it.
    fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_str {
                if self.esc {
                    self.esc = false;
                } else if b == b'\\' {
                    self.esc = true;
                } else if b == b'"' {
                    self.in_str = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// The bytes kept: the whole body under the cap, else its last `tail_cap` bytes (the
    /// tail buffer may hold up to twice that, depending on how the body was split).
    fn kept(&self) -> &[u8] {
        if self.overflowed {
            &self.tail[self.tail.len().saturating_sub(self.tail_cap())..]
        } else {
            &self.buf
        }
    }

    fn release(&mut self) {
        self.buf = Vec::new();
        self.tail = Vec::new();
    }
}

/// What the response said so far.
#[derive(Debug, Default)]
struct Found {
    endpoint: Option<Endpoint>,
    usage: Option<Usage>,
    model: Option<String>,
    tier: Option<ServiceTier>,
    text: TextTally,
    images: u64,
    saw_images: bool,
    error: bool,
    malformed_events: u64,
}

impl UsageMeter {
    fn new(info: &RequestInfo, sse: bool) -> Self {
        let body = match info.endpoint {
            Endpoint::AudioSpeech | Endpoint::Other if !sse => Body::Count,
            _ if sse => Body::Sse(SseReader::new(DEFAULT_MAX_EVENT_BYTES)),
            _ => Body::Json(JsonBody::new(DEFAULT_MAX_EVENT_BYTES)),
        };
        UsageMeter {
            request: info.clone(),
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            body,
            found: Found {
                endpoint: Some(info.endpoint),
                ..Found::default()
            },
        }
    }

    /// A meter for a JSON (non-streaming) response body.
    pub fn json(info: &RequestInfo) -> Self {
        Self::new(info, false)
    }

    /// A meter for a `text/event-stream` response body.
    pub fn sse(info: &RequestInfo) -> Self {
        Self::new(info, true)
    }

    /// [`sse`](Self::sse) for `text/event-stream` (any case, parameters ignored), else
    /// [`json`](Self::json).
    pub fn for_content_type(info: &RequestInfo, content_type: Option<&str>) -> Self {
        let is_sse = content_type
            .and_then(|ct| ct.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("text/event-stream"));
        Self::new(info, is_sse)
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
                                match serde_json::from_slice::<Value>(&json.buf) {
                                    Ok(v) => found.on_json_body(&v),
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
        u.prompt_tokens = request.estimate_prompt_tokens_for(model.as_deref());
        match endpoint {
            Endpoint::Embeddings => {}
            Endpoint::Images => u.images = request.n,
            _ => u.completion_tokens = found.text.tokens(model.as_deref()),
        }
        u.estimated = true;
        u
    }
}

impl Found {
    fn set_model(&mut self, v: Option<&Value>) {
        if let Some(Value::String(m)) = v {
            if !m.is_empty() {
                self.model = Some(m.clone());
            }
        }
    }

    fn set_tier(&mut self, v: Option<&Value>) {
        let tier = match v.and_then(Value::as_str) {
            Some("default") => ServiceTier::Default,
            Some("flex") => ServiceTier::Flex,
            Some("priority") => ServiceTier::Priority,
            _ => return,
        };
        self.tier = Some(tier);
    }

    fn push_text(&mut self, v: Option<&Value>) {
        if self.usage.is_some() {
            return; // the estimate will not be needed
        }
        if let Some(Value::String(s)) = v {
            self.text.push(s);
        }
    }

    /// The raw bytes of a JSON body that could not be read, as output text (an over-estimate:
    /// JSON syntax is counted too) for the endpoints that produce text.
    fn push_raw(&mut self, endpoint: Endpoint, kept: &[u8], total: u64) {
        if matches!(
            endpoint,
            Endpoint::ChatCompletions
                | Endpoint::Completions
                | Endpoint::Responses
                | Endpoint::AudioTranscription
        ) {
            self.text.push_bytes(kept);
            self.text
                .add_uncounted(total.saturating_sub(kept.len() as u64));
        }
    }

    fn apply_usage(&mut self, u: &Map<String, Value>) {
        self.usage = Some(parse_usage(u));
        self.text = TextTally::default();
    }

    fn on_json_body(&mut self, v: &Value) {
        let Some(o) = v.as_object() else { return };
        self.set_model(o.get("model"));
        self.set_tier(o.get("service_tier"));
        if let Some(Value::Object(u)) = o.get("usage") {
            self.apply_usage(u);
        }
        if let Some(Value::Array(choices)) = o.get("choices") {
            for c in choices {
                self.push_text(c.get("text"));
                if let Some(m) = c.get("message") {
                    self.message_text(m);
                }
            }
        }
        if let Some(Value::Array(output)) = o.get("output") {
            for item in output {
                self.push_text(item.get("arguments"));
                self.push_text(item.get("input"));
                for key in ["content", "summary"] {
                    if let Some(Value::Array(parts)) = item.get(key) {
                        for p in parts {
                            self.push_text(p.get("text"));
                            self.push_text(p.get("refusal"));
                        }
                    }
                }
            }
        }
        self.push_text(o.get("text"));
        if self.endpoint == Some(Endpoint::Images) {
            if let Some(Value::Array(data)) = o.get("data") {
                self.images = data.len() as u64;
                self.saw_images = true;
            }
        }
        if o.get("error").is_some_and(|e| !e.is_null()) {
            self.error = true;
        }
    }

    fn message_text(&mut self, m: &Value) {
        self.push_text(m.get("content"));
        self.push_text(m.get("refusal"));
        if let Some(audio) = m.get("audio") {
            self.push_text(audio.get("transcript"));
        }
        if let Some(Value::Array(calls)) = m.get("tool_calls") {
            for call in calls {
                if let Some(f) = call.get("function") {
                    self.push_text(f.get("name"));
                    self.push_text(f.get("arguments"));
                }
            }
        }
        if let Some(f) = m.get("function_call") {
            self.push_text(f.get("name"));
            self.push_text(f.get("arguments"));
        }
    }

    /// A body too big to keep: read `usage`, `model` and `service_tier` from its tail.
    fn on_json_tail(&mut self, tail: &[u8]) {
        if let Some(Value::Object(u)) = last_member(tail, b"\"usage\"", Value::is_object) {
            self.apply_usage(&u);
        }
        let model = last_member(tail, b"\"model\"", Value::is_string);
        self.set_model(model.as_ref());
        let tier = last_member(tail, b"\"service_tier\"", Value::is_string);
        self.set_tier(tier.as_ref());
    }

    fn on_event(&mut self, e: SseEvent<'_>) {
        let data = e.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(data) else {
            self.malformed_events += 1;
            return;
        };
        let kind = o.get("type").and_then(Value::as_str).or(e.event);

        // Chat completions and legacy completions chunks.
        if let Some(Value::Array(choices)) = o.get("choices") {
            self.set_model(o.get("model"));
            self.set_tier(o.get("service_tier"));
            for c in choices {
                self.push_text(c.get("text"));
                if let Some(d) = c.get("delta") {
                    self.message_text(d);
                }
            }
        }
        // Responses API lifecycle events carry the response object.
        if let Some(Value::Object(r)) = o.get("response") {
            self.set_model(r.get("model"));
            self.set_tier(r.get("service_tier"));
            if let Some(Value::Object(u)) = r.get("usage") {
                self.apply_usage(u);
            }
        }
        if let Some(Value::Object(u)) = o.get("usage") {
            self.apply_usage(u);
        }
        if let Some(kind) = kind {
            if TEXT_DELTA_EVENTS.contains(&kind) {
                self.push_text(o.get("delta"));
            } else if kind == "image_generation.completed" || kind == "image_edit.completed" {
                self.images += 1;
                self.saw_images = true;
            } else if kind == "error" {
                self.error = true;
            }
        }
        if o.get("error").is_some_and(Value::is_object) {
            self.error = true;
        }
    }
}

/// A non-negative integer count, leniently (`12`, `12.0`).
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        // Saturating float-to-int conversion; only for malformed (non-integer) counts.
        (f.is_finite() && f > 0.0).then(|| f.ceil() as u64)
    })
}

/// Both usage shapes: chat (`prompt_tokens`, `completion_tokens`, `*_tokens_details`) and
/// Responses / images / transcription (`input_tokens`, `output_tokens`,
/// `input_tokens_details` or `input_token_details`), and `{"type":"duration","seconds":..}`.
fn parse_usage(u: &Map<String, Value>) -> Usage {
    let mut out = Usage::default();
    let prompt = count(u.get("prompt_tokens")).or_else(|| count(u.get("input_tokens")));
    let completion = count(u.get("completion_tokens")).or_else(|| count(u.get("output_tokens")));
    let total = count(u.get("total_tokens"));
    out.prompt_tokens = prompt.or(total).unwrap_or(0);
    out.completion_tokens = completion
        .or_else(|| Some(total?.saturating_sub(prompt?)))
        .unwrap_or(0);
    let details = |keys: &[&str]| -> Option<&Map<String, Value>> {
        keys.iter()
            .find_map(|k| u.get(*k).and_then(Value::as_object))
    };
    if let Some(d) = details(&[
        "prompt_tokens_details",
        "input_tokens_details",
        "input_token_details",
    ]) {
        out.cached_tokens = count(d.get("cached_tokens")).unwrap_or(0);
        out.audio_prompt_tokens = count(d.get("audio_tokens")).unwrap_or(0);
        out.image_prompt_tokens = count(d.get("image_tokens")).unwrap_or(0);
    }
    if let Some(d) = details(&[
        "completion_tokens_details",
        "output_tokens_details",
        "output_token_details",
    ]) {
        out.reasoning_tokens = count(d.get("reasoning_tokens")).unwrap_or(0);
        out.audio_completion_tokens = count(d.get("audio_tokens")).unwrap_or(0);
    }
    if u.get("type").and_then(Value::as_str) == Some("duration") {
        if let Some(Value::Number(n)) = u.get("seconds") {
            out.audio_millis = decimal_to_millis(&n.to_string()).unwrap_or(0);
        }
    }
    out
}

/// Milliseconds in a decimal number of seconds (`3.2`, `12`, `1e-3`), exactly, rounded up to
/// the next millisecond; negative is 0, too large saturates.
///
/// `serde_json` prints a float with the shortest text that reads back as the same value, so
/// for the durations OpenAI sends (a few decimals) this is the text that was on the wire.
pub(crate) fn decimal_to_millis(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return rest
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit())
            .then_some(0);
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits: String = int.chars().chain(frac.chars()).collect();
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    // value = digits * 10^(exp - frac.len()); millis = digits * 10^(exp - frac.len() + 3)
    let shift = exp.saturating_add(3).saturating_sub(frac.len() as i64);
    if shift >= 0 {
        if digits.len() as i64 + shift > 19 {
            return Some(u64::MAX);
        }
        let mut v: u64 = digits.parse().ok()?;
        for _ in 0..shift {
            v = v.checked_mul(10)?;
        }
        Some(v)
    } else {
        let drop = usize::try_from(-shift).unwrap_or(usize::MAX);
        if drop >= digits.len() {
            return Some(1); // a positive amount below one millisecond
        }
        let (keep, rest) = digits.split_at(digits.len() - drop);
        if keep.len() > 19 {
            return Some(u64::MAX);
        }
        let v: u64 = keep.parse().ok()?;
        let round_up = rest.bytes().any(|b| b != b'0');
        Some(v.saturating_add(u64::from(round_up)))
    }
}

/// The value of the last `"key": value` in `hay` (a fragment of a JSON document) that parses
/// and satisfies `want`.
fn last_member(hay: &[u8], key: &[u8], want: fn(&Value) -> bool) -> Option<Value> {
    let mut end = hay.len();
    while let Some(p) = hay[..end].windows(key.len()).rposition(|w| w == key) {
        end = p;
        let mut i = p + key.len();
        while hay.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if hay.get(i) != Some(&b':') {
            continue;
        }
        let mut values = serde_json::Deserializer::from_slice(&hay[i + 1..]).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            if want(&v) {
                return Some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chat_info(stream: bool) -> RequestInfo {
        let body = format!(
            r#"{{"model":"gpt-4o-mini","stream":{stream},"stream_options":{{"include_usage":true}},
            "messages":[{{"role":"user","content":"Say hello world"}}]}}"#
        );
        RequestInfo::parse(Endpoint::ChatCompletions, body.as_bytes())
    }

    fn chunk(content: &str) -> String {
        format!(
            "data: {{\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n",
            serde_json::to_string(content).unwrap()
        )
    }

    const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n";

    const AZURE_FIRST: &str = "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n";

    fn chat_stream(with_usage: bool) -> String {
        let mut s = String::new();
        s.push_str(AZURE_FIRST);
        s.push_str(": keep-alive\n\n");
        s.push_str(&chunk(""));
        s.push_str(&chunk("Hello"));
        s.push_str(&chunk(" world"));
        s.push_str("data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n");
        if with_usage {
            s.push_str(USAGE_CHUNK);
        }
        s.push_str("data: [DONE]\n\n");
        s
    }

    fn run(mut meter: UsageMeter, pieces: &[&[u8]]) -> Usage {
        for p in pieces {
            meter.feed(p);
        }
        meter.finish()
    }

    fn run_whole(meter: UsageMeter, body: &str) -> Usage {
        run(meter, &[body.as_bytes()])
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
    fn embeddings_json_and_oversized_body() {
        let info = RequestInfo::parse(
            Endpoint::Embeddings,
            br#"{"model":"text-embedding-3-small","input":"The food was delicious"}"#,
        );
        let floats: Vec<String> = (0..20_000).map(|i| format!("-0.00{i}")).collect();
        let body = format!(
            r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":[{}]}}],"model":"text-embedding-3-small","usage":{{"prompt_tokens":5,"total_tokens":5}}}}"#,
            floats.join(",")
        );
        let u = run_whole(UsageMeter::json(&info), &body);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (5, 0, false)
        );
        // A bound smaller than the body: read from the tail, memory stays bounded.
        let mut m = UsageMeter::json(&info).with_max_event_bytes(10_000);
        for c in body.as_bytes().chunks(777) {
            m.feed(c);
            if let Body::Json(j) = &m.body {
                assert!(j.buf.len() <= 10_000 && j.tail.len() <= 20_000);
            }
        }
        assert!(m.saw_usage());
        let u = m.finish();
        assert_eq!(u.prompt_tokens, 5);
        assert_eq!(u.model.as_deref(), Some("text-embedding-3-small"));
        // No usage: prompt estimated, no completion.
        let u = run_whole(UsageMeter::json(&info), r#"{"object":"list","data":[]}"#);
        assert!(u.estimated);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (4, 0));
    }

    const RESPONSES_SSE: &str = "event: response.created
data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1741290958,\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"service_tier\":\"auto\",\"usage\":null}}

event: response.in_progress
data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"usage\":null}}

event: response.output_item.added
data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}

event: response.output_text.delta
data: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}

event: response.output_text.delta
data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" world\"}

event: response.output_text.done
data: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"text\":\"Hello world\"}

event: response.completed
data: {\"type\":\"response.completed\",\"sequence_number\":6,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\",\"annotations\":[]}]}],\"service_tier\":\"flex\",\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":4},\"total_tokens\":48}}}

";

    fn responses_info() -> RequestInfo {
        RequestInfo::parse(
            Endpoint::Responses,
            br#"{"model":"gpt-4.1","input":"Say hello world","stream":true}"#,
        )
    }

    #[test]
    fn responses_sse_and_json() {
        let info = responses_info();
        let u = run_whole(UsageMeter::sse(&info), RESPONSES_SSE);
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.reasoning_tokens
            ),
            (37, 5, 11, 4)
        );
        assert_eq!(u.model.as_deref(), Some("gpt-4.1-2025-04-14"));
        assert_eq!(u.service_tier, ServiceTier::Flex);
        assert!(!u.estimated);

        for terminal in ["response.incomplete", "response.failed"] {
            let s = RESPONSES_SSE.replace("response.completed", terminal);
            let u = run_whole(UsageMeter::sse(&info), &s);
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (37, 11),
                "{terminal}"
            );
        }

        // Cut before response.completed: estimated from the deltas.
        let cut = RESPONSES_SSE
            .find("event: response.output_text.done")
            .unwrap();
        let u = run_whole(UsageMeter::sse(&info), &RESPONSES_SSE[..cut]);
        assert!(u.estimated);
        assert_eq!(u.completion_tokens, 2);
        assert_eq!(u.prompt_tokens, 3 + 3);

        let json = r#"{"id":"resp_1","object":"response","model":"gpt-4.1-2025-04-14","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (36, 87));
    }

    #[test]
    fn images() {
        let info = RequestInfo::parse(
            Endpoint::Images,
            br#"{"model":"gpt-image-1","prompt":"a cat","n":2}"#,
        );
        let json = r#"{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgo="},{"b64_json":"iVBO"}],"usage":{"total_tokens":100,"input_tokens":50,"output_tokens":50,"input_tokens_details":{"text_tokens":10,"image_tokens":40}}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!(
            (
                u.prompt_tokens,
                u.image_prompt_tokens,
                u.completion_tokens,
                u.images
            ),
            (50, 40, 50, 0)
        );
        let dalle = RequestInfo::parse(
            Endpoint::Images,
            br#"{"model":"dall-e-3","prompt":"a cat","n":1}"#,
        );
        let json = r#"{"created":1,"data":[{"url":"https://x/y.png","revised_prompt":"A cat."},{"url":"https://x/z.png"}]}"#;
        let u = run_whole(UsageMeter::json(&dalle), json);
        assert_eq!((u.images, u.prompt_tokens, u.estimated), (2, 0, false));
        assert_eq!(u.model.as_deref(), Some("dall-e-3"));
        // Cut off: the requested n, estimated.
        let u = run_whole(UsageMeter::json(&info), &json[..20]);
        assert_eq!((u.images, u.estimated), (2, true));

        let stream = "event: image_generation.partial_image\ndata: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"AAAA\",\"partial_image_index\":0}\n\n\
event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\",\"b64_json\":\"AAAA\",\"usage\":{\"total_tokens\":100,\"input_tokens\":50,\"output_tokens\":50,\"input_tokens_details\":{\"text_tokens\":50,\"image_tokens\":0}}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), stream);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (50, 50, false)
        );
    }

    #[test]
    fn transcription() {
        let info = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("multipart/form-data; boundary=b"),
            b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o-transcribe\r\n--b--\r\n",
        );
        let json = r#"{"text":"Imagine the wildest idea.","usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":45,"total_tokens":59}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!(
            (u.prompt_tokens, u.audio_prompt_tokens, u.completion_tokens),
            (14, 14, 45)
        );
        assert_eq!(u.model.as_deref(), Some("gpt-4o-transcribe"));

        let whisper = r#"{"text":"Hello.","usage":{"type":"duration","seconds":3.2}}"#;
        let u = run_whole(UsageMeter::json(&info), whisper);
        assert_eq!(
            (u.audio_millis, u.prompt_tokens, u.estimated),
            (3200, 0, false)
        );

        let sse = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"I\",\"logprobs\":[]}\n\n\
data: {\"type\":\"transcript.text.delta\",\"delta\":\" see\"}\n\n\
data: {\"type\":\"transcript.text.done\",\"text\":\"I see\",\"usage\":{\"type\":\"tokens\",\"input_tokens\":14,\"input_token_details\":{\"text_tokens\":0,\"audio_tokens\":14},\"output_tokens\":2,\"total_tokens\":16}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), sse);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (14, 2, false)
        );
        let cut = sse.find("data: {\"type\":\"transcript.text.done").unwrap();
        let u = run_whole(UsageMeter::sse(&info), &sse[..cut]);
        assert_eq!((u.completion_tokens, u.estimated), (2, true));
        // response_format=text: a plain-text body.
        let u = run_whole(UsageMeter::json(&info), "Hello world\n");
        assert_eq!((u.completion_tokens, u.estimated), (3, true)); // "\n" is a token
    }

    #[test]
    fn speech_counts_characters_without_buffering() {
        let info = RequestInfo::parse(
            Endpoint::AudioSpeech,
            r#"{"model":"tts-1","input":"Héllo there!","voice":"alloy"}"#.as_bytes(),
        );
        let mut m = UsageMeter::json(&info);
        for _ in 0..100 {
            m.feed(&[0xFF; 65536]);
        }
        assert!(matches!(m.body, Body::Count));
        let u = m.finish();
        assert_eq!((u.characters, u.prompt_tokens, u.estimated), (12, 0, false));
        assert_eq!(u.model.as_deref(), Some("tts-1"));
        let sse = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"AAAA\"}\n\ndata: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":14,\"output_tokens\":101,\"total_tokens\":115}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), sse);
        assert_eq!(
            (u.characters, u.prompt_tokens, u.completion_tokens),
            (12, 14, 101)
        );
    }

    #[test]
    fn malformed_data_line_is_ignored() {
        let info = chat_info(true);
        let s = format!(
            "{}data: {{not json\n\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\n\n{}",
            chunk("Hello"),
            USAGE_CHUNK
        );
        let mut m = UsageMeter::sse(&info);
        m.feed(s.as_bytes());
        assert_eq!(m.found.malformed_events, 2);
        let u = m.finish();
        assert_eq!((u.prompt_tokens, u.estimated), (11, false));
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

    #[test]
    fn stream_error_before_output_bills_nothing() {
        let info = chat_info(true);
        let s = "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), s);
        assert_eq!((u.prompt_tokens, u.estimated), (0, false));
    }

    #[test]
    fn millis() {
        for (s, ms) in [
            ("3.2", 3200),
            ("3", 3000),
            ("0.0005", 1),
            ("0", 0),
            ("-1.5", 0),
            ("12.3456", 12346),
            ("1e3", 1_000_000),
            ("1.5E-2", 15),
            ("7.000", 7000),
            ("99999999999999999999999", u64::MAX),
        ] {
            assert_eq!(decimal_to_millis(s), Some(ms), "{s}");
        }
        for bad in ["", ".", "abc", "1e", "1.2.3"] {
            assert_eq!(decimal_to_millis(bad), None, "{bad}");
        }
        let v: Value = serde_json::from_str("{\"type\":\"duration\",\"seconds\":8.47}").unwrap();
        assert_eq!(parse_usage(v.as_object().unwrap()).audio_millis, 8470);
    }

    fn split(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut out = Vec::new();
        let mut prev = 0;
        for c in cuts {
            out.push(body[prev..c].to_vec());
            prev = c;
        }
        out.push(body[prev..].to_vec());
        out
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
        fn json_usage_is_split_invariant(
            cuts in proptest::collection::vec(0usize..2_000, 0..16),
            bound in prop_oneof![Just(DEFAULT_MAX_EVENT_BYTES), 100usize..400],
        ) {
            let info = chat_info(false);
            let body = r#"{"id":"x","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello \"world\" {"}}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}"#;
            let pieces = split(body.as_bytes(), &cuts);
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let u = run(UsageMeter::json(&info).with_max_event_bytes(bound), &refs);
            prop_assert_eq!((u.prompt_tokens, u.completion_tokens, u.estimated), (9, 4, false));
            if bound >= body.len() {
                prop_assert_eq!(u.model.as_deref(), Some("gpt-4o-2024-08-06"));
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

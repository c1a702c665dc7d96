//! The request side: what a client asked for, read from its body.

use serde_json::{Map, Value};

use super::estimate::count_tokens;
use super::{Endpoint, ServiceTier};

/// Most text kept in [`RequestInfo::input_text`] (1 MiB); the estimate extrapolates past it.
pub const MAX_INPUT_TEXT: usize = 1024 * 1024;

/// Per-message overhead of the chat format (`<|start|>role ... <|end|>`), in tokens, as in
/// OpenAI's token-counting cookbook.
const TOKENS_PER_MESSAGE: u64 = 3;
/// Every chat reply is primed with `<|start|>assistant<|message|>`.
const TOKENS_REPLY_PRIMING: u64 = 3;

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
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            info.read_json(&map);
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

    fn read_json(&mut self, map: &Map<String, Value>) {
        self.model = map
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        self.stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
        self.include_usage = map
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.max_output_tokens = ["max_completion_tokens", "max_output_tokens", "max_tokens"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_u64));
        self.n = map.get("n").and_then(Value::as_u64).unwrap_or(1);
        self.user = ["user", "safety_identifier"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        self.service_tier = map
            .get("service_tier")
            .and_then(Value::as_str)
            .and_then(parse_tier);

        let mut text = TextSink::default();
        match self.endpoint {
            Endpoint::AudioSpeech => {
                // `characters` is billed from `input` alone.
                if let Some(input) = map.get("input") {
                    text.value(input);
                }
            }
            _ => {
                if let Some(instructions) = map.get("instructions") {
                    text.value(instructions);
                }
                if let Some(Value::Array(messages)) = map.get("messages") {
                    self.message_count = messages.len() as u64;
                    for m in messages {
                        text.message(m);
                    }
                }
                for key in ["prompt", "suffix"] {
                    if let Some(v) = map.get(key) {
                        text.value(v);
                    }
                }
                match map.get("input") {
                    Some(Value::Array(items)) if self.endpoint == Endpoint::Responses => {
                        self.message_count = items.len() as u64;
                        for item in items {
                            text.message(item);
                        }
                    }
                    Some(v) => {
                        if self.endpoint == Endpoint::Responses {
                            self.message_count = 1;
                        }
                        text.value(v);
                    }
                    None => {}
                }
                for key in ["tools", "functions"] {
                    if let Some(tools @ Value::Array(a)) = map.get(key) {
                        if !a.is_empty() {
                            text.push(&tools.to_string());
                        }
                    }
                }
            }
        }
        self.input_text = text.out;
    }

    fn read_multipart(&mut self, boundary: &str, body: &[u8]) {
        let mut text = TextSink::default();
        for part in Multipart::new(boundary, body) {
            if part.filename {
                continue;
            }
            let value = String::from_utf8_lossy(part.content);
            let value = value.trim();
            match part.name.as_str() {
                "model" if !value.is_empty() => self.model = Some(value.to_owned()),
                "stream" => self.stream = value.eq_ignore_ascii_case("true"),
                "user" => self.user = Some(value.to_owned()),
                "safety_identifier" if self.user.is_none() => {
                    self.user = Some(value.to_owned());
                }
                "n" => self.n = value.parse().unwrap_or(1),
                "service_tier" => self.service_tier = parse_tier(value),
                "prompt" | "instructions" => text.push(value),
                _ => {}
            }
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

    /// A prompt value: a string, an array of strings or token ids, or content parts.
    fn value(&mut self, v: &Value) {
        self.value_depth(v, 0);
    }

    fn value_depth(&mut self, v: &Value, depth: u32) {
        if depth > 8 {
            return;
        }
        match v {
            Value::String(s) => self.push(s),
            Value::Number(n) => self.push(&n.to_string()),
            Value::Array(items) => {
                if items.iter().all(Value::is_number) && !items.is_empty() {
                    // A token-id prompt: one "word" per token.
                    let joined: Vec<String> = items.iter().map(Value::to_string).collect();
                    self.push(&joined.join(" "));
                } else {
                    for item in items {
                        self.value_depth(item, depth + 1);
                    }
                }
            }
            Value::Object(o) => self.object(o, depth),
            _ => {}
        }
    }

    /// A content part or message-like item: its text-bearing fields.
    fn object(&mut self, o: &Map<String, Value>, depth: u32) {
        for key in ["text", "content", "input", "arguments", "output", "refusal"] {
            if let Some(v) = o.get(key) {
                self.value_depth(v, depth + 1);
            }
        }
        if let Some(Value::Array(calls)) = o.get("tool_calls") {
            for call in calls {
                if let Some(f) = call.get("function") {
                    for key in ["name", "arguments"] {
                        if let Some(Value::String(s)) = f.get(key) {
                            self.push(s);
                        }
                    }
                }
            }
        }
        if let Some(Value::String(name)) = o.get("name") {
            self.push(name);
        }
    }

    fn message(&mut self, m: &Value) {
        match m {
            Value::Object(o) => self.object(o, 0),
            other => self.value(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// multipart/form-data

/// The `boundary` parameter of a `multipart/form-data` content type.
fn multipart_boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let mime = params.next()?.trim();
    if !mime.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    for p in params {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("boundary") {
            let v = v.trim().trim_matches('"');
            if !v.is_empty() && v.len() <= 200 {
                return Some(v.to_owned());
            }
        }
    }
    None
}

fn looks_like_multipart(body: &[u8]) -> bool {
    body.starts_with(b"--")
}

/// The boundary from the first line of a body that starts with `--boundary\r\n`.
fn sniff_boundary(body: &[u8]) -> Option<String> {
    let line_end = body.iter().take(202).position(|&b| b == b'\n')?;
    let line = body[2..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&body[2..line_end]);
    if line.is_empty() || line.iter().any(|b| b.is_ascii_whitespace()) {
        return None;
    }
    std::str::from_utf8(line).ok().map(str::to_owned)
}

struct Part<'a> {
    name: String,
    filename: bool,
    content: &'a [u8],
}

/// Iterates over the parts of a multipart body. Searching is linear (KMP), so a large file
/// part costs one pass and no copy; header blocks longer than 16 KiB end the iteration.
struct Multipart<'a> {
    body: &'a [u8],
    delim: Vec<u8>,
    table: Vec<usize>,
    pos: Option<usize>,
}

impl<'a> Multipart<'a> {
    fn new(boundary: &str, body: &'a [u8]) -> Self {
        let mut delim = b"--".to_vec();
        delim.extend_from_slice(boundary.as_bytes());
        let table = kmp_table(&delim);
        let mut m = Multipart {
            body,
            delim,
            table,
            pos: None,
        };
        // The first delimiter: at the start or after a newline (a preamble is allowed).
        m.pos = m.find_delim(0).map(|p| p + m.delim.len());
        m
    }

    /// The next delimiter at or after `from` that starts a line.
    fn find_delim(&self, mut from: usize) -> Option<usize> {
        loop {
            let p = from + kmp_find(&self.body[from..], &self.delim, &self.table)?;
            if p == 0 || self.body[p - 1] == b'\n' {
                return Some(p);
            }
            from = p + 1;
        }
    }
}

impl<'a> Iterator for Multipart<'a> {
    type Item = Part<'a>;

    fn next(&mut self) -> Option<Part<'a>> {
        loop {
            let pos = self.pos.take()?;
            let rest = &self.body[pos..];
            if rest.starts_with(b"--") {
                return None; // the closing delimiter
            }
            // Skip the rest of the delimiter line.
            let nl = rest.iter().position(|&b| b == b'\n')?;
            let headers_start = pos + nl + 1;
            let head = &self.body[headers_start..];
            let limit = head.len().min(16 * 1024);
            let (headers_len, sep_len) = find_blank_line(&head[..limit])?;
            let headers = &head[..headers_len];
            let content_start = headers_start + headers_len + sep_len;
            let next = self.find_delim(content_start);
            let content_end = match next {
                Some(d) => {
                    let mut e = d;
                    if e > content_start && self.body[e - 1] == b'\n' {
                        e -= 1;
                    }
                    if e > content_start && self.body[e - 1] == b'\r' {
                        e -= 1;
                    }
                    e
                }
                None => self.body.len(),
            };
            self.pos = next.map(|d| d + self.delim.len());
            let (name, filename) = content_disposition(headers);
            if let Some(name) = name {
                return Some(Part {
                    name,
                    filename,
                    content: &self.body[content_start..content_end],
                });
            }
        }
    }
}

/// Length of the header block and of the blank-line separator after it.
fn find_blank_line(head: &[u8]) -> Option<(usize, usize)> {
    if head.starts_with(b"\r\n") {
        return Some((0, 2));
    }
    if head.starts_with(b"\n") {
        return Some((0, 1));
    }
    for i in 0..head.len() {
        if head[i..].starts_with(b"\r\n\r\n") {
            return Some((i, 4));
        }
        if head[i..].starts_with(b"\n\n") {
            return Some((i, 2));
        }
    }
    None
}

/// `name` and whether a `filename` is present, from a part's `Content-Disposition` header.
fn content_disposition(headers: &[u8]) -> (Option<String>, bool) {
    let headers = String::from_utf8_lossy(headers);
    for line in headers.lines() {
        let Some((h, v)) = line.split_once(':') else {
            continue;
        };
        if !h.trim().eq_ignore_ascii_case("content-disposition") {
            continue;
        }
        let mut name = None;
        let mut filename = false;
        for param in v.split(';').skip(1) {
            let Some((k, v)) = param.split_once('=') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().trim_matches('"');
            match k.as_str() {
                "name" => name = Some(v.to_owned()),
                "filename" | "filename*" => filename = true,
                _ => {}
            }
        }
        return (name, filename);
    }
    (None, false)
}

fn kmp_table(needle: &[u8]) -> Vec<usize> {
    let mut table = vec![0; needle.len()];
    let mut k = 0;
    for i in 1..needle.len() {
        while k > 0 && needle[i] != needle[k] {
            k = table[k - 1];
        }
        if needle[i] == needle[k] {
            k += 1;
        }
        table[i] = k;
    }
    table
}

fn kmp_find(hay: &[u8], needle: &[u8], table: &[usize]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    let mut k = 0;
    for (i, &b) in hay.iter().enumerate() {
        while k > 0 && b != needle[k] {
            k = table[k - 1];
        }
        if b == needle[k] {
            k += 1;
            if k == needle.len() {
                return Some(i + 1 - k);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// include_usage rewrite

/// For a streaming request (`"stream": true`) that does not already ask for
/// `stream_options.include_usage: true`, returns the body with it set; `None` when no rewrite
/// is needed or the body is not a JSON object.
///
/// The edit is textual, so every other byte of the body (key order, number formatting,
/// whitespace) is preserved: `"stream_options":{"include_usage":true},` is inserted after the
/// opening brace, or the existing `stream_options` value (the last one, if the key repeats) is
/// replaced by a copy with `include_usage` set; a `null` value becomes a new object. A
/// `stream_options` that is neither an object nor null is left for the upstream to reject.
pub fn rewrite_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return None;
    };
    if map.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    let replacement = match map.get("stream_options") {
        None => {
            let open = body.iter().position(|&b| b == b'{')?;
            let mut out = Vec::with_capacity(body.len() + 48);
            out.extend_from_slice(&body[..=open]);
            out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
            out.extend_from_slice(&body[open + 1..]);
            return Some(out);
        }
        Some(Value::Object(o)) => {
            if o.get("include_usage") == Some(&Value::Bool(true)) {
                return None;
            }
            let mut o = o.clone();
            o.insert("include_usage".to_owned(), Value::Bool(true));
            Value::Object(o).to_string()
        }
        Some(Value::Null) => r#"{"include_usage":true}"#.to_owned(),
        Some(_) => return None,
    };
    let (start, end) = top_level_value_span(body, "stream_options")?;
    let mut out = Vec::with_capacity(body.len() + replacement.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(replacement.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// Byte span of the value of the last top-level member named `key` in a body that is known
/// to be a valid JSON object.
fn top_level_value_span(body: &[u8], key: &str) -> Option<(usize, usize)> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut found = None;
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return found,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(body, i)?;
        let raw = &body[i..key_end];
        let name: Option<String> = if raw.contains(&b'\\') {
            serde_json::from_slice(raw).ok()
        } else {
            std::str::from_utf8(&raw[1..raw.len() - 1])
                .ok()
                .map(str::to_owned)
        };
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(body, i + 1);
        let value_end = skip_value(body, value_start)?;
        if name.as_deref() == Some(key) {
            found = Some((value_start, value_end));
        }
        i = value_end;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is an opening quote; returns the index after the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index after the JSON value that starts at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
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

    const FORM: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"file\"; filename=\"a.mp3\"\r\n\
Content-Type: audio/mpeg\r\n\r\n\
ID3\x00\x01\xff--XyZ not a delimiter\r\n--Xy\r\n\
\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"model\"\r\n\r\n\
gpt-4o-transcribe\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"stream\"\r\n\r\n\
true\r\n--XyZ\r\n\
content-disposition: form-data; name=\"user\"\r\n\r\n\
bob\r\n--XyZ\r\n\
Content-Disposition: form-data; name=\"prompt\"\r\n\r\n\
Names: Zo\xC3\xAB\r\n--XyZ--\r\n";

    #[test]
    fn multipart_transcription() {
        let info = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("multipart/form-data; boundary=XyZ"),
            FORM,
        );
        assert_eq!(info.model.as_deref(), Some("gpt-4o-transcribe"));
        assert!(info.stream);
        assert_eq!(info.user.as_deref(), Some("bob"));
        assert_eq!(info.input_text, "Names: Zoë");
        assert_eq!(info.input_bytes, FORM.len() as u64);
        // Quoted boundary, and sniffed without a content type.
        let q = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("Multipart/Form-Data; charset=utf-8; boundary=\"XyZ\""),
            FORM,
        );
        assert_eq!(q, info);
        let sniffed = RequestInfo::parse(Endpoint::AudioTranscription, FORM);
        assert_eq!(sniffed, info);
        // Truncated uploads give what was read.
        for cut in 0..FORM.len() {
            let _ = RequestInfo::parse_with_content_type(
                Endpoint::AudioTranscription,
                Some("multipart/form-data; boundary=XyZ"),
                &FORM[..cut],
            );
        }
        // JSON content type still reads JSON.
        let j = RequestInfo::parse_with_content_type(
            Endpoint::ChatCompletions,
            Some("application/json"),
            br#"{"model":"gpt-4o"}"#,
        );
        assert_eq!(j.model.as_deref(), Some("gpt-4o"));
    }

    fn include_usage_of(body: &[u8]) -> Option<bool> {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.get("stream_options")?.get("include_usage")?.as_bool()
    }

    #[test]
    fn rewrite_include_usage_cases() {
        let body = br#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
        let out = rewrite_include_usage(body).unwrap();
        assert_eq!(
            out,
            br#"{"stream_options":{"include_usage":true},"model":"gpt-4o","stream":true,"messages":[]}"#
        );

        let body = br#" { "stream" : true, "stream_options" : {"foo": 1, "include_usage": false} , "z": [1.50, "}"] } "#;
        let out = rewrite_include_usage(body).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.starts_with(r#" { "stream" : true, "stream_options" : {"#),
            "{s}"
        );
        assert!(s.ends_with(r#" , "z": [1.50, "}"] } "#), "{s}");
        assert_eq!(include_usage_of(&out), Some(true));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["foo"], 1);

        let out = rewrite_include_usage(br#"{"stream":true,"stream_options":null}"#).unwrap();
        assert_eq!(
            out,
            br#"{"stream":true,"stream_options":{"include_usage":true}}"#
        );

        // Escaped key and duplicate keys: the last one counts.
        let body =
            br#"{"stream":true,"stream\u005foptions":{"include_usage":true},"stream_options":{}}"#;
        let out = rewrite_include_usage(body).unwrap();
        assert_eq!(include_usage_of(&out), Some(true));

        for no in [
            &br#"{"stream":true,"stream_options":{"include_usage":true}}"#[..],
            br#"{"stream":false}"#,
            br#"{"model":"gpt-4o"}"#,
            br#"{"stream":"true"}"#,
            br#"{"stream":true,"stream_options":5}"#,
            b"[]",
            b"not json",
            b"",
        ] {
            assert_eq!(
                rewrite_include_usage(no),
                None,
                "{}",
                String::from_utf8_lossy(no)
            );
        }
    }

    proptest! {
        #[test]
        fn rewrite_is_valid_json_and_preserves_other_fields(
            keys in proptest::collection::btree_map("[a-z_]{1,8}", "[a-z0-9 ]{0,8}", 0..6),
            so in prop_oneof![Just(None), Just(Some("null")), Just(Some("{}")), Just(Some("{\"include_usage\":false,\"x\":[1,{}]}"))],
            ws in "[ \n]{0,2}",
        ) {
            let mut members: Vec<String> = keys
                .iter()
                .filter(|(k, _)| *k != "stream" && *k != "stream_options")
                .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}\"{v}\""))
                .collect();
            members.push(format!("\"stream\":{ws}true"));
            if let Some(so) = so {
                members.push(format!("\"stream_options\":{ws}{so}"));
            }
            let body = format!("{ws}{{{}}}{ws}", members.join(","));
            let out = rewrite_include_usage(body.as_bytes()).expect("rewrite");
            prop_assert_eq!(include_usage_of(&out), Some(true));
            let before: Value = serde_json::from_str(&body).unwrap();
            let after: Value = serde_json::from_slice(&out).unwrap();
            for (k, v) in before.as_object().unwrap() {
                if k != "stream_options" {
                    prop_assert_eq!(&after[k], v);
                }
            }
            prop_assert_eq!(rewrite_include_usage(&out), None);
        }

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

//! The bounded copy of a JSON response body and the byte scan that finds its end.

/// Past the JSON bound, only the last bytes of the body are kept, where OpenAI puts `usage`.
const JSON_TAIL_BYTES: usize = 64 * 1024;

/// What a JSON response body has turned out to be so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JsonKind {
    /// Only whitespace so far.
    Unknown,
    /// An object or array, being scanned for its end.
    Json,
    /// Not JSON (e.g. a `text` transcription): kept as text.
    Text,
    /// The value was complete and has been read.
    Done,
}

/// A JSON response body: kept whole up to `cap` bytes, else its last bytes, and scanned for
/// the end of its top-level value.
#[derive(Debug)]
pub(super) struct JsonBody {
    pub(super) kind: JsonKind,
    pub(super) cap: usize,
    pub(super) buf: Vec<u8>,
    pub(super) overflowed: bool,
    pub(super) tail: Vec<u8>,
    pub(super) total: u64,
    depth: u32,
    in_str: bool,
    esc: bool,
}

impl JsonBody {
    pub(super) fn new(cap: usize) -> Self {
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
    pub(super) fn store(&mut self, bytes: &[u8]) {
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
    pub(super) fn scan(&mut self, bytes: &[u8]) -> Option<usize> {
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
    pub(super) fn kept(&self) -> &[u8] {
        if self.overflowed {
            &self.tail[self.tail.len().saturating_sub(self.tail_cap())..]
        } else {
            &self.buf
        }
    }

    pub(super) fn release(&mut self) {
        self.buf = Vec::new();
        self.tail = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use proptest::prelude::*;

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

    proptest! {
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
    }
}

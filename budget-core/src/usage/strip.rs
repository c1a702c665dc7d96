//! Removing the usage-only chunk from a chat / completions event stream.
//!
//! When the proxy itself added `stream_options.include_usage` to a request (see
//! [`rewrite_include_usage`](super::rewrite_include_usage)), the client did not ask for the
//! final usage chunk and may not expect a chunk with `"choices": []`. [`UsageChunkStripper`]
//! forwards the upstream bytes unchanged except for that chunk, and for the `"usage":null`
//! member OpenAI adds to every other chunk once usage is requested, so the client receives
//! what it would have received had the proxy not asked.

use serde_json::Value;

/// A partial event held back longer than this is forwarded: it is not a usage chunk in any
/// realistic stream (those are well under 1 KiB).
pub const MAX_HELD_BYTES: usize = 16 * 1024;

/// Forwards an SSE byte stream, dropping the usage-only chat completions chunks and the
/// `,"usage":null` members of the others.
///
/// An event (the bytes up to and including the blank line that ends it) is removed when all of
/// its lines are `data:` lines whose joined data is a JSON object with `"choices": []` and a
/// non-null `usage`. Everything else passes byte for byte: other events, comments, `[DONE]`,
/// Azure's first chunk (empty `choices` but no `usage`), line endings as sent — except that
/// the exact bytes `,"usage":null` are removed wherever they occur (they cannot occur inside a
/// JSON string, where `"` is escaped, so only the member itself matches).
///
/// Bytes are not delayed: complete events are forwarded at once, and the event in progress is
/// held back only while it could still be the usage chunk. It is released as soon as its first
/// bytes are not `data:`, its JSON does not start with `{`, a top-level `"choices"` array turns
/// out non-empty, a top-level `"usage"` is `null`, the object closes without both
/// `"choices": []` and a `"usage"`, or it has grown past [`MAX_HELD_BYTES`]. The
/// decisions depend only on the bytes, never on how they were split, so the output is the same
/// for any chunking of the input.
#[derive(Debug, Default)]
pub struct UsageChunkStripper {
    /// Bytes of the event in progress that were not forwarded yet.
    held: Vec<u8>,
    /// The event in progress was released: forward its bytes until it ends.
    passing: bool,
    /// Bytes in the current line so far.
    line_len: usize,
    /// Lines completed in the event in progress.
    lines: usize,
    /// The previous byte was a `\r` line end inside an event.
    prev_cr: bool,
    /// The previous event ended with a `\r` blank line: a `\n` right after belongs to it,
    /// dropped (`Some(true)`) or forwarded (`Some(false)`) like it.
    cr_tail: Option<bool>,
    scan: Scan,
    stripped: u64,
    /// Removes `,"usage":null` from what the event logic forwards.
    null_usage: NullUsageFilter,
    /// Scratch buffer between the two stages.
    scratch: Vec<u8>,
}

/// The member OpenAI adds to every chunk of a stream that asked for usage.
const NULL_USAGE: &[u8] = b",\"usage\":null";

/// A streaming filter that deletes every occurrence of [`NULL_USAGE`], holding back at most
/// its length minus one byte, and only while they could begin it.
#[derive(Debug, Default)]
struct NullUsageFilter {
    matched: usize,
}

impl NullUsageFilter {
    fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for &b in bytes {
            if b == NULL_USAGE[self.matched] {
                self.matched += 1;
                if self.matched == NULL_USAGE.len() {
                    self.matched = 0;
                }
                continue;
            }
            // `,` occurs once in the pattern, so a mismatch can only restart at this byte.
            out.extend_from_slice(&NULL_USAGE[..self.matched]);
            self.matched = usize::from(b == NULL_USAGE[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&NULL_USAGE[..self.matched]);
        self.matched = 0;
    }
}

impl UsageChunkStripper {
    /// A stripper at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many usage chunks were removed.
    pub fn stripped_events(&self) -> u64 {
        self.stripped
    }

    /// Feeds the next piece of the upstream stream; appends what may be forwarded now to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut raw = std::mem::take(&mut self.scratch);
        for &b in bytes {
            self.byte(b, &mut raw);
        }
        self.null_usage.push(&raw, out);
        raw.clear();
        self.scratch = raw;
    }

    /// Ends the stream: appends whatever is still held (an unfinished event is forwarded).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let held = std::mem::take(&mut self.held);
        self.null_usage.push(&held, out);
        self.null_usage.finish(out);
        *self = Self {
            stripped: self.stripped,
            ..Self::default()
        };
    }

    fn emit(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.passing {
            out.push(b);
        } else {
            self.held.push(b);
        }
    }

    fn release(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.passing = true;
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if let Some(dropped) = self.cr_tail.take() {
            if b == b'\n' {
                if !dropped {
                    out.push(b);
                }
                return;
            }
        }
        if std::mem::take(&mut self.prev_cr) && b == b'\n' {
            // Second half of a `\r\n` that ended a non-blank line.
            self.emit(b, out);
            return;
        }
        self.emit(b, out);
        if b == b'\n' || b == b'\r' {
            if self.line_len == 0 {
                // A blank line: the event ends here.
                let dropped = self.end_event(out);
                if b == b'\r' {
                    self.cr_tail = Some(dropped);
                }
                return;
            }
            self.line_len = 0;
            self.lines += 1;
            self.prev_cr = b == b'\r';
            return;
        }
        let pos = self.line_len;
        self.line_len += 1;
        if self.passing {
            return;
        }
        if self.lines == 0 {
            // First line: must read `data:`, then an optional space, then the JSON.
            const PREFIX: &[u8] = b"data:";
            if pos < PREFIX.len() {
                if b != PREFIX[pos] {
                    self.release(out);
                    return;
                }
            } else if !(pos == PREFIX.len() && b == b' ') {
                self.scan.byte(b);
                if self.scan.not_usage {
                    self.release(out);
                    return;
                }
            }
        }
        if self.held.len() > MAX_HELD_BYTES {
            self.release(out);
        }
    }

    /// The blank line of an event was just emitted; returns whether the event was dropped.
    fn end_event(&mut self, out: &mut Vec<u8>) -> bool {
        let drop = !self.passing && !self.scan.not_usage && is_usage_only_event(&self.held);
        if drop {
            self.held.clear();
            self.stripped += 1;
        } else {
            out.append(&mut self.held);
        }
        self.passing = false;
        self.line_len = 0;
        self.lines = 0;
        self.scan = Scan::default();
        if self.held.capacity() > 4 * MAX_HELD_BYTES {
            self.held = Vec::new();
        }
        drop
    }
}

/// An event (with its terminating blank line) whose lines are all `data:` lines joining to a
/// JSON object with `"choices": []` and a non-null `usage`.
fn is_usage_only_event(event: &[u8]) -> bool {
    let mut data = Vec::with_capacity(event.len());
    let mut lines = 0;
    for line in event.split(|&b| b == b'\n' || b == b'\r') {
        if line.is_empty() {
            continue; // the `\n` of a `\r\n`, and the blank line
        }
        let Some(value) = line.strip_prefix(b"data:") else {
            return false;
        };
        if lines > 0 {
            data.push(b'\n');
        }
        data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        lines += 1;
    }
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&data) else {
        return false;
    };
    matches!(o.get("choices"), Some(Value::Array(c)) if c.is_empty())
        && o.get("usage").is_some_and(|u| !u.is_null())
}

/// Incremental look at the JSON of the first data line, to release an event early once it
/// cannot be the usage chunk: not an object, a non-empty top-level `choices`, a `null`
/// top-level `usage`, or an object that closed without both `"choices": []` and `"usage"`.
#[derive(Debug, Default)]
struct Scan {
    state: ScanState,
    depth: u32,
    in_str: bool,
    esc: bool,
    /// The current top-level string, while it could still be `choices` or `usage`.
    key: Vec<u8>,
    key_escaped: bool,
    /// A top-level `"usage"` with a value other than `null` was seen.
    saw_usage: bool,
    /// A top-level `"choices": []` was seen.
    saw_empty_choices: bool,
    not_usage: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ScanState {
    #[default]
    Start,
    Body,
    /// A top-level `"choices"` / `"usage"` string ended: a `:` makes it a key.
    AfterKey(Key),
    /// After the `:` of such a key.
    AfterColon(Key),
    /// After `"choices": [`.
    InChoices,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Choices,
    Usage,
}

impl Scan {
    fn byte(&mut self, b: u8) {
        if self.not_usage {
            return;
        }
        let ws = matches!(b, b' ' | b'\t');
        match self.state {
            ScanState::Start => {
                if ws {
                } else if b == b'{' {
                    self.depth = 1;
                    self.state = ScanState::Body;
                } else {
                    self.not_usage = true;
                }
            }
            ScanState::AfterKey(k) => {
                if ws {
                } else if b == b':' {
                    self.state = ScanState::AfterColon(k);
                } else {
                    self.state = ScanState::Body;
                    self.body(b);
                }
            }
            ScanState::AfterColon(k) => {
                if ws {
                    return;
                }
                match (k, b) {
                    (Key::Choices, b'[') => {
                        self.depth += 1;
                        self.state = ScanState::InChoices;
                    }
                    (Key::Usage, b'n') => self.not_usage = true,
                    (Key::Usage, _) => {
                        self.saw_usage = true;
                        self.state = ScanState::Body;
                        self.body(b);
                    }
                    _ => {
                        self.state = ScanState::Body;
                        self.body(b);
                    }
                }
            }
            ScanState::InChoices => {
                if ws {
                } else if b == b']' {
                    self.depth -= 1;
                    self.saw_empty_choices = true;
                    self.state = ScanState::Body;
                } else {
                    self.not_usage = true;
                }
            }
            ScanState::Body => self.body(b),
        }
    }

    fn body(&mut self, b: u8) {
        if self.in_str {
            if self.esc {
                self.esc = false;
            } else if b == b'\\' {
                self.esc = true;
                self.key_escaped = true;
            } else if b == b'"' {
                self.in_str = false;
                if self.depth == 1 && !self.key_escaped {
                    let key = match self.key.as_slice() {
                        b"choices" => Some(Key::Choices),
                        b"usage" => Some(Key::Usage),
                        _ => None,
                    };
                    if let Some(k) = key {
                        self.state = ScanState::AfterKey(k);
                    }
                }
            } else if self.key.len() < 8 {
                self.key.push(b);
            } else {
                self.key_escaped = true; // too long to be a key we look for
            }
            return;
        }
        match b {
            b'"' => {
                self.in_str = true;
                self.key.clear();
                self.key_escaped = false;
            }
            b'{' | b'[' => self.depth += 1,
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                if self.depth == 0 && !(self.saw_usage && self.saw_empty_choices) {
                    // The object is complete without both: not the usage chunk.
                    self.not_usage = true;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CONTENT: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}],\"usage\":null}\n\n";
    const USAGE: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n";
    const AZURE_FIRST: &str = "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n";
    const DONE: &str = "data: [DONE]\n\n";

    fn strip_whole(input: &[u8]) -> Vec<u8> {
        let mut s = UsageChunkStripper::new();
        let mut out = Vec::new();
        s.push(input, &mut out);
        s.finish(&mut out);
        out
    }

    fn stream(parts: &[&str]) -> String {
        parts.concat()
    }

    /// What a client that never asked for usage receives.
    fn unasked(s: &str) -> String {
        s.replace(",\"usage\":null", "")
    }

    #[test]
    fn removes_only_the_usage_chunk() {
        let input = stream(&[
            AZURE_FIRST,
            ": keep-alive\n\n",
            CONTENT,
            CONTENT,
            USAGE,
            DONE,
        ]);
        let expected = unasked(&stream(&[
            AZURE_FIRST,
            ": keep-alive\n\n",
            CONTENT,
            CONTENT,
            DONE,
        ]));
        assert!(!expected.contains("usage"));
        let mut s = UsageChunkStripper::new();
        let mut out = Vec::new();
        s.push(input.as_bytes(), &mut out);
        s.finish(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        assert_eq!(s.stripped_events(), 1);
    }

    #[test]
    fn crlf_and_cr_streams() {
        for nl in ["\r\n", "\r"] {
            let input = stream(&[CONTENT, USAGE, DONE]).replace('\n', nl);
            let expected = unasked(&stream(&[CONTENT, DONE])).replace('\n', nl);
            assert_eq!(strip_whole(input.as_bytes()), expected.as_bytes());
        }
    }

    #[test]
    fn lookalikes_pass_through() {
        for keep in [
            // usage null, choices empty
            "data: {\"choices\":[],\"usage\":null}\n\n",
            // usage but non-empty choices
            "data: {\"choices\":[{\"index\":0}],\"usage\":{\"prompt_tokens\":1}}\n\n",
            // usage nested deeper
            "data: {\"choices\":[],\"x\":{\"usage\":{}}}\n\n",
            // an event name line
            "event: usage\ndata: {\"choices\":[],\"usage\":{}}\n\n",
            // a string that mentions the keys
            "data: {\"choices\":[{\"delta\":{\"content\":\"\\\"choices\\\":[],\\\"usage\\\":{}\"}}]}\n\n",
            "data: not json\n\n",
            ": comment\n\n",
            "\n\n\n",
        ] {
            assert_eq!(strip_whole(keep.as_bytes()), unasked(keep).as_bytes(), "{keep}");
        }
        // Multi-line data and no space after the colon are still recognised.
        let multi = "data:{\"choices\":[],\ndata: \"usage\":{\"total_tokens\":1}}\n\n";
        assert_eq!(strip_whole(multi.as_bytes()), b"");
    }

    #[test]
    fn does_not_delay_content_chunks() {
        let mut s = UsageChunkStripper::new();
        let mut out = Vec::new();
        // A partial content chunk is forwarded as soon as `choices` is seen to be non-empty.
        let cut = CONTENT.find("\"index\"").unwrap();
        s.push(&CONTENT.as_bytes()[..cut], &mut out);
        assert_eq!(out, &CONTENT.as_bytes()[..cut]);
        s.push(&CONTENT.as_bytes()[cut..], &mut out);
        assert_eq!(out, unasked(CONTENT).as_bytes());
        // Only a possible start of `,"usage":null` is ever held back.
        out.clear();
        let text = CONTENT.replace("\"Hel\"", "\"a,b\"");
        let comma = text.find(",\"usage").unwrap();
        s.push(&text.as_bytes()[..comma + 4], &mut out);
        assert_eq!(out, &text.as_bytes()[..comma]);
        s.push(&text.as_bytes()[comma + 4..], &mut out);
        assert_eq!(out, unasked(&text).as_bytes());
        // A comment is forwarded at its first byte.
        out.clear();
        s.push(b":", &mut out);
        assert_eq!(out, b":");
        s.push(b" ping\n\n", &mut out);
        // [DONE] is released at its first JSON byte.
        out.clear();
        s.push(b"data: [", &mut out);
        assert_eq!(out, b"data: [");
        // Azure's first chunk is released when its object closes, before the blank line.
        let mut s = UsageChunkStripper::new();
        out.clear();
        let line_end = AZURE_FIRST.find('\n').unwrap();
        s.push(&AZURE_FIRST.as_bytes()[..line_end], &mut out);
        assert_eq!(out, &AZURE_FIRST.as_bytes()[..line_end]);
        // A partial usage chunk is held.
        let mut s = UsageChunkStripper::new();
        out.clear();
        s.push(&USAGE.as_bytes()[..USAGE.len() - 2], &mut out);
        assert!(out.is_empty());
        s.push(&USAGE.as_bytes()[USAGE.len() - 2..], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn held_bytes_are_bounded() {
        let mut s = UsageChunkStripper::new();
        let mut out = Vec::new();
        let big = format!(
            "data: {{\"choices\":[],\"pad\":\"{}\"",
            "x".repeat(3 * MAX_HELD_BYTES)
        );
        for b in big.as_bytes() {
            s.push(std::slice::from_ref(b), &mut out);
            assert!(s.held.len() <= MAX_HELD_BYTES + 1);
        }
        let end = b",\"usage\":{}}\n\n";
        s.push(end, &mut out);
        s.finish(&mut out);
        assert_eq!(out.len(), big.len() + end.len());
        // The null-usage filter holds at most the pattern's length.
        let mut s = UsageChunkStripper::new();
        let mut out = Vec::new();
        s.push(b": x\n\n,\"usage\":nul", &mut out);
        assert_eq!(out, b": x\n\n");
        s.finish(&mut out);
        assert_eq!(out, b": x\n\n,\"usage\":nul");
    }

    proptest! {
        #[test]
        fn output_is_split_invariant(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(CONTENT), Just(USAGE), Just(AZURE_FIRST), Just(DONE),
                    Just(": keep-alive\n\n"), Just("\n"), Just("data: {\"choices\":[],\"usage\":null}\n\n"),
                    Just("event: x\ndata: y\n\n"), Just("data: {\"choices\":[],\n"),
                ],
                0..10,
            ),
            nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            cuts in proptest::collection::vec(0usize..3000, 0..12),
        ) {
            let input = parts.concat().replace('\n', nl);
            let whole = strip_whole(input.as_bytes());
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
            cuts.sort_unstable();
            let mut s = UsageChunkStripper::new();
            let mut out = Vec::new();
            let mut prev = 0;
            for c in cuts {
                s.push(&input.as_bytes()[prev..c], &mut out);
                prev = c;
            }
            s.push(&input.as_bytes()[prev..], &mut out);
            s.finish(&mut out);
            prop_assert_eq!(&out, &whole);
            // Without usage chunks (and with complete events), the stream is unchanged but for
            // the `"usage":null` members.
            if !parts.contains(&USAGE) && !parts.contains(&"data: {\"choices\":[],\n") {
                prop_assert_eq!(whole, unasked(&input).into_bytes());
            }
        }

        #[test]
        fn arbitrary_bytes_split_invariant(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'{'), Just(b'"'), any::<u8>()], 0..200),
            cut in 0usize..200,
        ) {
            let whole = strip_whole(&input);
            let cut = cut.min(input.len());
            let mut s = UsageChunkStripper::new();
            let mut out = Vec::new();
            s.push(&input[..cut], &mut out);
            s.push(&input[cut..], &mut out);
            s.finish(&mut out);
            prop_assert_eq!(out, whole);
        }
    }
}

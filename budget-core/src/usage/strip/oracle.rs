//! The byte-at-a-time stripper that [`UsageChunkStripper`](super::UsageChunkStripper)
//! replaced, kept as the reference its property tests compare with.

use serde_json::Value;

/// A partial event held back longer than this is forwarded: it is not a usage chunk in any
/// realistic stream (those are well under 1 KiB).
use super::MAX_HELD_BYTES;

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
pub(super) struct OldStripper {
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

impl OldStripper {
    /// A stripper at the start of a stream.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// How many usage chunks were removed.
    pub(super) fn stripped_events(&self) -> u64 {
        self.stripped
    }

    /// Feeds the next piece of the upstream stream; appends what may be forwarded now to `out`.
    pub(super) fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let mut raw = std::mem::take(&mut self.scratch);
        for &b in bytes {
            self.byte(b, &mut raw);
        }
        self.null_usage.push(&raw, out);
        raw.clear();
        self.scratch = raw;
    }

    /// Ends the stream: appends whatever is still held (an unfinished event is forwarded).
    pub(super) fn finish(&mut self, out: &mut Vec<u8>) {
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

//! Removing the usage-only chunk from a chat / completions event stream.
//!
//! When the proxy itself added `stream_options.include_usage` to a request (see
//! [`rewrite_include_usage`](super::rewrite_include_usage)), the client did not ask for the
//! final usage chunk and may not expect a chunk with `"choices": []`. [`UsageChunkStripper`]
//! forwards the upstream bytes unchanged except for that chunk, and for the `"usage":null`
//! member OpenAI adds to every other chunk once usage is requested, so the client receives
//! what it would have received had the proxy not asked.
//!
//! It reads the stream with the same [`SseReader`] as the [`UsageMeter`](super::UsageMeter):
//! the reader finds the lines and events once, the stripper follows its boundaries to decide
//! which bytes to forward, and the meter's own reading of each event decides whether it is the
//! usage chunk ([`UsageMeter::with_usage_chunk_stripping`](super::UsageMeter::with_usage_chunk_stripping)).
//! A piece with nothing to remove or hold back is forwarded as it is ([`Forward::Piece`]).

mod scan;

#[cfg(test)]
mod oracle;

use std::ops::Range;

use serde_json::Value;

use super::sse::{Dispatched, RawSink, SseReader};
use scan::Scan;

/// A partial event held back longer than this is forwarded: it is not a usage chunk in any
/// realistic stream (those are well under 1 KiB).
pub const MAX_HELD_BYTES: usize = 16 * 1024;

/// What to forward to the client of a piece of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forward {
    /// These bytes of the piece, as they are (an empty range: nothing now).
    Piece(Range<usize>),
    /// These bytes instead: held-back bytes released, or a usage chunk or a `,"usage":null`
    /// removed.
    Bytes(Vec<u8>),
}

impl Forward {
    /// The bytes to forward, given the piece that was fed.
    pub fn bytes<'a>(&'a self, piece: &'a [u8]) -> &'a [u8] {
        match self {
            Forward::Piece(r) => &piece[r.clone()],
            Forward::Bytes(b) => b,
        }
    }
}

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
///
/// A [`UsageMeter`](super::UsageMeter) can strip as it meters
/// ([`with_usage_chunk_stripping`](super::UsageMeter::with_usage_chunk_stripping)), reading
/// each event once for both; this type is the stripper on its own.
#[derive(Debug)]
pub struct UsageChunkStripper {
    reader: SseReader,
    state: StripState,
}

impl Default for UsageChunkStripper {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageChunkStripper {
    /// A stripper at the start of a stream.
    pub fn new() -> Self {
        UsageChunkStripper {
            // Only an event the stripper still holds needs its data: at most this much.
            reader: SseReader::new(MAX_HELD_BYTES + 64),
            state: StripState::default(),
        }
    }

    /// How many usage chunks were removed.
    pub fn stripped_events(&self) -> u64 {
        self.state.core.stripped
    }

    /// Feeds the next piece of the upstream stream; appends what may be forwarded now to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let forward = self.push_forward(bytes);
        out.extend_from_slice(forward.bytes(bytes));
    }

    /// Feeds the next piece of the upstream stream; says what of it may be forwarded now.
    pub fn push_forward(&mut self, bytes: &[u8]) -> Forward {
        let candidate = std::cell::Cell::new(self.state.core.could_strip());
        self.state.feed(bytes, |sink| {
            self.reader.feed_raw(
                bytes,
                // Only the event the stripper still holds is read, as before: as a `Value`.
                |e| candidate.get() && is_usage_only_data(e.data),
                &mut Candidate {
                    sink,
                    candidate: &candidate,
                },
            )
        })
    }

    /// Ends the stream: appends whatever is still held (an unfinished event is forwarded).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.reader.finish(|_| {});
        out.extend_from_slice(&self.state.finish());
    }
}

/// Tells the standalone stripper's event callback whether the event being dispatched is one
/// the stripper still holds (only those need reading).
struct Candidate<'s, 'p, 'c> {
    sink: &'s mut Sink<'p>,
    candidate: &'c std::cell::Cell<bool>,
}

impl RawSink for Candidate<'_, '_, '_> {
    fn content(&mut self, piece: Range<usize>) {
        self.sink.content(piece);
        self.candidate.set(self.sink.core.could_strip());
    }

    fn terminator(&mut self, piece: Range<usize>, dispatched: Option<Dispatched>) {
        self.sink.terminator(piece, dispatched);
        self.candidate.set(self.sink.core.could_strip());
    }

    fn lf_after_cr(&mut self, piece: Range<usize>) {
        self.sink.lf_after_cr(piece);
        self.candidate.set(self.sink.core.could_strip());
    }
}

/// The stripper's state between pieces: which bytes of the event in progress are held, and
/// the `,"usage":null` filter.
#[derive(Debug, Default)]
pub(crate) struct StripState {
    core: StripCore,
    null_usage: NullUsageFilter,
}

impl StripState {
    /// Feeds `piece` through `read`, which drives the [`Sink`] it is given with the piece's
    /// raw structure (an [`SseReader::feed_raw`]); says what to forward.
    pub(crate) fn feed(&mut self, piece: &[u8], read: impl FnOnce(&mut Sink<'_>)) -> Forward {
        let mut sink = Sink {
            piece,
            core: &mut self.core,
            held_here: None,
            out: Output {
                piece,
                range: None,
                bytes: None,
                null_usage: &mut self.null_usage,
            },
        };
        read(&mut sink);
        if let Some(r) = sink.held_here.take() {
            // Still held at the end of the piece: kept for the next one.
            sink.core.held.extend_from_slice(&piece[r]);
        }
        sink.out.finish()
    }

    /// Ends the stream: what is still held, to forward last.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let held = std::mem::take(&mut self.core.held);
        self.null_usage.push(&held, &mut out);
        self.null_usage.finish(&mut out);
        self.core = StripCore {
            stripped: self.core.stripped,
            ..StripCore::default()
        };
        out
    }

    /// Usage chunks removed so far.
    pub(crate) fn stripped(&self) -> u64 {
        self.core.stripped
    }
}

/// What the event in progress is, as far as the stripper has seen it.
#[derive(Debug, Default)]
struct StripCore {
    /// Bytes of the event in progress that were not forwarded yet.
    held: Vec<u8>,
    /// The event in progress was released: forward its bytes until it ends.
    passing: bool,
    /// Bytes in the current line so far.
    line_len: usize,
    /// Lines completed in the event in progress.
    lines: usize,
    /// A line of the event in progress does not start with `data:`.
    not_data: bool,
    /// The last terminator was a lone `\r` at the end of a piece: a `\n` opening the next
    /// piece belongs to it.
    pending_cr: Option<PendingCr>,
    scan: Scan,
    stripped: u64,
}

#[derive(Debug, Clone, Copy)]
enum PendingCr {
    /// It ended a line inside the event: the `\n` goes with the event.
    Line,
    /// It was the blank line that ended an event: the `\n` is dropped or forwarded like it.
    Event { dropped: bool },
}

const PREFIX: &[u8] = b"data:";

impl StripCore {
    /// The event in progress could still be removed.
    fn could_strip(&self) -> bool {
        !self.passing && !self.scan.not_usage && !self.not_data
    }
}

/// The stripper following one piece: the [`RawSink`] an [`SseReader`] drives.
pub(crate) struct Sink<'p> {
    piece: &'p [u8],
    core: &'p mut StripCore,
    /// The bytes of this piece held for the event in progress (after those of earlier pieces
    /// in `core.held`): a range, so that releasing them within the piece copies nothing.
    held_here: Option<Range<usize>>,
    out: Output<'p>,
}

impl Sink<'_> {
    /// Hold `r`, which follows what is held already.
    fn hold(&mut self, r: Range<usize>) {
        match &mut self.held_here {
            Some(h) => h.end = r.end,
            None => self.held_here = Some(r),
        }
    }

    fn held_len(&self) -> usize {
        self.core.held.len() + self.held_here.as_ref().map_or(0, |r| r.len())
    }

    /// Forward what is held.
    fn forward_held(&mut self) {
        self.out.owned(&self.core.held);
        self.core.held.clear();
        if let Some(r) = self.held_here.take() {
            self.out.input(r);
        }
    }

    fn release(&mut self) {
        self.forward_held();
        self.core.passing = true;
    }
}

impl RawSink for Sink<'_> {
    fn content(&mut self, piece: Range<usize>) {
        self.core.pending_cr = None;
        let mut i = piece.start;
        while i < piece.end {
            if self.core.passing {
                self.out.input(i..piece.end);
                self.core.line_len += piece.end - i;
                return;
            }
            let b = self.piece[i];
            self.hold(i..i + 1);
            i += 1;
            let pos = self.core.line_len;
            self.core.line_len += 1;
            if self.core.lines == 0 {
                // First line: must read `data:`, then an optional space, then the JSON.
                if pos < PREFIX.len() {
                    if b != PREFIX[pos] {
                        self.release();
                        continue;
                    }
                } else if !(pos == PREFIX.len() && b == b' ') {
                    self.core.scan.byte(b);
                    if self.core.scan.not_usage {
                        self.release();
                        continue;
                    }
                }
            } else if pos < PREFIX.len() && b != PREFIX[pos] {
                self.core.not_data = true;
            }
            if self.held_len() > MAX_HELD_BYTES {
                self.release();
            }
        }
    }

    fn terminator(&mut self, piece: Range<usize>, dispatched: Option<Dispatched>) {
        let lone_cr = piece.len() == 1 && self.piece[piece.start] == b'\r';
        if self.core.passing {
            self.out.input(piece);
        } else {
            self.hold(piece);
        }
        let core = &mut *self.core;
        if core.line_len > 0 {
            if core.line_len < PREFIX.len() {
                core.not_data = true;
            }
            core.line_len = 0;
            core.lines += 1;
            core.pending_cr = lone_cr.then_some(PendingCr::Line);
            return;
        }
        // A blank line: the event ends here.
        let drop = core.could_strip() && dispatched.is_some_and(|d| d.flag && !d.lossy);
        if drop {
            core.held.clear();
            core.stripped += 1;
            self.held_here = None;
        } else {
            self.forward_held();
        }
        let core = &mut *self.core;
        core.passing = false;
        core.lines = 0;
        core.not_data = false;
        core.scan = Scan::default();
        if core.held.capacity() > 4 * MAX_HELD_BYTES {
            core.held = Vec::new();
        }
        core.pending_cr = lone_cr.then_some(PendingCr::Event { dropped: drop });
    }

    fn lf_after_cr(&mut self, piece: Range<usize>) {
        match self.core.pending_cr.take() {
            Some(PendingCr::Event { dropped: true }) => {}
            Some(PendingCr::Line) if !self.core.passing => self.hold(piece),
            _ => self.out.input(piece),
        }
    }
}

/// What one piece forwards: a range of it while that is all, else a copy, both through the
/// `,"usage":null` filter.
struct Output<'p> {
    piece: &'p [u8],
    /// Forwarded so far, unfiltered, while it is one range of the piece.
    range: Option<Range<usize>>,
    /// Forwarded so far, filtered, once it is not.
    bytes: Option<Vec<u8>>,
    null_usage: &'p mut NullUsageFilter,
}

impl Output<'_> {
    fn input(&mut self, r: Range<usize>) {
        if r.is_empty() {
            return;
        }
        if self.bytes.is_none() {
            match &mut self.range {
                None => {
                    self.range = Some(r);
                    return;
                }
                Some(cur) if cur.end == r.start => {
                    cur.end = r.end;
                    return;
                }
                Some(_) => self.materialize(),
            }
        }
        if let Some(v) = &mut self.bytes {
            self.null_usage.push(&self.piece[r], v);
        }
    }

    fn owned(&mut self, b: &[u8]) {
        if b.is_empty() {
            return;
        }
        self.materialize();
        if let Some(v) = &mut self.bytes {
            self.null_usage.push(b, v);
        }
    }

    /// Switches from a range of the piece to a filtered copy.
    fn materialize(&mut self) {
        if self.bytes.is_none() {
            let mut v = Vec::with_capacity(self.piece.len());
            if let Some(r) = self.range.take() {
                self.null_usage.push(&self.piece[r], &mut v);
            }
            self.bytes = Some(v);
        }
    }

    fn finish(mut self) -> Forward {
        if let Some(v) = self.bytes.take() {
            return Forward::Bytes(v);
        }
        match self.range.take() {
            None => Forward::Piece(0..0),
            Some(r) if self.null_usage.passes(&self.piece[r.clone()]) => Forward::Piece(r),
            Some(r) => {
                let mut v = Vec::with_capacity(r.len());
                self.null_usage.push(&self.piece[r], &mut v);
                Forward::Bytes(v)
            }
        }
    }
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
    fn push(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        loop {
            if self.matched == 0 {
                // Copy up to the next `,` (where a match can start) in one go.
                let run = bytes
                    .iter()
                    .position(|&c| c == NULL_USAGE[0])
                    .unwrap_or(bytes.len());
                out.extend_from_slice(&bytes[..run]);
                bytes = &bytes[run..];
            }
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            bytes = rest;
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

    /// `push(bytes)` would append `bytes` unchanged and hold nothing back.
    fn passes(&self, bytes: &[u8]) -> bool {
        self.matched == 0
            && !bytes.iter().enumerate().any(|(i, &b)| {
                b == NULL_USAGE[0]
                    && NULL_USAGE.starts_with(&bytes[i..bytes.len().min(i + NULL_USAGE.len())])
            })
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&NULL_USAGE[..self.matched]);
        self.matched = 0;
    }
}

/// The joined data of an event is a JSON object with `"choices": []` and a non-null `usage`.
pub(crate) fn is_usage_only_data(data: &str) -> bool {
    let Ok(Value::Object(o)) = serde_json::from_str::<Value>(data) else {
        return false;
    };
    matches!(o.get("choices"), Some(Value::Array(c)) if c.is_empty())
        && o.get("usage").is_some_and(|u| !u.is_null())
}

#[cfg(test)]
mod tests;

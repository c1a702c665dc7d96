//! A push parser for `text/event-stream` (server-sent events), per the WHATWG rules.
//!
//! [`SseReader`] is fed the response bytes in whatever pieces the network delivers and calls
//! back once per complete event. Any split of the stream gives the same events: inside a
//! `\r\n` pair, inside a multi-byte UTF-8 character, inside the byte-order mark.
//!
//! Memory is bounded: the reader holds at most one event (its `event:` name, its `data:` lines
//! and the current line), and an event growing past `max_event_bytes` is dropped as it streams
//! (counted by [`SseReader::skipped_events`]); the parser then resynchronises at the next blank
//! line.

use std::ops::Range;

/// One dispatched server-sent event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` field, when present and non-empty (the WHATWG default type is `message`).
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n` (without the final newline); invalid UTF-8 is
    /// replaced with U+FFFD.
    pub data: &'a str,
}

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The raw structure of the stream as [`SseReader::feed_raw`] splits it, for a consumer that
/// forwards the bytes themselves (the usage-chunk stripper): ranges are offsets in the piece
/// being fed. Every byte of a piece is in exactly one call, in order.
pub(crate) trait RawSink {
    /// Bytes of the current line (a leading byte-order mark is line content here).
    fn content(&mut self, piece: Range<usize>);
    /// A line terminator (`\n`, `\r\n` or `\r`), with what the event callback returned if
    /// this line was the blank line that dispatched an event.
    fn terminator(&mut self, piece: Range<usize>, dispatched: Option<Dispatched>);
    /// The `\n` of a `\r\n` pair whose `\r` ended the previous piece.
    fn lf_after_cr(&mut self, piece: Range<usize>);
}

/// An event dispatched at a blank line, as a [`RawSink`] learns of it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatched {
    /// What the event callback returned.
    pub(crate) flag: bool,
    /// Its data was not valid UTF-8 (the callback saw it with replacement characters).
    pub(crate) lossy: bool,
}

/// A [`RawSink`] that wants nothing.
struct NoSink;

impl RawSink for NoSink {
    fn content(&mut self, _: Range<usize>) {}
    fn terminator(&mut self, _: Range<usize>, _: Option<Dispatched>) {}
    fn lf_after_cr(&mut self, _: Range<usize>) {}
}

/// Incremental, bounded server-sent-events parser.
///
/// Deviation from the WHATWG algorithm, on purpose: [`SseReader::finish`] dispatches a trailing
/// event that was not terminated by a blank line (an upstream that closes right after its last
/// `data:` line still delivered that data). `id:` and `retry:` fields are ignored.
#[derive(Debug, Clone)]
pub struct SseReader {
    max_event_bytes: usize,
    /// Bytes of the current line (without its terminator).
    line: Vec<u8>,
    /// The data buffer: each `data:` value followed by `\n`, as received (decoded, lossily, at
    /// dispatch: `\n` never splits a UTF-8 sequence, so this equals decoding line by line).
    data: Vec<u8>,
    /// The event-type buffer, as received.
    event: Vec<u8>,
    /// The current event outgrew the bound: drop bytes until the next blank line.
    skipping: bool,
    /// While skipping: the current line has at least one byte.
    skip_line_nonempty: bool,
    /// The previous chunk ended with `\r`: a leading `\n` in the next one belongs to it.
    after_cr: bool,
    /// How many bytes of the leading byte-order mark matched so far; `None` once decided.
    bom_matched: Option<usize>,
    skipped: u64,
}

impl SseReader {
    /// A reader that holds at most about `max_event_bytes` of one event.
    pub fn new(max_event_bytes: usize) -> Self {
        SseReader {
            max_event_bytes: max_event_bytes.max(1),
            line: Vec::new(),
            data: Vec::new(),
            event: Vec::new(),
            skipping: false,
            skip_line_nonempty: false,
            after_cr: false,
            bom_matched: Some(0),
            skipped: 0,
        }
    }

    /// How many events were dropped because they outgrew `max_event_bytes`.
    pub fn skipped_events(&self) -> u64 {
        self.skipped
    }

    /// Bytes currently buffered for the event in progress (never more than
    /// `max_event_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.line.len() + self.data.len() + self.event.len()
    }

    /// Feeds the next piece of the stream; calls `on_event` for each event it completes.
    pub fn feed(&mut self, bytes: &[u8], mut on_event: impl FnMut(SseEvent<'_>)) {
        self.feed_raw(
            bytes,
            |e| {
                on_event(e);
                false
            },
            &mut NoSink,
        );
    }

    /// [`feed`](Self::feed), telling `sink` where each line's content and terminator are in
    /// `bytes`; what `on_event` returns for an event reaches the sink with the terminator of
    /// the blank line that dispatched it.
    pub(crate) fn feed_raw(
        &mut self,
        mut bytes: &[u8],
        mut on_event: impl FnMut(SseEvent<'_>) -> bool,
        sink: &mut impl RawSink,
    ) {
        let mut base = 0;
        while let Some(k) = self.bom_matched {
            let Some(&b) = bytes.first() else { return };
            if b == BOM[k] {
                sink.content(base..base + 1);
                bytes = &bytes[1..];
                base += 1;
                self.bom_matched = if k + 1 == BOM.len() {
                    None
                } else {
                    Some(k + 1)
                };
            } else {
                // Not a BOM after all: the matched prefix is ordinary content (the sink has
                // had those bytes already).
                self.bom_matched = None;
                self.process(&BOM[..k], 0, &mut on_event, &mut NoSink);
            }
        }
        self.process(bytes, base, &mut on_event, sink);
    }

    /// Ends the stream: dispatches the event in progress, if it has data, even without the
    /// terminating blank line. The reader is then reset and could parse a new stream.
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent<'_>)) {
        let mut on_event = |e: SseEvent<'_>| {
            on_event(e);
            false
        };
        if let Some(k) = self.bom_matched.take() {
            self.process(&BOM[..k], 0, &mut on_event, &mut NoSink);
        }
        let pending_line = if self.skipping {
            self.skip_line_nonempty
        } else {
            !self.line.is_empty()
        };
        if pending_line {
            self.end_line(&mut on_event);
        }
        if self.skipping {
            self.skipping = false;
        } else {
            self.dispatch(&mut on_event);
        }
        self.line = Vec::new();
        self.data = Vec::new();
        self.event = Vec::new();
        self.skip_line_nonempty = false;
        self.after_cr = false;
        self.bom_matched = Some(0);
    }

    /// `bytes` start at offset `base` of the piece the sink's ranges refer to.
    fn process(
        &mut self,
        bytes: &[u8],
        base: usize,
        on_event: &mut impl FnMut(SseEvent<'_>) -> bool,
        sink: &mut impl RawSink,
    ) {
        let mut i = 0;
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                sink.lf_after_cr(base..base + 1);
                i = 1;
            }
        }
        while i < bytes.len() {
            let rest = &bytes[i..];
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    sink.content(base + i..base + bytes.len());
                    self.append(rest);
                    return;
                }
                Some(j) => {
                    if j > 0 {
                        sink.content(base + i..base + i + j);
                    }
                    self.append(&rest[..j]);
                    let dispatched = self.end_line(on_event);
                    let len = if rest[j] == b'\r' {
                        match rest.get(j + 1) {
                            Some(b'\n') => 2,
                            Some(_) => 1,
                            None => {
                                self.after_cr = true;
                                1
                            }
                        }
                    } else {
                        1
                    };
                    sink.terminator(base + i + j..base + i + j + len, dispatched);
                    i += j + len;
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if self.skipping {
            self.skip_line_nonempty = true;
            return;
        }
        let total = self.buffered_bytes() + bytes.len() + 1;
        if total > self.max_event_bytes {
            self.skipped += 1;
            self.skipping = true;
            self.skip_line_nonempty = true;
            self.line.clear();
            self.data.clear();
            self.event.clear();
            // Give back memory a huge event may have made us reserve.
            if self.line.capacity() > 64 * 1024 {
                self.line.shrink_to(1024);
            }
            if self.data.capacity() > 64 * 1024 {
                self.data.shrink_to(1024);
            }
            return;
        }
        self.line.extend_from_slice(bytes);
    }

    fn end_line(&mut self, on_event: &mut impl FnMut(SseEvent<'_>) -> bool) -> Option<Dispatched> {
        if self.skipping {
            if !self.skip_line_nonempty {
                // The blank line that ends the dropped event.
                self.skipping = false;
            }
            self.skip_line_nonempty = false;
            return None;
        }
        if self.line.is_empty() {
            return self.dispatch(on_event);
        }
        let line = std::mem::take(&mut self.line);
        if line[0] != b':' {
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(c) => {
                    let v = &line[c + 1..];
                    (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (&line[..], &b""[..]),
            };
            match name {
                b"data" => {
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                }
                b"event" => {
                    self.event.clear();
                    self.event.extend_from_slice(value);
                }
                _ => {}
            }
        }
        self.line = line;
        self.line.clear();
        None
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>) -> bool) -> Option<Dispatched> {
        if self.data.is_empty() {
            self.event.clear();
            return None;
        }
        self.data.pop();
        let data = String::from_utf8_lossy(&self.data);
        let event = String::from_utf8_lossy(&self.event);
        let lossy = matches!(data, std::borrow::Cow::Owned(_));
        let flag = on_event(SseEvent {
            event: (!event.is_empty()).then_some(&*event),
            data: &data,
        });
        self.data.clear();
        self.event.clear();
        Some(Dispatched { flag, lossy })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Owned = (Option<String>, String);

    fn collect(reader: &mut SseReader, chunks: &[&[u8]]) -> Vec<Owned> {
        let mut out = Vec::new();
        for c in chunks {
            reader.feed(c, |e| {
                out.push((e.event.map(str::to_owned), e.data.to_owned()))
            });
        }
        reader.finish(|e| out.push((e.event.map(str::to_owned), e.data.to_owned())));
        out
    }

    fn whole(stream: &[u8]) -> Vec<Owned> {
        collect(&mut SseReader::new(1 << 20), &[stream])
    }

    fn ev(event: Option<&str>, data: &str) -> Owned {
        (event.map(str::to_owned), data.to_owned())
    }

    const CHAT: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo ✓\"},\"finish_reason\":null}]}\n\n",
        "data: [DONE]\n\n",
    );

    const RESPONSES: &str = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"sequence_number\":0}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
    );

    #[test]
    fn basic_events_comments_and_event_names() {
        let events = whole(CHAT.as_bytes());
        assert_eq!(events.len(), 3);
        assert!(events[1].1.contains("Héllo ✓"));
        assert_eq!(events[2], ev(None, "[DONE]"));

        let events = whole(RESPONSES.as_bytes());
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].0.as_deref(), Some("response.created"));
        assert_eq!(events[1].0.as_deref(), Some("response.output_text.delta"));
    }

    #[test]
    fn multi_line_data_space_and_fields() {
        let s = b"data:a\ndata: b\ndata:  c\ndata\nid: 7\nretry: 10\nfoo\n\n";
        assert_eq!(whole(s), vec![ev(None, "a\nb\n c\n")]);
        // An event with a name but no data is not dispatched, and its name does not leak.
        let s = b"event: ping\n\ndata: x\n\n";
        assert_eq!(whole(s), vec![ev(None, "x")]);
        // `data:` with an empty value is an event with empty data.
        assert_eq!(whole(b"data:\n\n"), vec![ev(None, "")]);
        // Later `event:` wins.
        assert_eq!(
            whole(b"event: a\nevent: b\ndata: 1\n\n"),
            vec![ev(Some("b"), "1")]
        );
    }

    #[test]
    fn line_endings_cr_crlf_lf() {
        let lf = whole(b"data: 1\n\ndata: 2\n\n");
        assert_eq!(lf, whole(b"data: 1\r\n\r\ndata: 2\r\n\r\n"));
        assert_eq!(lf, whole(b"data: 1\r\rdata: 2\r\r"));
        assert_eq!(lf, whole(b"data: 1\r\n\rdata: 2\n\r\n"));
        // `\r` then `\n` split across feeds is one line end, not two.
        let mut r = SseReader::new(1024);
        let got = collect(&mut r, &[b"data: 1\r", b"\ndata: 2\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![ev(None, "1\n2")]);
    }

    #[test]
    fn bom_is_stripped_once_even_when_split() {
        let mut s = BOM.to_vec();
        s.extend_from_slice(b"data: x\n\n");
        assert_eq!(whole(&s), vec![ev(None, "x")]);
        let mut r = SseReader::new(1024);
        assert_eq!(
            collect(&mut r, &[&s[..1], &s[1..2], &s[2..5], &s[5..]]),
            vec![ev(None, "x")]
        );
        // A second BOM is content (it makes the field name unknown).
        let mut s2 = BOM.to_vec();
        s2.extend_from_slice(&s);
        assert_eq!(whole(&s2), vec![]);
        // A partial BOM followed by other bytes is kept as content.
        assert_eq!(whole(b"\xEFdata: x\n\n"), vec![]);
        assert_eq!(whole(b"\xEF"), vec![]);
    }

    #[test]
    fn finish_flushes_trailing_event() {
        assert_eq!(
            whole(b"data: a\n\ndata: b"),
            vec![ev(None, "a"), ev(None, "b")]
        );
        assert_eq!(
            whole(b"data: a\n\ndata: b\n"),
            vec![ev(None, "a"), ev(None, "b")]
        );
        assert_eq!(whole(b"data: a\n\n: comment"), vec![ev(None, "a")]);
    }

    #[test]
    fn oversized_event_is_skipped_and_parser_continues() {
        let big = "x".repeat(10_000);
        let stream = format!("data: small\n\ndata: {big}\ndata: more\n\ndata: after\n\n");
        let mut r = SseReader::new(1000);
        let got = collect(&mut r, &[stream.as_bytes()]);
        assert_eq!(got, vec![ev(None, "small"), ev(None, "after")]);
        assert_eq!(r.skipped_events(), 1);

        // Byte by byte: same result, and the buffer never exceeds the bound.
        let mut r = SseReader::new(1000);
        let mut got = Vec::new();
        for b in stream.as_bytes() {
            r.feed(std::slice::from_ref(b), |e| got.push(e.data.to_owned()));
            assert!(r.buffered_bytes() <= 1000);
        }
        r.finish(|e| got.push(e.data.to_owned()));
        assert_eq!(got, vec!["small", "after"]);
        assert_eq!(r.skipped_events(), 1);
    }

    #[test]
    fn a_huge_line_without_terminator_stays_bounded() {
        let mut r = SseReader::new(4096);
        let chunk = vec![b'a'; 65536];
        for _ in 0..64 {
            r.feed(&chunk, |_| panic!("no event"));
            assert!(r.buffered_bytes() <= 4096);
        }
        let mut got = Vec::new();
        r.feed(b"\n\ndata: ok\n\n", |e| got.push(e.data.to_owned()));
        assert_eq!(got, vec!["ok"]);
        assert_eq!(r.skipped_events(), 1);
    }

    #[test]
    fn invalid_utf8_does_not_break_the_bound() {
        // Found by fuzzing: U+FFFD takes 3 bytes for each invalid byte.
        let mut r = SseReader::new(64);
        let mut stream = b"data: ".to_vec();
        stream.extend_from_slice(&[0xFF; 50]);
        stream.extend_from_slice(b"\ndata: ");
        stream.extend_from_slice(&[0xC1; 5]);
        let mut got = Vec::new();
        r.feed(&stream, |e| got.push(e.data.chars().count()));
        assert!(r.buffered_bytes() <= 64);
        r.finish(|e| got.push(e.data.chars().count()));
        assert_eq!(got, vec![56]);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let got = whole(b"data: a\xFFb\n\n");
        assert_eq!(got, vec![ev(None, "a\u{FFFD}b")]);
    }

    fn split_at_all(stream: &[u8], cuts: &[usize]) -> Vec<Owned> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut prev = 0;
        for c in cuts {
            pieces.push(&stream[prev..c]);
            prev = c;
        }
        pieces.push(&stream[prev..]);
        collect(&mut SseReader::new(1 << 20), &pieces)
    }

    fn to_crlf(s: &str) -> String {
        s.replace('\n', "\r\n")
    }

    fn to_cr(s: &str) -> String {
        s.replace('\n', "\r")
    }

    proptest! {
        #[test]
        fn split_invariance_on_fixtures(cuts in proptest::collection::vec(0usize..10_000, 0..12)) {
            for s in [CHAT.to_string(), RESPONSES.to_string(), to_crlf(CHAT), to_cr(RESPONSES)] {
                prop_assert_eq!(split_at_all(s.as_bytes(), &cuts), whole(s.as_bytes()));
            }
        }

        #[test]
        fn split_invariance_on_arbitrary_bytes(
            stream in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'),
                    Just(0xEF), Just(0xBB), Just(0xBF), any::<u8>()
                ],
                0..200,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..8),
            max in 1usize..64,
        ) {
            let mut pieces = Vec::new();
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut prev = 0;
            for c in cuts {
                pieces.push(&stream[prev..c]);
                prev = c;
            }
            pieces.push(&stream[prev..]);
            let mut a = SseReader::new(max);
            let split = collect(&mut a, &pieces);
            let mut b = SseReader::new(max);
            let whole = collect(&mut b, &[&stream]);
            prop_assert_eq!(split, whole);
            prop_assert_eq!(a.skipped_events(), b.skipped_events());
        }

        #[test]
        fn crlf_and_cr_equal_lf(
            lines in proptest::collection::vec("(data|event|id|: c|data:)( ?[a-z0-9{}\":é]{0,12})?", 0..20),
        ) {
            let lf: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let lf = format!("{lf}\n");
            prop_assert_eq!(whole(to_crlf(&lf).as_bytes()), whole(lf.as_bytes()));
            prop_assert_eq!(whole(to_cr(&lf).as_bytes()), whole(lf.as_bytes()));
        }
    }
}

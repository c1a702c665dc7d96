//! The stripper's examples and property tests (against the old byte-at-a-time stripper too).

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
        assert!(s.state.core.held.len() <= MAX_HELD_BYTES + 1);
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

/// Feeds `input` cut at `cuts` to the old byte-at-a-time stripper, this one and a
/// stripping meter; all three must forward the same bytes, piece by piece.
fn same_as_the_old_stripper(input: &[u8], cuts: &[usize]) -> Result<(), TestCaseError> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    cuts.sort_unstable();
    cuts.push(input.len());
    let mut old = oracle::OldStripper::new();
    let mut new = UsageChunkStripper::new();
    let info = crate::usage::RequestInfo::parse(
        crate::usage::Endpoint::ChatCompletions,
        br#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#,
    );
    let mut meter = crate::usage::UsageMeter::sse(&info).with_usage_chunk_stripping();
    let mut prev = 0;
    for c in cuts {
        let piece = &input[prev..c];
        prev = c;
        let mut want = Vec::new();
        old.push(piece, &mut want);
        let mut got = Vec::new();
        new.push(piece, &mut got);
        prop_assert_eq!(&got, &want, "stripper, piece {:?}", piece);
        let forward = meter.feed_forward(piece);
        prop_assert_eq!(forward.bytes(piece), &want[..], "meter, piece {:?}", piece);
        if let Forward::Piece(r) = &forward {
            prop_assert!(r.is_empty() || want == piece[r.clone()]);
        }
    }
    let mut want = Vec::new();
    old.finish(&mut want);
    let mut got = Vec::new();
    new.finish(&mut got);
    prop_assert_eq!(&got, &want);
    prop_assert_eq!(meter.end_forward(), want);
    prop_assert_eq!(new.stripped_events(), old.stripped_events());
    prop_assert_eq!(meter.stripped_events(), old.stripped_events());
    Ok(())
}

#[test]
fn a_piece_with_nothing_to_remove_is_forwarded_as_it_is() {
    let piece = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n: ping\n\n";
    let mut s = UsageChunkStripper::new();
    assert_eq!(
        s.push_forward(piece.as_bytes()),
        Forward::Piece(0..piece.len())
    );
    // A usage chunk at the end: the rest is a range of the piece, still no copy.
    let with_usage = format!("{piece}{USAGE}");
    assert_eq!(
        s.push_forward(with_usage.as_bytes()),
        Forward::Piece(0..piece.len())
    );
    assert_eq!(s.stripped_events(), 1);
    // `,"usage":null` inside: a copy without it.
    assert_eq!(
        s.push_forward(CONTENT.as_bytes()),
        Forward::Bytes(unasked(CONTENT).into_bytes())
    );
}

proptest! {
    #[test]
    fn same_as_the_old_stripper_on_event_streams(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(CONTENT), Just(USAGE), Just(AZURE_FIRST), Just(DONE),
                Just(": keep-alive\n\n"), Just("\n"), Just("data: {\"choices\":[],\"usage\":null}\n\n"),
                Just("event: x\ndata: y\n\n"), Just("data: {\"choices\":[],\n"),
                Just("data: {\"choices\":[],\ndata: \"usage\":{}}\n\n"),
                Just("data:{\"usage\":{},\"choices\":[]}\n\n"),
                Just("dat\n\n"), Just("\u{feff}"), Just("data: {\"choices\":[], \"usage\": 0}\n\n"),
            ],
            0..10,
        ),
        nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
        cuts in proptest::collection::vec(0usize..3000, 0..12),
    ) {
        let input = parts.concat().replace('\n', nl);
        same_as_the_old_stripper(input.as_bytes(), &cuts)?;
    }

    #[test]
    fn same_as_the_old_stripper_on_arbitrary_bytes(
        input in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'{'), Just(b'"'), Just(b','), any::<u8>()], 0..300),
        cuts in proptest::collection::vec(0usize..300, 0..6),
    ) {
        same_as_the_old_stripper(&input, &cuts)?;
    }

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

//! Arbitrary bytes, split at an arbitrary point, into `SseReader` and `UsageMeter::sse`:
//! never panics, stays bounded, and the split gives the same events as the whole input.
#![no_main]

use budget_core::usage::{Endpoint, RequestInfo, SseReader, UsageMeter};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 256;

fn events(pieces: &[&[u8]]) -> (Vec<(Option<String>, String)>, u64) {
    let mut reader = SseReader::new(MAX);
    let mut out = Vec::new();
    for p in pieces {
        reader.feed(p, |e| {
            out.push((e.event.map(str::to_owned), e.data.to_owned()))
        });
        assert!(reader.buffered_bytes() <= MAX, "buffer outgrew the bound");
    }
    reader.finish(|e| out.push((e.event.map(str::to_owned), e.data.to_owned())));
    (out, reader.skipped_events())
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let cut = if data.is_empty() {
        0
    } else {
        usize::from(first) * 257 % (data.len() + 1)
    };
    let (a, b) = data.split_at(cut);
    assert_eq!(events(&[a, b]), events(&[data]));

    let info = RequestInfo::parse(
        Endpoint::ChatCompletions,
        br#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let mut split = UsageMeter::sse(&info).with_max_event_bytes(MAX);
    split.feed(a);
    split.feed(b);
    let mut whole = UsageMeter::sse(&info).with_max_event_bytes(MAX);
    whole.feed(data);
    assert_eq!(split.finish(), whole.finish());
});

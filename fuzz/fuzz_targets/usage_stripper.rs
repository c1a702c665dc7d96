//! Arbitrary bytes through `UsageChunkStripper`, split at an arbitrary point: the output is
//! the same as for the whole input, and the stripper only ever removes bytes.
#![no_main]

use budget_core::usage::UsageChunkStripper;
use libfuzzer_sys::fuzz_target;

fn strip(pieces: &[&[u8]]) -> Vec<u8> {
    let mut s = UsageChunkStripper::new();
    let mut out = Vec::new();
    for p in pieces {
        s.push(p, &mut out);
    }
    s.finish(&mut out);
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, data)) = input.split_first() else {
        return;
    };
    let cut = usize::from(first) * 131 % (data.len() + 1);
    let (a, b) = data.split_at(cut);
    let whole = strip(&[data]);
    assert_eq!(strip(&[a, b]), whole);
    assert!(whole.len() <= data.len());
});

//! Token estimates with `tiktoken-rs`, for responses that ended without a usage block.
//!
//! - Encoding: `o200k_base` for the gpt-4o family, gpt-4.1, gpt-4.5, gpt-5, the o-series,
//!   gpt-image, the realtime/audio/transcribe models and anything unknown or newer;
//!   `cl100k_base` for gpt-3.5, gpt-4 (not 4o/4.1/4.5), the `text-embedding-*` models and the
//!   legacy completion models. Both are process-wide singletons loaded on first use.
//! - Cost bound: BPE merging is quadratic in the length of one pre-tokenized piece, and the
//!   pre-tokenizer regex backtracks on long whitespace runs, so text is counted in segments cut
//!   at word boundaries (at most [`SEGMENT_BYTES`] bytes), and runs of the same kind (all
//!   whitespace or all non-whitespace) longer than [`RUN_BYTES`] are cut. For ordinary text
//!   the cuts fall before a space, where the tokenizer splits anyway, so the count is the
//!   same as counting the whole text; for pathological text (a 1 MiB word) the count changes
//!   by at most a token per cut.
//! - Delivered text ([`TextTally`]) is kept up to a cap; past it only its byte length is
//!   counted and the token count is extrapolated linearly by bytes.

use tiktoken_rs::CoreBPE;

/// Largest segment handed to the tokenizer at once.
const SEGMENT_BYTES: usize = 2048;
/// Longest run of whitespace or of non-whitespace handed to the tokenizer unbroken.
const RUN_BYTES: usize = 128;

/// True when `model` uses `cl100k_base` (the older families); false means `o200k_base`.
fn uses_cl100k(model: &str) -> bool {
    let m = model.to_ascii_lowercase();
    // Fine-tunes: `ft:gpt-3.5-turbo-0125:org::id`.
    let m = m.strip_prefix("ft:").unwrap_or(&m);
    let newer = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-4-1", "gpt-4-5"];
    if newer.iter().any(|p| m.starts_with(p)) {
        return false;
    }
    let older = [
        "gpt-3.5",
        "gpt-35",
        "gpt-4",
        "text-embedding",
        "text-davinci",
        "davinci",
        "babbage",
        "curie",
        "ada",
        "code-",
    ];
    older.iter().any(|p| m.starts_with(p))
}

/// Text longer than this (in bytes) is worth tokenizing off the async worker threads: a
/// tokenizer pass over it takes a millisecond or more. [`UsageMeter::finish_is_costly`] and
/// [`RequestInfo::prompt_estimate_is_costly`] compare against it.
///
/// [`UsageMeter::finish_is_costly`]: super::UsageMeter::finish_is_costly
/// [`RequestInfo::prompt_estimate_is_costly`]: super::RequestInfo::prompt_estimate_is_costly
pub const COSTLY_TOKENIZE_BYTES: usize = 16 * 1024;

/// The tokenizer a model is counted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Cl100k,
    O200k,
}

impl Encoding {
    pub(crate) fn of(model: Option<&str>) -> Encoding {
        match model {
            Some(m) if uses_cl100k(m) => Encoding::Cl100k,
            _ => Encoding::O200k,
        }
    }
}

fn bpe_for(model: Option<&str>) -> &'static CoreBPE {
    match model {
        Some(m) if uses_cl100k(m) => tiktoken_rs::cl100k_base_singleton(),
        _ => tiktoken_rs::o200k_base_singleton(),
    }
}

/// Tokens in `text` for `model` (see the module docs for the encoding choice and the cuts).
pub(crate) fn count_tokens(model: Option<&str>, text: &str) -> u64 {
    if text.is_empty() {
        return 0;
    }
    let bpe = bpe_for(model);
    segments(text)
        .map(|s| bpe.encode_ordinary(s).len() as u64)
        .sum()
}

/// Splits `text` into segments for the tokenizer: a cut before a whitespace character once a
/// segment reaches [`SEGMENT_BYTES`], and a cut inside any same-kind run at [`RUN_BYTES`].
fn segments(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = rest.len();
        let mut run_start = 0;
        let mut run_ws: Option<bool> = None;
        for (i, c) in rest.char_indices() {
            let ws = c.is_whitespace();
            if run_ws != Some(ws) {
                if ws && i >= SEGMENT_BYTES {
                    cut = i;
                    break;
                }
                run_ws = Some(ws);
                run_start = i;
            } else if i - run_start >= RUN_BYTES {
                cut = i;
                break;
            }
        }
        let (seg, tail) = rest.split_at(cut);
        rest = tail;
        Some(seg)
    })
}

/// Output text seen so far, kept up to a cap, for the completion-token estimate.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextTally {
    kept: String,
    total_bytes: u64,
}

impl TextTally {
    /// Text beyond this many bytes is counted by length only.
    pub(crate) const CAP: usize = 256 * 1024;

    pub(crate) fn push(&mut self, text: &str) {
        self.total_bytes = self.total_bytes.saturating_add(text.len() as u64);
        let room = Self::CAP - self.kept.len();
        if room == 0 {
            return;
        }
        if text.len() <= room {
            self.kept.push_str(text);
        } else {
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            self.kept.push_str(&text[..end]);
        }
    }

    /// Lossy UTF-8 bytes (non-JSON bodies).
    pub(crate) fn push_bytes(&mut self, bytes: &[u8]) {
        self.push(&String::from_utf8_lossy(bytes));
    }

    /// Counts `bytes` more text that was not kept.
    pub(crate) fn add_uncounted(&mut self, bytes: u64) {
        self.total_bytes = self.total_bytes.saturating_add(bytes);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.total_bytes == 0
    }

    /// Bytes [`tokens`](Self::tokens) would hand to the tokenizer.
    pub(crate) fn kept_len(&self) -> usize {
        self.kept.len()
    }

    /// Estimated tokens: exact for the kept text, extrapolated by bytes past the cap.
    pub(crate) fn tokens(&self, model: Option<&str>) -> u64 {
        let kept = count_tokens(model, &self.kept);
        let kept_bytes = self.kept.len() as u64;
        if self.total_bytes <= kept_bytes || kept_bytes == 0 {
            // Nothing kept (only possible with `add_uncounted`): about 4 bytes per token.
            return if kept_bytes == 0 {
                self.total_bytes.div_ceil(4)
            } else {
                kept
            };
        }
        let scaled = u128::from(kept) * u128::from(self.total_bytes);
        u64::try_from(scaled.div_ceil(u128::from(kept_bytes))).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoding_choice() {
        for m in [
            "gpt-3.5-turbo",
            "gpt-4",
            "gpt-4-turbo",
            "gpt-35-turbo",
            "text-embedding-3-small",
        ] {
            assert!(uses_cl100k(m), "{m}");
        }
        for m in [
            "gpt-4o",
            "gpt-4o-mini",
            "gpt-4.1",
            "gpt-5",
            "o3-mini",
            "o1",
            "gpt-image-1",
            "x",
        ] {
            assert!(!uses_cl100k(m), "{m}");
        }
        assert!(uses_cl100k("ft:gpt-3.5-turbo-0125:acme::x"));
    }

    #[test]
    fn counts_plausibly() {
        assert_eq!(count_tokens(Some("gpt-4o"), ""), 0);
        assert_eq!(count_tokens(Some("gpt-4o"), "Hello world"), 2);
        assert_eq!(count_tokens(Some("gpt-3.5-turbo"), "Hello world"), 2);
        assert_eq!(count_tokens(None, "Hello world"), 2);
    }

    #[test]
    fn segmented_count_matches_whole_for_ordinary_text() {
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(500);
        let bpe = tiktoken_rs::o200k_base_singleton();
        let whole = bpe.encode_ordinary(&text).len() as u64;
        assert!(segments(&text).count() > 5);
        assert_eq!(count_tokens(Some("gpt-4o"), &text), whole);
    }

    #[test]
    fn pathological_text_is_fast_and_bounded() {
        let start = std::time::Instant::now();
        let a = "a".repeat(1 << 18);
        let n = count_tokens(Some("gpt-4o"), &a);
        assert!(n > 1000, "{n}");
        let ws = " ".repeat(1 << 18);
        assert!(count_tokens(Some("gpt-4o"), &ws) > 1000);
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn tally_caps_and_extrapolates() {
        let mut t = TextTally::default();
        assert!(t.is_empty());
        let word = "hello ";
        let reps = TextTally::CAP / word.len() * 2;
        for _ in 0..reps {
            t.push(word);
        }
        assert_eq!(t.kept.len(), TextTally::CAP);
        let est = t.tokens(Some("gpt-4o"));
        let exact = reps as u64; // "hello" and " hello" are one token each
        assert!(
            est >= exact && est <= exact + exact / 50,
            "{est} vs {exact}"
        );
        // Multi-byte characters never split.
        let mut t = TextTally::default();
        t.push(&"é".repeat(TextTally::CAP));
        assert!(t.kept.len() <= TextTally::CAP);
    }

    proptest! {
        #[test]
        fn segments_cover_text(s in "\\PC{0,600}") {
            let joined: String = segments(&s).collect();
            prop_assert_eq!(joined, s);
        }
    }
}

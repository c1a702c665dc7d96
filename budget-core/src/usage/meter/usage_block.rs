//! The `usage` object of a response, in all its shapes.

use serde_json::{Map, Value};

use super::super::Usage;

/// A non-negative integer count, leniently (`12`, `12.0`).
fn count(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.as_u64().or_else(|| {
        let f = v.as_f64()?;
        // Saturating float-to-int conversion; only for malformed (non-integer) counts.
        (f.is_finite() && f > 0.0).then(|| f.ceil() as u64)
    })
}

/// Both usage shapes: chat (`prompt_tokens`, `completion_tokens`, `*_tokens_details`) and
/// Responses / images / transcription (`input_tokens`, `output_tokens`,
/// `input_tokens_details` or `input_token_details`), and `{"type":"duration","seconds":..}`.
pub(super) fn parse_usage(u: &Map<String, Value>) -> Usage {
    let mut out = Usage::default();
    let prompt = count(u.get("prompt_tokens")).or_else(|| count(u.get("input_tokens")));
    let completion = count(u.get("completion_tokens")).or_else(|| count(u.get("output_tokens")));
    let total = count(u.get("total_tokens"));
    out.prompt_tokens = prompt.or(total).unwrap_or(0);
    out.completion_tokens = completion
        .or_else(|| Some(total?.saturating_sub(prompt?)))
        .unwrap_or(0);
    let details = |keys: &[&str]| -> Option<&Map<String, Value>> {
        keys.iter()
            .find_map(|k| u.get(*k).and_then(Value::as_object))
    };
    if let Some(d) = details(&[
        "prompt_tokens_details",
        "input_tokens_details",
        "input_token_details",
    ]) {
        out.cached_tokens = count(d.get("cached_tokens")).unwrap_or(0);
        out.audio_prompt_tokens = count(d.get("audio_tokens")).unwrap_or(0);
        out.image_prompt_tokens = count(d.get("image_tokens")).unwrap_or(0);
    }
    if let Some(d) = details(&[
        "completion_tokens_details",
        "output_tokens_details",
        "output_token_details",
    ]) {
        out.reasoning_tokens = count(d.get("reasoning_tokens")).unwrap_or(0);
        out.audio_completion_tokens = count(d.get("audio_tokens")).unwrap_or(0);
    }
    if u.get("type").and_then(Value::as_str) == Some("duration") {
        if let Some(Value::Number(n)) = u.get("seconds") {
            out.audio_millis = decimal_to_millis(&n.to_string()).unwrap_or(0);
        }
    }
    out
}

/// Milliseconds in a decimal number of seconds (`3.2`, `12`, `1e-3`), exactly, rounded up to
/// the next millisecond; negative is 0, too large saturates.
///
/// `serde_json` prints a float with the shortest text that reads back as the same value, so
/// for the durations OpenAI sends (a few decimals) this is the text that was on the wire.
fn decimal_to_millis(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('-') {
        return rest
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit())
            .then_some(0);
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i64>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits: String = int.chars().chain(frac.chars()).collect();
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Some(0);
    }
    // value = digits * 10^(exp - frac.len()); millis = digits * 10^(exp - frac.len() + 3)
    let shift = exp.saturating_add(3).saturating_sub(frac.len() as i64);
    if shift >= 0 {
        if digits.len() as i64 + shift > 19 {
            return Some(u64::MAX);
        }
        let mut v: u64 = digits.parse().ok()?;
        for _ in 0..shift {
            v = v.checked_mul(10)?;
        }
        Some(v)
    } else {
        let drop = usize::try_from(-shift).unwrap_or(usize::MAX);
        if drop >= digits.len() {
            return Some(1); // a positive amount below one millisecond
        }
        let (keep, rest) = digits.split_at(digits.len() - drop);
        if keep.len() > 19 {
            return Some(u64::MAX);
        }
        let v: u64 = keep.parse().ok()?;
        let round_up = rest.bytes().any(|b| b != b'0');
        Some(v.saturating_add(u64::from(round_up)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis() {
        for (s, ms) in [
            ("3.2", 3200),
            ("3", 3000),
            ("0.0005", 1),
            ("0", 0),
            ("-1.5", 0),
            ("12.3456", 12346),
            ("1e3", 1_000_000),
            ("1.5E-2", 15),
            ("7.000", 7000),
            ("99999999999999999999999", u64::MAX),
        ] {
            assert_eq!(decimal_to_millis(s), Some(ms), "{s}");
        }
        for bad in ["", ".", "abc", "1e", "1.2.3"] {
            assert_eq!(decimal_to_millis(bad), None, "{bad}");
        }
        let v: Value = serde_json::from_str("{\"type\":\"duration\",\"seconds\":8.47}").unwrap();
        assert_eq!(parse_usage(v.as_object().unwrap()).audio_millis, 8470);
    }
}

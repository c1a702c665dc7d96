//! The `usage` object of a response, in all its shapes: read in one typed pass
//! ([`UsageSeed`], for bodies and events), or from a `Value` map ([`parse_usage`], for the tail
//! of a body too big to keep, and as the reference in tests).

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::super::de::{ignore_others, Key, Skip, Str};
use super::super::Usage;

/// Reads a `usage` member: the usage when it is an object, read as [`parse_usage`] reads its
/// `Value` (where a member repeats, the last one counts).
pub(super) struct UsageSeed;

/// A `usage` member as [`UsageSeed`] read it.
pub(super) struct UsageMember {
    /// It was not `null`.
    pub(super) non_null: bool,
    /// It was an object, saying this.
    pub(super) usage: Option<Usage>,
}

impl Default for UsageMember {
    /// Any value but an object or `null`.
    fn default() -> Self {
        UsageMember {
            non_null: true,
            usage: None,
        }
    }
}

impl<'a> DeserializeSeed<'a> for UsageSeed {
    type Value = UsageMember;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for UsageSeed {
    type Value = UsageMember;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(UsageMember {
            non_null: false,
            usage: None,
        })
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut f = UsageFields::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "prompt_tokens" => f.prompt = map.next_value_seed(Count)?,
                "input_tokens" => f.input = map.next_value_seed(Count)?,
                "completion_tokens" => f.completion = map.next_value_seed(Count)?,
                "output_tokens" => f.output = map.next_value_seed(Count)?,
                "total_tokens" => f.total = map.next_value_seed(Count)?,
                "type" => {
                    f.duration = map.next_value_seed(Str)?.as_deref() == Some("duration");
                }
                "seconds" => {
                    f.seconds = match map.next_value::<Value>()? {
                        Value::Number(n) => Some(n),
                        _ => None,
                    };
                }
                key => match DETAILS.iter().position(|k| *k == key) {
                    Some(i) => f.details[i] = Some(map.next_value_seed(DetailsSeed)?),
                    None => map.next_value_seed(Skip)?,
                },
            }
        }
        Ok(UsageMember {
            non_null: true,
            usage: Some(f.usage()),
        })
    }

    ignore_others!('a; bool, u64, i64, f64, str, seq);
}

/// The `*_details` members, prompt side first, each side in the order they are looked for.
const DETAILS: [&str; 6] = [
    "prompt_tokens_details",
    "input_tokens_details",
    "input_token_details",
    "completion_tokens_details",
    "output_tokens_details",
    "output_token_details",
];

/// What a `usage` object said, member by member (the last of a repeated member).
#[derive(Default)]
struct UsageFields {
    prompt: Option<u64>,
    input: Option<u64>,
    completion: Option<u64>,
    output: Option<u64>,
    total: Option<u64>,
    /// Per [`DETAILS`] key: present, and an object.
    details: [Option<Option<Details>>; 6],
    duration: bool,
    seconds: Option<serde_json::Number>,
}

impl UsageFields {
    /// As [`parse_usage`] combines them.
    fn usage(self) -> Usage {
        let mut out = Usage::default();
        let prompt = self.prompt.or(self.input);
        let completion = self.completion.or(self.output);
        out.prompt_tokens = prompt.or(self.total).unwrap_or(0);
        out.completion_tokens = completion
            .or_else(|| Some(self.total?.saturating_sub(prompt?)))
            .unwrap_or(0);
        let [p0, p1, p2, c0, c1, c2] = self.details;
        if let Some(d) = p0.flatten().or(p1.flatten()).or(p2.flatten()) {
            out.cached_tokens = d.cached.unwrap_or(0);
            out.audio_prompt_tokens = d.audio.unwrap_or(0);
            out.image_prompt_tokens = d.image.unwrap_or(0);
        }
        if let Some(d) = c0.flatten().or(c1.flatten()).or(c2.flatten()) {
            out.reasoning_tokens = d.reasoning.unwrap_or(0);
            out.audio_completion_tokens = d.audio.unwrap_or(0);
        }
        if self.duration {
            if let Some(n) = self.seconds {
                out.audio_millis = decimal_to_millis(&n.to_string()).unwrap_or(0);
            }
        }
        out
    }
}

/// The counts of a `*_details` object.
#[derive(Default, Clone, Copy)]
struct Details {
    cached: Option<u64>,
    audio: Option<u64>,
    image: Option<u64>,
    reasoning: Option<u64>,
}

/// A `*_details` member: `Some` when it is an object.
struct DetailsSeed;

impl<'a> DeserializeSeed<'a> for DetailsSeed {
    type Value = Option<Details>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for DetailsSeed {
    type Value = Option<Details>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut d = Details::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "cached_tokens" => d.cached = map.next_value_seed(Count)?,
                "audio_tokens" => d.audio = map.next_value_seed(Count)?,
                "image_tokens" => d.image = map.next_value_seed(Count)?,
                "reasoning_tokens" => d.reasoning = map.next_value_seed(Count)?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(d))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

/// A count as [`count`] reads it: a non-negative integer, or a positive finite float rounded
/// up; `None` for anything else.
struct Count;

impl<'a> DeserializeSeed<'a> for Count {
    type Value = Option<u64>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Count {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Self::Value, E> {
        // Saturating float-to-int conversion; only for malformed (non-integer) counts.
        Ok((f.is_finite() && f > 0.0).then(|| f.ceil() as u64))
    }

    ignore_others!('a; bool, i64, str, unit, seq, map);
}

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
    use crate::usage::json_text::J;
    use proptest::prelude::*;

    /// The typed read of `text` (a `usage` value), next to `parse_usage` of its `Value`.
    fn both(text: &str) -> (Option<Usage>, Option<Usage>) {
        let mut de = serde_json::Deserializer::from_str(text);
        let typed = UsageSeed.deserialize(&mut de).unwrap().usage;
        let value: Value = serde_json::from_str(text).unwrap();
        (typed, value.as_object().map(parse_usage))
    }

    #[test]
    fn typed_examples_match_the_value_reading() {
        for text in [
            r#"{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28,"prompt_tokens_details":{"cached_tokens":3,"audio_tokens":1},"completion_tokens_details":{"reasoning_tokens":4}}"#,
            r#"{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"total_tokens":123}"#,
            r#"{"type":"duration","seconds":3.2}"#,
            r#"{"seconds":1e-3,"type":"duration","type":"tokens"}"#,
            r#"{"total_tokens":10,"prompt_tokens":-2,"completion_tokens":2.5}"#,
            r#"{"prompt_tokens_details":5,"input_tokens_details":{"cached_tokens":7},"prompt_tokens":1e30}"#,
            "null",
            "[1]",
        ] {
            let (typed, walked) = both(text);
            assert_eq!(typed, walked, "{text}");
        }
    }

    fn count() -> BoxedStrategy<J> {
        prop_oneof![
            Just(J::Lit("12")),
            Just(J::Lit("0")),
            Just(J::Lit("-3")),
            Just(J::Lit("2.5")),
            Just(J::Lit("7.0")),
            Just(J::Lit("1e300")),
            Just(J::Lit("18446744073709551616")),
            Just(J::Lit("\"5\"")),
            Just(J::Lit("null")),
            Just(J::Lit("true")),
            Just(J::Arr(vec![J::Lit("1")])),
        ]
        .boxed()
    }

    fn details() -> BoxedStrategy<J> {
        let key = prop_oneof![
            Just(r#""cached_tokens""#),
            Just(r#""audio_tokens""#),
            Just(r#""image_tokens""#),
            Just(r#""reasoning_tokens""#),
            Just(r#""text_tokens""#),
        ];
        prop_oneof![
            4 => prop::collection::vec((key, count()), 0..5).prop_map(J::Obj),
            1 => count(),
        ]
        .boxed()
    }

    fn usage() -> impl Strategy<Value = J> {
        let member = prop_oneof![
            (
                prop_oneof![
                    Just(r#""prompt_tokens""#),
                    Just(r#""input_tokens""#),
                    Just(r#""completion_tokens""#),
                    Just(r#""output_tokens""#),
                    Just(r#""total_tokens""#),
                ],
                count()
            ),
            (
                prop_oneof![
                    Just(r#""prompt_tokens_details""#),
                    Just(r#""input_tokens_details""#),
                    Just(r#""input_token_details""#),
                    Just(r#""completion_tokens_details""#),
                    Just(r#""output_tokens_details""#),
                    Just(r#""output_token_details""#),
                ],
                details()
            ),
            (
                Just(r#""type""#),
                prop_oneof![
                    Just(J::Lit(r#""duration""#)),
                    Just(J::Lit(r#""tokens""#)),
                    Just(J::Lit("1"))
                ]
            ),
            (
                Just(r#""seconds""#),
                prop_oneof![
                    Just(J::Lit("3.2")),
                    Just(J::Lit("12")),
                    Just(J::Lit("0.0005")),
                    Just(J::Lit("-1.5")),
                    Just(J::Lit("1e-3")),
                    Just(J::Lit(r#""3""#)),
                ]
            ),
            (Just(r#""other""#), details()),
        ];
        prop::collection::vec(member, 0..8).prop_map(J::Obj)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn typed_usage_matches_the_value_reading(u in usage(), spaced in any::<bool>()) {
            let mut text = String::new();
            if spaced {
                u.write_with(&mut text, "{ ", " , ");
            } else {
                u.write_with(&mut text, "{", ",");
            }
            let (typed, walked) = both(&text);
            prop_assert_eq!(typed, walked, "{}", text);
        }
    }

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

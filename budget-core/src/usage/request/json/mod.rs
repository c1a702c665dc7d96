//! A JSON request body, read in one borrowed, typed pass.
//!
//! [`JsonRequest::read`] deserialises the members budgets need straight from the body: strings
//! are borrowed from it (copied only when they hold escapes), the prompt text is collected as
//! borrowed pieces, and every other member is skipped but still validated, so a body is read
//! exactly when it is a valid JSON object. Where a member repeats, the last one counts.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::Endpoint;

mod prompt;

use super::super::de::{Bool, Key, MemberOrder, Skip, Str, U64};
use prompt::{Prompt, Read};

/// What a body's `stream_options` member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum StreamOptions {
    /// The body is not a JSON object (or was not read as one).
    #[default]
    NotJson,
    /// No `stream_options` member.
    Absent,
    /// `null`.
    Null,
    /// An object; `include_usage` is true when its `include_usage` member is `true`.
    Object {
        /// `include_usage: true`.
        include_usage: bool,
    },
    /// Anything else (left for the upstream to reject).
    Other,
}

/// The members of a JSON request body that budgets need, borrowed from it.
#[derive(Debug, Default)]
pub(super) struct JsonRequest<'a> {
    pub(super) model: Option<Cow<'a, str>>,
    pub(super) stream: Option<bool>,
    pub(super) stream_options: StreamOptions,
    pub(super) max_completion_tokens: Option<u64>,
    pub(super) max_output_tokens: Option<u64>,
    pub(super) max_tokens: Option<u64>,
    pub(super) n: Option<u64>,
    pub(super) user: Option<Cow<'a, str>>,
    pub(super) safety_identifier: Option<Cow<'a, str>>,
    pub(super) service_tier: Option<Cow<'a, str>>,
    /// The prompt text, in pieces, in the order they are estimated: `instructions`, the chat
    /// `messages`, `prompt`, `suffix`, `input`, `tools`, `functions` (for speech, `input`
    /// alone). Empty pieces are left out.
    pub(super) text: Vec<Cow<'a, str>>,
    /// `messages` items when it is an array.
    pub(super) messages: Option<u64>,
    /// For the Responses API, `input` items (1 when `input` is not an array).
    pub(super) input_items: Option<u64>,
}

impl<'a> JsonRequest<'a> {
    /// Reads `body`; the prompt text too when an endpoint is given. Fails when the body is not
    /// a JSON object.
    pub(super) fn read(
        body: &'a [u8],
        endpoint: Option<Endpoint>,
    ) -> Result<JsonRequest<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let request = de.deserialize_map(Top { endpoint })?;
        de.end()?;
        Ok(request)
    }
}

/// Prompt members of the top-level object, in the order their text is estimated.
const PROMPT_MEMBERS: [&str; 7] = [
    "instructions",
    "messages",
    "prompt",
    "suffix",
    "input",
    "tools",
    "functions",
];

struct Top {
    endpoint: Option<Endpoint>,
}

impl<'a> Visitor<'a> for Top {
    type Value = JsonRequest<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<JsonRequest<'a>, A::Error> {
        let mut r = JsonRequest {
            stream_options: StreamOptions::Absent,
            ..JsonRequest::default()
        };
        let mut text = Vec::new();
        let mut order = MemberOrder::<7>::new(0);
        while let Some(key) = map.next_key_seed(Key)? {
            let key: &str = &key;
            match key {
                "model" => r.model = map.next_value_seed(Str)?,
                "user" => r.user = map.next_value_seed(Str)?,
                "safety_identifier" => r.safety_identifier = map.next_value_seed(Str)?,
                "service_tier" => r.service_tier = map.next_value_seed(Str)?,
                "stream" => r.stream = map.next_value_seed(Bool)?,
                "stream_options" => r.stream_options = map.next_value_seed(StreamOptionsSeed)?,
                "max_completion_tokens" => r.max_completion_tokens = map.next_value_seed(U64)?,
                "max_output_tokens" => r.max_output_tokens = map.next_value_seed(U64)?,
                "max_tokens" => r.max_tokens = map.next_value_seed(U64)?,
                "n" => r.n = map.next_value_seed(U64)?,
                _ => {
                    let member = match self.endpoint {
                        None => None,
                        // `characters` is billed from `input` alone.
                        Some(Endpoint::AudioSpeech) => (key == "input").then_some(4),
                        Some(_) => PROMPT_MEMBERS.iter().position(|m| *m == key),
                    };
                    let Some(member) = member else {
                        map.next_value_seed(Skip)?;
                        continue;
                    };
                    let start = text.len();
                    match member {
                        1 => {
                            let seen =
                                map.next_value_seed(Prompt::new(&mut text, Read::OnlyItems))?;
                            r.messages = seen.items();
                        }
                        4 if self.endpoint == Some(Endpoint::Responses) => {
                            let seen = map.next_value_seed(Prompt::new(&mut text, Read::Items))?;
                            r.input_items = Some(seen.items().unwrap_or(1));
                        }
                        5 | 6 => {
                            // Tools as the JSON the tokenizer would see (a rare, small value).
                            let tools: Value = map.next_value()?;
                            if tools.as_array().is_some_and(|a| !a.is_empty()) {
                                text.push(Cow::Owned(tools.to_string()));
                            }
                        }
                        _ => {
                            map.next_value_seed(Prompt::new(&mut text, Read::Value))?;
                        }
                    }
                    order.record(member, start..text.len());
                }
            }
        }
        order.finish(&mut text);
        r.text = text;
        Ok(r)
    }
}

/// `stream_options`: null, an object (with `include_usage: true` or not) or something else.
struct StreamOptionsSeed;

impl<'a> DeserializeSeed<'a> for StreamOptionsSeed {
    type Value = StreamOptions;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<StreamOptions, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for StreamOptionsSeed {
    type Value = StreamOptions;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Null)
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<StreamOptions, A::Error> {
        let mut include_usage = false;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == "include_usage" {
                include_usage = map.next_value_seed(Bool)? == Some(true);
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(StreamOptions::Object { include_usage })
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Other)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Other)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Other)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Other)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<StreamOptions, E> {
        Ok(StreamOptions::Other)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<StreamOptions, A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(StreamOptions::Other)
    }
}

#[cfg(test)]
mod tests {
    //! The typed reader against the `serde_json::Value` walk it replaced, kept here as the
    //! reference: same info, same rewrite, for generated bodies with repeated members, members
    //! in any order, escapes, token arrays and deep nesting.

    use crate::usage::json_text::J;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::super::rewrite::top_level_value_span;
    use super::super::{parse_tier, rewrite_include_usage, RequestInfo, TextSink};
    use super::Endpoint;

    struct Oracle(TextSink);

    impl Oracle {
        /// A prompt value: a string, an array of strings or token ids, or content parts.
        fn value(&mut self, v: &Value) {
            self.value_depth(v, 0);
        }

        fn value_depth(&mut self, v: &Value, depth: u32) {
            if depth > 8 {
                return;
            }
            match v {
                Value::String(s) => self.0.push(s),
                Value::Number(n) => self.0.push(&n.to_string()),
                Value::Array(items) => {
                    if items.iter().all(Value::is_number) && !items.is_empty() {
                        // A token-id prompt: one "word" per token.
                        let joined: Vec<String> = items.iter().map(Value::to_string).collect();
                        self.0.push(&joined.join(" "));
                    } else {
                        for item in items {
                            self.value_depth(item, depth + 1);
                        }
                    }
                }
                Value::Object(o) => self.object(o, depth),
                _ => {}
            }
        }

        /// A content part or message-like item: its text-bearing fields.
        fn object(&mut self, o: &Map<String, Value>, depth: u32) {
            for key in ["text", "content", "input", "arguments", "output", "refusal"] {
                if let Some(v) = o.get(key) {
                    self.value_depth(v, depth + 1);
                }
            }
            if let Some(Value::Array(calls)) = o.get("tool_calls") {
                for call in calls {
                    if let Some(f) = call.get("function") {
                        for key in ["name", "arguments"] {
                            if let Some(Value::String(s)) = f.get(key) {
                                self.0.push(s);
                            }
                        }
                    }
                }
            }
            if let Some(Value::String(name)) = o.get("name") {
                self.0.push(name);
            }
        }

        fn message(&mut self, m: &Value) {
            match m {
                Value::Object(o) => self.object(o, 0),
                other => self.value(other),
            }
        }
    }

    fn oracle_read(info: &mut RequestInfo, map: &Map<String, Value>) {
        info.model = map
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        info.stream = map.get("stream").and_then(Value::as_bool).unwrap_or(false);
        info.include_usage = map
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        info.max_output_tokens = ["max_completion_tokens", "max_output_tokens", "max_tokens"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_u64));
        info.n = map.get("n").and_then(Value::as_u64).unwrap_or(1);
        info.user = ["user", "safety_identifier"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_str))
            .map(str::to_owned);
        info.service_tier = map
            .get("service_tier")
            .and_then(Value::as_str)
            .and_then(parse_tier);

        let mut text = Oracle(TextSink::default());
        match info.endpoint {
            Endpoint::AudioSpeech => {
                // `characters` is billed from `input` alone.
                if let Some(input) = map.get("input") {
                    text.value(input);
                }
            }
            _ => {
                if let Some(instructions) = map.get("instructions") {
                    text.value(instructions);
                }
                if let Some(Value::Array(messages)) = map.get("messages") {
                    info.message_count = messages.len() as u64;
                    for m in messages {
                        text.message(m);
                    }
                }
                for key in ["prompt", "suffix"] {
                    if let Some(v) = map.get(key) {
                        text.value(v);
                    }
                }
                match map.get("input") {
                    Some(Value::Array(items)) if info.endpoint == Endpoint::Responses => {
                        info.message_count = items.len() as u64;
                        for item in items {
                            text.message(item);
                        }
                    }
                    Some(v) => {
                        if info.endpoint == Endpoint::Responses {
                            info.message_count = 1;
                        }
                        text.value(v);
                    }
                    None => {}
                }
                for key in ["tools", "functions"] {
                    if let Some(tools @ Value::Array(a)) = map.get(key) {
                        if !a.is_empty() {
                            text.0.push(&tools.to_string());
                        }
                    }
                }
            }
        }
        info.input_text = text.0.out;
    }

    fn oracle(endpoint: Endpoint, body: &[u8]) -> RequestInfo {
        let mut info = RequestInfo {
            endpoint,
            input_bytes: body.len() as u64,
            ..RequestInfo::default()
        };
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            oracle_read(&mut info, &map);
        }
        info
    }

    fn oracle_rewrite(body: &[u8]) -> Option<Vec<u8>> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        if map.get("stream") != Some(&Value::Bool(true)) {
            return None;
        }
        let replacement = match map.get("stream_options") {
            None => {
                let open = body.iter().position(|&b| b == b'{')?;
                let mut out = Vec::with_capacity(body.len() + 48);
                out.extend_from_slice(&body[..=open]);
                out.extend_from_slice(br#""stream_options":{"include_usage":true},"#);
                out.extend_from_slice(&body[open + 1..]);
                return Some(out);
            }
            Some(Value::Object(o)) => {
                if o.get("include_usage") == Some(&Value::Bool(true)) {
                    return None;
                }
                let mut o = o.clone();
                o.insert("include_usage".to_owned(), Value::Bool(true));
                Value::Object(o).to_string()
            }
            Some(Value::Null) => r#"{"include_usage":true}"#.to_owned(),
            Some(_) => return None,
        };
        let (start, end) = top_level_value_span(body, "stream_options")?;
        let mut out = Vec::with_capacity(body.len() + replacement.len());
        out.extend_from_slice(&body[..start]);
        out.extend_from_slice(replacement.as_bytes());
        out.extend_from_slice(&body[end..]);
        Some(out)
    }

    const LITERALS: &[&str] = &[
        "null",
        "true",
        "false",
        "0",
        "-0",
        "7",
        "-2",
        "1.5",
        "1e2",
        "12345678901234567890",
        r#""""#,
        r#""hi""#,
        r#""a b""#,
        r#""\u00e9t\u00e9""#,
        r#""tab\there""#,
        r#""Zoë""#,
        r#""default""#,
        r#""flex""#,
        r#""gpt-4o""#,
    ];

    const KEYS: &[&str] = &[
        r#""role""#,
        r#""content""#,
        r#""text""#,
        r#""input""#,
        r#""arguments""#,
        r#""output""#,
        r#""refusal""#,
        r#""tool_calls""#,
        r#""function""#,
        r#""name""#,
        r#""messages""#,
        r#""prompt""#,
        r#""suffix""#,
        r#""instructions""#,
        r#""tools""#,
        r#""functions""#,
        r#""model""#,
        r#""stream""#,
        r#""stream_options""#,
        r#""include_usage""#,
        r#""n""#,
        r#""user""#,
        r#""safety_identifier""#,
        r#""service_tier""#,
        r#""max_tokens""#,
        r#""max_output_tokens""#,
        r#""max_completion_tokens""#,
        r#""x""#,
        r#""con\u0074ent""#,
        r#""stream\u005foptions""#,
    ];

    fn json() -> impl Strategy<Value = J> {
        let leaf = prop::sample::select(LITERALS).prop_map(J::Lit);
        leaf.prop_recursive(12, 96, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(J::Obj),
            ]
        })
    }

    fn body() -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(KEYS), json()), 0..8).prop_map(|members| {
            let mut out = String::new();
            J::Obj(members).write_with(&mut out, "{ ", ", ");
            out
        })
    }

    const ENDPOINTS: &[Endpoint] = &[
        Endpoint::ChatCompletions,
        Endpoint::Completions,
        Endpoint::Embeddings,
        Endpoint::Responses,
        Endpoint::Images,
        Endpoint::AudioSpeech,
    ];

    fn check(endpoint: Endpoint, body: &[u8]) -> Result<(), TestCaseError> {
        let info = RequestInfo::parse(endpoint, body);
        let mut want = oracle(endpoint, body);
        want.stream_options = info.stream_options;
        prop_assert_eq!(&info, &want);
        let rewritten = oracle_rewrite(body);
        prop_assert_eq!(&rewrite_include_usage(body), &rewritten);
        prop_assert_eq!(&info.rewrite_include_usage(body), &rewritten);
        Ok(())
    }

    #[test]
    fn examples_match_the_value_walk() {
        for body in [
            &br#"{"messages":[{"content":"b","role":"user","text":"a"}],"instructions":"i"}"#[..],
            br#"{"input":[1,"a",2],"prompt":[[1,2],[3]],"model":"m","model":5}"#,
            br#"{"messages":[{"tool_calls":[{"function":{"arguments":"{}","name":"f"}}],"name":"n","content":"c"}],"messages":"x"}"#,
            br#"{"content":"x","messages":[{"content":"a","content":"b"}],"tools":[{"b":1,"a":2}]}"#,
            br#"{"input":[[[[[[[[[["deep",1]]]]]]]]],[[[[[[[[[1,2]]]]]]]]]]}"#,
            br#"{"stream":true,"stream_options":{"x":[1,{}],"include_usage":false}}"#,
            br#"{"stream":true,"stream_options":{},"stream\u005foptions":null}"#,
            b"{\"model\":\"\xff\"}",
            br#"{"model":"\ud800"}"#,
            br#"{"x":"\ud800","stream":true}"#,
        ] {
            for &endpoint in ENDPOINTS {
                check(endpoint, body).unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn typed_reader_matches_the_value_walk(
            body in body(),
            endpoint in prop::sample::select(ENDPOINTS),
        ) {
            check(endpoint, body.as_bytes())?;
        }
    }
}

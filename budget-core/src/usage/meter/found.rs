//! What a response said: its model, tier, usage block, output text, images and errors, read
//! from a JSON body (or its tail) and from SSE events of every API.

use serde_json::{Map, Value};

use super::super::estimate::TextTally;
use super::super::sse::SseEvent;
use super::super::{Endpoint, ServiceTier, Usage};
use super::body::BodyData;
use super::event::EventData;
use super::usage_block::parse_usage;

/// Response events that carry output text in a string `delta` (Responses API, transcription).
const TEXT_DELTA_EVENTS: &[&str] = &[
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
    "response.custom_tool_call_input.delta",
    "response.mcp_call_arguments.delta",
    "response.code_interpreter_call_code.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.audio.transcript.delta",
    "response.audio_transcript.delta",
    "transcript.text.delta",
];

/// What the response said so far.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub(super) endpoint: Option<Endpoint>,
    pub(super) usage: Option<Usage>,
    pub(super) model: Option<String>,
    pub(super) tier: Option<ServiceTier>,
    pub(super) text: TextTally,
    pub(super) images: u64,
    pub(super) saw_images: bool,
    pub(super) error: bool,
    pub(super) malformed_events: u64,
}

impl Found {
    fn set_model(&mut self, v: Option<&Value>) {
        self.set_model_str(v.and_then(Value::as_str));
    }

    fn set_model_str(&mut self, m: Option<&str>) {
        if let Some(m) = m.filter(|m| !m.is_empty()) {
            // Every chunk of a stream repeats it: copy it only when it changes.
            if self.model.as_deref() != Some(m) {
                self.model = Some(m.to_owned());
            }
        }
    }

    fn set_tier(&mut self, v: Option<&Value>) {
        self.set_tier_str(v.and_then(Value::as_str));
    }

    fn set_tier_str(&mut self, v: Option<&str>) {
        let tier = match v {
            Some("default") => ServiceTier::Default,
            Some("flex") => ServiceTier::Flex,
            Some("priority") => ServiceTier::Priority,
            _ => return,
        };
        self.tier = Some(tier);
    }

    fn push_text_str(&mut self, s: Option<&str>) {
        if self.usage.is_some() {
            return; // the estimate will not be needed
        }
        if let Some(s) = s {
            self.text.push(s);
        }
    }

    /// The raw bytes of a JSON body that could not be read, as output text (an over-estimate:
    /// JSON syntax is counted too) for the endpoints that produce text.
    pub(super) fn push_raw(&mut self, endpoint: Endpoint, kept: &[u8], total: u64) {
        if matches!(
            endpoint,
            Endpoint::ChatCompletions
                | Endpoint::Completions
                | Endpoint::Responses
                | Endpoint::AudioTranscription
        ) {
            self.text.push_bytes(kept);
            self.text
                .add_uncounted(total.saturating_sub(kept.len() as u64));
        }
    }

    fn apply_usage(&mut self, u: &Map<String, Value>) {
        self.usage = Some(parse_usage(u));
        self.text = TextTally::default();
    }

    pub(super) fn on_json_body(&mut self, body: &BodyData<'_>) {
        self.set_model_str(body.model.as_deref());
        self.set_tier_str(body.service_tier.as_deref());
        if let Some(u) = &body.usage {
            self.apply_usage(u);
        }
        for text in &body.text {
            self.push_text_str(Some(text));
        }
        if self.endpoint == Some(Endpoint::Images) {
            if let Some(items) = body.data_items {
                self.images = items;
                self.saw_images = true;
            }
        }
        if body.error {
            self.error = true;
        }
    }

    /// A body too big to keep: read `usage`, `model` and `service_tier` from its tail.
    pub(super) fn on_json_tail(&mut self, tail: &[u8]) {
        if let Some(Value::Object(u)) = last_member(tail, b"\"usage\"", Value::is_object) {
            self.apply_usage(&u);
        }
        let model = last_member(tail, b"\"model\"", Value::is_string);
        self.set_model(model.as_ref());
        let tier = last_member(tail, b"\"service_tier\"", Value::is_string);
        self.set_tier(tier.as_ref());
    }

    pub(super) fn on_event(&mut self, e: SseEvent<'_>) {
        let data = e.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(event) = EventData::read(data) else {
            self.malformed_events += 1;
            return;
        };
        let kind = event.kind.as_deref().or(e.event);

        // Chat completions and legacy completions chunks.
        if event.has_choices {
            self.set_model_str(event.model.as_deref());
            self.set_tier_str(event.service_tier.as_deref());
            for text in &event.choice_text {
                self.push_text_str(Some(text));
            }
        }
        // Responses API lifecycle events carry the response object.
        if let Some(r) = &event.response {
            self.set_model_str(r.model.as_deref());
            self.set_tier_str(r.service_tier.as_deref());
            if let Some(u) = &r.usage {
                self.apply_usage(u);
            }
        }
        if let Some(u) = &event.usage {
            self.apply_usage(u);
        }
        if let Some(kind) = kind {
            if TEXT_DELTA_EVENTS.contains(&kind) {
                self.push_text_str(event.delta.as_deref());
            } else if kind == "image_generation.completed" || kind == "image_edit.completed" {
                self.images += 1;
                self.saw_images = true;
            } else if kind == "error" {
                self.error = true;
            }
        }
        if event.error {
            self.error = true;
        }
    }
}

/// The value of the last `"key": value` in `hay` (a fragment of a JSON document) that parses
/// and satisfies `want`.
fn last_member(hay: &[u8], key: &[u8], want: fn(&Value) -> bool) -> Option<Value> {
    let mut end = hay.len();
    while let Some(p) = hay[..end].windows(key.len()).rposition(|w| w == key) {
        end = p;
        let mut i = p + key.len();
        while hay.get(i).is_some_and(u8::is_ascii_whitespace) {
            i += 1;
        }
        if hay.get(i) != Some(&b':') {
            continue;
        }
        let mut values = serde_json::Deserializer::from_slice(&hay[i + 1..]).into_iter::<Value>();
        if let Some(Ok(v)) = values.next() {
            if want(&v) {
                return Some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use super::*;
    use crate::usage::json_text::J;
    use proptest::prelude::*;

    #[test]
    fn responses_sse_and_json() {
        let info = responses_info();
        let u = run_whole(UsageMeter::sse(&info), RESPONSES_SSE);
        assert_eq!(
            (
                u.prompt_tokens,
                u.cached_tokens,
                u.completion_tokens,
                u.reasoning_tokens
            ),
            (37, 5, 11, 4)
        );
        assert_eq!(u.model.as_deref(), Some("gpt-4.1-2025-04-14"));
        assert_eq!(u.service_tier, ServiceTier::Flex);
        assert!(!u.estimated);

        for terminal in ["response.incomplete", "response.failed"] {
            let s = RESPONSES_SSE.replace("response.completed", terminal);
            let u = run_whole(UsageMeter::sse(&info), &s);
            assert_eq!(
                (u.prompt_tokens, u.completion_tokens),
                (37, 11),
                "{terminal}"
            );
        }

        // Cut before response.completed: estimated from the deltas.
        let cut = RESPONSES_SSE
            .find("event: response.output_text.done")
            .unwrap();
        let u = run_whole(UsageMeter::sse(&info), &RESPONSES_SSE[..cut]);
        assert!(u.estimated);
        assert_eq!(u.completion_tokens, 2);
        assert_eq!(u.prompt_tokens, 3 + 3);

        let json = r#"{"id":"resp_1","object":"response","model":"gpt-4.1-2025-04-14","output":[{"type":"message","content":[{"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":0},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!((u.prompt_tokens, u.completion_tokens), (36, 87));
    }

    #[test]
    fn images() {
        let info = RequestInfo::parse(
            Endpoint::Images,
            br#"{"model":"gpt-image-1","prompt":"a cat","n":2}"#,
        );
        let json = r#"{"created":1713833628,"data":[{"b64_json":"iVBORw0KGgo="},{"b64_json":"iVBO"}],"usage":{"total_tokens":100,"input_tokens":50,"output_tokens":50,"input_tokens_details":{"text_tokens":10,"image_tokens":40}}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!(
            (
                u.prompt_tokens,
                u.image_prompt_tokens,
                u.completion_tokens,
                u.images
            ),
            (50, 40, 50, 0)
        );
        let dalle = RequestInfo::parse(
            Endpoint::Images,
            br#"{"model":"dall-e-3","prompt":"a cat","n":1}"#,
        );
        let json = r#"{"created":1,"data":[{"url":"https://x/y.png","revised_prompt":"A cat."},{"url":"https://x/z.png"}]}"#;
        let u = run_whole(UsageMeter::json(&dalle), json);
        assert_eq!((u.images, u.prompt_tokens, u.estimated), (2, 0, false));
        assert_eq!(u.model.as_deref(), Some("dall-e-3"));
        // Cut off: the requested n, estimated.
        let u = run_whole(UsageMeter::json(&info), &json[..20]);
        assert_eq!((u.images, u.estimated), (2, true));

        let stream = "event: image_generation.partial_image\ndata: {\"type\":\"image_generation.partial_image\",\"b64_json\":\"AAAA\",\"partial_image_index\":0}\n\n\
event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\",\"b64_json\":\"AAAA\",\"usage\":{\"total_tokens\":100,\"input_tokens\":50,\"output_tokens\":50,\"input_tokens_details\":{\"text_tokens\":50,\"image_tokens\":0}}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), stream);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (50, 50, false)
        );
    }

    #[test]
    fn transcription() {
        let info = RequestInfo::parse_with_content_type(
            Endpoint::AudioTranscription,
            Some("multipart/form-data; boundary=b"),
            b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\ngpt-4o-transcribe\r\n--b--\r\n",
        );
        let json = r#"{"text":"Imagine the wildest idea.","usage":{"type":"tokens","input_tokens":14,"input_token_details":{"text_tokens":0,"audio_tokens":14},"output_tokens":45,"total_tokens":59}}"#;
        let u = run_whole(UsageMeter::json(&info), json);
        assert_eq!(
            (u.prompt_tokens, u.audio_prompt_tokens, u.completion_tokens),
            (14, 14, 45)
        );
        assert_eq!(u.model.as_deref(), Some("gpt-4o-transcribe"));

        let whisper = r#"{"text":"Hello.","usage":{"type":"duration","seconds":3.2}}"#;
        let u = run_whole(UsageMeter::json(&info), whisper);
        assert_eq!(
            (u.audio_millis, u.prompt_tokens, u.estimated),
            (3200, 0, false)
        );

        let sse = "data: {\"type\":\"transcript.text.delta\",\"delta\":\"I\",\"logprobs\":[]}\n\n\
data: {\"type\":\"transcript.text.delta\",\"delta\":\" see\"}\n\n\
data: {\"type\":\"transcript.text.done\",\"text\":\"I see\",\"usage\":{\"type\":\"tokens\",\"input_tokens\":14,\"input_token_details\":{\"text_tokens\":0,\"audio_tokens\":14},\"output_tokens\":2,\"total_tokens\":16}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), sse);
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.estimated),
            (14, 2, false)
        );
        let cut = sse.find("data: {\"type\":\"transcript.text.done").unwrap();
        let u = run_whole(UsageMeter::sse(&info), &sse[..cut]);
        assert_eq!((u.completion_tokens, u.estimated), (2, true));
        // response_format=text: a plain-text body.
        let u = run_whole(UsageMeter::json(&info), "Hello world\n");
        assert_eq!((u.completion_tokens, u.estimated), (3, true)); // "\n" is a token
    }

    #[test]
    fn speech_counts_characters_without_buffering() {
        let info = RequestInfo::parse(
            Endpoint::AudioSpeech,
            r#"{"model":"tts-1","input":"Héllo there!","voice":"alloy"}"#.as_bytes(),
        );
        let mut m = UsageMeter::json(&info);
        for _ in 0..100 {
            m.feed(&[0xFF; 65536]);
        }
        assert!(matches!(m.body, Body::Count));
        let u = m.finish();
        assert_eq!((u.characters, u.prompt_tokens, u.estimated), (12, 0, false));
        assert_eq!(u.model.as_deref(), Some("tts-1"));
        let sse = "data: {\"type\":\"speech.audio.delta\",\"audio\":\"AAAA\"}\n\ndata: {\"type\":\"speech.audio.done\",\"usage\":{\"input_tokens\":14,\"output_tokens\":101,\"total_tokens\":115}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), sse);
        assert_eq!(
            (u.characters, u.prompt_tokens, u.completion_tokens),
            (12, 14, 101)
        );
    }

    #[test]
    fn malformed_data_line_is_ignored() {
        let info = chat_info(true);
        let s = format!(
            "{}data: {{not json\n\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\n\n{}",
            chunk("Hello"),
            USAGE_CHUNK
        );
        let mut m = UsageMeter::sse(&info);
        m.feed(s.as_bytes());
        assert_eq!(m.found.malformed_events, 2);
        let u = m.finish();
        assert_eq!((u.prompt_tokens, u.estimated), (11, false));
    }

    #[test]
    fn stream_error_before_output_bills_nothing() {
        let info = chat_info(true);
        let s = "data: {\"error\":{\"message\":\"The server had an error\",\"type\":\"server_error\"}}\n\n";
        let u = run_whole(UsageMeter::sse(&info), s);
        assert_eq!((u.prompt_tokens, u.estimated), (0, false));
    }

    /// The `serde_json::Value` walks that [`Found::on_json_body`] and [`Found::on_event`]
    /// replaced, kept as the reference.
    fn on_json_body_value(found: &mut Found, v: &Value) {
        let Some(o) = v.as_object() else { return };
        found.set_model(o.get("model"));
        found.set_tier(o.get("service_tier"));
        if let Some(Value::Object(u)) = o.get("usage") {
            found.apply_usage(u);
        }
        if let Some(Value::Array(choices)) = o.get("choices") {
            for c in choices {
                push_text(found, c.get("text"));
                if let Some(m) = c.get("message") {
                    message_text(found, m);
                }
            }
        }
        if let Some(Value::Array(output)) = o.get("output") {
            for item in output {
                push_text(found, item.get("arguments"));
                push_text(found, item.get("input"));
                for key in ["content", "summary"] {
                    if let Some(Value::Array(parts)) = item.get(key) {
                        for p in parts {
                            push_text(found, p.get("text"));
                            push_text(found, p.get("refusal"));
                        }
                    }
                }
            }
        }
        push_text(found, o.get("text"));
        if found.endpoint == Some(Endpoint::Images) {
            if let Some(Value::Array(data)) = o.get("data") {
                found.images = data.len() as u64;
                found.saw_images = true;
            }
        }
        if o.get("error").is_some_and(|e| !e.is_null()) {
            found.error = true;
        }
    }

    fn push_text(found: &mut Found, v: Option<&Value>) {
        found.push_text_str(v.and_then(Value::as_str));
    }

    fn message_text(found: &mut Found, m: &Value) {
        push_text(found, m.get("content"));
        push_text(found, m.get("refusal"));
        if let Some(audio) = m.get("audio") {
            push_text(found, audio.get("transcript"));
        }
        if let Some(Value::Array(calls)) = m.get("tool_calls") {
            for call in calls {
                if let Some(f) = call.get("function") {
                    push_text(found, f.get("name"));
                    push_text(found, f.get("arguments"));
                }
            }
        }
        if let Some(f) = m.get("function_call") {
            push_text(found, f.get("name"));
            push_text(found, f.get("arguments"));
        }
    }

    fn on_event_value(found: &mut Found, e: SseEvent<'_>) {
        let data = e.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(data) else {
            found.malformed_events += 1;
            return;
        };
        let kind = o.get("type").and_then(Value::as_str).or(e.event);

        // Chat completions and legacy completions chunks.
        if let Some(Value::Array(choices)) = o.get("choices") {
            found.set_model(o.get("model"));
            found.set_tier(o.get("service_tier"));
            for c in choices {
                push_text(found, c.get("text"));
                if let Some(d) = c.get("delta") {
                    message_text(found, d);
                }
            }
        }
        // Responses API lifecycle events carry the response object.
        if let Some(Value::Object(r)) = o.get("response") {
            found.set_model(r.get("model"));
            found.set_tier(r.get("service_tier"));
            if let Some(Value::Object(u)) = r.get("usage") {
                found.apply_usage(u);
            }
        }
        if let Some(Value::Object(u)) = o.get("usage") {
            found.apply_usage(u);
        }
        if let Some(kind) = kind {
            if TEXT_DELTA_EVENTS.contains(&kind) {
                push_text(found, o.get("delta"));
            } else if kind == "image_generation.completed" || kind == "image_edit.completed" {
                found.images += 1;
                found.saw_images = true;
            } else if kind == "error" {
                found.error = true;
            }
        }
        if o.get("error").is_some_and(Value::is_object) {
            found.error = true;
        }
    }

    const LITERALS: &[&str] = &[
        "null",
        "true",
        "3",
        "2.5",
        r#""""#,
        r#""Hel""#,
        r#""lo w\u00f6rld""#,
        r#""gpt-4o""#,
        r#""flex""#,
        r#""priority""#,
        r#""error""#,
        r#""response.output_text.delta""#,
        r#""image_generation.completed""#,
    ];

    const KEYS: &[&str] = &[
        r#""type""#,
        r#""choices""#,
        r#""model""#,
        r#""service_tier""#,
        r#""response""#,
        r#""usage""#,
        r#""delta""#,
        r#""error""#,
        r#""text""#,
        r#""content""#,
        r#""refusal""#,
        r#""audio""#,
        r#""transcript""#,
        r#""tool_calls""#,
        r#""function""#,
        r#""function_call""#,
        r#""name""#,
        r#""arguments""#,
        r#""prompt_tokens""#,
        r#""output_tokens""#,
        r#""x""#,
        r#""con\u0074ent""#,
    ];

    fn json() -> impl Strategy<Value = J> {
        let leaf = prop::sample::select(LITERALS).prop_map(J::Lit);
        leaf.prop_recursive(6, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(J::Obj),
            ]
        })
    }

    fn lit(choices: &'static [&'static str]) -> impl Strategy<Value = J> + Clone {
        prop::sample::select(choices).prop_map(J::Lit)
    }

    /// An object with members drawn from `members`, in any order, repeats allowed.
    fn obj(members: Vec<BoxedStrategy<(&'static str, J)>>, max: usize) -> BoxedStrategy<J> {
        prop::collection::vec(prop::strategy::Union::new(members), 0..max)
            .prop_map(J::Obj)
            .boxed()
    }

    fn member(
        key: &'static str,
        value: impl Strategy<Value = J> + 'static,
    ) -> BoxedStrategy<(&'static str, J)> {
        value.prop_map(move |v| (key, v)).boxed()
    }

    fn text_value() -> BoxedStrategy<J> {
        (prop_oneof![4 => lit(&[r#""Hel""#, r#""lo w\u00f6rld""#, r#""""#, r#""{\"a\":1}""#]), 1 => json()]).boxed()
    }

    fn function_value() -> BoxedStrategy<J> {
        let text = text_value;
        obj(
            vec![
                member(r#""name""#, text()),
                member(r#""arguments""#, text()),
            ],
            3,
        )
    }

    /// A chat `message` or `delta`.
    fn message() -> BoxedStrategy<J> {
        let text = text_value;
        let function = function_value;
        obj(
            vec![
                member(r#""content""#, text()),
                member(r#""refusal""#, text()),
                member(
                    r#""audio""#,
                    obj(vec![member(r#""transcript""#, text())], 2),
                ),
                member(
                    r#""tool_calls""#,
                    prop::collection::vec(
                        obj(
                            vec![
                                member(r#""function""#, function()),
                                member(r#""x""#, json()),
                            ],
                            3,
                        ),
                        0..3,
                    )
                    .prop_map(J::Arr),
                ),
                member(r#""function_call""#, function()),
                member(r#""x""#, json()),
            ],
            5,
        )
    }

    /// Events shaped like the real ones (chat chunks, Responses API events), with members in
    /// any order, repeated, or of the wrong type, and noise.
    fn shaped() -> BoxedStrategy<J> {
        let text = text_value;
        let delta = message();
        let choice = obj(
            vec![
                member(r#""text""#, text()),
                member(r#""delta""#, delta),
                member(r#""index""#, json()),
            ],
            4,
        );
        let usage = || {
            obj(
                vec![
                    member(r#""prompt_tokens""#, lit(&["3", "2.5"])),
                    member(r#""output_tokens""#, lit(&["4"])),
                ],
                3,
            )
        };
        let tier = || lit(&[r#""flex""#, r#""priority""#, r#""auto""#, "null"]);
        let model = || lit(&[r#""gpt-4o""#, r#""""#, "5"]);
        obj(
            vec![
                member(
                    r#""choices""#,
                    prop_oneof![4 => prop::collection::vec(choice, 0..3).prop_map(J::Arr), 1 => json()],
                ),
                member(r#""model""#, model()),
                member(r#""service_tier""#, tier()),
                member(
                    r#""type""#,
                    lit(&[
                        r#""response.output_text.delta""#,
                        r#""error""#,
                        r#""image_generation.completed""#,
                        r#""response.completed""#,
                    ]),
                ),
                member(r#""delta""#, text()),
                member(r#""usage""#, prop_oneof![usage(), lit(&["null"])]),
                member(
                    r#""response""#,
                    obj(
                        vec![
                            member(r#""model""#, model()),
                            member(r#""service_tier""#, tier()),
                            member(r#""usage""#, usage()),
                            member(r#""output""#, json()),
                        ],
                        4,
                    ),
                ),
                member(
                    r#""error""#,
                    prop_oneof![json(), obj(vec![member(r#""message""#, text())], 2)],
                ),
                member(r#""x""#, json()),
            ],
            7,
        )
    }

    fn event() -> impl Strategy<Value = (String, Option<&'static str>)> {
        let body = prop_oneof![4 => shaped(), 1 => json()].prop_map(|j| {
            let mut out = String::new();
            j.write_with(&mut out, "{", ",");
            out
        });
        let name = prop::option::of(prop::sample::select(
            &[
                "response.output_text.delta",
                "error",
                "image_edit.completed",
            ][..],
        ));
        (body, name)
    }

    #[test]
    fn examples_match_the_value_walk() {
        let events: &[&str] = &[
            r#"{"choices":[{"delta":{"refusal":"b","content":"a"},"text":"t"}],"model":"m"}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{}","name":"f"}}],"function_call":{"name":"g"},"audio":{"transcript":"s"},"content":"c"}}]}"#,
            r#"{"choices":[{"text":"x"}],"choices":5,"model":"gpt-4o"}"#,
            r#"{"type":"response.output_text.delta","delta":"Hi","delta":5}"#,
            r#"{"usage":{"prompt_tokens":3},"choices":[{"text":"late"}]}"#,
            r#"{"response":{"usage":{"output_tokens":2},"model":"r","service_tier":"flex"},"error":{}}"#,
            r#"{"choices":[{"delta":{"content":"\ud800"}}]}"#,
            r#"{"choices":[{"delta":{"content":"é"}}],"x":"\ud800"}"#,
        ];
        for names in [None, Some("error"), Some("response.output_text.delta")] {
            let mut typed = Found::default();
            let mut walked = Found::default();
            for data in events {
                typed.on_event(SseEvent { event: names, data });
                on_event_value(&mut walked, SseEvent { event: names, data });
                assert_eq!(format!("{typed:?}"), format!("{walked:?}"), "{data}");
            }
        }
        let mut typed = Found::default();
        typed.on_event(SseEvent {
            event: None,
            data: events[0],
        });
        // A choice's `text`, then its delta's `content`, then `refusal`.
        assert!(
            format!("{:?}", typed.text).contains(r#"kept: "tab""#),
            "{typed:?}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn typed_events_match_the_value_walk(
            events in prop::collection::vec(event(), 1..5),
        ) {
            let mut typed = Found::default();
            let mut walked = Found::default();
            for (data, name) in &events {
                typed.on_event(SseEvent { event: *name, data });
                on_event_value(&mut walked, SseEvent { event: *name, data });
            }
            prop_assert_eq!(format!("{typed:?}"), format!("{walked:?}"));
        }
    }

    /// JSON response bodies shaped like the real ones (chat completions, Responses API,
    /// images, transcriptions), with members in any order, repeated, or of the wrong type.
    fn shaped_body() -> BoxedStrategy<J> {
        let text = text_value;
        let part = || {
            obj(
                vec![
                    member(r#""text""#, text()),
                    member(r#""refusal""#, text()),
                    member(r#""type""#, json()),
                ],
                3,
            )
        };
        let parts = move || {
            prop_oneof![
                4 => prop::collection::vec(part(), 0..3).prop_map(J::Arr),
                1 => json()
            ]
        };
        let item = obj(
            vec![
                member(r#""arguments""#, text()),
                member(r#""input""#, text()),
                member(r#""content""#, parts()),
                member(r#""summary""#, parts()),
                member(r#""type""#, json()),
            ],
            5,
        );
        let choice = obj(
            vec![
                member(r#""text""#, text()),
                member(r#""message""#, message()),
                member(r#""index""#, json()),
            ],
            4,
        );
        let usage = obj(vec![member(r#""prompt_tokens""#, lit(&["3", "2.5"]))], 2);
        obj(
            vec![
                member(
                    r#""choices""#,
                    prop_oneof![4 => prop::collection::vec(choice, 0..3).prop_map(J::Arr), 1 => json()],
                ),
                member(
                    r#""output""#,
                    prop_oneof![4 => prop::collection::vec(item, 0..3).prop_map(J::Arr), 1 => json()],
                ),
                member(r#""text""#, text()),
                member(r#""data""#, json()),
                member(r#""error""#, json()),
                member(r#""usage""#, prop_oneof![usage, json()]),
                member(r#""model""#, lit(&[r#""gpt-4o""#, r#""""#, "5"])),
                member(
                    r#""service_tier""#,
                    lit(&[r#""flex""#, r#""auto""#, "null"]),
                ),
                member(r#""x""#, json()),
            ],
            7,
        )
    }

    fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
        for endpoint in [Endpoint::Images, Endpoint::ChatCompletions] {
            let mut typed = Found {
                endpoint: Some(endpoint),
                ..Found::default()
            };
            let mut walked = Found {
                endpoint: Some(endpoint),
                ..Found::default()
            };
            let read = BodyData::read(body);
            if let Ok(Some(b)) = &read {
                typed.on_json_body(b);
            }
            let value = serde_json::from_slice::<Value>(body);
            if let Ok(v) = &value {
                on_json_body_value(&mut walked, v);
            }
            prop_assert_eq!(read.is_ok(), value.is_ok());
            prop_assert_eq!(format!("{typed:?}"), format!("{walked:?}"));
        }
        Ok(())
    }

    #[test]
    fn body_examples_match_the_value_walk() {
        for body in [
            &br#"{"output":[{"content":[{"refusal":"r","text":"t"}],"arguments":"a"}],"text":"x","choices":[{"message":{"content":"c"},"text":"d"}]}"#[..],
            br#"{"data":[1,2,3],"data":{},"error":null,"model":"m","service_tier":"flex"}"#,
            br#"[1,2]"#,
            br#"{"usage":{"prompt_tokens":3},"choices":[{"text":"skipped"}]}"#,
            br#"{"choices":[{"text":"a"}],"choices":[{"text":"b"}],"error":{"message":"x"}}"#,
            br#"{"text":"\ud800"}"#,
            b"{\"text\":\"\xff\"}",
        ] {
            check_body(body).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        #[test]
        fn typed_bodies_match_the_value_walk(
            body in prop_oneof![4 => shaped_body(), 1 => json()],
        ) {
            let mut out = String::new();
            body.write_with(&mut out, "{", ",");
            check_body(out.as_bytes())?;
        }
    }
}

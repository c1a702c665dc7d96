//! What a response said: its model, tier, usage block, output text, images and errors, read
//! from a JSON body (or its tail) and from SSE events of every API.

use serde_json::Value;

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

    fn apply_usage(&mut self, u: &Usage) {
        self.usage = Some(u.clone());
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
            self.apply_usage(&parse_usage(&u));
        }
        let model = last_member(tail, b"\"model\"", Value::is_string);
        self.set_model(model.as_ref());
        let tier = last_member(tail, b"\"service_tier\"", Value::is_string);
        self.set_tier(tier.as_ref());
    }

    /// Reads one event; returns whether it is a usage-only chat chunk: a JSON object with
    /// `"choices": []` and a non-null `usage` (what the usage-chunk stripper removes).
    pub(super) fn on_event(&mut self, e: SseEvent<'_>) -> bool {
        let data = e.data.trim();
        if data.is_empty() || data == "[DONE]" {
            return false;
        }
        let Ok(event) = EventData::read(data) else {
            self.malformed_events += 1;
            return false;
        };
        // Only JSON's own whitespace around the object (`trim` also takes Unicode spaces).
        let json_ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
        let usage_only = event.choices_empty
            && event.usage_non_null
            && e.data.trim_matches(json_ws).len() == data.len();
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
        usage_only
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
mod oracle;

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::*;
    use super::*;

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
}

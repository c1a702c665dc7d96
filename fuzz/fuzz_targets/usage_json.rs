//! Arbitrary bytes as a response body (`UsageMeter::json`), a request body
//! (`RequestInfo::parse`, multipart too) and into `rewrite_include_usage`: never panics, and
//! a rewritten body is JSON with `stream_options.include_usage: true`.
#![no_main]

use budget_core::usage::{rewrite_include_usage, Endpoint, RequestInfo, UsageMeter};
use libfuzzer_sys::fuzz_target;

const ENDPOINTS: [Endpoint; 9] = [
    Endpoint::ChatCompletions,
    Endpoint::Completions,
    Endpoint::Embeddings,
    Endpoint::Responses,
    Endpoint::Images,
    Endpoint::AudioTranscription,
    Endpoint::AudioSpeech,
    Endpoint::Moderations,
    Endpoint::Other,
];

fuzz_target!(|data: &[u8]| {
    let endpoint = ENDPOINTS[data
        .first()
        .map_or(0, |b| usize::from(*b) % ENDPOINTS.len())];

    let info = RequestInfo::parse(endpoint, data);
    assert_eq!(info.endpoint, endpoint);
    assert!(info.input_text.len() <= budget_core::usage::MAX_INPUT_TEXT);
    let _ = info.estimate_prompt_tokens();
    let form = RequestInfo::parse_with_content_type(
        endpoint,
        Some("multipart/form-data; boundary=x"),
        data,
    );
    let _ = form.estimate_prompt_tokens();

    let mut meter = UsageMeter::json(&info).with_max_event_bytes(512);
    let mid = data.len() / 2;
    meter.feed(&data[..mid]);
    meter.feed(&data[mid..]);
    let split = meter.finish();
    let mut meter = UsageMeter::json(&info).with_max_event_bytes(512);
    meter.feed(data);
    assert_eq!(meter.finish(), split);

    if let Some(out) = rewrite_include_usage(data) {
        let v: serde_json::Value = serde_json::from_slice(&out).expect("rewrite is JSON");
        assert_eq!(
            v["stream_options"]["include_usage"],
            serde_json::Value::Bool(true)
        );
        assert_eq!(v["stream"], serde_json::Value::Bool(true));
        assert_eq!(rewrite_include_usage(&out), None, "rewrite is idempotent");
    }
});

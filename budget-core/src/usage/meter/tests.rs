//! The meter's examples and property tests.

use super::super::ServiceTier;
use super::fixtures::*;
use super::*;
use proptest::prelude::*;

#[test]
fn a_given_prompt_estimate_is_used_for_the_same_tokenizer_only() {
    let info = chat_info(true);
    let counted = info.estimate_prompt_tokens();
    let fake = PromptEstimate::for_tests(info.model.as_deref(), counted + 1000);
    // Cut off before any usage: the prompt comes from the estimate given.
    let mut m = UsageMeter::sse(&info).with_prompt_estimate(fake);
    m.feed(chunk("Hello").as_bytes());
    assert_eq!(m.finish().prompt_tokens, counted + 1000);
    // A response model with another tokenizer: counted again, with that one.
    let other = PromptEstimate::for_tests(Some("gpt-3.5-turbo"), 1);
    let mut m = UsageMeter::sse(&info).with_prompt_estimate(other);
    m.feed(chunk("Hello").as_bytes());
    assert_eq!(m.finish().prompt_tokens, counted);
}

#[test]
fn finish_is_costly_only_when_it_would_tokenize_much() {
    let small = chat_info(true);
    let mut m = UsageMeter::sse(&small);
    m.feed(chunk("Hello").as_bytes());
    assert!(!m.finish_is_costly());
    let long = "word ".repeat(COSTLY_TOKENIZE_BYTES / 4);
    let body = format!(
        r#"{{"model":"gpt-4o","stream":true,"messages":[{{"role":"user","content":"{long}"}}]}}"#
    );
    let big = RequestInfo::parse(Endpoint::ChatCompletions, body.as_bytes());
    assert!(big.prompt_estimate_is_costly());
    let m = UsageMeter::sse(&big);
    assert!(m.finish_is_costly());
    // Estimated already: only the delivered text would be counted.
    let estimate = big.prompt_estimate();
    let mut m = UsageMeter::sse(&big).with_prompt_estimate(estimate);
    assert!(!m.finish_is_costly());
    m.feed(chunk(&long).as_bytes());
    assert!(m.finish_is_costly());
    // A usage block makes every estimate unnecessary.
    m.feed(USAGE_CHUNK.as_bytes());
    assert!(!m.finish_is_costly());
}

#[test]
fn meter_is_send_static() {
    fn assert_send_static<T: Send + 'static>() {}
    assert_send_static::<UsageMeter>();
}

#[test]
fn chat_sse_with_usage() {
    let info = chat_info(true);
    let mut m = UsageMeter::for_content_type(&info, Some("text/event-stream; charset=utf-8"));
    m.feed(chat_stream(true).as_bytes());
    assert!(m.saw_usage());
    let u = m.finish();
    assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.total_tokens()),
        (11, 2, 13)
    );
    assert_eq!(u.service_tier, ServiceTier::Default);
    assert!(!u.estimated);
}

#[test]
fn chat_sse_without_usage_is_estimated() {
    let info = chat_info(true);
    let u = run_whole(UsageMeter::sse(&info), &chat_stream(false));
    assert!(u.estimated);
    assert!((2..=3).contains(&u.completion_tokens), "{u:?}");
    // "Say hello world" = 3 tokens + 3 per message + 3 priming.
    assert!((8..=12).contains(&u.prompt_tokens), "{u:?}");
    assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));

    // Client hung up mid-stream: what was delivered is counted.
    let s = chat_stream(true);
    let cut = s.find(" world").unwrap();
    let u = run_whole(UsageMeter::sse(&info), &s[..cut]);
    assert!(u.estimated);
    assert_eq!(u.completion_tokens, 1);
}

#[test]
fn azure_first_chunk_model_is_ignored() {
    // Azure deployment path: no model in the request.
    let info = RequestInfo::parse(
        Endpoint::ChatCompletions,
        br#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    let u = run_whole(UsageMeter::sse(&info), AZURE_FIRST);
    assert_eq!(u.model, None);
    let u = run_whole(UsageMeter::sse(&info), &chat_stream(true));
    assert_eq!(u.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
}

#[test]
fn chat_json() {
    let info = chat_info(false);
    let body = r#"{
  "id": "chatcmpl-abc", "object": "chat.completion", "created": 1741569952,
  "model": "o3-mini-2025-01-31",
  "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null,
  "annotations": []}, "logprobs": null, "finish_reason": "stop"}],
  "usage": {"prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
"prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 7},
"completion_tokens_details": {"reasoning_tokens": 30, "audio_tokens": 3,
  "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
  "service_tier": "priority"
}"#;
    let mut m = UsageMeter::json(&info);
    m.feed(&body.as_bytes()[..100]);
    assert!(!m.saw_usage());
    m.feed(&body.as_bytes()[100..]);
    assert!(m.saw_usage());
    let u = m.finish();
    assert_eq!(
        u,
        Usage {
            model: Some("o3-mini-2025-01-31".into()),
            prompt_tokens: 1117,
            cached_tokens: 1024,
            completion_tokens: 46,
            reasoning_tokens: 30,
            audio_prompt_tokens: 7,
            audio_completion_tokens: 3,
            service_tier: ServiceTier::Priority,
            ..Usage::default()
        }
    );
}

#[test]
fn chat_json_without_usage_and_truncated() {
    let info = chat_info(false);
    let body = r#"{"id":"x","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello world"}}]}"#;
    let u = run_whole(UsageMeter::json(&info), body);
    assert!(u.estimated);
    assert_eq!(u.completion_tokens, 2);
    let u = run_whole(UsageMeter::json(&info), &body[..60]);
    assert!(u.estimated && u.completion_tokens > 0);
    // Not JSON at all.
    let u = run_whole(UsageMeter::json(&info), "<html>bad gateway</html>");
    assert!(u.estimated);
    // Error bodies are billed nothing.
    let u = run_whole(
        UsageMeter::json(&info),
        r#"{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.estimated),
        (0, 0, false)
    );
}

#[test]
fn legacy_completions() {
    let info = RequestInfo::parse(
        Endpoint::Completions,
        br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","stream":true}"#,
    );
    let s = "data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\"This\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}],\"model\":\"gpt-3.5-turbo-instruct\"}\n\n\
data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\" is a test\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"model\":\"gpt-3.5-turbo-instruct\"}\n\n\
data: [DONE]\n\n";
    let u = run_whole(UsageMeter::sse(&info), s);
    assert!(u.estimated);
    assert_eq!(u.completion_tokens, 4);
    assert_eq!(u.prompt_tokens, 5);
    let json = r#"{"id":"cmpl-1","object":"text_completion","model":"gpt-3.5-turbo-instruct","choices":[{"text":"This is a test","index":0}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#;
    let u = run_whole(UsageMeter::json(&info), json);
    assert_eq!(
        (u.prompt_tokens, u.completion_tokens, u.estimated),
        (5, 7, false)
    );
}

#[test]
fn oversized_sse_event_is_skipped() {
    let info = chat_info(true);
    let s = format!(
        "{}{}{}",
        chunk(&"x".repeat(5000)),
        chunk("Hello"),
        USAGE_CHUNK
    );
    let mut m = UsageMeter::sse(&info).with_max_event_bytes(2000);
    m.feed(s.as_bytes());
    assert_eq!(m.skipped_events(), 1);
    assert_eq!(m.finish().prompt_tokens, 11);
}

#[test]
fn json_meter_switches_to_sse_for_streams() {
    let info = chat_info(true);
    let s = chat_stream(true);
    let u = run(UsageMeter::json(&info), &[b"\n", s.as_bytes()]);
    assert_eq!((u.prompt_tokens, u.estimated), (11, false));
}

proptest! {
    #[test]
    fn sse_usage_is_split_invariant(
        cuts in proptest::collection::vec(0usize..10_000, 0..16),
        with_usage in any::<bool>(),
        crlf in any::<bool>(),
    ) {
        let info = chat_info(true);
        for (info, mut s) in [
            (info.clone(), chat_stream(with_usage)),
            (responses_info(), RESPONSES_SSE.to_string()),
        ] {
            if crlf {
                s = s.replace('\n', "\r\n");
            }
            let pieces = split(s.as_bytes(), &cuts);
            let refs: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
            let whole = run_whole(UsageMeter::sse(&info), &s);
            let lf = run_whole(UsageMeter::sse(&info), &s.replace("\r\n", "\n"));
            prop_assert_eq!(&run(UsageMeter::sse(&info), &refs), &whole);
            prop_assert_eq!(&whole, &lf);
        }
    }

    #[test]
    fn arbitrary_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let info = chat_info(true);
        let _ = run_whole(UsageMeter::json(&info), &String::from_utf8_lossy(&body));
        let _ = run(UsageMeter::sse(&info).with_max_event_bytes(64), &[&body]);
    }
}

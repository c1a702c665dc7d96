//! The mock over real sockets: shapes, streaming, pacing, Azure, hooks, recording, the binary.

mod common;

use std::io::BufRead as _;
use std::time::Duration;

use budget_mock_upstream::{
    completion_text, image_output_tokens, prompt_tokens_for, transcription_audio_tokens,
    transcription_seconds, usage_for, MockOptions, MockUpstream,
};
use common::{post, post_azure, send, send_until_quiet};
use serde_json::{json, Value};

async fn mock(opts: MockOptions) -> MockUpstream {
    MockUpstream::start(opts).await.expect("start")
}

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello politely"}]},
    ]});
    if stream {
        body["stream"] = json!(true);
    }
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn chat_json_has_usage_and_resolved_model() {
    let up = mock(MockOptions::default()).await;
    let body = chat_body(false, false);
    let answer = post(up.addr(), "/v1/chat/completions", &body).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert!(answer.header("content-length").is_some());
    assert!(answer.header("x-request-id").unwrap().starts_with("req_"));
    let json = answer.json();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "gpt-4o-2024-08-06");
    assert!(json["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(json["created"].as_u64().unwrap() > 1_700_000_000);
    assert!(json["system_fingerprint"].is_string());
    assert_eq!(
        json["choices"][0]["message"]["content"],
        completion_text(8).concat()
    );
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    let expected = usage_for(&body, 8);
    assert_eq!(prompt_tokens_for(&body), 3 + (4 + 3) + (4 + 3));
    let usage = &json["usage"];
    assert_eq!(usage["prompt_tokens"], expected.prompt_tokens);
    assert_eq!(usage["completion_tokens"], 8);
    assert_eq!(usage["total_tokens"], expected.prompt_tokens + 8);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
}

#[tokio::test]
async fn limits_choices_and_reasoning_shape_the_usage() {
    let up = mock(MockOptions::default()).await;
    let body = json!({"model": "o3-mini", "n": 2, "max_completion_tokens": 20,
        "messages": [{"role": "user", "content": "hi"}]});
    let json = post(up.addr(), "/v1/chat/completions", &body).await.json();
    assert_eq!(json["model"], "o3-mini-2025-01-31");
    assert_eq!(json["choices"].as_array().unwrap().len(), 2);
    assert_eq!(json["choices"][1]["finish_reason"], "length");
    assert_eq!(json["usage"]["completion_tokens"], 2 * 20);
    assert_eq!(
        json["usage"]["completion_tokens_details"]["reasoning_tokens"],
        2 * 16
    );
    let unknown = post(
        up.addr(),
        "/v1/chat/completions",
        &json!({"model": "my-model", "messages": []}),
    )
    .await;
    assert_eq!(unknown.json()["model"], "my-model");
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_and_ends_with_done() {
    let up = mock(MockOptions::default()).await;
    let answer = post(up.addr(), "/v1/chat/completions", &chat_body(true, false)).await;
    assert_eq!(answer.status(), 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(answer.header("content-length").is_none());
    assert!(!answer.text().contains("usage"));
    let events = answer.events();
    assert_eq!(events.last().unwrap().1, "[DONE]");
    let chunks = answer.chunks();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, completion_text(8).concat());
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    // role + 8 deltas + finish + [DONE], each its own event.
    assert_eq!(events.len(), 11);
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_a_usage_chunk_without_choices() {
    let up = mock(MockOptions::default().with_deltas(5)).await;
    let body = chat_body(true, true);
    let answer = post(up.addr(), "/v1/chat/completions", &body).await;
    let chunks = answer.chunks();
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    let expected = usage_for(&body, 5);
    assert_eq!(last["usage"]["prompt_tokens"], expected.prompt_tokens);
    assert_eq!(last["usage"]["completion_tokens"], 5);
    assert_eq!(last["usage"]["total_tokens"], expected.total_tokens);
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["usage"].is_null()));
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    assert_eq!(answer.events().last().unwrap().1, "[DONE]");
}

#[tokio::test]
async fn events_arrive_incrementally_with_chunk_delay() {
    let delay = Duration::from_millis(40);
    let up = mock(
        MockOptions::default()
            .with_deltas(4)
            .with_chunk_delay(delay),
    )
    .await;
    let answer = post(up.addr(), "/v1/chat/completions", &chat_body(true, false)).await;
    // role + 4 deltas + finish + [DONE] = 7 events, 6 pauses.
    assert_eq!(answer.frames.len(), 7, "one frame per event");
    let first = answer.frames.first().unwrap().0;
    let last = answer.frames.last().unwrap().0;
    assert!(
        first - answer.sent_at < delay * 2,
        "first event is not held back"
    );
    assert!(
        last - first >= delay * 6 - Duration::from_millis(5),
        "gap {:?}",
        last - first
    );
    for pair in answer.frames.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= delay - Duration::from_millis(5));
    }
}

#[tokio::test]
async fn split_events_cut_mid_utf8_and_between_cr_and_lf() {
    let up = mock(
        MockOptions::default()
            .with_split_events(true)
            .with_crlf(true),
    )
    .await;
    let answer = post(up.addr(), "/v1/chat/completions", &chat_body(true, true)).await;
    assert!(answer.frames.len() > 3 * answer.events().len());
    assert!(
        answer
            .frames
            .iter()
            .any(|(_, f)| std::str::from_utf8(f).is_err()),
        "a frame ends mid-UTF-8"
    );
    assert!(
        answer.frames.iter().any(|(_, f)| f.ends_with(b"\r")),
        "a frame ends between \\r and \\n"
    );
    assert!(answer.text().starts_with(": keep-alive\r\n\r\n"));
    let content: String = answer
        .chunks()
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(content, completion_text(8).concat());
}

#[tokio::test]
async fn legacy_completions_stream_text() {
    let up = mock(MockOptions::default().with_deltas(3)).await;
    let body = json!({"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon a time", "stream": true,
        "stream_options": {"include_usage": true}});
    let answer = post(up.addr(), "/v1/completions", &body).await;
    let chunks = answer.chunks();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, completion_text(3).concat());
    assert_eq!(chunks[0]["object"], "text_completion");
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 4);
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 3);
}

#[tokio::test]
async fn responses_json_and_stream_carry_usage() {
    let up = mock(MockOptions::default().with_deltas(4)).await;
    let body =
        json!({"model": "gpt-4o-mini", "instructions": "Be brief.", "input": "Tell me a joke"});
    let json = post(up.addr(), "/v1/responses", &body).await.json();
    assert_eq!(json["object"], "response");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["model"], "gpt-4o-mini-2024-07-18");
    assert_eq!(
        json["output"][0]["content"][0]["text"],
        completion_text(4).concat()
    );
    assert_eq!(json["usage"]["input_tokens"], (4 + 2) + 4);
    assert_eq!(json["usage"]["output_tokens"], 4);

    let mut body = body;
    body["stream"] = json!(true);
    let answer = post(up.addr(), "/v1/responses", &body).await;
    let events = answer.events();
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_deref().unwrap()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let datas: Vec<Value> = events
        .iter()
        .map(|(_, d)| serde_json::from_str(d).unwrap())
        .collect();
    for (i, (data, name)) in datas.iter().zip(&names).enumerate() {
        assert_eq!(data["sequence_number"], i);
        assert_eq!(data["type"], *name);
    }
    assert!(datas[0]["response"]["usage"].is_null());
    let usage = &datas.last().unwrap()["response"]["usage"];
    assert_eq!(usage["input_tokens"], 10);
    assert_eq!(usage["input_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["output_tokens"], 4);
    assert_eq!(usage["output_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(usage["total_tokens"], 14);
}

#[tokio::test]
async fn azure_stream_starts_with_the_prompt_filter_chunk() {
    let up = mock(MockOptions::default()).await;
    let path = "/openai/deployments/prod-chat/chat/completions?api-version=2024-10-21";
    let answer = post_azure(up.addr(), path, &chat_body(true, true)).await;
    assert_eq!(answer.status(), 200);
    assert!(answer.header("apim-request-id").is_some());
    let chunks = answer.chunks();
    assert_eq!(chunks[0]["choices"], json!([]));
    assert_eq!(chunks[0]["model"], "");
    assert!(chunks[0]["prompt_filter_results"][0]["content_filter_results"].is_object());
    assert_eq!(chunks[1]["model"], "gpt-4o-2024-08-06");
    assert!(chunks[2]["choices"][0]["content_filter_results"]["hate"].is_object());
    assert!(
        chunks.last().unwrap()["usage"]["total_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    let json = post_azure(up.addr(), path, &chat_body(false, false))
        .await
        .json();
    assert_eq!(json["model"], "gpt-4o-2024-08-06");
    assert!(json["prompt_filter_results"].is_array());
    assert!(json["choices"][0]["content_filter_results"].is_object());

    let v1 = post_azure(
        up.addr(),
        "/openai/v1/chat/completions",
        &chat_body(false, false),
    )
    .await;
    assert_eq!(v1.json()["model"], "gpt-4o-2024-08-06");
    let embeddings = post_azure(
        up.addr(),
        "/openai/deployments/emb/embeddings?api-version=2024-10-21",
        &json!({"input": "a b c"}),
    )
    .await
    .json();
    assert_eq!(embeddings["model"], "text-embedding-3-small");
    assert_eq!(embeddings["usage"]["prompt_tokens"], 3);

    let no_version = post_azure(
        up.addr(),
        "/openai/deployments/prod-chat/chat/completions",
        &chat_body(false, false),
    )
    .await;
    assert_eq!(no_version.status(), 404);
}

#[tokio::test]
async fn missing_key_is_401_in_openai_shape() {
    let up = mock(MockOptions::default()).await;
    let body = chat_body(false, false).to_string().into_bytes();
    let answer = send(
        up.addr(),
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
        body.clone(),
    )
    .await;
    assert_eq!(answer.status(), 401);
    let error = &answer.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "invalid_api_key");
    assert!(error["param"].is_null());
    assert!(error["message"].is_string());
    // `api-key` is Azure's header, not OpenAI's.
    let answer = send(
        up.addr(),
        "POST",
        "/v1/chat/completions",
        &[("api-key", "k")],
        body.clone(),
    )
    .await;
    assert_eq!(answer.status(), 401);
    let azure = send(up.addr(), "POST", "/openai/v1/chat/completions", &[], body).await;
    assert_eq!(azure.status(), 401);
    assert_eq!(
        send(
            up.addr(),
            "GET",
            "/v1/nope",
            &[("authorization", "Bearer k")],
            vec![]
        )
        .await
        .status(),
        404
    );
    let preflight = send(up.addr(), "OPTIONS", "/v1/chat/completions", &[], vec![]).await;
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn requests_records_headers_and_body() {
    let up = mock(MockOptions::default()).await;
    let body = chat_body(true, true);
    post(up.addr(), "/prefix/v1/chat/completions?x=1", &body).await;
    assert_eq!(up.request_count(), 1);
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/prefix/v1/chat/completions?x=1");
    assert_eq!(seen[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(seen[0].json().unwrap(), body);
    assert_eq!(
        seen[0].json().unwrap()["stream_options"]["include_usage"],
        true
    );
    assert!(seen[0].header("connection").is_none());
    up.reset();
    assert_eq!((up.request_count(), up.requests().len()), (0, 0));
}

#[tokio::test]
async fn error_hooks_and_fail_with() {
    let up = mock(MockOptions::default()).await;
    let rate = post(
        up.addr(),
        "/v1/chat/completions",
        &json!({"model": "mock-error-429", "messages": []}),
    )
    .await;
    assert_eq!(rate.status(), 429);
    assert_eq!(rate.header("x-should-retry"), Some("false"));
    assert!(rate.header("retry-after").is_some());
    assert_eq!(rate.json()["error"]["code"], "rate_limit_exceeded");
    let boom = post(
        up.addr(),
        "/v1/chat/completions",
        &json!({"model": "mock-error-500", "messages": []}),
    )
    .await;
    assert_eq!(boom.status(), 500);
    assert_eq!(boom.json()["error"]["type"], "server_error");
    let unpriced = post(
        up.addr(),
        "/v1/chat/completions",
        &json!({"model": "mock-unpriced-model", "messages": []}),
    )
    .await;
    assert_eq!(unpriced.json()["model"], "mock-unpriced-model");

    let failing = mock(MockOptions::default().with_fail_with(503)).await;
    let answer = post(
        failing.addr(),
        "/v1/chat/completions",
        &chat_body(false, false),
    )
    .await;
    assert_eq!(answer.status(), 503);
    assert!(answer.json()["error"]["message"].is_string());
}

#[tokio::test]
async fn slow_and_hang_hooks() {
    let up = mock(MockOptions::default()).await;
    let slow = post(
        up.addr(),
        "/v1/chat/completions",
        &json!({"model": "mock-slow", "messages": []}),
    )
    .await;
    assert!(slow.frames[0].0 - slow.sent_at >= Duration::from_secs(2));
    assert_eq!(slow.status(), 200);

    let body = json!({"model": "mock-hang", "stream": true, "messages": []});
    let (answer, ended) = send_until_quiet(
        up.addr(),
        "/v1/chat/completions",
        body,
        Duration::from_millis(300),
    )
    .await;
    assert!(!ended, "a hanging stream never ends");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.frames.len(), 1);
}

#[tokio::test]
async fn embeddings_images_transcriptions_and_models() {
    let up = mock(MockOptions::default().with_deltas(3)).await;
    let emb = post(
        up.addr(),
        "/v1/embeddings",
        &json!({"model": "text-embedding-3-small",
        "input": ["one two", "three"], "encoding_format": "base64", "dimensions": 4}),
    )
    .await
    .json();
    assert_eq!(emb["data"].as_array().unwrap().len(), 2);
    assert_eq!(emb["data"][1]["embedding"].as_str().unwrap().len(), 24); // 16 bytes → 24 chars
    assert_eq!(emb["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));

    let img = post(
        up.addr(),
        "/v1/images/generations",
        &json!({"model": "gpt-image-1",
        "prompt": "a red fox", "n": 2, "quality": "low"}),
    )
    .await
    .json();
    assert_eq!(img["usage"]["input_tokens"], 3);
    assert_eq!(
        img["usage"]["output_tokens"],
        2 * image_output_tokens("low", "1024x1024")
    );
    assert!(img["data"][0]["b64_json"].is_string());

    let audio = vec![7u8; 40_000];
    for (model, expected_usage) in [
        (
            "whisper-1",
            json!({"type": "duration", "seconds": transcription_seconds(audio.len())}),
        ),
        (
            "gpt-4o-transcribe",
            json!({"type": "tokens",
            "input_tokens": transcription_audio_tokens(audio.len()),
            "input_token_details": {"text_tokens": 0, "audio_tokens": transcription_audio_tokens(audio.len())},
            "output_tokens": 3,
            "total_tokens": transcription_audio_tokens(audio.len()) + 3}),
        ),
    ] {
        let mut form = Vec::new();
        form.extend_from_slice(
            format!("--BOUND\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n{model}\r\n")
                .as_bytes(),
        );
        form.extend_from_slice(b"--BOUND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n");
        form.extend_from_slice(&audio);
        form.extend_from_slice(b"\r\n--BOUND--\r\n");
        let answer = send(
            up.addr(),
            "POST",
            "/v1/audio/transcriptions",
            &[
                ("authorization", "Bearer k"),
                ("content-type", "multipart/form-data; boundary=BOUND"),
            ],
            form,
        )
        .await;
        assert_eq!(answer.status(), 200, "{}", answer.text());
        let json = answer.json();
        assert_eq!(json["text"], completion_text(3).concat());
        assert_eq!(json["usage"], expected_usage);
    }

    let models = send(
        up.addr(),
        "GET",
        "/v1/models",
        &[("authorization", "Bearer k")],
        vec![],
    )
    .await
    .json();
    assert_eq!(models["object"], "list");
    assert!(models["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["id"] == "gpt-4o"));
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let up = mock(MockOptions::default()).await;
    let addr = up.addr();
    assert_eq!(up.url(), format!("http://{addr}"));
    up.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn binary_prints_its_address_first() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_budget-mock-upstream"))
        .args(["--addr", "127.0.0.1:0", "--deltas", "2"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the binary");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("first line")
        .parse()
        .unwrap();
    let json = post(addr, "/v1/chat/completions", &chat_body(false, false))
        .await
        .json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(json["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn accepted_keys_refuse_every_other_key() {
    let up =
        mock(MockOptions::default().with_accepted_keys(["sk-server-held-0001", "az-held"])).await;
    let body = chat_body(false, false).to_string().into_bytes();
    let with = |headers: &'static [(&'static str, &'static str)], path: &'static str| {
        let body = body.clone();
        let addr = up.addr();
        async move { send(addr, "POST", path, headers, body).await }
    };

    let ok = with(
        &[("authorization", "Bearer sk-server-held-0001")],
        "/v1/chat/completions",
    )
    .await;
    assert_eq!(ok.status(), 200, "{}", ok.text());

    let wrong = with(
        &[("authorization", "Bearer sk-client-real-looking-key-abcd")],
        "/v1/chat/completions",
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let error = &wrong.json()["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "invalid_api_key");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("Incorrect API key provided: sk-clien*"),
        "{message}"
    );
    assert!(message.contains("*abcd."), "{message}");
    assert!(
        !message.contains("real-looking"),
        "the key is masked: {message}"
    );

    // OpenAI paths read the Bearer key only: an accepted `api-key` does not help.
    let api_key_only = with(&[("api-key", "az-held")], "/v1/chat/completions").await;
    assert_eq!(api_key_only.status(), 401);

    // Azure: the accepted `api-key` works; a wrong one, or a wrong Bearer beside it, does not.
    let azure = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";
    assert_eq!(with(&[("api-key", "az-held")], azure).await.status(), 200);
    assert_eq!(
        with(&[("authorization", "Bearer az-held")], azure)
            .await
            .status(),
        200
    );
    assert_eq!(with(&[("api-key", "az-client")], azure).await.status(), 401);
    let both = with(
        &[
            ("api-key", "az-held"),
            ("authorization", "Bearer sk-client"),
        ],
        azure,
    )
    .await;
    assert_eq!(both.status(), 401);
    assert_eq!(both.json()["error"]["code"], "invalid_api_key");
    // No key at all is still "You didn't provide an API key".
    let none = with(&[], "/v1/chat/completions").await;
    assert_eq!(none.status(), 401);
    assert!(none.json()["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("You didn't provide an API key"));
}

#[tokio::test]
async fn seen_keys_lists_distinct_credential_headers_in_order() {
    let up = mock(MockOptions::default().with_record(false)).await;
    let body = chat_body(false, false).to_string().into_bytes();
    for headers in [
        &[("authorization", "Bearer sk-one")][..],
        &[
            ("authorization", "Bearer sk-two"),
            ("openai-organization", "org-x"),
        ][..],
        &[
            ("authorization", "Bearer sk-one"),
            ("openai-project", "proj_y"),
        ][..],
        &[("api-key", "az-1")][..],
    ] {
        send(
            up.addr(),
            "POST",
            "/v1/chat/completions",
            headers,
            body.clone(),
        )
        .await;
    }
    // Refused requests count too: the key reached the upstream.
    send(up.addr(), "GET", "/v1/nope", &[("api-key", "az-2")], vec![]).await;

    let seen = up.seen_keys();
    assert_eq!(seen.authorization, ["Bearer sk-one", "Bearer sk-two"]);
    assert_eq!(seen.api_key, ["az-1", "az-2"]);
    assert_eq!(seen.openai_organization, ["org-x"]);
    assert_eq!(seen.openai_project, ["proj_y"]);
    assert!(seen.contains("sk-two") && !seen.contains("sk-three"));
    assert_eq!(seen.values("API-Key").unwrap(), ["az-1", "az-2"]);
    assert_eq!(up.request_count(), 5);
    assert!(up.requests().is_empty(), "recording is off");

    // The same over HTTP, for a mock in another process; that request is not counted and its
    // own headers are not kept.
    let answer = send(
        up.addr(),
        "GET",
        "/mock/seen-keys",
        &[("authorization", "Bearer sk-inspector")],
        vec![],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(
        answer.json(),
        json!({
            "authorization": ["Bearer sk-one", "Bearer sk-two"],
            "api-key": ["az-1", "az-2"],
            "openai-organization": ["org-x"],
            "openai-project": ["proj_y"],
        })
    );
    assert_eq!(up.request_count(), 5);
    assert!(!up.seen_keys().contains("sk-inspector"));
    assert_eq!(
        send(up.addr(), "POST", "/mock/seen-keys", &[], vec![])
            .await
            .status(),
        404
    );
    // Only the exact path: under a prefix it is an unknown OpenAI path.
    assert_eq!(
        send(up.addr(), "GET", "/v1/mock/seen-keys", &[], vec![])
            .await
            .status(),
        404
    );

    up.reset();
    assert_eq!(up.seen_keys(), budget_mock_upstream::SeenKeys::default());
}

#[tokio::test]
async fn binary_accept_key_and_seen_keys() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_budget-mock-upstream"))
        .args([
            "--addr",
            "127.0.0.1:0",
            "--accept-key",
            "sk-held-1",
            "--accept-key",
            "sk-held-2",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the binary");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("first line")
        .parse()
        .unwrap();
    let body = chat_body(false, false).to_string().into_bytes();
    let mut statuses = Vec::new();
    for key in ["Bearer sk-held-2", "Bearer sk-client", "Bearer sk-held-1"] {
        let answer = send(
            addr,
            "POST",
            "/v1/chat/completions",
            &[("authorization", key)],
            body.clone(),
        )
        .await;
        statuses.push(answer.status());
    }
    let seen = send(addr, "GET", "/mock/seen-keys", &[], vec![])
        .await
        .json();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(statuses, [200, 401, 200]);
    assert_eq!(
        seen["authorization"],
        json!(["Bearer sk-held-2", "Bearer sk-client", "Bearer sk-held-1"])
    );
    assert_eq!(seen["api-key"], json!([]));
}

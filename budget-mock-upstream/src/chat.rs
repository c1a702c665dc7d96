//! Chat completions and legacy completions, in OpenAI's and Azure's shapes.

use std::fmt::Write as _;

use hyper::Response;

use crate::body::{data_event, done_event, MockBody};
use crate::call::{Call, CONTENT_FILTER_RESULTS, FINGERPRINT, PROMPT_FILTER_RESULTS};
use crate::errors::js;
use crate::tokens::pieces;

/// `POST …/chat/completions`.
pub(crate) fn chat_completion(call: &Call<'_>) -> Response<MockBody> {
    if call.stream {
        call.sse_response(chat_events(call))
    } else {
        call.json_response(chat_json(call))
    }
}

/// `POST …/completions` (legacy).
pub(crate) fn text_completion(call: &Call<'_>) -> Response<MockBody> {
    if call.stream {
        call.sse_response(text_events(call))
    } else {
        call.json_response(text_json(call))
    }
}

fn text_of(call: &Call<'_>) -> String {
    pieces(call.usage.visible_deltas).collect()
}

fn chat_json(call: &Call<'_>) -> String {
    let content = js(&text_of(call));
    let mut out = format!(
        r#"{{"id":"chatcmpl-mock{:016x}","object":"chat.completion","created":{},"model":{},"choices":["#,
        call.seq,
        call.created,
        js(call.model)
    );
    for i in 0..call.usage.choices {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"index":{i},"message":{{"role":"assistant","content":{content},"refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"{}""#,
            call.finish_reason()
        );
        if call.azure {
            let _ = write!(out, r#","content_filter_results":{CONTENT_FILTER_RESULTS}"#);
        }
        out.push('}');
    }
    let _ = write!(out, r#"],"usage":{}"#, call.chat_usage_json());
    if call.azure {
        let _ = write!(out, r#","prompt_filter_results":{PROMPT_FILTER_RESULTS}"#);
    } else {
        out.push_str(r#","service_tier":"default""#);
    }
    let _ = write!(out, r#","system_fingerprint":"{FINGERPRINT}"}}"#);
    out
}

/// Azure's first stream event: empty `choices`, empty `model`, the prompt filter results.
fn azure_prompt_filter_event() -> String {
    data_event(&format!(
        r#"{{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":{PROMPT_FILTER_RESULTS}}}"#
    ))
}

/// Chat stream: (Azure: the prompt-filter chunk,) per choice a role chunk, the content deltas,
/// a finish chunk; the usage chunk only with `include_usage`; `[DONE]`.
fn chat_events(call: &Call<'_>) -> Vec<String> {
    let choices = call.usage.choices;
    let deltas = call.usage.visible_deltas;
    let mut events = Vec::with_capacity((deltas + 2) * choices as usize + 3);
    if call.azure {
        events.push(azure_prompt_filter_event());
    }
    let head = format!(
        r#"{{"id":"chatcmpl-mock{:016x}","object":"chat.completion.chunk","created":{},"model":{},{}"system_fingerprint":"{FINGERPRINT}","choices":["#,
        call.seq,
        call.created,
        js(call.model),
        if call.azure {
            ""
        } else {
            r#""service_tier":"default","#
        },
    );
    let tail = if call.include_usage {
        r#"],"usage":null}"#
    } else {
        "]}"
    };
    let filter = |full: bool| match (call.azure, full) {
        (false, _) => String::new(),
        (true, false) => r#","content_filter_results":{}"#.to_owned(),
        (true, true) => format!(r#","content_filter_results":{CONTENT_FILTER_RESULTS}"#),
    };
    let chunk = |choice: String| data_event(&format!("{head}{choice}{tail}"));
    for i in 0..choices {
        events.push(chunk(format!(
            r#"{{"index":{i},"delta":{{"role":"assistant","content":"","refusal":null}},"logprobs":null,"finish_reason":null{}}}"#,
            filter(false)
        )));
    }
    for piece in pieces(deltas) {
        let piece = js(piece);
        for i in 0..choices {
            events.push(chunk(format!(
                r#"{{"index":{i},"delta":{{"content":{piece}}},"logprobs":null,"finish_reason":null{}}}"#,
                filter(true)
            )));
        }
    }
    for i in 0..choices {
        events.push(chunk(format!(
            r#"{{"index":{i},"delta":{{}},"logprobs":null,"finish_reason":"{}"{}}}"#,
            call.finish_reason(),
            filter(false)
        )));
    }
    if call.include_usage {
        events.push(data_event(&format!(
            r#"{head}],"usage":{}}}"#,
            call.chat_usage_json()
        )));
    }
    events.push(done_event());
    events
}

fn text_usage_json(call: &Call<'_>) -> String {
    let u = &call.usage;
    format!(
        r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{}}}"#,
        u.prompt_tokens, u.completion_tokens, u.total_tokens
    )
}

fn text_json(call: &Call<'_>) -> String {
    let text = js(&text_of(call));
    let mut out = format!(
        r#"{{"id":"cmpl-mock{:016x}","object":"text_completion","created":{},"model":{},"choices":["#,
        call.seq,
        call.created,
        js(call.model)
    );
    for i in 0..call.usage.choices {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"text":{text},"index":{i},"logprobs":null,"finish_reason":"{}""#,
            call.finish_reason()
        );
        if call.azure {
            let _ = write!(out, r#","content_filter_results":{CONTENT_FILTER_RESULTS}"#);
        }
        out.push('}');
    }
    let _ = write!(out, r#"],"usage":{}"#, text_usage_json(call));
    if call.azure {
        let _ = write!(out, r#","prompt_filter_results":{PROMPT_FILTER_RESULTS}"#);
    }
    out.push('}');
    out
}

/// Legacy stream: (Azure: the prompt-filter chunk,) the text deltas per choice, a finish chunk
/// per choice, the usage chunk only with `include_usage`, `[DONE]`.
fn text_events(call: &Call<'_>) -> Vec<String> {
    let choices = call.usage.choices;
    let deltas = call.usage.visible_deltas;
    let mut events = Vec::with_capacity((deltas + 1) * choices as usize + 3);
    if call.azure {
        events.push(azure_prompt_filter_event());
    }
    let head = format!(
        r#"{{"id":"cmpl-mock{:016x}","object":"text_completion","created":{},"model":{},"system_fingerprint":"{FINGERPRINT}","choices":["#,
        call.seq,
        call.created,
        js(call.model),
    );
    let tail = if call.include_usage {
        r#"],"usage":null}"#
    } else {
        "]}"
    };
    let filter = if call.azure {
        format!(r#","content_filter_results":{CONTENT_FILTER_RESULTS}"#)
    } else {
        String::new()
    };
    let chunk = |choice: String| data_event(&format!("{head}{choice}{tail}"));
    for piece in pieces(deltas) {
        let piece = js(piece);
        for i in 0..choices {
            events.push(chunk(format!(
                r#"{{"text":{piece},"index":{i},"logprobs":null,"finish_reason":null{filter}}}"#
            )));
        }
    }
    for i in 0..choices {
        events.push(chunk(format!(
            r#"{{"text":"","index":{i},"logprobs":null,"finish_reason":"{}"{filter}}}"#,
            call.finish_reason()
        )));
    }
    if call.include_usage {
        events.push(data_event(&format!(
            r#"{head}],"usage":{}}}"#,
            text_usage_json(call)
        )));
    }
    events.push(done_event());
    events
}

//! The Responses API (`POST …/responses`), JSON and the typed SSE event stream.

use hyper::Response;
use serde_json::Value;

use crate::body::{named_event, MockBody};
use crate::call::Call;
use crate::errors::js;
use crate::tokens::pieces;

/// `POST …/responses`.
pub(crate) fn response(call: &Call<'_>) -> Response<MockBody> {
    if call.stream {
        call.sse_response(events(call))
    } else {
        call.json_response(response_json(call, Stage::Final))
    }
}

/// Which snapshot of the response object to render.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `in_progress`, no output, no usage.
    Started,
    /// `completed` (or `incomplete`), full output and usage.
    Final,
}

fn ids(call: &Call<'_>) -> (String, String) {
    (
        format!("resp_mock{:016x}", call.seq),
        format!("msg_mock{:016x}", call.seq),
    )
}

fn usage_json(call: &Call<'_>) -> String {
    let u = &call.usage;
    format!(
        r#"{{"input_tokens":{},"input_tokens_details":{{"cached_tokens":{}}},"output_tokens":{},"output_tokens_details":{{"reasoning_tokens":{}}},"total_tokens":{}}}"#,
        u.prompt_tokens, u.cached_tokens, u.completion_tokens, u.reasoning_tokens, u.total_tokens
    )
}

fn message_item(call: &Call<'_>, text: Option<&str>) -> String {
    let (_, msg_id) = ids(call);
    match text {
        None => format!(
            r#"{{"id":"{msg_id}","type":"message","status":"in_progress","content":[],"role":"assistant"}}"#
        ),
        Some(text) => format!(
            r#"{{"id":"{msg_id}","type":"message","status":"completed","content":[{}],"role":"assistant"}}"#,
            output_text_part(text)
        ),
    }
}

fn output_text_part(text: &str) -> String {
    format!(
        r#"{{"type":"output_text","annotations":[],"logprobs":[],"text":{}}}"#,
        js(text)
    )
}

fn echo(call: &Call<'_>, key: &str, default: &str) -> String {
    call.body
        .get(key)
        .map_or_else(|| default.to_owned(), Value::to_string)
}

fn response_json(call: &Call<'_>, stage: Stage) -> String {
    let (resp_id, _) = ids(call);
    let text: String = pieces(call.usage.visible_deltas).collect();
    let (status, incomplete, output, usage) = match stage {
        Stage::Started => (
            "in_progress",
            "null".to_owned(),
            String::new(),
            "null".to_owned(),
        ),
        Stage::Final if call.usage.truncated => (
            "incomplete",
            r#"{"reason":"max_output_tokens"}"#.to_owned(),
            message_item(call, Some(&text)),
            usage_json(call),
        ),
        Stage::Final => (
            "completed",
            "null".to_owned(),
            message_item(call, Some(&text)),
            usage_json(call),
        ),
    };
    format!(
        r#"{{"id":"{resp_id}","object":"response","created_at":{},"status":"{status}","background":false,"error":null,"incomplete_details":{incomplete},"instructions":{},"max_output_tokens":{},"model":{},"output":[{output}],"parallel_tool_calls":true,"previous_response_id":{},"reasoning":{{"effort":null,"summary":null}},"service_tier":"default","store":true,"temperature":{},"text":{{"format":{{"type":"text"}}}},"tool_choice":"auto","tools":[],"top_p":{},"truncation":"disabled","usage":{usage},"user":null,"metadata":{{}}}}"#,
        call.created,
        echo(call, "instructions", "null"),
        echo(call, "max_output_tokens", "null"),
        js(call.model),
        echo(call, "previous_response_id", "null"),
        echo(call, "temperature", "1.0"),
        echo(call, "top_p", "1.0"),
    )
}

/// `response.created`, `response.in_progress`, `response.output_item.added`,
/// `response.content_part.added`, one `response.output_text.delta` per delta,
/// `response.output_text.done`, `response.content_part.done`, `response.output_item.done`,
/// `response.completed` (or `response.incomplete`) with the usage.
fn events(call: &Call<'_>) -> Vec<String> {
    let (_, msg_id) = ids(call);
    let deltas = call.usage.visible_deltas;
    let mut events = Vec::with_capacity(deltas + 8);
    let mut seq = 0u64;
    let mut push = |name: &str, fields: String| {
        events.push(named_event(
            name,
            &format!(r#"{{"type":"{name}","sequence_number":{seq},{fields}}}"#),
        ));
        seq += 1;
    };
    let started = response_json(call, Stage::Started);
    push("response.created", format!(r#""response":{started}"#));
    push("response.in_progress", format!(r#""response":{started}"#));
    push(
        "response.output_item.added",
        format!(r#""output_index":0,"item":{}"#, message_item(call, None)),
    );
    let part = |text: &str| {
        format!(
            r#""item_id":"{msg_id}","output_index":0,"content_index":0,"part":{}"#,
            output_text_part(text)
        )
    };
    push("response.content_part.added", part(""));
    let mut text = String::new();
    for piece in pieces(deltas) {
        text.push_str(piece);
        push(
            "response.output_text.delta",
            format!(
                r#""item_id":"{msg_id}","output_index":0,"content_index":0,"delta":{},"logprobs":[]"#,
                js(piece)
            ),
        );
    }
    push(
        "response.output_text.done",
        format!(
            r#""item_id":"{msg_id}","output_index":0,"content_index":0,"text":{},"logprobs":[]"#,
            js(&text)
        ),
    );
    push("response.content_part.done", part(&text));
    push(
        "response.output_item.done",
        format!(
            r#""output_index":0,"item":{}"#,
            message_item(call, Some(&text))
        ),
    );
    let last = if call.usage.truncated {
        "response.incomplete"
    } else {
        "response.completed"
    };
    push(
        last,
        format!(r#""response":{}"#, response_json(call, Stage::Final)),
    );
    events
}

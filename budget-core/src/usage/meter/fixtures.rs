//! Request infos, response bodies and helpers shared by the meter's tests.

use super::super::{Endpoint, RequestInfo, Usage};
use super::UsageMeter;

pub(super) fn chat_info(stream: bool) -> RequestInfo {
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"stream_options":{{"include_usage":true}},
        "messages":[{{"role":"user","content":"Say hello world"}}]}}"#
    );
    RequestInfo::parse(Endpoint::ChatCompletions, body.as_bytes())
}

pub(super) fn chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n",
        serde_json::to_string(content).unwrap()
    )
}

pub(super) const USAGE_CHUNK: &str = "data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n";

pub(super) const AZURE_FIRST: &str = "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n";

pub(super) fn chat_stream(with_usage: bool) -> String {
    let mut s = String::new();
    s.push_str(AZURE_FIRST);
    s.push_str(": keep-alive\n\n");
    s.push_str(&chunk(""));
    s.push_str(&chunk("Hello"));
    s.push_str(&chunk(" world"));
    s.push_str("data: {\"id\":\"chatcmpl-B9\",\"object\":\"chat.completion.chunk\",\"created\":1727000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n");
    if with_usage {
        s.push_str(USAGE_CHUNK);
    }
    s.push_str("data: [DONE]\n\n");
    s
}

pub(super) fn run(mut meter: UsageMeter, pieces: &[&[u8]]) -> Usage {
    for p in pieces {
        meter.feed(p);
    }
    meter.finish()
}

pub(super) fn run_whole(meter: UsageMeter, body: &str) -> Usage {
    run(meter, &[body.as_bytes()])
}

pub(super) const RESPONSES_SSE: &str = "event: response.created
data: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"created_at\":1741290958,\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[],\"service_tier\":\"auto\",\"usage\":null}}

event: response.in_progress
data: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"status\":\"in_progress\",\"model\":\"gpt-4.1-2025-04-14\",\"usage\":null}}

event: response.output_item.added
data: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"id\":\"msg_1\",\"type\":\"message\",\"status\":\"in_progress\",\"role\":\"assistant\",\"content\":[]}}

event: response.output_text.delta
data: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}

event: response.output_text.delta
data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\" world\"}

event: response.output_text.done
data: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"text\":\"Hello world\"}

event: response.completed
data: {\"type\":\"response.completed\",\"sequence_number\":6,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"completed\",\"model\":\"gpt-4.1-2025-04-14\",\"output\":[{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\",\"annotations\":[]}]}],\"service_tier\":\"flex\",\"usage\":{\"input_tokens\":37,\"input_tokens_details\":{\"cached_tokens\":5},\"output_tokens\":11,\"output_tokens_details\":{\"reasoning_tokens\":4},\"total_tokens\":48}}}

";

pub(super) fn responses_info() -> RequestInfo {
    RequestInfo::parse(
        Endpoint::Responses,
        br#"{"model":"gpt-4.1","input":"Say hello world","stream":true}"#,
    )
}

pub(super) fn split(body: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut prev = 0;
    for c in cuts {
        out.push(body[prev..c].to_vec());
        prev = c;
    }
    out.push(body[prev..].to_vec());
    out
}

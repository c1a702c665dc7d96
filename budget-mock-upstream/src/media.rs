//! Embeddings, image generation, audio transcription and the model list.

use std::fmt::Write as _;

use hyper::Response;
use serde_json::Value;

use crate::body::MockBody;
use crate::call::{with_content_type, Call};
use crate::errors::{js, openai_error};
use crate::models;
use crate::tokens::{
    image_output_tokens, pieces, prompt_tokens_for, transcription_audio_tokens,
    transcription_seconds,
};

/// A 1×1 PNG, base64.
const TINY_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

/// `POST …/embeddings`: one embedding per input (a string, or each element of an array),
/// `dimensions` long (default 1536, 3072 for `*-large`), floats or base64 per
/// `encoding_format`; usage has `prompt_tokens` and `total_tokens` only.
pub(crate) fn embeddings(call: &Call<'_>) -> Response<MockBody> {
    let inputs = match call.body.get("input") {
        Some(Value::Array(items)) if !items.is_empty() && !items[0].is_number() => items.len(),
        _ => 1,
    };
    let dims = call
        .body
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(if call.model.contains("large") {
            3072
        } else {
            1536
        }) as usize;
    let base64 = call.body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let value = |i: usize, k: usize| ((i * 31 + k * 7) % 200) as f32 / 1000.0 - 0.1;
    let mut out = String::from(r#"{"object":"list","data":["#);
    for i in 0..inputs {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, r#"{{"object":"embedding","index":{i},"embedding":"#);
        if base64 {
            let bytes: Vec<u8> = (0..dims).flat_map(|k| value(i, k).to_le_bytes()).collect();
            out.push('"');
            encode_base64(&bytes, &mut out);
            out.push('"');
        } else {
            out.push('[');
            for k in 0..dims {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{}", value(i, k));
            }
            out.push(']');
        }
        out.push('}');
    }
    let p = call.usage.prompt_tokens;
    let _ = write!(
        out,
        r#"],"model":{},"usage":{{"prompt_tokens":{p},"total_tokens":{p}}}}}"#,
        js(call.model)
    );
    call.json_response(out)
}

/// `POST …/images/generations`: `gpt-image-1*` answers `b64_json` images with token usage
/// ([`image_output_tokens`] per image); other models (DALL·E) answer without usage.
pub(crate) fn image_generation(call: &Call<'_>) -> Response<MockBody> {
    let n = call
        .body
        .get("n")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1);
    let str_field = |k: &str, d: &'static str| {
        call.body
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or(d)
            .to_owned()
    };
    let mut out = format!(r#"{{"created":{},"data":["#, call.created);
    if call.model.starts_with("gpt-image") {
        let quality = match str_field("quality", "medium").as_str() {
            "auto" => "medium".to_owned(),
            q => q.to_owned(),
        };
        let size = match str_field("size", "1024x1024").as_str() {
            "auto" => "1024x1024".to_owned(),
            s => s.to_owned(),
        };
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, r#"{{"b64_json":"{TINY_PNG}"}}"#);
        }
        let input = prompt_tokens_for(call.body);
        let output = n * image_output_tokens(&quality, &size);
        let _ = write!(
            out,
            r#"],"background":"opaque","output_format":"png","quality":{},"size":{},"usage":{{"input_tokens":{input},"input_tokens_details":{{"image_tokens":0,"text_tokens":{input}}},"output_tokens":{output},"total_tokens":{}}}}}"#,
            js(&quality),
            js(&size),
            input + output
        );
    } else {
        let b64 = call.body.get("response_format").and_then(Value::as_str) == Some("b64_json");
        let prompt = js(call
            .body
            .get("prompt")
            .and_then(Value::as_str)
            .unwrap_or(""));
        for i in 0..n {
            if i > 0 {
                out.push(',');
            }
            if b64 {
                let _ = write!(
                    out,
                    r#"{{"b64_json":"{TINY_PNG}","revised_prompt":{prompt}}}"#
                );
            } else {
                let _ = write!(
                    out,
                    r#"{{"url":"https://example.invalid/mock-image-{i}.png","revised_prompt":{prompt}}}"#
                );
            }
        }
        out.push_str("]}");
    }
    call.json_response(out)
}

/// One field of a `multipart/form-data` body.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    /// The form field name.
    pub(crate) name: &'a str,
    /// Its bytes.
    pub(crate) data: &'a [u8],
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The fields of a `multipart/form-data` body (empty when it does not parse).
pub(crate) fn multipart<'a>(body: &'a [u8], content_type: &str) -> Vec<Part<'a>> {
    let mut parts = Vec::new();
    let Some(boundary) = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        return parts;
    };
    let delim = format!("--{boundary}");
    let next_delim = format!("\r\n--{boundary}");
    let Some(start) = find(body, delim.as_bytes()) else {
        return parts;
    };
    let mut rest = &body[start + delim.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = std::str::from_utf8(&rest[..head_end]).unwrap_or("");
        let after = &rest[head_end + 4..];
        let Some(end) = find(after, next_delim.as_bytes()) else {
            break;
        };
        let name = head
            .split(['\r', '\n', ';'])
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map_or("", |n| n.trim_matches('"'));
        parts.push(Part {
            name,
            data: &after[..end],
        });
        rest = &after[end + next_delim.len()..];
    }
    parts
}

/// `POST …/audio/transcriptions` (multipart): `whisper-1` reports
/// `{"type":"duration","seconds":N}` ([`transcription_seconds`]); other models report token
/// usage ([`transcription_audio_tokens`] audio tokens, the `prompt` field's words as text
/// tokens, the transcript's deltas as output tokens). `response_format=text` answers plain text.
pub(crate) fn transcription(call: &Call<'_>, parts: &[Part<'_>]) -> Response<MockBody> {
    let field = |name: &str| parts.iter().find(|p| p.name == name).map(|p| p.data);
    let Some(file) = field("file") else {
        return openai_error(
            400,
            "Could not parse multipart form",
            "invalid_request_error",
            Some("file"),
            None,
        );
    };
    let deltas = call.usage.visible_deltas;
    let text: String = pieces(deltas).collect();
    let format = field("response_format").and_then(|f| std::str::from_utf8(f).ok());
    if format == Some("text") {
        return with_content_type(
            Response::new(MockBody::full(format!("{text}\n"))),
            "text/plain; charset=utf-8",
        );
    }
    let usage = if call.model.starts_with("whisper") {
        format!(
            r#"{{"type":"duration","seconds":{}}}"#,
            transcription_seconds(file.len())
        )
    } else {
        let audio = transcription_audio_tokens(file.len());
        let prompt = field("prompt")
            .and_then(|p| std::str::from_utf8(p).ok())
            .map_or(0, |p| p.split_whitespace().count() as u64);
        let output = deltas as u64;
        format!(
            r#"{{"type":"tokens","input_tokens":{},"input_token_details":{{"text_tokens":{prompt},"audio_tokens":{audio}}},"output_tokens":{output},"total_tokens":{}}}"#,
            audio + prompt,
            audio + prompt + output
        )
    };
    call.json_response(format!(r#"{{"text":{},"usage":{usage}}}"#, js(&text)))
}

/// `GET …/models`.
pub(crate) fn model_list() -> Response<MockBody> {
    with_content_type(
        Response::new(MockBody::full(models::list_json())),
        "application/json",
    )
}

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            let mut out = String::new();
            encode_base64(input.as_bytes(), &mut out);
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn multipart_fields_parse() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF\r\n1234\r\n--XX--\r\n";
        let parts = multipart(body, "multipart/form-data; boundary=XX");
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].name, parts[0].data), ("model", &b"whisper-1"[..]));
        assert_eq!(
            (parts[1].name, parts[1].data),
            ("file", &b"RIFF\r\n1234"[..])
        );
    }
}

//! Making a streaming request ask for its usage chunk (`stream_options.include_usage`).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::json::{JsonRequest, StreamOptions};
use super::RequestInfo;

/// For a streaming request (`"stream": true`) that does not already ask for
/// `stream_options.include_usage: true`, returns the body with it set; `None` when no rewrite
/// is needed or the body is not a JSON object.
///
/// The edit is textual, so every other byte of the body (key order, number formatting,
/// whitespace) is preserved: `"stream_options":{"include_usage":true},` is inserted after the
/// opening brace, or the existing `stream_options` value (the last one, if the key repeats) is
/// replaced by a copy with `include_usage` set; a `null` value becomes a new object. A
/// `stream_options` that is neither an object nor null is left for the upstream to reject.
///
/// This reads the body; [`RequestInfo::rewrite_include_usage`] does the same with what
/// [`RequestInfo::parse`] already read.
pub fn rewrite_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let request = JsonRequest::read(body, None).ok()?;
    rewrite(body, request.stream == Some(true), request.stream_options)
}

impl RequestInfo {
    /// [`rewrite_include_usage`] for the body this info was read from, without reading it
    /// again. With any other body the result is meaningless.
    pub fn rewrite_include_usage(&self, body: &[u8]) -> Option<Vec<u8>> {
        rewrite(body, self.stream, self.stream_options)
    }
}

/// The rewrite of a body known to have `"stream": true` (when `stream`) and `stream_options`
/// as `options`.
fn rewrite(body: &[u8], stream: bool, options: StreamOptions) -> Option<Vec<u8>> {
    if !stream {
        return None;
    }
    let (start, end) = match options {
        StreamOptions::NotJson
        | StreamOptions::Other
        | StreamOptions::Object {
            include_usage: true,
        } => return None,
        StreamOptions::Absent => {
            let open = body.iter().position(|&b| b == b'{')?;
            (open + 1, open + 1)
        }
        StreamOptions::Null
        | StreamOptions::Object {
            include_usage: false,
        } => top_level_value_span(body, "stream_options")?,
    };
    let replacement = match options {
        StreamOptions::Absent => r#""stream_options":{"include_usage":true},"#.to_owned(),
        StreamOptions::Null => r#"{"include_usage":true}"#.to_owned(),
        _ => {
            let mut o: Map<String, Value> = serde_json::from_slice(&body[start..end]).ok()?;
            o.insert("include_usage".to_owned(), Value::Bool(true));
            Value::Object(o).to_string()
        }
    };
    let mut out = Vec::with_capacity(body.len() + replacement.len());
    out.extend_from_slice(&body[..start]);
    out.extend_from_slice(replacement.as_bytes());
    out.extend_from_slice(&body[end..]);
    Some(out)
}

/// Byte span of the value of the last top-level member named `key` in a body that is known
/// to be a valid JSON object.
pub(super) fn top_level_value_span(body: &[u8], key: &str) -> Option<(usize, usize)> {
    let mut i = skip_ws(body, 0);
    if body.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut found = None;
    loop {
        i = skip_ws(body, i);
        match body.get(i)? {
            b'}' => return found,
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let key_end = skip_string(body, i)?;
        let raw = &body[i..key_end];
        let name: Option<Cow<'_, str>> = if raw.contains(&b'\\') {
            serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
        } else {
            std::str::from_utf8(&raw[1..raw.len() - 1])
                .ok()
                .map(Cow::Borrowed)
        };
        i = skip_ws(body, key_end);
        if body.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(body, i + 1);
        let value_end = skip_value(body, value_start)?;
        if name.as_deref() == Some(key) {
            found = Some((value_start, value_end));
        }
        i = value_end;
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// `b[i]` is an opening quote; returns the index after the closing quote.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Index after the JSON value that starts at `i`.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(in super::super) fn include_usage_of(body: &[u8]) -> Option<bool> {
        let v: Value = serde_json::from_slice(body).ok()?;
        v.get("stream_options")?.get("include_usage")?.as_bool()
    }

    #[test]
    fn rewrite_include_usage_cases() {
        let body = br#"{"model":"gpt-4o","stream":true,"messages":[]}"#;
        let out = rewrite_include_usage(body).unwrap();
        assert_eq!(
            out,
            br#"{"stream_options":{"include_usage":true},"model":"gpt-4o","stream":true,"messages":[]}"#
        );

        let body = br#" { "stream" : true, "stream_options" : {"foo": 1, "include_usage": false} , "z": [1.50, "}"] } "#;
        let out = rewrite_include_usage(body).unwrap();
        let s = std::str::from_utf8(&out).unwrap();
        assert!(
            s.starts_with(r#" { "stream" : true, "stream_options" : {"#),
            "{s}"
        );
        assert!(s.ends_with(r#" , "z": [1.50, "}"] } "#), "{s}");
        assert_eq!(include_usage_of(&out), Some(true));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stream_options"]["foo"], 1);

        let out = rewrite_include_usage(br#"{"stream":true,"stream_options":null}"#).unwrap();
        assert_eq!(
            out,
            br#"{"stream":true,"stream_options":{"include_usage":true}}"#
        );

        // Escaped key and duplicate keys: the last one counts.
        let body =
            br#"{"stream":true,"stream\u005foptions":{"include_usage":true},"stream_options":{}}"#;
        let out = rewrite_include_usage(body).unwrap();
        assert_eq!(include_usage_of(&out), Some(true));

        for no in [
            &br#"{"stream":true,"stream_options":{"include_usage":true}}"#[..],
            br#"{"stream":false}"#,
            br#"{"model":"gpt-4o"}"#,
            br#"{"stream":"true"}"#,
            br#"{"stream":true,"stream_options":5}"#,
            b"[]",
            b"not json",
            b"",
        ] {
            assert_eq!(
                rewrite_include_usage(no),
                None,
                "{}",
                String::from_utf8_lossy(no)
            );
        }
    }

    proptest! {
        #[test]
        fn rewrite_is_valid_json_and_preserves_other_fields(
            keys in proptest::collection::btree_map("[a-z_]{1,8}", "[a-z0-9 ]{0,8}", 0..6),
            so in prop_oneof![Just(None), Just(Some("null")), Just(Some("{}")), Just(Some("{\"include_usage\":false,\"x\":[1,{}]}"))],
            ws in "[ \n]{0,2}",
        ) {
            let mut members: Vec<String> = keys
                .iter()
                .filter(|(k, _)| *k != "stream" && *k != "stream_options")
                .map(|(k, v)| format!("{ws}\"{k}\"{ws}:{ws}\"{v}\""))
                .collect();
            members.push(format!("\"stream\":{ws}true"));
            if let Some(so) = so {
                members.push(format!("\"stream_options\":{ws}{so}"));
            }
            let body = format!("{ws}{{{}}}{ws}", members.join(","));
            let out = rewrite_include_usage(body.as_bytes()).expect("rewrite");
            prop_assert_eq!(include_usage_of(&out), Some(true));
            let before: Value = serde_json::from_str(&body).unwrap();
            let after: Value = serde_json::from_slice(&out).unwrap();
            for (k, v) in before.as_object().unwrap() {
                if k != "stream_options" {
                    prop_assert_eq!(&after[k], v);
                }
            }
            prop_assert_eq!(rewrite_include_usage(&out), None);
        }
    }
}

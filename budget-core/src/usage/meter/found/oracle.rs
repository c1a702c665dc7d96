//! The reference for the typed readers: the `serde_json::Value` walks that
//! [`Found::on_json_body`] and [`Found::on_event`] replaced, JSON generators shaped like the
//! real events and bodies, and the property tests that the typed readers find the same.

use super::super::body::BodyData;
use super::super::*;
use super::*;
use crate::usage::json_text::J;
use proptest::prelude::*;

/// The `serde_json::Value` walks that [`Found::on_json_body`] and [`Found::on_event`]
/// replaced, kept as the reference.
fn on_json_body_value(found: &mut Found, v: &Value) {
    let Some(o) = v.as_object() else { return };
    found.set_model(o.get("model"));
    found.set_tier(o.get("service_tier"));
    if let Some(Value::Object(u)) = o.get("usage") {
        found.apply_usage(&parse_usage(u));
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
            found.apply_usage(&parse_usage(u));
        }
    }
    if let Some(Value::Object(u)) = o.get("usage") {
        found.apply_usage(&parse_usage(u));
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
            assert_eq!(
                typed.on_event(SseEvent { event: names, data }),
                crate::usage::strip::is_usage_only_data(data)
            );
            on_event_value(&mut walked, SseEvent { event: names, data });
            assert_eq!(format!("{typed:?}"), format!("{walked:?}"), "{data}");
        }
    }
    let mut typed = Found::default();
    let _ = typed.on_event(SseEvent {
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
            let usage_only = typed.on_event(SseEvent { event: *name, data });
            // The stripper's verdict, read as a `Value`.
            prop_assert_eq!(usage_only, crate::usage::strip::is_usage_only_data(data), "{}", data);
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

//! One SSE event's JSON, read in one borrowed, typed pass.
//!
//! A streamed response is mostly small events (a chat chunk, a Responses API delta): reading
//! each into a `serde_json::Value` cost a tree of allocations per event. [`EventData::read`]
//! reads only the members the meter uses, borrowing strings from the event (a `usage` object
//! is read by [`UsageSeed`](super::usage_block::UsageSeed), typed too).
//! Where a member repeats, the last one counts; a document is accepted exactly when `Value`
//! would accept it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::super::de::{ignore_others, Key, MemberOrder, Skip, Str};
use super::super::Usage;
use super::usage_block::UsageSeed;

/// The members of an event's JSON object that the meter uses.
#[derive(Debug, Default)]
pub(super) struct EventData<'a> {
    /// `type`, when a string.
    pub(super) kind: Option<Cow<'a, str>>,
    /// `choices` is an array (a chat or completions chunk).
    pub(super) has_choices: bool,
    /// `choices` is an empty array.
    pub(super) choices_empty: bool,
    /// `usage` is present and not `null`.
    pub(super) usage_non_null: bool,
    /// Output text of the `choices`, in order: each choice's `text`, then its `delta`'s
    /// `content`, `refusal`, `audio.transcript`, `tool_calls[].function` `name` and
    /// `arguments`, and `function_call` `name` and `arguments`.
    pub(super) choice_text: Vec<Cow<'a, str>>,
    /// `model`, when a string.
    pub(super) model: Option<Cow<'a, str>>,
    /// `service_tier`, when a string.
    pub(super) service_tier: Option<Cow<'a, str>>,
    /// `response`, when an object (Responses API lifecycle events).
    pub(super) response: Option<ResponseData<'a>>,
    /// `usage`, when an object.
    pub(super) usage: Option<Usage>,
    /// `delta`, when a string (Responses API and transcription text deltas).
    pub(super) delta: Option<Cow<'a, str>>,
    /// `error` is an object.
    pub(super) error: bool,
}

/// The members of a Responses API event's `response` object that the meter uses.
#[derive(Debug, Default)]
pub(super) struct ResponseData<'a> {
    pub(super) model: Option<Cow<'a, str>>,
    pub(super) service_tier: Option<Cow<'a, str>>,
    pub(super) usage: Option<Usage>,
}

impl<'a> EventData<'a> {
    /// Reads an event's data; fails when it is not a JSON object.
    pub(super) fn read(data: &'a str) -> Result<EventData<'a>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(data);
        let event = de.deserialize_map(EventVisitor)?;
        de.end()?;
        Ok(event)
    }
}

struct EventVisitor;

impl<'a> Visitor<'a> for EventVisitor {
    type Value = EventData<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<EventData<'a>, A::Error> {
        let mut e = EventData::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "type" => e.kind = map.next_value_seed(Str)?,
                "choices" => {
                    e.choice_text.clear();
                    let count = map.next_value_seed(Choices {
                        text: &mut e.choice_text,
                    })?;
                    e.has_choices = count.is_some();
                    e.choices_empty = count == Some(0);
                }
                "model" => e.model = map.next_value_seed(Str)?,
                "service_tier" => e.service_tier = map.next_value_seed(Str)?,
                "response" => e.response = map.next_value_seed(ResponseSeed)?,
                "usage" => {
                    let u = map.next_value_seed(UsageSeed)?;
                    e.usage_non_null = u.non_null;
                    e.usage = u.usage;
                }
                "delta" => e.delta = map.next_value_seed(Str)?,
                "error" => e.error = map.next_value::<Value>()?.is_object(),
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(e)
    }
}

/// A Responses API event's `response`: `Some` when it is an object.
struct ResponseSeed;

impl<'a> DeserializeSeed<'a> for ResponseSeed {
    type Value = Option<ResponseData<'a>>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for ResponseSeed {
    type Value = Option<ResponseData<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut r = ResponseData::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "model" => r.model = map.next_value_seed(Str)?,
                "service_tier" => r.service_tier = map.next_value_seed(Str)?,
                "usage" => r.usage = map.next_value_seed(UsageSeed)?.usage,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(r))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

/// `choices`: how many choices, when it is an array; the text of its choices goes to `text`.
struct Choices<'s, 'a> {
    text: &'s mut Vec<Cow<'a, str>>,
}

impl<'a> DeserializeSeed<'a> for Choices<'_, 'a> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Choices<'_, 'a> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Option<usize>, A::Error> {
        let mut count = 0;
        while seq
            .next_element_seed(Parts {
                text: &mut *self.text,
                members: Members::Choice,
            })?
            .is_some()
        {
            count += 1;
        }
        Ok(Some(count))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, map);
}

/// Which text-bearing members an object has, in the order their text is counted.
#[derive(Clone, Copy)]
pub(super) enum Members {
    /// A streamed choice: `text`, `delta`.
    Choice,
    /// A choice of a JSON response: `text`, `message`.
    ChoiceMessage,
    /// A Responses API output item: `arguments`, `input`, `content`, `summary`.
    OutputItem,
    /// A content or summary part: `text`, `refusal`.
    Part,
    /// A `delta` or `message`: `content`, `refusal`, `audio`, `tool_calls`, `function_call`.
    Delta,
    /// `audio`: `transcript`.
    Audio,
    /// A tool call: `function`.
    Call,
    /// A `function` or `function_call`: `name`, `arguments`.
    Function,
}

impl Members {
    fn names(self) -> &'static [&'static str] {
        match self {
            Members::Choice => &["text", "delta"],
            Members::ChoiceMessage => &["text", "message"],
            Members::OutputItem => &["arguments", "input", "content", "summary"],
            Members::Part => &["text", "refusal"],
            Members::Delta => &["content", "refusal", "audio", "tool_calls", "function_call"],
            Members::Audio => &["transcript"],
            Members::Call => &["function"],
            Members::Function => &["name", "arguments"],
        }
    }

    /// How the member at `index` is read: as a string, an object of these members, or an
    /// array of such objects (`tool_calls`).
    fn member(self, index: usize) -> Member {
        match (self, index) {
            (Members::Choice | Members::ChoiceMessage, 1) => Member::Object(Members::Delta),
            (Members::OutputItem, 2 | 3) => Member::Array(Members::Part),
            (Members::Delta, 2) => Member::Object(Members::Audio),
            (Members::Delta, 3) => Member::Array(Members::Call),
            (Members::Delta, 4) | (Members::Call, 0) => Member::Object(Members::Function),
            _ => Member::Str,
        }
    }
}

#[derive(Clone, Copy)]
enum Member {
    Str,
    Object(Members),
    Array(Members),
}

/// An object whose text-bearing `members` are read into `text` (anything that is not an
/// object gives nothing).
struct Parts<'s, 'a> {
    text: &'s mut Vec<Cow<'a, str>>,
    members: Members,
}

impl<'a> DeserializeSeed<'a> for Parts<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Parts<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<(), A::Error> {
        let names = self.members.names();
        let text = self.text;
        let mut order = MemberOrder::<5>::new(text.len());
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(index) = names.iter().position(|n| **n == *key) else {
                map.next_value_seed(Skip)?;
                continue;
            };
            let start = text.len();
            match self.members.member(index) {
                Member::Str => {
                    if let Some(s) = map.next_value_seed(Str)? {
                        text.push(s);
                    }
                }
                Member::Object(members) => map.next_value_seed(Parts {
                    text: &mut *text,
                    members,
                })?,
                Member::Array(members) => map.next_value_seed(PartsArray {
                    text: &mut *text,
                    members,
                })?,
            }
            order.record(index, start..text.len());
        }
        order.finish(text);
        Ok(())
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

/// An array of objects read as [`Parts`] (anything that is not an array gives nothing).
pub(super) struct PartsArray<'s, 'a> {
    pub(super) text: &'s mut Vec<Cow<'a, str>>,
    pub(super) members: Members,
}

impl<'a> DeserializeSeed<'a> for PartsArray<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for PartsArray<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        let members = self.members;
        while seq
            .next_element_seed(Parts {
                text: &mut *self.text,
                members,
            })?
            .is_some()
        {}
        Ok(())
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, map);
}

//! A whole JSON response body, read in one borrowed, typed pass (as [`EventData`] reads an
//! SSE event).
//!
//! [`EventData`]: super::event::EventData

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::super::de::{ignore_others, Key, MemberOrder, Skip, Str};
use super::super::Usage;
use super::event::{Members, PartsArray};
use super::usage_block::UsageSeed;

/// The members of a JSON response body that the meter uses.
#[derive(Debug, Default)]
pub(super) struct BodyData<'a> {
    /// `model`, when a string.
    pub(super) model: Option<Cow<'a, str>>,
    /// `service_tier`, when a string.
    pub(super) service_tier: Option<Cow<'a, str>>,
    /// `usage`, when an object.
    pub(super) usage: Option<Usage>,
    /// Output text, in order: of the `choices` (each one's `text`, then its `message`'s
    /// `content`, `refusal`, `audio.transcript`, tool-call and function-call `name` and
    /// `arguments`), of the `output` items (`arguments`, `input`, then the `text` and
    /// `refusal` of their `content` and `summary` parts), and `text`.
    pub(super) text: Vec<Cow<'a, str>>,
    /// Items of `data`, when an array.
    pub(super) data_items: Option<u64>,
    /// `error` is present and not null.
    pub(super) error: bool,
}

impl<'a> BodyData<'a> {
    /// Reads a body; `None` when it is valid JSON but not an object, an error when it is not
    /// valid JSON.
    pub(super) fn read(body: &'a [u8]) -> Result<Option<BodyData<'a>>, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let data = de.deserialize_any(BodyVisitor)?;
        de.end()?;
        Ok(data)
    }
}

/// Members whose text is read, in the order it is counted.
const TEXT_MEMBERS: [&str; 3] = ["choices", "output", "text"];

struct BodyVisitor;

impl<'a> Visitor<'a> for BodyVisitor {
    type Value = Option<BodyData<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut b = BodyData::default();
        let mut text = Vec::new();
        let mut order = MemberOrder::<3>::new(0);
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "model" => b.model = map.next_value_seed(Str)?,
                "service_tier" => b.service_tier = map.next_value_seed(Str)?,
                "usage" => b.usage = map.next_value_seed(UsageSeed)?.usage,
                "data" => b.data_items = map.next_value_seed(Items)?,
                "error" => b.error = !map.next_value::<Value>()?.is_null(),
                key => {
                    let Some(index) = TEXT_MEMBERS.iter().position(|m| *m == key) else {
                        map.next_value_seed(Skip)?;
                        continue;
                    };
                    let start = text.len();
                    match index {
                        2 => {
                            if let Some(s) = map.next_value_seed(Str)? {
                                text.push(s);
                            }
                        }
                        _ => map.next_value_seed(PartsArray {
                            text: &mut text,
                            members: if index == 0 {
                                Members::ChoiceMessage
                            } else {
                                Members::OutputItem
                            },
                        })?,
                    }
                    order.record(index, start..text.len());
                }
            }
        }
        order.finish(&mut text);
        b.text = text;
        Ok(Some(b))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

/// The number of items of an array (`None` for anything else).
struct Items;

impl<'a> DeserializeSeed<'a> for Items {
    type Value = Option<u64>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Option<u64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Items {
    type Value = Option<u64>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Option<u64>, A::Error> {
        let mut n = 0u64;
        while seq.next_element_seed(Skip)?.is_some() {
            n += 1;
        }
        Ok(Some(n))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, map);
}

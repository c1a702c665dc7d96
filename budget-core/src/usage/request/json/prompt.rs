//! The prompt text of a request: strings, numbers, token arrays, content parts, messages and
//! their tool calls, as borrowed pieces in the order the estimate reads them.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::super::super::de::{ignore_others, Key, MemberOrder, Skip, Str};

/// Nesting below which a prompt value's text is not read (content parts of content parts...).
const MAX_TEXT_DEPTH: u32 = 8;

/// Text-bearing members of a message or content part, in the order their text is estimated.
const PART_MEMBERS: [&str; 8] = [
    "text",
    "content",
    "input",
    "arguments",
    "output",
    "refusal",
    "tool_calls",
    "name",
];

/// How a prompt value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Read {
    /// A prompt value: a string, a number, an array of those or of content parts (an array of
    /// numbers only is a token-id prompt, read as one piece), a content part or message.
    Value,
    /// An element of an array read as [`Read::Value`]: a number is returned, not pushed.
    Element,
    /// An array of messages or items, each read as a [`Read::Value`] at depth 0; anything
    /// else as a [`Read::Value`] (the Responses API's `input`).
    Items,
    /// Only an array of messages is read (chat `messages`); anything else is skipped.
    OnlyItems,
}

/// What a prompt value was.
#[derive(Debug, Default)]
pub(super) enum Seen {
    /// A number, as JSON prints it (returned by [`Read::Element`]).
    Number(String),
    /// An array read as items, with its length.
    Items(u64),
    #[default]
    Other,
}

impl Seen {
    pub(super) fn items(&self) -> Option<u64> {
        match self {
            Seen::Items(n) => Some(*n),
            _ => None,
        }
    }
}

/// Reads a prompt value, pushing its text pieces onto `text`.
pub(super) struct Prompt<'s, 'a> {
    text: &'s mut Vec<Cow<'a, str>>,
    depth: u32,
    read: Read,
}

impl<'s, 'a> Prompt<'s, 'a> {
    pub(super) fn new(text: &'s mut Vec<Cow<'a, str>>, read: Read) -> Self {
        Prompt {
            text,
            depth: 0,
            read,
        }
    }

    fn push(&mut self, s: Cow<'a, str>) {
        if self.read != Read::OnlyItems && self.depth <= MAX_TEXT_DEPTH && !s.is_empty() {
            self.text.push(s);
        }
    }

    fn number(mut self, n: serde_json::Number) -> Seen {
        match self.read {
            Read::OnlyItems => Seen::Other,
            Read::Element => Seen::Number(n.to_string()),
            Read::Value | Read::Items => {
                self.push(Cow::Owned(n.to_string()));
                Seen::Other
            }
        }
    }
}

impl<'a> DeserializeSeed<'a> for Prompt<'_, 'a> {
    type Value = Seen;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Seen, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Prompt<'_, 'a> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(mut self, v: &'a str) -> Result<Seen, E> {
        self.push(Cow::Borrowed(v));
        Ok(Seen::Other)
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<Seen, E> {
        self.push(Cow::Owned(v.to_owned()));
        Ok(Seen::Other)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seen, E> {
        Ok(self.number(v.into()))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seen, E> {
        Ok(self.number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seen, E> {
        // serde_json only hands out finite floats.
        Ok(serde_json::Number::from_f64(v).map_or(Seen::Other, |n| self.number(n)))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Seen, E> {
        Ok(Seen::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Seen, E> {
        Ok(Seen::Other)
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<Seen, A::Error> {
        let Prompt { text, depth, read } = self;
        if matches!(read, Read::Items | Read::OnlyItems) {
            let mut n = 0u64;
            while seq
                .next_element_seed(Prompt::new(text, Read::Value))?
                .is_some()
            {
                n += 1;
            }
            return Ok(Seen::Items(n));
        }
        if depth > MAX_TEXT_DEPTH {
            while seq.next_element_seed(Skip)?.is_some() {}
            return Ok(Seen::Other);
        }
        // A token-id prompt (numbers only) is one piece, its numbers joined by spaces; in any
        // other array each element is read one level deeper.
        let mut numbers = Some(String::new());
        let mut len = 0usize;
        loop {
            let before = text.len();
            let element = Prompt {
                text: &mut *text,
                depth: depth + 1,
                read: Read::Element,
            };
            match seq.next_element_seed(element)? {
                None => break,
                Some(Seen::Number(n)) => match &mut numbers {
                    Some(joined) => {
                        if !joined.is_empty() {
                            joined.push(' ');
                        }
                        joined.push_str(&n);
                    }
                    None if depth < MAX_TEXT_DEPTH => text.push(Cow::Owned(n)),
                    None => {}
                },
                Some(_) => {
                    // Not a token-id prompt after all: the numbers before this element are
                    // pieces of their own, before this element's.
                    if let Some(joined) = numbers.take() {
                        if depth < MAX_TEXT_DEPTH && !joined.is_empty() {
                            let earlier = joined.split(' ').map(|n| Cow::Owned(n.to_owned()));
                            text.splice(before..before, earlier);
                        }
                    }
                }
            }
            len += 1;
        }
        if let Some(joined) = numbers {
            if len > 0 {
                text.push(Cow::Owned(joined));
            }
        }
        Ok(Seen::Other)
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Seen, A::Error> {
        if self.read == Read::OnlyItems || self.depth > MAX_TEXT_DEPTH {
            while map.next_entry_seed(Skip, Skip)?.is_some() {}
            return Ok(Seen::Other);
        }
        read_part(map, self.text, self.depth)?;
        Ok(Seen::Other)
    }
}

/// The text-bearing members of a message or content part at `depth` (its members are one level
/// deeper), in [`PART_MEMBERS`] order.
fn read_part<'a, A: MapAccess<'a>>(
    mut map: A,
    text: &mut Vec<Cow<'a, str>>,
    depth: u32,
) -> Result<(), A::Error> {
    let mut order = MemberOrder::<8>::new(text.len());
    while let Some(key) = map.next_key_seed(Key)? {
        let Some(member) = PART_MEMBERS.iter().position(|m| **m == *key) else {
            map.next_value_seed(Skip)?;
            continue;
        };
        let start = text.len();
        match member {
            6 => map.next_value_seed(ToolCalls { text: &mut *text })?,
            7 => {
                if let Some(name) = map.next_value_seed(Str)? {
                    if !name.is_empty() {
                        text.push(name);
                    }
                }
            }
            _ => {
                let value = Prompt {
                    text: &mut *text,
                    depth: depth + 1,
                    read: Read::Value,
                };
                map.next_value_seed(value)?;
            }
        }
        order.record(member, start..text.len());
    }
    order.finish(text);
    Ok(())
}

/// `tool_calls`: the `function`'s `name` and `arguments` of each call.
struct ToolCalls<'s, 'a> {
    text: &'s mut Vec<Cow<'a, str>>,
}

impl<'a> DeserializeSeed<'a> for ToolCalls<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for ToolCalls<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'a>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(call) = seq.next_element_seed(Call)? {
            let (name, arguments) = call.unwrap_or_default();
            for s in [name, arguments].into_iter().flatten() {
                if !s.is_empty() {
                    self.text.push(s);
                }
            }
        }
        Ok(())
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, map);
}

type Function<'a> = (Option<Cow<'a, str>>, Option<Cow<'a, str>>);

/// One tool call: its (last) `function` member's `name` and `arguments` strings.
struct Call;

impl<'a> DeserializeSeed<'a> for Call {
    type Value = Option<Function<'a>>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Call {
    type Value = Option<Function<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut function = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == "function" {
                function = map.next_value_seed(FunctionSeed)?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(function)
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

/// A tool call's `function`: its `name` and `arguments` when they are strings (any other value
/// gives neither).
struct FunctionSeed;

impl<'a> DeserializeSeed<'a> for FunctionSeed {
    type Value = Option<Function<'a>>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for FunctionSeed {
    type Value = Option<Function<'a>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'a>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut name, mut arguments) = (None, None);
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "name" => name = map.next_value_seed(Str)?,
                "arguments" => arguments = map.next_value_seed(Str)?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some((name, arguments)))
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq);
}

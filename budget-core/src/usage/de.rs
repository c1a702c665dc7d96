//! Borrowed, lenient JSON reading shared by the request and response readers.
//!
//! Seeds that read one JSON value leniently (the kind they want, or `None`, never an error,
//! for any other value, which is skipped but still validated, so that a document is accepted
//! exactly when `serde_json::Value` would accept it), and [`MemberOrder`], which puts text
//! pieces read from an object's members in a fixed member order.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Implements the `visit_*` methods a value-reading visitor does not care about: the value is
/// skipped (still validated) and `Default::default()` returned.
macro_rules! ignore_others {
    ($de:lifetime; $($kind:ident),*) => { $(ignore_others!(@ $de $kind);)* };
    (@ $de:lifetime bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime u64) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime i64) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime f64) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    };
    (@ $de:lifetime seq) => {
        fn visit_seq<A: SeqAccess<$de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element_seed(Skip)?.is_some() {}
            Ok(Default::default())
        }
    };
    (@ $de:lifetime map) => {
        fn visit_map<A: MapAccess<$de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry_seed(Skip, Skip)?.is_some() {}
            Ok(Default::default())
        }
    };
}

/// Declares a seed reading one kind of scalar, `None` for any other value.
macro_rules! scalar_seed {
    ($(#[$doc:meta])* $name:ident -> $out:ty { $($visit:tt)* } ignoring $($kind:ident),*) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'a> DeserializeSeed<'a> for $name {
            type Value = Option<$out>;

            fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(self)
            }
        }

        impl<'a> Visitor<'a> for $name {
            type Value = Option<$out>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            $($visit)*

            ignore_others!('a; $($kind),*);
        }
    };
}
pub(crate) use ignore_others;

scalar_seed! {
    /// A string, borrowed from the body when it has no escapes.
    Str -> Cow<'a, str> {
        fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }
    } ignoring bool, u64, i64, f64, unit, seq, map
}

scalar_seed! {
    /// `true` or `false`.
    Bool -> bool {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
    } ignoring u64, i64, f64, str, unit, seq, map
}

scalar_seed! {
    /// A non-negative integer (as `serde_json::Value::as_u64` reads it: not `5.0`).
    U64 -> u64 {
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
    } ignoring bool, f64, str, unit, seq, map
}

/// An object key, borrowed from the body when it has no escapes.
pub(crate) struct Key;

impl<'a> DeserializeSeed<'a> for Key {
    type Value = Cow<'a, str>;

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Cow<'a, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for Key {
    type Value = Cow<'a, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'a str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'a, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// Any value, skipped; unlike `serde::de::IgnoredAny` its strings are fully read, so a body
/// is accepted exactly when `serde_json::Value` would accept it (valid UTF-8 and escapes).
pub(crate) struct Skip;

impl<'a> DeserializeSeed<'a> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    ignore_others!('a; bool, u64, i64, f64, str, unit, seq, map);
}

/// Where each member's text pieces went, so that they can be put in a fixed member order (and
/// a repeated member's earlier pieces dropped) at the end of the object. In the usual case
/// (members in that order, none repeated) nothing moves.
pub(crate) struct MemberOrder<const N: usize> {
    mark: usize,
    ranges: [Option<Range<usize>>; N],
    last: Option<usize>,
    in_order: bool,
}

impl<const N: usize> MemberOrder<N> {
    pub(crate) fn new(mark: usize) -> Self {
        MemberOrder {
            mark,
            ranges: std::array::from_fn(|_| None),
            last: None,
            in_order: true,
        }
    }

    pub(crate) fn record(&mut self, member: usize, pieces: Range<usize>) {
        if self.ranges[member].is_some() || self.last.is_some_and(|l| l >= member) {
            self.in_order = false;
        }
        self.ranges[member] = Some(pieces);
        self.last = Some(member);
    }

    pub(crate) fn finish(self, text: &mut Vec<Cow<'_, str>>) {
        if self.in_order {
            return;
        }
        let mut tail: Vec<Option<Cow<'_, str>>> = text.drain(self.mark..).map(Some).collect();
        for range in self.ranges.into_iter().flatten() {
            let pieces = &mut tail[range.start - self.mark..range.end - self.mark];
            text.extend(pieces.iter_mut().filter_map(Option::take));
        }
    }
}

//! Exact decimal reading and writing of prices in the data-file format.
//!
//! Token prices are written in dollars per 1M tokens, other prices in dollars per unit; in
//! memory every [`Rate`] is pico-dollars per unit. Reading never goes through binary floats
//! (a JSON number is read through its shortest decimal) and rounds a price finer than one
//! pico-dollar per unit **up**.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

use crate::money::Rate;

/// Pico-dollars per unit for `dollars` (a decimal, optional exponent) × 10^`scale`, rounded up.
/// `scale` is 12 for dollars per unit, 6 for dollars per 1M units.
pub(crate) fn parse_scaled(text: &str, scale: i32) -> Result<Rate, String> {
    let s = text.trim();
    let bad = || format!("`{text}` is not a non-negative decimal price");
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], s[i + 1..].parse::<i32>().map_err(|_| bad())?),
        None => (s, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
        || !(-400..=400).contains(&exp)
    {
        return Err(bad());
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let too_big = || format!("`{text}` is too large a price");
    if digits.len() > 36 {
        return Err(format!("`{text}` has too many digits"));
    }
    let mut value: i128 = 0;
    for b in digits.bytes() {
        value = value * 10 + i128::from(b - b'0');
    }
    let power = scale + exp - frac_part.len() as i32;
    if value == 0 {
        return Ok(Rate::ZERO);
    }
    if power >= 0 {
        for _ in 0..power {
            value = value.checked_mul(10).ok_or_else(too_big)?;
            if value > i128::from(i64::MAX) {
                return Err(too_big());
            }
        }
    } else if -power > 38 {
        value = 1; // a positive price below 10^-38 pico-dollars: round up to one.
    } else {
        let div = 10i128.pow((-power) as u32);
        value = value / div + i128::from(value % div != 0);
    }
    i64::try_from(value)
        .map(Rate::from_picos)
        .map_err(|_| too_big())
}

/// The exact decimal for `picos` pico-dollars × 10^-`scale`, without exponent or trailing zeros.
pub(crate) fn format_scaled(rate: Rate, scale: u32) -> String {
    let picos = rate.as_picos();
    let neg = picos < 0;
    let abs = picos.unsigned_abs();
    let div = 10u64.pow(scale);
    let (whole, frac) = (abs / div, abs % div);
    let mut out = format!("{}{whole}", if neg { "-" } else { "" });
    if frac != 0 {
        let f = format!("{frac:0width$}", width = scale as usize);
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out
}

struct RateVisitor(i32);

impl Visitor<'_> for RateVisitor {
    type Value = Option<Rate>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a price as a decimal string (\"2.5\") or number")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_scaled(v, self.0).map(Some).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        if !v.is_finite() {
            return Err(E::custom("a price must be a finite number"));
        }
        // `{:e}` is the shortest decimal that reads back to the same float.
        self.visit_str(&format!("{v:e}"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// `Option<Rate>` written as dollars per 1M units.
pub(crate) mod per_million {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(rate: &Option<Rate>, s: S) -> Result<S::Ok, S::Error> {
        match rate {
            Some(r) => s.serialize_str(&format_scaled(*r, 6)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
        d.deserialize_any(RateVisitor(6))
    }
}

/// `Option<Rate>` written as dollars per unit.
pub(crate) mod per_unit {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(rate: &Option<Rate>, s: S) -> Result<S::Ok, S::Error> {
        match rate {
            Some(r) => s.serialize_str(&format_scaled(*r, 12)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
        d.deserialize_any(RateVisitor(12))
    }
}

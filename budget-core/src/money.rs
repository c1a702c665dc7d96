//! Fixed-point US dollars.
//!
//! [`Money`] counts **nano-dollars** (10⁻⁹ USD) in an `i64`: exact, ordered, and wide enough
//! for ±$9.2 billion. [`Rate`] is the price of one unit (a token, a second, a character, an
//! image) in **pico-dollars** (10⁻¹² USD), so the cheapest list price ($0.0025 per 1M tokens)
//! is 2 500 pico-dollars per token and never rounds to zero. Costs are summed in pico-dollars
//! (`i128`) and rounded **up** to the next nano-dollar once, so a request is never charged less
//! than it cost.
//!
//! Floats appear only at the JSON edge: [`Money`] serializes as a JSON number (`20.5`) and
//! deserializes from a JSON number or a decimal string, parsed digit by digit (no binary
//! rounding: `0.1` is exactly 100 000 000 nano-dollars).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Nano-dollars in one dollar.
pub const NANOS_PER_DOLLAR: i64 = 1_000_000_000;
/// Pico-dollars in one nano-dollar.
pub const PICOS_PER_NANO: i128 = 1_000;
/// Pico-dollars in one dollar.
pub const PICOS_PER_DOLLAR: i64 = 1_000_000_000_000;

/// An amount of US dollars, stored as integer nano-dollars.
///
/// ```
/// use budget_core::Money;
/// let budget: Money = "20.00".parse().unwrap();
/// assert_eq!(budget, Money::from_cents(2000));
/// assert_eq!(budget.to_string(), "$20.00");
/// assert_eq!(Money::from_nanos(21_000).to_string(), "$0.000021");
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

impl Money {
    /// Zero dollars.
    pub const ZERO: Money = Money(0);
    /// The largest representable amount.
    pub const MAX: Money = Money(i64::MAX);

    /// From integer nano-dollars.
    pub const fn from_nanos(nanos: i64) -> Self {
        Money(nanos)
    }

    /// From whole cents.
    pub const fn from_cents(cents: i64) -> Self {
        Money(cents.saturating_mul(10_000_000))
    }

    /// From whole dollars.
    pub const fn from_dollars(dollars: i64) -> Self {
        Money(dollars.saturating_mul(NANOS_PER_DOLLAR))
    }

    /// From pico-dollars, rounded up to the next nano-dollar (saturating).
    pub fn from_picos_ceil(picos: i128) -> Self {
        let nanos =
            picos.div_euclid(PICOS_PER_NANO) + i128::from(picos.rem_euclid(PICOS_PER_NANO) != 0);
        Money(nanos.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// Integer nano-dollars.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// True when below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// `self + rhs`, or `None` on overflow.
    pub fn checked_add(self, rhs: Money) -> Option<Money> {
        self.0.checked_add(rhs.0).map(Money)
    }

    /// `self - rhs`, or `None` on overflow.
    pub fn checked_sub(self, rhs: Money) -> Option<Money> {
        self.0.checked_sub(rhs.0).map(Money)
    }

    /// `self × n`, or `None` on overflow.
    pub fn checked_mul(self, n: i64) -> Option<Money> {
        self.0.checked_mul(n).map(Money)
    }

    /// `self + rhs`, clamped to the representable range.
    pub const fn saturating_add(self, rhs: Money) -> Money {
        Money(self.0.saturating_add(rhs.0))
    }

    /// `self - rhs`, clamped to the representable range.
    pub const fn saturating_sub(self, rhs: Money) -> Money {
        Money(self.0.saturating_sub(rhs.0))
    }

    /// `self × n`, clamped to the representable range.
    pub const fn saturating_mul(self, n: i64) -> Money {
        Money(self.0.saturating_mul(n))
    }

    /// The larger of `self` and zero.
    pub const fn non_negative(self) -> Money {
        if self.0 < 0 {
            Money(0)
        } else {
            self
        }
    }

    /// `self / whole` as a percentage with two decimals, in basis points (1/100 of a
    /// percent): `$20.50 / $20.00` is 10 250. `None` when `whole` is zero.
    pub fn percent_of_bp(self, whole: Money) -> Option<i64> {
        if whole.0 == 0 {
            return None;
        }
        let bp = i128::from(self.0) * 10_000 / i128::from(whole.0);
        Some(bp.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// The amount as an `f64` of dollars. Only for the JSON edge and display; never feed the
    /// result back into arithmetic.
    pub fn to_f64_lossy(self) -> f64 {
        self.0 as f64 / NANOS_PER_DOLLAR as f64
    }

    /// Parse a decimal number of dollars (`"20"`, `"20.5"`, `"-0.000021"`, `"1e-6"`, `"$3"`)
    /// exactly. More than nine decimal places is an error rather than a silent rounding.
    pub fn parse_dollars(s: &str) -> Result<Money, MoneyError> {
        let s = s.trim();
        let (neg, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let rest = rest.strip_prefix('$').unwrap_or(rest);
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = rest[i + 1..]
                    .parse()
                    .map_err(|_| MoneyError::Invalid(s.to_owned()))?;
                (&rest[..i], exp)
            }
            None => (rest, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MoneyError::Invalid(s.to_owned()));
        }
        // digits × 10^(exp - frac_len) dollars → nanos: × 10^(9 + exp - frac_len)
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        let scale = 9 + exp - frac_part.len() as i32;
        let mut value: i128 = 0;
        for b in digits.bytes() {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(i128::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        if scale >= 0 {
            for _ in 0..scale {
                value = value.checked_mul(10).ok_or(MoneyError::Overflow)?;
                if value > i128::from(i64::MAX) {
                    return Err(MoneyError::Overflow);
                }
            }
        } else {
            for _ in 0..(-scale) {
                if value % 10 != 0 {
                    return Err(MoneyError::TooPrecise(s.to_owned()));
                }
                value /= 10;
            }
        }
        let value = if neg { -value } else { value };
        i64::try_from(value)
            .map(Money)
            .map_err(|_| MoneyError::Overflow)
    }
}

/// Why a dollar amount could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("`{0}` is not a decimal number of dollars")]
    Invalid(String),
    /// More precise than a nano-dollar.
    #[error("`{0}` has more than 9 decimal places")]
    TooPrecise(String),
    /// Out of range.
    #[error("amount out of range (at most ±$9,223,372,036)")]
    Overflow,
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse_dollars(s)
    }
}

impl Money {
    /// Exact decimal dollars for machines (CSV, spreadsheets): `20.00`, `0.000021`, `-1.50`,
    /// `1234.56` — at least two decimals, more only when the amount needs them, no `$`, no
    /// thousands separators.
    ///
    /// ```
    /// use budget_core::Money;
    /// assert_eq!(Money::from_nanos(21_000).to_decimal_string(), "0.000021");
    /// assert_eq!(Money::from_cents(-150).to_decimal_string(), "-1.50");
    /// assert_eq!(Money::from_dollars(1234).to_decimal_string(), "1234.00");
    /// ```
    pub fn to_decimal_string(self) -> String {
        let abs = self.0.unsigned_abs();
        let whole = abs / NANOS_PER_DOLLAR as u64;
        let frac = abs % NANOS_PER_DOLLAR as u64;
        let mut frac_s = format!("{frac:09}");
        while frac_s.len() > 2 && frac_s.ends_with('0') {
            frac_s.pop();
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        format!("{sign}{whole}.{frac_s}")
    }
}

/// `$20.00`, `$0.000021`, `-$1.50`, `$1,234.56`: at least two decimals, more only when the
/// amount needs them, thousands separated.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let whole = abs / NANOS_PER_DOLLAR as u64;
        let frac = abs % NANOS_PER_DOLLAR as u64;
        let mut frac_s = format!("{frac:09}");
        while frac_s.len() > 2 && frac_s.ends_with('0') {
            frac_s.pop();
        }
        let whole_s = whole.to_string();
        let mut grouped = String::with_capacity(whole_s.len() + whole_s.len() / 3);
        for (i, c) in whole_s.chars().enumerate() {
            if i > 0 && (whole_s.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if neg { "-" } else { "" };
        write!(f, "{sign}${grouped}.{frac_s}")
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

impl Add for Money {
    type Output = Money;
    /// Saturating: budgets clamp rather than wrap.
    fn add(self, rhs: Money) -> Money {
        self.saturating_add(rhs)
    }
}

impl Sub for Money {
    type Output = Money;
    /// Saturating: budgets clamp rather than wrap.
    fn sub(self, rhs: Money) -> Money {
        self.saturating_sub(rhs)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(self.0.saturating_neg())
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl Serialize for Money {
    /// A JSON number of dollars, the shortest decimal that reads back to the same amount.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_f64_lossy())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MoneyVisitor)
    }
}

struct MoneyVisitor;

impl Visitor<'_> for MoneyVisitor {
    type Value = Money;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of dollars, e.g. 20.00 or \"20.00\"")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
        v.checked_mul(NANOS_PER_DOLLAR)
            .map(Money)
            .ok_or_else(|| E::custom(MoneyError::Overflow))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
        i64::try_from(v)
            .map_err(|_| E::custom(MoneyError::Overflow))
            .and_then(|v| self.visit_i64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
        if !v.is_finite() {
            return Err(E::custom("amount must be a finite number"));
        }
        // `{}` prints the shortest decimal that round-trips, i.e. what the JSON text said.
        Money::parse_dollars(&format!("{v}")).map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Money, E> {
        Money::parse_dollars(v).map_err(E::custom)
    }
}

/// A price per unit (token, second, character, image) in integer pico-dollars.
///
/// ```
/// use budget_core::Rate;
/// // $0.075 per 1M tokens
/// let rate = Rate::per_million("0.075").unwrap();
/// assert_eq!(rate.as_picos(), 75_000);
/// assert_eq!(rate.cost_of(1).as_nanos(), 75); // one token still costs something
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rate(i64);

impl Rate {
    /// Free.
    pub const ZERO: Rate = Rate(0);

    /// From integer pico-dollars per unit.
    pub const fn from_picos(picos: i64) -> Self {
        Rate(picos)
    }

    /// Pico-dollars per unit.
    pub const fn as_picos(self) -> i64 {
        self.0
    }

    /// Parse dollars per unit from a decimal (`"2.5e-06"`, `"0.0001"`), exactly; more precise
    /// than a pico-dollar is an error.
    pub fn per_unit(dollars: &str) -> Result<Rate, MoneyError> {
        // Reuse the exact decimal parser at a 10^3 larger scale: dollars×10^12 = (dollars×10^3)×10^9.
        let shifted = shift_decimal(dollars, 3)?;
        Money::parse_dollars(&shifted).map(|m| Rate(m.as_nanos()))
    }

    /// Parse dollars per million units (`"0.075"` → $0.075 / 1M tokens).
    pub fn per_million(dollars: &str) -> Result<Rate, MoneyError> {
        let shifted = shift_decimal(dollars, -3)?;
        Money::parse_dollars(&shifted).map(|m| Rate(m.as_nanos()))
    }

    /// From an `f64` of dollars per unit as found in price data: read through its shortest
    /// decimal representation, so `2.5e-06` is exactly 2 500 000 pico-dollars.
    pub fn from_dollars_f64(dollars: f64) -> Result<Rate, MoneyError> {
        if !dollars.is_finite() {
            return Err(MoneyError::Invalid(dollars.to_string()));
        }
        Rate::per_unit(&format!("{dollars:e}"))
    }

    /// Pico-dollars for `units` units (exact, widened).
    pub fn picos_for(self, units: u64) -> i128 {
        i128::from(self.0) * i128::from(units)
    }

    /// The cost of `units` units, rounded up to the nano-dollar.
    pub fn cost_of(self, units: u64) -> Money {
        Money::from_picos_ceil(self.picos_for(units))
    }

    /// Dollars per unit as `f64`, for the JSON edge only.
    pub fn to_f64_lossy(self) -> f64 {
        self.0 as f64 / PICOS_PER_DOLLAR as f64
    }

    /// Dollars per million units as a decimal string (`"2.5"`), exact.
    pub fn per_million_string(self) -> String {
        // picos per unit × 10^6 / 10^12 = picos / 10^6 dollars per million
        let neg = self.0 < 0;
        let abs = self.0.unsigned_abs();
        let whole = abs / 1_000_000;
        let frac = abs % 1_000_000;
        let mut out = format!("{}{whole}", if neg { "-" } else { "" });
        if frac != 0 {
            let f = format!("{frac:06}");
            out.push('.');
            out.push_str(f.trim_end_matches('0'));
        }
        out
    }
}

/// Multiply a decimal string by 10^`by` without going through binary floats.
fn shift_decimal(s: &str, by: i32) -> Result<String, MoneyError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(MoneyError::Invalid(s.to_owned()));
    }
    match s.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = s[i + 1..]
                .parse()
                .map_err(|_| MoneyError::Invalid(s.to_owned()))?;
            Ok(format!("{}e{}", &s[..i], exp + by))
        }
        None => Ok(format!("{s}e{by}")),
    }
}

impl fmt::Debug for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rate(${}/1M)", self.per_million_string())
    }
}

impl Serialize for Rate {
    /// A JSON number of dollars per unit.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_f64_lossy())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a price in dollars per unit, e.g. 2.5e-06")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Rate::per_unit(&v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Rate::per_unit(&v.to_string()).map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Rate::from_dollars_f64(v).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Rate, E> {
                Rate::per_unit(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display_is_readable_at_any_size() {
        assert_eq!(Money::from_cents(2000).to_string(), "$20.00");
        assert_eq!(Money::from_cents(2050).to_string(), "$20.50");
        assert_eq!(Money::from_nanos(21_000).to_string(), "$0.000021");
        assert_eq!(Money::from_nanos(1).to_string(), "$0.000000001");
        assert_eq!(Money::ZERO.to_string(), "$0.00");
        assert_eq!(Money::from_dollars(1_234_567).to_string(), "$1,234,567.00");
        assert_eq!((-Money::from_cents(150)).to_string(), "-$1.50");
    }

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!("0.1".parse::<Money>().unwrap().as_nanos(), 100_000_000);
        assert_eq!("$20".parse::<Money>().unwrap(), Money::from_dollars(20));
        assert_eq!("1e-6".parse::<Money>().unwrap().as_nanos(), 1_000);
        assert_eq!("-0.5".parse::<Money>().unwrap().as_nanos(), -500_000_000);
        assert_eq!(".5".parse::<Money>().unwrap().as_nanos(), 500_000_000);
        assert!(matches!(
            "0.0000000001".parse::<Money>(),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!("abc".parse::<Money>().is_err());
        assert!("".parse::<Money>().is_err());
        assert!("1.2.3".parse::<Money>().is_err());
        assert!(matches!(
            "99999999999".parse::<Money>(),
            Err(MoneyError::Overflow)
        ));
    }

    #[test]
    fn json_edge() {
        let m: Money = serde_json::from_str("20.5").unwrap();
        assert_eq!(m, Money::from_cents(2050));
        let m: Money = serde_json::from_str("20").unwrap();
        assert_eq!(m, Money::from_dollars(20));
        let m: Money = serde_json::from_str("\"0.000021\"").unwrap();
        assert_eq!(m.as_nanos(), 21_000);
        let m: Money = serde_json::from_str("0.1").unwrap();
        assert_eq!(m.as_nanos(), 100_000_000);
        assert_eq!(
            serde_json::to_string(&Money::from_cents(525)).unwrap(),
            "5.25"
        );
        assert!(serde_json::from_str::<Money>("true").is_err());
    }

    #[test]
    fn tiny_list_prices_do_not_round_to_zero() {
        let rate = Rate::per_million("0.075").unwrap();
        assert_eq!(rate.as_picos(), 75_000);
        assert_eq!(rate.cost_of(1), Money::from_nanos(75));
        let cheapest = Rate::from_dollars_f64(2.5e-9).unwrap();
        assert_eq!(cheapest.as_picos(), 2_500);
        assert_eq!(cheapest.cost_of(1), Money::from_nanos(3)); // 2.5 nanos, rounded up
        assert_eq!(
            Rate::from_dollars_f64(2.5e-06).unwrap().as_picos(),
            2_500_000
        );
        assert_eq!(
            Rate::from_dollars_f64(0.0001).unwrap().as_picos(),
            100_000_000
        );
        assert_eq!(Rate::from_picos(2_500_000).per_million_string(), "2.5");
        assert_eq!(Rate::from_picos(75_000).per_million_string(), "0.075");
    }

    #[test]
    fn arithmetic_saturates_and_checks() {
        assert_eq!(Money::MAX + Money::from_nanos(1), Money::MAX);
        assert_eq!(Money::MAX.checked_add(Money::from_nanos(1)), None);
        assert_eq!(
            Money::from_cents(2050).percent_of_bp(Money::from_cents(2000)),
            Some(10_250)
        );
        assert_eq!(Money::from_cents(1).percent_of_bp(Money::ZERO), None);
        assert_eq!(Money::from_picos_ceil(1), Money::from_nanos(1));
        assert_eq!(Money::from_picos_ceil(1000), Money::from_nanos(1));
        assert_eq!(Money::from_picos_ceil(0), Money::ZERO);
        assert_eq!(Money::from_picos_ceil(-1500), Money::from_nanos(-1));
    }

    proptest! {
        #[test]
        fn display_parse_roundtrip(n in any::<i64>()) {
            let m = Money::from_nanos(n);
            let shown = m.to_string().replace(',', "");
            prop_assert_eq!(shown.replace('$', "").parse::<Money>().unwrap(), m);
        }

        #[test]
        fn json_roundtrip_for_realistic_amounts(n in -1_000_000_000_000_000i64..1_000_000_000_000_000) {
            // Up to ±$1e9 with nano precision: 18 significant digits exceed f64's 15-17, so
            // check amounts with ≤ 15 significant digits (real budgets and costs).
            let m = Money::from_nanos(n / 1000 * 1000);
            let json = serde_json::to_string(&m).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        }

        #[test]
        fn add_sub_inverse(a in -(1i64 << 60)..(1i64 << 60), b in -(1i64 << 60)..(1i64 << 60)) {
            let (a, b) = (Money::from_nanos(a), Money::from_nanos(b));
            prop_assert_eq!((a + b) - b, a);
            prop_assert_eq!(a.checked_add(b).unwrap(), a + b);
        }

        #[test]
        fn rate_cost_is_ceiling(picos in 0i64..1_000_000_000_000, units in 0u64..10_000_000) {
            let r = Rate::from_picos(picos);
            let exact = i128::from(picos) * i128::from(units);
            let cost = i128::from(r.cost_of(units).as_nanos()) * 1000;
            prop_assert!(cost >= exact && cost - exact < 1000);
        }
    }
}

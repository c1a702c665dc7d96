//! The budget headers of an admitted response (`x-budget-limit`, `x-budget-remaining`,
//! `x-budget-reset`), written from the integers: one small buffer per header, no `Display`
//! round trip.

use bytes::Bytes;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};

use budget_core::money::NANOS_PER_DOLLAR;
use budget_core::Money;

/// Sets `x-budget-limit` and `x-budget-remaining` (plain dollars: `20.00`, `19.9975`) and
/// `x-budget-reset` (RFC 3339 in UTC, whole seconds: `2026-12-02T00:00:00Z`).
pub(crate) fn put(headers: &mut HeaderMap, budget: Money, remaining: Money, reset: DateTime<Utc>) {
    headers.insert(LIMIT, value(dollars(budget)));
    headers.insert(REMAINING, value(dollars(remaining)));
    headers.insert(RESET, value(rfc3339_secs(reset)));
}

// Names built once, not parsed from a `&str` per response.
const LIMIT: HeaderName = HeaderName::from_static("x-budget-limit");
const REMAINING: HeaderName = HeaderName::from_static("x-budget-remaining");
const RESET: HeaderName = HeaderName::from_static("x-budget-reset");

fn value(text: Vec<u8>) -> HeaderValue {
    HeaderValue::from_maybe_shared(Bytes::from(text))
        .expect("digits, `-`, `.`, `:`, `T` and `Z` are valid in a header value")
}

/// [`dollars`] as text, for headers built elsewhere (the 429's `x-budget-*`).
pub(crate) fn dollar_text(m: Money) -> String {
    String::from_utf8(dollars(m)).expect("digits, `-` and `.` are ASCII")
}

/// `m` as `Money`'s `Display` writes it, without the `$` and the thousands separators: an
/// optional `-`, the whole dollars, `.`, then the fraction with its trailing zeros trimmed
/// down to two digits.
fn dollars(m: Money) -> Vec<u8> {
    let nanos = m.as_nanos();
    let abs = nanos.unsigned_abs();
    let per = NANOS_PER_DOLLAR as u64;
    let mut out = Vec::with_capacity(32);
    if nanos < 0 {
        out.push(b'-');
    }
    push_digits(&mut out, abs / per, 1);
    out.push(b'.');
    let mut frac = abs % per;
    let mut width = 9;
    while width > 2 && frac % 10 == 0 {
        frac /= 10;
        width -= 1;
    }
    push_digits(&mut out, frac, width);
    out
}

/// `at` as `to_rfc3339_opts(SecondsFormat::Secs, true)` writes it.
fn rfc3339_secs(at: DateTime<Utc>) -> Vec<u8> {
    let year = at.year();
    if !(0..=9999).contains(&year) || at.nanosecond() >= 1_000_000_000 {
        // Outside four-digit years, or a leap second: chrono's own spelling.
        return at.to_rfc3339_opts(SecondsFormat::Secs, true).into_bytes();
    }
    let mut out = Vec::with_capacity(20);
    push_digits(&mut out, year as u64, 4);
    for (sep, n) in [
        (b'-', at.month()),
        (b'-', at.day()),
        (b'T', at.hour()),
        (b':', at.minute()),
        (b':', at.second()),
    ] {
        out.push(sep);
        push_digits(&mut out, u64::from(n), 2);
    }
    out.push(b'Z');
    out
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn push_digits(out: &mut Vec<u8>, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i.min(digits.len() - width.min(digits.len()));
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// What the headers were built from before: `Display`, then `$` and `,` removed.
    fn old_dollars(m: Money) -> String {
        m.to_string().replace(['$', ','], "")
    }

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn dollars_examples() {
        for (nanos, want) in [
            (20 * NANOS_PER_DOLLAR, "20.00"),
            (19_997_500_000, "19.9975"),
            (0, "0.00"),
            (1, "0.000000001"),
            (-1_500_000_000, "-1.50"),
            (1_000_000 * NANOS_PER_DOLLAR, "1000000.00"),
            (i64::MAX, "9223372036.854775807"),
            (i64::MIN, "-9223372036.854775808"),
        ] {
            let m = Money::from_nanos(nanos);
            assert_eq!(text(dollars(m)), want, "{nanos}");
            assert_eq!(text(dollars(m)), old_dollars(m), "{nanos}");
        }
    }

    #[test]
    fn reset_examples() {
        let at = Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap();
        assert_eq!(text(rfc3339_secs(at)), "2026-12-02T00:00:00Z");
        let far = Utc.with_ymd_and_hms(12026, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            text(rfc3339_secs(far)),
            far.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
    }

    #[test]
    fn put_sets_all_three() {
        let mut h = HeaderMap::new();
        let at = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        put(
            &mut h,
            Money::from_cents(2000),
            Money::from_nanos(19_997_500_000),
            at,
        );
        assert_eq!(h["x-budget-limit"], "20.00");
        assert_eq!(h["x-budget-remaining"], "19.9975");
        assert_eq!(h["x-budget-reset"], "2026-01-31T23:59:59Z");
    }

    proptest! {
        #[test]
        fn dollars_match_the_display_spelling(nanos in any::<i64>()) {
            let m = Money::from_nanos(nanos);
            prop_assert_eq!(text(dollars(m)), old_dollars(m));
        }

        #[test]
        fn reset_matches_chrono(secs in -62_135_596_800i64..=253_402_300_799i64 + 86_400 * 400) {
            let at = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            prop_assert_eq!(text(rfc3339_secs(at)), at.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }
}

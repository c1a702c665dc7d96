//! Budget periods and their calendar windows.
//!
//! A [`Period`] turns an instant into the [`Window`] `[start, end)` it falls in. Windows are
//! calendar-aligned, exactly as the product promises:
//!
//! | period | window starts |
//! |---|---|
//! | `minute` | at second 0 of every minute |
//! | `hour` | at minute 0 of every hour |
//! | `day` | at midnight |
//! | `week` | on Monday at midnight |
//! | `month` | on the 1st at midnight |
//! | `year` | on January 1st at midnight |
//!
//! Midnight is UTC unless the limiter names an IANA time zone, in which case day, week, month
//! and year begin at local midnight there (minute and hour windows stay UTC-aligned). Where a
//! daylight-saving change makes local midnight happen twice, the first one counts; where it
//! skips midnight, the window begins at the first local instant of that day.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// How often a limiter's budget resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every minute.
    Minute,
    /// Every hour.
    Hour,
    /// Every day at midnight.
    Day,
    /// Every Monday at midnight.
    Week,
    /// On the first day of every month.
    Month,
    /// On January 1st.
    Year,
}

/// A half-open interval of time `[start, end)`: the budget window an instant belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// First instant inside the window.
    pub start: DateTime<Utc>,
    /// First instant after the window.
    pub end: DateTime<Utc>,
}

impl Window {
    /// True when `t` lies in `[start, end)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Whole seconds from `now` until the window ends, rounded up, at least 0.
    pub fn seconds_until_end(&self, now: DateTime<Utc>) -> u64 {
        let ms = (self.end - now).num_milliseconds().max(0) as u64;
        ms.div_ceil(1000)
    }
}

impl Period {
    /// All periods, shortest first.
    pub const ALL: [Period; 6] = [
        Period::Minute,
        Period::Hour,
        Period::Day,
        Period::Week,
        Period::Month,
        Period::Year,
    ];

    /// The lowercase name used in the API (`"day"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
        }
    }

    /// The UTC window containing `t`.
    pub fn window_at(self, t: DateTime<Utc>) -> Window {
        self.window_at_in(t, Tz::UTC)
    }

    /// The window containing `t`, with day/week/month/year starting at local midnight in `tz`.
    pub fn window_at_in(self, t: DateTime<Utc>, tz: Tz) -> Window {
        match self {
            Period::Minute => fixed_window(t, 60),
            Period::Hour => fixed_window(t, 3600),
            _ => {
                let local = t.with_timezone(&tz).date_naive();
                let first = self.first_day_of_unit(local);
                let next = self.next_unit(first);
                let start = local_midnight(tz, first);
                let end = local_midnight(tz, next);
                // `start <= t` always holds (see module docs); guard the impossible anyway so
                // the tiling invariant can never silently break.
                debug_assert!(start <= t && t < end, "{self:?} {t} {start} {end}");
                Window { start, end }
            }
        }
    }

    fn first_day_of_unit(self, d: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => d,
            Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Period::Month => d.with_day(1).expect("day 1 exists"),
            Period::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("Jan 1 exists"),
            Period::Minute | Period::Hour => d,
        }
    }

    fn next_unit(self, first: NaiveDate) -> NaiveDate {
        match self {
            Period::Day => first + Duration::days(1),
            Period::Week => first + Duration::days(7),
            Period::Month => {
                let (y, m) = if first.month() == 12 {
                    (first.year() + 1, 1)
                } else {
                    (first.year(), first.month() + 1)
                };
                NaiveDate::from_ymd_opt(y, m, 1).expect("day 1 exists")
            }
            Period::Year => NaiveDate::from_ymd_opt(first.year() + 1, 1, 1).expect("Jan 1 exists"),
            Period::Minute | Period::Hour => first,
        }
    }
}

fn fixed_window(t: DateTime<Utc>, secs: i64) -> Window {
    let ts = t.timestamp();
    let start_s = ts.div_euclid(secs) * secs;
    let start = DateTime::<Utc>::from_timestamp(start_s, 0).expect("in range");
    Window {
        start,
        end: start + Duration::seconds(secs),
    }
}

/// The first instant of local date `d` in `tz`.
fn local_midnight(tz: Tz, d: NaiveDate) -> DateTime<Utc> {
    let midnight: NaiveDateTime = d.and_hms_opt(0, 0, 0).expect("midnight exists");
    let resolve = |naive: NaiveDateTime| match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        LocalResult::None => None,
    };
    if let Some(t) = resolve(midnight) {
        return t;
    }
    // Midnight falls in a gap (clocks jumped forward over it). Find the first local minute
    // that exists, then the exact second the gap ends (historical offsets such as local mean
    // time have second precision, e.g. Santiago on 1927-09-01 skipped 00:00–00:42:46).
    let mut naive = midnight;
    for _ in 0..(24 * 60) {
        naive += Duration::minutes(1);
        if let Some(mut first) = resolve(naive) {
            for s in 1..60 {
                match resolve(naive - Duration::seconds(s)) {
                    Some(earlier) => first = earlier,
                    None => break,
                }
            }
            return first;
        }
    }
    Utc.from_utc_datetime(&midnight)
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of `minute`, `hour`, `day`, `week`, `month`, `year`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown period `{0}`: expected one of minute, hour, day, week, month, year")]
pub struct UnknownPeriod(pub String);

impl FromStr for Period {
    type Err = UnknownPeriod;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Period::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownPeriod(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn seed_calendar() {
        let t = utc("2025-10-10T13:45:12Z"); // a Friday
        let w = Period::Day.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-10T00:00:00Z"), utc("2025-10-11T00:00:00Z"))
        );
        let w = Period::Week.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-06T00:00:00Z"), utc("2025-10-13T00:00:00Z"))
        );
        let w = Period::Month.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-01T00:00:00Z"), utc("2025-11-01T00:00:00Z"))
        );
        let w = Period::Year.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-01-01T00:00:00Z"), utc("2026-01-01T00:00:00Z"))
        );
        let w = Period::Hour.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-10T13:00:00Z"), utc("2025-10-10T14:00:00Z"))
        );
        let w = Period::Minute.window_at(t);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-10T13:45:00Z"), utc("2025-10-10T13:46:00Z"))
        );
    }

    #[test]
    fn leap_years_and_month_ends() {
        let w = Period::Month.window_at(utc("2024-02-29T23:59:59Z"));
        assert_eq!(
            (w.start, w.end),
            (utc("2024-02-01T00:00:00Z"), utc("2024-03-01T00:00:00Z"))
        );
        let w = Period::Month.window_at(utc("2023-02-28T12:00:00Z"));
        assert_eq!(w.end, utc("2023-03-01T00:00:00Z"));
        let w = Period::Month.window_at(utc("2025-12-31T23:59:59Z"));
        assert_eq!(w.end, utc("2026-01-01T00:00:00Z"));
        let w = Period::Year.window_at(utc("2024-12-31T23:59:59.999Z"));
        assert_eq!(w.end - w.start, Duration::days(366));
        // Week across a year end: 2026-01-01 is a Thursday.
        let w = Period::Week.window_at(utc("2026-01-01T10:00:00Z"));
        assert_eq!(w.start, utc("2025-12-29T00:00:00Z"));
        // Monday midnight belongs to the new week.
        let w = Period::Week.window_at(utc("2025-10-13T00:00:00Z"));
        assert_eq!(w.start, utc("2025-10-13T00:00:00Z"));
    }

    #[test]
    fn time_zones_move_midnight() {
        let tz: Tz = "America/New_York".parse().unwrap();
        // 02:00 UTC on Oct 10 is still Oct 9 in New York (EDT, UTC-4).
        let w = Period::Day.window_at_in(utc("2025-10-10T02:00:00Z"), tz);
        assert_eq!(
            (w.start, w.end),
            (utc("2025-10-09T04:00:00Z"), utc("2025-10-10T04:00:00Z"))
        );
        // The day of the DST change is 23 hours long.
        let w = Period::Day.window_at_in(utc("2025-03-09T12:00:00Z"), tz);
        assert_eq!(w.end - w.start, Duration::hours(23));
        // Santiago left local mean time on 1927-09-01, skipping 00:00–00:42:46: the day
        // begins when the gap ends, to the second (found by the property test below).
        let w = Period::Month.window_at_in(
            utc("1927-09-01T04:42:59.999Z"),
            "America/Santiago".parse().unwrap(),
        );
        assert!(w.contains(utc("1927-09-01T04:42:59.999Z")), "{w:?}");
        // Santiago skips midnight when DST begins (2024-09-08 00:00 → 01:00).
        let tz: Tz = "America/Santiago".parse().unwrap();
        let w = Period::Day.window_at_in(utc("2024-09-08T12:00:00Z"), tz);
        assert_eq!(w.start, utc("2024-09-08T04:00:00Z"));
        assert!(w.contains(utc("2024-09-08T12:00:00Z")));
    }

    #[test]
    fn parse_and_names() {
        assert_eq!("Day".parse::<Period>().unwrap(), Period::Day);
        assert!("fortnight"
            .parse::<Period>()
            .unwrap_err()
            .to_string()
            .contains("minute, hour"));
        assert_eq!(serde_json::to_string(&Period::Week).unwrap(), "\"week\"");
        assert_eq!(
            Window {
                start: utc("2025-01-01T00:00:00Z"),
                end: utc("2025-01-01T00:01:00Z")
            }
            .seconds_until_end(utc("2025-01-01T00:00:00.500Z")),
            60
        );
    }

    const ZONES: [&str; 6] = [
        "UTC",
        "America/New_York",
        "Europe/London",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Santiago",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Each instant lies in its window, and consecutive windows touch: the window after
        /// `w` starts exactly at `w.end`, and the instant before `w.start` belongs to the
        /// previous window, which ends exactly at `w.start`. Together: no gap, no overlap.
        #[test]
        fn windows_tile_time(
            secs in -2_000_000_000i64..4_000_000_000,
            millis in 0u32..1000,
            p in 0usize..6,
            z in 0usize..ZONES.len(),
        ) {
            let tz: Tz = ZONES[z].parse().unwrap();
            let period = Period::ALL[p];
            let t = DateTime::<Utc>::from_timestamp(secs, millis * 1_000_000).unwrap();
            let w = period.window_at_in(t, tz);
            prop_assert!(w.contains(t), "{t} not in {w:?}");
            prop_assert!(w.start < w.end);
            let next = period.window_at_in(w.end, tz);
            prop_assert_eq!(next.start, w.end);
            let prev = period.window_at_in(w.start - Duration::milliseconds(1), tz);
            prop_assert_eq!(prev.end, w.start);
            // Every instant of the window maps to the same window.
            prop_assert_eq!(period.window_at_in(w.start, tz), w);
            prop_assert_eq!(period.window_at_in(w.end - Duration::milliseconds(1), tz), w);
        }
    }
}

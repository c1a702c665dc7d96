//! The values that cross the [`BudgetStore`](super::BudgetStore) boundary.

use std::fmt;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::usage::{Endpoint, Usage};
use crate::{EnforcementMode, LimiterId, Money, Period, Window};

/// Identifies one reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReservationId(pub Uuid);

impl ReservationId {
    /// A fresh random id.
    pub fn new() -> Self {
        ReservationId(Uuid::new_v4())
    }
}

impl Default for ReservationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Ask to hold `amount` against every budget a request counts in, admitted at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveRequest {
    /// The limiter to spend from.
    pub limiter_id: LimiterId,
    /// What to hold: the request's estimated (soft) or worst-case (strict) cost.
    pub amount: Money,
    /// When the request arrived; picks the budget windows.
    pub at: DateTime<Utc>,
    /// The end user the request is for (the `user` field or a header), for budgets kept per
    /// user. Requests without one count only against the limiter's own budgets.
    pub user: Option<String>,
}

impl ReserveRequest {
    /// Hold `amount` of `limiter_id`'s budgets at `at`, for no particular end user.
    pub fn new(limiter_id: LimiterId, amount: Money, at: DateTime<Utc>) -> Self {
        ReserveRequest {
            limiter_id,
            amount,
            at,
            user: None,
        }
    }

    /// For this end user.
    pub fn for_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
}

/// One counter of spend: a limiter's window, or one end user's window inside a limiter.
///
/// A request counts against several counters at once (its [`BudgetLine`]s); a store keeps
/// spend and holds per key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CounterKey {
    /// The limiter.
    pub limiter_id: LimiterId,
    /// `None` for the limiter's own spend; the end user for a per-user budget.
    pub user: Option<String>,
    /// The window.
    pub window: Window,
}

impl CounterKey {
    /// The limiter's own counter for `window`.
    pub fn limiter(limiter_id: LimiterId, window: Window) -> Self {
        CounterKey {
            limiter_id,
            user: None,
            window,
        }
    }

    /// Is this one of the counters `limiter`'s budgets are kept in (a [`BudgetLine`] of a
    /// request in this window, for this user)? Stores keep those in their [`Ledger`]; any
    /// other counter is a statistic, summed from the records when asked.
    ///
    /// [`Ledger`]: super::Ledger
    pub fn is_line_of(&self, limiter: &crate::Limiter) -> bool {
        limiter.id == self.limiter_id
            && limiter
                .budget_lines(self.window.start, self.user.as_deref())
                .iter()
                .any(|l| l.key == *self)
    }

    /// Does `record` count in this counter?
    pub fn counts(&self, record: &UsageRecord) -> bool {
        record.limiter_id == self.limiter_id
            && self.window.contains(record.at)
            && (self.user.is_none() || self.user == record.user)
    }
}

/// One budget a request must fit in: a counter, its limit and the rule that admits.
/// [`Limiter::budget_lines`](crate::Limiter::budget_lines) lists a request's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetLine {
    /// The counter.
    pub key: CounterKey,
    /// Its budget.
    pub budget: Money,
    /// Soft or strict.
    pub mode: EnforcementMode,
    /// The period the window is one of.
    pub period: Period,
}

/// What a reservation holds on one counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// The counter.
    pub key: CounterKey,
    /// The period the window is one of.
    pub period: Period,
    /// The counter's budget at admission.
    pub budget: Money,
    /// Spend + holds of the counter at admission, this reservation included.
    pub committed: Money,
}

impl Hold {
    /// Budget left after this reservation's admission (never negative).
    pub fn remaining(&self) -> Money {
        self.budget.saturating_sub(self.committed).non_negative()
    }
}

/// An admitted request's hold on every budget it counts in (all of them, or none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// The limiter it spends from.
    pub limiter_id: LimiterId,
    /// The amount held on each counter.
    pub amount: Money,
    /// When the request was admitted.
    pub at: DateTime<Utc>,
    /// One hold per counter, the limiter's primary window first.
    pub holds: Vec<Hold>,
    /// The window of the tightest hold (least budget left): what budget headers show.
    pub window: Window,
    /// The tightest hold's budget.
    pub budget: Money,
    /// The tightest hold's spend + holds at admission, this reservation included.
    pub committed: Money,
}

impl Reservation {
    /// A reservation of `amount` with these holds (at least one); the headline figures
    /// (`window`, `budget`, `committed`) are the tightest hold's.
    pub fn new(limiter_id: LimiterId, amount: Money, at: DateTime<Utc>, holds: Vec<Hold>) -> Self {
        let tightest = holds
            .iter()
            .min_by_key(|h| h.remaining())
            .expect("a reservation holds at least one counter");
        Reservation {
            id: ReservationId::new(),
            limiter_id,
            amount,
            at,
            window: tightest.key.window,
            budget: tightest.budget,
            committed: tightest.committed,
            holds,
        }
    }

    /// Budget left after this reservation's admission, in its tightest counter (never
    /// negative).
    pub fn remaining(&self) -> Money {
        self.budget.saturating_sub(self.committed).non_negative()
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenialReason {
    /// The window's budget is used up (soft), or the request would pass it (strict).
    BudgetExceeded,
    /// The limiter is switched off.
    Inactive,
    /// The limiter is past its `expires_at`.
    Expired,
}

/// A refusal, with the figures that explain it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The limiter.
    pub limiter_id: LimiterId,
    /// Set when the refusing budget is this end user's (a per-user budget).
    pub user: Option<String>,
    /// Why.
    pub reason: DenialReason,
    /// Settled spend in the window.
    pub spent: Money,
    /// Held by requests in flight.
    pub held: Money,
    /// What this request asked to hold.
    pub requested: Money,
    /// The budget.
    pub budget: Money,
    /// The limiter's period.
    pub period: Period,
    /// The window.
    pub window: Window,
}

impl Denial {
    /// The product's 429 message:
    /// `Budget limit exceeded: $20.50/$20.00 per day. Current usage: 102.5%`.
    ///
    /// The usage shown is spend plus holds (what the budget is committed to), or, in strict
    /// mode when that is still under budget, what it would be with this request.
    pub fn message(&self) -> String {
        match self.reason {
            DenialReason::Inactive => "This limiter is inactive".to_owned(),
            DenialReason::Expired => "This limiter has expired".to_owned(),
            DenialReason::BudgetExceeded => {
                let mut used = self.spent.saturating_add(self.held);
                if used < self.budget {
                    used = used.saturating_add(self.requested);
                }
                let whose = match &self.user {
                    Some(user) => format!("User budget limit exceeded for user {user:?}"),
                    None => "Budget limit exceeded".to_owned(),
                };
                format!(
                    "{whose}: {used}/{} per {}. Current usage: {}%",
                    self.budget,
                    self.period,
                    format_percent_bp(used.percent_of_bp(self.budget).unwrap_or(0))
                )
            }
        }
    }
}

/// Basis points (1/100 %) as a percentage with one decimal: 10 250 → `102.5`.
pub fn format_percent_bp(bp: i64) -> String {
    let tenths = percent_tenths(bp);
    format!("{}.{}", tenths / 10, (tenths % 10).abs())
}

/// Basis points (1/100 %) rounded (half away from zero) to tenths of a percent:
/// 10 250 → 1 025 (102.5 %), 2 625 → 263.
pub fn percent_tenths(bp: i64) -> i64 {
    (bp + if bp >= 0 { 5 } else { -5 }) / 10
}

/// The outcome of [`BudgetStore::reserve`](super::BudgetStore::reserve).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveOutcome {
    /// Admitted, with a hold to settle or release.
    Reserved(Reservation),
    /// Refused.
    Denied(Denial),
}

/// A window's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSpend {
    /// The window.
    pub window: Window,
    /// Settled spend.
    pub spent: Money,
    /// Held by reservations not yet settled or released.
    pub held: Money,
    /// Number of such reservations.
    pub in_flight: u64,
    /// Set aside for replicas' slices of the budget but neither spent nor held yet (stores
    /// shared by several replicas, such as `budget-store-postgres`; zero elsewhere).
    /// `spent + held + leased` is what the budget is committed to.
    #[serde(default)]
    pub leased: Money,
}

/// The longest `model` or `user` (in characters) a [`UsageRecord`] keeps. Proxies refuse
/// requests whose `model` or `user` is longer (see `budget-tower`); a longer model name in a
/// response is cut to this length by [`bounded_label`], so no request can make a store keep
/// more than a small fixed amount.
pub const MAX_LABEL_CHARS: usize = 256;

/// `s` cut to [`MAX_LABEL_CHARS`] characters, with `…` as the last one when it was cut.
pub fn bounded_label(s: &str) -> String {
    match s.char_indices().nth(MAX_LABEL_CHARS - 1) {
        Some((i, _)) if s[i..].chars().nth(1).is_some() => format!("{}…", &s[..i]),
        _ => s.to_owned(),
    }
}

/// One metered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Its id.
    pub id: Uuid,
    /// When the request was admitted (the window it counts in).
    pub at: DateTime<Utc>,
    /// The limiter charged.
    pub limiter_id: LimiterId,
    /// The model that served it, if known.
    pub model: Option<String>,
    /// The end user it was for (OpenAI `user` field or a header).
    pub user: Option<String>,
    /// Which API.
    pub endpoint: Endpoint,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Cached input tokens (inside `prompt_tokens`).
    pub cached_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Reasoning tokens (inside `completion_tokens`).
    pub reasoning_tokens: u64,
    /// What it cost.
    pub cost: Money,
    /// The model had no price: `cost` is not a real $0.
    pub unpriced: bool,
    /// Some counts were estimated (stream cut short, no usage block).
    pub estimated: bool,
    /// HTTP status returned to the client.
    pub status: u16,
    /// Whether the response was a stream.
    pub streamed: bool,
    /// Time from admission to the end of the response, in milliseconds.
    pub latency_ms: u64,
    /// The price table that priced it ([`PriceTable::version`]); `None` when unknown (records
    /// from before this was kept, or recorded by hand).
    ///
    /// [`PriceTable::version`]: crate::pricing::PriceTable::version
    #[serde(default)]
    pub price_version: Option<String>,
}

impl UsageRecord {
    /// A record of `usage` for `limiter_id`; status 200, not streamed, no user.
    pub fn new(
        limiter_id: LimiterId,
        at: DateTime<Utc>,
        endpoint: Endpoint,
        usage: &Usage,
        cost: Option<Money>,
    ) -> Self {
        UsageRecord {
            id: Uuid::new_v4(),
            at,
            limiter_id,
            model: usage.model.as_deref().map(bounded_label),
            user: None,
            endpoint,
            prompt_tokens: usage.prompt_tokens,
            cached_tokens: usage.cached_tokens,
            completion_tokens: usage.completion_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            cost: cost.unwrap_or(Money::ZERO),
            unpriced: cost.is_none(),
            estimated: usage.estimated,
            status: 200,
            streamed: false,
            latency_ms: 0,
            price_version: None,
        }
    }

    /// The form a database keeps: no difference between no model (or user) and an empty one
    /// (both `None`), and `at` to the microsecond. Stores that write records call it first,
    /// so what they answer reads the same before and after a restart.
    pub fn normalize(&mut self) {
        self.model = self.model.take().filter(|m| !m.is_empty());
        self.user = self.user.take().filter(|u| !u.is_empty());
        self.at = DateTime::from_timestamp_micros(self.at.timestamp_micros()).unwrap_or(self.at);
    }

    /// `prompt_tokens + completion_tokens`.
    pub fn total_tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// Which records a statistics query covers: a limiter (or all, deleted ones included) and a
/// half-open time range `[from, to)` (open-ended where `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    /// Only this limiter.
    pub limiter_id: Option<LimiterId>,
    /// Records at or after.
    pub from: Option<DateTime<Utc>>,
    /// Records before.
    pub to: Option<DateTime<Utc>>,
}

/// Where a page of [`UsageStats::usage_page`](super::UsageStats::usage_page) ends: the
/// `(at, id)` of its last record. Records are in `(at, id)` order, so the next page starts
/// strictly after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageCursor {
    /// The record's time.
    pub at: DateTime<Utc>,
    /// The record's id.
    pub id: Uuid,
}

impl UsageCursor {
    /// The cursor just after `r`.
    pub fn after(r: &UsageRecord) -> Self {
        UsageCursor { at: r.at, id: r.id }
    }

    /// Does `r` come after this cursor in `(at, id)` order?
    pub fn precedes(&self, r: &UsageRecord) -> bool {
        (r.at, r.id) > (self.at, self.id)
    }
}

impl UsageQuery {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// One limiter's records in one window.
    pub fn window(limiter_id: LimiterId, window: Window) -> Self {
        UsageQuery {
            limiter_id: Some(limiter_id),
            from: Some(window.start),
            to: Some(window.end),
        }
    }

    /// Does `r` match?
    pub fn matches(&self, r: &UsageRecord) -> bool {
        self.limiter_id.is_none_or(|l| l == r.limiter_id)
            && self.from.is_none_or(|f| r.at >= f)
            && self.to.is_none_or(|t| r.at < t)
    }
}

/// Aggregates over a set of usage records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Requests.
    pub requests: u64,
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Cached input tokens.
    pub cached_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Input + output tokens.
    pub total_tokens: u64,
    /// Cost.
    pub cost: Money,
    /// Requests for unpriced models.
    pub unpriced_requests: u64,
    /// Requests with estimated counts.
    pub estimated_requests: u64,
    /// Requests answered with status ≥ 400.
    pub error_requests: u64,
    /// Distinct non-empty users.
    pub distinct_users: u64,
}

impl UsageTotals {
    /// Add one record (everything but `distinct_users`, which needs the set of users).
    pub fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        self.prompt_tokens += r.prompt_tokens;
        self.cached_tokens += r.cached_tokens;
        self.completion_tokens += r.completion_tokens;
        self.reasoning_tokens += r.reasoning_tokens;
        self.total_tokens += r.total_tokens();
        self.cost += r.cost;
        self.unpriced_requests += u64::from(r.unpriced);
        self.estimated_requests += u64::from(r.estimated);
        self.error_requests += u64::from(r.status >= 400);
    }
}

/// What to break statistics down by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Per limiter (key: the limiter id).
    Limiter,
    /// Per model.
    Model,
    /// Per end user.
    User,
}

/// One row of a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageGroup {
    /// The limiter id, model or user; `None` for records without one.
    pub key: Option<String>,
    /// Its totals.
    pub totals: UsageTotals,
}

/// Time-series bucket width (UTC-aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    /// One minute.
    Minute,
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl BucketSize {
    /// The width.
    pub fn width(self) -> TimeDelta {
        match self {
            BucketSize::Minute => TimeDelta::minutes(1),
            BucketSize::Hour => TimeDelta::hours(1),
            BucketSize::Day => TimeDelta::days(1),
        }
    }

    /// The start of the bucket containing `t`.
    pub fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.duration_trunc(self.width()).unwrap_or(t)
    }
}

/// One point of a time series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageBucket {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Totals of records in `[start, start + width)`.
    pub totals: UsageTotals,
}

/// How much accepted usage a store has not yet made durable, and whether writing it is
/// failing: what `/health` and the metrics report. A store that writes before returning
/// reports the default (nothing waiting, no failures); see [`BudgetStore::write_status`].
///
/// [`BudgetStore::write_status`]: super::BudgetStore::write_status
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteStatus {
    /// Usage records counted against budgets but not yet durable.
    pub unsaved_events: u64,
    /// Failed attempts to make usage durable since the store opened (only grows).
    pub write_errors: u64,
    /// Set while the last attempt to write usage failed.
    pub failing: Option<WriteFailure>,
    /// True while the store refuses new reservations because too much usage waits unsaved.
    pub refusing: bool,
}

/// Why and since when a store fails to write usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteFailure {
    /// The last error.
    pub error: String,
    /// When the first of the failures in a row happened.
    pub since: DateTime<Utc>,
    /// Seconds the oldest unsaved usage record has waited.
    pub oldest_unsaved_seconds: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(bounded_label("gpt-4o"), "gpt-4o");
        let exact = "é".repeat(MAX_LABEL_CHARS);
        assert_eq!(bounded_label(&exact), exact);
        let long = "é".repeat(4 * 1024 * 1024);
        let cut = bounded_label(&long);
        assert_eq!(cut.chars().count(), MAX_LABEL_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn seed_429_message() {
        let t = Utc::now();
        let d = Denial {
            limiter_id: LimiterId::new(),
            user: None,
            reason: DenialReason::BudgetExceeded,
            spent: Money::from_cents(2050),
            held: Money::ZERO,
            requested: Money::from_cents(1),
            budget: Money::from_dollars(20),
            period: Period::Day,
            window: Period::Day.window_at(t),
        };
        assert_eq!(
            d.message(),
            "Budget limit exceeded: $20.50/$20.00 per day. Current usage: 102.5%"
        );
        assert_eq!(format_percent_bp(10_000), "100.0");
        assert_eq!(format_percent_bp(2_625), "26.3");
        assert_eq!(format_percent_bp(0), "0.0");
    }

    #[test]
    fn buckets_floor_to_utc() {
        let t = DateTime::parse_from_rfc3339("2025-10-10T13:45:12Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            BucketSize::Hour.floor(t).to_rfc3339(),
            "2025-10-10T13:00:00+00:00"
        );
        assert_eq!(
            BucketSize::Day.floor(t).to_rfc3339(),
            "2025-10-10T00:00:00+00:00"
        );
    }
}

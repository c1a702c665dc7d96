//! Refused requests, counted per limiter, minute and reason, so an operator can tell an idle
//! customer from a blocked one. The server counts refusals in memory and adds them to the
//! store in batches ([`crate::store::LimiterCatalog::add_refusals`]): one row per limiter,
//! minute and reason, however many requests a client sends.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::LimiterId;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// Over a budget (`429 budget_exceeded`): the limiter's, an extra window's or a user's.
    Budget,
    /// The limiter is switched off (`403 limiter_inactive`).
    Inactive,
    /// The limiter has expired (`403 limiter_expired`).
    Expired,
    /// A model outside `allowed_models` (`403 model_not_allowed`).
    ModelRule,
    /// A worst case above `max_request_cost` (`400 request_cost_too_high`).
    PriceGuard,
    /// An unknown or unmetered endpoint (`403 unknown_endpoint` / `unmetered_endpoint`).
    UnknownEndpoint,
    /// Anything else the proxy refused (bad input, a missing user id, an unpriced model, the
    /// store unavailable…).
    Other,
}

impl RefusalReason {
    /// Every reason, in this order.
    pub const ALL: [RefusalReason; 7] = [
        RefusalReason::Budget,
        RefusalReason::Inactive,
        RefusalReason::Expired,
        RefusalReason::ModelRule,
        RefusalReason::PriceGuard,
        RefusalReason::UnknownEndpoint,
        RefusalReason::Other,
    ];

    /// `budget`, `inactive`, `expired`, `model_rule`, `price_guard`, `unknown_endpoint`,
    /// `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Budget => "budget",
            RefusalReason::Inactive => "inactive",
            RefusalReason::Expired => "expired",
            RefusalReason::ModelRule => "model_rule",
            RefusalReason::PriceGuard => "price_guard",
            RefusalReason::UnknownEndpoint => "unknown_endpoint",
            RefusalReason::Other => "other",
        }
    }

    /// The reason of a refusal with OpenAI error `code` (as the proxy answers it).
    pub fn of_code(code: &str) -> Self {
        match code {
            "budget_exceeded" => RefusalReason::Budget,
            "limiter_inactive" => RefusalReason::Inactive,
            "limiter_expired" => RefusalReason::Expired,
            "model_not_allowed" => RefusalReason::ModelRule,
            "request_cost_too_high" => RefusalReason::PriceGuard,
            "unknown_endpoint" | "unmetered_endpoint" | "unknown_url" => {
                RefusalReason::UnknownEndpoint
            }
            _ => RefusalReason::Other,
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefusalReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RefusalReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown refusal reason {s:?}"))
    }
}

/// Refusals of one limiter, in one minute, for one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefusalCount {
    /// The limiter.
    pub limiter_id: LimiterId,
    /// The start of the minute (UTC).
    pub minute: DateTime<Utc>,
    /// Why.
    pub reason: RefusalReason,
    /// How many.
    pub count: u64,
}

/// The start of the minute `t` is in.
pub fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// Refusals summed over a range: per limiter and reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RefusalGroup {
    /// The limiter.
    pub limiter_id: LimiterId,
    /// Why.
    pub reason: RefusalReason,
    /// How many.
    pub count: u64,
}

/// Order groups as [`crate::store::UsageStats::refusals`] answers them: most first, then by
/// limiter and reason.
pub fn sort_groups(groups: &mut [RefusalGroup]) {
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.limiter_id.cmp(&b.limiter_id))
            .then(a.reason.cmp(&b.reason))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_and_codes_map() {
        for r in RefusalReason::ALL {
            assert_eq!(r.as_str().parse::<RefusalReason>().unwrap(), r);
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(
            RefusalReason::of_code("budget_exceeded"),
            RefusalReason::Budget
        );
        assert_eq!(
            RefusalReason::of_code("unmetered_endpoint"),
            RefusalReason::UnknownEndpoint
        );
        assert_eq!(
            RefusalReason::of_code("user_required"),
            RefusalReason::Other
        );
    }
}

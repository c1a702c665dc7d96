//! Budget policies beyond one amount per window: more windows, a budget per end user, model
//! rules, a per-request price guard and expiry. How they combine is explained in
//! `docs/concepts.md`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::limiter::ValidationError;
use crate::{Money, Period};

/// Most extra windows a limiter may have.
pub const MAX_EXTRA_BUDGETS: usize = 8;
/// Most model rules a limiter may have.
pub const MAX_ALLOWED_MODELS: usize = 100;
/// Most per-user overrides a limiter may have.
pub const MAX_USER_OVERRIDES: usize = 10_000;

/// A budget over a calendar period: `{"budget_limit": 5, "period_type": "hour"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetWindow {
    /// The budget per period, more than $0.
    pub budget_limit: Money,
    /// `minute | hour | day | week | month | year` (in the limiter's time zone).
    pub period_type: Period,
}

impl BudgetWindow {
    /// `budget_limit` per `period_type`.
    pub fn new(budget_limit: Money, period_type: Period) -> Self {
        BudgetWindow {
            budget_limit,
            period_type,
        }
    }

    pub(crate) fn validate(&self, field: &'static str) -> Result<(), ValidationError> {
        crate::limiter::budget_bounds(self.budget_limit)
            .map_err(|reason| ValidationError::new(field, format!("budget_limit {reason}")))
    }
}

/// The limiter's extra windows: at most [`MAX_EXTRA_BUDGETS`], each period at most once and
/// none the primary window's period (two budgets over the same windows would be one budget).
pub(crate) fn validate_extra_budgets(
    primary: Period,
    extra: &[BudgetWindow],
) -> Result<(), ValidationError> {
    const F: &str = "extra_budgets";
    if extra.len() > MAX_EXTRA_BUDGETS {
        return Err(ValidationError::new(
            F,
            format!("at most {MAX_EXTRA_BUDGETS} windows"),
        ));
    }
    for (i, w) in extra.iter().enumerate() {
        w.validate(F)?;
        if w.period_type == primary {
            return Err(ValidationError::new(
                F,
                format!(
                    "{} is the limiter's own period (budget_limit/period_type); pick another period",
                    w.period_type
                ),
            ));
        }
        if extra[..i].iter().any(|o| o.period_type == w.period_type) {
            return Err(ValidationError::new(
                F,
                format!("{} appears twice", w.period_type),
            ));
        }
    }
    Ok(())
}

/// `allowed_models`: exact names or `*` globs (`gpt-4o-mini`, `text-embedding-3-*`, `*-mini`);
/// empty allows every model.
pub(crate) fn validate_allowed_models(models: &[String]) -> Result<(), ValidationError> {
    const F: &str = "allowed_models";
    if models.len() > MAX_ALLOWED_MODELS {
        return Err(ValidationError::new(
            F,
            format!("at most {MAX_ALLOWED_MODELS} entries"),
        ));
    }
    for m in models {
        if m.is_empty() || m.chars().count() > 256 {
            return Err(ValidationError::new(
                F,
                "each entry must be 1 to 256 characters",
            ));
        }
        if m.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ValidationError::new(
                F,
                format!("{m:?}: no spaces or control characters"),
            ));
        }
    }
    Ok(())
}

/// `max_request_cost`: more than $0.
pub(crate) fn validate_max_request_cost(cost: Option<Money>) -> Result<(), ValidationError> {
    match cost {
        Some(c) if c <= Money::ZERO => Err(ValidationError::new(
            "max_request_cost",
            "must be greater than 0 (or null for no cap)",
        )),
        _ => Ok(()),
    }
}

/// Per-user overrides: bounded in number, non-empty user ids of at most 256 characters.
pub(crate) fn validate_user_overrides(
    overrides: &BTreeMap<String, BudgetWindow>,
) -> Result<(), ValidationError> {
    const F: &str = "user_overrides";
    if overrides.len() > MAX_USER_OVERRIDES {
        return Err(ValidationError::new(
            F,
            format!("at most {MAX_USER_OVERRIDES} users"),
        ));
    }
    for (user, w) in overrides {
        validate_user_id(user)?;
        w.validate(F)?;
    }
    Ok(())
}

/// An end-user id as used for per-user budgets: 1–256 characters, no control characters.
pub fn validate_user_id(user: &str) -> Result<(), ValidationError> {
    if user.is_empty() || user.chars().count() > crate::store::MAX_LABEL_CHARS {
        return Err(ValidationError::new("user", "must be 1 to 256 characters"));
    }
    if user.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "user",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Does `model` match `pattern` (exact, or `*` standing for any run of characters)? Case
/// sensitive, as OpenAI's model names are.
///
/// ```
/// use budget_core::policy::model_matches;
/// assert!(model_matches("text-embedding-3-*", "text-embedding-3-small"));
/// assert!(model_matches("*-mini", "gpt-4o-mini"));
/// assert!(!model_matches("gpt-4o-mini", "gpt-4o"));
/// ```
pub fn model_matches(pattern: &str, model: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = model.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty(); // no `*`: exact
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Is the limiter past its `expires_at`?
pub fn expired(expires_at: Option<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    expires_at.is_some_and(|e| at >= e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, m, ok) in [
            ("gpt-4o-mini", "gpt-4o-mini", true),
            ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", false),
            ("gpt-4o-mini*", "gpt-4o-mini-2024-07-18", true),
            ("*", "anything", true),
            ("*", "", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "a-x-c-y-b", false),
            ("ab*ba", "aba", false),
            ("*-mini", "gpt-4o-mini", true),
            ("*-mini", "gpt-4o-mini-tts", false),
            ("GPT-4o", "gpt-4o", false),
        ] {
            assert_eq!(model_matches(p, m), ok, "{p} vs {m}");
        }
    }

    #[test]
    fn extra_windows_are_distinct_periods() {
        let w = |d: i64, p| BudgetWindow::new(Money::from_dollars(d), p);
        assert!(validate_extra_budgets(Period::Month, &[w(5, Period::Hour)]).is_ok());
        let e = validate_extra_budgets(Period::Hour, &[w(5, Period::Hour)]).unwrap_err();
        assert_eq!(e.field, "extra_budgets");
        assert!(
            validate_extra_budgets(Period::Day, &[w(5, Period::Hour), w(6, Period::Hour)]).is_err()
        );
        assert!(validate_extra_budgets(Period::Day, &[w(0, Period::Hour)]).is_err());
    }
}

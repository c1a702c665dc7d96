//! A limiter as a database keeps it: every amount in integer nano-dollars, every instant in
//! unix microseconds, names of variants as text. No floats: [`Money`]'s JSON form for the API
//! is a number of dollars, which is not exact enough to store.
//!
//! `budget-store-sqlite` keeps the policies ([`StoredPolicy`]) as a JSON column beside its
//! other columns; `budget-store-postgres` keeps a whole [`StoredLimiter`] as one document. A
//! custom store can use either.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{
    EnforcementMode, Limiter, LimiterCode, LimiterId, PreviousCode, Provider, UnpricedPolicy,
};
use crate::alert::AlertSettings;
use crate::api::UnmeteredPolicy;
use crate::credential::CredentialId;
use crate::policy::BudgetWindow;
use crate::{Money, Period};

/// A budget window as stored: integer nano-dollars and the period's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWindow {
    /// The budget in nano-dollars.
    pub nanos: i64,
    /// `minute | hour | day | week | month | year`.
    pub period: String,
}

impl StoredWindow {
    fn from(w: &BudgetWindow) -> Self {
        StoredWindow {
            nanos: w.budget_limit.as_nanos(),
            period: w.period_type.as_str().to_owned(),
        }
    }

    fn window(&self) -> Result<BudgetWindow, String> {
        Ok(BudgetWindow {
            budget_limit: Money::from_nanos(self.nanos),
            period_type: self.period.parse().map_err(|e| format!("policy: {e}"))?,
        })
    }
}

/// A limiter's policies as stored; `{}` is a limiter without any.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoredPolicy {
    /// [`Limiter::extra_budgets`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_budgets: Vec<StoredWindow>,
    /// [`Limiter::user_budget`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_budget: Option<StoredWindow>,
    /// [`Limiter::user_overrides`].
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub user_overrides: BTreeMap<String, StoredWindow>,
    /// [`Limiter::require_user`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub require_user: bool,
    /// [`Limiter::allowed_models`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
    /// [`Limiter::max_request_cost`] in nano-dollars.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_cost_nanos: Option<i64>,
    /// Not [`Limiter::cap_output_tokens`]: stored inverted so that `{}` means the default.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refuse_uncapped: bool,
    /// [`Limiter::expires_at`] in unix microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at_us: Option<i64>,
    /// [`Limiter::credential_id`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<CredentialId>,
    /// [`Limiter::previous_code`]'s code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_code: Option<String>,
    /// [`Limiter::previous_code`]'s end in unix microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_code_until_us: Option<i64>,
    /// [`Limiter::alerts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts: Option<AlertSettings>,
}

impl StoredPolicy {
    /// The policies of `l`.
    pub fn of(l: &Limiter) -> Self {
        StoredPolicy {
            extra_budgets: l.extra_budgets.iter().map(StoredWindow::from).collect(),
            user_budget: l.user_budget.as_ref().map(StoredWindow::from),
            user_overrides: l
                .user_overrides
                .iter()
                .map(|(u, w)| (u.clone(), StoredWindow::from(w)))
                .collect(),
            require_user: l.require_user,
            allowed_models: l.allowed_models.clone(),
            max_request_cost_nanos: l.max_request_cost.map(Money::as_nanos),
            refuse_uncapped: !l.cap_output_tokens,
            expires_at_us: l.expires_at.map(|t| t.timestamp_micros()),
            credential_id: l.credential_id,
            previous_code: l.previous_code.as_ref().map(|p| p.code.as_str().to_owned()),
            previous_code_until_us: l.previous_code.as_ref().map(|p| p.until.timestamp_micros()),
            alerts: l.alerts.clone(),
        }
    }

    /// The policies of `l` as JSON text.
    pub fn json_of(l: &Limiter) -> String {
        serde_json::to_string(&Self::of(l)).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Set `l`'s policies to these; `Err` names what is unreadable.
    pub fn apply(&self, l: &mut Limiter) -> Result<(), String> {
        l.extra_budgets = self
            .extra_budgets
            .iter()
            .map(StoredWindow::window)
            .collect::<Result<_, _>>()?;
        l.user_budget = self
            .user_budget
            .as_ref()
            .map(StoredWindow::window)
            .transpose()?;
        l.user_overrides = self
            .user_overrides
            .iter()
            .map(|(u, w)| Ok((u.clone(), w.window()?)))
            .collect::<Result<_, String>>()?;
        l.require_user = self.require_user;
        l.allowed_models = self.allowed_models.clone();
        l.max_request_cost = self.max_request_cost_nanos.map(Money::from_nanos);
        l.cap_output_tokens = !self.refuse_uncapped;
        l.expires_at = self.expires_at_us.map(instant).transpose()?;
        l.credential_id = self.credential_id;
        l.alerts = self.alerts.clone();
        l.previous_code = match (&self.previous_code, self.previous_code_until_us) {
            (Some(code), Some(until)) => Some(PreviousCode {
                code: LimiterCode::parse(code).map_err(|e| format!("previous code: {e}"))?,
                until: instant(until)?,
            }),
            _ => None,
        };
        Ok(())
    }

    /// [`apply`](Self::apply) the policies in JSON text `json`.
    pub fn apply_json(l: &mut Limiter, json: &str) -> Result<(), String> {
        let p: StoredPolicy =
            serde_json::from_str(json).map_err(|e| format!("policy {json:?}: {e}"))?;
        p.apply(l)
    }
}

fn instant(us: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| format!("time {us} out of range"))
}

/// A whole limiter as stored (see the [module docs](self)).
///
/// ```
/// use budget_core::limiter::stored::StoredLimiter;
/// use budget_core::{Limiter, Money, NewLimiter, Period};
///
/// let l = Limiter::create(NewLimiter::new("a", Money::from_cents(1999), Period::Day, "https://api.openai.com"), chrono::Utc::now())?;
/// let json = serde_json::to_string(&StoredLimiter::of(&l)).unwrap();
/// assert!(json.contains("\"budget_nanos\":19990000000"));
/// let back: StoredLimiter = serde_json::from_str(&json).unwrap();
/// assert_eq!(back.limiter().unwrap().budget_limit, l.budget_limit);
/// # Ok::<(), budget_core::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredLimiter {
    /// [`Limiter::id`].
    pub id: LimiterId,
    /// [`Limiter::name`].
    pub name: String,
    /// [`Limiter::code`].
    pub code: String,
    /// [`Limiter::budget_limit`] in nano-dollars.
    pub budget_nanos: i64,
    /// [`Limiter::period_type`].
    pub period: Period,
    /// [`Limiter::timezone`], an IANA name.
    pub timezone: String,
    /// [`Limiter::base_url`].
    pub base_url: String,
    /// [`Limiter::provider`].
    pub provider: Provider,
    /// [`Limiter::mode`].
    pub mode: EnforcementMode,
    /// [`Limiter::unpriced`].
    pub unpriced: UnpricedPolicy,
    /// [`Limiter::unmetered_endpoints`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmetered_endpoints: Option<UnmeteredPolicy>,
    /// [`Limiter::is_active`].
    pub is_active: bool,
    /// [`Limiter::created_at`] in unix microseconds.
    pub created_at_us: i64,
    /// [`Limiter::updated_at`] in unix microseconds.
    pub updated_at_us: i64,
    /// [`Limiter::deleted_at`] in unix microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at_us: Option<i64>,
    /// The policies.
    #[serde(default)]
    pub policy: StoredPolicy,
}

impl StoredLimiter {
    /// `l` as stored.
    pub fn of(l: &Limiter) -> Self {
        StoredLimiter {
            id: l.id,
            name: l.name.clone(),
            code: l.code.as_str().to_owned(),
            budget_nanos: l.budget_limit.as_nanos(),
            period: l.period_type,
            timezone: l.timezone.name().to_owned(),
            base_url: l.base_url.to_string(),
            provider: l.provider,
            mode: l.mode,
            unpriced: l.unpriced,
            unmetered_endpoints: l.unmetered_endpoints,
            is_active: l.is_active,
            created_at_us: l.created_at.timestamp_micros(),
            updated_at_us: l.updated_at.timestamp_micros(),
            deleted_at_us: l.deleted_at.map(|t| t.timestamp_micros()),
            policy: StoredPolicy::of(l),
        }
    }

    /// The limiter; `Err` names what is unreadable.
    pub fn limiter(&self) -> Result<Limiter, String> {
        let mut l = Limiter {
            id: self.id,
            name: self.name.clone(),
            code: LimiterCode::parse(&self.code).map_err(|e| e.to_string())?,
            budget_limit: Money::from_nanos(self.budget_nanos),
            period_type: self.period,
            timezone: self
                .timezone
                .parse()
                .map_err(|e| format!("timezone {:?}: {e}", self.timezone))?,
            base_url: self
                .base_url
                .parse()
                .map_err(|e| format!("base_url {:?}: {e}", self.base_url))?,
            provider: self.provider,
            mode: self.mode,
            unpriced: self.unpriced,
            unmetered_endpoints: self.unmetered_endpoints,
            is_active: self.is_active,
            extra_budgets: Vec::new(),
            user_budget: None,
            user_overrides: BTreeMap::new(),
            require_user: false,
            allowed_models: Vec::new(),
            max_request_cost: None,
            cap_output_tokens: true,
            expires_at: None,
            created_at: instant(self.created_at_us)?,
            updated_at: instant(self.updated_at_us)?,
            deleted_at: self.deleted_at_us.map(instant).transpose()?,
            credential_id: None,
            previous_code: None,
            alerts: None,
        };
        self.policy.apply(&mut l)?;
        Ok(l)
    }
}

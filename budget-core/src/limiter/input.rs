//! The bodies of "create limiter" and "update limiter", as the admin API reads them.

use super::*;

/// The body of "create limiter": the seed's fields plus optional ones with defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLimiter {
    /// Human name (1–200 characters).
    pub name: String,
    /// Budget per period, more than $0.
    pub budget_limit: Money,
    /// `minute | hour | day | week | month | year`.
    pub period_type: Period,
    /// Upstream URL (http or https).
    pub base_url: String,
    /// IANA time zone for day/week/month/year (default UTC).
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// `openai` (default) or `azure`.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// `soft` (default) or `strict`.
    #[serde(default)]
    pub mode: Option<EnforcementMode>,
    /// `admit` (default) or `refuse`.
    #[serde(default)]
    pub unpriced: Option<UnpricedPolicy>,
    /// `refuse` or `allow` unmetered and unknown endpoints; absent or `null`: the server's
    /// setting.
    #[serde(default)]
    pub unmetered_endpoints: Option<UnmeteredPolicy>,
    /// Default true.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// More windows, e.g. `[{"budget_limit": 5, "period_type": "hour"}]` (default none).
    #[serde(default, deserialize_with = "null_default")]
    pub extra_budgets: Vec<BudgetWindow>,
    /// The budget of each end user (default none).
    #[serde(default)]
    pub user_budget: Option<BudgetWindow>,
    /// Refuse requests without an end user (default false).
    #[serde(default)]
    pub require_user: Option<bool>,
    /// Allowed models, exact or `*` globs (default: all).
    #[serde(default, deserialize_with = "null_default")]
    pub allowed_models: Vec<String>,
    /// Worst-case cost cap per request (default none).
    #[serde(default)]
    pub max_request_cost: Option<Money>,
    /// Cap the output of requests without an output limit instead of refusing them (default
    /// true).
    #[serde(default)]
    pub cap_output_tokens: Option<bool>,
    /// When the limiter stops working (RFC 3339; default never).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// The upstream credential the server sends instead of the client's key (default none:
    /// the client's key goes upstream).
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    /// Threshold alerts (default: the server's thresholds and webhook; see
    /// [`crate::alert`]).
    #[serde(default)]
    pub alerts: Option<AlertSettings>,
}

impl NewLimiter {
    /// A new limiter input with the required fields and defaults for the rest.
    pub fn new(
        name: impl Into<String>,
        budget_limit: Money,
        period_type: Period,
        base_url: impl Into<String>,
    ) -> Self {
        NewLimiter {
            name: name.into(),
            budget_limit,
            period_type,
            base_url: base_url.into(),
            timezone: None,
            provider: None,
            mode: None,
            unpriced: None,
            unmetered_endpoints: None,
            is_active: None,
            extra_budgets: Vec::new(),
            user_budget: None,
            require_user: None,
            allowed_models: Vec::new(),
            max_request_cost: None,
            cap_output_tokens: None,
            expires_at: None,
            credential_id: None,
            alerts: None,
        }
    }

    /// Check every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_name(&self.name)?;
        validate_budget(self.budget_limit)?;
        parse_base_url(&self.base_url)?;
        if let Some(a) = &self.alerts {
            a.validate()?;
        }
        Ok(())
    }
}

/// A partial update: absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimiterUpdate {
    /// New name.
    #[serde(default)]
    pub name: Option<String>,
    /// New budget.
    #[serde(default)]
    pub budget_limit: Option<Money>,
    /// New period.
    #[serde(default)]
    pub period_type: Option<Period>,
    /// New time zone.
    #[serde(default)]
    pub timezone: Option<Tz>,
    /// New upstream.
    #[serde(default)]
    pub base_url: Option<String>,
    /// New provider.
    #[serde(default)]
    pub provider: Option<Provider>,
    /// New enforcement mode.
    #[serde(default)]
    pub mode: Option<EnforcementMode>,
    /// New unpriced-model policy.
    #[serde(default)]
    pub unpriced: Option<UnpricedPolicy>,
    /// New unmetered-endpoint policy; `null` returns to the server's setting.
    #[serde(default, deserialize_with = "present")]
    pub unmetered_endpoints: Option<Option<UnmeteredPolicy>>,
    /// Activate or deactivate.
    #[serde(default)]
    pub is_active: Option<bool>,
    /// New extra windows (`[]` removes them all).
    #[serde(default)]
    pub extra_budgets: Option<Vec<BudgetWindow>>,
    /// New per-user budget; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub user_budget: Option<Option<BudgetWindow>>,
    /// Set (`Some`) or remove (`None`) one end user's budget override (the admin API's
    /// `PUT`/`DELETE /api/limiters/{id}/users/{user}`).
    #[serde(skip)]
    pub user_override: Option<(String, Option<BudgetWindow>)>,
    /// Refuse requests without an end user.
    #[serde(default)]
    pub require_user: Option<bool>,
    /// New model rules (`[]` allows every model).
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    /// New worst-case cap per request; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub max_request_cost: Option<Option<Money>>,
    /// Cap output instead of refusing.
    #[serde(default)]
    pub cap_output_tokens: Option<bool>,
    /// New expiry; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Attach an upstream credential; `null` detaches it (back to pass-through).
    #[serde(default, deserialize_with = "present")]
    pub credential_id: Option<Option<CredentialId>>,
    /// New alert settings; `null` goes back to the server's defaults.
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<AlertSettings>>,
}

impl LimiterUpdate {
    /// Check every present field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(n) = &self.name {
            validate_name(n)?;
        }
        if let Some(b) = self.budget_limit {
            validate_budget(b)?;
        }
        if let Some(u) = &self.base_url {
            parse_base_url(u)?;
        }
        if let Some(Some(a)) = &self.alerts {
            a.validate()?;
        }
        Ok(())
    }
}

/// `null` reads as the default (an empty list), like an absent field.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// A field that is present (even as `null`) becomes `Some`, so `null` can reset a setting.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

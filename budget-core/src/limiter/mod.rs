//! Limiters: a budget, a period, an upstream, and the secret code that names them in a URL.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rand::{RngCore, TryRngCore};
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

mod input;
pub mod stored;
mod validate;

use crate::alert::AlertSettings;
use crate::api::UnmeteredPolicy;
use crate::credential::CredentialId;
use crate::policy::{self, BudgetWindow};
use crate::store::{BudgetLine, CounterKey};
use crate::{Money, Period, Window};

/// A limiter's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LimiterId(pub Uuid);

impl LimiterId {
    /// A fresh random id.
    pub fn new() -> Self {
        LimiterId(Uuid::new_v4())
    }
}

impl Default for LimiterId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LimiterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for LimiterId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(LimiterId)
    }
}

/// The public proxy code in `/v1/{code}/...` (or the API key, for limiters whose upstream
/// key the server holds): [`LimiterCode::PREFIX`] and 128 bits from the operating system's
/// CSPRNG as 32 lowercase hex digits (URL-safe), e.g. `sk-budget-3f9c…`. The prefix lets
/// secret scanners find leaked codes (`sk-budget-[0-9a-f]{32}`); codes made before it was
/// introduced (32 hex digits) keep working. Whoever holds it can spend the limiter's
/// budget, so it is rotatable ([`crate::store::LimiterCatalog::rotate_code`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LimiterCode(String);

impl LimiterCode {
    /// What every generated code begins with.
    pub const PREFIX: &'static str = "sk-budget-";

    /// A new random code.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes)
            .unwrap_or_else(|_| {
                // The OS RNG failing is not recoverable in a meaningful way; fall back to the
                // thread RNG, which is itself seeded from the OS and cryptographically secure.
                rand::rng().fill_bytes(&mut bytes)
            });
        let mut s = String::with_capacity(Self::PREFIX.len() + 32);
        s.push_str(Self::PREFIX);
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        LimiterCode(s)
    }

    /// Check a code taken from a URL: 16 to 128 characters of `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        if Self::is_well_formed(s) {
            Ok(LimiterCode(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "code",
                "must be 16 to 128 characters of letters, digits, '-' or '_'",
            ))
        }
    }

    /// Could `s` be a code (16 to 128 characters of `[A-Za-z0-9_-]`)? Allocates nothing.
    pub fn is_well_formed(s: &str) -> bool {
        (16..=128).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LimiterCode {
    /// Only a prefix: the code is a credential and must not leak into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self
            .0
            .strip_prefix(Self::PREFIX)
            .map_or(0, |_| Self::PREFIX.len())
            + 4;
        write!(f, "LimiterCode({}…)", &self.0[..self.0.len().min(shown)])
    }
}

impl fmt::Display for LimiterCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for LimiterCode {
    type Error = ValidationError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LimiterCode::parse(&s)
    }
}

impl From<LimiterCode> for String {
    fn from(c: LimiterCode) -> String {
        c.0
    }
}

/// Which API the upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// OpenAI (`{base_url}/v1/...`), or anything OpenAI-compatible.
    #[default]
    #[serde(alias = "open_ai")]
    Openai,
    /// Azure OpenAI (`{base_url}/openai/deployments/{deployment}/...`, `{base_url}/openai/v1/...`).
    #[serde(alias = "azure_openai")]
    Azure,
}

/// How strictly the budget is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementMode {
    /// Admit a request while `spent + held < budget`. Requests already in flight when the
    /// budget runs out still finish, so spend can pass the budget by at most what was in
    /// flight. This is the original product's behaviour.
    #[default]
    Soft,
    /// Admit a request only if its worst-case cost fits: `spent + held + worst_case <= budget`.
    /// Spend can never pass the budget.
    Strict,
}

/// What to do with a request for a model the price table does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnpricedPolicy {
    /// Let it through and record its usage flagged as unpriced (cost $0, but visibly so).
    #[default]
    Admit,
    /// Refuse it with a 400 naming the model.
    Refuse,
}

/// A budget for one customer, department, project or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limiter {
    /// Identifier.
    pub id: LimiterId,
    /// Human name, e.g. `Customer A - $20/day`.
    pub name: String,
    /// The proxy code (`/v1/{code}/...`).
    pub code: LimiterCode,
    /// The budget per period.
    pub budget_limit: Money,
    /// How often the budget resets.
    pub period_type: Period,
    /// Where day/week/month/year begin (UTC by default).
    pub timezone: Tz,
    /// The upstream, e.g. `https://api.openai.com` or `https://x.openai.azure.com`. May carry a
    /// path prefix.
    pub base_url: Url,
    /// Which API the upstream speaks.
    pub provider: Provider,
    /// Soft or strict enforcement.
    pub mode: EnforcementMode,
    /// Unknown models: admit flagged, or refuse.
    pub unpriced: UnpricedPolicy,
    /// Endpoints that cost money but are not metered (batches, fine-tuning…) and unknown ones:
    /// `None` follows the server's setting. See [`crate::api`].
    #[serde(default)]
    pub unmetered_endpoints: Option<UnmeteredPolicy>,
    /// Inactive limiters refuse every request.
    pub is_active: bool,
    /// More budget windows besides the primary one (`budget_limit` per `period_type`), e.g.
    /// $5 an hour on top of $100 a month: a request must fit every window.
    #[serde(default)]
    pub extra_budgets: Vec<BudgetWindow>,
    /// The budget of each end user (the request's `user` field, or the configured header),
    /// inside the limiter's own. Requests without a user count only against the limiter's
    /// windows unless `require_user` is set.
    #[serde(default)]
    pub user_budget: Option<BudgetWindow>,
    /// Budgets of named end users, in place of `user_budget` for them.
    #[serde(default)]
    pub user_overrides: BTreeMap<String, BudgetWindow>,
    /// Refuse requests that name no end user.
    #[serde(default)]
    pub require_user: bool,
    /// The models this limiter may use: exact names or `*` globs; empty allows all.
    #[serde(default)]
    pub allowed_models: Vec<String>,
    /// The most one request may cost in the worst case (prompt + output limit).
    #[serde(default)]
    pub max_request_cost: Option<Money>,
    /// A request over `max_request_cost` that sets no output limit: give it the largest output
    /// limit that keeps it under the cap (true, the default), or refuse it (false).
    #[serde(default = "yes")]
    pub cap_output_tokens: bool,
    /// From this instant every request is refused (`403 limiter_expired`).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was deleted; its code no longer works, its usage stays for statistics.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The upstream credential held by the server ([`crate::credential`]): the proxy sends
    /// it in place of whatever key the client sent. `None`: the client's own key goes
    /// upstream, as it is (pass-through).
    #[serde(default)]
    pub credential_id: Option<CredentialId>,
    /// The code this limiter had before its last rotation, still accepted until its time
    /// (a rotation with a grace period); `None` once it is over or there was none.
    #[serde(default)]
    pub previous_code: Option<PreviousCode>,
    /// Threshold alerts; `None` follows the server's defaults ([`crate::alert`]).
    #[serde(default)]
    pub alerts: Option<AlertSettings>,
}

/// A code retired by a rotation with a grace period: it keeps working until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousCode {
    /// The old code.
    pub code: LimiterCode,
    /// When it stops working.
    pub until: DateTime<Utc>,
}

impl PreviousCode {
    /// Does it still work at `t`?
    pub fn valid_at(&self, t: DateTime<Utc>) -> bool {
        t < self.until
    }
}

impl Limiter {
    /// The budget window containing `t`.
    pub fn window_at(&self, t: DateTime<Utc>) -> Window {
        self.period_type.window_at_in(t, self.timezone)
    }

    /// Every budget a request at `t` for end user `user` must fit in: the primary window,
    /// then the extra windows, then the user's budget (an override, else `user_budget`) when
    /// there is a user. Stores reserve against all of them at once (see
    /// [`Ledger`](crate::store::Ledger)).
    pub fn budget_lines(&self, t: DateTime<Utc>, user: Option<&str>) -> Vec<BudgetLine> {
        let line = |user: Option<&str>, budget, period: Period| BudgetLine {
            key: CounterKey {
                limiter_id: self.id,
                user: user.map(str::to_owned),
                window: period.window_at_in(t, self.timezone),
            },
            budget,
            mode: self.mode,
            period,
        };
        let mut lines = Vec::with_capacity(1 + self.extra_budgets.len());
        lines.push(line(None, self.budget_limit, self.period_type));
        for w in &self.extra_budgets {
            lines.push(line(None, w.budget_limit, w.period_type));
        }
        if let Some(u) = user {
            if let Some(w) = self.user_budget_of(u) {
                lines.push(line(Some(u), w.budget_limit, w.period_type));
            }
        }
        lines
    }

    /// The budget of end user `user`: their override, else `user_budget`.
    pub fn user_budget_of(&self, user: &str) -> Option<&BudgetWindow> {
        self.user_overrides.get(user).or(self.user_budget.as_ref())
    }

    /// Does `allowed_models` let this model through?
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty()
            || self
                .allowed_models
                .iter()
                .any(|p| crate::policy::model_matches(p, model))
    }

    /// Is the limiter past `expires_at` at `t`?
    pub fn is_expired(&self, t: DateTime<Utc>) -> bool {
        crate::policy::expired(self.expires_at, t)
    }

    /// Check the fields that depend on each other (extra windows against the primary period).
    fn validate_policies(&self) -> Result<(), ValidationError> {
        policy::validate_extra_budgets(self.period_type, &self.extra_budgets)?;
        if let Some(w) = &self.user_budget {
            w.validate("user_budget")?;
        }
        policy::validate_user_overrides(&self.user_overrides)?;
        policy::validate_allowed_models(&self.allowed_models)?;
        policy::validate_max_request_cost(self.max_request_cost)?;
        Ok(())
    }

    /// Build a new limiter from validated input, with a fresh id and code.
    pub fn create(new: NewLimiter, now: DateTime<Utc>) -> Result<Limiter, ValidationError> {
        new.validate()?;
        Limiter {
            id: LimiterId::new(),
            name: new.name.trim().to_owned(),
            code: LimiterCode::generate(),
            budget_limit: new.budget_limit,
            period_type: new.period_type,
            timezone: new.timezone.unwrap_or(Tz::UTC),
            base_url: parse_base_url(&new.base_url)?,
            provider: new.provider.unwrap_or_default(),
            mode: new.mode.unwrap_or_default(),
            unpriced: new.unpriced.unwrap_or_default(),
            unmetered_endpoints: new.unmetered_endpoints,
            is_active: new.is_active.unwrap_or(true),
            extra_budgets: new.extra_budgets,
            user_budget: new.user_budget,
            user_overrides: BTreeMap::new(),
            require_user: new.require_user.unwrap_or(false),
            allowed_models: new.allowed_models,
            max_request_cost: new.max_request_cost,
            cap_output_tokens: new.cap_output_tokens.unwrap_or(true),
            expires_at: new.expires_at,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            credential_id: new.credential_id,
            previous_code: None,
            alerts: new.alerts,
        }
        .validated()
    }

    fn validated(self) -> Result<Limiter, ValidationError> {
        self.validate_policies()?;
        Ok(self)
    }

    /// Apply a partial update (validated first; on error nothing changes).
    pub fn apply(
        &mut self,
        update: &LimiterUpdate,
        now: DateTime<Utc>,
    ) -> Result<(), ValidationError> {
        update.validate()?;
        let mut next = self.clone();
        next.apply_fields(update)?;
        next.validate_policies()?;
        next.updated_at = now;
        *self = next;
        Ok(())
    }

    fn apply_fields(&mut self, update: &LimiterUpdate) -> Result<(), ValidationError> {
        if let Some(name) = &update.name {
            self.name = name.trim().to_owned();
        }
        if let Some(b) = update.budget_limit {
            self.budget_limit = b;
        }
        if let Some(p) = update.period_type {
            self.period_type = p;
        }
        if let Some(tz) = update.timezone {
            self.timezone = tz;
        }
        if let Some(u) = &update.base_url {
            self.base_url = parse_base_url(u)?;
        }
        if let Some(p) = update.provider {
            self.provider = p;
        }
        if let Some(m) = update.mode {
            self.mode = m;
        }
        if let Some(u) = update.unpriced {
            self.unpriced = u;
        }
        if let Some(u) = update.unmetered_endpoints {
            self.unmetered_endpoints = u;
        }
        if let Some(a) = update.is_active {
            self.is_active = a;
        }
        if let Some(e) = &update.extra_budgets {
            self.extra_budgets = e.clone();
        }
        if let Some(u) = update.user_budget {
            self.user_budget = u;
        }
        if let Some((user, w)) = &update.user_override {
            policy::validate_user_id(user)?;
            match w {
                Some(w) => {
                    self.user_overrides.insert(user.clone(), *w);
                }
                None => {
                    self.user_overrides.remove(user);
                }
            }
        }
        if let Some(r) = update.require_user {
            self.require_user = r;
        }
        if let Some(m) = &update.allowed_models {
            self.allowed_models = m.clone();
        }
        if let Some(c) = update.max_request_cost {
            self.max_request_cost = c;
        }
        if let Some(c) = update.cap_output_tokens {
            self.cap_output_tokens = c;
        }
        if let Some(e) = update.expires_at {
            self.expires_at = e;
        }
        if let Some(c) = update.credential_id {
            self.credential_id = c;
        }
        if let Some(a) = &update.alerts {
            self.alerts = a.clone();
        }
        Ok(())
    }

    /// A new random code. With `keep_old_until` in the future the current code keeps working
    /// until then (a grace period for clients to switch); otherwise it stops at once. Either
    /// way only the newest previous code is kept.
    pub fn rotate_code(&mut self, now: DateTime<Utc>, keep_old_until: Option<DateTime<Utc>>) {
        let old = std::mem::replace(&mut self.code, LimiterCode::generate());
        self.previous_code = keep_old_until
            .filter(|until| *until > now)
            .map(|until| PreviousCode { code: old, until });
        self.updated_at = now;
    }

    /// Does `code` name this limiter at `t`: its code, or its previous one in its grace period?
    pub fn answers_to(&self, code: &str, t: DateTime<Utc>) -> bool {
        self.code.as_str() == code
            || self
                .previous_code
                .as_ref()
                .is_some_and(|p| p.code.as_str() == code && p.valid_at(t))
    }
}

fn yes() -> bool {
    true
}

pub use input::{LimiterUpdate, NewLimiter};
pub(crate) use validate::budget_bounds;
pub use validate::{parse_base_url, ValidationError};
use validate::{validate_budget, validate_name};

#[cfg(test)]
mod tests {
    use super::*;

    fn new() -> NewLimiter {
        NewLimiter::new(
            "Customer A",
            Money::from_dollars(20),
            Period::Day,
            "https://api.openai.com",
        )
    }

    #[test]
    fn codes_are_random_and_url_safe() {
        let a = LimiterCode::generate();
        let b = LimiterCode::generate();
        assert_ne!(a, b);
        let hex = a
            .as_str()
            .strip_prefix(LimiterCode::PREFIX)
            .expect("prefixed");
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(LimiterCode::parse(a.as_str()).is_ok());
        // Codes from before the prefix still parse.
        assert!(LimiterCode::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(LimiterCode::parse("short").is_err());
        assert!(LimiterCode::parse("has/slash/in/it/xxxxxxxx").is_err());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn create_validates_and_defaults() {
        let l = Limiter::create(new(), Utc::now()).unwrap();
        assert_eq!(l.provider, Provider::Openai);
        assert_eq!(l.mode, EnforcementMode::Soft);
        assert!(l.is_active);
        assert_eq!(l.timezone, Tz::UTC);
        assert_eq!(l.base_url.as_str(), "https://api.openai.com/");

        let mut bad = new();
        bad.name = "  ".into();
        assert_eq!(Limiter::create(bad, Utc::now()).unwrap_err().field, "name");
        let mut bad = new();
        bad.budget_limit = Money::ZERO;
        assert_eq!(
            Limiter::create(bad, Utc::now()).unwrap_err().field,
            "budget_limit"
        );
        for url in [
            "ftp://x",
            "not a url",
            "https://x/?a=b",
            "https://u:p@x",
            "/relative",
        ] {
            let mut bad = new();
            bad.base_url = url.into();
            let e = Limiter::create(bad, Utc::now()).unwrap_err();
            assert_eq!(e.field, "base_url", "{url}");
        }
    }

    #[test]
    fn base_url_keeps_path_prefix() {
        let u = parse_base_url("https://gateway.example.com/openai/").unwrap();
        assert_eq!(u.path(), "/openai");
    }

    #[test]
    fn seed_body_deserializes_and_unknown_fields_are_refused() {
        let body = r#"{"name":"Customer A - $20/day","budget_limit":20.00,"period_type":"day","base_url":"https://api.openai.com"}"#;
        let n: NewLimiter = serde_json::from_str(body).unwrap();
        assert_eq!(n.budget_limit, Money::from_dollars(20));
        let bad = r#"{"name":"x","budget_limit":1,"period_type":"day","base_url":"https://a.b","colour":"red"}"#;
        assert!(serde_json::from_str::<NewLimiter>(bad)
            .unwrap_err()
            .to_string()
            .contains("colour"));
        let bad =
            r#"{"name":"x","budget_limit":1,"period_type":"fortnight","base_url":"https://a.b"}"#;
        assert!(serde_json::from_str::<NewLimiter>(bad).is_err());
    }

    #[test]
    fn update_is_partial_and_atomic() {
        let mut l = Limiter::create(new(), Utc::now()).unwrap();
        let before = l.clone();
        let bad = LimiterUpdate {
            name: Some("New".into()),
            budget_limit: Some(Money::from_dollars(-1)),
            ..Default::default()
        };
        assert_eq!(l.apply(&bad, Utc::now()).unwrap_err().field, "budget_limit");
        assert_eq!(l, before);
        let ok = LimiterUpdate {
            is_active: Some(false),
            ..Default::default()
        };
        l.apply(&ok, Utc::now()).unwrap();
        assert!(!l.is_active);
        assert_eq!(l.name, before.name);
    }
}

//! Threshold alerts: what a limiter asks to be told about ([`AlertSettings`]), the events
//! ([`AlertEvent`]) and the durable outbox they wait in until a webhook has them
//! ([`AlertDelivery`], kept by [`crate::store::LimiterCatalog::enqueue_alert`] and friends).
//!
//! An event's [`id`](AlertEvent::id) is derived from what happened, not drawn at random: the
//! 80 % threshold of one limiter's March window is the same id whichever replica or request
//! noticed it first, so a store that inserts each id once sends each event once, and a
//! receiver can deduplicate by it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{LimiterId, Money, Period, ValidationError};

/// Thresholds used when a limiter names none: 80 % and 100 % of each window.
pub const DEFAULT_THRESHOLDS: [u16; 2] = [80, 100];
/// The highest threshold accepted, in percent (a soft limiter can pass its budget).
pub const MAX_THRESHOLD: u16 = 1000;
/// The most thresholds one limiter may have.
pub const MAX_THRESHOLDS: usize = 10;
/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// A limiter's alert settings. Every field is optional: `None` follows the server's defaults
/// (thresholds [`DEFAULT_THRESHOLDS`], its webhook URL and format).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Percentages of each window's budget that raise an alert when spend reaches them,
    /// ascending, 1 to [`MAX_THRESHOLD`]; an empty list turns threshold alerts off.
    #[serde(default)]
    pub thresholds: Option<Vec<u16>>,
    /// Where this limiter's events go, in place of the server's webhook.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// The body format for `webhook_url`.
    #[serde(default)]
    pub format: Option<WebhookFormat>,
    /// No alerts at all for this limiter (not even to the server's webhook).
    #[serde(default)]
    pub muted: bool,
}

impl AlertSettings {
    /// Check the thresholds and the URL (`http` or `https`, a host, no user info, at most
    /// [`MAX_URL_LEN`] characters).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if let Some(t) = &self.thresholds {
            if t.len() > MAX_THRESHOLDS {
                return Err(ValidationError::new(
                    "alerts.thresholds",
                    format!("at most {MAX_THRESHOLDS} thresholds"),
                ));
            }
            if t.iter().any(|p| *p == 0 || *p > MAX_THRESHOLD) {
                return Err(ValidationError::new(
                    "alerts.thresholds",
                    format!("each threshold is a percentage from 1 to {MAX_THRESHOLD}"),
                ));
            }
            if t.windows(2).any(|w| w[0] >= w[1]) {
                return Err(ValidationError::new(
                    "alerts.thresholds",
                    "thresholds must be in ascending order, without repeats",
                ));
            }
        }
        if let Some(u) = &self.webhook_url {
            validate_webhook_url(u)
                .map_err(|why| ValidationError::new("alerts.webhook_url", why))?;
        }
        Ok(())
    }

    /// The thresholds in force, given the server's default.
    pub fn thresholds_or<'a>(&'a self, default: &'a [u16]) -> &'a [u16] {
        self.thresholds.as_deref().unwrap_or(default)
    }
}

/// Check a webhook URL: `http` or `https`, with a host, no user name or password, no
/// fragment, at most [`MAX_URL_LEN`] characters.
pub fn validate_webhook_url(u: &str) -> Result<(), String> {
    if u.len() > MAX_URL_LEN {
        return Err(format!("at most {MAX_URL_LEN} characters"));
    }
    let url = url::Url::parse(u).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry a user name or password (put a token in the path or query)".into(),
        );
    }
    if url.fragment().is_some() {
        return Err("must not have a #fragment".into());
    }
    Ok(())
}

/// A webhook URL as lists and logs show it: scheme, host and port only (Slack's and others'
/// webhook URLs carry their secret in the path).
pub fn redact_url(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(url) => {
            let mut s = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
            if let Some(p) = url.port() {
                s.push_str(&format!(":{p}"));
            }
            if url.path() != "/" || url.query().is_some() {
                s.push_str("/…");
            }
            s
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// The body a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event as JSON (see `docs/alerts.md`).
    #[default]
    Json,
    /// `{"text": "…"}`, which Slack's incoming webhooks (and Mattermost, Discord's `/slack`
    /// endpoint, Teams' workflows) accept.
    Slack,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// Spend in a window reached one of the limiter's thresholds.
    ThresholdCrossed,
    /// The first request a window's budget refused.
    Exhausted,
    /// The limiter was deactivated.
    Deactivated,
    /// The limiter's `expires_at` passed.
    Expired,
    /// The limiter was deleted.
    Deleted,
}

impl AlertKind {
    /// The name used in ids, bodies and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::ThresholdCrossed => "threshold_crossed",
            AlertKind::Exhausted => "exhausted",
            AlertKind::Deactivated => "deactivated",
            AlertKind::Expired => "expired",
            AlertKind::Deleted => "deleted",
        }
    }
}

/// The budget window an event concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWindow {
    /// The window's period.
    pub period: Period,
    /// Its first instant.
    pub start: DateTime<Utc>,
    /// Its end (exclusive).
    pub end: DateTime<Utc>,
    /// Its budget.
    pub budget: Money,
    /// Spend in it when the event was raised.
    pub spent: Money,
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// The webhook URL.
    pub url: String,
    /// The body format.
    pub format: WebhookFormat,
}

/// One event, as stored in the outbox and sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Stable id: the same happening always has the same id (see the module docs).
    pub id: String,
    /// What happened.
    pub kind: AlertKind,
    /// The limiter.
    pub limiter_id: LimiterId,
    /// The limiter's name when it happened.
    pub limiter_name: String,
    /// When it was noticed.
    pub at: DateTime<Utc>,
    /// The window (threshold and exhausted events).
    pub window: Option<AlertWindow>,
    /// The threshold reached, in percent (threshold events).
    pub threshold: Option<u16>,
    /// Where it goes.
    pub destination: Destination,
}

impl AlertEvent {
    /// The id of a threshold reached in a window: limiter, period, window start, budget (in
    /// nano-dollars: a window whose budget is changed alerts again against the new one),
    /// percent.
    pub fn threshold_id(limiter: LimiterId, window: &AlertWindow, percent: u16) -> String {
        format!(
            "threshold_crossed:{limiter}:{}:{}:{}:{percent}",
            window.period.as_str(),
            window.start.timestamp(),
            window.budget.as_nanos()
        )
    }

    /// The id of the first refusal in a window (with its budget, as for thresholds).
    pub fn exhausted_id(limiter: LimiterId, window: &AlertWindow) -> String {
        format!(
            "exhausted:{limiter}:{}:{}:{}",
            window.period.as_str(),
            window.start.timestamp(),
            window.budget.as_nanos()
        )
    }

    /// The id of a limiter event (deactivated, expired, deleted) that happened at `when`.
    pub fn limiter_event_id(kind: AlertKind, limiter: LimiterId, when: DateTime<Utc>) -> String {
        format!("{}:{limiter}:{}", kind.as_str(), when.timestamp_micros())
    }
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up on after retrying for the configured time.
    Failed,
}

impl DeliveryStatus {
    /// The name stores keep.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// From [`as_str`](Self::as_str).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}

/// An event in the outbox and how its delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDelivery {
    /// The event.
    pub event: AlertEvent,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When it may next be tried (pending), or when a claim on it runs out.
    pub next_attempt_at: DateTime<Utc>,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// When a receiver took it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertOutcome {
    /// A receiver answered 2xx at this time.
    Delivered(DateTime<Utc>),
    /// Failed; try again at `at`.
    Retry {
        /// When to try again.
        at: DateTime<Utc>,
        /// What went wrong.
        error: String,
    },
    /// Failed for the last time.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// Only this limiter's.
    pub limiter_id: Option<LimiterId>,
    /// Only in this state.
    pub status: Option<DeliveryStatus>,
    /// At most this many.
    pub limit: usize,
}

/// Stores keep instants to the microsecond: cut `t` to that.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        let ok = AlertSettings {
            thresholds: Some(vec![50, 80, 100, 150]),
            webhook_url: Some("https://hooks.example.com/services/T/B/x?y=1".into()),
            ..Default::default()
        };
        ok.validate().unwrap();
        for bad in [
            vec![0],
            vec![80, 80],
            vec![100, 80],
            vec![1001],
            (1..=11).collect(),
        ] {
            let s = AlertSettings {
                thresholds: Some(bad.clone()),
                ..Default::default()
            };
            assert_eq!(
                s.validate().unwrap_err().field,
                "alerts.thresholds",
                "{bad:?}"
            );
        }
        for bad in [
            "ftp://x.example",
            "not a url",
            "https://user:pw@x.example/",
            "https://x.example/#frag",
            "file:///etc/passwd",
        ] {
            let s = AlertSettings {
                webhook_url: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(
                s.validate().unwrap_err().field,
                "alerts.webhook_url",
                "{bad}"
            );
        }
        assert_eq!(ok.thresholds_or(&DEFAULT_THRESHOLDS), &[50, 80, 100, 150]);
        assert_eq!(
            AlertSettings::default().thresholds_or(&DEFAULT_THRESHOLDS),
            &DEFAULT_THRESHOLDS
        );
    }

    #[test]
    fn urls_are_redacted_to_their_host() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9000/"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(redact_url("http://h.example?token=1"), "http://h.example/…");
    }

    #[test]
    fn ids_name_the_happening() {
        let l = LimiterId::new();
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let w = AlertWindow {
            period: Period::Month,
            start,
            end: start,
            budget: Money::from_dollars(1),
            spent: Money::ZERO,
        };
        let a = AlertEvent::threshold_id(l, &w, 80);
        let mut w2 = w.clone();
        w2.spent = Money::from_dollars(1);
        assert_eq!(
            a,
            AlertEvent::threshold_id(l, &w2, 80),
            "spend is not part of it"
        );
        assert_ne!(a, AlertEvent::threshold_id(l, &w, 100));
        let mut raised = w.clone();
        raised.budget = Money::from_dollars(2);
        assert_ne!(
            a,
            AlertEvent::threshold_id(l, &raised, 80),
            "a new budget alerts again"
        );
        assert_ne!(a, AlertEvent::exhausted_id(l, &w));
    }
}

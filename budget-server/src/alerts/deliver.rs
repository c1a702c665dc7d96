//! Sending alert events: claim due events from the outbox, post each one signed, record the
//! outcome, retry with exponential backoff and jitter (see the parent module).
//!
//! Every delivery is a `POST` with these headers:
//!
//! - `X-Budget-Event-Id`: the event's stable id (deduplicate by it: delivery is at least once);
//! - `X-Budget-Event-Type`: `threshold_crossed`, `exhausted`, `deactivated`, `expired`,
//!   `deleted`;
//! - `X-Budget-Timestamp`: Unix seconds when this attempt was signed;
//! - `X-Budget-Signature`: `v1=` and the lowercase hex HMAC-SHA256, keyed with
//!   `ALERT_WEBHOOK_SECRET`, of the timestamp, a `.`, and the raw body.

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::body::Body;
use budget_core::alert::{AlertDelivery, AlertEvent, AlertKind, AlertOutcome, WebhookFormat};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use rand::Rng;
use sha2::Sha256;
use tokio::sync::Semaphore;

use super::Alerts;

/// The HTTP client deliveries go out with (the proxy's: rustls, the same address guard).
pub type Client = crate::proxy::HttpClient;

/// Most deliveries in flight at once; a receiver that hangs holds one until its timeout.
pub const MAX_IN_FLIGHT: usize = 8;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long a claim keeps other replicas off an event, beyond the attempt's timeout.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);
/// How long an answer's body is read after its status (the connection is dropped after).
const DRAIN_FOR: Duration = Duration::from_secs(1);
/// How often the outbox is asked for due events when nothing wakes the sender sooner.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// The signature header's value for `body` signed at `timestamp`: `v1=<hex HMAC-SHA256 of
/// "<timestamp>.<body>">`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(3 + tag.len() * 2);
    hex.push_str("v1=");
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The wait before attempt `attempts + 1`: `base × 2^(attempts − 1)`, at most
/// [`MAX_BACKOFF`], less a random part of up to half (so receivers that failed together are
/// not retried together).
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(20);
    let full = base.saturating_mul(1 << exp).min(MAX_BACKOFF);
    let jitter = rand::rng().random_range(0..=full.as_millis() as u64 / 2);
    full.saturating_sub(Duration::from_millis(jitter))
}

fn percent(bp: i64) -> String {
    format!("{}.{:02}", bp / 100, bp % 100)
}

/// The JSON body of an event (also what a `slack` body's text summarises).
pub fn json_body(e: &AlertEvent) -> serde_json::Value {
    let window = e.window.as_ref().map(|w| {
        serde_json::json!({
            "period": w.period.as_str(),
            "start": w.start,
            "end": w.end,
            "budget_usd": w.budget.to_decimal_string(),
            "spent_usd": w.spent.to_decimal_string(),
            "percent_used": percent(w.spent.percent_of_bp(w.budget).unwrap_or(0)),
        })
    });
    serde_json::json!({
        "id": e.id,
        "type": e.kind.as_str(),
        "created_at": e.at,
        "limiter": {"id": e.limiter_id, "name": e.limiter_name},
        "threshold_percent": e.threshold,
        "window": window,
        "text": text(e, false),
    })
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One line saying what happened.
pub fn text(e: &AlertEvent, slack: bool) -> String {
    let name = if slack {
        format!("*{}*", slack_escape(&e.limiter_name))
    } else {
        format!("\"{}\"", e.limiter_name)
    };
    let dollars = |m: budget_core::Money| format!("${}", m.to_decimal_string());
    match (e.kind, &e.window) {
        (AlertKind::ThresholdCrossed, Some(w)) => format!(
            "Budget alert: limiter {name} passed {}% of its {} budget: {} of {} used ({}%); \
             the window resets {}.",
            e.threshold.unwrap_or(0),
            w.period.as_str(),
            dollars(w.spent),
            dollars(w.budget),
            percent(w.spent.percent_of_bp(w.budget).unwrap_or(0)),
            when(w.end),
        ),
        (AlertKind::Exhausted, Some(w)) => format!(
            "Budget exhausted: limiter {name} refused a request because its {} budget is used \
             up ({} of {}); it resets {}.",
            w.period.as_str(),
            dollars(w.spent),
            dollars(w.budget),
            when(w.end),
        ),
        (AlertKind::Deactivated, _) => {
            format!("Limiter {name} was deactivated: it refuses every request.")
        }
        (AlertKind::Expired, _) => {
            format!("Limiter {name} has expired: it refuses every request.")
        }
        (AlertKind::Deleted, _) => format!("Limiter {name} was deleted."),
        (kind, None) => format!("Limiter {name}: {}.", kind.as_str()),
    }
}

/// The body sent for `e`.
pub fn body(e: &AlertEvent) -> Vec<u8> {
    let v = match e.destination.format {
        WebhookFormat::Json => json_body(e),
        WebhookFormat::Slack => serde_json::json!({ "text": text(e, true) }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Post `d` once; `Ok` on 2xx, else what went wrong.
async fn post(alerts: &Alerts, client: &Client, d: &AlertDelivery) -> Result<(), String> {
    let secret = alerts
        .config
        .secret
        .as_deref()
        .ok_or("no ALERT_WEBHOOK_SECRET")?;
    let body = body(&d.event);
    let timestamp = Utc::now().timestamp();
    let request = http::Request::post(&d.event.destination.url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("budget-server/", env!("CARGO_PKG_VERSION")),
        )
        .header("x-budget-event-id", &d.event.id)
        .header("x-budget-event-type", d.event.kind.as_str())
        .header("x-budget-timestamp", timestamp.to_string())
        .header("x-budget-signature", signature(secret, timestamp, &body))
        .body(Body::from(body))
        .map_err(|e| format!("bad request: {e}"))?;
    // The answer's status decides; its body is read briefly only so that the connection can
    // be reused (a receiver that took the event and then dribbles its answer has taken it).
    let response = match tokio::time::timeout(alerts.config.timeout, client.request(request)).await
    {
        Err(_) => {
            return Err(format!(
                "no answer within {} s",
                alerts.config.timeout.as_secs()
            ))
        }
        Ok(Err(e)) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(": ");
                why.push_str(&s.to_string());
                source = s.source();
            }
            return Err(why);
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    let mut body = response.into_body();
    let drain = async {
        let mut read = 0usize;
        while read < 64 * 1024 {
            match body.frame().await {
                Some(Ok(f)) => read += f.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", status.as_u16()))
    }
}

/// Attempt `d` and record the outcome.
async fn attempt(alerts: &Alerts, client: &Client, d: AlertDelivery) {
    let result = post(alerts, client, &d).await;
    let now = Utc::now();
    let outcome = match result {
        Ok(()) => {
            alerts.counts.outcome("delivered");
            tracing::info!(id = %d.event.id, attempts = d.attempts, "alert delivered");
            AlertOutcome::Delivered(now)
        }
        Err(error) => {
            let wait = backoff(alerts.config.retry_base, d.attempts);
            let next = now + chrono::TimeDelta::from_std(wait).unwrap_or_default();
            let deadline = d.event.at
                + chrono::TimeDelta::from_std(alerts.config.retry_for).unwrap_or_default();
            let url = budget_core::alert::redact_url(&d.event.destination.url);
            if next > deadline {
                alerts.counts.outcome("failed");
                tracing::error!(id = %d.event.id, %url, attempts = d.attempts, %error, "alert given up");
                AlertOutcome::Failed { error }
            } else {
                alerts.counts.outcome("retry");
                tracing::warn!(id = %d.event.id, %url, attempts = d.attempts, %error, retry_in_ms = wait.as_millis() as u64, "alert not delivered; will retry");
                AlertOutcome::Retry { at: next, error }
            }
        }
    };
    if let Err(e) = alerts.store.finish_alert(&d.event.id, &outcome).await {
        // The claim runs out and the event is tried again: at least once.
        alerts.counts.store_errors.inc();
        tracing::warn!(error = %e, id = %d.event.id, "alert outcome not written");
    }
}

/// Start the sender: it stops when `alerts` has no other owner.
pub fn spawn(alerts: Weak<Alerts>, client: Client, handle: tokio::runtime::Handle) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let spawner = handle.clone();
    handle.spawn(async move {
        loop {
            let Some(a) = alerts.upgrade() else { return };
            let free = slots.available_permits();
            let mut full = false;
            if free > 0 {
                let now = Utc::now();
                let until = now
                    + chrono::TimeDelta::from_std(a.config.timeout + CLAIM_MARGIN)
                        .unwrap_or_default();
                match a.store.claim_alerts(now, until, free).await {
                    Ok(batch) => {
                        full = batch.len() == free;
                        for d in batch {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let (a, client) = (a.clone(), client.clone());
                            spawner.spawn(async move {
                                attempt(&a, &client, d).await;
                                drop(permit);
                            });
                        }
                    }
                    Err(budget_core::store::Error::Unsupported(_)) => return,
                    Err(e) => {
                        a.counts.store_errors.inc();
                        tracing::warn!(error = %e, "alerts: outbox not read");
                    }
                }
            }
            if full {
                continue;
            }
            let added = a.added.notified();
            tokio::select! {
                () = added => {}
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 checks the HMAC itself; this pins the framing.
        let sig = signature(b"Jefe", 0, b"what do ya want for nothing?");
        assert!(sig.starts_with("v1="));
        assert_eq!(sig.len(), 3 + 64);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"0.what do ya want for nothing?");
        let expect: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("v1={expect}"));
        assert_ne!(sig, signature(b"Jefe", 1, b"what do ya want for nothing?"));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let base = Duration::from_secs(2);
        for attempts in 1..=4u32 {
            let full = base * (1 << (attempts - 1));
            for _ in 0..50 {
                let d = backoff(base, attempts);
                assert!(d <= full && d >= full / 2, "{attempts}: {d:?}");
            }
        }
        assert!(backoff(base, 40) <= MAX_BACKOFF);
        assert!(backoff(base, 40) >= MAX_BACKOFF / 2);
    }

    #[test]
    fn slack_text_escapes_the_name() {
        let e = AlertEvent {
            id: "x".into(),
            kind: AlertKind::Deactivated,
            limiter_id: budget_core::LimiterId::new(),
            limiter_name: "<!channel> & co".into(),
            at: Utc::now(),
            window: None,
            threshold: None,
            destination: budget_core::alert::Destination {
                url: "https://h.example/".into(),
                format: WebhookFormat::Slack,
            },
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&e)).unwrap();
        assert_eq!(
            v["text"],
            "Limiter *&lt;!channel&gt; &amp; co* was deactivated: it refuses every request."
        );
    }
}

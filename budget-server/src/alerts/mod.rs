//! Threshold alerts by webhook (docs/alerts.md).
//!
//! - **Noticing** ([`Alerts`]): the budget layer's hooks mark a limiter when one of its
//!   requests settles or is refused for its budget. Twice a second the marked limiters'
//!   windows are read from the store, and every threshold that spend has reached becomes an
//!   event in the store's outbox ([`LimiterCatalog::enqueue_alert`]). Events are named by
//!   what happened (limiter, window, threshold), and the outbox keeps each name once, so
//!   however many requests or replicas cross a threshold together it is one event, and a
//!   restart that looks again finds it already there. At start every limiter is looked at
//!   once, so a crossing whose usage was written just before a crash is still noticed.
//!   Deactivation and deletion are enqueued by the admin API; expiry by a sweep every few
//!   seconds.
//! - **Sending** ([`deliver`]): a task claims due events from the outbox (a claim keeps other
//!   replicas off it until it runs out), posts each, signed, with a timeout, and records the
//!   outcome: delivered on 2xx, else retried with exponential backoff and jitter until
//!   `ALERT_RETRY_FOR_SECS`, then failed. Nothing of this runs on a request's path: a slow or
//!   dead receiver costs requests nothing.
//!
//! [`LimiterCatalog::enqueue_alert`]: budget_core::store::LimiterCatalog::enqueue_alert

pub mod deliver;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_core::alert::{AlertEvent, AlertKind, AlertWindow, Destination, WebhookFormat};
use budget_core::store::{Store, UsageRecord};
use budget_core::{Limiter, LimiterId, Period};
use budget_tower::{Refusal, UsageHooks};
use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::Notify;

use crate::config::Config;

/// How often marked limiters are looked at.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);
/// How often every limiter's expiry is looked at.
pub const EXPIRY_SWEEP_EVERY: Duration = Duration::from_secs(5);
/// A limiter that expired longer ago than this when first seen raises no alert (a server
/// upgraded to this version does not announce old expiries).
pub const EXPIRY_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// A marked limiter is looked at this many times, half a second apart: a store that writes
/// usage in the background (PostgreSQL's batches) shows a settlement's spend a moment later.
const LOOKS: u8 = 3;

/// The server's alert settings (from [`Config`]).
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// `ALERT_WEBHOOK_URL` and `ALERT_WEBHOOK_FORMAT`.
    pub default_destination: Option<Destination>,
    /// `ALERT_THRESHOLDS`.
    pub thresholds: Vec<u16>,
    /// `ALERT_WEBHOOK_SECRET`.
    pub secret: Option<Vec<u8>>,
    /// `ALERT_RETRY_BASE_MS`.
    pub retry_base: Duration,
    /// `ALERT_RETRY_FOR_SECS`.
    pub retry_for: Duration,
    /// `ALERT_TIMEOUT_SECS`.
    pub timeout: Duration,
}

impl AlertConfig {
    /// From a validated configuration.
    pub fn from_config(c: &Config) -> Self {
        AlertConfig {
            default_destination: c.alert_webhook_url().map(|u| Destination {
                url: u.to_owned(),
                format: c.alert_webhook_format.into(),
            }),
            thresholds: c.alert_thresholds().unwrap_or_default(),
            secret: c.alert_webhook_secret().map(|s| s.as_bytes().to_vec()),
            retry_base: Duration::from_millis(c.alert_retry_base_ms),
            retry_for: Duration::from_secs(c.alert_retry_for_secs),
            timeout: Duration::from_secs(c.alert_timeout_secs),
        }
    }

    /// Where `l`'s events go: its own webhook, else the server's; `None` when it is muted or
    /// there is none (or no secret to sign with).
    pub fn destination_of(&self, l: &Limiter) -> Option<Destination> {
        self.secret.as_ref()?;
        let own = l.alerts.as_ref();
        if own.is_some_and(|a| a.muted) {
            return None;
        }
        match own.and_then(|a| a.webhook_url.clone()) {
            Some(url) => Some(Destination {
                url,
                format: own.and_then(|a| a.format).unwrap_or(WebhookFormat::Json),
            }),
            None => self.default_destination.clone(),
        }
    }

    /// The thresholds in force for `l`.
    pub fn thresholds_of<'a>(&'a self, l: &'a Limiter) -> &'a [u16] {
        match &l.alerts {
            Some(a) => a.thresholds_or(&self.thresholds),
            None => &self.thresholds,
        }
    }
}

/// A label set of one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The event kind.
    pub kind: String,
}

/// A label set of one value.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
}

/// Counts for `/metrics` (registered by [`crate::metrics::Metrics::register_alerts`]).
#[derive(Debug, Default)]
pub struct AlertCounts {
    /// Events added to the outbox by this process, by kind.
    pub raised: Family<KindLabel, Counter>,
    /// Delivery attempts by outcome: `delivered`, `retry` (failed, will be retried), `failed`
    /// (given up).
    pub deliveries: Family<OutcomeLabel, Counter>,
    /// Store calls of the alert tasks that failed.
    pub store_errors: Counter,
}

impl AlertCounts {
    pub(crate) fn outcome(&self, outcome: &str) {
        self.deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// Notices what deserves an alert and puts it in the outbox (see the module docs).
#[derive(Debug)]
pub struct Alerts {
    config: AlertConfig,
    store: Arc<dyn Store>,
    /// Limiters to look at, with the looks left.
    marked: Mutex<HashMap<LimiterId, u8>>,
    /// Budget refusals seen: limiter and the refusing window's period.
    exhausted: Mutex<HashMap<(LimiterId, Period), DateTime<Utc>>>,
    /// Wakes the sender when an event is added.
    pub(crate) added: Notify,
    /// Counts for `/metrics`.
    pub counts: AlertCounts,
}

impl Alerts {
    /// Alerts for `store` with `config`.
    pub fn new(config: AlertConfig, store: Arc<dyn Store>) -> Self {
        Alerts {
            config,
            store,
            marked: Mutex::default(),
            exhausted: Mutex::default(),
            added: Notify::new(),
            counts: AlertCounts::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &AlertConfig {
        &self.config
    }

    /// Is any alert possible: a secret to sign with.
    pub fn enabled(&self) -> bool {
        self.config.secret.is_some()
    }

    fn mark(&self, id: LimiterId) {
        if !self.enabled() {
            return;
        }
        self.marked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, LOOKS);
    }

    /// Add `event` to the outbox; `true` when it is new. A failure is logged and counted (the
    /// next look raises it again, under the same id).
    pub async fn raise(&self, event: AlertEvent) -> bool {
        match self.store.enqueue_alert(&event).await {
            Ok(true) => {
                tracing::info!(id = %event.id, limiter = %event.limiter_id, "alert raised");
                self.counts
                    .raised
                    .get_or_create(&KindLabel {
                        kind: event.kind.as_str().to_owned(),
                    })
                    .inc();
                self.added.notify_one();
                true
            }
            Ok(false) => false,
            Err(budget_core::store::Error::Unsupported(_)) => false,
            Err(e) => {
                self.counts.store_errors.inc();
                tracing::warn!(error = %e, id = %event.id, "alert not written to the outbox yet");
                false
            }
        }
    }

    /// A limiter event (deactivated, deleted, expired) of `l` that happened at `when`.
    pub async fn limiter_event(&self, kind: AlertKind, l: &Limiter, when: DateTime<Utc>) {
        let Some(destination) = self.config.destination_of(l) else {
            return;
        };
        self.raise(AlertEvent {
            id: AlertEvent::limiter_event_id(kind, l.id, when),
            kind,
            limiter_id: l.id,
            limiter_name: l.name.clone(),
            at: Utc::now(),
            window: None,
            threshold: None,
            destination,
        })
        .await;
    }

    /// Look at `l`'s windows now: raise every threshold spend has reached, and an
    /// `exhausted` event for each window a budget refusal was seen in.
    pub async fn look_at(&self, l: &Limiter, now: DateTime<Utc>, refused: &[Period]) {
        if l.deleted_at.is_some() {
            return;
        }
        let Some(destination) = self.config.destination_of(l) else {
            return;
        };
        let thresholds = self.config.thresholds_of(l);
        for line in l.budget_lines(now, None) {
            let wants_exhausted = refused.contains(&line.period);
            if thresholds.is_empty() && !wants_exhausted {
                continue;
            }
            let spend = match self.store.window_spend(&line.key).await {
                Ok(s) => s,
                Err(e) => {
                    self.counts.store_errors.inc();
                    tracing::warn!(error = %e, limiter = %l.id, "alerts: window spend not read");
                    return;
                }
            };
            let window = AlertWindow {
                period: line.period,
                start: line.key.window.start,
                end: line.key.window.end,
                budget: line.budget,
                spent: spend.spent,
            };
            let bp = spend.spent.percent_of_bp(line.budget).unwrap_or(0);
            for &t in thresholds {
                if bp < i64::from(t) * 100 {
                    break;
                }
                self.raise(AlertEvent {
                    id: AlertEvent::threshold_id(l.id, &window, t),
                    kind: AlertKind::ThresholdCrossed,
                    limiter_id: l.id,
                    limiter_name: l.name.clone(),
                    at: now,
                    window: Some(window.clone()),
                    threshold: Some(t),
                    destination: destination.clone(),
                })
                .await;
            }
            if wants_exhausted {
                self.raise(AlertEvent {
                    id: AlertEvent::exhausted_id(l.id, &window),
                    kind: AlertKind::Exhausted,
                    limiter_id: l.id,
                    limiter_name: l.name.clone(),
                    at: now,
                    window: Some(window),
                    threshold: None,
                    destination: destination.clone(),
                })
                .await;
            }
        }
    }

    /// One round: look at the marked limiters (and the refusals seen).
    pub async fn look_at_marked(&self) {
        let marked: Vec<LimiterId> = {
            let mut m = self.marked.lock().unwrap_or_else(|p| p.into_inner());
            let ids = m.keys().copied().collect();
            m.retain(|_, left| {
                *left -= 1;
                *left > 0
            });
            ids
        };
        let refused: HashMap<LimiterId, Vec<Period>> = {
            let mut e = self.exhausted.lock().unwrap_or_else(|p| p.into_inner());
            let mut by: HashMap<LimiterId, Vec<Period>> = HashMap::new();
            for ((id, period), _) in e.drain() {
                by.entry(id).or_default().push(period);
            }
            by
        };
        let now = self.store.now();
        let mut ids = marked;
        ids.extend(
            refused
                .keys()
                .filter(|id| !ids.contains(id))
                .copied()
                .collect::<Vec<_>>(),
        );
        for id in ids {
            match self.store.get_limiter(id).await {
                Ok(Some(l)) => {
                    let periods = refused.get(&id).map_or(&[][..], Vec::as_slice);
                    self.look_at(&l, now, periods).await;
                }
                Ok(None) => {}
                Err(e) => {
                    self.counts.store_errors.inc();
                    tracing::warn!(error = %e, limiter = %id, "alerts: limiter not read");
                }
            }
        }
    }

    /// Look at every live limiter: its expiry, and (with `spend`) its windows.
    pub async fn sweep(&self, spend: bool) {
        if !self.enabled() {
            return;
        }
        let limiters = match self.store.list_limiters(false).await {
            Ok(l) => l,
            Err(e) => {
                self.counts.store_errors.inc();
                tracing::warn!(error = %e, "alerts: limiters not listed");
                return;
            }
        };
        let now = self.store.now();
        for l in &limiters {
            if let Some(at) = l.expires_at {
                if at <= now && now - at <= EXPIRY_LOOKBACK {
                    self.limiter_event(AlertKind::Expired, l, at).await;
                }
            }
            if spend && l.is_active {
                self.look_at(l, now, &[]).await;
            }
        }
    }

    /// Start the watcher and the sender; they stop when `alerts` has no other owner.
    pub fn spawn(alerts: &Arc<Alerts>, client: deliver::Client) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if !alerts.enabled() {
            return;
        }
        let weak = Arc::downgrade(alerts);
        handle.spawn(async move {
            if let Some(a) = weak.upgrade() {
                a.sweep(true).await;
            }
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_sweep = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                let Some(a) = weak.upgrade() else { return };
                a.look_at_marked().await;
                if last_sweep.elapsed() >= EXPIRY_SWEEP_EVERY {
                    last_sweep = tokio::time::Instant::now();
                    a.sweep(false).await;
                }
            }
        });
        deliver::spawn(Arc::downgrade(alerts), client, handle);
    }
}

impl UsageHooks for Alerts {
    fn refused(&self, limiter: Option<&Limiter>, refusal: &Refusal) {
        let Some(l) = limiter else { return };
        if refusal.code != "budget_exceeded" || !self.enabled() {
            return;
        }
        // The refusing budget: a window of the limiter's (an end user's own budget running
        // out is not the limiter's).
        let header = |name: &str| {
            refusal
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        if header("x-budget-user").is_some() {
            return;
        }
        let period = header("x-budget-period")
            .and_then(|p| p.parse::<Period>().ok())
            .unwrap_or(l.period_type);
        self.exhausted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((l.id, period))
            .or_insert_with(Utc::now);
    }

    fn settled(&self, limiter: &Limiter, record: &UsageRecord) {
        if !record.cost.is_zero() {
            self.mark(limiter.id);
        }
    }
}

/// The budget layer's hooks in the server: metrics, then alerts.
#[derive(Debug)]
pub struct ServerHooks {
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Alerts.
    pub alerts: Arc<Alerts>,
}

impl UsageHooks for ServerHooks {
    fn refused(&self, limiter: Option<&Limiter>, refusal: &Refusal) {
        self.metrics.refused(limiter, refusal);
        self.alerts.refused(limiter, refusal);
    }

    fn settled(&self, limiter: &Limiter, record: &UsageRecord) {
        self.metrics.settled(limiter, record);
        self.alerts.settled(limiter, record);
    }

    fn store_error(&self, error: &budget_core::store::Error) {
        self.metrics.store_error(error);
    }
}

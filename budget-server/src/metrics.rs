//! Prometheus metrics at `/metrics`, fed by the budget layer's hooks and the proxy.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_core::store::{CounterKey, Error as StoreError, Store, UsageRecord};
use budget_core::Limiter;

use budget_tower::{Refusal, UsageHooks};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    limiter: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimiterLabels {
    limiter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalLabels {
    limiter: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    limiter: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    limiter: String,
    name: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    store: Arc<dyn Store>,
    requests: Family<RequestLabels, Counter>,
    cost: Family<LimiterLabels, Counter<f64, AtomicU64>>,
    tokens: Family<TokenLabels, Counter>,
    unpriced: Family<LimiterLabels, Counter>,
    estimated: Family<LimiterLabels, Counter>,
    store_errors: Counter,
    /// The store's own count of failed usage writes, as far as it is in `store_errors`.
    write_errors_seen: AtomicU64,
    unsaved_usage: Gauge,
    upstream_errors: Counter,
    upstream_latency: Histogram,
    budget_used: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    budget_limit: Family<BudgetLabels, Gauge<f64, AtomicU64>>,
    refused: Family<RefusalLabels, Counter>,
    /// Refusal counts on their way to the store (per limiter, minute and reason).
    refusal_log: Arc<crate::refusals::RefusalLog>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Register every metric.
    pub fn new(store: Arc<dyn Store>) -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("budget")),
            store,
            requests: Family::default(),
            cost: Family::default(),
            tokens: Family::default(),
            unpriced: Family::default(),
            estimated: Family::default(),
            store_errors: Counter::default(),
            write_errors_seen: AtomicU64::new(0),
            unsaved_usage: Gauge::default(),
            upstream_errors: Counter::default(),
            upstream_latency: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            budget_used: Family::default(),
            budget_limit: Family::default(),
            refused: Family::default(),
            refusal_log: Arc::default(),
        };
        crate::refusals::RefusalLog::spawn_flusher(&m.refusal_log, m.store.clone());
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "requests",
                "Proxied requests by limiter and HTTP status",
                m.requests.clone(),
            );
            r.register(
                "refused_requests",
                "Requests the proxy refused itself, by limiter and reason (budget, inactive, \
                 expired, model_rule, price_guard, unknown_endpoint, other)",
                m.refused.clone(),
            );
            r.register(
                "cost_dollars",
                "Cost charged, in US dollars",
                m.cost.clone(),
            );
            r.register(
                "tokens",
                "Tokens used, by kind (prompt, completion)",
                m.tokens.clone(),
            );
            r.register(
                "unpriced_requests",
                "Requests for models without a price",
                m.unpriced.clone(),
            );
            r.register(
                "estimated_requests",
                "Requests whose usage was estimated",
                m.estimated.clone(),
            );
            r.register(
                "store_errors",
                "Budget store failures, including failed attempts to save usage",
                m.store_errors.clone(),
            );
            r.register(
                "unsaved_usage_events",
                "Settled requests whose usage is not saved yet",
                m.unsaved_usage.clone(),
            );
            r.register(
                "upstream_errors",
                "Upstream connect failures and timeouts",
                m.upstream_errors.clone(),
            );
            r.register(
                "upstream_latency_seconds",
                "Time to the upstream's response headers",
                m.upstream_latency.clone(),
            );
            r.register(
                "budget_spent_dollars",
                "Spend in the current window per limiter",
                m.budget_used.clone(),
            );
            r.register(
                "budget_limit_dollars",
                "Budget per window per limiter",
                m.budget_limit.clone(),
            );
        }
        m
    }

    /// Record an upstream round trip to headers.
    pub fn upstream_latency(&self, d: Duration) {
        self.upstream_latency.observe(d.as_secs_f64());
    }

    /// Count an upstream failure.
    pub fn upstream_error(&self) {
        self.upstream_errors.inc();
    }

    /// The Prometheus text exposition, with budget gauges read from the store now.
    pub async fn render(&self) -> String {
        // The store counts its failed usage writes itself (they happen behind the request).
        let w = self.store.write_status();
        let seen = self
            .write_errors_seen
            .fetch_max(w.write_errors, Ordering::Relaxed);
        self.store_errors
            .inc_by(w.write_errors.saturating_sub(seen));
        self.unsaved_usage
            .set(i64::try_from(w.unsaved_events).unwrap_or(i64::MAX));
        if let Ok(limiters) = self.store.list_limiters(false).await {
            let now = chrono::Utc::now();
            for l in limiters {
                let labels = BudgetLabels {
                    limiter: l.id.to_string(),
                    name: l.name.clone(),
                };
                if let Ok(w) = self
                    .store
                    .window_spend(&CounterKey::limiter(l.id, l.window_at(now)))
                    .await
                {
                    self.budget_used
                        .get_or_create(&labels)
                        .set(w.spent.to_f64_lossy());
                }
                self.budget_limit
                    .get_or_create(&labels)
                    .set(l.budget_limit.to_f64_lossy());
            }
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Metrics {
    /// Register the alert counters (`budget_alert_events_total{kind}`,
    /// `budget_alert_deliveries_total{outcome}`, `budget_alert_store_errors_total`).
    pub fn register_alerts(&self, counts: &crate::alerts::AlertCounts) {
        let mut r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        r.register(
            "alert_events",
            "Alert events this process added to the outbox, by kind",
            counts.raised.clone(),
        );
        r.register(
            "alert_deliveries",
            "Alert delivery attempts by outcome: delivered, retry (failed, will be retried), \
             failed (given up)",
            counts.deliveries.clone(),
        );
        r.register(
            "alert_store_errors",
            "Store calls of the alert tasks that failed",
            counts.store_errors.clone(),
        );
    }

    /// Add the refusal counts gathered in memory to the store now (shutdown, tests; a task
    /// does it every second).
    pub async fn flush_refusals(&self) {
        self.refusal_log.flush(&*self.store).await;
    }
}

impl UsageHooks for Metrics {
    fn refused(&self, limiter: Option<&Limiter>, refusal: &Refusal) {
        let reason = budget_core::refusal::RefusalReason::of_code(refusal.code);
        if let Some(l) = limiter {
            self.refusal_log.note(l.id, reason, chrono::Utc::now());
        }
        let limiter = limiter.map_or_else(|| "unknown".to_owned(), |l| l.id.to_string());
        self.refused
            .get_or_create(&RefusalLabels {
                limiter: limiter.clone(),
                reason: reason.as_str().to_owned(),
            })
            .inc();
        self.requests
            .get_or_create(&RequestLabels {
                limiter,
                status: refusal.status.as_u16().to_string(),
            })
            .inc();
    }

    fn settled(&self, limiter: &Limiter, record: &UsageRecord) {
        let id = limiter.id.to_string();
        self.requests
            .get_or_create(&RequestLabels {
                limiter: id.clone(),
                status: record.status.to_string(),
            })
            .inc();
        let l = LimiterLabels {
            limiter: id.clone(),
        };
        self.cost
            .get_or_create(&l)
            .inc_by(record.cost.to_f64_lossy());
        self.tokens
            .get_or_create(&TokenLabels {
                limiter: id.clone(),
                kind: "prompt".into(),
            })
            .inc_by(record.prompt_tokens);
        self.tokens
            .get_or_create(&TokenLabels {
                limiter: id,
                kind: "completion".into(),
            })
            .inc_by(record.completion_tokens);
        if record.unpriced {
            self.unpriced.get_or_create(&l).inc();
        }
        if record.estimated {
            self.estimated.get_or_create(&l).inc();
        }
    }

    fn store_error(&self, _error: &StoreError) {
        self.store_errors.inc();
    }
}

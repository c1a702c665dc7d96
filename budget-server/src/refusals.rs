//! Refused requests, counted in memory per limiter, minute and reason and added to the store
//! once a second (and at shutdown), so that a refused request costs no I/O and a flood of
//! them writes one row per limiter, minute and reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use budget_core::refusal::{minute_of, RefusalCount, RefusalReason};
use budget_core::store::Store;
use budget_core::LimiterId;
use chrono::{DateTime, Utc};

/// At most this many counts wait for the store; past it (a store down for a long time with
/// many limiters refusing), the oldest minutes are dropped, counted and logged.
pub const MAX_PENDING: usize = 100_000;

type Key = (LimiterId, DateTime<Utc>, RefusalReason);

/// Refusal counts waiting for the store.
#[derive(Debug, Default)]
pub struct RefusalLog {
    pending: Mutex<HashMap<Key, u64>>,
    dropped: AtomicU64,
}

impl RefusalLog {
    /// Count one refusal of `limiter` for `reason` at `at`.
    pub fn note(&self, limiter: LimiterId, reason: RefusalReason, at: DateTime<Utc>) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        *p.entry((limiter, minute_of(at), reason)).or_default() += 1;
        if p.len() > MAX_PENDING {
            // Drop the oldest minute's counts.
            if let Some(oldest) = p.keys().map(|k| k.1).min() {
                let before = p.len();
                p.retain(|k, _| k.1 != oldest);
                self.dropped
                    .fetch_add((before - p.len()) as u64, Ordering::Relaxed);
                tracing::error!(
                    minute = %oldest,
                    "refusal counts cannot be written and too many wait: the oldest minute's are dropped"
                );
            }
        }
    }

    /// Counts dropped because too many waited.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Counts waiting.
    pub fn pending(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Add what waits to the store. On failure the counts wait for the next try (merged with
    /// what arrived meanwhile); a store without refusal counts drops them silently (it keeps
    /// none by design).
    pub async fn flush(&self, store: &dyn Store) {
        let batch: Vec<RefusalCount> = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut *p)
                .into_iter()
                .map(|((limiter_id, minute, reason), count)| RefusalCount {
                    limiter_id,
                    minute,
                    reason,
                    count,
                })
                .collect()
        };
        if batch.is_empty() {
            return;
        }
        match store.add_refusals(&batch).await {
            Ok(()) | Err(budget_core::store::Error::Unsupported(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, counts = batch.len(), "refusal counts not written yet; retrying");
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                for c in batch {
                    *p.entry((c.limiter_id, c.minute, c.reason)).or_default() += c.count;
                }
            }
        }
    }

    /// Flush every second until `log` is the only owner left (the server is gone).
    pub fn spawn_flusher(log: &Arc<RefusalLog>, store: Arc<dyn Store>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(log);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(log) = weak.upgrade() else { return };
                log.flush(&*store).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use budget_core::store::UsageQuery;
    use budget_core::{Limiter, MemoryStore, Money, NewLimiter, Period};

    #[tokio::test]
    async fn counts_gather_in_memory_and_reach_the_store_on_flush() {
        let store = MemoryStore::new();
        let l = Limiter::create(
            NewLimiter::new(
                "r",
                Money::from_dollars(1),
                Period::Day,
                "https://api.openai.com",
            ),
            Utc::now(),
        )
        .unwrap();
        use budget_core::store::LimiterCatalog;
        store.create_limiter(&l).await.unwrap();
        let log = RefusalLog::default();
        let now = Utc::now();
        for _ in 0..1000 {
            log.note(l.id, RefusalReason::Budget, now);
        }
        log.note(l.id, RefusalReason::Inactive, now);
        assert_eq!(log.pending(), 2, "one entry per minute and reason");
        log.flush(&store).await;
        assert_eq!(log.pending(), 0);
        use budget_core::store::UsageStats;
        let groups = store.refusals(&UsageQuery::all()).await.unwrap();
        let budget = groups
            .iter()
            .find(|g| g.reason == RefusalReason::Budget)
            .unwrap();
        assert_eq!(budget.count, 1000);
    }
}

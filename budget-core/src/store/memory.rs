//! [`MemoryStore`]: the whole contract in memory, for tests, examples and single-process
//! deployments that do not need their numbers to survive a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    admits, BucketSize, BudgetStore, Denial, DenialReason, Error, GroupBy, LimiterIndex,
    Reservation, ReservationId, ReserveOutcome, ReserveRequest, Result, UsageBucket, UsageGroup,
    UsageQuery, UsageRecord, UsageTotals, WindowSpend,
};
use crate::{Limiter, LimiterCode, LimiterId, LimiterUpdate, Money, Window};

/// A complete [`BudgetStore`] in memory. Cheap to clone (shared state).
///
/// ```
/// use std::sync::Arc;
/// use budget_core::{BudgetStore, MemoryStore};
/// let store: Arc<dyn BudgetStore> = Arc::new(MemoryStore::new());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    limiters: LimiterIndex,
    /// Spend and holds per (limiter, window). Spend is derived from `records` the first time
    /// a window is touched, then kept up to date.
    windows: HashMap<(LimiterId, Window), Counter>,
    reservations: HashMap<ReservationId, Reservation>,
    records: Vec<UsageRecord>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counter {
    spent: Money,
    held: Money,
    in_flight: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding these limiters and usage records, e.g. loaded from a snapshot or
    /// journal by a persistent store built on top of this one (see `examples/custom-store`).
    /// Deleted limiters keep their records but their codes are not indexed.
    pub fn from_parts(limiters: Vec<Limiter>, records: Vec<UsageRecord>) -> Self {
        let store = MemoryStore::new();
        {
            let mut inner = store.lock();
            inner.limiters = LimiterIndex::new(limiters);
            inner.records = records;
        }
        store
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than refusing service forever would; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn counter(&mut self, id: LimiterId, window: Window) -> &mut Counter {
        let records = &self.records;
        self.windows.entry((id, window)).or_insert_with(|| Counter {
            spent: records
                .iter()
                .filter(|r| r.limiter_id == id && window.contains(r.at))
                .map(|r| r.cost)
                .sum(),
            ..Counter::default()
        })
    }

    fn charge(&mut self, record: UsageRecord) {
        // Keep the counter of the record's window current if it exists; a missing one is
        // derived from the records when first needed.
        if let Some(window) = self
            .limiters
            .get(record.limiter_id)
            .map(|l| l.window_at(record.at))
        {
            if let Some(c) = self.windows.get_mut(&(record.limiter_id, window)) {
                c.spent += record.cost;
            }
        }
        self.records.push(record);
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()> {
        let mut inner = self.lock();
        if inner.limiters.get(limiter.id).is_some() {
            return Err(Error::Conflict(format!(
                "limiter id {} already exists",
                limiter.id
            )));
        }
        if inner.limiters.code_taken(limiter.code.as_str()) {
            return Err(Error::Conflict("limiter code already in use".into()));
        }
        inner.limiters.put(limiter.clone());
        Ok(())
    }

    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> {
        Ok(self.lock().limiters.get(id).cloned())
    }

    async fn limiter_by_code(&self, code: &str) -> Result<Option<Limiter>> {
        Ok(self.lock().limiters.by_code(code).cloned())
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        Ok(self.lock().limiters.list(include_deleted))
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        let mut inner = self.lock();
        let mut limiter = inner.limiters.live(id)?.clone();
        limiter.apply(update, Utc::now())?;
        let old = inner.limiters.put(limiter.clone());
        if old
            .is_some_and(|o| (o.period_type, o.timezone) != (limiter.period_type, limiter.timezone))
        {
            // Windows change shape: derive the new ones from the records. Holds of requests
            // in flight under the old shape are dropped; their cost still counts when settled.
            inner.windows.retain(|(l, _), _| *l != id);
        }
        Ok(limiter)
    }

    async fn rotate_code(&self, id: LimiterId) -> Result<Limiter> {
        let mut inner = self.lock();
        let mut limiter = inner.limiters.live(id)?.clone();
        limiter.code = LimiterCode::generate();
        limiter.updated_at = Utc::now();
        inner.limiters.put(limiter.clone());
        Ok(limiter)
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        let mut inner = self.lock();
        let Some(mut limiter) = inner.limiters.get(id).cloned() else {
            return Err(Error::LimiterNotFound(id));
        };
        if limiter.deleted_at.is_some() && !purge {
            return Err(Error::LimiterNotFound(id));
        }
        limiter.deleted_at.get_or_insert_with(Utc::now);
        inner.limiters.put(limiter);
        inner.reservations.retain(|_, r| r.limiter_id != id);
        inner.windows.retain(|(l, _), _| *l != id);
        if purge {
            inner.limiters.remove(id);
            inner.records.retain(|r| r.limiter_id != id);
        }
        Ok(())
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        let mut inner = self.lock();
        let limiter = inner.limiters.live(request.limiter_id)?;
        let (budget, mode, period, active) = (
            limiter.budget_limit,
            limiter.mode,
            limiter.period_type,
            limiter.is_active,
        );
        let window = limiter.window_at(request.at);
        let counter = inner.counter(request.limiter_id, window);
        let denial = |reason| Denial {
            limiter_id: request.limiter_id,
            reason,
            spent: counter.spent,
            held: counter.held,
            requested: request.amount,
            budget,
            period,
            window,
        };
        if !active {
            return Ok(ReserveOutcome::Denied(denial(DenialReason::Inactive)));
        }
        if !admits(mode, budget, counter.spent, counter.held, request.amount) {
            return Ok(ReserveOutcome::Denied(denial(DenialReason::BudgetExceeded)));
        }
        counter.held += request.amount;
        counter.in_flight += 1;
        let reservation = Reservation {
            id: ReservationId::new(),
            limiter_id: request.limiter_id,
            window,
            amount: request.amount,
            at: request.at,
            budget,
            committed: counter.spent + counter.held,
        };
        inner
            .reservations
            .insert(reservation.id, reservation.clone());
        Ok(ReserveOutcome::Reserved(reservation))
    }

    async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
        let mut inner = self.lock();
        let held = inner
            .reservations
            .remove(&reservation.id)
            .ok_or(Error::ReservationNotFound(reservation.id))?;
        if let Some(c) = inner.windows.get_mut(&(held.limiter_id, held.window)) {
            c.held -= held.amount;
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        record.limiter_id = held.limiter_id;
        record.at = held.at;
        inner.charge(record);
        Ok(())
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        let mut inner = self.lock();
        let held = inner
            .reservations
            .remove(&reservation.id)
            .ok_or(Error::ReservationNotFound(reservation.id))?;
        if let Some(c) = inner.windows.get_mut(&(held.limiter_id, held.window)) {
            c.held -= held.amount;
            c.in_flight = c.in_flight.saturating_sub(1);
        }
        Ok(())
    }

    async fn record_usage(&self, record: UsageRecord) -> Result<()> {
        let mut inner = self.lock();
        inner.limiters.live(record.limiter_id)?;
        inner.charge(record);
        Ok(())
    }

    async fn window_spend(&self, id: LimiterId, at: DateTime<Utc>) -> Result<WindowSpend> {
        let mut inner = self.lock();
        let window = inner
            .limiters
            .get(id)
            .ok_or(Error::LimiterNotFound(id))?
            .window_at(at);
        let c = *inner.counter(id, window);
        Ok(WindowSpend {
            window,
            spent: c.spent,
            held: c.held,
            in_flight: c.in_flight,
        })
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals> {
        let inner = self.lock();
        Ok(totals(inner.records.iter().filter(|r| query.matches(r))))
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        let inner = self.lock();
        let mut groups: HashMap<Option<String>, Vec<&UsageRecord>> = HashMap::new();
        for r in inner.records.iter().filter(|r| query.matches(r)) {
            let key = match by {
                GroupBy::Limiter => Some(r.limiter_id.to_string()),
                GroupBy::Model => r.model.clone(),
                GroupBy::User => r.user.clone(),
            };
            groups.entry(key).or_default().push(r);
        }
        let mut out: Vec<UsageGroup> = groups
            .into_iter()
            .map(|(key, rs)| UsageGroup {
                key,
                totals: totals(rs.into_iter()),
            })
            .collect();
        sort_groups(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        let inner = self.lock();
        let mut buckets: BTreeMap<DateTime<Utc>, Vec<&UsageRecord>> = BTreeMap::new();
        for r in inner.records.iter().filter(|r| query.matches(r)) {
            buckets.entry(bucket.floor(r.at)).or_default().push(r);
        }
        Ok(buckets
            .into_iter()
            .map(|(start, rs)| UsageBucket {
                start,
                totals: totals(rs.into_iter()),
            })
            .collect())
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        let inner = self.lock();
        let mut out: Vec<UsageRecord> = inner
            .records
            .iter()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        out.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
        out.truncate(limit);
        Ok(out)
    }
}

/// Totals of some records, distinct users included.
fn totals<'a>(records: impl Iterator<Item = &'a UsageRecord>) -> UsageTotals {
    let mut t = UsageTotals::default();
    let mut users = HashSet::new();
    for r in records {
        t.add(r);
        if let Some(u) = r.user.as_deref().filter(|u| !u.is_empty()) {
            users.insert(u);
        }
    }
    t.distinct_users = users.len() as u64;
    t
}

/// The breakdown order every store uses: cost descending, then requests descending, then key.
pub fn sort_groups(groups: &mut [UsageGroup]) {
    groups.sort_by(|a, b| {
        b.totals
            .cost
            .cmp(&a.totals.cost)
            .then(b.totals.requests.cmp(&a.totals.requests))
            .then(a.key.cmp(&b.key))
    });
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;

    crate::store_conformance_tests!(async { MemoryStore::new() });
}

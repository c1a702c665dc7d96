//! [`MemoryStore`]: the whole contract in memory, for tests, examples and single-process
//! deployments that do not need their numbers to survive a restart.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    BucketSize, BudgetStore, CounterKey, CredentialIndex, Error, GroupBy, Ledger, LimiterCatalog,
    LimiterIndex, LimiterRef, Reservation, ReserveOutcome, ReserveRequest, Result, UsageBucket,
    UsageGroup, UsageQuery, UsageRecord, UsageStats, UsageTotals, WindowSpend,
};
use crate::credential::{Credential, CredentialId};
use crate::{Limiter, LimiterId, LimiterUpdate, Money};

/// A complete store ([`BudgetStore`], [`LimiterCatalog`], [`UsageStats`]) in memory. Cheap to
/// clone (shared state).
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
    /// Spend and holds per counter; a counter's spend is summed from `records` the first time
    /// it is touched, then kept up to date.
    ledger: Ledger,
    records: Vec<UsageRecord>,
    credentials: CredentialIndex,
    audit: Vec<crate::audit::AuditEntry>,
    accounts: Vec<crate::account::Account>,
    refusals: HashMap<(LimiterId, DateTime<Utc>, crate::refusal::RefusalReason), u64>,
    /// The alert outbox, oldest first.
    alerts: Vec<crate::alert::AlertDelivery>,
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
    /// What the records that count in `key` cost.
    fn spent(&self, key: &CounterKey) -> Money {
        self.records
            .iter()
            .filter(|r| key.counts(r))
            .map(|r| r.cost)
            .sum()
    }

    /// Load `key` from the records if the ledger does not have it.
    fn load(&mut self, key: &CounterKey) {
        if !self.ledger.is_loaded(key) {
            let spent = self.spent(key);
            self.ledger.load(key.clone(), spent);
        }
    }

    /// Count a record in every loaded counter it belongs to, and keep it.
    fn charge(&mut self, record: UsageRecord) {
        if let Some(l) = self.limiters.get(record.limiter_id) {
            for line in l.budget_lines(record.at, record.user.as_deref()) {
                self.ledger.add_spent(&line.key, record.cost);
            }
        }
        self.records.push(record);
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
        Ok(self.lock().limiters.find(by))
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        let mut inner = self.lock();
        let limiter = inner.limiters.live(request.limiter_id)?.clone();
        loop {
            match inner.ledger.reserve(&limiter, request) {
                Ok(outcome) => return Ok(outcome),
                Err(missing) => {
                    // Counters of windows that ended before this one began hold nothing
                    // this request needs.
                    inner.ledger.evict_ended(missing.0.window.start);
                    inner.load(&missing.0);
                }
            }
        }
    }

    async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
        let mut inner = self.lock();
        let held = inner
            .ledger
            .settle(reservation.id, record.cost)
            .ok_or(Error::ReservationNotFound(reservation.id))?;
        record.limiter_id = held.limiter_id;
        record.at = held.at;
        inner.records.push(record);
        Ok(())
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        self.lock()
            .ledger
            .release(reservation.id)
            .map(|_| ())
            .ok_or(Error::ReservationNotFound(reservation.id))
    }

    async fn find_credential(&self, id: CredentialId) -> Result<Option<Arc<Credential>>> {
        Ok(self.lock().credentials.get(id))
    }
}

#[async_trait]
impl LimiterCatalog for MemoryStore {
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
        Ok(self.lock().limiters.get(id).map(|l| Limiter::clone(l)))
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        Ok(self.lock().limiters.list(include_deleted))
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        let mut inner = self.lock();
        let mut limiter = Limiter::clone(inner.limiters.live(id)?);
        limiter.apply(update, Utc::now())?;
        let old = inner.limiters.put(limiter.clone());
        if old
            .is_some_and(|o| (o.period_type, o.timezone) != (limiter.period_type, limiter.timezone))
        {
            // Windows change shape: derive the new ones from the records. Holds of requests
            // in flight under the old shape are dropped; their cost still counts when settled.
            inner.ledger.forget_counters(id);
        }
        Ok(limiter)
    }

    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<DateTime<Utc>>,
    ) -> Result<Limiter> {
        let mut inner = self.lock();
        let mut limiter = Limiter::clone(inner.limiters.live(id)?);
        limiter.rotate_code(Utc::now(), keep_old_until);
        inner.limiters.put(limiter.clone());
        Ok(limiter)
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        let mut inner = self.lock();
        let Some(mut limiter) = inner.limiters.get(id).map(|l| Limiter::clone(l)) else {
            return Err(Error::LimiterNotFound(id));
        };
        if limiter.deleted_at.is_some() && !purge {
            return Err(Error::LimiterNotFound(id));
        }
        limiter.deleted_at.get_or_insert_with(Utc::now);
        inner.limiters.put(limiter);
        inner.ledger.forget_limiter(id);
        if purge {
            inner.limiters.remove(id);
            inner.records.retain(|r| r.limiter_id != id);
            inner.refusals.retain(|(l, _, _), _| *l != id);
        }
        Ok(())
    }

    async fn record_usage(&self, record: UsageRecord) -> Result<()> {
        let mut inner = self.lock();
        inner.limiters.live(record.limiter_id)?;
        inner.charge(record);
        Ok(())
    }

    async fn create_credential(&self, credential: &Credential) -> Result<()> {
        let mut inner = self.lock();
        inner.credentials.check_new(credential)?;
        inner.credentials.put(credential.clone());
        Ok(())
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        Ok(self.lock().credentials.list())
    }

    async fn update_credential(&self, credential: &Credential) -> Result<()> {
        let mut inner = self.lock();
        inner.credentials.check_update(credential)?;
        inner.credentials.put(credential.clone());
        Ok(())
    }

    async fn delete_credential(&self, id: CredentialId) -> Result<()> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.credentials.check_delete(id, &inner.limiters)?;
        inner.credentials.remove(id);
        Ok(())
    }

    async fn enqueue_alert(&self, event: &crate::alert::AlertEvent) -> Result<bool> {
        let mut inner = self.lock();
        if inner.alerts.iter().any(|d| d.event.id == event.id) {
            return Ok(false);
        }
        let mut event = event.clone();
        event.at = crate::alert::to_micros(event.at);
        inner.alerts.push(crate::alert::AlertDelivery {
            next_attempt_at: event.at,
            event,
            status: crate::alert::DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            delivered_at: None,
        });
        Ok(true)
    }

    async fn claim_alerts(
        &self,
        now: DateTime<Utc>,
        claim_until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        let mut inner = self.lock();
        let mut due: Vec<usize> = (0..inner.alerts.len())
            .filter(|&i| {
                let d = &inner.alerts[i];
                d.status == crate::alert::DeliveryStatus::Pending && d.next_attempt_at <= now
            })
            .collect();
        due.sort_by_key(|&i| inner.alerts[i].next_attempt_at);
        due.truncate(limit);
        Ok(due
            .into_iter()
            .map(|i| {
                let d = &mut inner.alerts[i];
                d.attempts += 1;
                d.next_attempt_at = crate::alert::to_micros(claim_until);
                d.clone()
            })
            .collect())
    }

    async fn finish_alert(&self, id: &str, outcome: &crate::alert::AlertOutcome) -> Result<()> {
        use crate::alert::{AlertOutcome, DeliveryStatus};
        let mut inner = self.lock();
        if let Some(d) = inner.alerts.iter_mut().find(|d| d.event.id == id) {
            match outcome {
                AlertOutcome::Delivered(at) => {
                    d.status = DeliveryStatus::Delivered;
                    d.delivered_at = Some(crate::alert::to_micros(*at));
                }
                AlertOutcome::Retry { at, error } => {
                    d.next_attempt_at = crate::alert::to_micros(*at);
                    d.last_error = Some(error.clone());
                }
                AlertOutcome::Failed { error } => {
                    d.status = DeliveryStatus::Failed;
                    d.last_error = Some(error.clone());
                }
            }
        }
        Ok(())
    }

    async fn list_alerts(
        &self,
        query: &crate::alert::AlertQuery,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        let inner = self.lock();
        Ok(inner
            .alerts
            .iter()
            .rev()
            .filter(|d| query.limiter_id.is_none_or(|l| d.event.limiter_id == l))
            .filter(|d| query.status.is_none_or(|s| d.status == s))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn add_refusals(&self, counts: &[crate::refusal::RefusalCount]) -> Result<()> {
        let mut inner = self.lock();
        for c in counts {
            if inner.limiters.get(c.limiter_id).is_none() {
                continue;
            }
            let minute = crate::refusal::minute_of(c.minute);
            *inner
                .refusals
                .entry((c.limiter_id, minute, c.reason))
                .or_default() += c.count;
        }
        Ok(())
    }

    async fn create_account(&self, account: &crate::account::Account) -> Result<()> {
        account.validate()?;
        let mut inner = self.lock();
        if let Some(other) = inner
            .accounts
            .iter()
            .find(|a| a.id == account.id || a.is_named(&account.username))
        {
            return Err(Error::Conflict(format!(
                "an account named {:?} already exists",
                other.username
            )));
        }
        inner.accounts.push(account.clone());
        Ok(())
    }

    async fn list_accounts(&self) -> Result<Vec<crate::account::Account>> {
        let mut all = self.lock().accounts.clone();
        all.sort_by(|a, b| a.username.cmp(&b.username).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn find_account(&self, username: &str) -> Result<Option<crate::account::Account>> {
        Ok(self
            .lock()
            .accounts
            .iter()
            .find(|a| a.is_named(username))
            .cloned())
    }

    async fn update_account(&self, account: &crate::account::Account) -> Result<()> {
        account.validate()?;
        let mut inner = self.lock();
        if let Some(other) = inner
            .accounts
            .iter()
            .find(|a| a.id != account.id && a.is_named(&account.username))
        {
            return Err(Error::Conflict(format!(
                "an account named {:?} already exists",
                other.username
            )));
        }
        let slot = inner
            .accounts
            .iter_mut()
            .find(|a| a.id == account.id)
            .ok_or(Error::AccountNotFound(account.id))?;
        *slot = account.clone();
        Ok(())
    }

    async fn append_audit(&self, entry: &crate::audit::AuditEntry) -> Result<()> {
        let mut inner = self.lock();
        if inner.audit.iter().any(|e| e.id == entry.id) {
            return Err(Error::Conflict(format!(
                "audit entry {} already exists",
                entry.id
            )));
        }
        inner.audit.push(entry.clone());
        Ok(())
    }

    async fn list_audit(
        &self,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEntry>> {
        let inner = self.lock();
        let mut out: Vec<_> = inner
            .audit
            .iter()
            .filter(|e| query.matches(e))
            .cloned()
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        out.truncate(query.limit);
        Ok(out)
    }
}

#[async_trait]
impl UsageStats for MemoryStore {
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend> {
        let mut inner = self.lock();
        let Some(limiter) = inner.limiters.get(key.limiter_id).cloned() else {
            return Err(Error::LimiterNotFound(key.limiter_id));
        };
        if key.is_line_of(&limiter) {
            // A budget counter: kept in the ledger from now on.
            inner.load(key);
        }
        Ok(match inner.ledger.window_spend(key) {
            Some(w) => w,
            // Any other counter (a user without a budget of their own): from the records.
            None => WindowSpend {
                window: key.window,
                spent: inner.spent(key),
                held: Money::ZERO,
                in_flight: 0,
                leased: Default::default(),
            },
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

    async fn refusals(&self, query: &UsageQuery) -> Result<Vec<crate::refusal::RefusalGroup>> {
        let inner = self.lock();
        let mut sums: HashMap<(LimiterId, crate::refusal::RefusalReason), u64> = HashMap::new();
        for ((l, minute, reason), n) in &inner.refusals {
            let inside = query.limiter_id.is_none_or(|q| q == *l)
                && query.from.is_none_or(|f| *minute >= f)
                && query.to.is_none_or(|t| *minute < t);
            if inside {
                *sums.entry((*l, *reason)).or_default() += n;
            }
        }
        let mut out: Vec<_> = sums
            .into_iter()
            .map(
                |((limiter_id, reason), count)| crate::refusal::RefusalGroup {
                    limiter_id,
                    reason,
                    count,
                },
            )
            .collect();
        crate::refusal::sort_groups(&mut out);
        Ok(out)
    }

    async fn usage_page(
        &self,
        query: &UsageQuery,
        after: Option<super::UsageCursor>,
        limit: usize,
    ) -> Result<Vec<UsageRecord>> {
        let inner = self.lock();
        let matching = inner
            .records
            .iter()
            .filter(|r| query.matches(r) && after.is_none_or(|c| c.precedes(r)));
        Ok(super::page_of(matching.cloned(), None, limit))
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

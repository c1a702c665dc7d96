//! [`CachingStore`]: limiter look-ups served from memory, in front of any store.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lru::LruCache;

use super::{
    BucketSize, BudgetStore, CounterKey, Error, GroupBy, LimiterCatalog, LimiterRef, Reservation,
    ReserveOutcome, ReserveRequest, Result, UsageBucket, UsageGroup, UsageQuery, UsageRecord,
    UsageStats, UsageTotals, WindowSpend, WriteStatus,
};
use crate::credential::{Credential, CredentialId};
use crate::{Limiter, LimiterId, LimiterUpdate};

/// A store decorator that serves the hot path's limiter look-ups
/// ([`BudgetStore::find_limiter`]) from a bounded in-memory cache, and passes everything else
/// to the store it wraps.
///
/// The request path looks its limiter up on every request; a store whose look-up is a
/// database round trip is wrapped in this (in the manner of tower-sessions'
/// `CachingSessionStore`), so the layer and the admin API stay unaware of caching:
///
/// - **Bounded**: at most `capacity` limiters, least recently used evicted one at a time.
/// - **Fresh**: an entry is used for at most `ttl`; changes made through this wrapper
///   (update, rotate, delete) drop the limiter's entries at once, and a `reserve` that finds
///   the limiter gone drops them too. Only active limiters are cached, so a re-activated one
///   is seen on the next request; a deactivation made elsewhere is still enforced at once by
///   `reserve`, which decides from the store's own copy.
///
/// It implements each of [`BudgetStore`], [`LimiterCatalog`] and [`UsageStats`] that the
/// wrapped store implements, so it wraps a hot-path-only store or a complete
/// [`Store`](super::Store) (`dyn` included):
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use budget_core::MemoryStore;
/// use budget_core::store::{CachingStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
/// let cached: Arc<dyn Store> =
///     Arc::new(CachingStore::new(store).with_ttl(Duration::from_secs(1)));
/// ```
#[derive(Debug)]
pub struct CachingStore<S: ?Sized> {
    inner: Arc<S>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

type Entry = (Arc<Limiter>, Instant);

#[derive(Debug)]
struct Entries {
    by_code: LruCache<String, Entry>,
    by_id: LruCache<LimiterId, Entry>,
}

impl Entries {
    fn forget(&mut self, id: LimiterId) {
        if let Some((l, _)) = self.by_id.pop(&id) {
            self.by_code.pop(l.code.as_str());
        }
        // A code entry whose id entry was evicted first.
        let stale: Vec<String> = self
            .by_code
            .iter()
            .filter(|(_, (l, _))| l.id == id)
            .map(|(c, _)| c.clone())
            .collect();
        for code in stale {
            self.by_code.pop(&code);
        }
    }
}

/// The default number of limiters kept.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

impl<S: ?Sized> CachingStore<S> {
    /// Cache in front of `inner` (a store, or an `Arc<dyn Store>`):
    /// [`DEFAULT_CACHE_CAPACITY`] limiters for one second each.
    pub fn new(inner: Arc<S>) -> Self {
        let cap = NonZeroUsize::new(DEFAULT_CACHE_CAPACITY).expect("non-zero");
        CachingStore {
            inner,
            ttl: Duration::from_secs(1),
            entries: Mutex::new(Entries {
                by_code: LruCache::new(cap),
                by_id: LruCache::new(cap),
            }),
        }
    }

    /// How long an entry may be used; `Duration::ZERO` turns caching off.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How many limiters to keep (at least one).
    pub fn with_capacity(self, capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).expect("non-zero");
        {
            let mut e = self.lock();
            e.by_code.resize(cap);
            e.by_id.resize(cap);
        }
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }

    /// Drop any cached copy of limiter `id` (for changes made to the wrapped store directly,
    /// or announced by another replica).
    pub fn invalidate(&self, id: LimiterId) {
        self.lock().forget(id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cached(&self, by: LimiterRef<'_>) -> Option<Arc<Limiter>> {
        let mut e = self.lock();
        let (l, at) = match by {
            LimiterRef::Code(code) => e.by_code.get(code)?,
            LimiterRef::Id(id) => e.by_id.get(&id)?,
        };
        (at.elapsed() < self.ttl).then(|| l.clone())
    }

    fn remember(&self, l: &Arc<Limiter>) {
        if self.ttl.is_zero() || !l.is_active || l.deleted_at.is_some() {
            return;
        }
        let now = Instant::now();
        let mut e = self.lock();
        e.by_code.put(l.code.as_str().to_owned(), (l.clone(), now));
        e.by_id.put(l.id, (l.clone(), now));
    }
}

#[async_trait]
impl<S: BudgetStore + ?Sized> BudgetStore for CachingStore<S> {
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
        if let Some(l) = self.cached(by) {
            return Ok(Some(l));
        }
        let found = self.inner.find_limiter(by).await?;
        match (&found, by) {
            (Some(l), _) => self.remember(l),
            (None, LimiterRef::Id(id)) => self.invalidate(id),
            (None, LimiterRef::Code(code)) => {
                self.lock().by_code.pop(code);
            }
        }
        Ok(found)
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        let result = self.inner.reserve(request).await;
        if matches!(result, Err(Error::LimiterNotFound(_))) {
            self.invalidate(request.limiter_id);
        }
        result
    }

    async fn settle(&self, reservation: &Reservation, record: UsageRecord) -> Result<()> {
        self.inner.settle(reservation, record).await
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        self.inner.release(reservation).await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn flush(&self) -> Result<()> {
        self.inner.flush().await
    }

    fn write_status(&self) -> WriteStatus {
        self.inner.write_status()
    }

    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.now()
    }

    /// Not cached: a rotated credential must be sent from the next request on. Stores
    /// answer this from memory.
    async fn find_credential(&self, id: CredentialId) -> Result<Option<Arc<Credential>>> {
        self.inner.find_credential(id).await
    }
}

#[async_trait]
impl<S: LimiterCatalog + ?Sized> LimiterCatalog for CachingStore<S> {
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()> {
        self.inner.create_limiter(limiter).await
    }

    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> {
        self.inner.get_limiter(id).await
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        self.inner.list_limiters(include_deleted).await
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        let result = self.inner.update_limiter(id, update).await;
        self.invalidate(id);
        result
    }

    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Limiter> {
        let result = self.inner.rotate_code(id, keep_old_until).await;
        self.invalidate(id);
        result
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        let result = self.inner.delete_limiter(id, purge).await;
        self.invalidate(id);
        result
    }

    async fn record_usage(&self, record: UsageRecord) -> Result<()> {
        self.inner.record_usage(record).await
    }

    async fn create_credential(&self, credential: &Credential) -> Result<()> {
        self.inner.create_credential(credential).await
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        self.inner.list_credentials().await
    }

    async fn update_credential(&self, credential: &Credential) -> Result<()> {
        self.inner.update_credential(credential).await
    }

    async fn delete_credential(&self, id: CredentialId) -> Result<()> {
        self.inner.delete_credential(id).await
    }

    async fn enqueue_alert(&self, event: &crate::alert::AlertEvent) -> Result<bool> {
        self.inner.enqueue_alert(event).await
    }

    async fn claim_alerts(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        claim_until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        self.inner.claim_alerts(now, claim_until, limit).await
    }

    async fn finish_alert(&self, id: &str, outcome: &crate::alert::AlertOutcome) -> Result<()> {
        self.inner.finish_alert(id, outcome).await
    }

    async fn list_alerts(
        &self,
        query: &crate::alert::AlertQuery,
    ) -> Result<Vec<crate::alert::AlertDelivery>> {
        self.inner.list_alerts(query).await
    }

    async fn add_refusals(&self, counts: &[crate::refusal::RefusalCount]) -> Result<()> {
        self.inner.add_refusals(counts).await
    }

    async fn create_account(&self, account: &crate::account::Account) -> Result<()> {
        self.inner.create_account(account).await
    }

    async fn list_accounts(&self) -> Result<Vec<crate::account::Account>> {
        self.inner.list_accounts().await
    }

    /// Not cached: a disabled account or a changed password must take effect at once.
    async fn find_account(&self, username: &str) -> Result<Option<crate::account::Account>> {
        self.inner.find_account(username).await
    }

    async fn update_account(&self, account: &crate::account::Account) -> Result<()> {
        self.inner.update_account(account).await
    }

    async fn append_audit(&self, entry: &crate::audit::AuditEntry) -> Result<()> {
        self.inner.append_audit(entry).await
    }

    async fn list_audit(
        &self,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditEntry>> {
        self.inner.list_audit(query).await
    }
}

#[async_trait]
impl<S: UsageStats + ?Sized> UsageStats for CachingStore<S> {
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend> {
        self.inner.window_spend(key).await
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals> {
        self.inner.usage_totals(query).await
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        self.inner.usage_breakdown(query, by, limit).await
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        self.inner.usage_series(query, bucket).await
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        self.inner.recent_usage(query, limit).await
    }

    async fn usage_page(
        &self,
        query: &UsageQuery,
        after: Option<super::UsageCursor>,
        limit: usize,
    ) -> Result<Vec<UsageRecord>> {
        self.inner.usage_page(query, after, limit).await
    }

    async fn refusals(&self, query: &UsageQuery) -> Result<Vec<crate::refusal::RefusalGroup>> {
        self.inner.refusals(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, Money, NewLimiter, Period};
    use chrono::Utc;

    async fn by_code<S: BudgetStore + ?Sized>(
        store: &CachingStore<S>,
        code: &str,
    ) -> Option<Arc<Limiter>> {
        store.find_limiter(LimiterRef::Code(code)).await.unwrap()
    }

    fn limiter() -> Limiter {
        Limiter::create(
            NewLimiter::new("c", Money::from_dollars(1), Period::Day, "http://x"),
            Utc::now(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn serves_from_memory_and_forgets_on_change() {
        {
            let store =
                CachingStore::new(Arc::new(MemoryStore::new())).with_ttl(Duration::from_secs(60));
            let l = limiter();
            store.create_limiter(&l).await.unwrap();
            let code = l.code.as_str().to_owned();
            assert!(by_code(&store, &code).await.is_some());
            // A change behind the wrapper's back is not seen until the entry expires…
            store
                .inner()
                .update_limiter(
                    l.id,
                    &LimiterUpdate {
                        name: Some("renamed".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(by_code(&store, &code).await.unwrap().name, "c");
            // …a change through it is seen at once.
            store
                .update_limiter(
                    l.id,
                    &LimiterUpdate {
                        name: Some("again".into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(by_code(&store, &code).await.unwrap().name, "again");
            let rotated = store.rotate_code(l.id, None).await.unwrap();
            assert!(by_code(&store, &code).await.is_none());
            assert!(by_code(&store, rotated.code.as_str()).await.is_some());
            store.delete_limiter(l.id, false).await.unwrap();
            assert!(by_code(&store, rotated.code.as_str()).await.is_none());
        }
    }

    #[tokio::test]
    async fn inactive_limiters_are_not_cached_and_capacity_is_bounded() {
        {
            let store = CachingStore::new(Arc::new(MemoryStore::new()))
                .with_ttl(Duration::from_secs(60))
                .with_capacity(2);
            let mut ls = Vec::new();
            for _ in 0..3 {
                let l = limiter();
                store.create_limiter(&l).await.unwrap();
                by_code(&store, l.code.as_str()).await;
                ls.push(l);
            }
            assert_eq!(store.lock().by_code.len(), 2, "least recently used evicted");
            let off = LimiterUpdate {
                is_active: Some(false),
                ..Default::default()
            };
            store.update_limiter(ls[2].id, &off).await.unwrap();
            by_code(&store, ls[2].code.as_str()).await;
            assert!(!store.lock().by_code.contains(ls[2].code.as_str()));
            // Re-activated behind its back: seen on the next look-up.
            store
                .inner()
                .update_limiter(
                    ls[2].id,
                    &LimiterUpdate {
                        is_active: Some(true),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(
                by_code(&store, ls[2].code.as_str())
                    .await
                    .unwrap()
                    .is_active
            );
        }
    }
}

/// The decorator is a store like any other: the whole suite, with entries that never expire
/// on their own, so every change the suite makes must reach it through the wrapper.
#[cfg(test)]
mod conformance_of_the_decorator {
    crate::store_conformance_tests!(async {
        crate::store::CachingStore::new(std::sync::Arc::new(crate::MemoryStore::new()))
            .with_ttl(std::time::Duration::from_secs(3600))
    });
}

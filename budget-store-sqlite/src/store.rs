//! [`SqliteStore`]: opening, the budget hot path and the [`BudgetStore`] implementation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use budget_core::credential::{Credential, CredentialId};
use budget_core::store::{
    BucketSize, BudgetStore, CounterKey, Error, GroupBy, LimiterCatalog, LimiterRef, Reservation,
    ReserveOutcome, ReserveRequest, Result, UsageBucket, UsageGroup, UsageQuery, UsageRecord,
    UsageStats, UsageTotals, WindowSpend, WriteStatus,
};
use budget_core::{Limiter, LimiterId, LimiterUpdate};
use chrono::Utc;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::options::Location;
use crate::rows::{
    bind_limiter, limiter_from_row, micros, truncate_micros, LIMITER_COLUMNS, LIMITER_PLACEHOLDERS,
};
use crate::state::{HotState, Load};
use crate::writer::{Msg, Shared, Target, Writer};
use crate::{migrate, stats, SqliteStoreError, SqliteStoreOptions};
use budget_core::store::backlog::UnsavedLimits;

/// The SQLite [`BudgetStore`]: decisions from memory, usage written behind in batches,
/// statistics from roll-ups. Cheap to clone (shared state); see the [crate docs](crate).
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    shared: Arc<Shared>,
    pub(crate) pool: SqlitePool,
    tx: mpsc::UnboundedSender<Msg>,
    /// Serializes limiter writes (rare) so each is a clean read-modify-write of DB and cache.
    pub(crate) crud: tokio::sync::Mutex<()>,
    /// Set under the state lock, so no event can be queued after the writer's `Close`.
    closed: AtomicBool,
    writer: Mutex<Option<JoinHandle<()>>>,
    location: Location,
    max_pending: usize,
    limits: UnsavedLimits,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.inner.location)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating if missing, with its folder) the database at `url_or_path` —
    /// `sqlite:usage_data.db`, `sqlite://path`, a plain path or `sqlite::memory:` — run the
    /// migrations, load the limiters and the current windows' spend, and start the writer.
    /// Must be called inside a Tokio runtime.
    pub async fn open(url_or_path: &str) -> std::result::Result<Self, SqliteStoreError> {
        Self::open_with(SqliteStoreOptions::new(url_or_path)).await
    }

    /// [`open`](Self::open) with explicit options.
    pub async fn open_with(
        options: SqliteStoreOptions,
    ) -> std::result::Result<Self, SqliteStoreError> {
        let location = Location::parse(&options.location)?;
        let (pool, target) = connect(&location, &options).await?;
        migrate(&pool).await?;

        let rows = sqlx::query(&format!("SELECT {LIMITER_COLUMNS} FROM limiters"))
            .fetch_all(&pool)
            .await?;
        let limiters = rows
            .iter()
            .map(limiter_from_row)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut state = HotState::new(limiters, crate::credentials::load(&pool).await?);
        let now = Utc::now();
        let current: Vec<CounterKey> = state
            .limiters
            .list(false)
            .iter()
            .flat_map(|l| l.budget_lines(now, None))
            .map(|line| line.key)
            .collect();
        for key in current {
            let spent = stats::counter_cost(&pool, &key).await?;
            state.ledger.load(key, spent);
        }

        let shared = Arc::new(Shared::new(state));
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer::new(
            rx,
            shared.clone(),
            pool.clone(),
            target,
            options.batch_size,
            options.flush_interval,
        );
        let handle = tokio::spawn(writer.run());
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                shared,
                pool,
                tx,
                crud: tokio::sync::Mutex::new(()),
                closed: AtomicBool::new(false),
                writer: Mutex::new(Some(handle)),
                location,
                max_pending: options.max_pending,
                limits: UnsavedLimits {
                    events: options.max_unsaved_events,
                    age: options.max_unsaved_age,
                },
            }),
        })
    }

    /// The connection pool, for read-only inspection and tooling. Writing the usage tables
    /// behind the store's back leaves its in-memory counters out of date.
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Commit everything settled so far, stop the writer and close the pool. Later calls
    /// fail with [`Error::Closed`]. Dropping the last handle without `close` also asks the
    /// writer to commit what is queued, but if the runtime or process ends first, the last
    /// batch (at most `flush_interval` of usage) is lost.
    pub async fn close(&self) {
        let done = {
            let _st = self.lock();
            if self.inner.closed.swap(true, Ordering::SeqCst) {
                None
            } else {
                let (reply, done) = oneshot::channel();
                self.inner.tx.send(Msg::Close(reply)).ok().map(|()| done)
            }
        };
        if let Some(done) = done {
            let _ = done.await;
        }
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
        self.inner.pool.close().await;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HotState> {
        self.inner.shared.lock()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Queue a charged record for the writer. Call with the state lock held, so the order
    /// of the queue is the order of the in-memory charges.
    fn enqueue(&self, record: UsageRecord) -> Result<()> {
        self.inner.shared.backlog.queued();
        self.inner
            .tx
            .send(Msg::Event(Box::new(record)))
            .map_err(|_| Error::Closed)
    }

    /// Past `max_pending` queued events, wait for the writer (back-pressure).
    async fn backpressure(&self) -> Result<()> {
        if self.inner.shared.backlog.pending() > self.inner.max_pending {
            self.flush().await?;
        }
        Ok(())
    }

    /// Statistics must see everything settled before they were asked for. While the writer
    /// fails they answer from what is committed: consistent, behind by the unsaved usage
    /// (which `write_status` and `/health` report).
    async fn read_barrier(&self) -> Result<()> {
        self.check_open()?;
        match self.flush().await {
            Err(Error::Closed) => Err(Error::Closed),
            Ok(()) | Err(_) => Ok(()),
        }
    }

    /// Make sure counter `key` is loaded or being loaded (under the state lock): asks the
    /// writer to sum it from the database if nobody has yet; reports (once) a load that failed.
    fn start_load(&self, st: &mut HotState, key: CounterKey) -> Result<()> {
        match st.loading.get(&key) {
            Some(Load::Loading(..)) => Ok(()),
            Some(Load::Failed(e)) => {
                let e = SqliteStoreError::Writer(e.to_string());
                st.loading.remove(&key);
                Err(e.into())
            }
            None => {
                self.check_open()?;
                // A new counter: drop those whose windows ended before its window began (they
                // hold nothing, and no line of the request that needs this one is among them).
                st.ledger.evict_ended(key.window.start);
                st.next_load += 1;
                let load = st.next_load;
                st.loading
                    .insert(key.clone(), Load::Loading(load, Default::default()));
                if self
                    .inner
                    .tx
                    .send(Msg::Load {
                        key: key.clone(),
                        load,
                    })
                    .is_err()
                {
                    st.loading.remove(&key);
                    return Err(Error::Closed);
                }
                Ok(())
            }
        }
    }

    /// Run `f` under the state lock until it stops asking for a counter: each counter it
    /// names is loaded from the database first (outside the lock), then `f` runs again.
    async fn with_counters<R>(
        &self,
        mut f: impl FnMut(&mut HotState) -> Result<std::result::Result<R, CounterKey>>,
    ) -> Result<R> {
        loop {
            let mut waiter = {
                let mut st = self.lock();
                match f(&mut st)? {
                    Ok(r) => return Ok(r),
                    Err(key) => self.start_load(&mut st, key)?,
                }
                self.inner.shared.loaded.subscribe()
            };
            waiter.changed().await.map_err(|_| Error::Closed)?;
        }
    }

    /// Write every column of `l` to its row.
    async fn write_limiter(&self, l: &Limiter) -> Result<()> {
        let sql = format!(
            "UPDATE limiters SET ({LIMITER_COLUMNS}) = ({LIMITER_PLACEHOLDERS}) WHERE id = ?"
        );
        bind_limiter(sqlx::query(&sql), l)
            .bind(l.id.to_string())
            .execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        Ok(())
    }
}

/// The pool (statistics, limiters) and the writer's connection.
async fn connect(
    location: &Location,
    o: &SqliteStoreOptions,
) -> std::result::Result<(SqlitePool, Target), SqliteStoreError> {
    let base = SqliteConnectOptions::new()
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(o.busy_timeout)
        .foreign_keys(true)
        .synchronous(if o.full_sync {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        })
        .pragma("cache_size", format!("-{}", o.cache_kib))
        .pragma("temp_store", "memory");
    let base = match o.max_page_count {
        Some(pages) => base.pragma("max_page_count", pages.to_string()),
        None => base,
    };
    match location {
        Location::Memory => {
            // One connection: every connection to `:memory:` is a database of its own.
            let opts = base.in_memory(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await
                .map_err(|e| SqliteStoreError::Open {
                    path: ":memory:".into(),
                    reason: e.to_string(),
                })?;
            Ok((pool.clone(), Target::Memory(pool)))
        }
        Location::File(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| SqliteStoreError::Open {
                    path: path.clone(),
                    reason: format!("cannot create folder {}: {e}", parent.display()),
                })?;
            }
            let opts = base.filename(path).create_if_missing(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(o.max_connections)
                .connect_with(opts.clone())
                .await
                .map_err(|e| SqliteStoreError::Open {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            let target = Target::File {
                options: Box::new(opts),
                conn: None,
            };
            Ok((pool, target))
        }
    }
}

#[async_trait]
impl BudgetStore for SqliteStore {
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
        Ok(self.lock().limiters.find(by))
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        self.check_open()?;
        if let Some(e) = self.inner.shared.backlog.refusal(&self.inner.limits) {
            // Fail closed rather than spend money that cannot be recorded.
            return Err(SqliteStoreError::from(e).into());
        }
        self.with_counters(|st| {
            let limiter = st.live(request.limiter_id)?.clone();
            Ok(st.ledger.reserve(&limiter, request).map_err(|u| u.0))
        })
        .await
    }

    async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
        {
            let mut st = self.lock();
            self.check_open()?;
            let held = st
                .ledger
                .settle(reservation.id, record.cost)
                .ok_or(Error::ReservationNotFound(reservation.id))?;
            st.charge_loading(&held, record.cost);
            record.limiter_id = held.limiter_id;
            record.at = held.at;
            record.normalize();
            self.enqueue(record)?;
        }
        self.backpressure().await
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        self.lock()
            .ledger
            .release(reservation.id)
            .map(|_| ())
            .ok_or(Error::ReservationNotFound(reservation.id))
    }

    async fn health(&self) -> Result<()> {
        self.check_open()?;
        if self.inner.tx.is_closed() {
            return Err(SqliteStoreError::Writer("the writer task stopped".into()).into());
        }
        sqlx::query("SELECT 1")
            .execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        Ok(())
    }

    fn write_status(&self) -> WriteStatus {
        self.inner.shared.backlog.status(&self.inner.limits)
    }

    async fn find_credential(&self, id: CredentialId) -> Result<Option<Arc<Credential>>> {
        Ok(self.credential(id))
    }

    async fn flush(&self) -> Result<()> {
        let (reply, done) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Flush(reply))
            .map_err(|_| Error::Closed)?;
        done.await
            .map_err(|_| Error::Closed)?
            .map_err(|e| SqliteStoreError::Writer(e.to_string()).into())
    }
}

#[async_trait]
impl LimiterCatalog for SqliteStore {
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        {
            let st = self.lock();
            if st.limiters.get(limiter.id).is_some() {
                return Err(Error::Conflict(format!(
                    "limiter id {} already exists",
                    limiter.id
                )));
            }
            if st.limiters.code_taken(limiter.code.as_str()) {
                return Err(Error::Conflict("limiter code already in use".into()));
            }
        }
        let sql =
            format!("INSERT INTO limiters ({LIMITER_COLUMNS}) VALUES ({LIMITER_PLACEHOLDERS})");
        bind_limiter(sqlx::query(&sql), limiter)
            .execute(&self.inner.pool)
            .await
            .map_err(SqliteStoreError::from)?;
        // As it reads back from the file: times to the microsecond.
        let mut stored = limiter.clone();
        stored.created_at = truncate_micros(stored.created_at);
        stored.updated_at = truncate_micros(stored.updated_at);
        self.lock().limiters.put(stored);
        Ok(())
    }

    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> {
        Ok(self.lock().limiters.get(id).map(|l| Limiter::clone(l)))
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        Ok(self.lock().limiters.list(include_deleted))
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut limiter = Limiter::clone(self.lock().live(id)?);
        limiter.apply(update, truncate_micros(Utc::now()))?;
        self.write_limiter(&limiter).await?;
        let mut st = self.lock();
        let old = st.limiters.put(limiter.clone());
        if old
            .is_some_and(|o| (o.period_type, o.timezone) != (limiter.period_type, limiter.timezone))
        {
            st.forget_counters(id);
        }
        Ok(limiter)
    }

    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<chrono::DateTime<Utc>>,
    ) -> Result<Limiter> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut limiter = Limiter::clone(self.lock().live(id)?);
        limiter.rotate_code(
            truncate_micros(Utc::now()),
            keep_old_until.map(truncate_micros),
        );
        self.write_limiter(&limiter).await?;
        self.lock().limiters.put(limiter.clone());
        Ok(limiter)
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let already_deleted = match self.lock().limiters.get(id) {
            None => return Err(Error::LimiterNotFound(id)),
            Some(l) if l.deleted_at.is_some() && !purge => return Err(Error::LimiterNotFound(id)),
            Some(l) => l.deleted_at.is_some(),
        };
        let now = truncate_micros(Utc::now());
        if !purge && !already_deleted {
            sqlx::query("UPDATE limiters SET deleted_at = ? WHERE id = ?")
                .bind(micros(now))
                .bind(id.to_string())
                .execute(&self.inner.pool)
                .await
                .map_err(SqliteStoreError::from)?;
        }
        {
            // From here the code is dead and no new usage can be charged to the limiter.
            let mut st = self.lock();
            if let Some(mut l) = st.limiters.get(id).map(|l| Limiter::clone(l)) {
                l.deleted_at.get_or_insert(now);
                st.limiters.put(l);
            }
            st.forget_limiter(id);
        }
        if purge {
            let (reply, done) = oneshot::channel();
            self.inner
                .tx
                .send(Msg::Purge {
                    limiter_id: id,
                    reply,
                })
                .map_err(|_| Error::Closed)?;
            done.await.map_err(|_| Error::Closed)??;
            self.lock().limiters.remove(id);
        }
        Ok(())
    }

    async fn record_usage(&self, mut record: UsageRecord) -> Result<()> {
        {
            let mut st = self.lock();
            self.check_open()?;
            st.live(record.limiter_id)?;
            record.normalize();
            st.charge(&record);
            self.enqueue(record)?;
        }
        self.backpressure().await
    }

    async fn create_credential(&self, credential: &Credential) -> Result<()> {
        self.write_credential(credential, true).await
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        Ok(self.credential_list())
    }

    async fn update_credential(&self, credential: &Credential) -> Result<()> {
        self.write_credential(credential, false).await
    }

    async fn delete_credential(&self, id: CredentialId) -> Result<()> {
        self.remove_credential(id).await
    }

    async fn add_refusals(&self, counts: &[budget_core::refusal::RefusalCount]) -> Result<()> {
        self.refusals_add(counts).await
    }

    async fn create_account(&self, account: &budget_core::account::Account) -> Result<()> {
        self.account_create(account).await
    }

    async fn list_accounts(&self) -> Result<Vec<budget_core::account::Account>> {
        self.account_list().await
    }

    async fn find_account(&self, username: &str) -> Result<Option<budget_core::account::Account>> {
        self.account_find(username).await
    }

    async fn update_account(&self, account: &budget_core::account::Account) -> Result<()> {
        self.account_update(account).await
    }

    async fn enqueue_alert(&self, event: &budget_core::alert::AlertEvent) -> Result<bool> {
        self.alert_enqueue(event).await
    }

    async fn claim_alerts(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        claim_until: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<budget_core::alert::AlertDelivery>> {
        self.alert_claim(now, claim_until, limit).await
    }

    async fn finish_alert(
        &self,
        id: &str,
        outcome: &budget_core::alert::AlertOutcome,
    ) -> Result<()> {
        self.alert_finish(id, outcome).await
    }

    async fn list_alerts(
        &self,
        query: &budget_core::alert::AlertQuery,
    ) -> Result<Vec<budget_core::alert::AlertDelivery>> {
        self.alert_list(query).await
    }

    async fn append_audit(&self, entry: &budget_core::audit::AuditEntry) -> Result<()> {
        self.audit_append(entry).await
    }

    async fn list_audit(
        &self,
        query: &budget_core::audit::AuditQuery,
    ) -> Result<Vec<budget_core::audit::AuditEntry>> {
        self.audit_list(query).await
    }
}

#[async_trait]
impl UsageStats for SqliteStore {
    async fn window_spend(&self, key: &CounterKey) -> Result<WindowSpend> {
        let is_line = match self.lock().limiters.get(key.limiter_id) {
            None => return Err(Error::LimiterNotFound(key.limiter_id)),
            Some(l) => key.is_line_of(l),
        };
        if !is_line {
            // Not a budget counter (a user without a budget of their own): a statistic.
            self.read_barrier().await?;
            return Ok(WindowSpend {
                window: key.window,
                spent: stats::counter_cost(&self.inner.pool, key).await?,
                held: Default::default(),
                in_flight: 0,
                leased: Default::default(),
            });
        }
        self.with_counters(|st| {
            if st.limiters.get(key.limiter_id).is_none() {
                return Err(Error::LimiterNotFound(key.limiter_id));
            }
            Ok(st.ledger.window_spend(key).ok_or_else(|| key.clone()))
        })
        .await
    }

    async fn usage_totals(&self, query: &UsageQuery) -> Result<UsageTotals> {
        self.read_barrier().await?;
        Ok(stats::totals(&self.inner.pool, query).await?)
    }

    async fn usage_breakdown(
        &self,
        query: &UsageQuery,
        by: GroupBy,
        limit: usize,
    ) -> Result<Vec<UsageGroup>> {
        self.read_barrier().await?;
        Ok(stats::breakdown(&self.inner.pool, query, by, limit).await?)
    }

    async fn usage_series(
        &self,
        query: &UsageQuery,
        bucket: BucketSize,
    ) -> Result<Vec<UsageBucket>> {
        self.read_barrier().await?;
        Ok(stats::series(&self.inner.pool, query, bucket).await?)
    }

    async fn recent_usage(&self, query: &UsageQuery, limit: usize) -> Result<Vec<UsageRecord>> {
        self.read_barrier().await?;
        Ok(stats::recent(&self.inner.pool, query, limit).await?)
    }

    async fn refusals(
        &self,
        query: &UsageQuery,
    ) -> Result<Vec<budget_core::refusal::RefusalGroup>> {
        self.refusals_sum(query).await
    }

    async fn usage_page(
        &self,
        query: &UsageQuery,
        after: Option<budget_core::store::UsageCursor>,
        limit: usize,
    ) -> Result<Vec<UsageRecord>> {
        self.read_barrier().await?;
        Ok(stats::page(&self.inner.pool, query, after, limit).await?)
    }
}

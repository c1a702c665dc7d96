//! [`PostgresStore`]: opening, the hot path (admission from leased slices) and the catalogue.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use async_trait::async_trait;
use budget_core::credential::{Credential, CredentialId};
use budget_core::store::backlog::Backlog;
use budget_core::store::{
    BudgetLine, BudgetStore, CounterKey, Denial, DenialReason, Error, Hold, LimiterCatalog,
    LimiterIndex, LimiterRef, Reservation, ReservationId, ReserveOutcome, ReserveRequest, Result,
    UsageRecord, WriteStatus,
};
use budget_core::{EnforcementMode, Limiter, LimiterId, LimiterUpdate, Money};
use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::rows::{doc_of, limiter_from_doc};
use crate::slices::{Need, Slice, View};
use crate::tasks::{self, WriterMsg};
use crate::{migrate, PostgresStoreError, PostgresStoreOptions};

/// The PostgreSQL store: several replicas share one budget through leased slices. Cheap to
/// clone (shared state); see the [crate docs](crate).
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Shared>,
}

/// An admitted request: its reservation and the lease each hold was taken from.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) reservation: Reservation,
    pub(crate) leases: Vec<Option<i64>>,
}

/// What budget decisions read, behind one `std::sync::Mutex` never held across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Hot {
    pub(crate) limiters: LimiterIndex,
    /// Every upstream credential (reloaded whole on a change or a poll).
    pub(crate) credentials: budget_core::store::CredentialIndex,
    /// Each limiter's `change_seq` as loaded.
    pub(crate) versions: HashMap<LimiterId, i64>,
    /// The highest `change_seq` seen.
    pub(crate) last_seq: i64,
    pub(crate) slices: HashMap<CounterKey, Slice>,
    pub(crate) open: HashMap<ReservationId, Open>,
    /// This replica's leases that were reclaimed while it could not report: once no request
    /// holds them and their usage is written, the unspent part of the reclaim's charge is
    /// given back (`budget_settle_reclaimed`).
    pub(crate) reclaimed: Vec<i64>,
}

impl Hot {
    /// Put a limiter as loaded (at `seq`). When its budgets changed, its slices give back
    /// what they do not use at the next report, and admit nothing more from what they hold:
    /// new grants are made against the new budgets.
    pub(crate) fn put(&mut self, limiter: Limiter, seq: i64) {
        let id = limiter.id;
        self.last_seq = self.last_seq.max(seq);
        if self.versions.get(&id).is_some_and(|v| *v >= seq) {
            return;
        }
        self.versions.insert(id, seq);
        let changed = self.limiters.get(id).is_none_or(|old| {
            old.deleted_at != limiter.deleted_at
                || old.is_active != limiter.is_active
                || old.budget_limit != limiter.budget_limit
                || old.period_type != limiter.period_type
                || old.timezone != limiter.timezone
                || old.mode != limiter.mode
                || old.extra_budgets != limiter.extra_budgets
                || old.user_budget != limiter.user_budget
                || old.user_overrides != limiter.user_overrides
        });
        self.limiters.put(limiter);
        if changed {
            for s in self
                .slices
                .values_mut()
                .filter(|s| s.line.key.limiter_id == id)
            {
                s.wanted = true;
                s.granted = s.committed().min(s.granted);
                s.exposed = s.committed().min(s.exposed);
            }
        }
    }
}

pub(crate) struct Shared {
    pub(crate) options: PostgresStoreOptions,
    pub(crate) pool: PgPool,
    pub(crate) replica: Uuid,
    pub(crate) hot: Mutex<Hot>,
    /// Bumped after every database call for a slice: requests waiting for it look again.
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) backlog: Backlog,
    pub(crate) writer: mpsc::UnboundedSender<WriterMsg>,
    pub(crate) report_now: Notify,
    pub(crate) refresh_now: Notify,
    pub(crate) closed: AtomicBool,
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) round_trips: AtomicU64,
    /// After a failed call on the request path, calls fail at once until this instant (one
    /// request probes afterwards), so requests do not each wait for a dead database.
    pub(crate) unreachable_until: Mutex<Option<Instant>>,
    /// The database clock minus this machine's, in microseconds (see `measure_clock`).
    pub(crate) clock_offset_us: std::sync::atomic::AtomicI64,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Serializes this replica's limiter writes (each is a read-modify-write in one
    /// transaction; this only keeps the local index in order).
    pub(crate) crud: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("replica", &self.inner.replica)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Hot> {
        self.hot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wait until the usage queued so far is written.
    pub(crate) async fn flush(&self) -> std::result::Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.writer
            .send(WriterMsg::Flush(reply))
            .map_err(|_| "the store is closed".to_owned())?;
        done.await.map_err(|_| "the store is closed".to_owned())?
    }

    /// Measure the database clock against this machine's: the offset is the database's
    /// `now()` minus the middle of the round trip. Windows are then placed by database time.
    pub(crate) async fn measure_clock(&self) -> std::result::Result<(), PostgresStoreError> {
        let before = Utc::now();
        self.trip();
        let db: chrono::DateTime<Utc> = crate::tasks::timed(
            self,
            sqlx::query_scalar("SELECT now()").fetch_one(&self.pool),
        )
        .await?;
        let after = Utc::now();
        let middle = before + (after - before) / 2;
        let offset = (db - middle).num_microseconds().unwrap_or(0);
        self.clock_offset_us.store(offset, Ordering::Relaxed);
        Ok(())
    }

    /// A database call succeeded: the request path may call again at once.
    pub(crate) fn reachable(&self) {
        *self
            .unreachable_until
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Count one database round trip.
    pub(crate) fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    pub(crate) fn deadline_from(&self, sent: Instant) -> Instant {
        sent + self.options.local_lease()
    }

    fn ttl_secs(&self) -> f64 {
        self.options.lease_ttl.as_secs_f64()
    }

    /// Load limiters changed since the last one seen (all of them at first). Change numbers
    /// are taken before commit, so a change can commit after a later-numbered one: the query
    /// looks 64 changes further back, and what is already loaded is skipped.
    pub(crate) async fn refresh(&self) -> std::result::Result<usize, PostgresStoreError> {
        let since = self.lock().last_seq;
        self.trip();
        let rows = sqlx::query(
            "SELECT doc, change_seq FROM limiters WHERE change_seq > $1 ORDER BY change_seq",
        )
        .bind(if since == 0 { 0 } else { since - 64 })
        .fetch_all(&self.pool)
        .await?;
        let n = self.take(rows)?;
        self.refresh_credentials().await?;
        Ok(n)
    }

    /// Load one limiter (after a notification, or a grant refused as stale); a purged one is
    /// removed.
    pub(crate) async fn reload(
        &self,
        id: LimiterId,
    ) -> std::result::Result<usize, PostgresStoreError> {
        self.trip();
        let rows = sqlx::query("SELECT doc, change_seq FROM limiters WHERE id = $1")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            let mut hot = self.lock();
            hot.limiters.remove(id);
            hot.versions.remove(&id);
            hot.slices.retain(|k, _| k.limiter_id != id);
            return Ok(1);
        }
        self.take(rows)
    }

    fn take(
        &self,
        rows: Vec<sqlx::postgres::PgRow>,
    ) -> std::result::Result<usize, PostgresStoreError> {
        let mut loaded = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("change_seq")?;
            let doc: serde_json::Value = row.try_get("doc")?;
            let id = doc
                .get("id")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse().ok());
            // Looked at again (the look-back) but unchanged: nothing to parse.
            if id.is_some_and(|id| self.lock().versions.get(&id) == Some(&seq)) {
                continue;
            }
            loaded.push((limiter_from_doc(doc)?, seq));
        }
        let n = loaded.len();
        if n > 0 {
            let mut hot = self.lock();
            for (l, seq) in loaded {
                hot.put(l, seq);
            }
        }
        if n > 0 {
            self.report_now.notify_one();
            self.bump();
        }
        Ok(n)
    }
}

impl PostgresStore {
    /// Open the database at `url` (`postgres://…`), run the migrations, load the limiters and
    /// start the background tasks (usage writer, lease reports, change listener). Must be
    /// called inside a Tokio runtime.
    pub async fn open(url: &str) -> std::result::Result<Self, PostgresStoreError> {
        Self::open_with(PostgresStoreOptions::new(url)).await
    }

    /// [`open`](Self::open) with explicit options.
    pub async fn open_with(
        options: PostgresStoreOptions,
    ) -> std::result::Result<Self, PostgresStoreError> {
        let open_err = |reason: String| PostgresStoreError::Open {
            url: redact_url(&options.url),
            reason,
        };
        let connect: PgConnectOptions = options
            .url
            .parse()
            .map_err(|e: sqlx::Error| open_err(e.to_string()))?;
        let connect = connect.application_name("budget-server");
        // One plain connection first: its error says what is wrong (refused, unknown host,
        // authentication), where the pool's would only say that it timed out.
        let probe = tokio::time::timeout(
            options.connect_timeout,
            sqlx::ConnectOptions::connect(&connect),
        )
        .await
        .map_err(|_| open_err(format!("no answer in {:?}", options.connect_timeout)))?
        .map_err(|e: sqlx::Error| open_err(e.to_string()))?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.query_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| open_err(e.to_string()))?;
        migrate(&pool).await?;

        let (writer_tx, writer_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            options,
            pool,
            replica: Uuid::new_v4(),
            hot: Mutex::new(Hot::default()),
            changed: watch::channel(0).0,
            backlog: Backlog::default(),
            writer: writer_tx,
            report_now: Notify::new(),
            refresh_now: Notify::new(),
            closed: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            round_trips: AtomicU64::new(0),
            unreachable_until: Mutex::new(None),
            clock_offset_us: std::sync::atomic::AtomicI64::new(0),
            tasks: Mutex::new(Vec::new()),
            crud: tokio::sync::Mutex::new(()),
        });
        // Listen before the first load: a change made meanwhile is then either loaded or
        // notified, never missed.
        let listening = tasks::listen(&shared).await;
        shared.refresh().await?;
        shared.measure_clock().await?;
        let handles = vec![
            tokio::spawn(tasks::writer(shared.clone(), writer_rx)),
            tokio::spawn(tasks::reporter(shared.clone())),
            tokio::spawn(tasks::listener(shared.clone(), listening)),
        ];
        *shared.tasks.lock().unwrap_or_else(|p| p.into_inner()) = handles;
        Ok(PostgresStore { inner: shared })
    }

    /// The connection pool, for read-only inspection and tooling.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The database clock minus this machine's, as last measured.
    pub fn clock_offset(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::microseconds(self.inner.clock_offset_us.load(Ordering::Relaxed))
    }

    /// This replica's id in `budget_leases.replica`.
    pub fn replica_id(&self) -> Uuid {
        self.inner.replica
    }

    /// Database round trips made so far (grants, exposures, reports, usage batches, limiter
    /// reloads, sweeps, catalogue and statistics queries): for benchmarks and metrics.
    pub fn round_trips(&self) -> u64 {
        self.inner.round_trips.load(Ordering::Relaxed)
    }

    /// Tests only: stop renewing leases and listening, as a replica cut off from the
    /// database (or frozen) would; its usage writer keeps going, so its late reports can be
    /// checked to be fenced.
    #[cfg(feature = "test-cluster")]
    #[doc(hidden)]
    pub fn stop_reporting_for_tests(&self) {
        let tasks = self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for t in tasks.iter().skip(1) {
            t.abort();
        }
    }

    /// Write the usage settled so far, give every slice back, and stop the background tasks.
    /// Requests still in flight should be settled first (the server waits for them). Later
    /// calls fail with [`Error::Closed`].
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.flush_writer().await;
        tasks::return_all(&self.inner).await;
        let _ = self.inner.shutdown.send(true);
        let (reply, done) = oneshot::channel();
        if self.inner.writer.send(WriterMsg::Close(reply)).is_ok() {
            let _ = done.await;
        }
        let handles: Vec<_> =
            std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = h.await;
        }
        self.inner.pool.close().await;
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) async fn flush_writer(&self) -> Result<()> {
        if self.inner.writer.is_closed() {
            return Err(Error::Closed);
        }
        self.inner
            .flush()
            .await
            .map_err(|e| PostgresStoreError::Sqlx(sqlx::Error::Protocol(e)).into())
    }

    fn enqueue(&self, record: UsageRecord, leases: Vec<i64>) -> Result<()> {
        self.inner.backlog.queued();
        self.inner
            .writer
            .send(WriterMsg::Event(Box::new((record, leases))))
            .map_err(|_| {
                self.inner.backlog.saved(1);
                Error::Closed
            })
    }

    /// Run one database call a slice needs and fold its answer in. `Ok(Some(denial))` when the
    /// budget has no room.
    async fn serve(
        &self,
        limiter: &Limiter,
        line: &BudgetLine,
        need: Need,
        amount: Money,
        seq: i64,
    ) -> Result<Served> {
        let s = &self.inner;
        let sent = Instant::now();
        {
            let mut until = s
                .unreachable_until
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match *until {
                Some(t) if sent < t => {
                    return Err(PostgresStoreError::LeaseExpired(
                        "the database did not answer a moment ago".into(),
                    )
                    .into())
                }
                // This request probes; the others keep failing fast while it does.
                Some(_) => *until = Some(sent + s.options.connect_timeout),
                None => {}
            }
        }
        let result = self.call(limiter, line, need, amount, seq, sent).await;
        let mut until = s
            .unreachable_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *until = match &result {
            Err(Error::Backend(_)) => Some(Instant::now() + std::time::Duration::from_secs(1)),
            _ => None,
        };
        result
    }

    async fn call(
        &self,
        limiter: &Limiter,
        line: &BudgetLine,
        need: Need,
        amount: Money,
        seq: i64,
        sent: Instant,
    ) -> Result<Served> {
        let s = &self.inner;
        match need {
            Need::Fits => Ok(Served::Again),
            Need::Expose { lease, to } => {
                s.trip();
                let row = crate::tasks::timed_fast(s, sqlx::query(
                    "UPDATE budget_leases SET exposed = GREATEST(exposed, LEAST($2, granted)), \
                     expires_at = now() + make_interval(secs => $3) \
                     WHERE id = $1 AND state = 'active' RETURNING exposed, granted",
                )
                .bind(lease)
                .bind(to.as_nanos())
                .bind(s.ttl_secs())
                .fetch_optional(&s.pool))
                .await?;
                let mut hot = s.lock();
                if let Some(slice) = hot.slices.get_mut(&line.key) {
                    if slice.lease == Some(lease) {
                        match row {
                            Some(row) => {
                                slice.exposed =
                                    Money::from_nanos(row.try_get("exposed").unwrap_or(0));
                                slice.deadline = Some(s.deadline_from(sent));
                            }
                            None => slice.lost(),
                        }
                    }
                }
                Ok(Served::Again)
            }
            Need::Grant { min, want, expose } => {
                let have = s
                    .lock()
                    .slices
                    .get(&line.key)
                    .filter(|x| x.lease.is_some())
                    .map_or(Money::ZERO, |x| x.granted);
                s.trip();
                let row = crate::tasks::timed_fast(s, sqlx::query(
                    "SELECT * FROM budget_grant($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
                     make_interval(secs => $13), make_interval(secs => $14))",
                )
                .bind(line.key.limiter_id.0)
                .bind(line.key.user.as_deref().unwrap_or(""))
                .bind(line.key.window.start)
                .bind(line.key.window.end)
                .bind(line.budget.as_nanos())
                .bind(line.mode == EnforcementMode::Strict)
                .bind(seq)
                .bind(s.replica)
                .bind(want.as_nanos())
                .bind(min.as_nanos())
                .bind(expose.as_nanos())
                .bind(have.as_nanos())
                .bind(s.ttl_secs())
                .bind(s.options.lease_grace.as_secs_f64())
                .fetch_one(&s.pool))
                .await?;
                let status: String = row.try_get("status").map_err(PostgresStoreError::from)?;
                let nanos = |c: &str| Money::from_nanos(row.try_get::<i64, _>(c).unwrap_or(0));
                let view = View {
                    spent: nanos("spent"),
                    leased: nanos("leased"),
                    budget: nanos("budget"),
                };
                match status.as_str() {
                    "stale" | "gone" => {
                        s.reload(limiter.id).await?;
                        Ok(Served::Again)
                    }
                    "denied" => {
                        let others_free = nanos("others_free");
                        {
                            let mut hot = s.lock();
                            if let Some(slice) = hot.slices.get_mut(&line.key) {
                                slice.view = view;
                                slice.endgame = true;
                            }
                        }
                        if others_free > Money::ZERO {
                            return Ok(Served::WaitForReturns(view));
                        }
                        Ok(Served::Denied(Denial {
                            limiter_id: limiter.id,
                            user: line.key.user.clone(),
                            reason: DenialReason::BudgetExceeded,
                            spent: view.spent,
                            held: view.leased.max(Money::ZERO),
                            requested: amount,
                            budget: line.budget,
                            period: line.period,
                            window: line.key.window,
                        }))
                    }
                    _ => {
                        let lease: i64 =
                            row.try_get("lease_id").map_err(PostgresStoreError::from)?;
                        let mut hot = s.lock();
                        let replaced = hot
                            .slices
                            .get(&line.key)
                            .and_then(|x| x.lease)
                            .filter(|old| *old != lease);
                        if let Some(old) = replaced {
                            // The old lease ended without this replica closing it: reclaimed
                            // while it could not report. Its unspent charge is settled later.
                            hot.reclaimed.push(old);
                        }
                        if let Some(slice) = hot.slices.get_mut(&line.key) {
                            slice.granted(
                                lease,
                                nanos("granted"),
                                nanos("exposed"),
                                s.deadline_from(sent),
                            );
                            slice.view = view;
                            slice.endgame = row.try_get("endgame").unwrap_or(false);
                        }
                        Ok(Served::Again)
                    }
                }
            }
        }
    }
}

/// `url` with its password (if any) replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn denial(limiter: &Limiter, reason: DenialReason, line: &BudgetLine, amount: Money) -> Denial {
    Denial {
        limiter_id: limiter.id,
        user: None,
        reason,
        spent: Money::ZERO,
        held: Money::ZERO,
        requested: amount,
        budget: line.budget,
        period: line.period,
        window: line.key.window,
    }
}

/// What a database call for a slice came to.
enum Served {
    /// Look again (the slice changed).
    Again,
    /// No room in the budget.
    Denied(Denial),
    /// No room now, but other replicas hold unused money and were asked to return it.
    WaitForReturns(View),
}

/// How long a request waits for other replicas to return unused money before it is refused.
const WAIT_FOR_RETURNS: std::time::Duration = std::time::Duration::from_millis(1500);

#[async_trait]
impl BudgetStore for PostgresStore {
    async fn find_limiter(&self, by: LimiterRef<'_>) -> Result<Option<Arc<Limiter>>> {
        Ok(self.inner.lock().limiters.find(by))
    }

    async fn reserve(&self, request: &ReserveRequest) -> Result<ReserveOutcome> {
        self.check_open()?;
        let s = &self.inner;
        if let Some(e) = s.backlog.refusal(&s.options.limits) {
            return Err(PostgresStoreError::from(e).into());
        }
        let started = Instant::now();
        let mut flushed = false;
        loop {
            let mut changed = s.changed.subscribe();
            // Decide under the lock; a slice that needs the database is served outside it.
            let (limiter, line, need, seq) = {
                let mut hot = s.lock();
                let limiter = hot.limiters.live(request.limiter_id)?.clone();
                let seq = hot.versions.get(&limiter.id).copied().unwrap_or(0);
                let lines = limiter.budget_lines(request.at, request.user.as_deref());
                if !limiter.is_active {
                    let d = denial(&limiter, DenialReason::Inactive, &lines[0], request.amount);
                    return Ok(ReserveOutcome::Denied(d));
                }
                if limiter.is_expired(request.at) {
                    let d = denial(&limiter, DenialReason::Expired, &lines[0], request.amount);
                    return Ok(ReserveOutcome::Denied(d));
                }
                let now = Instant::now();
                let mut todo = None;
                for line in &lines {
                    let slice = hot
                        .slices
                        .entry(line.key.clone())
                        .or_insert_with(|| Slice::new(line.clone()));
                    slice.line = line.clone();
                    let need = slice.need(request.amount, now, s.options.slice_demand);
                    if need != Need::Fits {
                        todo = Some((line.clone(), need));
                        break;
                    }
                }
                match todo {
                    None => {
                        let mut holds = Vec::with_capacity(lines.len());
                        let mut leases = Vec::with_capacity(lines.len());
                        for line in &lines {
                            let slice = hot.slices.get_mut(&line.key).expect("made above");
                            slice.hold(request.amount, now);
                            holds.push(Hold {
                                key: line.key.clone(),
                                period: line.period,
                                budget: line.budget,
                                committed: line.budget.saturating_sub(slice.remaining()),
                            });
                            leases.push(slice.lease);
                        }
                        let reservation =
                            Reservation::new(limiter.id, request.amount, request.at, holds);
                        hot.open.insert(
                            reservation.id,
                            Open {
                                reservation: reservation.clone(),
                                leases,
                            },
                        );
                        return Ok(ReserveOutcome::Reserved(reservation));
                    }
                    Some((line, need)) => {
                        let slice = hot.slices.get_mut(&line.key).expect("made above");
                        if slice.busy {
                            slice.waiting = slice.waiting.saturating_add(request.amount);
                            (limiter, line, None, seq)
                        } else {
                            slice.busy = true;
                            (limiter, line, Some(need), seq)
                        }
                    }
                }
            };
            let Some(need) = need else {
                // Another request is asking the database for this slice: wait for it.
                let waited =
                    tokio::time::timeout(s.options.connect_timeout, changed.changed()).await;
                let mut hot = s.lock();
                if let Some(slice) = hot.slices.get_mut(&line.key) {
                    slice.waiting = slice
                        .waiting
                        .saturating_sub(request.amount)
                        .max(Money::ZERO);
                }
                drop(hot);
                if waited.is_err() {
                    return Err(PostgresStoreError::LeaseExpired(
                        "timed out waiting for a grant".into(),
                    )
                    .into());
                }
                continue;
            };
            // Usage queued now may be in the database by the time a refusal comes back, but
            // not in the figures the refusal was decided on.
            let queued = s.backlog.pending() > 0;
            let result = self.serve(&limiter, &line, need, request.amount, seq).await;
            {
                let mut hot = s.lock();
                if let Some(slice) = hot.slices.get_mut(&line.key) {
                    slice.busy = false;
                }
            }
            s.bump();
            match result {
                Ok(Served::Again) => continue,
                Ok(Served::WaitForReturns(view)) => {
                    if started.elapsed() >= WAIT_FOR_RETURNS {
                        return Ok(ReserveOutcome::Denied(Denial {
                            limiter_id: limiter.id,
                            user: line.key.user.clone(),
                            reason: DenialReason::BudgetExceeded,
                            spent: view.spent,
                            held: view.leased.max(Money::ZERO),
                            requested: request.amount,
                            budget: line.budget,
                            period: line.period,
                            window: line.key.window,
                        }));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
                Ok(Served::Denied(_)) if !flushed && (queued || s.backlog.pending() > 0) => {
                    // The database's figures miss usage this replica has not written yet:
                    // write it and ask again, so the refusal is right and its figures exact.
                    flushed = true;
                    let _ = self.flush_writer().await;
                    continue;
                }
                Ok(Served::Denied(d)) => return Ok(ReserveOutcome::Denied(d)),
                Err(e) => {
                    tracing::warn!(error = %e, "budget database call failed");
                    return Err(e);
                }
            }
        }
    }

    async fn settle(&self, reservation: &Reservation, mut record: UsageRecord) -> Result<()> {
        let mut hot = self.inner.lock();
        let open = hot
            .open
            .remove(&reservation.id)
            .ok_or(Error::ReservationNotFound(reservation.id))?;
        let r = &open.reservation;
        let mut endgame = false;
        for (h, lease) in r.holds.iter().zip(&open.leases) {
            if let Some(slice) = hot.slices.get_mut(&h.key) {
                if slice.lease == *lease && lease.is_some() {
                    slice.finish(r.amount, record.cost);
                    endgame |= slice.endgame;
                }
            }
        }
        record.limiter_id = r.limiter_id;
        record.at = r.at;
        record.normalize();
        // Queued under the lock: a report that sees nothing queued may close the lease.
        self.enqueue(record, open.leases.into_iter().flatten().collect())?;
        drop(hot);
        if endgame {
            self.inner.report_now.notify_one();
        }
        Ok(())
    }

    async fn release(&self, reservation: &Reservation) -> Result<()> {
        let mut hot = self.inner.lock();
        let open = hot
            .open
            .remove(&reservation.id)
            .ok_or(Error::ReservationNotFound(reservation.id))?;
        let r = &open.reservation;
        for (h, lease) in r.holds.iter().zip(&open.leases) {
            if let Some(slice) = hot.slices.get_mut(&h.key) {
                if slice.lease == *lease && lease.is_some() {
                    slice.finish(r.amount, Money::ZERO);
                }
            }
        }
        Ok(())
    }

    async fn health(&self) -> Result<()> {
        self.check_open()?;
        self.inner.trip();
        crate::tasks::timed_fast(
            &self.inner,
            sqlx::query("SELECT 1").execute(&self.inner.pool),
        )
        .await?;
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        self.flush_writer().await
    }

    fn write_status(&self) -> WriteStatus {
        self.inner.backlog.status(&self.inner.options.limits)
    }

    /// The database's clock (measured every few seconds), so replicas agree on when windows
    /// begin and end whatever their own clocks say.
    fn now(&self) -> chrono::DateTime<Utc> {
        Utc::now()
            + chrono::TimeDelta::microseconds(self.inner.clock_offset_us.load(Ordering::Relaxed))
    }

    async fn find_credential(&self, id: CredentialId) -> Result<Option<Arc<Credential>>> {
        Ok(self.inner.lock().credentials.get(id))
    }
}

impl PostgresStore {
    /// Write `l` (new or changed) in one transaction with its change number and a
    /// notification to every replica; then take it into the local index.
    async fn write_limiter(&self, l: &Limiter, insert: bool) -> Result<()> {
        let s = &self.inner;
        s.trip();
        let sql = if insert {
            "INSERT INTO limiters (id, code, created_at, deleted_at, change_seq, doc) \
             VALUES ($1, $2, $3, $4, nextval('limiter_changes'), $5) RETURNING change_seq"
        } else {
            "UPDATE limiters SET code = $2, created_at = $3, deleted_at = $4, \
             change_seq = nextval('limiter_changes'), doc = $5 WHERE id = $1 RETURNING change_seq"
        };
        let mut tx = s.pool.begin().await.map_err(PostgresStoreError::from)?;
        let row = sqlx::query(sql)
            .bind(l.id.0)
            .bind(l.code.as_str())
            .bind(l.created_at)
            .bind(l.deleted_at)
            .bind(doc_of(l))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    Error::Conflict(format!("limiter id or code already in use: {}", l.id))
                }
                _ => PostgresStoreError::from(e).into(),
            })?
            .ok_or(Error::LimiterNotFound(l.id))?;
        let seq: i64 = row.try_get(0).map_err(PostgresStoreError::from)?;
        sqlx::query("SELECT pg_notify('budget_limiters', $1)")
            .bind(l.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(PostgresStoreError::from)?;
        tx.commit().await.map_err(PostgresStoreError::from)?;
        s.lock().put(l.clone(), seq);
        s.report_now.notify_one();
        Ok(())
    }

    /// The limiter as the database has it now, locked for update in `tx`.
    async fn current(&self, id: LimiterId) -> Result<Limiter> {
        self.inner.trip();
        let row = sqlx::query("SELECT doc FROM limiters WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.inner.pool)
            .await
            .map_err(PostgresStoreError::from)?
            .ok_or(Error::LimiterNotFound(id))?;
        Ok(limiter_from_doc(
            row.try_get("doc").map_err(PostgresStoreError::from)?,
        )?)
    }
}

/// `t` to the microsecond, as it reads back.
fn micros(t: chrono::DateTime<Utc>) -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

#[async_trait]
impl LimiterCatalog for PostgresStore {
    async fn create_limiter(&self, limiter: &Limiter) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut stored = limiter.clone();
        stored.created_at = micros(stored.created_at);
        stored.updated_at = micros(stored.updated_at);
        self.write_limiter(&stored, true).await
    }

    async fn get_limiter(&self, id: LimiterId) -> Result<Option<Limiter>> {
        Ok(self
            .inner
            .lock()
            .limiters
            .get(id)
            .map(|l| Limiter::clone(l)))
    }

    async fn list_limiters(&self, include_deleted: bool) -> Result<Vec<Limiter>> {
        Ok(self.inner.lock().limiters.list(include_deleted))
    }

    async fn update_limiter(&self, id: LimiterId, update: &LimiterUpdate) -> Result<Limiter> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut limiter = self.current(id).await?;
        if limiter.deleted_at.is_some() {
            return Err(Error::LimiterNotFound(id));
        }
        limiter.apply(update, micros(Utc::now()))?;
        self.write_limiter(&limiter, false).await?;
        Ok(limiter)
    }

    async fn rotate_code(
        &self,
        id: LimiterId,
        keep_old_until: Option<chrono::DateTime<Utc>>,
    ) -> Result<Limiter> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut limiter = self.current(id).await?;
        if limiter.deleted_at.is_some() {
            return Err(Error::LimiterNotFound(id));
        }
        limiter.rotate_code(micros(Utc::now()), keep_old_until.map(micros));
        self.write_limiter(&limiter, false).await?;
        Ok(limiter)
    }

    async fn delete_limiter(&self, id: LimiterId, purge: bool) -> Result<()> {
        self.check_open()?;
        let _crud = self.inner.crud.lock().await;
        let mut limiter = self.current(id).await?;
        if limiter.deleted_at.is_some() && !purge {
            return Err(Error::LimiterNotFound(id));
        }
        if limiter.deleted_at.is_none() {
            limiter.deleted_at = Some(micros(Utc::now()));
            self.write_limiter(&limiter, false).await?;
        }
        if purge {
            // Usage still queued for it is written first, then removed with the rest.
            self.flush_writer().await?;
            let s = &self.inner;
            s.trip();
            let mut tx = s.pool.begin().await.map_err(PostgresStoreError::from)?;
            for sql in [
                // In the lock order every writer follows (limiter, its windows in key order,
                // then leases), so a purge cannot deadlock with a report or a usage batch.
                "SELECT 1 FROM limiters WHERE id = $1 FOR UPDATE",
                "SELECT 1 FROM budget_windows WHERE limiter_id = $1 \
                 ORDER BY limiter_id, user_key, window_end, window_start FOR UPDATE",
                "DELETE FROM budget_leases WHERE limiter_id = $1",
                "DELETE FROM budget_windows WHERE limiter_id = $1",
                "DELETE FROM usage_events WHERE limiter_id = $1",
                "DELETE FROM refusals WHERE limiter_id = $1",
                "DELETE FROM limiters WHERE id = $1",
            ] {
                sqlx::query(sql)
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(PostgresStoreError::from)?;
            }
            sqlx::query("SELECT pg_notify('budget_limiters', $1)")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(PostgresStoreError::from)?;
            tx.commit().await.map_err(PostgresStoreError::from)?;
            let mut hot = s.lock();
            hot.limiters.remove(id);
            hot.slices.retain(|k, _| k.limiter_id != id);
        }
        Ok(())
    }

    async fn record_usage(&self, mut record: UsageRecord) -> Result<()> {
        self.check_open()?;
        self.inner.lock().limiters.live(record.limiter_id)?;
        record.normalize();
        // Written at once (not behind): it is charged to every budget window it counts in,
        // and this replica's slices of the limiter give back what they hold, so that the
        // next request is decided against the new spend.
        tasks::apply(&self.inner, &[(record.clone(), Vec::new())])
            .await
            .map_err(Error::from)?;
        let mut hot = self.inner.lock();
        for s in hot
            .slices
            .values_mut()
            .filter(|s| s.line.key.limiter_id == record.limiter_id)
        {
            s.granted = s.committed().min(s.granted);
            s.exposed = s.committed().min(s.exposed);
            s.wanted = true;
        }
        drop(hot);
        self.inner.report_now.notify_one();
        Ok(())
    }

    async fn create_credential(&self, credential: &Credential) -> Result<()> {
        self.write_credential(credential, true).await
    }

    async fn list_credentials(&self) -> Result<Vec<Credential>> {
        Ok(self.inner.lock().credentials.list())
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

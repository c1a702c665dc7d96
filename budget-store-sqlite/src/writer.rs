//! The one task that writes usage: settled records arrive through a channel and are committed
//! in batches (at most `batch_size` events, at most `flush_interval` after the first one
//! arrived), each batch in one transaction that inserts the raw events and upserts the
//! hourly, daily and monthly roll-ups.
//!
//! Because every charge goes through this channel in the order it was counted in memory, the
//! writer is also where a window's counter is (re)built from the database: a `Load` message is
//! handled after every earlier event is committed and before any later one is, so the sum it
//! reads plus what was charged in memory since it was asked for is exactly the window's spend.
//!
//! A failed commit keeps its usage queued (it is money already spent) and is retried every
//! second; only a `COMMIT` that really succeeded lets events go. The writer has a connection
//! of its own and replaces it after any error, so a failed batch never leaves a connection
//! inside a transaction, and the pool that serves statistics only ever sees committed data.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use budget_core::store::{CounterKey, UsageRecord};
use budget_core::{LimiterId, Money};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::batch;
use crate::state::{HotState, Load};
use crate::stats;
use crate::SqliteStoreError;
use budget_core::store::backlog::Backlog;

/// A batch grows up to this many times `batch_size` while a backlog waits (group commit).
const GROUP: usize = 8;

/// How long to wait before retrying a batch whose commit failed.
const RETRY: Duration = Duration::from_secs(1);

/// While commits keep failing, log the failure at most this often (every attempt is counted).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Commit attempts on close before the unsaved usage is given up (and logged as lost).
const CLOSE_ATTEMPTS: u32 = 3;

/// What the store sends the writer.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A settled (or directly recorded) usage record to commit.
    Event(Box<UsageRecord>),
    /// Commit everything received so far, then answer.
    Flush(oneshot::Sender<Result<(), Arc<str>>>),
    /// Commit everything received so far, then sum the window's committed cost into the
    /// counter that is waiting for load number `load`.
    Load { key: CounterKey, load: u64 },
    /// Commit everything received so far, then delete the limiter and all its usage.
    Purge {
        limiter_id: LimiterId,
        reply: oneshot::Sender<Result<(), SqliteStoreError>>,
    },
    /// Commit everything, answer, stop.
    Close(oneshot::Sender<()>),
}

/// The state the store and the writer share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: Mutex<HotState>,
    /// Bumped after every window load, so callers waiting for one wake up.
    pub(crate) loaded: watch::Sender<u64>,
    /// Unsaved events and the writer's failures.
    pub(crate) backlog: Backlog,
}

impl Shared {
    pub(crate) fn new(state: HotState) -> Self {
        Shared {
            state: Mutex::new(state),
            loaded: watch::channel(0).0,
            backlog: Backlog::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HotState> {
        // Every critical section leaves the maps consistent before anything that can panic,
        // so a poisoned lock still guards sound data; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish_load(&self, key: CounterKey, load: u64, result: Result<Money, Arc<str>>) {
        {
            let mut st = self.lock();
            if let Some(Load::Loading(n, since)) = st.loading.get(&key) {
                if *n == load {
                    let since = *since;
                    match result {
                        Ok(sum) => {
                            st.loading.remove(&key);
                            st.ledger.load(key, sum + since);
                        }
                        Err(e) => {
                            st.loading.insert(key, Load::Failed(e));
                        }
                    }
                }
            }
        }
        self.loaded.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The connection the writer writes with.
pub(crate) enum Target {
    /// A connection of its own to the database file, opened when needed and closed after any
    /// error (a new one starts clean).
    File {
        options: Box<SqliteConnectOptions>,
        conn: Option<SqliteConnection>,
    },
    /// The in-memory database's only connection, borrowed from the pool for each transaction
    /// (a new connection would be a new, empty database; `ROLLBACK` cleans it instead).
    Memory(SqlitePool),
}

/// A connection borrowed for one transaction.
enum Held<'a> {
    Own(&'a mut SqliteConnection),
    Pooled(PoolConnection<Sqlite>),
}

impl Deref for Held<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        match self {
            Held::Own(c) => c,
            Held::Pooled(c) => c,
        }
    }
}

impl DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            Held::Own(c) => c,
            Held::Pooled(c) => c,
        }
    }
}

impl Target {
    async fn connection(&mut self) -> Result<Held<'_>, SqliteStoreError> {
        match self {
            Target::File { options, conn } => {
                if conn.is_none() {
                    *conn = Some(options.connect().await?);
                }
                Ok(Held::Own(conn.as_mut().expect("just opened")))
            }
            Target::Memory(pool) => Ok(Held::Pooled(pool.acquire().await?)),
        }
    }

    /// After an error: close the file connection; the next transaction opens a fresh one.
    async fn reset(&mut self) {
        if let Target::File { conn, .. } = self {
            if let Some(c) = conn.take() {
                let _ = sqlx::Connection::close(c).await;
            }
        }
    }

    async fn close(&mut self) {
        self.reset().await;
    }
}

/// The writer task.
pub(crate) struct Writer {
    rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    pool: SqlitePool,
    target: Target,
    batch_size: usize,
    interval: Duration,
    /// When the oldest event of the current batch arrived.
    batch_since: Option<Instant>,
    /// After an attempt whose `COMMIT` failed: the last event sequence number committed
    /// before it, so the retry can skip events that landed after all.
    recheck_after: Option<i64>,
    /// When a failure was last logged.
    logged: Option<Instant>,
}

impl Writer {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Msg>,
        shared: Arc<Shared>,
        pool: SqlitePool,
        target: Target,
        batch_size: usize,
        interval: Duration,
    ) -> Self {
        Writer {
            rx,
            shared,
            pool,
            target,
            batch_size,
            interval,
            batch_since: None,
            recheck_after: None,
            logged: None,
        }
    }

    /// Run until closed, or until every sender is gone (then commit what is left).
    pub(crate) async fn run(mut self) {
        let mut batch: Vec<UsageRecord> = Vec::with_capacity(self.batch_size);
        let mut buf: Vec<Msg> = Vec::with_capacity(1024);
        let mut deadline: Option<Instant> = None;
        loop {
            let received = match deadline {
                None => self.rx.recv_many(&mut buf, 1024).await,
                Some(d) => {
                    match tokio::time::timeout_at(d, self.rx.recv_many(&mut buf, 1024)).await {
                        Ok(n) => n,
                        Err(_) => {
                            let _ = self.commit(&mut batch, &mut deadline).await;
                            continue;
                        }
                    }
                }
            };
            if received == 0 {
                self.close(&mut batch, &mut deadline).await;
                return;
            }
            let mut closing = None;
            let n = buf.len();
            for (i, msg) in buf.drain(..).enumerate() {
                match msg {
                    Msg::Event(r) => {
                        batch.push(*r);
                        let now = Instant::now();
                        self.batch_since.get_or_insert(now);
                        if deadline.is_none() {
                            deadline = Some(now + self.interval);
                        }
                        // While commits fail, retry on the retry deadline only.
                        if batch.len() >= self.batch_size
                            && !self.shared.backlog.is_failing()
                            && self.batch_done(&batch, i + 1 < n, deadline)
                        {
                            let _ = self.commit(&mut batch, &mut deadline).await;
                        }
                    }
                    Msg::Flush(reply) => {
                        let _ = reply.send(self.commit(&mut batch, &mut deadline).await);
                    }
                    Msg::Load { key, load } => {
                        // Committed usage plus, while commits fail, the window's usage that
                        // waits in the batch (it was charged before the counter existed).
                        let waiting = match self.commit(&mut batch, &mut deadline).await {
                            Ok(()) => Money::ZERO,
                            Err(_) => batch
                                .iter()
                                .filter(|r| key.counts(r))
                                .fold(Money::ZERO, |sum, r| sum + r.cost),
                        };
                        let result = stats::counter_cost(&self.pool, &key)
                            .await
                            .map(|sum| sum + waiting)
                            .map_err(|e| Arc::from(e.to_string()));
                        self.shared.finish_load(key, load, result);
                    }
                    Msg::Purge { limiter_id, reply } => {
                        // Its queued usage would be deleted with the rest: drop it now.
                        let before = batch.len();
                        batch.retain(|r| r.limiter_id != limiter_id);
                        self.shared.backlog.saved(before - batch.len());
                        let result = match self.commit(&mut batch, &mut deadline).await {
                            Ok(()) => self.purge(limiter_id).await,
                            Err(e) => Err(SqliteStoreError::Writer(e.to_string())),
                        };
                        let _ = reply.send(result);
                    }
                    Msg::Close(reply) => closing = Some(reply),
                }
            }
            if let Some(reply) = closing {
                self.close(&mut batch, &mut deadline).await;
                let _ = reply.send(());
                return;
            }
        }
    }

    /// Commit what is left (a few attempts), then close the connection.
    async fn close(&mut self, batch: &mut Vec<UsageRecord>, deadline: &mut Option<Instant>) {
        for attempt in 1..=CLOSE_ATTEMPTS {
            if self.commit(batch, deadline).await.is_ok() {
                break;
            }
            if attempt == CLOSE_ATTEMPTS {
                tracing::error!(
                    lost_events = batch.len(),
                    "closing with usage that could not be saved: these charges are lost"
                );
            } else {
                tokio::time::sleep(RETRY).await;
            }
        }
        self.target.close().await;
    }

    /// Whether a batch of at least `batch_size` events is to be committed now. While more
    /// messages wait (`more` in hand, or queued), a backlog is building: keep filling the batch
    /// (group commit), up to [`GROUP`] × `batch_size` events and no later than its deadline.
    /// Events waiting in the queue are as uncommitted as those in the batch, so this loses
    /// nothing more on a crash; per-batch costs (roll-up rows, commit) are paid less often, so
    /// the backlog drains faster.
    fn batch_done(&self, batch: &[UsageRecord], more: bool, deadline: Option<Instant>) -> bool {
        let backlog = more || !self.rx.is_empty();
        !backlog
            || batch.len() >= self.batch_size.saturating_mul(GROUP)
            || deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Commit the batch. On failure keep it (they are charges), count and log the failure,
    /// and retry after [`RETRY`].
    async fn commit(
        &mut self,
        batch: &mut Vec<UsageRecord>,
        deadline: &mut Option<Instant>,
    ) -> Result<(), Arc<str>> {
        if batch.is_empty() {
            *deadline = None;
            self.batch_since = None;
            return Ok(());
        }
        match self.write(batch).await {
            Ok(()) => {
                let saved = batch.len();
                self.shared.backlog.saved(saved);
                batch.clear();
                *deadline = None;
                self.batch_since = None;
                self.recheck_after = None;
                if let Some(r) = self.shared.backlog.recovered() {
                    tracing::warn!(
                        saved_events = saved,
                        failed_for_secs = r.failed_for.as_secs(),
                        unsaved_events = self.shared.backlog.pending(),
                        "usage writes recovered: the queued usage is saved"
                    );
                    self.logged = None;
                }
                Ok(())
            }
            Err(e) => {
                self.target.reset().await;
                let now = Instant::now();
                let failing_for = self
                    .shared
                    .backlog
                    .failed(&e, self.batch_since.unwrap_or(now).into_std());
                if self.logged.is_none_or(|t| now - t >= LOG_EVERY) {
                    self.logged = Some(now);
                    tracing::error!(
                        error = %e,
                        batch_events = batch.len(),
                        unsaved_events = self.shared.backlog.pending(),
                        failing_for_secs = failing_for.as_secs(),
                        "usage batch commit failed: the usage stays queued (counted against budgets) and is retried every second"
                    );
                }
                *deadline = Some(now + RETRY);
                Err(Arc::from(e.to_string()))
            }
        }
    }

    /// One attempt at the batch, in one transaction. Events that a failed-looking earlier
    /// attempt committed after all are dropped from the batch first.
    async fn write(&mut self, batch: &mut Vec<UsageRecord>) -> Result<(), SqliteStoreError> {
        let recheck = self.recheck_after;
        let backlog = &self.shared.backlog;
        let mut conn = self.target.connection().await?;
        batch::begin(&mut conn).await?;
        let work = write_in_transaction(&mut conn, batch, recheck, backlog).await;
        let last = work.as_ref().ok().copied();
        let result = batch::finish(&mut conn, work).await;
        drop(conn);
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                // Only a failed COMMIT leaves doubt about whether the batch landed.
                if let Some(last) = last {
                    self.recheck_after.get_or_insert(last);
                }
                Err(e)
            }
        }
    }

    async fn purge(&mut self, limiter_id: LimiterId) -> Result<(), SqliteStoreError> {
        let mut conn = self.target.connection().await?;
        batch::begin(&mut conn).await?;
        let work = batch::purge(&mut conn, limiter_id).await;
        let result = batch::finish(&mut conn, work).await;
        drop(conn);
        if result.is_err() {
            self.target.reset().await;
        }
        result
    }
}

/// The batch's statements, inside the writer's transaction; returns the last event sequence
/// number committed before them.
async fn write_in_transaction(
    conn: &mut SqliteConnection,
    batch: &mut Vec<UsageRecord>,
    recheck: Option<i64>,
    backlog: &Backlog,
) -> Result<i64, SqliteStoreError> {
    if let Some(after) = recheck {
        let landed = batch::drop_committed(conn, batch, after).await?;
        if landed > 0 {
            backlog.saved(landed);
            tracing::warn!(
                events = landed,
                "a commit reported as failed had landed; not writing those events twice"
            );
        }
    }
    let last = batch::last_seq(conn).await?;
    batch::write_batch(conn, batch).await?;
    Ok(last)
}

//! The one task that writes usage: settled records arrive through a channel and are committed
//! in batches (at most `batch_size` events, at most `flush_interval` after the first one
//! arrived), each batch in one transaction that inserts the raw events and upserts the
//! hourly, daily and monthly roll-ups.
//!
//! Because every charge goes through this channel in the order it was counted in memory, the
//! writer is also where a window's counter is (re)built from the database: a `Load` message is
//! handled after every earlier event is committed and before any later one is, so the sum it
//! reads plus what was charged in memory since it was asked for is exactly the window's spend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use budget_core::store::UsageRecord;
use budget_core::{LimiterId, Money, Window};
use sqlx::query_builder::Separated;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::rows::{count, endpoint_str, micros, EVENT_COLUMNS};
use crate::state::{HotState, Load};
use crate::stats::{self, Level};
use crate::SqliteStoreError;

/// A batch grows up to this many times `batch_size` while a backlog waits (group commit).
const GROUP: usize = 8;

/// How long to wait before retrying a batch whose commit failed.
const RETRY: Duration = Duration::from_secs(1);

/// What the store sends the writer.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A settled (or directly recorded) usage record to commit.
    Event(Box<UsageRecord>),
    /// Commit everything received so far, then answer.
    Flush(oneshot::Sender<Result<(), Arc<str>>>),
    /// Commit everything received so far, then sum the window's committed cost into the
    /// counter that is waiting for load number `load`.
    Load {
        limiter_id: LimiterId,
        window: Window,
        load: u64,
    },
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
    /// Events sent to the writer and not yet committed.
    pub(crate) pending: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(state: HotState) -> Self {
        Shared {
            state: Mutex::new(state),
            loaded: watch::channel(0).0,
            pending: AtomicUsize::new(0),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, HotState> {
        // Every critical section leaves the maps consistent before anything that can panic,
        // so a poisoned lock still guards sound data; keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn finish_load(
        &self,
        limiter_id: LimiterId,
        window: Window,
        load: u64,
        result: Result<Money, Arc<str>>,
    ) {
        {
            let mut st = self.lock();
            if let Some(c) = st.windows.get_mut(&(limiter_id, window)) {
                if c.load == Load::Loading(load) {
                    match result {
                        Ok(sum) => {
                            c.spent += sum;
                            c.load = Load::Ready;
                        }
                        Err(e) => c.load = Load::Failed(e),
                    }
                }
            }
        }
        self.loaded.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The writer task.
pub(crate) struct Writer {
    rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
    pool: SqlitePool,
    batch_size: usize,
    interval: Duration,
}

impl Writer {
    pub(crate) fn new(
        rx: mpsc::UnboundedReceiver<Msg>,
        shared: Arc<Shared>,
        pool: SqlitePool,
        batch_size: usize,
        interval: Duration,
    ) -> Self {
        Writer {
            rx,
            shared,
            pool,
            batch_size,
            interval,
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
                let _ = self.commit(&mut batch, &mut deadline).await;
                return;
            }
            let mut closing = None;
            let n = buf.len();
            for (i, msg) in buf.drain(..).enumerate() {
                match msg {
                    Msg::Event(r) => {
                        batch.push(*r);
                        if deadline.is_none() {
                            deadline = Some(Instant::now() + self.interval);
                        }
                        if batch.len() >= self.batch_size
                            && self.batch_done(&batch, i + 1 < n, deadline)
                        {
                            let _ = self.commit(&mut batch, &mut deadline).await;
                        }
                    }
                    Msg::Flush(reply) => {
                        let _ = reply.send(self.commit(&mut batch, &mut deadline).await);
                    }
                    Msg::Load {
                        limiter_id,
                        window,
                        load,
                    } => {
                        let result = match self.commit(&mut batch, &mut deadline).await {
                            Ok(()) => {
                                stats::window_cost(&self.pool, limiter_id, window.start, window.end)
                                    .await
                                    .map_err(|e| Arc::from(e.to_string()))
                            }
                            Err(e) => Err(e),
                        };
                        self.shared.finish_load(limiter_id, window, load, result);
                    }
                    Msg::Purge { limiter_id, reply } => {
                        let result = match self.commit(&mut batch, &mut deadline).await {
                            Ok(()) => purge(&self.pool, limiter_id).await,
                            Err(e) => Err(SqliteStoreError::Writer(e.to_string())),
                        };
                        let _ = reply.send(result);
                    }
                    Msg::Close(reply) => closing = Some(reply),
                }
            }
            if let Some(reply) = closing {
                if let Err(e) = self.commit(&mut batch, &mut deadline).await {
                    tracing::error!(error = %e, lost = batch.len(), "closing with uncommitted usage");
                }
                let _ = reply.send(());
                return;
            }
        }
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

    /// Commit the batch. On failure keep it (they are charges) and retry after [`RETRY`].
    async fn commit(
        &self,
        batch: &mut Vec<UsageRecord>,
        deadline: &mut Option<Instant>,
    ) -> Result<(), Arc<str>> {
        if batch.is_empty() {
            *deadline = None;
            return Ok(());
        }
        match write_batch(&self.pool, batch).await {
            Ok(()) => {
                self.shared
                    .pending
                    .fetch_sub(batch.len(), Ordering::Relaxed);
                batch.clear();
                *deadline = None;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "usage batch commit failed; will retry");
                *deadline = Some(Instant::now() + RETRY);
                Err(Arc::from(e.to_string()))
            }
        }
    }
}

/// Sums of one roll-up row.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    requests: i64,
    prompt: i64,
    cached: i64,
    completion: i64,
    reasoning: i64,
    cost: i64,
    unpriced: i64,
    estimated: i64,
    errors: i64,
}

impl Sums {
    fn add(&mut self, r: &UsageRecord) {
        self.requests += 1;
        self.prompt += count(r.prompt_tokens);
        self.cached += count(r.cached_tokens);
        self.completion += count(r.completion_tokens);
        self.reasoning += count(r.reasoning_tokens);
        self.cost += r.cost.as_nanos();
        self.unpriced += i64::from(r.unpriced);
        self.estimated += i64::from(r.estimated);
        self.errors += i64::from(r.status >= 400);
    }
}

/// Rows per multi-row `INSERT`, largest first. A batch is cut into chunks of these sizes
/// only, so each table has at most five statement texts, each prepared once per connection
/// (16 columns × 256 rows stays under SQLite's 32 766 variables).
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// Cut `rows` into chunks whose sizes are in [`CHUNKS`].
fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = CHUNKS.into_iter().find(|&c| c <= rows.len())?;
        let (head, tail) = rows.split_at(size);
        rows = tail;
        Some(head)
    })
}

/// Bind a roll-up row's sums, in [`SUM_COLUMNS`] order.
fn push_sums(b: &mut Separated<'_, '_, Sqlite, &'static str>, s: &Sums) {
    b.push_bind(s.requests)
        .push_bind(s.prompt)
        .push_bind(s.cached)
        .push_bind(s.completion)
        .push_bind(s.reasoning)
        .push_bind(s.cost)
        .push_bind(s.unpriced)
        .push_bind(s.estimated)
        .push_bind(s.errors);
}

/// The summed columns of every roll-up, in [`push_sums`] order.
const SUM_COLUMNS: &str = "requests, prompt_tokens, cached_tokens, completion_tokens, \
                           reasoning_tokens, cost, unpriced, estimated, errors";

/// The `DO UPDATE` of a roll-up upsert: add the new sums to the stored ones.
const ADD_SUMS: &str = "requests = requests + excluded.requests, \
     prompt_tokens = prompt_tokens + excluded.prompt_tokens, \
     cached_tokens = cached_tokens + excluded.cached_tokens, \
     completion_tokens = completion_tokens + excluded.completion_tokens, \
     reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens, \
     cost = cost + excluded.cost, \
     unpriced = unpriced + excluded.unpriced, \
     estimated = estimated + excluded.estimated, \
     errors = errors + excluded.errors";

/// A roll-up row's key: limiter, bucket start, model, user.
type RollupKey<'a> = (&'a str, i64, &'a str, &'a str);

/// What one batch adds to the roll-ups of one level, each list sorted by key.
struct LevelRows<'a> {
    level: Level,
    /// Per (limiter, bucket start, model, user).
    rows: Vec<(RollupKey<'a>, Sums)>,
    /// Per bucket start, over everything.
    global: Vec<(i64, Sums)>,
}

/// Insert `batch` and fold it into the roll-ups, in one transaction.
pub(crate) async fn write_batch(
    pool: &SqlitePool,
    batch: &[UsageRecord],
) -> Result<(), SqliteStoreError> {
    let ids: Vec<(String, String)> = batch
        .iter()
        .map(|r| (r.id.to_string(), r.limiter_id.to_string()))
        .collect();
    let mut rollups = Vec::with_capacity(Level::ALL.len());
    for level in Level::ALL {
        let mut sums: HashMap<RollupKey<'_>, Sums> = HashMap::new();
        let mut global: HashMap<i64, Sums> = HashMap::new();
        for (r, (_, limiter)) in batch.iter().zip(&ids) {
            let at = micros(r.at);
            let start = level.floor(at).unwrap_or(at);
            let key = (
                limiter.as_str(),
                start,
                r.model.as_deref().unwrap_or(""),
                r.user.as_deref().unwrap_or(""),
            );
            sums.entry(key).or_default().add(r);
            global.entry(start).or_default().add(r);
        }
        let mut rows: Vec<_> = sums.into_iter().collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut global: Vec<_> = global.into_iter().collect();
        global.sort_unstable_by_key(|g| g.0);
        rollups.push(LevelRows {
            level,
            rows,
            global,
        });
    }

    let mut tx = pool.begin().await?;
    let rows: Vec<_> = batch.iter().zip(&ids).collect();
    for chunk in chunks(&rows) {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("INSERT INTO usage_events ({EVENT_COLUMNS}) "));
        qb.push_values(chunk, |mut b, (r, (id, limiter))| {
            b.push_bind(id.as_str())
                .push_bind(micros(r.at))
                .push_bind(limiter.as_str())
                .push_bind(r.model.as_deref())
                .push_bind(r.user.as_deref())
                .push_bind(endpoint_str(r.endpoint))
                .push_bind(count(r.prompt_tokens))
                .push_bind(count(r.cached_tokens))
                .push_bind(count(r.completion_tokens))
                .push_bind(count(r.reasoning_tokens))
                .push_bind(r.cost.as_nanos())
                .push_bind(r.unpriced)
                .push_bind(r.estimated)
                .push_bind(i64::from(r.status))
                .push_bind(r.streamed)
                .push_bind(count(r.latency_ms));
        });
        qb.build().execute(&mut *tx).await?;
    }
    for l in &rollups {
        let (table, column, global) = (l.level.table(), l.level.column(), l.level.global_table());
        // Global sums first: a roll-up row that is new adds its user to the bucket's user set
        // (trigger), and a user new to the set adds 1 to the bucket's global row (trigger).
        for chunk in chunks(&l.global) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {global} ({column}, {SUM_COLUMNS}, users) "
            ));
            qb.push_values(chunk, |mut b, (start, s)| {
                b.push_bind(*start);
                push_sums(&mut b, s);
                b.push_bind(0_i64);
            });
            qb.push(format!(" ON CONFLICT ({column}) DO UPDATE SET {ADD_SUMS}"));
            qb.build().execute(&mut *tx).await?;
        }
        for chunk in chunks(&l.rows) {
            let mut qb = QueryBuilder::<Sqlite>::new(format!(
                "INSERT INTO {table} (limiter_id, {column}, model, user, {SUM_COLUMNS}) "
            ));
            qb.push_values(chunk, |mut b, ((limiter, start, model, user), s)| {
                b.push_bind(*limiter)
                    .push_bind(*start)
                    .push_bind(*model)
                    .push_bind(*user);
                push_sums(&mut b, s);
            });
            qb.push(format!(
                " ON CONFLICT (limiter_id, {column}, model, user) DO UPDATE SET {ADD_SUMS}"
            ));
            qb.build().execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Delete a limiter, its events and its roll-ups, in one transaction. The global roll-ups
/// of the buckets it used lose its sums, and their user sets are rebuilt from the other
/// limiters' roll-ups of those buckets (a user may have been seen only through it).
async fn purge(pool: &SqlitePool, limiter_id: LimiterId) -> Result<(), SqliteStoreError> {
    let id = limiter_id.to_string();
    let mut tx = pool.begin().await?;
    for level in Level::ALL {
        let (table, c) = (level.table(), level.column());
        let (global, users) = (level.global_table(), level.users_table());
        let touched = format!("SELECT {c} FROM {table} WHERE limiter_id = ?1");
        for sql in [
            format!(
                "UPDATE {global} AS g SET \
                 requests = g.requests - s.requests, \
                 prompt_tokens = g.prompt_tokens - s.prompt_tokens, \
                 cached_tokens = g.cached_tokens - s.cached_tokens, \
                 completion_tokens = g.completion_tokens - s.completion_tokens, \
                 reasoning_tokens = g.reasoning_tokens - s.reasoning_tokens, \
                 cost = g.cost - s.cost, unpriced = g.unpriced - s.unpriced, \
                 estimated = g.estimated - s.estimated, errors = g.errors - s.errors, users = 0 \
                 FROM (SELECT {c} AS t, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens, \
                       SUM(cached_tokens) AS cached_tokens, SUM(completion_tokens) AS completion_tokens, \
                       SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost) AS cost, \
                       SUM(unpriced) AS unpriced, SUM(estimated) AS estimated, SUM(errors) AS errors \
                       FROM {table} WHERE limiter_id = ?1 GROUP BY {c}) AS s \
                 WHERE g.{c} = s.t"
            ),
            format!("DELETE FROM {users} WHERE {c} IN ({touched})"),
            // The trigger counts the re-inserted users into the (zeroed) global rows.
            format!(
                "INSERT INTO {users} ({c}, user) SELECT DISTINCT {c}, user FROM {table} \
                 WHERE {c} IN ({touched}) AND limiter_id <> ?1 AND user <> ''"
            ),
            format!("DELETE FROM {global} WHERE requests = 0 AND {c} IN ({touched})"),
            format!("DELETE FROM {table} WHERE limiter_id = ?1"),
        ] {
            sqlx::query(&sql).bind(&id).execute(&mut *tx).await?;
        }
    }
    for sql in [
        "DELETE FROM usage_events WHERE limiter_id = ?",
        "DELETE FROM limiters WHERE id = ?",
    ] {
        sqlx::query(sql).bind(&id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

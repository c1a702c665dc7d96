//! The background tasks of a replica: the usage writer, the lease reporter (renewals,
//! returns, reclaim sweeps) and the change listener.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use budget_core::store::{CounterKey, UsageRecord};
use budget_core::{LimiterId, Money};
use serde::Serialize;
use sqlx::postgres::PgListener;
use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use crate::rows::EventJson;
use crate::store::Shared;
use crate::PostgresStoreError;

/// What the store sends its writer.
pub(crate) enum WriterMsg {
    /// A settled record and the leases its reservation held.
    Event(Box<(UsageRecord, Vec<i64>)>),
    /// Answer once everything sent before is written (or writing it failed).
    Flush(oneshot::Sender<Result<(), String>>),
    /// Write what is queued and stop.
    Close(oneshot::Sender<()>),
}

/// A database call that gives up after the store's query timeout (10 s) instead of hanging
/// on a database that does not answer: usage batches, reports, statistics, catalogue.
pub(crate) async fn timed<T>(
    s: &Shared,
    f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, PostgresStoreError> {
    within(s.options.query_timeout, f).await
}

/// The same on the request path (grants, exposure steps, health): the connect timeout (2 s).
pub(crate) async fn timed_fast<T>(
    s: &Shared,
    f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, PostgresStoreError> {
    within(s.options.connect_timeout, f).await
}

async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, PostgresStoreError> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(PostgresStoreError::Sqlx(sqlx::Error::PoolTimedOut)),
    }
}

/// Write records (one round trip, exactly once: see `budget_apply`).
pub(crate) async fn apply(
    s: &Shared,
    batch: &[(UsageRecord, Vec<i64>)],
) -> Result<usize, PostgresStoreError> {
    let events: Vec<EventJson<'_>> = batch.iter().map(|(r, l)| EventJson::new(r, l)).collect();
    s.trip();
    let n: i32 = timed(
        s,
        sqlx::query_scalar("SELECT budget_apply($1)")
            .bind(sqlx::types::Json(&events))
            .fetch_one(&s.pool),
    )
    .await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The usage writer: batches settled records (up to `batch_size`, at most `flush_interval`
/// old) and writes each batch once. A failed batch stays and is retried every second; the
/// backlog reports it (health, metrics) and, past its limits, makes `reserve` refuse.
pub(crate) async fn writer(s: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
    let mut batch: Vec<(UsageRecord, Vec<i64>)> = Vec::new();
    let mut since: Option<Instant> = None;
    let mut retry_at: Option<Instant> = None;
    let mut logged: Option<Instant> = None;
    loop {
        let mut flushes = Vec::new();
        let mut closing = None;
        let due = match (since, retry_at) {
            (_, Some(r)) => Some(r),
            (Some(t), None) => Some(t + s.options.flush_interval),
            (None, None) => None,
        };
        let msg = match due {
            Some(due) => tokio::select! {
                m = rx.recv() => Some(m),
                _ = tokio::time::sleep_until(due.into()) => None,
            },
            None => Some(rx.recv().await),
        };
        let mut take = |m: WriterMsg| match m {
            WriterMsg::Event(e) => {
                if batch.is_empty() {
                    since = Some(Instant::now());
                }
                batch.push(*e);
            }
            WriterMsg::Flush(r) => flushes.push(r),
            WriterMsg::Close(r) => closing = Some(r),
        };
        let ended = matches!(msg, Some(None));
        if let Some(Some(m)) = msg {
            take(m);
        }
        while let Ok(m) = rx.try_recv() {
            take(m);
        }
        let full = batch.len() >= s.options.batch_size;
        let timed_out = since.is_some_and(|t| t.elapsed() >= s.options.flush_interval);
        let may_retry = retry_at.is_none_or(|r| Instant::now() >= r);
        let write = !batch.is_empty()
            && (!flushes.is_empty()
                || closing.is_some()
                || ended
                || ((full || timed_out) && may_retry));
        let mut outcome: Result<(), String> = Ok(());
        if write {
            while !batch.is_empty() {
                let n = batch.len().min(s.options.batch_size);
                match apply(&s, &batch[..n]).await {
                    Ok(_) => {
                        batch.drain(..n);
                        s.backlog.saved(n);
                        s.reachable();
                        retry_at = None;
                        if let Some(r) = s.backlog.recovered() {
                            tracing::warn!(
                                failed_for_secs = r.failed_for.as_secs(),
                                "usage is being written to PostgreSQL again"
                            );
                        }
                    }
                    Err(e) => {
                        let failing_for = s.backlog.failed(&e, since.unwrap_or_else(Instant::now));
                        if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                            logged = Some(Instant::now());
                            tracing::error!(
                                error = %e,
                                unsaved_events = s.backlog.pending(),
                                failing_for_secs = failing_for.as_secs(),
                                "cannot write usage to PostgreSQL; keeping it and retrying every second"
                            );
                        }
                        retry_at = Some(Instant::now() + Duration::from_secs(1));
                        outcome = Err(e.to_string());
                        break;
                    }
                }
            }
            if batch.is_empty() {
                since = None;
            }
        }
        for f in flushes {
            let _ = f.send(outcome.clone());
        }
        if let Some(done) = closing {
            if !batch.is_empty() {
                tracing::error!(
                    lost_events = batch.len(),
                    "closing with usage PostgreSQL did not accept; it is lost"
                );
            }
            let _ = done.send(());
            return;
        }
        if ended {
            return;
        }
    }
}

/// One lease in a report.
#[derive(Debug, Serialize)]
struct ReportEntry {
    id: i64,
    granted: i64,
    exposed: i64,
    held: i64,
    in_flight: i64,
    close: bool,
}

/// Report on every slice not busy with another call: renew, give back, close.
/// `close_all` closes every lease (shutdown).
pub(crate) async fn report(s: &Shared, close_all: bool, tick: Option<Duration>) {
    // A lease is closed only once the usage charged to it is written: closing returns what
    // the database has not seen settled.
    if s.backlog.pending() > 0 {
        let _ = s.flush().await;
    }
    let now = Instant::now();
    let wall = chrono::Utc::now();
    let mut entries = Vec::new();
    let mut by_lease: HashMap<i64, CounterKey> = HashMap::new();
    {
        let mut hot = s.lock();
        // Records are queued under this lock (in `settle`): none can slip in between.
        let may_close = s.backlog.pending() == 0;
        for (key, slice) in hot.slices.iter_mut() {
            if let Some(t) = tick {
                slice.tick(t);
            }
            let Some(lease) = slice.lease else { continue };
            if slice.busy {
                continue;
            }
            let ended = key.window.end + chrono::TimeDelta::seconds(2) < wall;
            // A slice unused for a while is closed, so that replicas keep no lease (and send
            // no renewal) for budgets they no longer serve, e.g. end users gone quiet.
            let idle = slice
                .last_admit
                .is_none_or(|t| now.duration_since(t) >= s.options.idle_return * 10);
            let close = may_close && (close_all || ended || idle) && slice.in_flight == 0;
            if close || slice.give_back(now, s.options.idle_return) {
                let c = slice.committed();
                slice.granted = slice.granted.min(c).max(Money::ZERO);
                slice.exposed = slice.exposed.min(c).max(Money::ZERO);
                slice.wanted = false;
            }
            slice.busy = true;
            by_lease.insert(lease, key.clone());
            entries.push(ReportEntry {
                id: lease,
                granted: slice.granted.as_nanos(),
                exposed: slice.exposed.as_nanos(),
                held: slice.held.as_nanos(),
                in_flight: i64::try_from(slice.in_flight).unwrap_or(i64::MAX),
                close,
            });
        }
    }
    if entries.is_empty() {
        return;
    }
    s.trip();
    let rows = timed(
        s,
        sqlx::query("SELECT * FROM budget_report($1, $2, make_interval(secs => $3))")
            .bind(s.replica)
            .bind(sqlx::types::Json(&entries))
            .bind(s.options.lease_ttl.as_secs_f64())
            .fetch_all(&s.pool),
    )
    .await;
    if rows.is_ok() {
        s.reachable();
    }
    let mut hot = s.lock();
    match rows {
        Ok(rows) => {
            for row in rows {
                let lease: i64 = row.try_get("lease_id").unwrap_or_default();
                let Some(key) = by_lease.remove(&lease) else {
                    continue;
                };
                let state: String = row.try_get("state").unwrap_or_default();
                let nanos = |c: &str| Money::from_nanos(row.try_get::<i64, _>(c).unwrap_or(0));
                let Some(slice) = hot.slices.get_mut(&key) else {
                    continue;
                };
                slice.busy = false;
                match state.as_str() {
                    "active" => {
                        slice.granted = nanos("granted");
                        slice.exposed = nanos("exposed");
                        slice.deadline = Some(s.deadline_from(now));
                        slice.view.spent = nanos("spent");
                        slice.view.leased = nanos("leased");
                        slice.wanted |= row.try_get::<i64, _>("wanted").unwrap_or(0) > 0;
                    }
                    "closed" if slice.in_flight == 0 => {
                        hot.slices.remove(&key);
                    }
                    "reclaimed" => {
                        slice.lost();
                        hot.reclaimed.push(lease);
                    }
                    _ => slice.lost(),
                }
            }
            for key in by_lease.values() {
                if let Some(slice) = hot.slices.get_mut(key) {
                    slice.busy = false;
                }
            }
        }
        Err(e) => {
            for key in by_lease.values() {
                if let Some(slice) = hot.slices.get_mut(key) {
                    slice.busy = false;
                }
            }
            tracing::warn!(error = %e, "cannot report on budget leases; slices admit until their deadline");
        }
    }
    drop(hot);
    s.bump();
}

/// Give back what reclaims charged this replica beyond its written usage, for each reclaimed
/// lease that no open request holds any more and whose usage is all written.
async fn settle_reclaimed(s: &Shared) {
    let ready: Vec<i64> = {
        let mut hot = s.lock();
        if hot.reclaimed.is_empty() || s.backlog.pending() > 0 {
            return;
        }
        let held: std::collections::HashSet<i64> = hot
            .open
            .values()
            .flat_map(|o| o.leases.iter().flatten().copied())
            .collect();
        let (ready, wait): (Vec<i64>, Vec<i64>) =
            hot.reclaimed.iter().partition(|l| !held.contains(l));
        hot.reclaimed = wait;
        ready
    };
    for lease in ready {
        s.trip();
        match timed(
            s,
            sqlx::query_scalar::<_, i64>("SELECT budget_settle_reclaimed($1, $2)")
                .bind(lease)
                .bind(s.replica)
                .fetch_one(&s.pool),
        )
        .await
        {
            Ok(n) if n > 0 => tracing::warn!(
                lease,
                refunded_nanos = n,
                "this replica's lease was reclaimed while it could not reach the database; its usage is written, the rest of the charge is given back"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "cannot settle a reclaimed lease yet");
                s.lock().reclaimed.push(lease);
            }
        }
    }
}

/// Give every slice back (shutdown).
pub(crate) async fn return_all(s: &Shared) {
    report(s, true, None).await;
}

/// Reports every `report_interval` (sooner when asked), and sweeps expired leases of dead
/// replicas every half TTL.
pub(crate) async fn reporter(s: Arc<Shared>) {
    let mut shutdown = s.shutdown.subscribe();
    let mut last_tick = Instant::now();
    let mut last_sweep = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(s.options.report_interval) => {}
            _ = s.report_now.notified() => {}
            _ = shutdown.changed() => return,
        }
        let tick = (last_tick.elapsed() >= s.options.report_interval).then(|| {
            let t = last_tick.elapsed();
            last_tick = Instant::now();
            t
        });
        report(&s, false, tick).await;
        settle_reclaimed(&s).await;
        if last_sweep.elapsed() >= s.options.lease_ttl / 2 {
            last_sweep = Instant::now();
            if let Err(e) = s.measure_clock().await {
                tracing::debug!(error = %e, "cannot read the database clock");
            }
            s.trip();
            match timed(
                &s,
                sqlx::query_scalar::<_, i32>(
                    "SELECT budget_reclaim_expired(make_interval(secs => $1))",
                )
                .bind(s.options.lease_grace.as_secs_f64())
                .fetch_one(&s.pool),
            )
            .await
            {
                Ok(n) if n > 0 => {
                    tracing::warn!(
                        leases = n,
                        "reclaimed the expired budget leases of replicas that stopped reporting"
                    );
                    s.bump();
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "lease sweep failed"),
            }
        }
    }
}

/// Listens for limiter changes and "money wanted" signals from other replicas, and polls for
/// changes every `refresh_interval` in case a notification was missed.
pub(crate) async fn listener(s: Arc<Shared>, first: Option<PgListener>) {
    let mut shutdown = s.shutdown.subscribe();
    let mut first = first;
    loop {
        let mut listener = match first.take() {
            Some(l) => Some(l),
            None => listen(&s).await,
        };
        let _ = s.refresh().await;
        let mut poll = tokio::time::interval(s.options.refresh_interval);
        poll.tick().await;
        loop {
            tokio::select! {
                n = async {
                    match listener.as_mut() {
                        Some(l) => l.try_recv().await,
                        None => std::future::pending().await,
                    }
                } => match n {
                    Ok(Some(n)) => on_notification(&s, n.channel(), n.payload()).await,
                    // The connection was lost: catch up with a poll, then listen again.
                    Ok(None) | Err(_) => break,
                },
                _ = poll.tick() => {
                    let _ = s.refresh().await;
                    if listener.is_none() {
                        break;
                    }
                }
                _ = s.refresh_now.notified() => { let _ = s.refresh().await; }
                _ = shutdown.changed() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(s.options.refresh_interval) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A connection listening for limiter changes and requests for money; `None` if the
/// database cannot be reached (the poll covers until it can).
pub(crate) async fn listen(s: &Shared) -> Option<PgListener> {
    let mut l = PgListener::connect_with(&s.pool).await.ok()?;
    l.listen_all(["budget_limiters", "budget_wanted"])
        .await
        .ok()?;
    Some(l)
}

async fn on_notification(s: &Shared, channel: &str, payload: &str) {
    if payload.starts_with(crate::credentials::PREFIX) {
        let _ = s.refresh_credentials().await;
        return;
    }
    let Ok(id) = payload.parse::<LimiterId>() else {
        return;
    };
    match channel {
        "budget_limiters" => {
            let _ = s.reload(id).await;
        }
        "budget_wanted" => {
            let mut hot = s.lock();
            for slice in hot
                .slices
                .values_mut()
                .filter(|x| x.line.key.limiter_id == id)
            {
                slice.wanted = true;
            }
            drop(hot);
            s.report_now.notify_one();
        }
        _ => {}
    }
}

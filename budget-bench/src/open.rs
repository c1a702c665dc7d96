//! Open-loop throughput: requests leave on a fixed schedule whatever the server does, and each
//! latency is measured from the request's *scheduled* send time, so a server that falls behind
//! is charged for the wait it causes (no coordinated omission).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Ask, Conn, Endpoint};
use crate::stats::Summary;

/// Connections the generator may open per step; past that, a request counts as an error.
const MAX_CONNECTIONS: usize = 1024;
/// A request not answered this long after its scheduled time is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// One step at one rate against one target.
#[derive(Debug, Clone, Default)]
pub(crate) struct Step {
    pub(crate) rate: u64,
    pub(crate) sent: usize,
    pub(crate) errors: usize,
    pub(crate) latency: Summary,
}

impl Step {
    /// Passes when p99 < 10 ms and nothing failed.
    pub(crate) fn passes(&self) -> bool {
        self.errors == 0 && self.sent > 0 && self.latency.p99 < Duration::from_millis(10)
    }
}

/// Send `rate × duration` requests to `endpoint`, request `i` at `start + i / rate`.
pub(crate) async fn step(endpoint: &Endpoint, rate: u64, duration: Duration) -> Step {
    let total = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let opened = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let mut latencies = Vec::with_capacity(total as usize);
    let mut errors = 0;
    // Tokio's timer has millisecond granularity, which would make every request up to a
    // millisecond late; a plain thread sleeping to each send time is within tens of µs.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let schedule = std::thread::spawn(move || {
        let start = std::time::Instant::now() + Duration::from_millis(5);
        for i in 0..total {
            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
            let now = std::time::Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if tx.send(Instant::from_std(due)).is_err() {
                return;
            }
        }
    });
    while let Some(due) = rx.recv().await {
        let (pool, opened, endpoint) = (pool.clone(), opened.clone(), endpoint.clone());
        tasks.spawn(async move {
            let taken = pool.lock().map(|mut p| p.pop()).unwrap_or(None);
            let mut conn = match taken {
                Some(c) => c,
                None => {
                    if opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= MAX_CONNECTIONS
                    {
                        return None;
                    }
                    match tokio::time::timeout_at(due + REQUEST_TIMEOUT, Conn::open(endpoint.addr))
                        .await
                    {
                        Ok(Ok(c)) => c,
                        _ => return None,
                    }
                }
            };
            match tokio::time::timeout_at(
                due + REQUEST_TIMEOUT,
                conn.call(endpoint.request(Ask::Json)),
            )
            .await
            {
                Ok(Ok(_)) => {
                    let latency = due.elapsed();
                    if let Ok(mut p) = pool.lock() {
                        p.push(conn);
                    }
                    Some(latency)
                }
                _ => None,
            }
        });
        // Reap finished tasks as we go, so the set stays small.
        while let Some(r) = tasks.try_join_next() {
            collect(r, &mut latencies, &mut errors);
        }
    }
    // The channel closed: the thread is done.
    let _ = schedule.join();
    while let Some(r) = tasks.join_next().await {
        collect(r, &mut latencies, &mut errors);
    }
    let mut step = Step {
        rate,
        sent: total as usize,
        errors,
        ..Step::default()
    };
    step.latency = Summary::of(&mut latencies);
    step
}

fn collect(
    r: Result<Option<Duration>, tokio::task::JoinError>,
    latencies: &mut Vec<Duration>,
    errors: &mut usize,
) {
    match r {
        Ok(Some(d)) => latencies.push(d),
        _ => *errors += 1,
    }
}

/// Step every target through `rates` in turn (at each rate: a, b, c), stopping a target at its
/// first failing step. A short pause between steps lets the previous one's connections close.
pub(crate) async fn throughput(
    targets: &[Endpoint],
    rates: &[u64],
    duration: Duration,
) -> Vec<Vec<Step>> {
    let mut out: Vec<Vec<Step>> = targets.iter().map(|_| Vec::new()).collect();
    for &rate in rates {
        for (t, steps) in targets.iter().zip(&mut out) {
            if steps.last().is_some_and(|s| !s.passes()) {
                continue;
            }
            steps.push(step(t, rate, duration).await);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    out
}

/// The highest passing rate of a target's steps, and whether a step failed (`false`: the
/// target passed every rate tried, so its capacity is higher still).
pub(crate) fn capacity(steps: &[Step]) -> (Option<u64>, bool) {
    let best = steps.iter().filter(|s| s.passes()).map(|s| s.rate).max();
    (best, steps.iter().any(|s| !s.passes()))
}

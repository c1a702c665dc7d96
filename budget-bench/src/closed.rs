//! Closed-loop measurements: latency at concurrency 1 (interleaved rounds) and the server's
//! CPU time per request.

use std::time::{Duration, Instant};

use crate::client::{Ask, Conn, Endpoint, Failure};
use crate::stats::Summary;
use crate::targets::tree_cpu_ticks;

/// Per target: the latency summary and the failures seen.
#[derive(Debug, Default)]
pub(crate) struct Latency {
    pub(crate) summary: Summary,
    pub(crate) failures: Vec<String>,
}

/// `warmup` then `rounds` rounds of one request to each target in turn (a, b, c, a, b, c…),
/// each target over its own keep-alive connection.
/// With a non-zero `pause`, the client sleeps that long before each request, so every
/// process starts each request from idle.
pub(crate) async fn latency(
    targets: &[Endpoint],
    warmup: usize,
    rounds: usize,
    pause: Duration,
) -> Vec<Latency> {
    let mut out: Vec<Latency> = targets.iter().map(|_| Latency::default()).collect();
    let mut conns = Vec::new();
    for (t, o) in targets.iter().zip(&mut out) {
        match Conn::open(t.addr).await {
            Ok(c) => conns.push(Some(c)),
            Err(e) => {
                o.failures.push(e.to_string());
                conns.push(None);
            }
        }
    }
    let mut samples: Vec<Vec<Duration>> =
        targets.iter().map(|_| Vec::with_capacity(rounds)).collect();
    for round in 0..warmup + rounds {
        for (i, t) in targets.iter().enumerate() {
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            match tokio::time::timeout(Duration::from_secs(10), conn.call(t.request(Ask::Json)))
                .await
            {
                Ok(Ok(d)) if round >= warmup => samples[i].push(d),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => out[i].failures.push(e.to_string()),
                Err(_) => out[i].failures.push(Failure::Timeout.to_string()),
            }
            if out[i].failures.len() > 10 {
                // This target is broken; stop asking it.
                conns[i] = None;
            }
        }
    }
    for (o, s) in out.iter_mut().zip(&mut samples) {
        o.summary = Summary::of(s);
    }
    out
}

/// CPU time of one server process per request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CpuCost {
    pub(crate) requests: u64,
    pub(crate) ticks: u64,
    pub(crate) micros_per_request: f64,
    pub(crate) wall: Duration,
}

impl CpuCost {
    /// Requests per second over the blocks' wall time.
    pub(crate) fn per_second(&self) -> f64 {
        if self.wall.is_zero() {
            0.0
        } else {
            self.requests as f64 / self.wall.as_secs_f64()
        }
    }
}

/// `blocks` blocks of `per_block` requests per server, alternating between servers
/// (a, n, b, c, a, n…) so that drift in the machine's state hits all alike, each block
/// closed-loop over `concurrency` connections. The utime + stime of the server's process and
/// its children (nginx's workers) is read from `/proc` around each block.
pub(crate) async fn cpu_per_request(
    servers: &[(u32, Endpoint)],
    blocks: usize,
    per_block: usize,
    concurrency: usize,
    ticks_per_sec: u64,
    failures: &mut Vec<String>,
) -> Vec<CpuCost> {
    let mut out = vec![CpuCost::default(); servers.len()];
    for _ in 0..blocks {
        for (i, (pid, endpoint)) in servers.iter().enumerate() {
            let before = match tree_cpu_ticks(*pid) {
                Ok(t) => t,
                Err(e) => {
                    failures.push(e);
                    continue;
                }
            };
            let started = Instant::now();
            let done = closed_block(endpoint, per_block, concurrency, failures).await;
            out[i].wall += started.elapsed();
            // Let spawned settlements and the SQLite writer's batch (≤ 100 ms) finish, so their
            // CPU lands in this block.
            tokio::time::sleep(Duration::from_millis(150)).await;
            match tree_cpu_ticks(*pid) {
                Ok(after) => {
                    out[i].ticks += after.saturating_sub(before);
                    out[i].requests += done;
                }
                Err(e) => failures.push(e),
            }
        }
    }
    for c in &mut out {
        if c.requests > 0 {
            c.micros_per_request = c.ticks as f64 * 1e6 / ticks_per_sec as f64 / c.requests as f64;
        }
    }
    out
}

/// `n` JSON requests over `concurrency` connections; how many got a 200.
async fn closed_block(
    endpoint: &Endpoint,
    n: usize,
    concurrency: usize,
    failures: &mut Vec<String>,
) -> u64 {
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let endpoint = endpoint.clone();
        let share = n / concurrency + usize::from(w < n % concurrency);
        tasks.spawn(async move {
            let mut conn = Conn::open(endpoint.addr).await.map_err(|e| e.to_string())?;
            let mut ok = 0u64;
            for _ in 0..share {
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    conn.call(endpoint.request(Ask::Json)),
                )
                .await
                {
                    Ok(Ok(_)) => ok += 1,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err(Failure::Timeout.to_string()),
                }
            }
            Ok(ok)
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(ok)) => done += ok,
            Ok(Err(e)) => failures.push(format!("{}: {e}", endpoint.addr)),
            Err(e) => failures.push(e.to_string()),
        }
    }
    done
}

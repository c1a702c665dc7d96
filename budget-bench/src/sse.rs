//! Streaming: time to first byte and chunk pacing through the proxy, and many concurrent
//! streams with the server's memory watched from `/proc`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Ask, Conn, Endpoint, StreamTiming};
use crate::stats::{percentile, Summary};
use crate::targets::tree_rss_kib;

/// Time to first byte per target, and how chunk pacing through each proxy differs from direct.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// Send → end of the first event, per target.
    pub(crate) ttfb: Vec<Summary>,
    /// Per target (zero for target 0, the direct mock): p99 of |gap(proxy) − gap(direct)|
    /// over all chunk gaps of paired rounds.
    pub(crate) gap_diff_p99: Vec<Duration>,
    /// Per target (empty for target 0): how late each event is, relative to its stream's first event,
    /// compared with the same event of the paired direct stream. A proxy that holds chunks
    /// back shows a whole pacing interval here, for many chunks.
    pub(crate) lateness: Vec<Summary>,
    pub(crate) failures: Vec<String>,
}

/// `rounds` rounds of one stream per target in turn (target 0 is the direct mock), each
/// stream after the same idle pause.
pub(crate) async fn pacing(
    targets: &[Endpoint],
    rounds: usize,
    deltas: usize,
    delay: Duration,
) -> Pacing {
    let ask = Ask::Stream { deltas, delay };
    let expected = deltas + 2;
    let mut conns = Vec::new();
    let mut out = Pacing::default();
    for t in targets {
        match Conn::open(t.addr).await {
            Ok(c) => conns.push(Some(c)),
            Err(e) => {
                out.failures.push(format!("{}: {e}", t.addr));
                conns.push(None);
            }
        }
    }
    let mut timings: Vec<Vec<Option<StreamTiming>>> = targets.iter().map(|_| Vec::new()).collect();
    // One warm-up stream each, not counted.
    for round in 0..=rounds {
        for (i, t) in targets.iter().enumerate() {
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            // Every stream starts from the same idle state, whatever the target: the mock is
            // not kept warm for (a) by the streams it just served for (b) and (c).
            std::thread::sleep(delay.max(Duration::from_millis(10)));
            let limit = delay * expected as u32 + Duration::from_secs(10);
            let r = match tokio::time::timeout(limit, conn.stream(t.request(ask), expected)).await {
                Ok(Ok(timing)) => Some(timing),
                Ok(Err(e)) => {
                    out.failures.push(format!("{}: {e}", t.addr));
                    None
                }
                Err(_) => {
                    out.failures.push(format!("{}: stream timed out", t.addr));
                    None
                }
            };
            if round > 0 {
                timings[i].push(r);
            }
        }
    }
    for ts in &timings {
        let mut ttfb: Vec<Duration> = ts.iter().flatten().map(StreamTiming::ttfb).collect();
        out.ttfb.push(Summary::of(&mut ttfb));
    }
    out.gap_diff_p99.push(Duration::ZERO);
    out.lateness.push(Summary::default());
    let direct = &timings[0];
    for proxied in &timings[1..] {
        let mut diffs = Vec::new();
        let mut lateness = Vec::new();
        for (d, p) in direct.iter().zip(proxied) {
            let (Some(d), Some(p)) = (d, p) else { continue };
            diffs.extend(p.gaps().zip(d.gaps()).map(|(gp, gd)| gp.abs_diff(gd)));
            for (op, od) in p.offsets().zip(d.offsets()) {
                lateness.push(op.saturating_sub(od));
            }
        }
        diffs.sort_unstable();
        out.gap_diff_p99.push(percentile(&diffs, 99.0));
        out.lateness.push(Summary::of(&mut lateness));
    }
    out
}

/// Streams sent at once by the mock (no pacing), back to back: per target, the time to the
/// first event and to the end of the stream.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    pub(crate) ttfe: Vec<Summary>,
    pub(crate) total: Vec<Summary>,
    pub(crate) failures: Vec<String>,
}

/// `warmup` then `rounds` rounds of one unpaced stream of `deltas` content events per target in
/// turn, each target over its own keep-alive connection, without pauses.
pub(crate) async fn burst(
    targets: &[Endpoint],
    warmup: usize,
    rounds: usize,
    deltas: usize,
) -> Burst {
    let ask = Ask::Stream {
        deltas,
        delay: Duration::ZERO,
    };
    let expected = deltas + 2;
    let mut out = Burst::default();
    let mut conns = Vec::new();
    for t in targets {
        match Conn::open(t.addr).await {
            Ok(c) => conns.push(Some(c)),
            Err(e) => {
                out.failures.push(format!("{}: {e}", t.addr));
                conns.push(None);
            }
        }
    }
    let mut ttfe: Vec<Vec<Duration>> = targets.iter().map(|_| Vec::new()).collect();
    let mut total: Vec<Vec<Duration>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..warmup + rounds {
        for (i, t) in targets.iter().enumerate() {
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            let r = tokio::time::timeout(
                Duration::from_secs(10),
                conn.stream(t.request(ask), expected),
            )
            .await;
            match r {
                Ok(Ok(timing)) if round >= warmup => {
                    ttfe[i].push(timing.ttfb());
                    total[i].push(timing.total());
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    out.failures.push(format!("{}: {e}", t.addr));
                    conns[i] = None;
                }
                Err(_) => {
                    out.failures.push(format!("{}: stream timed out", t.addr));
                    conns[i] = None;
                }
            }
        }
    }
    out.ttfe = ttfe.iter_mut().map(|v| Summary::of(v)).collect();
    out.total = total.iter_mut().map(|v| Summary::of(v)).collect();
    out
}

/// Many concurrent streams through one server.
#[derive(Debug, Default)]
pub(crate) struct Crowd {
    pub(crate) streams: usize,
    pub(crate) completed: usize,
    pub(crate) failures: Vec<String>,
    /// All chunk gaps of all streams.
    pub(crate) gaps: Summary,
    /// Streams open at the same time, at most (as counted by the client).
    pub(crate) peak_open: u64,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_peak_kib: u64,
    pub(crate) rss_after_kib: u64,
}

/// Open `streams` streams through `endpoint` (spread over `ramp`), each `deltas` events `delay`
/// apart, all over their own connections, while sampling the server's RSS every 10 ms.
pub(crate) async fn crowd(
    endpoint: &Endpoint,
    pid: u32,
    streams: usize,
    deltas: usize,
    delay: Duration,
    ramp: Duration,
) -> Crowd {
    let mut out = Crowd {
        streams,
        ..Crowd::default()
    };
    out.rss_before_kib = tree_rss_kib(pid).unwrap_or(0);
    let ask = Ask::Stream { deltas, delay };
    let expected = deltas + 2;
    let open_now = Arc::new(AtomicU64::new(0));
    let peak_open = Arc::new(AtomicU64::new(0));
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        loop {
            peak = peak.max(tree_rss_kib(pid).unwrap_or(0));
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                _ = &mut stop_rx => return peak,
            }
        }
    });
    let mut tasks = tokio::task::JoinSet::new();
    let spacing = ramp / streams.max(1) as u32;
    let start = tokio::time::Instant::now();
    for i in 0..streams {
        let (endpoint, open_now, peak_open) =
            (endpoint.clone(), open_now.clone(), peak_open.clone());
        let due = start + spacing * i as u32;
        tasks.spawn(async move {
            tokio::time::sleep_until(due).await;
            let limit = delay * expected as u32 + Duration::from_secs(30);
            let run = async {
                let mut conn = Conn::open(endpoint.addr).await?;
                let now = open_now.fetch_add(1, Ordering::Relaxed) + 1;
                peak_open.fetch_max(now, Ordering::Relaxed);
                let r = conn.stream(endpoint.request(ask), expected).await;
                open_now.fetch_sub(1, Ordering::Relaxed);
                r
            };
            match tokio::time::timeout(limit, run).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("stream timed out".to_owned()),
            }
        });
    }
    let mut gaps = Vec::with_capacity(streams * expected);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(timing)) => {
                out.completed += 1;
                gaps.extend(timing.gaps());
            }
            Ok(Err(e)) => out.failures.push(e),
            Err(e) => out.failures.push(e.to_string()),
        }
    }
    let _ = stop_tx.send(());
    out.rss_peak_kib = sampler.await.unwrap_or(0);
    out.gaps = Summary::of(&mut gaps);
    out.peak_open = peak_open.load(Ordering::Relaxed);
    out.rss_after_kib = tree_rss_kib(pid).unwrap_or(0);
    out
}

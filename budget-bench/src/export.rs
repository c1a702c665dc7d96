//! `budget-bench export`: the memory of `GET /api/usage/export` over a large SQLite file,
//! against a tenth of the same export measured in the same run (issue 16: "1M records
//! exported with flat memory").
//!
//! 1. A SQLite file in a temporary folder gets the server's schema and one limiter through
//!    [`SqliteStore`] (migrations on open, `create_limiter`), then `records` usage records,
//!    generated inside SQLite by large `INSERT … SELECT` statements (one transaction per
//!    100,000 records, 30 days of traffic one record every few seconds, five models, a
//!    thousand users, a quarter without one), rolled up with [`rebuild_rollups`] so that the
//!    file is what a server would have written.
//! 2. The release `budget-server` starts on that file; the benchmark logs in and exports the
//!    first 1,000 records as a warm-up. Its `VmRSS` one second later is the baseline.
//! 3. Four exports, each on a fresh connection, the body counted (bytes, lines) and dropped
//!    as it arrives: the first tenth and the first half of the records as CSV (a `to` bound),
//!    all of them as CSV, all of them as JSON Lines. The server's `VmRSS` is sampled every
//!    50 ms during each; the peak growth over the baseline is the measurement, and the ratio
//!    of all ÷ a tenth says whether memory grows with the size of the export (10× for a server
//!    that builds the file) or stays flat. Caches that fill up to a fixed size (SQLite's page
//!    cache, per pooled connection) make the smaller exports grow less than their share; the
//!    half and the JSON Lines rows show where the growth stops.
//!
//! Every line count is checked (CSV: records + the header row; JSON Lines: records), so a
//! short or broken download fails the run instead of measuring it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use budget_core::store::prelude::*;
use budget_core::{Limiter, LimiterId, Money, NewLimiter, Period};
use budget_store_sqlite::{rebuild_rollups, SqliteStore};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::client::Conn;
use crate::targets::{self, Process};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The `budget-server` binary.
    pub(crate) server_bin: std::path::PathBuf,
    /// Usage records in the file (and in the full exports).
    pub(crate) records: usize,
}

/// Records per generating `INSERT … SELECT` (and per transaction).
const CHUNK: usize = 100_000;
/// Records of the warm-up export.
const WARMUP: usize = 1_000;
/// How often the server's RSS is read during an export.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The records span this much time, ending a day before the run.
const SPAN_US: i64 = 30 * 86_400 * 1_000_000;

/// Where the records sit in time: record `i` is at `start + i × step` (µs), all distinct.
#[derive(Debug, Clone, Copy)]
struct Timeline {
    start: i64,
    step: i64,
}

impl Timeline {
    fn new(records: usize) -> Timeline {
        let end = Utc::now().timestamp_micros() - 86_400 * 1_000_000;
        let step = (SPAN_US / records.max(1) as i64).max(1);
        Timeline {
            start: end - step * records as i64,
            step,
        }
    }

    /// The `to` bound (exclusive) that selects the first `n` records, as RFC 3339.
    fn before(&self, n: usize) -> String {
        let at = self.start + self.step * n as i64;
        DateTime::<Utc>::from_timestamp_micros(at)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// What one export measured.
#[derive(Debug)]
struct Run {
    label: String,
    format: &'static str,
    records: usize,
    bytes: u64,
    wall: Duration,
    peak_kib: u64,
    samples: usize,
}

/// Load the file, start the server, run the exports; the report as Markdown.
pub(crate) async fn run(opts: &Options) -> Result<String, String> {
    let n = opts.records.max(10);
    let load_start = crate::machine::loadavg();
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let db = dir.path().join("export.db");
    let timeline = Timeline::new(n);

    crate::progress(&format!("export: generating {n} usage records"));
    let load = load(&db, n, timeline).await?;
    let file_bytes = file_size(&db);

    crate::progress("export: starting budget-server on the file");
    let log = dir.path().join("export-server.log");
    let command =
        targets::server_command("budget-server", &opts.server_bin, dir.path(), &db, &log)?;
    let mut server = Process::start("budget-server", command).map_err(|e| {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let hint = if said.contains("migration") {
            "\n(this benchmark writes the schema of its own budget-store-sqlite: build both \
             binaries from the same sources, `cargo build --release -p budget-server -p \
             budget-bench`)"
        } else {
            ""
        };
        format!("{e}; its log:\n{said}{hint}")
    })?;
    let pid = server.pid();
    let rss_started = targets::rss_kib(pid)?;
    let token = {
        let mut conn = Conn::open(server.addr)
            .await
            .map_err(|e| format!("admin API: {e}"))?;
        targets::login(&mut conn, server.addr).await?
    };
    let warm = WARMUP.min(n / 10);
    export(
        &server,
        &token,
        "warm-up",
        "csv",
        Some(timeline.before(warm)),
        warm,
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = targets::rss_kib(pid)?;

    let mut runs = Vec::new();
    for (label, format, count) in [
        ("a tenth", "csv", n / 10),
        ("half", "csv", n / 2),
        ("all", "csv", n),
        ("all", "jsonl", n),
    ] {
        let to = (count < n).then(|| timeline.before(count));
        crate::progress(&format!("export: {count} records as {format}"));
        runs.push(export(&server, &token, label, format, to, count).await?);
        server.check_alive()?;
    }
    let hwm = targets::hwm_kib(pid)?;
    let connections = open_count(pid, &db);
    Ok(markdown(&Report {
        records: n,
        load,
        file_bytes,
        rss_started,
        baseline,
        hwm,
        connections,
        runs,
        load_start,
        load_end: crate::machine::loadavg(),
    }))
}

/// How long filling the file took.
#[derive(Debug)]
struct Load {
    insert: Duration,
    rollup: Duration,
}

/// The schema and a limiter through the store, then `n` records straight into
/// `usage_events`, then the roll-ups.
async fn load(db: &Path, n: usize, timeline: Timeline) -> Result<Load, String> {
    let url = format!("sqlite:{}", db.display());
    let store = SqliteStore::open(&url)
        .await
        .map_err(|e| format!("open {url}: {e}"))?;
    let new = NewLimiter::new(
        "budget-bench export",
        Money::from_dollars(1_000_000),
        Period::Day,
        "https://api.openai.com",
    );
    let limiter = Limiter::create(new, Utc::now()).map_err(|e| format!("limiter: {e}"))?;
    store
        .create_limiter(&limiter)
        .await
        .map_err(|e| format!("create the limiter: {e}"))?;
    store.close().await;
    let id: LimiterId = limiter.id;

    let opts = SqliteConnectOptions::new()
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-262144");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(|e| format!("open {}: {e}", db.display()))?;
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let count = CHUNK.min(n - done);
        sqlx::query(
            "WITH RECURSIVE k(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?2)
             INSERT INTO usage_events (id, at, limiter_id, model, user, endpoint, prompt_tokens,
                 cached_tokens, completion_tokens, reasoning_tokens, cost, unpriced, estimated,
                 status, streamed, latency_ms, price_version)
             SELECT printf('%08x-%04x-4%03x-8%03x-%012x', (i * 2654435761) % 4294967296,
                        i % 65536, (i / 65536) % 4096, i % 4096, i),
                    ?3 + i * ?4,
                    ?5,
                    CASE i % 5 WHEN 0 THEN 'gpt-4o' WHEN 1 THEN 'gpt-4o-mini' WHEN 2 THEN 'o3-mini'
                               WHEN 3 THEN 'gpt-4.1' ELSE 'text-embedding-3-small' END,
                    CASE WHEN i % 4 = 0 THEN NULL ELSE 'user-' || (i % 1000) END,
                    CASE WHEN i % 5 = 4 THEN 'embeddings' ELSE 'chat_completions' END,
                    500 + i % 3000, (i % 3) * 100, 100 + i % 700, (i % 7) * 10,
                    1000 + (i % 997) * 1000, 0, i % 200 = 0,
                    CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, i % 2, 200 + i % 5000,
                    'builtin-2026-01'
             FROM k",
        )
        .bind(done as i64)
        .bind((done + count) as i64)
        .bind(timeline.start)
        .bind(timeline.step)
        .bind(id.to_string())
        .execute(&pool)
        .await
        .map_err(|e| format!("insert records: {e}"))?;
        done += count;
        crate::progress(&format!(
            "export: {done} records inserted ({:.1} s)",
            t.elapsed().as_secs_f64()
        ));
    }
    let insert = t.elapsed();
    let t = Instant::now();
    rebuild_rollups(&pool)
        .await
        .map_err(|e| format!("roll up: {e}"))?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .map_err(|e| format!("checkpoint: {e}"))?;
    pool.close().await;
    Ok(Load {
        insert,
        rollup: t.elapsed(),
    })
}

/// `GET /api/usage/export` on a fresh connection, the body counted and dropped as it arrives,
/// the server's RSS sampled meanwhile; fails unless the line count is right.
async fn export(
    server: &Process,
    token: &str,
    label: &str,
    format: &'static str,
    to: Option<String>,
    records: usize,
) -> Result<Run, String> {
    let what = format!("export ({label}, {format})");
    let stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .map_err(|e| format!("{what}: connect: {e}"))?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut path = format!("/api/usage/export?format={format}");
    if let Some(to) = &to {
        // RFC 3339 with `Z` and digits only: nothing to percent-encode but the colons, which a
        // query may hold.
        path.push_str(&format!("&to={to}"));
    }
    let req = Request::get(path)
        .header(header::HOST, server.addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())
        .map_err(|e| format!("{what}: {e}"))?;
    let sampler = Sampler::start(server.pid());
    let started = Instant::now();
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("{what}: {e}"))?;
    let status = res.status();
    let mut body = res.into_body();
    if status != StatusCode::OK {
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(format!(
            "{what}: {status} {}",
            String::from_utf8_lossy(&text)
        ));
    }
    let (mut bytes, mut lines) = (0u64, 0usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("{what}: the download broke: {e}"))?;
        if let Some(data) = frame.data_ref() {
            bytes += data.len() as u64;
            lines += data.iter().filter(|&&b| b == b'\n').count();
        }
    }
    let wall = started.elapsed();
    let (peak_kib, samples) = sampler.stop();
    let expected = records + usize::from(format == "csv");
    if lines != expected {
        return Err(format!(
            "{what}: {lines} lines, expected {expected} ({records} records{})",
            if format == "csv" {
                " and the header row"
            } else {
                ""
            }
        ));
    }
    Ok(Run {
        label: label.to_owned(),
        format,
        records,
        bytes,
        wall,
        peak_kib,
        samples,
    })
}

/// A thread that reads a process's `VmRSS` every [`SAMPLE_EVERY`] and keeps the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, usize)>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut peak, mut samples) = (0, 0);
            loop {
                let last = flag.load(Ordering::Relaxed);
                if let Ok(kib) = targets::rss_kib(pid) {
                    peak = peak.max(kib);
                    samples += 1;
                }
                if last {
                    return (peak, samples);
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { stop, thread }
    }

    /// The peak (KiB) and the number of readings, one more taken now.
    fn stop(self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or((0, 0))
    }
}

/// How many descriptors `pid` holds on `db` itself: its SQLite connections (each also holds
/// the `-wal` and `-shm` files, not counted).
fn open_count(pid: u32, db: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|p| p == db))
        .count()
}

fn file_size(db: &Path) -> u64 {
    std::fs::metadata(db).map(|m| m.len()).unwrap_or(0)
}

struct Report {
    records: usize,
    load: Load,
    file_bytes: u64,
    rss_started: u64,
    baseline: u64,
    hwm: u64,
    connections: usize,
    runs: Vec<Run>,
    load_start: String,
    load_end: String,
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn growth_kib(peak: u64, baseline: u64) -> u64 {
    peak.saturating_sub(baseline)
}

fn markdown(r: &Report) -> String {
    let mut out = format!(
        "{} usage records of one limiter in a {:.0} MB SQLite file (generated in {:.1} s, \
         rolled up in {:.1} s). The server's `VmRSS` after start: {} MiB; after login and a \
         {}-record warm-up export: {} MiB (the baseline). Each export on a fresh connection, \
         the body counted and dropped by the client as it arrives, the server's `VmRSS` read \
         every {} ms.\n\n\
         | export | format | records | MB | seconds | records/s | peak RSS MiB | growth over baseline MiB | RSS readings |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        r.records,
        r.file_bytes as f64 / 1e6,
        r.load.insert.as_secs_f64(),
        r.load.rollup.as_secs_f64(),
        mib(r.rss_started),
        WARMUP.min(r.records / 10),
        mib(r.baseline),
        SAMPLE_EVERY.as_millis(),
    );
    for run in &r.runs {
        let secs = run.wall.as_secs_f64();
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.0} | {} | {} | {} |\n",
            run.label,
            if run.format == "csv" {
                "CSV"
            } else {
                "JSON Lines"
            },
            run.records,
            run.bytes as f64 / 1e6,
            secs,
            if secs > 0.0 {
                run.records as f64 / secs
            } else {
                0.0
            },
            mib(run.peak_kib),
            mib(growth_kib(run.peak_kib, r.baseline)),
            run.samples,
        ));
    }
    // Rows: a tenth, half, all (CSV), all (JSON Lines).
    let growth = |i: usize| {
        r.runs
            .get(i)
            .map_or(0, |run| growth_kib(run.peak_kib, r.baseline))
    };
    let rate = |i: usize| {
        r.runs.get(i).map_or(0.0, |run| {
            run.records as f64 / run.wall.as_secs_f64().max(f64::EPSILON)
        })
    };
    out.push_str(&format!(
        "\nPeak RSS growth, all ÷ a tenth (CSV): {:.2}× for 10× the records ({} MiB ÷ {} MiB); \
         all ÷ half: {:.2}× for 2× the records; JSON Lines (twice the bytes, after the CSV \
         exports) ÷ all as CSV: {:.2}×. Records/s, all ÷ a tenth (CSV): {:.2}×. The server's \
         `VmHWM` at the end: {} MiB; its SQLite connections to the file: {}. Load average (1/5/15 min) {} at the start, {} at the \
         end.\n",
        crate::report::ratio(growth(2) as f64, growth(0) as f64),
        mib(growth(2)),
        mib(growth(0)),
        crate::report::ratio(growth(2) as f64, growth(1) as f64),
        crate::report::ratio(growth(3) as f64, growth(2) as f64),
        crate::report::ratio(rate(2), rate(0)),
        mib(r.hwm),
        r.connections,
        r.load_start,
        r.load_end,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_to_bound_selects_the_first_records() {
        let t = Timeline::new(1_000_000);
        assert!(t.step >= 2_000_000, "30 days over a million records");
        let to = DateTime::parse_from_rfc3339(&t.before(100_000)).unwrap();
        assert_eq!(to.timestamp_micros(), t.start + 100_000 * t.step);
        assert!(t.before(10) < t.before(11));
    }
}

//! SQLite store benchmark: hot-path decisions, writer throughput, statistics latency on a
//! large file, and file size per million events. Prints a Markdown table.
//!
//! ```text
//! cargo bench -p budget-store-sqlite                      # 10 million events
//! BENCH_EVENTS=100000 cargo bench -p budget-store-sqlite  # quick mode
//! ```
//!
//! Knobs (environment): `BENCH_EVENTS` (events in the statistics file, default 10 000 000),
//! `BENCH_OPS` (hot-path iterations, default 500 000), `BENCH_WRITES` (events pushed through
//! the writer, default 300 000), `BENCH_DIR` (where the files go, default a temp folder),
//! `BENCH_KEEP=1` (keep the files, e.g. to inspect `stats.db` with `sqlite3`).

use std::time::{Duration, Instant};

use budget_core::store::prelude::*;
use budget_core::store::{
    BucketSize, GroupBy, ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord,
};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{BudgetStore, EnforcementMode, Limiter, LimiterId, Money, NewLimiter, Period};
use budget_store_sqlite::{rebuild_rollups, SqliteStore, SqliteStoreOptions};
use chrono::{Duration as TimeDelta, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn new_limiter(name: &str, mode: EnforcementMode, period: Period) -> Limiter {
    let mut new = NewLimiter::new(
        name,
        Money::from_dollars(1_000_000_000),
        period,
        "https://api.openai.com",
    );
    new.mode = Some(mode);
    Limiter::create(new, Utc::now()).unwrap()
}

fn usage(model: &str) -> Usage {
    Usage {
        model: Some(model.into()),
        prompt_tokens: 1200,
        completion_tokens: 300,
        cached_tokens: 200,
        ..Usage::default()
    }
}

struct Row {
    what: String,
    result: String,
    target: &'static str,
}

fn main() {
    let events = env_usize("BENCH_EVENTS", 10_000_000);
    let ops = env_usize("BENCH_OPS", 500_000);
    let writes = env_usize("BENCH_WRITES", 300_000);
    let base = std::env::var("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir());
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let mut rows = Vec::new();

    // 1. Hot path, one core: a current-thread runtime (sqlx's own connection thread does the
    //    disk work of the writer).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(hot_path(&dir.path().join("hot.db"), ops, &mut rows));
    drop(rt);

    // 2. + 3. Writer throughput and statistics on a big file.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for users in [1_000, 10_000] {
        rt.block_on(writer_throughput(
            &dir.path().join(format!("writer-{users}.db")),
            writes,
            users,
            &mut rows,
        ));
    }
    rt.block_on(statistics(&dir.path().join("stats.db"), events, &mut rows));

    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("files kept in {}", dir.keep().display());
    }
    println!();
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.result, r.target);
    }
}

async fn hot_path(path: &std::path::Path, ops: usize, rows: &mut Vec<Row>) {
    let options = SqliteStoreOptions::new(path.to_str().unwrap()).with_max_pending(ops + 1);
    let store = SqliteStore::open_with(options).await.unwrap();
    let l = new_limiter("hot", EnforcementMode::Strict, Period::Month);
    store.create_limiter(&l).await.unwrap();
    let at = Utc::now();
    let req = ReserveRequest::new(l.id, Money::from_cents(5), at);
    let u = usage("gpt-4o");

    // reserve + release: the decision alone.
    let t = Instant::now();
    for _ in 0..ops {
        let ReserveOutcome::Reserved(r) = store.reserve(&req).await.unwrap() else {
            panic!("denied")
        };
        store.release(&r).await.unwrap();
    }
    let rr = ops as f64 / t.elapsed().as_secs_f64();

    // reserve + settle: decision, record built by the caller, queued for the writer.
    let t = Instant::now();
    for _ in 0..ops {
        let ReserveOutcome::Reserved(r) = store.reserve(&req).await.unwrap() else {
            panic!("denied")
        };
        let record = UsageRecord::new(
            l.id,
            at,
            Endpoint::ChatCompletions,
            &u,
            Some(Money::from_cents(1)),
        );
        store.settle(&r, record).await.unwrap();
    }
    let decided = t.elapsed();
    store.flush().await.unwrap();
    let drained = t.elapsed();
    let rs = ops as f64 / decided.as_secs_f64();
    rows.push(Row {
        what: "reserve + release, hot path, 1 core (current-thread runtime)".into(),
        result: format!("{:.0}k/s", rr / 1e3),
        target: "≥ 200k/s",
    });
    rows.push(Row {
        what: "reserve + settle, hot path, 1 core (current-thread runtime)".into(),
        result: format!(
            "{:.0}k/s ({ops} in {:.2} s; writer drained them by {:.2} s)",
            rs / 1e3,
            decided.as_secs_f64(),
            drained.as_secs_f64()
        ),
        target: "≥ 200k/s",
    });
    store.close().await;
}

/// `n` events through the writer as fast as it takes them; every event of a batch is a new
/// roll-up key as long as the batch holds at most `users` events (user `i % users`).
async fn writer_throughput(path: &std::path::Path, n: usize, users: usize, rows: &mut Vec<Row>) {
    let options = SqliteStoreOptions::new(path.to_str().unwrap()).with_max_pending(n + 1);
    let store = SqliteStore::open_with(options).await.unwrap();
    let mut limiters = Vec::new();
    for i in 0..20 {
        let l = new_limiter(&format!("w{i}"), EnforcementMode::Soft, Period::Month);
        store.create_limiter(&l).await.unwrap();
        limiters.push(l.id);
    }
    let models = ["gpt-4o", "gpt-4o-mini", "o3-mini", "text-embedding-3-small"];
    let usages: Vec<Usage> = models.iter().map(|m| usage(m)).collect();
    let now = Utc::now();
    // Build the records first: this measures the writer, not record construction.
    let records: Vec<UsageRecord> = (0..n)
        .map(|i| {
            let mut r = UsageRecord::new(
                limiters[i % 20],
                now - TimeDelta::milliseconds((n - i) as i64),
                Endpoint::ChatCompletions,
                &usages[i % 4],
                Some(Money::from_nanos(1_000 + i as i64)),
            );
            r.user = (i % 5 != 0).then(|| format!("user-{}", i % users));
            r
        })
        .collect();
    let t = Instant::now();
    for r in records {
        store.record_usage(r).await.unwrap();
    }
    store.flush().await.unwrap();
    let took = t.elapsed();
    rows.push(Row {
        what: format!(
            "usage events committed through the writer ({n}, default batch size, \
             20 limiters × 4 models × {users} users)"
        ),
        result: format!("{:.0}k/s", n as f64 / took.as_secs_f64() / 1e3),
        target: "≥ 50k/s",
    });
    store.close().await;
}

/// Fill `path` with `n` events over the last 90 days (100 limiters, 5 models, 10 users per
/// limiter, a quarter of events without a user) with big `INSERT … SELECT` batches generated
/// inside SQLite, then roll them up.
async fn generate(path: &std::path::Path, n: usize, limiters: &[LimiterId]) -> Duration {
    let t = Instant::now();
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Off)
        .pragma("cache_size", "-262144");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sqlx::query("CREATE TEMP TABLE bench_limiters (n INTEGER PRIMARY KEY, id TEXT NOT NULL)")
        .execute(&mut *conn)
        .await
        .unwrap();
    for (i, id) in limiters.iter().enumerate() {
        sqlx::query("INSERT INTO bench_limiters VALUES (?, ?)")
            .bind(i as i64)
            .bind(id.to_string())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let end = Utc::now().timestamp_micros();
    let span: i64 = 90 * 86_400 * 1_000_000;
    let chunk = 1_000_000.min(n);
    let mut done = 0;
    while done < n {
        let count = chunk.min(n - done);
        sqlx::query(
            "WITH RECURSIVE k(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < ?2)
             INSERT INTO usage_events (id, at, limiter_id, model, user, endpoint, prompt_tokens, cached_tokens,
                 completion_tokens, reasoning_tokens, cost, unpriced, estimated, status, streamed, latency_ms)
             SELECT printf('%s-%s-4%s-8%s-%s', lower(hex(randomblob(4))), lower(hex(randomblob(2))),
                        substr(lower(hex(randomblob(2))), 2), substr(lower(hex(randomblob(2))), 2),
                        lower(hex(randomblob(6)))),
                    ?3 - ?4 + (i * ?4) / ?5,
                    l.id,
                    CASE i % 5 WHEN 0 THEN 'gpt-4o' WHEN 1 THEN 'gpt-4o-mini' WHEN 2 THEN 'o3-mini'
                               WHEN 3 THEN 'gpt-4.1' ELSE 'text-embedding-3-small' END,
                    CASE WHEN i % 4 = 0 THEN NULL ELSE 'user-' || ((i % 100) * 10 + (i / 100) % 10) END,
                    'chat_completions', 500 + i % 3000, (i % 3) * 100, 100 + i % 700, (i % 7) * 10,
                    1000 + (i % 997) * 1000, i % 5 = 4 AND i % 1000 = 4, i % 200 = 0,
                    CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, i % 2, 200 + i % 5000
             FROM k JOIN bench_limiters l ON l.n = k.i % ?6",
        )
        .bind(done as i64)
        .bind((done + count) as i64)
        .bind(end)
        .bind(span)
        .bind(n as i64)
        .bind(limiters.len() as i64)
        .execute(&mut *conn)
        .await
        .unwrap();
        done += count;
        eprintln!(
            "  generated {done} events ({:.0} s)",
            t.elapsed().as_secs_f64()
        );
    }
    drop(conn);
    rebuild_rollups(&pool).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    eprintln!("  rolled up ({:.0} s)", t.elapsed().as_secs_f64());
    pool.close().await;
    t.elapsed()
}

/// Median latency of `f` over `runs` runs, after one warm-up.
async fn median<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f().await;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn statistics(path: &std::path::Path, n: usize, rows: &mut Vec<Row>) {
    let url = path.to_str().unwrap().to_owned();
    let store = SqliteStore::open(&url).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        let l = new_limiter(
            &format!("customer {i}"),
            EnforcementMode::Soft,
            Period::Month,
        );
        store.create_limiter(&l).await.unwrap();
        ids.push(l.id);
    }
    store.close().await;
    let generated = generate(path, n, &ids).await;

    let t = Instant::now();
    let store = SqliteStore::open(&url).await.unwrap();
    let opened = t.elapsed();
    let s: &dyn Store = &store;
    let one = ids[7];
    let now = Utc::now();
    let all_time = UsageQuery {
        limiter_id: Some(one),
        ..UsageQuery::default()
    };
    let last_7d = UsageQuery {
        limiter_id: Some(one),
        from: Some(now - TimeDelta::days(7)),
        to: Some(now),
    };
    let global_7d = UsageQuery {
        from: Some(now - TimeDelta::days(7)),
        to: Some(now),
        ..UsageQuery::default()
    };
    let runs = 21;

    let totals = s.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(totals.requests, n as u64);

    let lim_total = median(runs, || async {
        s.usage_totals(&all_time).await.unwrap();
    })
    .await;
    let lim_7d = median(runs, || async {
        s.usage_totals(&last_7d).await.unwrap();
    })
    .await;
    let lim_models = median(runs, || async {
        s.usage_breakdown(&all_time, GroupBy::Model, 20)
            .await
            .unwrap();
    })
    .await;
    let lim_series = median(runs, || async {
        s.usage_series(&all_time, BucketSize::Day).await.unwrap();
    })
    .await;
    let lim_recent = median(runs, || async {
        s.recent_usage(&all_time, 50).await.unwrap();
    })
    .await;
    let glob_total = median(runs, || async {
        s.usage_totals(&UsageQuery::all()).await.unwrap();
    })
    .await;
    let glob_7d = median(runs, || async {
        s.usage_totals(&global_7d).await.unwrap();
    })
    .await;
    let glob_limiters = median(runs, || async {
        s.usage_breakdown(&UsageQuery::all(), GroupBy::Limiter, 100)
            .await
            .unwrap();
    })
    .await;
    let glob_users = median(runs, || async {
        s.usage_breakdown(&UsageQuery::all(), GroupBy::User, 20)
            .await
            .unwrap();
    })
    .await;
    let glob_series = median(runs, || async {
        s.usage_series(&UsageQuery::all(), BucketSize::Day)
            .await
            .unwrap();
    })
    .await;
    let glob_hours = median(runs, || async {
        s.usage_series(&global_7d, BucketSize::Hour).await.unwrap();
    })
    .await;
    store.close().await;

    let bytes: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| std::fs::metadata(format!("{url}{suffix}")).ok())
        .map(|m| m.len())
        .sum();
    let per_million = bytes as f64 / (n as f64 / 1e6) / (1024.0 * 1024.0);
    let size = format!(
        "{per_million:.0} MiB per million events ({:.2} GiB for {n})",
        bytes as f64 / (1u64 << 30) as f64
    );

    let stats_rows: [(&str, Duration, &'static str); 11] = [
        ("per-limiter totals, all time", lim_total, "≤ 50 ms"),
        (
            "per-limiter totals, last 7 days (unaligned edges read raw events)",
            lim_7d,
            "≤ 50 ms",
        ),
        (
            "per-limiter breakdown by model, all time",
            lim_models,
            "≤ 50 ms",
        ),
        ("per-limiter daily series, all time", lim_series, "≤ 50 ms"),
        ("per-limiter 50 most recent events", lim_recent, "≤ 50 ms"),
        ("global totals, all time", glob_total, "≤ 50 ms"),
        ("global totals, last 7 days", glob_7d, "≤ 50 ms"),
        (
            "global breakdown by limiter (100)",
            glob_limiters,
            "≤ 50 ms",
        ),
        (
            "global breakdown by user, top 20 of 1 000",
            glob_users,
            "≤ 50 ms",
        ),
        ("global daily series, all time", glob_series, "≤ 50 ms"),
        ("global hourly series, last 7 days", glob_hours, "≤ 50 ms"),
    ];
    for (what, d, target) in stats_rows {
        rows.push(Row {
            what: format!("{what} — {n} events, median of {runs}"),
            result: ms(d),
            target,
        });
    }
    rows.push(Row {
        what: format!("open (migrate, load limiters, warm 100 current windows) with {n} events"),
        result: ms(opened),
        target: "—",
    });
    rows.push(Row {
        what: format!("generate {n} events + roll up (bench setup, not the store's path)"),
        result: format!("{:.0} s", generated.as_secs_f64()),
        target: "—",
    });
    rows.push(Row {
        what: "file size".into(),
        result: size,
        target: "report",
    });
}

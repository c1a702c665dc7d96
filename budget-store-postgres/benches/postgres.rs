//! PostgreSQL store benchmark: decisions per second of the store alone, database round trips
//! per request at a steady rate (one replica, and three sharing one database), and statistics
//! latency at 10 million events. Prints a Markdown table; no assertions on times.
//!
//! ```text
//! cargo bench -p budget-store-postgres                        # 10 million events
//! BENCH_EVENTS=1000000 cargo bench -p budget-store-postgres   # quick mode
//! ```
//!
//! It starts a private PostgreSQL (`initdb` + `postgres` in a temporary folder, as the tests
//! do) with durable settings (`fsync=on`, `full_page_writes=on`, `synchronous_commit=on`), or
//! skips when PostgreSQL is not installed. Knobs (environment): `BENCH_EVENTS` (events for the
//! statistics rows, default 10 000 000), `BENCH_SECONDS` (length of each decisions run,
//! default 5), `BENCH_RATE_SECONDS` (length of each paced run, default 10), `BENCH_RATE`
//! (requests per second of the paced runs, default 1 000), `BENCH_ONLY=decisions|trips|stats`,
//! `BENCH_ROLLUPS=off` (decisions and round trips with the roll-up trigger disabled, to see
//! what it costs the usage writer; statistics always keep it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use budget_core::store::prelude::*;
use budget_core::store::{
    BucketSize, GroupBy, ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord,
};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{EnforcementMode, Limiter, LimiterId, Money, NewLimiter, Period};
use budget_store_postgres::testing::TestCluster;
use budget_store_postgres::{PostgresStore, PostgresStoreOptions};
use chrono::{Duration as TimeDelta, Utc};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn new_limiter(name: &str, mode: EnforcementMode) -> Limiter {
    let mut new = NewLimiter::new(
        name,
        Money::from_dollars(1_000_000_000),
        Period::Month,
        "https://api.openai.com",
    );
    new.mode = Some(mode);
    Limiter::create(new, Utc::now()).unwrap()
}

fn usage() -> Usage {
    Usage {
        model: Some("gpt-4o".into()),
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
    let seconds = env_usize("BENCH_SECONDS", 5) as u64;
    let rate_seconds = env_usize("BENCH_RATE_SECONDS", 10) as u64;
    let rate = env_usize("BENCH_RATE", 1_000) as u64;
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let Some(cluster) = TestCluster::start(&[
        ("fsync", "on"),
        ("full_page_writes", "on"),
        ("synchronous_commit", "on"),
        ("shared_buffers", "512MB"),
        ("work_mem", "64MB"),
        ("maintenance_work_mem", "512MB"),
        ("max_wal_size", "8GB"),
    ]) else {
        eprintln!("SKIPPED: PostgreSQL is not installed (see budget_store_postgres::testing)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    rt.block_on(async {
        if only.is_empty() || only == "decisions" {
            for tasks in [1, 32] {
                let url = cluster.fresh_database().await;
                decisions(&url, tasks, seconds, &mut rows).await;
            }
        }
        if only.is_empty() || only == "trips" {
            // One replica at `rate`; three sharing `rate`; three at `rate` each.
            for (replicas, total) in [(1, rate), (3, rate), (3, 3 * rate)] {
                let url = cluster.fresh_database().await;
                round_trips(&url, replicas, total, rate_seconds, &mut rows).await;
            }
        }
        if only.is_empty() || only == "stats" {
            let url = cluster.fresh_database().await;
            statistics(&url, events, &mut rows).await;
        }
    });
    println!();
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.what, r.result, r.target);
    }
}

/// One request: reserve 5 cents, settle 1 cent. `false` when refused.
async fn request(store: &PostgresStore, limiter: LimiterId, u: &Usage) -> bool {
    let at = Utc::now();
    let req = ReserveRequest::new(limiter, Money::from_cents(5), at);
    match store.reserve(&req).await.unwrap() {
        ReserveOutcome::Reserved(r) => {
            let record = UsageRecord::new(
                limiter,
                at,
                Endpoint::ChatCompletions,
                u,
                Some(Money::from_cents(1)),
            );
            store.settle(&r, record).await.unwrap();
            true
        }
        ReserveOutcome::Denied(_) => false,
    }
}

/// reserve + settle as fast as `tasks` tasks can on one strict limiter, for `seconds`.
async fn decisions(url: &str, tasks: usize, seconds: u64, rows: &mut Vec<Row>) {
    // The writer may fall behind a burst this fast: let it queue everything.
    let options = PostgresStoreOptions::new(url).with_max_unsaved_events(50_000_000);
    let store = PostgresStore::open_with(options).await.unwrap();
    let note = rollups(&store).await;
    let l = new_limiter("decisions", EnforcementMode::Strict);
    store.create_limiter(&l).await.unwrap();
    // Warm up: the first grant of the window.
    request(&store, l.id, &usage()).await;
    let trips0 = store.round_trips();
    let done = Arc::new(AtomicU64::new(0));
    let denied = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let deadline = t + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (store, done, denied) = (store.clone(), done.clone(), denied.clone());
        handles.push(tokio::spawn(async move {
            let u = usage();
            while Instant::now() < deadline {
                if request(&store, l.id, &u).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    denied.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let took = t.elapsed();
    let trips = store.round_trips() - trips0;
    let n = done.load(Ordering::Relaxed);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM usage_events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let t_close = Instant::now();
    store.close().await;
    let drained = t_close.elapsed();
    let backlog = (n + 1).saturating_sub(written as u64);
    rows.push(Row {
        what: format!(
            "store decisions (reserve + settle) on one strict limiter, {tasks} task{}, \
             {seconds} s{note}",
            if tasks == 1 { "" } else { "s" }
        ),
        result: format!(
            "{:.1}k/s ({n} admitted, {} refused; {trips} round trips while deciding)",
            n as f64 / took.as_secs_f64() / 1e3,
            denied.load(Ordering::Relaxed),
        ),
        target: "report",
    });
    rows.push(Row {
        what: format!("usage writer draining that run's backlog at close{note}"),
        result: format!(
            "{:.1}k events/s ({backlog} events in {:.1} s)",
            backlog as f64 / drained.as_secs_f64() / 1e3,
            drained.as_secs_f64()
        ),
        target: "report",
    });
}

/// With `BENCH_ROLLUPS=off`, disable the roll-up trigger of the store's database and say so.
async fn rollups(store: &PostgresStore) -> &'static str {
    if std::env::var("BENCH_ROLLUPS").is_ok_and(|v| v == "off") {
        sqlx::query("ALTER TABLE usage_events DISABLE TRIGGER usage_events_rollups_insert")
            .execute(store.pool())
            .await
            .unwrap();
        " (roll-up trigger off)"
    } else {
        ""
    }
}

/// `rate` requests per second in total for `seconds`, spread over `replicas` stores on one
/// database and one strict limiter, each request held 20 ms (in flight) before it settles.
async fn round_trips(url: &str, replicas: usize, rate: u64, seconds: u64, rows: &mut Vec<Row>) {
    let first = PostgresStore::open(url).await.unwrap();
    let note = rollups(&first).await;
    let l = new_limiter("paced", EnforcementMode::Strict);
    first.create_limiter(&l).await.unwrap();
    let mut stores = vec![first];
    for _ in 1..replicas {
        stores.push(PostgresStore::open(url).await.unwrap());
    }
    // Warm up: each replica's first grant, then let the first reports pass.
    for s in &stores {
        request(s, l.id, &usage()).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let trips0: u64 = stores.iter().map(PostgresStore::round_trips).sum();
    let done = Arc::new(AtomicU64::new(0));
    let denied = Arc::new(AtomicU64::new(0));
    let per = rate / replicas as u64;
    let t = Instant::now();
    let mut pacers = Vec::new();
    for s in &stores {
        let (s, done, denied) = (s.clone(), done.clone(), denied.clone());
        pacers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1) / per as u32);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = tokio::task::JoinSet::new();
            for _ in 0..per * seconds {
                tick.tick().await;
                let (s, done, denied) = (s.clone(), done.clone(), denied.clone());
                inflight.spawn(async move {
                    let at = Utc::now();
                    let req = ReserveRequest::new(l.id, Money::from_cents(5), at);
                    match s.reserve(&req).await.unwrap() {
                        ReserveOutcome::Reserved(r) => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            let record = UsageRecord::new(
                                l.id,
                                at,
                                Endpoint::ChatCompletions,
                                &usage(),
                                Some(Money::from_cents(1)),
                            );
                            s.settle(&r, record).await.unwrap();
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        ReserveOutcome::Denied(_) => {
                            denied.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                while inflight.try_join_next().is_some() {}
            }
            while inflight.join_next().await.is_some() {}
        }));
    }
    for p in pacers {
        p.await.unwrap();
    }
    let took = t.elapsed();
    let trips: u64 = stores.iter().map(PostgresStore::round_trips).sum::<u64>() - trips0;
    let n = done.load(Ordering::Relaxed);
    for s in &stores {
        s.close().await;
    }
    let what = if replicas == 1 {
        format!("database round trips per request, one replica at {rate} req/s, {seconds} s")
    } else {
        format!(
            "database round trips per request, {replicas} replicas (stores) on one database \
             and limiter, {rate} req/s in all ({} req/s each), {seconds} s",
            rate / replicas as u64
        )
    } + note;
    rows.push(Row {
        what,
        result: format!(
            "{:.4} ({trips} round trips / {n} requests at {:.0} req/s; {} refused)",
            trips as f64 / n.max(1) as f64,
            n as f64 / took.as_secs_f64(),
            denied.load(Ordering::Relaxed)
        ),
        target: "≤ 0.05",
    });
}

/// Fill the database with `n` events over the last 90 days (100 limiters, 5 models, 10 users
/// per limiter, a quarter of events without a user), the SQLite benchmark's data set, with
/// `INSERT … SELECT … generate_series` statements of a million rows each: the roll-up trigger
/// rolls each statement's rows up as the store's own writes are. Then `VACUUM ANALYZE`.
async fn generate(pool: &sqlx::PgPool, n: usize, limiters: &[LimiterId]) -> (Duration, Duration) {
    let t = Instant::now();
    let ids: Vec<uuid::Uuid> = limiters.iter().map(|l| l.0).collect();
    let span: i64 = 90 * 86_400 * 1_000_000;
    let step = span / n as i64;
    let start = Utc::now() - TimeDelta::microseconds(span);
    let chunk = 1_000_000.min(n);
    let mut done = 0;
    while done < n {
        let count = chunk.min(n - done);
        sqlx::query(
            "INSERT INTO usage_events (id, at, limiter_id, model, \"user\", endpoint, \
                 prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost, \
                 unpriced, estimated, status, streamed, latency_ms)
             SELECT gen_random_uuid(), $3 + (i * $4) * interval '1 microsecond',
                    ($5::uuid[])[(i % $6) + 1],
                    CASE i % 5 WHEN 0 THEN 'gpt-4o' WHEN 1 THEN 'gpt-4o-mini' WHEN 2 THEN 'o3-mini'
                               WHEN 3 THEN 'gpt-4.1' ELSE 'text-embedding-3-small' END,
                    CASE WHEN i % 4 = 0 THEN NULL
                         ELSE 'user-' || ((i % 100) * 10 + (i / 100) % 10) END,
                    'chat_completions', 500 + i % 3000, (i % 3) * 100, 100 + i % 700,
                    (i % 7) * 10, 1000 + (i % 997) * 1000, i % 5 = 4 AND i % 1000 = 4,
                    i % 200 = 0, CASE WHEN i % 50 = 0 THEN 500 ELSE 200 END, i % 2 = 1,
                    200 + i % 5000
             FROM generate_series($1::bigint, $2::bigint - 1) AS i",
        )
        .bind(done as i64)
        .bind((done + count) as i64)
        .bind(start)
        .bind(step)
        .bind(&ids)
        .bind(ids.len() as i64)
        .execute(pool)
        .await
        .unwrap();
        done += count;
        eprintln!(
            "  generated and rolled up {done} events ({:.0} s)",
            t.elapsed().as_secs_f64()
        );
    }
    let generated = t.elapsed();
    sqlx::query("VACUUM ANALYZE").execute(pool).await.unwrap();
    eprintln!("  vacuumed ({:.0} s)", t.elapsed().as_secs_f64());
    (generated, t.elapsed() - generated)
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

async fn statistics(url: &str, n: usize, rows: &mut Vec<Row>) {
    let store = PostgresStore::open(url).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..100 {
        let l = new_limiter(&format!("customer {i}"), EnforcementMode::Soft);
        store.create_limiter(&l).await.unwrap();
        ids.push(l.id);
    }
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let (generated, vacuumed) = generate(&pool, n, &ids).await;

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
    let global_30d = UsageQuery {
        from: Some(now - TimeDelta::days(30)),
        to: Some(now),
        ..UsageQuery::default()
    };
    let runs = 21;

    let totals = s.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(
        totals.requests, n as u64,
        "every generated event is counted"
    );

    macro_rules! time {
        ($e:expr) => {
            median(runs, || async {
                $e.await.unwrap();
            })
            .await
        };
    }
    let stats_rows: Vec<(&str, Duration)> = vec![
        (
            "per-limiter totals, all time",
            time!(s.usage_totals(&all_time)),
        ),
        (
            "per-limiter totals, last 7 days (unaligned edges read raw events)",
            time!(s.usage_totals(&last_7d)),
        ),
        (
            "per-limiter breakdown by model, all time",
            time!(s.usage_breakdown(&all_time, GroupBy::Model, 20)),
        ),
        (
            "per-limiter daily series, all time",
            time!(s.usage_series(&all_time, BucketSize::Day)),
        ),
        (
            "per-limiter 50 most recent events",
            time!(s.recent_usage(&all_time, 50)),
        ),
        (
            "global totals, all time",
            time!(s.usage_totals(&UsageQuery::all())),
        ),
        (
            "global totals, last 30 days",
            time!(s.usage_totals(&global_30d)),
        ),
        (
            "global totals, last 7 days",
            time!(s.usage_totals(&global_7d)),
        ),
        (
            "global breakdown by limiter (100)",
            time!(s.usage_breakdown(&UsageQuery::all(), GroupBy::Limiter, 100)),
        ),
        (
            "global breakdown by model, all time",
            time!(s.usage_breakdown(&UsageQuery::all(), GroupBy::Model, 20)),
        ),
        (
            "global breakdown by user, top 20 of 1 000",
            time!(s.usage_breakdown(&UsageQuery::all(), GroupBy::User, 20)),
        ),
        (
            "global daily series, all time",
            time!(s.usage_series(&UsageQuery::all(), BucketSize::Day)),
        ),
        (
            "global hourly series, last 7 days",
            time!(s.usage_series(&global_7d, BucketSize::Hour)),
        ),
    ];
    for (what, d) in stats_rows {
        rows.push(Row {
            what: format!("{what} — {n} events, median of {runs}"),
            result: ms(d),
            target: "≤ 50 ms",
        });
    }
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&pool)
        .await
        .unwrap();
    store.close().await;
    pool.close().await;
    rows.push(Row {
        what: format!(
            "generate {n} events with the roll-up trigger on (bench setup, statements of 1M rows)"
        ),
        result: format!(
            "{:.0} s (+ {:.0} s VACUUM ANALYZE)",
            generated.as_secs_f64(),
            vacuumed.as_secs_f64()
        ),
        target: "—",
    });
    rows.push(Row {
        what: "database size".into(),
        result: format!(
            "{:.0} MiB per million events ({:.2} GiB for {n})",
            bytes as f64 / (n as f64 / 1e6) / (1024.0 * 1024.0),
            bytes as f64 / (1u64 << 30) as f64
        ),
        target: "report",
    });
}

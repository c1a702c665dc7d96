//! The PostgreSQL store's statistics (roll-ups for aligned hours, days and months, raw events
//! at the edges) answer exactly what `MemoryStore` answers for the same records: totals,
//! every breakdown, every series bucket size and recent records, over many random ranges,
//! before and after a limiter is purged. Skipped, saying so, when PostgreSQL is missing.

use budget_core::store::prelude::*;
use budget_core::store::{
    BucketSize, GroupBy, MemoryStore, ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord,
};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{EnforcementMode, Limiter, LimiterId, Money, NewLimiter, Period};
use budget_store_postgres::testing::TestCluster;
use budget_store_postgres::PostgresStore;
use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};

/// splitmix64: a small deterministic generator (the seed is printed on failure).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "o3-mini", "Gpt-4o"];
const USERS: [&str; 7] = ["alice", "bob", "carol", "dave", "Éve", "zed", "_x"];

fn limiter(name: &str) -> Limiter {
    let mut new = NewLimiter::new(
        name,
        Money::from_dollars(1_000_000),
        Period::Month,
        "https://api.openai.com",
    );
    new.mode = Some(EnforcementMode::Soft);
    Limiter::create(new, Utc::now()).unwrap()
}

/// A record at `at` (whole microseconds, as stored) with random labels and counts.
fn record(rng: &mut Rng, limiter: LimiterId, at: DateTime<Utc>) -> UsageRecord {
    let usage = Usage {
        model: (rng.below(6) != 0).then(|| (*rng.pick(&MODELS)).to_owned()),
        prompt_tokens: rng.below(5_000),
        completion_tokens: rng.below(2_000),
        cached_tokens: rng.below(300),
        reasoning_tokens: rng.below(100),
        estimated: rng.below(10) == 0,
        ..Usage::default()
    };
    let cost = (rng.below(12) != 0).then(|| Money::from_nanos(rng.below(50_000_000) as i64));
    let mut r = UsageRecord::new(limiter, at, Endpoint::ChatCompletions, &usage, cost);
    r.user = (rng.below(4) != 0).then(|| (*rng.pick(&USERS)).to_owned());
    r.status = *rng.pick(&[200, 200, 200, 429, 500]);
    r.streamed = rng.below(2) == 0;
    r.latency_ms = rng.below(10_000);
    r
}

/// A range end: an event's own time (± a microsecond or a few nanoseconds), an aligned hour,
/// day or month, or a random time.
fn bound(rng: &mut Rng, times: &[DateTime<Utc>], start: DateTime<Utc>) -> DateTime<Utc> {
    let t = *rng.pick(times);
    match rng.below(7) {
        0 => t,
        1 => t + Duration::microseconds(1),
        2 => t + Duration::nanoseconds(rng.below(999) as i64 + 1),
        3 => t.duration_trunc(Duration::hours(1)).unwrap(),
        4 => t.duration_trunc(Duration::days(1)).unwrap(),
        5 => Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        _ => start + Duration::seconds(rng.below(40 * 86_400) as i64),
    }
}

struct Stores {
    pg: PostgresStore,
    mem: MemoryStore,
}

impl Stores {
    async fn compare(&self, rng: &mut Rng, q: &UsageQuery, what: &str) {
        let (pg, mem): (&dyn Store, &dyn Store) = (&self.pg, &self.mem);
        assert_eq!(
            pg.usage_totals(q).await.unwrap(),
            mem.usage_totals(q).await.unwrap(),
            "totals {what} {q:?}"
        );
        for by in [GroupBy::Limiter, GroupBy::Model, GroupBy::User] {
            let limit = *rng.pick(&[1, 2, 3, 5, 100]);
            assert_eq!(
                pg.usage_breakdown(q, by, limit).await.unwrap(),
                mem.usage_breakdown(q, by, limit).await.unwrap(),
                "breakdown by {by:?} (limit {limit}) {what} {q:?}"
            );
        }
        for b in [BucketSize::Minute, BucketSize::Hour, BucketSize::Day] {
            assert_eq!(
                pg.usage_series(q, b).await.unwrap(),
                mem.usage_series(q, b).await.unwrap(),
                "series by {b:?} {what} {q:?}"
            );
        }
        let limit = *rng.pick(&[1, 7, 50]);
        assert_eq!(
            pg.recent_usage(q, limit).await.unwrap(),
            mem.recent_usage(q, limit).await.unwrap(),
            "recent ({limit}) {what} {q:?}"
        );
    }
}

fn seeded(test: &str) -> Rng {
    let seed = std::env::var("STATS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_micros() as u64);
    eprintln!("{test}: seed {seed} (STATS_SEED={seed} repeats it)");
    Rng(seed)
}

/// The start of the records' ~40 days, from mid-February (a month edge inside).
fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 10, 7, 13, 0).unwrap()
}

/// `n` records over ~40 days at whole microseconds, some sharing a time exactly (ties in
/// `recent` are broken by id), and their times.
fn records(
    rng: &mut Rng,
    limiters: &[Limiter],
    n: usize,
) -> (Vec<UsageRecord>, Vec<DateTime<Utc>>) {
    let mut times: Vec<DateTime<Utc>> = Vec::new();
    let mut out = Vec::new();
    for _ in 0..n {
        let at = if !times.is_empty() && rng.below(20) == 0 {
            *rng.pick(&times)
        } else {
            start() + Duration::microseconds(rng.below(40 * 86_400 * 1_000_000) as i64)
        };
        times.push(at);
        let l = rng.pick(limiters).id;
        out.push(record(rng, l, at));
    }
    (out, times)
}

/// A random query: one limiter or all, ends open or from [`bound`], sometimes reversed.
fn query(rng: &mut Rng, limiters: &[Limiter], times: &[DateTime<Utc>]) -> UsageQuery {
    let limiter_id = (rng.below(3) != 0).then(|| rng.pick(limiters).id);
    let mut from = (rng.below(5) != 0).then(|| bound(rng, times, start()));
    let mut to = (rng.below(5) != 0).then(|| bound(rng, times, start()));
    if let (Some(f), Some(t)) = (from, to) {
        if f > t && rng.below(4) != 0 {
            (from, to) = (Some(t), Some(f));
        }
    }
    UsageQuery {
        limiter_id,
        from,
        to,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statistics_match_memory_store() {
    let Some(cluster) = TestCluster::shared("postgres stats_equivalence") else {
        return;
    };
    let mut rng = seeded("statistics_match_memory_store");
    let url = cluster.fresh_database().await;
    let stores = Stores {
        pg: PostgresStore::open(&url).await.unwrap(),
        mem: MemoryStore::new(),
    };
    let limiters: Vec<Limiter> = (0..4).map(|i| limiter(&format!("stats {i}"))).collect();
    for l in &limiters {
        stores.pg.create_limiter(l).await.unwrap();
        stores.mem.create_limiter(l).await.unwrap();
    }
    // A second replica on the same database writes part of the usage: its batches and the
    // first replica's upsert the same roll-up rows and user sets concurrently.
    let other = PostgresStore::open(&url).await.unwrap();
    let (records, times) = records(&mut rng, &limiters, 2_500);

    // Half through reserve + settle (written by the stores' batching writers: many rows per
    // INSERT), half through record_usage (one INSERT each), a few at a time, on either replica.
    for chunk in records.chunks(25) {
        let mut direct = Vec::new();
        for r in chunk {
            let pg = if rng.below(2) == 0 {
                &stores.pg
            } else {
                &other
            };
            if rng.below(2) == 0 {
                let req = ReserveRequest::new(r.limiter_id, Money::from_cents(1), r.at);
                let ReserveOutcome::Reserved(res) = pg.reserve(&req).await.unwrap() else {
                    panic!("a soft limiter with $1M refused");
                };
                pg.settle(&res, r.clone()).await.unwrap();
            } else {
                direct.push(pg.record_usage(r.clone()));
            }
        }
        for result in futures::future::join_all(direct).await {
            result.unwrap();
        }
    }
    // Its last usage written.
    other.close().await;
    for r in &records {
        stores.mem.record_usage(r.clone()).await.unwrap();
    }

    stores.compare(&mut rng, &UsageQuery::all(), "all").await;
    for _ in 0..150 {
        let q = query(&mut rng, &limiters, &times);
        stores.compare(&mut rng, &q, "random").await;
    }

    // Purging a limiter takes its usage out of every roll-up (the global ones recounted).
    let gone = limiters[1].id;
    stores.pg.delete_limiter(gone, true).await.unwrap();
    stores.mem.delete_limiter(gone, true).await.unwrap();
    stores
        .compare(&mut rng, &UsageQuery::all(), "after purge")
        .await;
    for _ in 0..60 {
        let q = query(&mut rng, &limiters, &times);
        stores.compare(&mut rng, &q, "after purge").await;
    }
    stores.pg.close().await;
}

/// A database with usage from before the roll-ups (migration 0001 only) is rolled up when the
/// store opens it and applies 0002.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_rolls_up_existing_usage() {
    let Some(cluster) = TestCluster::shared("postgres stats_equivalence (upgrade)") else {
        return;
    };
    let mut rng = seeded("upgrade_rolls_up_existing_usage");
    let url = cluster.fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut first = sqlx::migrate!();
    first.migrations = first
        .migrations
        .iter()
        .filter(|m| m.version == 1)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    first.run(&pool).await.unwrap();
    let mem = MemoryStore::new();
    let limiters: Vec<Limiter> = (0..3).map(|i| limiter(&format!("old {i}"))).collect();
    for l in &limiters {
        mem.create_limiter(l).await.unwrap();
    }
    let (records, times) = records(&mut rng, &limiters, 800);
    for r in &records {
        let endpoint = serde_json::to_value(r.endpoint).unwrap();
        sqlx::query(
            "INSERT INTO usage_events (id, at, limiter_id, model, \"user\", endpoint, \
             prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, cost, unpriced, \
             estimated, status, streamed, latency_ms, price_version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(r.id)
        .bind(r.at)
        .bind(r.limiter_id.0)
        .bind(r.model.as_deref())
        .bind(r.user.as_deref())
        .bind(endpoint.as_str().unwrap())
        .bind(r.prompt_tokens as i64)
        .bind(r.cached_tokens as i64)
        .bind(r.completion_tokens as i64)
        .bind(r.reasoning_tokens as i64)
        .bind(r.cost.as_nanos())
        .bind(r.unpriced)
        .bind(r.estimated)
        .bind(i32::from(r.status))
        .bind(r.streamed)
        .bind(r.latency_ms as i64)
        .bind(r.price_version.as_deref())
        .execute(&pool)
        .await
        .unwrap();
        mem.record_usage(r.clone()).await.unwrap();
    }
    pool.close().await;

    let stores = Stores {
        pg: PostgresStore::open(&url).await.unwrap(),
        mem,
    };
    stores
        .compare(&mut rng, &UsageQuery::all(), "upgraded")
        .await;
    for _ in 0..40 {
        let q = query(&mut rng, &limiters, &times);
        stores.compare(&mut rng, &q, "upgraded").await;
    }
    stores.pg.close().await;
}

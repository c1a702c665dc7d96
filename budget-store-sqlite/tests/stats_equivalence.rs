//! The roll-up statistics (global and per limiter, totals, breakdowns and series, ranges with
//! unaligned edges and ranges across hour, day and month boundaries) equal the in-memory
//! reference store's answers on the same random usage, before and after a purge.

use budget_core::store::prelude::*;
use budget_core::store::{BucketSize, GroupBy, UsageQuery, UsageRecord};
use budget_core::usage::Endpoint;
use budget_core::{Limiter, LimiterId, MemoryStore, Money, NewLimiter, Period};
use budget_store_sqlite::{SqliteStore, SqliteStoreOptions};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 9, 28, 0, 0, 0).unwrap()
}

/// 75 days, so ranges cross month, day and hour boundaries.
const SPAN_MINUTES: u64 = 75 * 24 * 60;

fn record(rng: &mut Rng, limiters: &[LimiterId]) -> UsageRecord {
    const MODELS: [Option<&str>; 4] = [Some("gpt-4o"), Some("gpt-4o-mini"), Some("o3"), None];
    const USERS: [Option<&str>; 6] = [
        Some("alice"),
        Some("bob"),
        Some("carol"),
        Some("dave"),
        Some("erin"),
        None,
    ];
    // Events cluster in a few hours and days so buckets share users across limiters.
    let minute = if rng.below(3) == 0 {
        rng.below(SPAN_MINUTES)
    } else {
        (rng.below(SPAN_MINUTES / 600) * 600 + rng.below(180)) % SPAN_MINUTES
    };
    let at = start() + Duration::minutes(minute as i64) + Duration::seconds(rng.below(60) as i64);
    UsageRecord {
        id: Uuid::new_v4(),
        at,
        limiter_id: limiters[rng.below(limiters.len() as u64) as usize],
        model: MODELS[rng.below(4) as usize].map(String::from),
        user: USERS[rng.below(6) as usize].map(String::from),
        endpoint: Endpoint::ChatCompletions,
        prompt_tokens: rng.below(2_000),
        cached_tokens: rng.below(100),
        completion_tokens: rng.below(800),
        reasoning_tokens: rng.below(50),
        cost: Money::from_nanos(rng.below(5_000_000) as i64),
        unpriced: rng.below(10) == 0,
        estimated: rng.below(7) == 0,
        status: if rng.below(12) == 0 { 500 } else { 200 },
        streamed: rng.below(2) == 0,
        latency_ms: rng.below(3_000),
        price_version: None,
    }
}

/// Random ranges: unaligned, hour-, day- and month-aligned, open-ended.
fn queries(rng: &mut Rng, limiters: &[LimiterId]) -> Vec<UsageQuery> {
    let mut out = vec![UsageQuery::all()];
    for i in 0..60 {
        let point = |rng: &mut Rng| {
            let m = rng.below(SPAN_MINUTES + 4 * 24 * 60) as i64 - 2 * 24 * 60;
            let t = start() + Duration::minutes(m);
            match i % 4 {
                0 => t + Duration::seconds(rng.below(60) as i64),
                1 => BucketSize::Hour.floor(t),
                2 => BucketSize::Day.floor(t),
                _ => t,
            }
        };
        let (a, b) = (point(rng), point(rng));
        let (from, to) = (a.min(b), a.max(b));
        let limiter_id = (i % 3 == 0).then(|| limiters[i % limiters.len()]);
        out.push(UsageQuery {
            limiter_id,
            from: (i % 10 != 7).then_some(from),
            to: (i % 10 != 8).then_some(to),
        });
    }
    // Short ranges inside one hour and one day, and across a day boundary.
    let h = start() + Duration::hours(10 * 24 + 3);
    for (from, to) in [
        (h + Duration::minutes(5), h + Duration::minutes(50)),
        (h + Duration::minutes(5), h + Duration::hours(5)),
        (h + Duration::hours(18), h + Duration::hours(26)),
        (
            h + Duration::hours(18) + Duration::minutes(7),
            h + Duration::hours(45),
        ),
    ] {
        out.push(UsageQuery {
            limiter_id: None,
            from: Some(from),
            to: Some(to),
        });
    }
    out
}

async fn assert_same(sqlite: &dyn Store, memory: &dyn Store, qs: &[UsageQuery]) {
    for q in qs {
        assert_eq!(
            sqlite.usage_totals(q).await.unwrap(),
            memory.usage_totals(q).await.unwrap(),
            "totals {q:?}"
        );
        for bucket in [BucketSize::Hour, BucketSize::Day] {
            assert_eq!(
                sqlite.usage_series(q, bucket).await.unwrap(),
                memory.usage_series(q, bucket).await.unwrap(),
                "{bucket:?} series {q:?}"
            );
        }
        for by in [GroupBy::Limiter, GroupBy::Model, GroupBy::User] {
            assert_eq!(
                sqlite.usage_breakdown(q, by, 100).await.unwrap(),
                memory.usage_breakdown(q, by, 100).await.unwrap(),
                "{by:?} breakdown {q:?}"
            );
        }
    }
}

#[tokio::test]
async fn rollup_statistics_equal_the_reference_store() {
    // Small batches: roll-up rows and (bucket, user) pairs meet again across commits.
    let sqlite = SqliteStore::open_with(
        SqliteStoreOptions::new("sqlite::memory:")
            .with_batch_size(7)
            .with_flush_interval(std::time::Duration::from_millis(5)),
    )
    .await
    .unwrap();
    let memory = MemoryStore::new();
    let mut limiters = Vec::new();
    for i in 0..3 {
        let l = Limiter::create(
            NewLimiter::new(
                format!("limiter {i}"),
                Money::from_dollars(1_000_000),
                Period::Month,
                "https://api.openai.com",
            ),
            start() - Duration::days(30),
        )
        .unwrap();
        sqlite.create_limiter(&l).await.unwrap();
        memory.create_limiter(&l).await.unwrap();
        limiters.push(l.id);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..1_500 {
        let r = record(&mut rng, &limiters);
        sqlite.record_usage(r.clone()).await.unwrap();
        memory.record_usage(r).await.unwrap();
    }
    let qs = queries(&mut rng, &limiters);
    assert_same(&sqlite, &memory, &qs).await;

    // Purging a limiter takes its sums and the users only it saw out of the global roll-ups.
    sqlite.delete_limiter(limiters[1], true).await.unwrap();
    memory.delete_limiter(limiters[1], true).await.unwrap();
    let qs: Vec<_> = qs
        .into_iter()
        .filter(|q| q.limiter_id != Some(limiters[1]))
        .collect();
    assert_same(&sqlite, &memory, &qs).await;

    // Usage after the purge lands on the same global rows again.
    for _ in 0..300 {
        let mut r = record(&mut rng, &limiters);
        if r.limiter_id == limiters[1] {
            r.limiter_id = limiters[0];
        }
        sqlite.record_usage(r.clone()).await.unwrap();
        memory.record_usage(r).await.unwrap();
    }
    assert_same(&sqlite, &memory, &qs).await;

    // Rebuilding every roll-up from the raw events gives the same tables back.
    sqlite.flush().await.unwrap();
    let tables = [
        "usage_hourly",
        "usage_daily",
        "usage_monthly",
        "usage_global_hourly",
        "usage_global_daily",
        "usage_global_monthly",
        "usage_users_hourly",
        "usage_users_daily",
        "usage_users_monthly",
    ];
    let mut before = Vec::new();
    for t in tables {
        before.push(dump(&sqlite, t).await);
    }
    budget_store_sqlite::rebuild_rollups(sqlite.pool())
        .await
        .unwrap();
    for (t, b) in tables.into_iter().zip(before) {
        assert!(!b.is_empty(), "{t} is filled");
        assert_eq!(dump(&sqlite, t).await, b, "{t} after rebuild_rollups");
    }
    sqlite.close().await;
}

/// Every row of `table` as text, in key order.
async fn dump(store: &SqliteStore, table: &str) -> Vec<String> {
    let sql = format!("SELECT * FROM {table}");
    let rows = sqlx::query(&sql).fetch_all(store.pool()).await.unwrap();
    let mut out: Vec<String> = rows
        .iter()
        .map(|row| {
            use sqlx::{Row, ValueRef};
            (0..row.columns().len())
                .map(|i| {
                    let raw = row.try_get_raw(i).unwrap();
                    if raw.is_null() {
                        "NULL".to_owned()
                    } else if let Ok(n) = row.try_get::<i64, _>(i) {
                        n.to_string()
                    } else {
                        row.try_get::<String, _>(i).unwrap()
                    }
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    out.sort();
    out
}

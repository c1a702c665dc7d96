//! A database created by the first schema version, with data, upgrades in place on open.

use budget_core::store::prelude::*;
use budget_core::store::{primary_window_spend, LimiterRef};
use budget_core::store::{
    BucketSize, GroupBy, ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord,
};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{BudgetStore, LimiterId, Money, Period};
use budget_store_sqlite::SqliteStore;
use chrono::{TimeZone, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

const LIMITER: &str = "6f1c2b9e-3a4d-4e5f-8a9b-0c1d2e3f4a5b";
const CODE: &str = "0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn v1_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");

    // Build a database with only migration 0001, the way sqlx records it.
    let v1 = dir.path().join("v1");
    std::fs::create_dir(&v1).unwrap();
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/0001_initial.sql");
    std::fs::copy(src, v1.join("0001_initial.sql")).unwrap();
    let pool = SqlitePoolOptions::new()
        .connect_with(
            SqliteConnectOptions::new()
                .filename(&db)
                .create_if_missing(true),
        )
        .await
        .unwrap();
    Migrator::new(v1.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();

    // v1 data: one limiter, three events in October 2025 (one without a user).
    let t = |h: u32, m: u32| {
        Utc.with_ymd_and_hms(2025, 10, 10, h, m, 0)
            .unwrap()
            .timestamp_micros()
    };
    sqlx::query(
        "INSERT INTO limiters VALUES (?, 'Old customer', ?, 20000000000, 'month', 'UTC', \
         'https://api.openai.com/', 'openai', 'soft', 'admit', 1, ?, ?, NULL)",
    )
    .bind(LIMITER)
    .bind(CODE)
    .bind(t(0, 0))
    .bind(t(0, 0))
    .execute(&pool)
    .await
    .unwrap();
    for (i, (at, model, user, cost)) in [
        (t(9, 15), "gpt-4o", Some("alice"), 1_500_000_000i64),
        (t(9, 45), "gpt-4o-mini", None, 250_000_000),
        (t(13, 5), "gpt-4o", Some("bob"), 2_000_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        sqlx::query(
            "INSERT INTO usage_events (id, at, limiter_id, model, user, endpoint, prompt_tokens, \
             cached_tokens, completion_tokens, reasoning_tokens, cost, unpriced, estimated, status, \
             streamed, latency_ms) VALUES (?, ?, ?, ?, ?, 'chat_completions', 100, 0, 50, 0, ?, 0, 0, 200, 0, 12)",
        )
        .bind(format!("00000000-0000-4000-8000-00000000000{i}"))
        .bind(at)
        .bind(LIMITER)
        .bind(model)
        .bind(user)
        .bind(cost)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    // Open with the current code: 0002 and 0003 run and roll the old events up.
    let url = format!("sqlite:{}", db.display());
    let store = SqliteStore::open(&url).await.unwrap();
    let id: LimiterId = LIMITER.parse().unwrap();
    let l = store
        .find_limiter(LimiterRef::Code(CODE))
        .await
        .unwrap()
        .expect("limiter survives");
    assert_eq!(
        (l.id, l.name.as_str(), l.period_type),
        (id, "Old customer", Period::Month)
    );
    assert_eq!(l.budget_limit, Money::from_dollars(20));
    // 0004: old limiters follow the server's unmetered-endpoint policy.
    assert_eq!(l.unmetered_endpoints, None);

    let all = store.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(
        (all.requests, all.cost, all.distinct_users),
        (3, "3.75".parse().unwrap(), 2)
    );
    let models = store
        .usage_breakdown(&UsageQuery::all(), GroupBy::Model, 10)
        .await
        .unwrap();
    assert_eq!(models[0].key.as_deref(), Some("gpt-4o"));
    assert_eq!(models[0].totals.cost, "3.50".parse().unwrap());
    let rolled: i64 = sqlx::query_scalar("SELECT SUM(requests) FROM usage_monthly")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rolled, 3, "old events were rolled up");
    // 0003 back-fills the global roll-ups and their per-bucket distinct users.
    let global: Vec<(i64, i64, i64)> = sqlx::query_as(
        "SELECT hour_start, requests, users FROM usage_global_hourly ORDER BY hour_start",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        global,
        vec![(t(9, 0), 2, 1), (t(13, 0), 1, 1)],
        "09:00 had alice and a user-less event, 13:00 bob"
    );
    let day: (i64, i64, i64) =
        sqlx::query_as("SELECT requests, cost, users FROM usage_global_daily")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(day, (3, 3_750_000_000, 2));
    let hours = store
        .usage_series(&UsageQuery::all(), BucketSize::Hour)
        .await
        .unwrap();
    let hours: Vec<_> = hours
        .iter()
        .map(|b| (b.totals.requests, b.totals.distinct_users))
        .collect();
    assert_eq!(hours, vec![(2, 1), (1, 1)]);
    // A range with unaligned edges mixes raw events and roll-ups.
    let ranged = UsageQuery {
        from: Some(Utc.with_ymd_and_hms(2025, 10, 10, 9, 30, 0).unwrap()),
        to: Some(Utc.with_ymd_and_hms(2025, 10, 10, 13, 10, 0).unwrap()),
        ..UsageQuery::default()
    };
    assert_eq!(store.usage_totals(&ranged).await.unwrap().requests, 2);

    // The old limiter is usable, with no policies: its October window holds the old spend.
    let old = store.get_limiter(id).await.unwrap().unwrap();
    assert!(old.extra_budgets.is_empty() && old.user_budget.is_none());
    assert!(old.allowed_models.is_empty() && old.cap_output_tokens);
    assert_eq!((old.max_request_cost, old.expires_at), (None, None));
    let at = Utc.with_ymd_and_hms(2025, 10, 20, 0, 0, 0).unwrap();
    assert_eq!(
        primary_window_spend(&store, id, at).await.unwrap().spent,
        "3.75".parse().unwrap()
    );
    let ReserveOutcome::Reserved(r) = store
        .reserve(&ReserveRequest::new(id, Money::from_cents(1), at))
        .await
        .unwrap()
    else {
        panic!("denied");
    };
    let usage = Usage {
        model: Some("gpt-4o".into()),
        prompt_tokens: 1,
        ..Usage::default()
    };
    store
        .settle(
            &r,
            UsageRecord::new(
                id,
                at,
                Endpoint::ChatCompletions,
                &usage,
                Some(Money::from_cents(1)),
            ),
        )
        .await
        .unwrap();
    store.close().await;

    // Opening again is a no-op for the schema and keeps everything.
    let store = SqliteStore::open(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let embedded = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(applied as usize, embedded, "every embedded migration, once");
    assert!(
        embedded >= 7,
        "0006 credentials and 0007 audit are among them"
    );
    assert_eq!(
        primary_window_spend(&store, id, at).await.unwrap().spent,
        "3.76".parse().unwrap()
    );
    store.close().await;
}

#[tokio::test]
async fn unopenable_path_names_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("usage.db");
    let err = SqliteStore::open(&format!("sqlite:{}", bad.display()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&bad.display().to_string()), "{msg}");
    assert!(msg.contains("cannot create folder"), "{msg}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'z'; 8192]).unwrap();
    let msg = SqliteStore::open(garbage.to_str().unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("garbage.db") && msg.contains("not a database"),
        "{msg}"
    );
}

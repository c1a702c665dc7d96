//! A full disk, rehearsed with `PRAGMA max_page_count`: while commits fail, settled usage
//! stays queued, statistics read the committed state consistently, the fault is visible and
//! the unsaved backlog is bounded; once room returns every event lands exactly once.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::str::FromStr;
use std::time::Duration;

use budget_core::store::{ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{BudgetStore, Limiter, LimiterId, Money, NewLimiter, Period};
use budget_store_sqlite::{SqliteStore, SqliteStoreOptions};
use chrono::Utc;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// Unsaved events past which reservations fail while the writer fails.
const MAX_UNSAVED: usize = 200;

fn limiter(name: &str) -> Limiter {
    Limiter::create(
        NewLimiter::new(
            name,
            Money::from_dollars(1_000),
            Period::Year,
            "https://api.openai.com",
        ),
        Utc::now(),
    )
    .unwrap()
}

/// A connection of the test's own, without a page limit.
async fn side_connection(path: &std::path::Path) -> SqliteConnection {
    SqliteConnectOptions::from_str(&format!("sqlite:{}", path.display()))
        .unwrap()
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

/// Events in the file, read by a connection of the test's own.
async fn count_events(path: &std::path::Path) -> usize {
    let mut c = side_connection(path).await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM usage_events")
        .fetch_one(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    n as usize
}

/// Cost of event `i`: distinct per event, so a doubled or lost one shows in the sum.
fn cost(i: usize) -> Money {
    Money::from_nanos(1_000 + i as i64)
}

async fn settle_one(
    store: &SqliteStore,
    id: LimiterId,
    i: usize,
) -> budget_core::store::Result<()> {
    let r = match store
        .reserve(&ReserveRequest::new(id, Money::from_cents(1), Utc::now()))
        .await?
    {
        ReserveOutcome::Reserved(r) => r,
        ReserveOutcome::Denied(d) => panic!("denied: {d:?}"),
    };
    let usage = Usage {
        model: Some("gpt-4o".into()),
        prompt_tokens: 10,
        completion_tokens: 5,
        ..Usage::default()
    };
    let record = UsageRecord::new(id, r.at, Endpoint::ChatCompletions, &usage, Some(cost(i)));
    store.settle(&r, record).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_survives_a_full_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.db");
    let url = format!("sqlite:{}", path.display());

    // A database with a limiter and 256 KiB of filler, everything checkpointed into the file.
    let l = limiter("full disk");
    {
        let store = SqliteStore::open(&url).await.unwrap();
        store.create_limiter(&l).await.unwrap();
        store.close().await;
    }
    let pages: u32 = {
        let mut c = side_connection(&path).await;
        sqlx::raw_sql(
            "CREATE TABLE filler (b BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) \
             INSERT INTO filler SELECT zeroblob(4000) FROM n; \
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        pages as u32
    };

    // The store may not grow the file: once the tables' free room is used, commits fail.
    let store = SqliteStore::open_with(
        SqliteStoreOptions::new(&url)
            .with_max_page_count(pages)
            .with_flush_interval(Duration::from_millis(5))
            .with_max_unsaved_events(MAX_UNSAVED),
    )
    .await
    .unwrap();
    // A trickle of single requests, each committed alone, until the file is full; then
    // bursts of ten until the store refuses. (A one-row INSERT that hits SQLITE_FULL makes
    // SQLite roll back the whole transaction by itself; a multi-row one only rolls back the
    // statement. Writing through sqlx's `Transaction`, this sequence left a pooled
    // connection inside a transaction that never committed.)
    let mut sent = 0;
    loop {
        settle_one(&store, l.id, sent).await.unwrap();
        sent += 1;
        if store.flush().await.is_err() {
            break;
        }
        assert!(sent < 10_000, "the file never filled up");
    }
    let refusal = 'full: loop {
        for _ in 0..10 {
            match settle_one(&store, l.id, sent).await {
                Ok(()) => sent += 1,
                Err(e) => break 'full e,
            }
        }
        let _ = store.flush().await;
        assert!(sent < 10_000, "never refused");
    };
    assert!(
        store.flush().await.is_err(),
        "the disk is full: flush fails"
    );
    let committed = count_events(&path).await;
    let status = store.write_status();
    eprintln!("sent {sent}, committed while full {committed}, refused with: {refusal}; {status:?}");
    assert!(
        refusal.to_string().contains("unsaved"),
        "reserve fails closed: {refusal}"
    );
    assert_eq!(
        sent,
        committed + MAX_UNSAVED,
        "exactly the limit of unsaved events was accepted"
    );
    assert_eq!(status.unsaved_events, MAX_UNSAVED as u64);
    assert!(status.refusing && status.write_errors >= 1, "{status:?}");
    assert!(status.failing.is_some(), "{status:?}");

    // Statistics read the committed state, the same on every read.
    for _ in 0..6 {
        let t = store.usage_totals(&UsageQuery::all()).await.unwrap();
        assert_eq!(
            t.requests, committed as u64,
            "stats are consistent while writes fail"
        );
    }

    // Room returns: another connection frees the filler's pages.
    {
        let mut c = side_connection(&path).await;
        sqlx::query("DELETE FROM filler")
            .execute(&mut c)
            .await
            .expect("freeing room is not blocked by a writer stuck in a transaction");
        c.close().await.unwrap();
    }
    let mut flushed = false;
    for _ in 0..50 {
        if store.flush().await.is_ok() {
            flushed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(flushed, "the writer recovers");
    let status = store.write_status();
    assert_eq!(
        (status.unsaved_events, status.failing, status.refusing),
        (0, None, false)
    );
    assert_eq!(
        count_events(&path).await,
        sent,
        "everything landed before close"
    );
    store
        .create_limiter(&limiter("after recovery"))
        .await
        .expect("creating a limiter after recovery works (no 'database is locked')");
    settle_one(&store, l.id, sent)
        .await
        .expect("requests are admitted again");
    sent += 1;
    store.close().await;

    // Reopen: every event exactly once.
    let store = SqliteStore::open(&url).await.unwrap();
    let totals = store
        .usage_totals(&UsageQuery {
            limiter_id: Some(l.id),
            ..UsageQuery::default()
        })
        .await
        .unwrap();
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT id) FROM usage_events")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let expected: Money = (0..sent).map(cost).fold(Money::ZERO, |a, b| a + b);
    eprintln!(
        "after reopen: {rows} rows, {distinct} distinct ids, {} requests in roll-ups, lost {}",
        totals.requests,
        sent as i64 - distinct
    );
    assert_eq!(
        (rows, distinct),
        (sent as i64, sent as i64),
        "0 lost, none doubled"
    );
    assert_eq!(totals.requests, sent as u64);
    assert_eq!(totals.cost, expected);
    let w = primary_window_spend(&store, l.id, Utc::now())
        .await
        .unwrap();
    assert_eq!(w.spent, expected, "the counter rebuilt from the file");
    store.close().await;
}

//! Crash durability: a real child process settles usage and is killed with SIGKILL mid-load;
//! reopening the file must find everything it had acknowledged as flushed, and counters that
//! equal the committed events.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use budget_core::store::UsageQuery;
use budget_core::{LimiterId, Money};
use budget_store_sqlite::SqliteStore;
use chrono::Utc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_at_most_the_unflushed_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nested/crash.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sqlite-crash-child"))
        .arg(&db)
        .arg("400")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let limiter: LimiterId = first
        .strip_prefix("limiter ")
        .expect("limiter line")
        .parse()
        .unwrap();
    let mut flushed = 0u64;
    for line in lines.by_ref() {
        let line = line.unwrap();
        flushed = line
            .strip_prefix("flushed ")
            .expect("flushed line")
            .parse()
            .unwrap();
        if flushed >= 6_000 {
            break;
        }
    }
    // Mid-load: more settles are queued and being committed while we kill it.
    std::thread::sleep(std::time::Duration::from_millis(30));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Anything printed before the kill was acknowledged as flushed too.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("flushed ") {
            flushed = n.parse().unwrap();
        }
    }

    let store = SqliteStore::open(&format!("sqlite:{}", db.display()))
        .await
        .unwrap();
    let q = UsageQuery {
        limiter_id: Some(limiter),
        ..UsageQuery::default()
    };
    let totals = store.usage_totals(&q).await.unwrap();
    assert!(
        totals.requests >= flushed,
        "lost acknowledged usage: {} committed < {flushed} flushed",
        totals.requests
    );
    assert_eq!(
        totals.cost,
        Money::from_nanos(1_000 * totals.requests as i64),
        "every event is whole"
    );
    let w = primary_window_spend(&store, limiter, Utc::now())
        .await
        .unwrap();
    assert_eq!(w.spent, totals.cost, "counter equals the committed events");
    assert_eq!(
        (w.held, w.in_flight),
        (Money::ZERO, 0),
        "holds die with the process"
    );
    let recent = store.recent_usage(&q, 1).await.unwrap();
    assert_eq!(recent.len(), 1);
    eprintln!("flushed {flushed}, committed {}", totals.requests);
    store.close().await;
}

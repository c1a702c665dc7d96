//! Many concurrent requests across several strict limiters: nobody overspends, nothing is
//! lost, and a reopened store restores the current windows from the file.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::sync::Arc;

use budget_core::store::{ReserveOutcome, ReserveRequest, UsageQuery, UsageRecord};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{BudgetStore, EnforcementMode, Limiter, Money, NewLimiter, Period};
use budget_store_sqlite::{SqliteStore, SqliteStoreOptions};
use chrono::Utc;

const LIMITERS: usize = 8;
const REQUESTS: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_budgets_hold_under_load_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("load.db").display());
    // Small batches so many commits interleave with the decisions.
    let store = SqliteStore::open_with(SqliteStoreOptions::new(&url).with_batch_size(64))
        .await
        .unwrap();
    let mut limiters = Vec::new();
    for i in 0..LIMITERS {
        let mut new = NewLimiter::new(
            format!("load {i}"),
            Money::from_dollars(1),
            Period::Day,
            "https://api.openai.com",
        );
        new.mode = Some(EnforcementMode::Strict);
        let l = Limiter::create(new, Utc::now()).unwrap();
        store.create_limiter(&l).await.unwrap();
        limiters.push(l);
    }
    let at = Utc::now();
    let shared: Arc<dyn BudgetStore> = Arc::new(store.clone());
    let tasks: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (store, l) = (shared.clone(), limiters[i % LIMITERS].clone());
            tokio::spawn(async move {
                let amount = Money::from_cents(2);
                let req = ReserveRequest::new(l.id, amount, at);
                match store.reserve(&req).await.unwrap() {
                    ReserveOutcome::Denied(_) => (l.id, Money::ZERO),
                    ReserveOutcome::Reserved(r) => {
                        tokio::task::yield_now().await;
                        if i % 7 == 0 {
                            store.release(&r).await.unwrap();
                            return (l.id, Money::ZERO);
                        }
                        // Actual cost at most the reservation.
                        let cost =
                            Money::from_nanos(amount.as_nanos() * (1 + (i as i64 % 10)) / 10);
                        let usage = Usage {
                            model: Some("gpt-4o".into()),
                            prompt_tokens: 3,
                            ..Usage::default()
                        };
                        let record = UsageRecord::new(
                            l.id,
                            at,
                            Endpoint::ChatCompletions,
                            &usage,
                            Some(cost),
                        );
                        store.settle(&r, record).await.unwrap();
                        (l.id, cost)
                    }
                }
            })
        })
        .collect();
    let mut settled = std::collections::HashMap::new();
    for t in futures::future::join_all(tasks).await {
        let (id, cost) = t.unwrap();
        *settled.entry(id).or_insert(Money::ZERO) += cost;
    }
    for l in &limiters {
        let w = primary_window_spend(&store, l.id, at).await.unwrap();
        assert_eq!(w.spent, settled[&l.id]);
        assert!(
            w.spent <= l.budget_limit,
            "strict budget passed: {:?}",
            w.spent
        );
        assert_eq!((w.held, w.in_flight), (Money::ZERO, 0));
    }
    let total: Money = settled.values().copied().sum();
    assert_eq!(
        store.usage_totals(&UsageQuery::all()).await.unwrap().cost,
        total
    );
    store.close().await;
    assert!(
        primary_window_spend(&store, limiters[0].id, at)
            .await
            .is_ok(),
        "memory still answers after close"
    );

    // Reopen: the current windows come back from the file.
    let store = SqliteStore::open(&url).await.unwrap();
    for l in &limiters {
        let w = primary_window_spend(&store, l.id, at).await.unwrap();
        assert_eq!(w.spent, settled[&l.id], "restored counter");
        assert!(w.spent <= l.budget_limit);
    }
    assert_eq!(
        store.usage_totals(&UsageQuery::all()).await.unwrap().cost,
        total
    );
    store.close().await;
}

/// Counters of windows first touched while usage for them is still queued (the lazy load
/// races the writer) come out exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lazy_window_loads_race_the_writer_exactly() {
    let store = SqliteStore::open("sqlite::memory:").await.unwrap();
    let l = Limiter::create(
        NewLimiter::new(
            "lazy",
            Money::from_dollars(1_000),
            Period::Minute,
            "https://api.openai.com",
        ),
        Utc::now(),
    )
    .unwrap();
    store.create_limiter(&l).await.unwrap();
    let base = chrono::DateTime::parse_from_rfc3339("2025-10-10T12:00:00Z")
        .unwrap()
        .with_utc_timezone();
    let store = Arc::new(store);
    let usage = Usage {
        model: Some("m".into()),
        ..Usage::default()
    };
    // 20 minutes, never touched before; writers and readers interleave.
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let (store, l, usage) = (store.clone(), l.clone(), usage.clone());
            tokio::spawn(async move {
                let at = base + chrono::Duration::seconds((i % 20) * 60 + 1);
                if i % 3 == 0 {
                    primary_window_spend(&*store, l.id, at).await.unwrap();
                }
                let r = UsageRecord::new(
                    l.id,
                    at,
                    Endpoint::ChatCompletions,
                    &usage,
                    Some(Money::from_cents(1)),
                );
                store.record_usage(r).await.unwrap();
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    for m in 0..20 {
        let at = base + chrono::Duration::seconds(m * 60 + 1);
        assert_eq!(
            primary_window_spend(&*store, l.id, at).await.unwrap().spent,
            Money::from_cents(20),
            "minute {m}"
        );
    }
    store.close().await;
}

trait WithUtc {
    fn with_utc_timezone(self) -> chrono::DateTime<Utc>;
}

impl WithUtc for chrono::DateTime<chrono::FixedOffset> {
    fn with_utc_timezone(self) -> chrono::DateTime<Utc> {
        self.with_timezone(&Utc)
    }
}

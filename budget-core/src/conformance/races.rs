//! Races: many tasks reserving at once against one budget.

use std::sync::Arc;

use crate::store::{ReserveOutcome, Store, UsageQuery};
use crate::{EnforcementMode, Money, Period};

use super::{limiter, m, record, reserve, reserved, spend, t0};

/// 64 tasks race for a $1.00 strict budget at $0.10 each: exactly ten get in.
pub async fn concurrent_strict_reservations_never_overspend(store: Arc<dyn Store>) {
    let a = limiter(&*store, "1", Period::Day, EnforcementMode::Strict).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, a) = (store.clone(), a.clone());
            tokio::spawn(async move {
                match reserve(&*store, &a, "0.10", t0()).await {
                    ReserveOutcome::Reserved(r) => {
                        tokio::task::yield_now().await;
                        store
                            .settle(&r, record(&a, t0(), "0.10", "gpt-4o", None))
                            .await
                            .unwrap();
                        true
                    }
                    ReserveOutcome::Denied(_) => false,
                }
            })
        })
        .collect();
    let admitted = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(admitted, 10);
    let w = spend(&*store, a.id, t0()).await;
    assert_eq!((w.spent, w.held, w.in_flight), (m("1"), Money::ZERO, 0));
}

/// 64 tasks reserve and settle concurrently in soft mode: every settled cost is counted and
/// every hold is returned.
pub async fn concurrent_soft_reservations_lose_nothing(store: Arc<dyn Store>) {
    let a = limiter(&*store, "1000", Period::Day, EnforcementMode::Soft).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (store, a) = (store.clone(), a.clone());
            tokio::spawn(async move {
                for j in 0..10 {
                    let r = reserved(&*store, &a, "0.5", t0()).await;
                    tokio::task::yield_now().await;
                    if (i + j) % 3 == 0 {
                        store.release(&r).await.unwrap();
                    } else {
                        store
                            .settle(&r, record(&a, t0(), "0.001", "gpt-4o", None))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        t.unwrap();
    }
    let settled = (0..64)
        .flat_map(|i| (0..10).map(move |j| (i + j) % 3 != 0))
        .filter(|s| *s)
        .count();
    let w = spend(&*store, a.id, t0()).await;
    assert_eq!(w.spent, Money::from_nanos(1_000_000 * settled as i64));
    assert_eq!((w.held, w.in_flight), (Money::ZERO, 0));
    assert_eq!(
        store
            .usage_totals(&UsageQuery::all())
            .await
            .unwrap()
            .requests,
        settled as u64
    );
}

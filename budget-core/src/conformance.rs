//! The conformance suite every [`Store`] runs, ours and yours (feature `test-utils`).
//!
//! One line in a store crate's tests runs all of it, one `#[tokio::test]` per check (here for
//! budget-core's own [`MemoryStore`](crate::MemoryStore); put your store's constructor in the
//! `async` block, with `.await` where it is async):
//!
//! ```
//! budget_core::store_conformance_tests!(async { budget_core::MemoryStore::new() });
//! ```
//!
//! The expression is evaluated once per test and must be a future resolving to a fresh, empty
//! store (any type implementing [`Store`]: the hot path, the catalogue and the statistics):
//! write it as an `async` block. The test crate needs `tokio` with the `macros` and
//! `rt-multi-thread` features. Each check is also a public `async fn` taking an
//! `Arc<dyn Store>`, so a store can run them by hand.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::store::{
    BucketSize, CounterKey, DenialReason, Error, GroupBy, LimiterRef, Reservation, ReserveOutcome,
    ReserveRequest, Store, UsageQuery, UsageRecord, WindowSpend,
};
use crate::usage::{Endpoint, Usage};
use crate::{EnforcementMode, Limiter, LimiterId, LimiterUpdate, Money, NewLimiter, Period};

/// Generate one `#[tokio::test]` per conformance check, in a module named `conformance`.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:expr) => {
        $crate::store_conformance_tests!(@tests $factory;
            limiter_crud,
            code_lookup_and_rotation,
            delete_keeps_history_and_purge_removes_it,
            reserve_settle_release_accounting,
            release_leaks_nothing,
            soft_mode_admits_until_spent,
            strict_mode_never_passes_budget,
            inactive_limiter_is_denied,
            budget_update_takes_effect_at_once,
            window_rollover,
            record_usage_without_reservation,
            user_counters_and_reservations_for_users,
            statistics,
            concurrent_strict_reservations_never_overspend,
            concurrent_soft_reservations_lose_nothing
        );
    };
    (@tests $factory:expr; $($name:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            /// A fresh store from the factory expression. Outside the tests too, so that the
            /// expression is type-checked in every build (`#[test]` functions are compiled
            /// only under `--test`, doctests never).
            #[allow(dead_code)]
            async fn fresh_store() -> ::std::sync::Arc<dyn $crate::store::Store> {
                ::std::sync::Arc::new($factory.await)
            }
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::conformance::$name(fresh_store().await).await;
                }
            )*
        }
    };
}

/// A fixed instant the suite works around: 2025-10-10 12:00:30 UTC, a Friday.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 10, 12, 0, 30).unwrap()
}

/// Create a limiter in `store` with the given budget (dollars as text), period and mode.
pub async fn limiter(
    store: &dyn Store,
    budget: &str,
    period: Period,
    mode: EnforcementMode,
) -> Limiter {
    let mut new = NewLimiter::new(
        format!("conformance {budget}/{period}"),
        budget.parse().unwrap(),
        period,
        "https://api.openai.com",
    );
    new.mode = Some(mode);
    let l = Limiter::create(new, t0()).unwrap();
    store.create_limiter(&l).await.unwrap();
    l
}

/// A usage record for `limiter` at `at` costing `cost` (dollars as text).
pub fn record(
    l: &Limiter,
    at: DateTime<Utc>,
    cost: &str,
    model: &str,
    user: Option<&str>,
) -> UsageRecord {
    let usage = Usage {
        model: Some(model.to_owned()),
        prompt_tokens: 100,
        completion_tokens: 50,
        cached_tokens: 10,
        reasoning_tokens: 5,
        ..Usage::default()
    };
    let mut r = UsageRecord::new(
        l.id,
        at,
        Endpoint::ChatCompletions,
        &usage,
        Some(cost.parse().unwrap()),
    );
    r.user = user.map(str::to_owned);
    r
}

async fn reserve(
    store: &dyn Store,
    l: &Limiter,
    amount: &str,
    at: DateTime<Utc>,
) -> ReserveOutcome {
    store
        .reserve(&ReserveRequest::new(l.id, amount.parse().unwrap(), at))
        .await
        .unwrap()
}

async fn reserved(store: &dyn Store, l: &Limiter, amount: &str, at: DateTime<Utc>) -> Reservation {
    match reserve(store, l, amount, at).await {
        ReserveOutcome::Reserved(r) => r,
        ReserveOutcome::Denied(d) => panic!("expected admission, got {d:?}"),
    }
}

/// The live limiter with this code, through the hot path.
async fn by_code(store: &dyn Store, code: &str) -> Option<Arc<Limiter>> {
    store.find_limiter(LimiterRef::Code(code)).await.unwrap()
}

/// The limiter's own counter for the window (of its current period) containing `at`.
pub async fn spend(store: &dyn Store, id: LimiterId, at: DateTime<Utc>) -> WindowSpend {
    let l = store
        .get_limiter(id)
        .await
        .unwrap()
        .expect("limiter exists");
    store
        .window_spend(&CounterKey::limiter(id, l.window_at(at)))
        .await
        .unwrap()
}

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

/// Create, get, list, update (partial, validated, atomic), duplicate ids.
pub async fn limiter_crud(store: Arc<dyn Store>) {
    let s = &*store;
    assert!(s.list_limiters(false).await.unwrap().is_empty());
    let a = limiter(s, "20", Period::Day, EnforcementMode::Soft).await;
    let b = limiter(s, "5", Period::Month, EnforcementMode::Strict).await;
    assert_eq!(s.get_limiter(a.id).await.unwrap().as_ref(), Some(&a));
    let ids: Vec<_> = s
        .list_limiters(false)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&a.id) && ids.contains(&b.id));

    assert!(
        matches!(s.create_limiter(&a).await, Err(Error::Conflict(_))),
        "duplicate id"
    );

    let up = LimiterUpdate {
        name: Some("Renamed".into()),
        budget_limit: Some(m("30")),
        ..Default::default()
    };
    let updated = s.update_limiter(a.id, &up).await.unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.budget_limit),
        ("Renamed", m("30"))
    );
    assert_eq!(updated.period_type, Period::Day, "absent fields unchanged");
    assert_eq!(updated.code, a.code);
    assert_eq!(s.get_limiter(a.id).await.unwrap().unwrap(), updated);

    let bad = LimiterUpdate {
        name: Some("x".into()),
        budget_limit: Some(m("-1")),
        ..Default::default()
    };
    assert!(
        matches!(s.update_limiter(a.id, &bad).await, Err(Error::Validation(e)) if e.field == "budget_limit")
    );
    assert_eq!(
        s.get_limiter(a.id).await.unwrap().unwrap(),
        updated,
        "failed update changes nothing"
    );

    let ghost = crate::LimiterId::new();
    assert!(s.get_limiter(ghost).await.unwrap().is_none());
    assert!(matches!(
        s.update_limiter(ghost, &up).await,
        Err(Error::LimiterNotFound(_))
    ));
}

/// Find by code; rotation retires the old code at once.
pub async fn code_lookup_and_rotation(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    assert_eq!(by_code(s, a.code.as_str()).await.map(|l| l.id), Some(a.id));
    assert!(by_code(s, "0123456789abcdef0123456789abcdef")
        .await
        .is_none());
    let rotated = s.rotate_code(a.id).await.unwrap();
    assert_ne!(rotated.code, a.code);
    assert!(
        by_code(s, a.code.as_str()).await.is_none(),
        "old code retired"
    );
    assert_eq!(
        by_code(s, rotated.code.as_str()).await.map(|l| l.id),
        Some(a.id)
    );
    assert_eq!(
        s.get_limiter(a.id).await.unwrap().unwrap().code,
        rotated.code
    );
}

/// Deleting retires the code and keeps usage for statistics; purging removes both.
pub async fn delete_keeps_history_and_purge_removes_it(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "10", Period::Day, EnforcementMode::Soft).await;
    let r = reserved(s, &a, "0.01", t0()).await;
    s.settle(&r, record(&a, t0(), "0.50", "gpt-4o", Some("u1")))
        .await
        .unwrap();
    s.delete_limiter(a.id, false).await.unwrap();

    assert!(by_code(s, a.code.as_str()).await.is_none());
    assert!(s
        .get_limiter(a.id)
        .await
        .unwrap()
        .unwrap()
        .deleted_at
        .is_some());
    assert!(s.list_limiters(false).await.unwrap().is_empty());
    assert_eq!(s.list_limiters(true).await.unwrap().len(), 1);
    assert!(matches!(
        s.reserve(&ReserveRequest::new(a.id, Money::ZERO, t0()))
            .await,
        Err(Error::LimiterNotFound(_))
    ));
    assert!(matches!(
        s.update_limiter(a.id, &LimiterUpdate::default()).await,
        Err(Error::LimiterNotFound(_))
    ));
    assert!(matches!(
        s.delete_limiter(a.id, false).await,
        Err(Error::LimiterNotFound(_))
    ));
    let all = s.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!((all.requests, all.cost), (1, m("0.50")), "history stays");

    s.delete_limiter(a.id, true).await.unwrap();
    assert!(s.get_limiter(a.id).await.unwrap().is_none());
    assert_eq!(
        s.usage_totals(&UsageQuery::all()).await.unwrap().requests,
        0,
        "purged"
    );
}

/// Holds appear on reserve, turn into spend on settle, vanish on release; double settle fails.
pub async fn reserve_settle_release_accounting(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "10", Period::Day, EnforcementMode::Soft).await;
    let r1 = reserved(s, &a, "1.00", t0()).await;
    assert_eq!(r1.window, Period::Day.window_at(t0()));
    assert_eq!(r1.budget, m("10"));
    let r2 = reserved(s, &a, "2.00", t0()).await;
    let w = spend(s, a.id, t0()).await;
    assert_eq!((w.spent, w.held, w.in_flight), (Money::ZERO, m("3.00"), 2));

    s.settle(&r1, record(&a, t0(), "0.40", "gpt-4o", None))
        .await
        .unwrap();
    let w = spend(s, a.id, t0()).await;
    assert_eq!((w.spent, w.held, w.in_flight), (m("0.40"), m("2.00"), 1));

    s.release(&r2).await.unwrap();
    let w = spend(s, a.id, t0()).await;
    assert_eq!((w.spent, w.held, w.in_flight), (m("0.40"), Money::ZERO, 0));

    assert!(matches!(
        s.settle(&r1, record(&a, t0(), "0.40", "gpt-4o", None))
            .await,
        Err(Error::ReservationNotFound(_))
    ));
    assert!(matches!(
        s.release(&r2).await,
        Err(Error::ReservationNotFound(_))
    ));
    assert_eq!(
        spend(s, a.id, t0()).await.spent,
        m("0.40"),
        "no double charge"
    );

    // The record is stamped with the reservation's time and limiter.
    let r3 = reserved(s, &a, "0", t0()).await;
    let mut late = record(&a, t0() + Duration::days(3), "0.01", "gpt-4o", None);
    late.limiter_id = crate::LimiterId::new();
    s.settle(&r3, late).await.unwrap();
    let recent = s.recent_usage(&UsageQuery::all(), 1).await.unwrap();
    assert_eq!((recent[0].at, recent[0].limiter_id), (t0(), a.id));
    assert_eq!(spend(s, a.id, t0()).await.spent, m("0.41"));
}

/// A thousand reserve/release pairs leave nothing held.
pub async fn release_leaks_nothing(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1000", Period::Hour, EnforcementMode::Strict).await;
    let mut held = Vec::new();
    for i in 0..1000 {
        held.push(reserved(s, &a, "0.5", t0() + Duration::milliseconds(i)).await);
    }
    assert_eq!(spend(s, a.id, t0()).await.held, m("500"));
    for r in &held {
        s.release(r).await.unwrap();
    }
    let w = spend(s, a.id, t0()).await;
    assert_eq!(
        (w.spent, w.held, w.in_flight),
        (Money::ZERO, Money::ZERO, 0)
    );
}

/// Soft: admitted while spend + holds < budget, whatever the request's own amount.
pub async fn soft_mode_admits_until_spent(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    let r = reserved(s, &a, "0.10", t0()).await;
    s.settle(&r, record(&a, t0(), "0.99", "gpt-4o", None))
        .await
        .unwrap();
    // 0.99 < 1: admitted even though this request may pass the budget.
    let r = reserved(s, &a, "5.00", t0()).await;
    s.settle(&r, record(&a, t0(), "0.06", "gpt-4o", None))
        .await
        .unwrap();
    // 1.05 >= 1: denied, with the figures.
    match reserve(s, &a, "0.01", t0()).await {
        ReserveOutcome::Denied(d) => {
            assert_eq!(d.reason, DenialReason::BudgetExceeded);
            assert_eq!(
                (d.spent, d.budget, d.period),
                (m("1.05"), m("1"), Period::Day)
            );
            assert_eq!(d.window, Period::Day.window_at(t0()));
            assert_eq!(
                d.message(),
                "Budget limit exceeded: $1.05/$1.00 per day. Current usage: 105.0%"
            );
        }
        other => panic!("expected denial, got {other:?}"),
    }
}

/// Strict: admitted only if the request's amount fits on top of spend and holds.
pub async fn strict_mode_never_passes_budget(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Day, EnforcementMode::Strict).await;
    let r1 = reserved(s, &a, "0.60", t0()).await;
    assert!(matches!(
        reserve(s, &a, "0.60", t0()).await,
        ReserveOutcome::Denied(_)
    ));
    let r2 = reserved(s, &a, "0.40", t0()).await; // exactly the budget
    s.release(&r1).await.unwrap();
    s.settle(&r2, record(&a, t0(), "0.40", "gpt-4o", None))
        .await
        .unwrap();
    let r3 = reserved(s, &a, "0.60", t0()).await;
    assert!(matches!(
        reserve(s, &a, "0.000000001", t0()).await,
        ReserveOutcome::Denied(_)
    ));
    s.settle(&r3, record(&a, t0(), "0.60", "gpt-4o", None))
        .await
        .unwrap();
    assert_eq!(spend(s, a.id, t0()).await.spent, m("1"));
}

/// An inactive limiter refuses everything.
pub async fn inactive_limiter_is_denied(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "100", Period::Day, EnforcementMode::Soft).await;
    s.update_limiter(
        a.id,
        &LimiterUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    match reserve(s, &a, "0", t0()).await {
        ReserveOutcome::Denied(d) => assert_eq!(d.reason, DenialReason::Inactive),
        other => panic!("expected denial, got {other:?}"),
    }
    s.update_limiter(
        a.id,
        &LimiterUpdate {
            is_active: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    reserved(s, &a, "0", t0()).await;
}

/// Budget and period changes apply to the very next reservation.
pub async fn budget_update_takes_effect_at_once(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "10", Period::Day, EnforcementMode::Soft).await;
    let r = reserved(s, &a, "0", t0()).await;
    s.settle(&r, record(&a, t0(), "2", "gpt-4o", None))
        .await
        .unwrap();
    s.update_limiter(
        a.id,
        &LimiterUpdate {
            budget_limit: Some(m("2")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        reserve(s, &a, "0", t0()).await,
        ReserveOutcome::Denied(_)
    ));
    s.update_limiter(
        a.id,
        &LimiterUpdate {
            budget_limit: Some(m("3")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    reserved(s, &a, "0", t0()).await;
    // Switching to a month keeps the day's spend in the month's window.
    s.update_limiter(
        a.id,
        &LimiterUpdate {
            period_type: Some(Period::Month),
            budget_limit: Some(m("2")),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let w = spend(s, a.id, t0()).await;
    assert_eq!((w.window, w.spent), (Period::Month.window_at(t0()), m("2")));
    assert!(matches!(
        reserve(s, &a, "0", t0() + Duration::days(2)).await,
        ReserveOutcome::Denied(_)
    ));
}

/// A new window starts at zero; the old one keeps its spend.
pub async fn window_rollover(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Minute, EnforcementMode::Soft).await;
    let r = reserved(s, &a, "0", t0()).await;
    s.settle(&r, record(&a, t0(), "1.50", "gpt-4o", None))
        .await
        .unwrap();
    assert!(matches!(
        reserve(s, &a, "0", t0() + Duration::seconds(29)).await,
        ReserveOutcome::Denied(_)
    ));
    let next = t0() + Duration::seconds(30); // 12:01:00, a new minute
    let r = reserved(s, &a, "0.10", next).await;
    assert_eq!(r.window.start, next);
    let w = spend(s, a.id, next).await;
    assert_eq!((w.spent, w.held), (Money::ZERO, m("0.10")));
    assert_eq!(spend(s, a.id, t0()).await.spent, m("1.50"));
    s.release(&r).await.unwrap();
}

/// Usage recorded without a reservation counts against its window.
pub async fn record_usage_without_reservation(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Hour, EnforcementMode::Soft).await;
    let _ = spend(s, a.id, t0()).await; // a cached counter must be kept current
    s.record_usage(record(&a, t0(), "0.25", "gpt-4o", None))
        .await
        .unwrap();
    s.record_usage(record(&a, t0() - Duration::hours(1), "7", "gpt-4o", None))
        .await
        .unwrap();
    assert_eq!(spend(s, a.id, t0()).await.spent, m("0.25"));
    assert_eq!(
        spend(s, a.id, t0() - Duration::hours(1)).await.spent,
        m("7")
    );
    let ghost = record(&a, t0(), "1", "gpt-4o", None);
    let mut ghost = ghost;
    ghost.limiter_id = crate::LimiterId::new();
    assert!(matches!(
        s.record_usage(ghost).await,
        Err(Error::LimiterNotFound(_))
    ));
}

/// A request's end user reaches the store with its reservation; spend per user and window
/// (a counter without a budget of its own) is summed from the records, settled or recorded,
/// and stays current as more usage arrives; the limiter's own counter counts everyone's.
pub async fn user_counters_and_reservations_for_users(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "10", Period::Day, EnforcementMode::Strict).await;
    let window = a.window_at(t0());
    let key = |user: Option<&str>| CounterKey {
        limiter_id: a.id,
        user: user.map(str::to_owned),
        window,
    };
    let user_spend = |user: &'static str| {
        let k = key(Some(user));
        async move { s.window_spend(&k).await.unwrap().spent }
    };
    s.record_usage(record(&a, t0(), "1.00", "gpt-4o", Some("alice")))
        .await
        .unwrap();
    assert_eq!(user_spend("alice").await, m("1.00"));
    assert_eq!(user_spend("bob").await, Money::ZERO);

    let request = ReserveRequest::new(a.id, m("2"), t0()).for_user("bob");
    let ReserveOutcome::Reserved(r) = s.reserve(&request).await.unwrap() else {
        panic!("admitted")
    };
    assert_eq!(
        r.holds.len(),
        1,
        "no per-user budget: the limiter's window only"
    );
    assert_eq!(r.holds[0].key, key(None));
    s.settle(&r, record(&a, t0(), "0.75", "gpt-4o", Some("bob")))
        .await
        .unwrap();
    s.record_usage(record(&a, t0(), "0.50", "gpt-4o", Some("alice")))
        .await
        .unwrap();
    // Next window's usage does not count in this one.
    s.record_usage(record(&a, window.end, "4", "gpt-4o", Some("alice")))
        .await
        .unwrap();
    assert_eq!(user_spend("alice").await, m("1.50"));
    assert_eq!(user_spend("bob").await, m("0.75"));
    let own = s.window_spend(&key(None)).await.unwrap();
    assert_eq!(
        (own.spent, own.held, own.in_flight),
        (m("2.25"), Money::ZERO, 0)
    );
    let ghost = CounterKey {
        limiter_id: crate::LimiterId::new(),
        user: None,
        window,
    };
    assert!(matches!(
        s.window_spend(&ghost).await,
        Err(Error::LimiterNotFound(_))
    ));
}

/// Totals, breakdowns, time series and recent records agree with what was recorded.
pub async fn statistics(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "100", Period::Day, EnforcementMode::Soft).await;
    let b = limiter(s, "100", Period::Day, EnforcementMode::Soft).await;
    let h = |n: i64| t0() + Duration::hours(n);
    let mut unpriced = record(&b, h(2), "0", "mystery-model", Some("carol"));
    unpriced.unpriced = true;
    unpriced.estimated = true;
    unpriced.status = 500;
    for r in [
        record(&a, h(0), "1.00", "gpt-4o", Some("alice")),
        record(&a, h(0), "0.50", "gpt-4o-mini", Some("bob")),
        record(&a, h(1), "2.00", "gpt-4o", Some("alice")),
        record(&b, h(1), "0.25", "gpt-4o", None),
        unpriced,
    ] {
        s.record_usage(r).await.unwrap();
    }

    let all = s.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(all.requests, 5);
    assert_eq!(all.cost, m("3.75"));
    assert_eq!(
        (all.prompt_tokens, all.completion_tokens, all.total_tokens),
        (500, 250, 750)
    );
    assert_eq!((all.cached_tokens, all.reasoning_tokens), (50, 25));
    assert_eq!(
        (
            all.unpriced_requests,
            all.estimated_requests,
            all.error_requests
        ),
        (1, 1, 1)
    );
    assert_eq!(all.distinct_users, 3);

    let qa = UsageQuery {
        limiter_id: Some(a.id),
        ..UsageQuery::default()
    };
    let ta = s.usage_totals(&qa).await.unwrap();
    assert_eq!((ta.requests, ta.cost, ta.distinct_users), (3, m("3.50"), 2));

    let ranged = UsageQuery {
        from: Some(h(1)),
        to: Some(h(2)),
        ..UsageQuery::default()
    };
    let tr = s.usage_totals(&ranged).await.unwrap();
    assert_eq!(
        (tr.requests, tr.cost),
        (2, m("2.25")),
        "[from, to) is half-open"
    );

    let models = s
        .usage_breakdown(&UsageQuery::all(), GroupBy::Model, 10)
        .await
        .unwrap();
    let rows: Vec<_> = models
        .iter()
        .map(|g| (g.key.as_deref(), g.totals.requests, g.totals.cost))
        .collect();
    assert_eq!(
        rows,
        vec![
            (Some("gpt-4o"), 3, m("3.25")),
            (Some("gpt-4o-mini"), 1, m("0.50")),
            (Some("mystery-model"), 1, Money::ZERO),
        ]
    );
    let users = s.usage_breakdown(&qa, GroupBy::User, 1).await.unwrap();
    assert_eq!(users.len(), 1, "limit applies");
    assert_eq!(
        (users[0].key.as_deref(), users[0].totals.cost),
        (Some("alice"), m("3.00"))
    );
    let users = s
        .usage_breakdown(&UsageQuery::all(), GroupBy::User, 10)
        .await
        .unwrap();
    assert!(
        users
            .iter()
            .any(|g| g.key.is_none() && g.totals.requests == 1),
        "records without a user"
    );
    let limiters = s
        .usage_breakdown(&UsageQuery::all(), GroupBy::Limiter, 10)
        .await
        .unwrap();
    assert_eq!(limiters[0].key, Some(a.id.to_string()));
    assert_eq!(limiters[1].totals.cost, m("0.25"));

    let series = s
        .usage_series(&UsageQuery::all(), BucketSize::Hour)
        .await
        .unwrap();
    let points: Vec<_> = series
        .iter()
        .map(|b| (b.start, b.totals.requests, b.totals.cost))
        .collect();
    let hour = |n| BucketSize::Hour.floor(h(n));
    assert_eq!(
        points,
        vec![
            (hour(0), 2, m("1.50")),
            (hour(1), 2, m("2.25")),
            (hour(2), 1, Money::ZERO)
        ]
    );
    let days = s.usage_series(&qa, BucketSize::Day).await.unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].totals.cost, m("3.50"));

    let recent = s.recent_usage(&UsageQuery::all(), 2).await.unwrap();
    assert_eq!(recent.len(), 2);
    assert_eq!(recent[0].model.as_deref(), Some("mystery-model"));
    assert!(recent[0].unpriced && recent[0].estimated && recent[0].status == 500);
    assert!(recent[1].at <= recent[0].at);
}

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

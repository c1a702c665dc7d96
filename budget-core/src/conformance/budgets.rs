//! Budgets on the hot path: reserve, settle and release; soft and strict modes; inactive
//! limiters; updates; window rollover; usage without a reservation; per-user counters.

use std::sync::Arc;

use chrono::Duration;

use crate::store::{
    CounterKey, DenialReason, Error, ReserveOutcome, ReserveRequest, Store, UsageQuery,
};
use crate::{EnforcementMode, LimiterUpdate, Money, Period};

use super::{limiter, m, record, reserve, reserved, spend, t0};

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
    late.price_version = Some("sha256:0123456789abcdef".into());
    s.settle(&r3, late).await.unwrap();
    let recent = s.recent_usage(&UsageQuery::all(), 10).await.unwrap();
    let stamped = recent.iter().find(|r| r.cost == m("0.01")).unwrap();
    assert_eq!((stamped.at, stamped.limiter_id), (t0(), a.id));
    assert_eq!(
        stamped.price_version.as_deref(),
        Some("sha256:0123456789abcdef"),
        "the record keeps which price table priced it"
    );
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

//! Limiters in the catalogue: create, read, update, codes, delete and purge.

use std::sync::Arc;

use crate::store::{Error, ReserveRequest, Store, UsageQuery};
use crate::{EnforcementMode, LimiterUpdate, Money, Period};

use super::{by_code, limiter, m, record, reserved, t0};

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
    let rotated = s.rotate_code(a.id, None).await.unwrap();
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

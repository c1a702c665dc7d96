//! The same suite every store runs, unchanged.

use custom_store::JournalStore;

budget_core::store_conformance_tests!(async { JournalStore::temporary().await });

/// What the journal is for: a reopened store has the same limiters and spend.
#[tokio::test]
async fn survives_reopen() {
    use budget_core::store::prelude::*;
    use budget_core::store::{primary_window_spend, LimiterRef};
    use budget_core::store::{ReserveOutcome, ReserveRequest, UsageQuery};
    use budget_core::{EnforcementMode, LimiterUpdate, Period};

    let mut store = JournalStore::temporary().await;
    store.keep_journal();
    let path = store.path().to_path_buf();
    let t0 = budget_core::conformance::t0();
    let a =
        budget_core::conformance::limiter(&store, "10", Period::Day, EnforcementMode::Soft).await;
    let b =
        budget_core::conformance::limiter(&store, "5", Period::Day, EnforcementMode::Soft).await;
    let ReserveOutcome::Reserved(r) = store
        .reserve(&ReserveRequest::new(a.id, "1".parse().unwrap(), t0))
        .await
        .unwrap()
    else {
        panic!("denied")
    };
    store
        .settle(
            &r,
            budget_core::conformance::record(&a, t0, "2.5", "gpt-4o", Some("u")),
        )
        .await
        .unwrap();
    let rotated = store.rotate_code(a.id, None).await.unwrap();
    store
        .update_limiter(
            a.id,
            &LimiterUpdate {
                name: Some("renamed".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store.delete_limiter(b.id, false).await.unwrap();
    store.flush().await.unwrap();
    drop(store);

    let reopened = JournalStore::open(&path).await.unwrap();
    let a2 = reopened.get_limiter(a.id).await.unwrap().unwrap();
    assert_eq!((a2.name.as_str(), &a2.code), ("renamed", &rotated.code));
    assert!(reopened
        .find_limiter(LimiterRef::Code(a.code.as_str()))
        .await
        .unwrap()
        .is_none());
    assert!(reopened
        .get_limiter(b.id)
        .await
        .unwrap()
        .unwrap()
        .deleted_at
        .is_some());
    assert!(reopened
        .find_limiter(LimiterRef::Code(b.code.as_str()))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        primary_window_spend(&reopened, a.id, t0)
            .await
            .unwrap()
            .spent,
        "2.5".parse().unwrap()
    );
    assert_eq!(
        reopened
            .usage_totals(&UsageQuery::all())
            .await
            .unwrap()
            .requests,
        1
    );
    std::fs::remove_file(path).unwrap();
}

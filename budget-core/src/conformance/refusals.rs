//! Refusal counts: batches add up per limiter, minute and reason; ranges and limiters filter;
//! purging a limiter removes its counts.

use super::*;
use crate::refusal::{RefusalCount, RefusalGroup, RefusalReason};
use crate::store::{Error, UsageQuery};

/// Counts added in several batches (the same minute twice included) sum per limiter and
/// reason, filtered by whole minutes of `[from, to)` and by limiter, most first; counts of an
/// unknown limiter are dropped; purging a limiter removes its counts.
pub async fn refusals_add_up_per_limiter_and_reason(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    let b = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    let at = |minutes: i64| crate::refusal::minute_of(t0()) + chrono::Duration::minutes(minutes);
    let c = |l: &Limiter, minute: i64, reason, count| RefusalCount {
        limiter_id: l.id,
        minute: at(minute),
        reason,
        count,
    };
    match s.add_refusals(&[c(&a, 0, RefusalReason::Budget, 5)]).await {
        Err(Error::Unsupported(what)) => {
            eprintln!("conformance: this store does not keep {what}; refusal checks skipped");
            return;
        }
        other => other.unwrap(),
    }
    s.add_refusals(&[
        c(&a, 0, RefusalReason::Budget, 2),
        c(&a, 1, RefusalReason::Budget, 1),
        c(&a, 1, RefusalReason::Inactive, 4),
        c(&b, 2, RefusalReason::ModelRule, 3),
        RefusalCount {
            limiter_id: LimiterId::new(),
            minute: at(0),
            reason: RefusalReason::Other,
            count: 9,
        },
    ])
    .await
    .unwrap();
    let g = |l: &Limiter, reason, count| RefusalGroup {
        limiter_id: l.id,
        reason,
        count,
    };
    let all = s.refusals(&UsageQuery::all()).await.unwrap();
    let mut want = vec![
        g(&a, RefusalReason::Budget, 8),
        g(&a, RefusalReason::Inactive, 4),
        g(&b, RefusalReason::ModelRule, 3),
    ];
    crate::refusal::sort_groups(&mut want);
    assert_eq!(all, want);
    let of_a_minute_1 = s
        .refusals(&UsageQuery {
            limiter_id: Some(a.id),
            from: Some(at(1)),
            to: Some(at(2)),
        })
        .await
        .unwrap();
    let mut want = vec![
        g(&a, RefusalReason::Inactive, 4),
        g(&a, RefusalReason::Budget, 1),
    ];
    crate::refusal::sort_groups(&mut want);
    assert_eq!(of_a_minute_1, want);
    assert!(s
        .refusals(&UsageQuery {
            from: Some(at(3)),
            ..UsageQuery::all()
        })
        .await
        .unwrap()
        .is_empty());
    s.delete_limiter(a.id, true).await.unwrap();
    assert_eq!(
        s.refusals(&UsageQuery::all()).await.unwrap(),
        vec![g(&b, RefusalReason::ModelRule, 3)],
        "purged with its limiter"
    );
}

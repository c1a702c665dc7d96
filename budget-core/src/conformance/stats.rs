//! Statistics: totals, breakdowns, time series and recent records.

use std::sync::Arc;

use chrono::Duration;

use crate::store::{BucketSize, GroupBy, Store, UsageQuery};
use crate::{EnforcementMode, Money, Period};

use super::{limiter, m, record, t0};

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

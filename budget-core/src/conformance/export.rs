//! Exports: every matching record once, in `(at, id)` order, page by page.

use super::*;
use crate::store::{UsageCursor, UsageQuery};

/// Paging through `usage_page` with the last record's cursor reads every matching record
/// exactly once, oldest first (ties by id), for any page size; the range and limiter filters
/// hold; a record written behind the cursor meanwhile does not disturb the pages after it.
pub async fn usage_pages_in_time_order(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1000", Period::Year, EnforcementMode::Soft).await;
    let b = limiter(s, "1000", Period::Year, EnforcementMode::Soft).await;
    let mut written = Vec::new();
    for i in 0..23i64 {
        // Three records share each instant, so ties are broken by id.
        let at = t0() + chrono::Duration::seconds(i / 3);
        let l = if i % 4 == 0 { &b } else { &a };
        let user = format!("user,\"{i}\"\n");
        let r = record(l, at, "0.000021", "gpt-4o", Some(&user));
        s.record_usage(r.clone()).await.unwrap();
        written.push(r);
    }
    s.flush().await.unwrap();
    let mut expected: Vec<UsageRecord> = written.clone();
    expected.sort_by_key(|r| (r.at, r.id));

    for page_size in [1, 2, 7, 23, 100] {
        let mut got = Vec::new();
        let mut after: Option<UsageCursor> = None;
        loop {
            let page = s
                .usage_page(&UsageQuery::all(), after, page_size)
                .await
                .unwrap();
            assert!(page.len() <= page_size);
            let Some(last) = page.last() else { break };
            after = Some(UsageCursor::after(last));
            got.extend(page);
        }
        let ids: Vec<_> = got.iter().map(|r| r.id).collect();
        let want: Vec<_> = expected.iter().map(|r| r.id).collect();
        assert_eq!(ids, want, "page size {page_size}");
    }
    // What a record reads back as: the user with its comma, quotes and newline, the cost.
    let first = &s.usage_page(&UsageQuery::all(), None, 1).await.unwrap()[0];
    assert_eq!(first.user.as_deref(), expected[0].user.as_deref());
    assert_eq!(first.cost, m("0.000021"));

    // Filters: one limiter, and a time range [from, to).
    let only_b = s
        .usage_page(
            &UsageQuery {
                limiter_id: Some(b.id),
                ..UsageQuery::all()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(
        only_b.len(),
        written.iter().filter(|r| r.limiter_id == b.id).count()
    );
    assert!(only_b.iter().all(|r| r.limiter_id == b.id));
    let range = UsageQuery {
        from: Some(t0() + chrono::Duration::seconds(2)),
        to: Some(t0() + chrono::Duration::seconds(4)),
        ..UsageQuery::all()
    };
    let ranged = s.usage_page(&range, None, 100).await.unwrap();
    assert_eq!(ranged.len(), 6, "seconds 2 and 3, three records each");
    assert!(ranged
        .windows(2)
        .all(|w| (w[0].at, w[0].id) < (w[1].at, w[1].id)));

    // A record written before the cursor after the first page is not read by later pages.
    let page = s.usage_page(&UsageQuery::all(), None, 5).await.unwrap();
    let cursor = UsageCursor::after(page.last().unwrap());
    s.record_usage(record(
        &a,
        t0() - chrono::Duration::seconds(1),
        "1",
        "gpt-4o",
        None,
    ))
    .await
    .unwrap();
    s.flush().await.unwrap();
    let rest = s
        .usage_page(&UsageQuery::all(), Some(cursor), 100)
        .await
        .unwrap();
    assert_eq!(rest.len(), 23 - 5);
}

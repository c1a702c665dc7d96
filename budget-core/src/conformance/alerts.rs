//! The alert outbox: each event id once, claims that keep other senders off, outcomes, lists,
//! and alert settings kept with the limiter.

use super::*;
use crate::alert::{
    AlertEvent, AlertKind, AlertOutcome, AlertQuery, AlertSettings, AlertWindow, DeliveryStatus,
    Destination, WebhookFormat,
};
use crate::store::Error;

fn event(l: &Limiter, percent: u16, at: DateTime<Utc>) -> AlertEvent {
    let window = AlertWindow {
        period: Period::Month,
        start: t0(),
        end: t0() + chrono::Duration::days(30),
        budget: Money::from_dollars(10),
        spent: Money::from_cents(i64::from(percent) * 10),
    };
    AlertEvent {
        id: AlertEvent::threshold_id(l.id, &window, percent),
        kind: AlertKind::ThresholdCrossed,
        limiter_id: l.id,
        limiter_name: l.name.clone(),
        at,
        window: Some(window),
        threshold: Some(percent),
        destination: Destination {
            url: "https://hooks.example.com/services/T/B/secret".into(),
            format: WebhookFormat::Slack,
        },
    }
}

/// An event id is enqueued once however often (or concurrently) it is offered; a claim
/// counts an attempt and hides the event until the claim's end, from every caller; a retry
/// is due again at its time; delivered and failed events are never claimed again; lists are
/// newest first, filtered by limiter and status; alert settings round-trip with the limiter.
/// A store without an outbox answers [`Error::Unsupported`].
pub async fn alert_outbox_sends_each_event_once(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "10", Period::Month, EnforcementMode::Strict).await;
    let b = limiter(s, "10", Period::Month, EnforcementMode::Soft).await;
    let e80 = event(&a, 80, t0() + chrono::Duration::seconds(1));
    match s.enqueue_alert(&e80).await {
        Err(Error::Unsupported(what)) => {
            eprintln!("conformance: this store does not keep an {what}; alert checks skipped");
            return;
        }
        other => assert!(other.unwrap(), "a new id is added"),
    }
    // Offered again at once by many (replicas, requests): still one.
    let offers = futures::future::join_all((0..16).map(|_| {
        let store = store.clone();
        let e = e80.clone();
        async move { store.enqueue_alert(&e).await.unwrap() }
    }))
    .await;
    assert!(offers.iter().all(|added| !added), "an id once: {offers:?}");
    let e100 = event(&a, 100, t0() + chrono::Duration::seconds(2));
    let eb = event(&b, 80, t0() + chrono::Duration::seconds(3));
    assert!(s.enqueue_alert(&e100).await.unwrap());
    assert!(s.enqueue_alert(&eb).await.unwrap());

    let all = s
        .list_alerts(&AlertQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|d| d.event.id.as_str()).collect();
    assert_eq!(ids, [&eb.id, &e100.id, &e80.id], "newest first");
    assert_eq!(all[2].event, e80, "the event reads back as written");
    assert_eq!(all[2].status, DeliveryStatus::Pending);
    assert_eq!(all[2].attempts, 0);

    // Claims: due ones only, oldest first, at most `limit`; hidden until the claim ends.
    let now = t0() + chrono::Duration::seconds(10);
    let until = now + chrono::Duration::seconds(60);
    let claimed = s.claim_alerts(now, until, 2).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|d| d.event.id.as_str()).collect();
    assert_eq!(ids, [&e80.id, &e100.id]);
    assert!(claimed.iter().all(|d| d.attempts == 1));
    let rest = s.claim_alerts(now, until, 10).await.unwrap();
    assert_eq!(rest.len(), 1, "the claimed two are hidden");
    assert_eq!(rest[0].event.id, eb.id);
    assert!(
        s.claim_alerts(now + chrono::Duration::seconds(59), until, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing due before the claims end"
    );

    // Outcomes.
    s.finish_alert(&e80.id, &AlertOutcome::Delivered(now))
        .await
        .unwrap();
    let retry_at = now + chrono::Duration::seconds(5);
    s.finish_alert(
        &e100.id,
        &AlertOutcome::Retry {
            at: retry_at,
            error: "HTTP 500".into(),
        },
    )
    .await
    .unwrap();
    s.finish_alert(
        &eb.id,
        &AlertOutcome::Failed {
            error: "gave up".into(),
        },
    )
    .await
    .unwrap();
    s.finish_alert("no-such-event", &AlertOutcome::Delivered(now))
        .await
        .unwrap();
    assert!(s
        .claim_alerts(retry_at - chrono::Duration::milliseconds(1), until, 10)
        .await
        .unwrap()
        .is_empty());
    let again = s
        .claim_alerts(retry_at, retry_at + chrono::Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(
        again.len(),
        1,
        "only the retry is due; delivered and failed never are"
    );
    assert_eq!(again[0].event.id, e100.id);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].last_error.as_deref(), Some("HTTP 500"));

    let of_a = s
        .list_alerts(&AlertQuery {
            limiter_id: Some(a.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_a.len(), 2);
    let delivered = of_a.iter().find(|d| d.event.id == e80.id).unwrap();
    assert_eq!(delivered.status, DeliveryStatus::Delivered);
    assert_eq!(delivered.delivered_at, Some(now));
    let failed = s
        .list_alerts(&AlertQuery {
            status: Some(DeliveryStatus::Failed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event.id, eb.id);
    assert_eq!(failed[0].last_error.as_deref(), Some("gave up"));
    assert_eq!(
        s.list_alerts(&AlertQuery {
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .len(),
        1
    );

    // Settings live with the limiter.
    let settings = AlertSettings {
        thresholds: Some(vec![50, 90, 120]),
        webhook_url: Some("https://hooks.example.com/x".into()),
        format: Some(WebhookFormat::Slack),
        muted: false,
    };
    let updated = s
        .update_limiter(
            a.id,
            &LimiterUpdate {
                alerts: Some(Some(settings.clone())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.alerts.as_ref(), Some(&settings));
    assert_eq!(
        s.get_limiter(a.id).await.unwrap().unwrap().alerts,
        Some(settings)
    );
    let reset = s
        .update_limiter(
            a.id,
            &LimiterUpdate {
                alerts: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(reset.alerts, None);
    assert_eq!(s.get_limiter(a.id).await.unwrap().unwrap().alerts, None);
}

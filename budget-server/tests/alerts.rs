//! Threshold alerts by webhook, against a real HTTP receiver on a real socket and a server on
//! a real SQLite file: one event per threshold under 200 concurrent requests, signed; a
//! receiver that fails three times gets it on retry; a restart between a failure and its
//! retry still delivers; a receiver that hangs does not slow the proxy.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use bytes::Bytes;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::TestServer;

const SECRET: &str = "test-alert-secret-0123456789";

/// What the receiver got: path, headers, body.
type Got = (String, HeaderMap, Bytes);

/// A webhook receiver: answers 500 to the first `fail` requests, never answers while `hang`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    fail: Arc<AtomicUsize>,
    hang: Arc<AtomicBool>,
    /// Answer 200 with a body that starts and never ends.
    dribble: Arc<AtomicBool>,
    hanging: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let app = axum::Router::new()
            .fallback(
                |State(r): State<Receiver>, uri: http::Uri, headers: HeaderMap, body: Bytes| async move {
                    if r.hang.load(Ordering::SeqCst) {
                        r.hanging.fetch_add(1, Ordering::SeqCst);
                        std::future::pending::<()>().await;
                    }
                    r.got
                        .lock()
                        .unwrap()
                        .push((uri.path().to_owned(), headers, body));
                    if r
                        .fail
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    if r.dribble.load(Ordering::SeqCst) {
                        let endless = futures::stream::once(async {
                            Ok::<_, std::io::Error>(Bytes::from_static(b"{\"ok\":"))
                        })
                        .chain(futures::stream::pending());
                        return axum::body::Body::from_stream(endless).into_response();
                    }
                    StatusCode::NO_CONTENT.into_response()
                },
            )
            .with_state(r.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (r, url)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The JSON bodies received, in order.
    fn events(&self) -> Vec<Value> {
        self.got()
            .iter()
            .map(|(_, _, b)| serde_json::from_slice(b).unwrap())
            .collect()
    }

    /// Wait until `n` requests arrived (or 20 s passed), then a little longer for any extra.
    async fn wait_for(&self, n: usize) {
        let start = Instant::now();
        while self.got.lock().unwrap().len() < n && start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
}

/// Check the signature headers of a delivery the way the docs tell receivers to.
fn verify(headers: &HeaderMap, body: &[u8]) {
    let ts = headers["x-budget-timestamp"].to_str().unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        (now - ts.parse::<i64>().unwrap()).abs() < 60,
        "fresh timestamp"
    );
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        headers["x-budget-signature"].to_str().unwrap(),
        format!("v1={want}")
    );
    assert!(headers.contains_key("x-budget-event-id"));
}

/// A server on the SQLite file `db` that sends alerts to `webhook`, signed with [`SECRET`].
async fn start_server(
    db: &std::path::Path,
    webhook: Option<&str>,
    tune: impl FnOnce(&mut Config),
) -> TestServer {
    TestServer::start(db, |c| {
        alerting(c, webhook);
        tune(c)
    })
    .await
}

/// The same on any `DATABASE_URL`.
async fn start_on(
    database_url: String,
    webhook: Option<&str>,
    tune: impl FnOnce(&mut Config),
) -> TestServer {
    TestServer::on(database_url, |c| {
        alerting(c, webhook);
        tune(c)
    })
    .await
}

fn alerting(c: &mut Config, webhook: Option<&str>) {
    c.allow_link_local_upstreams = true;
    c.alert_webhook_url = webhook.map(str::to_owned);
    c.alert_webhook_secret = Some(SECRET.into());
    c.alert_retry_base_ms = 200;
}

/// A small chat completion through the limiter `code`; its status.
async fn chat(srv: &TestServer, code: &str) -> StatusCode {
    common::call(
        &srv.url,
        "POST",
        &format!("/v1/{code}/chat/completions"),
        Some("Bearer sk-client"),
        Some(json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20})),
    )
    .await
    .0
}

async fn deliveries(srv: &TestServer) -> Vec<Value> {
    srv.api("GET", "/api/alerts", None).await["deliveries"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_threshold_fires_once_under_200_concurrent_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    let srv = start_server(
        &dir.path().join("a.db"),
        Some(&format!("{hook}/alerts")),
        |_| {},
    )
    .await;

    // What one request costs, measured on a limiter of its own.
    let (probe_id, probe) = srv
        .limiter(json!({"name": "probe", "budget_limit": 100, "period_type": "month", "base_url": mock.url(),
                        "alerts": {"muted": true}}))
        .await;
    assert_eq!(chat(&srv, &probe).await, StatusCode::OK);
    srv.state.layer.settlements().await;
    let cost = srv
        .api("GET", &format!("/api/limiters/{probe_id}"), None)
        .await["current_spend"]
        .as_f64()
        .unwrap();
    assert!(cost > 0.0);

    // A soft budget of 100 requests: 200 at once cross 80 % and 100 % together.
    let budget = format!("{:.9}", cost * 100.0);
    let (id, code) = srv
        .limiter(json!({"name": "team <a&b>", "budget_limit": budget, "period_type": "month", "base_url": mock.url()}))
        .await;
    let statuses = futures::future::join_all((0..200).map(|_| chat(&srv, &code))).await;
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!(
        ok >= 100,
        "a soft limiter admits until spent: {ok} admitted"
    );
    srv.state.layer.settlements().await;
    // Once spent, a request is refused: the window is exhausted (the first refusal only).
    for _ in 0..5 {
        assert_eq!(chat(&srv, &code).await, StatusCode::TOO_MANY_REQUESTS);
    }
    rx.wait_for(3).await;

    let got = rx.got();
    let events = rx.events();
    let mut kinds: Vec<(String, Value)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["threshold_percent"].clone(),
            )
        })
        .collect();
    kinds.sort_by_key(|(k, t)| (k.clone(), t.as_u64()));
    assert_eq!(
        kinds,
        [
            ("exhausted".to_owned(), Value::Null),
            ("threshold_crossed".to_owned(), json!(80)),
            ("threshold_crossed".to_owned(), json!(100)),
        ],
        "one event per threshold and one exhausted: {events:#?}"
    );
    for ((path, headers, body), e) in got.iter().zip(&events) {
        assert_eq!(path, "/alerts");
        verify(headers, body);
        assert_eq!(headers["x-budget-event-id"].to_str().unwrap(), e["id"]);
        assert_eq!(headers["x-budget-event-type"].to_str().unwrap(), e["type"]);
        assert_eq!(e["limiter"]["id"], id.as_str());
        assert_eq!(e["limiter"]["name"], "team <a&b>");
        assert_eq!(e["window"]["period"], "month");
        assert_eq!(e["window"]["budget_usd"], budget.trim_end_matches('0'));
    }
    let e80 = events
        .iter()
        .find(|e| e["threshold_percent"] == 80)
        .unwrap();
    let used: f64 = e80["window"]["percent_used"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(used >= 80.0, "{e80}");

    // The API lists them delivered, and /metrics counts them.
    let listed = deliveries(&srv).await;
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1),
        "{listed:#?}"
    );
    assert!(
        listed
            .iter()
            .all(|d| d["destination"] == format!("{hook}/…")),
        "redacted: {listed:#?}"
    );
    let metrics =
        String::from_utf8(srv.send("GET", "/metrics", &[], "").await.bytes.to_vec()).unwrap();
    assert!(
        metrics.contains("budget_alert_deliveries_total{outcome=\"delivered\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("budget_alert_events_total{kind=\"threshold_crossed\"} 2"),
        "{metrics}"
    );

    // A muted limiter raised nothing, and a new look (a restart) raises nothing again.
    srv.stop().await;
    let again = start_server(
        &dir.path().join("a.db"),
        Some(&format!("{hook}/alerts")),
        |_| {},
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        rx.got().len(),
        3,
        "a restart finds the events already raised"
    );
    assert_eq!(deliveries(&again).await.len(), 3);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_fails_three_times_gets_the_event_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    rx.fail.store(3, Ordering::SeqCst);
    let srv = start_server(&dir.path().join("b.db"), None, |_| {}).await;
    // Its own webhook, in Slack's format.
    let (id, _) = srv
        .limiter(json!({"name": "slacky", "budget_limit": 5, "period_type": "day", "base_url": mock.url(),
                        "alerts": {"webhook_url": format!("{hook}/slack/T0/B0/secret"), "format": "slack"}}))
        .await;
    srv.api(
        "PUT",
        &format!("/api/limiters/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    rx.wait_for(4).await;
    let got = rx.got();
    assert_eq!(got.len(), 4, "three failures, then the success");
    let ids: Vec<&str> = got
        .iter()
        .map(|(_, h, _)| h["x-budget-event-id"].to_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|i| *i == ids[0]),
        "the same event each time: {ids:?}"
    );
    for (path, headers, body) in &got {
        assert_eq!(path, "/slack/T0/B0/secret");
        verify(headers, body);
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            v,
            json!({"text": "Limiter *slacky* was deactivated: it refuses every request."})
        );
    }
    let d = deliveries(&srv).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 4);
    assert_eq!(d[0]["last_error"], "HTTP 500");
    assert_eq!(d[0]["kind"], "deactivated");
    // Lists and the audit trail never show the webhook's secret path.
    assert_eq!(d[0]["destination"], format!("{hook}/…"));
    let audit = srv
        .api("GET", &format!("/api/audit?limiter_id={id}"), None)
        .await;
    assert!(!audit.to_string().contains("secret"), "{audit}");
    // Reactivating and deactivating again is a new event.
    srv.api(
        "PUT",
        &format!("/api/limiters/{id}"),
        Some(json!({"is_active": true})),
    )
    .await;
    srv.api(
        "PUT",
        &format!("/api/limiters/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    srv.api("DELETE", &format!("/api/limiters/{id}"), None)
        .await;
    rx.wait_for(6).await;
    let kinds: Vec<String> = rx.got()[4..]
        .iter()
        .map(|(_, h, _)| h["x-budget-event-type"].to_str().unwrap().to_owned())
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, ["deactivated", "deleted"]);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_between_a_failure_and_its_retry_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    rx.fail.store(usize::MAX, Ordering::SeqCst);
    // The first retry waits 4–8 s: long enough to stop the server in between.
    let srv = start_server(&db, Some(&hook), |c| c.alert_retry_base_ms = 8_000).await;
    let (id, _) = srv
        .limiter(
            json!({"name": "r", "budget_limit": 5, "period_type": "day", "base_url": mock.url()}),
        )
        .await;
    srv.api(
        "PUT",
        &format!("/api/limiters/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    let start = Instant::now();
    loop {
        let d = deliveries(&srv).await;
        if d.first().is_some_and(|d| d["last_error"] == "HTTP 500") {
            assert_eq!(d[0]["status"], "pending");
            assert_eq!(d[0]["attempts"], 1);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "first attempt: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop().await;
    assert_eq!(rx.got().len(), 1);

    // The receiver is fixed; another server on the same database sends it when due.
    rx.fail.store(0, Ordering::SeqCst);
    let srv = start_server(&db, Some(&hook), |c| c.alert_retry_base_ms = 8_000).await;
    rx.wait_for(2).await;
    let got = rx.got();
    assert_eq!(got.len(), 2, "delivered once after the restart");
    assert_eq!(got[0].1["x-budget-event-id"], got[1].1["x-budget-event-id"]);
    let d = deliveries(&srv).await;
    assert_eq!(d[0]["status"], "delivered");
    assert_eq!(d[0]["attempts"], 2);
    srv.stop().await;
}

async fn median_latency(srv: &TestServer, code: &str) -> Duration {
    let mut took = Vec::new();
    for _ in 0..60 {
        let t = Instant::now();
        assert_eq!(chat(srv, code).await, StatusCode::OK);
        took.push(t.elapsed());
    }
    took.sort();
    took[took.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_hangs_does_not_slow_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    let srv = start_server(&dir.path().join("d.db"), Some(&hook), |c| {
        c.alert_timeout_secs = 60
    })
    .await;
    let (_, code) = srv
        .limiter(json!({"name": "busy", "budget_limit": 1000, "period_type": "month", "base_url": mock.url(),
                        "alerts": {"muted": true}}))
        .await;
    let before = median_latency(&srv, &code).await;

    // Twelve deactivations: more events than the sender's slots, every one left hanging.
    rx.hang.store(true, Ordering::SeqCst);
    for i in 0..12 {
        let (id, _) = srv
            .limiter(json!({"name": format!("h{i}"), "budget_limit": 5, "period_type": "day", "base_url": mock.url()}))
            .await;
        srv.api(
            "PUT",
            &format!("/api/limiters/{id}"),
            Some(json!({"is_active": false})),
        )
        .await;
    }
    let start = Instant::now();
    while rx.hanging.load(Ordering::SeqCst) < 8 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        rx.hanging.load(Ordering::SeqCst),
        8,
        "every delivery slot hangs"
    );
    let during = median_latency(&srv, &code).await;
    println!(
        "proxied request, median of 60: {before:?} before, {during:?} with 8 deliveries hanging"
    );
    assert!(
        during < before * 3 + Duration::from_millis(20),
        "a hanging receiver slowed the proxy: {before:?} -> {during:?}"
    );
    let pending = deliveries(&srv).await;
    assert_eq!(pending.len(), 12);
    assert!(pending.iter().all(|d| d["status"] == "pending"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgresql_send_each_event_once() {
    let Some(cluster) = budget_store_postgres::testing::TestCluster::shared(
        "two_replicas_on_postgresql_send_each_event_once",
    ) else {
        return;
    };
    let url = cluster.fresh_database().await;
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    let a = start_on(url.clone(), Some(&hook), |_| {}).await;
    let b = start_on(url, Some(&hook), |_| {}).await;

    let (probe_id, probe) = a
        .limiter(json!({"name": "probe", "budget_limit": 100, "period_type": "month", "base_url": mock.url(),
                        "alerts": {"muted": true}}))
        .await;
    assert_eq!(chat(&a, &probe).await, StatusCode::OK);
    a.state.layer.settlements().await;
    let start = Instant::now();
    let cost = loop {
        let c = a
            .api("GET", &format!("/api/limiters/{probe_id}"), None)
            .await["current_spend"]
            .as_f64()
            .unwrap();
        if c > 0.0 {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "usage written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // One soft budget of 60 requests, spent through both replicas at once.
    let budget = format!("{:.9}", cost * 60.0);
    let (_, code) = a
        .limiter(json!({"name": "shared", "budget_limit": budget, "period_type": "month", "base_url": mock.url()}))
        .await;
    let requests = (0..120).map(|i| {
        let (srv, code) = (if i % 2 == 0 { &a } else { &b }, code.clone());
        async move { chat(srv, &code).await }
    });
    futures::future::join_all(requests).await;
    a.state.layer.settlements().await;
    b.state.layer.settlements().await;
    // Spent by now: both replicas refuse, and both notice the window is exhausted.
    let start = Instant::now();
    let (mut refused_a, mut refused_b) = (false, false);
    while !(refused_a && refused_b) && start.elapsed() < Duration::from_secs(20) {
        refused_a |= chat(&a, &code).await == StatusCode::TOO_MANY_REQUESTS;
        refused_b |= chat(&b, &code).await == StatusCode::TOO_MANY_REQUESTS;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        refused_a && refused_b,
        "both replicas refuse once the budget is spent"
    );
    rx.wait_for(3).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let got = rx.got();
    let mut ids: Vec<String> = got
        .iter()
        .map(|(_, h, _)| h["x-budget-event-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(got.len(), 3, "three events, each sent once: {ids:#?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:#?}");
    let mut kinds: Vec<String> = rx
        .events()
        .iter()
        .map(|e| format!("{} {}", e["type"].as_str().unwrap(), e["threshold_percent"]))
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "exhausted null",
            "threshold_crossed 100",
            "threshold_crossed 80"
        ]
    );
    for (_, headers, body) in &got {
        verify(headers, body);
    }
    // Both replicas list the same three, delivered.
    for srv in [&a, &b] {
        let d = deliveries(srv).await;
        let of_shared: Vec<&Value> = d.iter().filter(|d| d["limiter_name"] == "shared").collect();
        assert_eq!(of_shared.len(), 3);
        assert!(of_shared
            .iter()
            .all(|d| d["status"] == "delivered" && d["attempts"] == 1));
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_answers_2xx_then_dribbles_its_body_has_the_event() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let (rx, hook) = Receiver::start().await;
    rx.dribble.store(true, Ordering::SeqCst);
    let srv = start_server(&dir.path().join("e.db"), Some(&hook), |c| {
        c.alert_timeout_secs = 2
    })
    .await;
    let (id, _) = srv
        .limiter(
            json!({"name": "d", "budget_limit": 5, "period_type": "day", "base_url": mock.url()}),
        )
        .await;
    srv.api(
        "PUT",
        &format!("/api/limiters/{id}"),
        Some(json!({"is_active": false})),
    )
    .await;
    let start = Instant::now();
    loop {
        let d = deliveries(&srv).await;
        if d.first().is_some_and(|d| d["status"] == "delivered") {
            assert_eq!(d[0]["attempts"], 1, "the status decided: {d:?}");
            assert_eq!(d[0]["last_error"], Value::Null);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "delivered: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rx.got().len(), 1);
    srv.stop().await;
}

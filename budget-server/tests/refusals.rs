//! Refused requests are visible: counted per limiter and reason, shown on the limiter, in its
//! stats and in the statistics overview, exported in `/metrics`, and stored as one row per
//! limiter, minute and reason however many requests are refused.

use budget_core::store::BudgetStore;
use budget_mock_upstream::{MockOptions, MockUpstream};
use http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::TestServer;

/// The status and the body's text; `auth` is sent as the `Authorization` header, empty or not.
async fn call(
    url: &str,
    method: &str,
    path: &str,
    auth: &str,
    body: Option<Value>,
) -> (StatusCode, String) {
    let a = common::request(url, method, path, Some(auth), body).await;
    (a.status, a.text)
}

#[tokio::test]
async fn refusals_are_counted_by_reason_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let srv = TestServer::start(&dir.path().join("refusals.db"), |c| {
        c.allow_link_local_upstreams = true
    })
    .await;
    let (url, admin, state) = (srv.url.clone(), srv.admin.clone(), &srv.state);

    // A strict limiter too small for any request, and models limited to one.
    let (_, l) = call(
        &url,
        "POST",
        "/api/limiters",
        &admin,
        Some(json!({"name": "blocked", "budget_limit": 0.000001, "period_type": "day", "base_url": mock.url(),
                    "mode": "strict", "allowed_models": ["gpt-4o-mini"]})),
    )
    .await;
    let l: Value = serde_json::from_str(&l).unwrap();
    let (id, code) = (
        l["id"].as_str().unwrap().to_owned(),
        l["code"].as_str().unwrap().to_owned(),
    );
    assert_eq!(l["refused"]["total"], 0);
    let chat = |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50});
    let client = "Bearer sk-client";
    for _ in 0..300 {
        let (s, _) = call(
            &url,
            "POST",
            &format!("/v1/{code}/chat/completions"),
            client,
            Some(chat("gpt-4o-mini")),
        )
        .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    }
    for _ in 0..3 {
        let (s, _) = call(
            &url,
            "POST",
            &format!("/v1/{code}/chat/completions"),
            client,
            Some(chat("gpt-4o")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, _) = call(
        &url,
        "POST",
        &format!("/v1/{code}/batches"),
        client,
        Some(json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    call(
        &url,
        "PUT",
        &format!("/api/limiters/{id}"),
        &admin,
        Some(json!({"is_active": false})),
    )
    .await;
    for _ in 0..2 {
        let (s, _) = call(
            &url,
            "POST",
            &format!("/v1/{code}/chat/completions"),
            client,
            Some(chat("gpt-4o-mini")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    assert_eq!(mock.request_count(), 0, "nothing reached the upstream");
    state.metrics.flush_refusals().await;

    let want = json!({"total": 306, "by_reason": {"budget": 300, "model_rule": 3, "unknown_endpoint": 1, "inactive": 2}});
    let (_, view) = call(&url, "GET", &format!("/api/limiters/{id}"), &admin, None).await;
    let view: Value = serde_json::from_str(&view).unwrap();
    assert_eq!(view["refused"], want, "on the limiter");
    let (_, stats) = call(
        &url,
        "GET",
        &format!("/api/limiters/{id}/stats"),
        &admin,
        None,
    )
    .await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert_eq!(stats["refused"], want, "in its stats");
    assert_eq!(
        stats["total_requests"], 0,
        "no request reached the upstream"
    );
    let (_, overview) = call(&url, "GET", "/api/stats", &admin, None).await;
    let overview: Value = serde_json::from_str(&overview).unwrap();
    let row = overview["limiters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["limiter_id"] == id.as_str())
        .unwrap();
    assert_eq!(row["refused"], want, "on the statistics page");
    let (_, metrics) = call(&url, "GET", "/metrics", "", None).await;
    assert!(
        metrics.contains(&format!(
            "budget_refused_requests_total{{limiter=\"{id}\",reason=\"budget\"}} 300"
        )),
        "{metrics}"
    );

    // Stored as a handful of rows, not one per refused request.
    state.sqlite.as_ref().unwrap().flush().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refusals")
        .fetch_one(state.sqlite.as_ref().unwrap().pool())
        .await
        .unwrap();
    assert!((4..=8).contains(&rows), "{rows} rows for 306 refusals");
}

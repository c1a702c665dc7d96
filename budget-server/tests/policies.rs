//! Budget policies from outside: set through the admin API, enforced by the proxy over real
//! sockets against the mock upstream — several windows, per-user budgets and overrides, model
//! rules, the price guard, expiry, a required user, and the price table on every record.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{json, Value};

use budget_core::store::prelude::*;
use budget_core::store::UsageQuery;
use budget_core::MemoryStore;
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use budget_server::state::AppState;

mod common;
use common::{Answer, TestServer};

struct Harness {
    server: TestServer,
    store: Arc<dyn Store>,
    state: AppState,
    mock: MockUpstream,
}

async fn start() -> Harness {
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = AppState::with_store(Config::for_tests(), store.clone(), None).unwrap();
    Harness {
        server: TestServer::serve(state.clone()).await,
        store,
        state,
        mock,
    }
}

impl Harness {
    async fn call(&self, method: &str, path: &str, admin: bool, body: Option<Value>) -> Answer {
        let auth = if admin {
            self.server.admin.as_str()
        } else {
            "Bearer sk-client"
        };
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.server
            .send(
                method,
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", auth),
                ],
                &body,
            )
            .await
    }

    /// Create a limiter through the admin API; its code.
    async fn limiter(&self, extra: Value) -> (String, String) {
        let mut body = json!({
            "name": "policies",
            "budget_limit": 100,
            "period_type": "day",
            "base_url": self.mock.url(),
        });
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let a = self.call("POST", "/api/limiters", true, Some(body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
        (
            a.json["id"].as_str().unwrap().to_owned(),
            a.json["code"].as_str().unwrap().to_owned(),
        )
    }

    async fn chat(&self, code: &str, body: Value) -> Answer {
        let a = self
            .call(
                "POST",
                &format!("/v1/{code}/chat/completions"),
                false,
                Some(body),
            )
            .await;
        // Settlements are tracked: wait for this one before the next request decides.
        self.state.layer.settlements().await;
        a
    }
}

fn chat(model: &str, user: Option<&str>) -> Value {
    let mut b = json!({"model": model, "messages": [{"role": "user", "content": "Hello"}]});
    if let Some(u) = user {
        b["user"] = json!(u);
    }
    b
}

fn code_of(a: &Answer) -> &str {
    let e = &a.json["error"];
    assert!(
        e["message"].is_string() && e["type"].is_string(),
        "{}",
        a.json
    );
    e["code"].as_str().unwrap()
}

#[tokio::test]
async fn an_extra_window_refuses_naming_itself_and_every_window_is_shown() {
    let h = start().await;
    // Soft: admitted while the window has room; one request uses up the tiny hourly budget.
    let (id, code) = h
        .limiter(json!({"extra_budgets": [{"budget_limit": 0.000001, "period_type": "hour"}]}))
        .await;
    assert_eq!(
        h.chat(&code, chat("gpt-4o", None)).await.status,
        StatusCode::OK
    );
    let a = h.chat(&code, chat("gpt-4o", None)).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.json);
    assert_eq!(code_of(&a), "budget_exceeded");
    let msg = a.json["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("per hour") && msg.contains("Resets at"),
        "{msg}"
    );
    assert_eq!(a.headers["x-budget-period"], "hour");
    let retry: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    assert_eq!(h.mock.requests().len(), 1, "the refusal reached nobody");

    let own = h
        .call("GET", &format!("/v1/{code}/budget"), false, None)
        .await;
    let windows = own.json["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{}", own.json);
    assert_eq!(
        (
            windows[0]["period_type"].as_str(),
            windows[0]["primary"].as_bool()
        ),
        (Some("day"), Some(true))
    );
    assert_eq!(windows[1]["period_type"], "hour");
    assert!(windows[1]["current_spend"].as_f64().unwrap() > 0.0);
    let admin = h
        .call("GET", &format!("/api/limiters/{id}"), true, None)
        .await;
    assert_eq!(admin.json["windows"].as_array().unwrap().len(), 2);
    assert_eq!(admin.json["extra_budgets"][0]["period_type"], "hour");
}

#[tokio::test]
async fn each_user_has_a_budget_and_an_override_lifts_one() {
    let h = start().await;
    let (id, code) = h
        .limiter(json!({"user_budget": {"budget_limit": 0.000001, "period_type": "day"}}))
        .await;
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("alice")))
            .await
            .status,
        StatusCode::OK
    );
    let a = h.chat(&code, chat("gpt-4o-mini", Some("alice"))).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"alice\""),
        "{}",
        a.json
    );
    assert_eq!(a.headers["x-budget-user"], "alice");
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("bob"))).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", None)).await.status,
        StatusCode::OK,
        "no user: the limiter's budget only"
    );

    let set = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}/users/alice"),
            true,
            Some(json!({"budget_limit": 5, "period_type": "day"})),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.json);
    assert_eq!(set.json["user_overrides"]["alice"]["budget_limit"], 5.0);
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("alice")))
            .await
            .status,
        StatusCode::OK
    );

    let users = h
        .call("GET", &format!("/api/limiters/{id}/users"), true, None)
        .await;
    let list = users.json.as_array().unwrap();
    let alice = list.iter().find(|u| u["user"] == "alice").unwrap();
    assert_eq!(
        (alice["is_override"].as_bool(), alice["requests"].as_u64()),
        (Some(true), Some(2))
    );
    assert!(list
        .iter()
        .any(|u| u["user"] == "bob" && u["is_override"] == false));
    // An override over another period is counted in its own window, even outside the top.
    let week = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}/users/bob"),
            true,
            Some(json!({"budget_limit": 2, "period_type": "week"})),
        )
        .await;
    assert_eq!(week.status, StatusCode::OK, "{}", week.json);
    let users = h
        .call(
            "GET",
            &format!("/api/limiters/{id}/users?limit=1"),
            true,
            None,
        )
        .await;
    let list = users.json.as_array().unwrap();
    let bob = list
        .iter()
        .find(|u| u["user"] == "bob")
        .expect("overrides are always listed");
    assert_eq!(
        (bob["requests"].as_u64(), bob["is_override"].as_bool()),
        (Some(1), Some(true))
    );
    assert!(bob["current_spend"].as_f64().unwrap() > 0.0);
    let week_start = budget_core::Period::Week
        .window_at(chrono::Utc::now())
        .start;
    assert_eq!(
        bob["period_start"].as_str().unwrap(),
        week_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    let bad = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}/users/alice"),
            true,
            Some(json!({"budget_limit": -1, "period_type": "day"})),
        )
        .await;
    assert!(bad.status.is_client_error(), "{}", bad.json);
    let del = h
        .call(
            "DELETE",
            &format!("/api/limiters/{id}/users/alice"),
            true,
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let again = h
        .call(
            "DELETE",
            &format!("/api/limiters/{id}/users/alice"),
            true,
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("alice")))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn model_rules_user_rule_expiry_and_validation() {
    let h = start().await;
    let (id, code) = h
        .limiter(
            json!({"allowed_models": ["gpt-4o-mini", "text-embedding-3-*"], "require_user": true}),
        )
        .await;
    let a = h.chat(&code, chat("gpt-4o", Some("u"))).await;
    assert_eq!(
        (a.status, code_of(&a)),
        (StatusCode::FORBIDDEN, "model_not_allowed")
    );
    assert!(a.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gpt-4o"));
    let a = h.chat(&code, chat("gpt-4o-mini", None)).await;
    assert_eq!(
        (a.status, code_of(&a)),
        (StatusCode::BAD_REQUEST, "user_required")
    );
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("u"))).await.status,
        StatusCode::OK
    );
    assert_eq!(h.mock.requests().len(), 1, "refusals reached nobody");

    let past = (chrono::Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339();
    let up = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}"),
            true,
            Some(json!({"expires_at": past})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.json);
    let a = h.chat(&code, chat("gpt-4o-mini", Some("u"))).await;
    assert_eq!(
        (a.status, code_of(&a)),
        (StatusCode::FORBIDDEN, "limiter_expired")
    );
    let up = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}"),
            true,
            Some(json!({"expires_at": null})),
        )
        .await;
    assert!(up.json["expires_at"].is_null());
    assert_eq!(
        h.chat(&code, chat("gpt-4o-mini", Some("u"))).await.status,
        StatusCode::OK
    );

    // An extra window of the limiter's own period is one budget twice: refused, named.
    let bad = h
        .call(
            "PUT",
            &format!("/api/limiters/{id}"),
            true,
            Some(json!({"extra_budgets": [{"budget_limit": 1, "period_type": "day"}]})),
        )
        .await;
    assert!(bad.status.is_client_error(), "{}", bad.json);
    assert_eq!(bad.json["error"]["field"], "extra_budgets", "{}", bad.json);
}

#[tokio::test]
async fn the_price_guard_caps_an_open_request_or_refuses_it() {
    let h = start().await;
    // gpt-4o's own output limit (16 384 tokens at $10/M) could cost $0.16: above $0.01.
    let (id, code) = h.limiter(json!({"max_request_cost": 0.01})).await;
    let a = h.chat(&code, chat("gpt-4o", None)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let sent = h.mock.requests()[0].json().unwrap();
    let limit = sent["max_completion_tokens"]
        .as_u64()
        .expect("an output limit was set");
    assert!(
        (900..1000).contains(&limit),
        "at most $0.01 of output: {limit}"
    );

    let mut explicit = chat("gpt-4o", None);
    explicit["max_tokens"] = json!(5000);
    let a = h.chat(&code, explicit).await;
    assert_eq!(
        (a.status, code_of(&a)),
        (StatusCode::BAD_REQUEST, "request_cost_too_high")
    );
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$0.01"),
        "{}",
        a.json
    );

    h.call(
        "PUT",
        &format!("/api/limiters/{id}"),
        true,
        Some(json!({"cap_output_tokens": false})),
    )
    .await;
    let a = h.chat(&code, chat("gpt-4o", None)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.mock.requests().len(), 1);

    // Every record names the price table that priced it.
    let rec = &h.store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    let version = rec.price_version.as_deref().unwrap();
    assert!(
        version.starts_with("sha256:") && version.len() == 23,
        "{version}"
    );
    assert_eq!(version, h.state.prices.version());
}

#[tokio::test]
async fn careless_policy_input_is_refused_naming_the_field_and_changes_nothing() {
    let h = start().await;
    let (id, _code) = h.limiter(json!({})).await;
    let long = "x".repeat(300);
    let many: Vec<Value> = [
        "minute", "hour", "week", "month", "year", "minute", "hour", "week", "month",
    ]
    .iter()
    .map(|p| json!({"budget_limit": 1, "period_type": p}))
    .collect();
    for (body, field) in [
        (json!({"extra_budgets": "lots"}), "extra_budgets"),
        (json!({"extra_budgets": many}), "extra_budgets"),
        (
            json!({"extra_budgets": [{"budget_limit": 0, "period_type": "hour"}]}),
            "extra_budgets",
        ),
        (
            json!({"extra_budgets": [{"budget_limit": 1, "period_type": "fortnight"}]}),
            "extra_budgets",
        ),
        (
            json!({"user_budget": {"budget_limit": -1, "period_type": "day"}}),
            "user_budget",
        ),
        (json!({"allowed_models": [long]}), "allowed_models"),
        (json!({"allowed_models": ["gpt 4o"]}), "allowed_models"),
        (json!({"max_request_cost": 0}), "max_request_cost"),
        (json!({"expires_at": "next tuesday"}), "expires_at"),
    ] {
        let a = h
            .call(
                "PUT",
                &format!("/api/limiters/{id}"),
                true,
                Some(body.clone()),
            )
            .await;
        assert!(
            a.status.is_client_error(),
            "{body}: {} {}",
            a.status,
            a.json
        );
        let named = a.json["error"]["field"].as_str().unwrap_or("");
        assert!(named.starts_with(field), "{body}: {}", a.json);
    }
    let long_user = format!("/api/limiters/{id}/users/{}", "u".repeat(300));
    let a = h
        .call(
            "PUT",
            &long_user,
            true,
            Some(json!({"budget_limit": 1, "period_type": "day"})),
        )
        .await;
    assert!(a.status.is_client_error(), "{}", a.json);
    assert_eq!(a.json["error"]["field"], "user");
    let unchanged = h
        .call("GET", &format!("/api/limiters/{id}"), true, None)
        .await;
    assert!(unchanged.json["extra_budgets"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(unchanged.json["user_overrides"]
        .as_object()
        .unwrap()
        .is_empty());
}

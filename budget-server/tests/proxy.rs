//! The proxy over real sockets: client → budget-server → OpenAI-compatible mock upstream.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::sync::Arc;
use std::time::Duration;

use budget_core::store::UsageQuery;
use budget_core::{EnforcementMode, Limiter, MemoryStore, Money, NewLimiter, Period, Provider};
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use budget_server::state::AppState;
use http::StatusCode;

mod common;
use common::TestServer;

struct Harness {
    server: TestServer,
    store: Arc<dyn Store>,
    mock: MockUpstream,
}

async fn start_with(config: Config, opts: MockOptions) -> Harness {
    let mock = MockUpstream::start(opts).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = AppState::with_store(config, store.clone(), None).unwrap();
    Harness {
        server: TestServer::serve(state).await,
        store,
        mock,
    }
}

async fn start(opts: MockOptions) -> Harness {
    start_with(Config::for_tests(), opts).await
}

impl Harness {
    async fn limiter(&self, budget: &str, provider: Provider, mode: EnforcementMode) -> Limiter {
        let mut n = NewLimiter::new(
            "proxy test",
            budget.parse().unwrap(),
            Period::Day,
            self.mock.url(),
        );
        n.provider = Some(provider);
        n.mode = Some(mode);
        let l = Limiter::create(n, chrono::Utc::now()).unwrap();
        self.store.create_limiter(&l).await.unwrap();
        l
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, http::HeaderMap, String) {
        let a = self.server.send(method, path, headers, body).await;
        (a.status, a.headers, a.text)
    }

    async fn chat(&self, l: &Limiter, body: &str) -> (StatusCode, http::HeaderMap, String) {
        let path = format!("/v1/{}/chat/completions", l.code);
        self.send(
            "POST",
            &path,
            &[
                ("authorization", "Bearer sk-test"),
                ("content-type", "application/json"),
            ],
            body,
        )
        .await
    }

    async fn settled(&self, l: &Limiter) -> budget_core::store::WindowSpend {
        for _ in 0..400 {
            let w = primary_window_spend(&*self.store, l.id, chrono::Utc::now())
                .await
                .unwrap();
            if w.in_flight == 0 {
                return w;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("not settled");
    }

    async fn last_record(&self) -> budget_core::store::UsageRecord {
        self.store
            .recent_usage(&UsageQuery::all(), 1)
            .await
            .unwrap()
            .remove(0)
    }
}

#[tokio::test]
async fn chat_json_is_forwarded_with_the_clients_key_and_metered() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let (status, headers, body) = h.chat(&l, r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hello there"}],"user":"u-42"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(headers.contains_key("x-budget-remaining"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let seen = h.mock.last_request().unwrap();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer sk-test"),
        "the client's key goes upstream"
    );
    assert_eq!(seen.header("accept-encoding"), Some("identity"));
    assert_ne!(
        seen.header("host"),
        Some(h.server.url.trim_start_matches("http://")),
        "Host is the upstream's"
    );
    h.settled(&l).await;
    let rec = h.last_record().await;
    assert_eq!(
        rec.prompt_tokens,
        v["usage"]["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        rec.completion_tokens,
        v["usage"]["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(rec.user.as_deref(), Some("u-42"));
    assert!(rec.cost > Money::ZERO && !rec.estimated && !rec.unpriced);
}

#[tokio::test]
async fn streams_split_at_awkward_boundaries_arrive_intact_without_the_injected_usage() {
    let h = start(MockOptions::default().with_split_events(true)).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let (status, headers, body) = h
        .chat(
            &l,
            r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    assert!(
        !body.contains("\"usage\""),
        "client did not ask for usage: {body}"
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
    let sent = h.mock.last_request().unwrap().json().unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    h.settled(&l).await;
    let rec = h.last_record().await;
    assert!(!rec.estimated && rec.streamed && rec.completion_tokens > 0);

    // A client that asked for usage gets it untouched.
    let (_, _, body) = h.chat(&l, r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#).await;
    assert!(body.contains("\"usage\""));
    h.settled(&l).await;
}

#[tokio::test]
async fn other_apis_are_metered_too() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let auth = [
        ("authorization", "Bearer sk-test"),
        ("content-type", "application/json"),
    ];
    let code = l.code.to_string();
    for (path, body) in [
        (
            "embeddings",
            r#"{"model":"text-embedding-3-small","input":"hello world"}"#,
        ),
        (
            "completions",
            r#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say hi"}"#,
        ),
        ("responses", r#"{"model":"gpt-4o","input":"Say hi"}"#),
        (
            "responses",
            r#"{"model":"gpt-4o","input":"Say hi","stream":true}"#,
        ),
    ] {
        let (status, _, text) = h
            .send("POST", &format!("/v1/{code}/{path}"), &auth, body)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {text}");
        h.settled(&l).await;
        let rec = h.last_record().await;
        assert!(rec.prompt_tokens > 0 && !rec.estimated, "{path}: {rec:?}");
        assert!(rec.cost > Money::ZERO, "{path}");
    }
    // Endpoints without usage pass through unmetered.
    let (status, _, text) = h
        .send("GET", &format!("/v1/{code}/models"), &auth, "")
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn azure_deployments_keep_their_path_query_and_key() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Azure, EnforcementMode::Soft)
        .await;
    let path = format!(
        "/v1/{}/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21",
        l.code
    );
    let (status, _, body) = h
        .send(
            "POST",
            &path,
            &[
                ("api-key", "azure-key"),
                ("content-type", "application/json"),
            ],
            r#"{"messages":[{"role":"user","content":"Hi"}],"stream":true}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let seen = h.mock.last_request().unwrap();
    assert_eq!(
        seen.path,
        "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen.header("api-key"), Some("azure-key"));
    h.settled(&l).await;
    let rec = h.last_record().await;
    assert!(
        rec.model
            .as_deref()
            .is_some_and(|m| m.starts_with("gpt-4o")),
        "{rec:?}"
    );
    assert!(!rec.unpriced && !rec.estimated, "{rec:?}");
}

#[tokio::test]
async fn over_budget_is_refused_before_the_upstream_is_called() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("0.000001", Provider::Openai, EnforcementMode::Soft)
        .await;
    let (status, _, _) = h
        .chat(
            &l,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.settled(&l).await;
    let calls = h.mock.request_count();
    let (status, headers, body) = h
        .chat(
            &l,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["x-should-retry"], "false");
    assert!(headers.contains_key("retry-after"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "429");
    assert_eq!(v["error"]["code"], "budget_exceeded");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .starts_with("Budget limit exceeded: $"));
    assert_eq!(h.mock.request_count(), calls, "the upstream was not called");

    let (status, _, body) = h
        .send("GET", &format!("/v1/{}/budget", l.code), &[], "")
        .await;
    assert_eq!(status, StatusCode::OK);
    let b: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["remaining_budget"], 0.0);
    assert!(b["current_spend"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn upstream_failures_map_to_openai_shaped_502_and_504() {
    let mut config = Config::for_tests();
    config.upstream_first_byte_timeout_secs = 1;
    let h = start_with(config, MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let (status, _, body) = h.chat(&l, r#"{"model":"mock-slow","messages":[]}"#).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body.contains("upstream_timeout"));

    let mut n = NewLimiter::new(
        "dead",
        Money::from_dollars(1),
        Period::Day,
        "http://127.0.0.1:9",
    );
    n.provider = Some(Provider::Openai);
    let dead = Limiter::create(n, chrono::Utc::now()).unwrap();
    h.store.create_limiter(&dead).await.unwrap();
    let (status, _, body) = h.chat(&dead, r#"{"model":"gpt-4o","messages":[]}"#).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "upstream_unreachable");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("the upstream host refused the connection"),
        "the cause is named: {body}"
    );
    let mut n = NewLimiter::new(
        "no such host",
        Money::from_dollars(1),
        Period::Day,
        "http://no-such-host.invalid",
    );
    n.provider = Some(Provider::Openai);
    let nowhere = Limiter::create(n, chrono::Utc::now()).unwrap();
    h.store.create_limiter(&nowhere).await.unwrap();
    let (status, _, body) = h
        .chat(&nowhere, r#"{"model":"gpt-4o","messages":[]}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("DNS lookup"), "{body}");
    let w = h.settled(&dead).await;
    assert_eq!(
        (w.spent, w.held),
        (Money::ZERO, Money::ZERO),
        "failures charge nothing"
    );

    // Upstream errors pass through unchanged.
    let (status, _, body) = h
        .chat(&l, r#"{"model":"mock-error-500","messages":[]}"#)
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("\"error\""));
}

#[tokio::test]
async fn budgets_can_be_switched_off_for_plain_pass_through() {
    let mut config = Config::for_tests();
    config.budgets_enabled = false;
    let h = start_with(config, MockOptions::default()).await;
    let l = h
        .limiter("0.000000001", Provider::Openai, EnforcementMode::Strict)
        .await;
    for _ in 0..2 {
        let (status, _, _) = h.chat(&l, r#"{"model":"gpt-4o","messages":[]}"#).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(
        h.store
            .recent_usage(&UsageQuery::all(), 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing metered"
    );
    let (status, _, _) = h
        .chat(
            &Limiter {
                code: budget_core::LimiterCode::generate(),
                ..l
            },
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operations_endpoints_and_routing() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    h.chat(&l, r#"{"model":"gpt-4o","messages":[]}"#).await;
    h.settled(&l).await;
    let (status, _, body) = h.send("GET", "/health", &[], "").await;
    assert_eq!((status, body.contains("\"ok\"")), (StatusCode::OK, true));
    let (status, _, body) = h.send("GET", "/metrics", &[], "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("budget_requests_total"), "{body}");
    assert!(
        body.contains(&format!("limiter=\"{}\",status=\"200\"", l.id)),
        "{body}"
    );
    assert!(body.contains("budget_budget_limit_dollars"));
    // The dashboard's client-side routes get the app shell; API paths are never shadowed.
    for path in ["/", "/login", "/statistics"] {
        let (status, headers, _) = h.send("GET", path, &[], "").await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
    let (status, headers, _) = h.send("GET", "/api/no-such-thing", &[], "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let (status, _, body) = h
        .send(
            "POST",
            "/v1/0123456789abcdef0123456789abcdef/chat/completions",
            &[],
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("limiter_not_found"));
}

/// The code and type of an OpenAI-shaped error body.
fn error_code(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{body}"));
    let s = |k: &str| v["error"][k].as_str().unwrap_or_default().to_owned();
    assert!(!s("message").is_empty(), "{body}");
    (s("code"), s("type"))
}

#[tokio::test]
async fn equivalent_spellings_of_a_path_are_refused_not_forwarded() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("0.001", Provider::Openai, EnforcementMode::Strict)
        .await;
    let variants = [
        "chat/complet%69ons",
        "chat/completions/.",
        "completions/x/..",
        "chat/completions/x/..",
        "chat//completions",
        "chat/completions/",
        "./chat/completions",
        "chat/%63ompletions",
        "chat%2Fcompletions",
        "chat/completions;v=1",
        "embeddings/.",
        "responses/..%2F",
    ];
    let calls = h.mock.request_count();
    for rest in variants {
        let (status, headers, body) = h
            .send(
                "POST",
                &format!("/v1/{}/{rest}", l.code),
                &[
                    ("authorization", "Bearer sk-test"),
                    ("content-type", "application/json"),
                ],
                r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rest}: {body}");
        assert_eq!(error_code(&body).0, "invalid_path", "{rest}");
        assert_eq!(headers["x-should-retry"], "false");
    }
    assert_eq!(
        h.mock.request_count(),
        calls,
        "nothing reached the upstream"
    );
    // The literal path is metered.
    let (status, _, _) = h
        .chat(
            &l,
            r#"{"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.settled(&l).await.spent > Money::ZERO);

    // Without the budget layer the proxy refuses them too.
    let mut config = Config::for_tests();
    config.budgets_enabled = false;
    let plain = start_with(config, MockOptions::default()).await;
    let pl = plain
        .limiter("1", Provider::Openai, EnforcementMode::Soft)
        .await;
    let (status, _, body) = plain
        .send(
            "POST",
            &format!("/v1/{}/chat/complet%69ons", pl.code),
            &[],
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(plain.mock.request_count(), 0);
}

#[tokio::test]
async fn costly_unmetered_and_unknown_endpoints_are_refused_unless_admitted() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let key = [
        ("authorization", "Bearer sk-test"),
        ("content-type", "application/json"),
    ];
    let calls = h.mock.request_count();
    for (path, code) in [
        ("batches", "unmetered_endpoint"),
        ("fine_tuning/jobs", "unmetered_endpoint"),
        ("realtime/sessions", "unmetered_endpoint"),
        ("vector_stores/vs_1/search", "unmetered_endpoint"),
        ("threads/thread_1/runs", "unmetered_endpoint"),
        ("brand/new/endpoint", "unknown_endpoint"),
    ] {
        let (status, _, body) = h
            .send("POST", &format!("/v1/{}/{path}", l.code), &key, "{}")
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let (c, kind) = error_code(&body);
        assert_eq!((c.as_str(), kind.as_str()), (code, "permission_error"));
        assert!(body.contains("UNMETERED_ENDPOINTS=allow"), "{body}");
    }
    assert_eq!(
        h.mock.request_count(),
        calls,
        "nothing reached the upstream"
    );

    // Reads of the same resources, and free writes, pass.
    for (method, path) in [
        ("GET", "batches"),
        ("GET", "batches/batch_1"),
        ("POST", "batches/batch_1/cancel"),
        ("GET", "models"),
        ("GET", "brand/new/endpoint"),
    ] {
        h.send(method, &format!("/v1/{}/{path}", l.code), &key, "")
            .await;
    }
    assert_eq!(h.mock.request_count(), calls + 5);

    // The limiter's own setting admits them…
    h.store
        .update_limiter(
            l.id,
            &budget_core::LimiterUpdate {
                unmetered_endpoints: Some(Some(budget_core::api::UnmeteredPolicy::Allow)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the layer's 1 s limiter cache
    h.send("POST", &format!("/v1/{}/batches", l.code), &key, "{}")
        .await;
    assert_eq!(h.mock.request_count(), calls + 6);
    assert_eq!(h.mock.last_request().unwrap().path, "/v1/batches");

    // …and so does the server's.
    let mut config = Config::for_tests();
    config.unmetered_endpoints = budget_server::config::UnmeteredSetting::Allow;
    let open = start_with(config, MockOptions::default()).await;
    let ol = open
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    open.send(
        "POST",
        &format!("/v1/{}/fine_tuning/jobs", ol.code),
        &key,
        "{}",
    )
    .await;
    assert_eq!(open.mock.request_count(), 1);
}

#[tokio::test]
async fn azure_limiters_reach_only_the_azure_api() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Azure, EnforcementMode::Soft)
        .await;
    for (method, rest) in [
        ("GET", "__requests"),
        ("GET", "v1/models"),
        ("POST", "v1/chat/completions"),
        ("GET", "healthz"),
    ] {
        let (status, _, body) = h
            .send(
                method,
                &format!("/v1/{}/{rest}", l.code),
                &[("api-key", "k")],
                "{}",
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{rest}: {body}");
        assert_eq!(error_code(&body).0, "unknown_url");
    }
    assert_eq!(
        h.mock.request_count(),
        0,
        "nothing reached the upstream host"
    );
}

#[tokio::test]
async fn long_user_and_model_fields_are_refused_and_nothing_is_stored() {
    let h = start(MockOptions::default()).await;
    let l = h
        .limiter("20", Provider::Openai, EnforcementMode::Soft)
        .await;
    let big_user = "u".repeat(4 * 1024 * 1024);
    let long_model = "gpt-4o-".repeat(40);
    for (field, body) in [
        (
            "user",
            format!(r#"{{"model":"gpt-4o","user":"{big_user}","messages":[]}}"#),
        ),
        (
            "model",
            format!(r#"{{"model":"{long_model}","messages":[]}}"#),
        ),
    ] {
        let (status, _, text) = h.chat(&l, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(error_code(&text).0, "field_too_long");
        assert!(text.contains(field) && text.len() < 300, "{text}");
    }
    assert_eq!(h.mock.request_count(), 0);
    let stored = h.store.recent_usage(&UsageQuery::all(), 10).await.unwrap();
    assert!(stored.is_empty(), "{stored:?}");
    // 256 characters is still fine, and stored as sent.
    let ok_user = "é".repeat(256);
    let (status, _, _) = h
        .chat(
            &l,
            &format!(r#"{{"model":"gpt-4o","user":"{ok_user}","messages":[]}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    h.settled(&l).await;
    assert_eq!(
        h.last_record().await.user.as_deref(),
        Some(ok_user.as_str())
    );
}

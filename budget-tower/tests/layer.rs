//! The layer through `oneshot`, with a fake upstream service.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, BodyStream, Full};
use tower::{service_fn, ServiceBuilder, ServiceExt};

use budget_core::store::{UsageQuery, UsageRecord};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{EnforcementMode, LimiterUpdate, Provider, UnpricedPolicy};
use budget_tower::BudgetLayer;

fn json_upstream() -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<UpBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    service_fn(|_req: Request<Full<Bytes>>| async { Ok::<_, Infallible>(json_response(CHAT_JSON)) })
}

#[tokio::test]
async fn json_response_is_forwarded_and_metered() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(json_upstream());
    let body = r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"user":"alice"}"#;
    let res = svc
        .oneshot(chat_request(l.code.as_str(), body))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-budget-limit"], "20.00");
    assert!(res.headers().contains_key("x-budget-remaining"));
    assert!(res.headers()["x-budget-reset"]
        .to_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        body_string(res.into_body()).await,
        CHAT_JSON,
        "bytes identical to upstream"
    );

    let w = settled(&layer, &*store, &l).await;
    // gpt-4o-2024-08-06: (1000-200) × $2.50/M + 200 × $1.25/M + 500 × $10/M
    let expected = prices()
        .cost(
            &Usage {
                model: Some("gpt-4o-2024-08-06".into()),
                prompt_tokens: 1000,
                cached_tokens: 200,
                completion_tokens: 500,
                ..Usage::default()
            },
            Provider::Openai,
        )
        .total()
        .unwrap();
    assert_eq!(expected, money("0.00725"));
    assert_eq!(w.spent, expected);
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert_eq!(rec.user.as_deref(), Some("alice"));
    assert_eq!(
        (rec.prompt_tokens, rec.cached_tokens, rec.completion_tokens),
        (1000, 200, 500)
    );
    assert!(!rec.estimated && !rec.unpriced && !rec.streamed);
    assert_eq!(rec.endpoint, Endpoint::ChatCompletions);
}

trait LayerOn {
    fn layer_on<S>(&self, s: S) -> budget_tower::BudgetService<S>;
}
impl LayerOn for BudgetLayer {
    fn layer_on<S>(&self, s: S) -> budget_tower::BudgetService<S> {
        tower::Layer::layer(self, s)
    }
}

/// An SSE upstream that records what it was asked and streams `stream` in `chunk`-byte frames.
fn sse_upstream(
    seen: Seen,
    chunk: usize,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<UpBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    service_fn(move |req: Request<Full<Bytes>>| {
        let seen = seen.clone();
        async move {
            let v = read_request(&seen, req).await;
            let with_usage = v["stream_options"]["include_usage"] == true;
            let (stream, _) = chat_stream(&["Hel", "lo", " wor", "ld", "é€😀"], with_usage);
            Ok::<_, Infallible>(sse_response(chunked(stream.as_bytes(), chunk)))
        }
    })
}

#[tokio::test]
async fn sse_split_at_awkward_boundaries_is_untouched_when_client_asked_for_usage() {
    for size in [1, 2, 3, 7, 64, 4096] {
        let store = memory();
        let l = limiter(&*store, "20", EnforcementMode::Soft).await;
        let seen = Seen::default();
        let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
        let svc = layer.layer_on(sse_upstream(seen.clone(), size));
        let body = r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}"#;
        let res = svc
            .oneshot(chat_request(l.code.as_str(), body))
            .await
            .unwrap();
        let got = body_string(res.into_body()).await;
        let (expected, usage_chunk) = chat_stream(&["Hel", "lo", " wor", "ld", "é€😀"], true);
        assert_eq!(got, expected, "chunk size {size}");
        assert!(got.contains(&usage_chunk));
        assert_eq!(
            seen.bodies()[0].to_string(),
            serde_json::from_str::<serde_json::Value>(body)
                .unwrap()
                .to_string()
        );
        settled(&layer, &*store, &l).await;
        let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
        assert_eq!(
            (
                rec.prompt_tokens,
                rec.completion_tokens,
                rec.estimated,
                rec.streamed
            ),
            (12, 40, false, true)
        );
        assert_eq!(rec.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    }
}

#[tokio::test]
async fn usage_is_injected_upstream_and_its_chunk_hidden_from_the_client() {
    for size in [1, 5, 13, 4096] {
        let store = memory();
        let l = limiter(&*store, "20", EnforcementMode::Soft).await;
        let seen = Seen::default();
        let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
        let svc = layer.layer_on(sse_upstream(seen.clone(), size));
        let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello"}]}"#;
        let res = svc
            .oneshot(chat_request(l.code.as_str(), body))
            .await
            .unwrap();
        assert!(res.headers().get("content-length").is_none());
        let got = body_string(res.into_body()).await;
        // Exactly what OpenAI sends a client that did not ask for usage.
        let (expected, _) = chat_stream(&["Hel", "lo", " wor", "ld", "é€😀"], false);
        assert_eq!(got, expected, "chunk size {size}");
        let sent = &seen.bodies()[0];
        assert_eq!(
            sent["stream_options"]["include_usage"], true,
            "usage requested upstream"
        );
        assert_eq!(
            sent["messages"][0]["content"], "Say hello",
            "rest of the body preserved"
        );
        settled(&layer, &*store, &l).await;
        let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
        assert_eq!(
            (rec.prompt_tokens, rec.completion_tokens, rec.estimated),
            (12, 40, false),
            "exact usage"
        );
    }
}

#[tokio::test]
async fn first_chunk_reaches_the_client_before_the_second_exists() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let (tx, upstream) = channel_upstream();
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(upstream);
    let req = r#"{"model":"gpt-4o-mini","stream":true,"messages":[]}"#;
    let res = svc
        .oneshot(chat_request(l.code.as_str(), req))
        .await
        .unwrap();
    let mut frames = BodyStream::new(res.into_body());
    let (stream, _) = chat_stream(&["Hel", "lo"], true);
    let events: Vec<&str> = stream.split_inclusive("\n\n").collect();

    tx.unbounded_send(Bytes::from(events[0].to_owned()))
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(2), frames.next())
        .await
        .expect("the first chunk was held back")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), events[0].as_bytes());
    // Only now is the second chunk produced.
    tx.unbounded_send(Bytes::from(events[1].to_owned()))
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(2), frames.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.into_data().unwrap(), events[1].as_bytes());
    drop(tx);
    while frames.next().await.is_some() {}
    settled(&layer, &*store, &l).await;
}

#[tokio::test]
async fn client_hang_up_is_charged_for_what_was_delivered() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Strict).await;
    let (tx, upstream) = channel_upstream();
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(upstream);
    let req = r#"{"model":"gpt-4o-mini","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"Write a poem"}]}"#;
    let res = svc
        .oneshot(chat_request(l.code.as_str(), req))
        .await
        .unwrap();
    let held = budget_core::store::primary_window_spend(&*store, l.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(held.in_flight, 1);
    assert!(held.held > money("0"), "strict mode holds the worst case");
    let mut frames = BodyStream::new(res.into_body());
    let (stream, _) = chat_stream(&["Roses are red, violets are blue"], true);
    let events: Vec<&str> = stream.split_inclusive("\n\n").collect();
    tx.unbounded_send(Bytes::from(events[0].to_owned() + events[1]))
        .unwrap();
    frames.next().await.unwrap().unwrap();
    drop(frames); // the client hangs up mid-stream
    let w = settled(&layer, &*store, &l).await;
    assert_eq!(w.held, money("0"), "the rest of the hold is released");
    assert!(w.spent > money("0"), "what was delivered is charged");
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert!(rec.estimated);
    assert!(
        rec.completion_tokens >= 5 && rec.completion_tokens <= 15,
        "{}",
        rec.completion_tokens
    );
    assert!(rec.prompt_tokens > 0);
}

#[tokio::test]
async fn over_budget_is_a_429_the_sdks_will_not_retry() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    already_spent(&*store, &l, "20.50").await;
    let calls = Seen::default();
    let seen = calls.clone();
    let upstream = service_fn(move |req: Request<Full<Bytes>>| {
        let seen = seen.clone();
        async move {
            read_request(&seen, req).await;
            Ok::<_, Infallible>(json_response(CHAT_JSON))
        }
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(upstream);
    let res = svc
        .oneshot(chat_request(
            l.code.as_str(),
            r#"{"model":"gpt-4o","messages":[]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()["x-should-retry"], "false");
    assert_eq!(res.headers()["content-type"], "application/json");
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));
    let body: serde_json::Value =
        serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error":{"message":"Budget limit exceeded: $20.50/$20.00 per day. Current usage: 102.5%","type":"429","code":"budget_exceeded"}})
    );
    assert!(calls.bodies().is_empty(), "the upstream was never called");
}

async fn status_and_error(
    res: Response<budget_tower::MeteredBody<UpBody>>,
) -> (StatusCode, serde_json::Value) {
    let status = res.status();
    let v: serde_json::Value = serde_json::from_str(&body_string(res.into_body()).await).unwrap();
    assert!(
        v["error"]["message"].is_string()
            && v["error"]["type"].is_string()
            && v["error"]["code"].is_string()
    );
    (status, v)
}

#[tokio::test]
async fn unknown_inactive_and_deleted_limiters_are_refused() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let call = |code: String| {
        let svc = layer.layer_on(json_upstream());
        async move {
            svc.oneshot(chat_request(&code, r#"{"model":"gpt-4o","messages":[]}"#))
                .await
                .unwrap()
        }
    };
    let (s, v) = status_and_error(call("0123456789abcdef0123456789abcdef".into()).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("limiter_not_found"))
    );

    assert_eq!(call(l.code.to_string()).await.status(), StatusCode::OK); // now cached
    store
        .update_limiter(
            l.id,
            &LimiterUpdate {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (s, v) = status_and_error(call(l.code.to_string()).await).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("limiter_inactive")),
        "update seen at once"
    );

    store
        .update_limiter(
            l.id,
            &LimiterUpdate {
                is_active: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    store.delete_limiter(l.id, false).await.unwrap();
    let (s, _) = status_and_error(call(l.code.to_string()).await).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "delete seen at once despite the cache"
    );
    settled(&layer, &*store, &l).await;
}

#[tokio::test]
async fn unpriced_models_are_flagged_or_refused() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let upstream = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(json_response(
            r#"{"model":"my-local-llama","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}"#,
        ))
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let req = || {
        chat_request(
            l.code.as_str(),
            r#"{"model":"my-local-llama","messages":[]}"#,
        )
    };
    let res = layer.layer_on(upstream).oneshot(req()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body_string(res.into_body()).await;
    settled(&layer, &*store, &l).await;
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert!(rec.unpriced, "never a silent $0");
    assert_eq!((rec.prompt_tokens, rec.cost), (10, money("0")));

    store
        .update_limiter(
            l.id,
            &LimiterUpdate {
                unpriced: Some(UnpricedPolicy::Refuse),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let (s, v) = status_and_error(layer.layer_on(upstream).oneshot(req()).await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("model_not_priced"))
    );
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("my-local-llama"));
}

#[tokio::test]
async fn upstream_errors_charge_nothing() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Strict).await;
    let upstream = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .status(500)
                .header("content-type", "application/json")
                .body(full(
                    r#"{"error":{"message":"boom","type":"server_error","code":null}}"#,
                ))
                .unwrap(),
        )
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(upstream);
    let res = svc
        .oneshot(chat_request(
            l.code.as_str(),
            r#"{"model":"gpt-4o","messages":[]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body_string(res.into_body()).await.contains("boom"),
        "passed through unchanged"
    );
    let w = settled(&layer, &*store, &l).await;
    assert_eq!((w.spent, w.held), (money("0"), money("0")));
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert_eq!(rec.status, 500);

    // A transport error from the inner service: released, error returned as is.
    let failing = service_fn(|_req: Request<Full<Bytes>>| async {
        Err::<Response<UpBody>, _>("connect refused")
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(failing);
    let err = svc
        .oneshot(chat_request(
            l.code.as_str(),
            r#"{"model":"gpt-4o","messages":[]}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(err, "connect refused");
    let w = settled(&layer, &*store, &l).await;
    assert_eq!((w.spent, w.held), (money("0"), money("0")));
}

#[tokio::test]
async fn store_failure_fails_closed_or_open() {
    #[derive(Debug)]
    struct Broken;
    #[async_trait::async_trait]
    impl budget_core::BudgetStore for Broken {
        // The hot path is all the layer needs: four methods.
        async fn find_limiter(
            &self,
            _: budget_core::store::LimiterRef<'_>,
        ) -> budget_core::store::Result<Option<Arc<budget_core::Limiter>>> {
            Err(budget_core::store::Error::Closed)
        }
        async fn reserve(
            &self,
            _: &budget_core::store::ReserveRequest,
        ) -> budget_core::store::Result<budget_core::store::ReserveOutcome> {
            Err(budget_core::store::Error::Closed)
        }
        async fn settle(
            &self,
            _: &budget_core::store::Reservation,
            _: UsageRecord,
        ) -> budget_core::store::Result<()> {
            Err(budget_core::store::Error::Closed)
        }
        async fn release(
            &self,
            _: &budget_core::store::Reservation,
        ) -> budget_core::store::Result<()> {
            Err(budget_core::store::Error::Closed)
        }
    }
    let store: Arc<dyn budget_core::BudgetStore> = Arc::new(Broken);
    let req = || {
        chat_request(
            "0123456789abcdef0123456789abcdef",
            r#"{"model":"gpt-4o","messages":[]}"#,
        )
    };
    let closed = BudgetLayer::new(store.clone(), prices())
        .by_path_code()
        .layer_on(json_upstream());
    let (s, v) = status_and_error(closed.oneshot(req()).await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("budget_store_unavailable")
        )
    );
    let open = BudgetLayer::new(store, prices())
        .by_path_code()
        .with_fail_open(true)
        .layer_on(json_upstream());
    let res = open.oneshot(req()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body_string(res.into_body()).await, CHAT_JSON);
}

#[tokio::test]
async fn works_under_service_builder_with_an_extension_resolver() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let id = l.id;
    let layer = BudgetLayer::new(store.clone(), prices()).with_user_header("x-end-user");
    let svc = ServiceBuilder::new()
        .map_request(move |mut req: Request<Full<Bytes>>| {
            // What an app's auth middleware does: pick the limiter for the signed-in user.
            req.extensions_mut()
                .insert(budget_tower::UseLimiter(budget_tower::LimiterKey::Id(id)));
            req
        })
        .layer(layer.clone())
        .service(json_upstream());
    let req = Request::post("/my-app/chat/completions")
        .header("x-end-user", "bob")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-4o","messages":[],"user":"ignored"}"#,
        )))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.into_body().collect().await.unwrap();
    settled(&layer, &*store, &l).await;
    assert_eq!(
        store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0]
            .user
            .as_deref(),
        Some("bob")
    );
}

#[tokio::test]
async fn oversized_request_bodies_get_413() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let layer = BudgetLayer::new(store.clone(), prices())
        .by_path_code()
        .with_max_request_bytes(64);
    let svc = layer.layer_on(json_upstream());
    let big = format!(
        r#"{{"model":"gpt-4o","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(100)
    );
    let (s, _) = status_and_error(
        svc.oneshot(chat_request(l.code.as_str(), &big))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_client_that_gives_up_before_the_upstream_answers_gets_its_hold_back() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Strict).await;
    let slow = service_fn(|_req: Request<Full<Bytes>>| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Infallible>(json_response(CHAT_JSON))
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer_on(slow);
    let call = svc.oneshot(chat_request(
        l.code.as_str(),
        r#"{"model":"gpt-4o","max_tokens":100,"messages":[]}"#,
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err(),
        "the client timed out"
    );
    let w = settled(&layer, &*store, &l).await;
    assert_eq!((w.held, w.in_flight, w.spent), (money("0"), 0, money("0")));
}

#[tokio::test]
async fn unmetered_endpoints_read_freely_but_cannot_start_work_over_budget() {
    let store = memory();
    let l = limiter(&*store, "1", EnforcementMode::Soft).await;
    already_spent(&*store, &l, "2").await;
    let upstream = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(json_response(r#"{"object":"list","data":[]}"#))
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let get = Request::get(format!("/v1/{}/models", l.code))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = layer.layer_on(upstream).oneshot(get).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "listing models costs nothing");
    let post = Request::post(format!("/v1/{}/files", l.code))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (s, v) = status_and_error(layer.layer_on(upstream).oneshot(post).await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("budget_exceeded")),
        "an upload is free, but needs an open budget"
    );
    // A batch costs money no response reports: refused whatever the budget.
    let post = Request::post(format!("/v1/{}/batches", l.code))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let (s, v) = status_and_error(layer.layer_on(upstream).oneshot(post).await.unwrap()).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("unmetered_endpoint"))
    );
    let w = settled(&layer, &*store, &l).await;
    assert_eq!(w.held, money("0"));
}

#[tokio::test]
async fn reactivation_is_seen_at_once_despite_the_cache() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    let off = LimiterUpdate {
        is_active: Some(false),
        ..Default::default()
    };
    store.update_limiter(l.id, &off).await.unwrap();
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let body = r#"{"model":"gpt-4o","messages":[]}"#;
    let res = layer
        .layer_on(json_upstream())
        .oneshot(chat_request(l.code.as_str(), body))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN); // the inactive limiter is now cached
    let on = LimiterUpdate {
        is_active: Some(true),
        ..Default::default()
    };
    store.update_limiter(l.id, &on).await.unwrap();
    let res = layer
        .layer_on(json_upstream())
        .oneshot(chat_request(l.code.as_str(), body))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.into_body().collect().await.unwrap();
    settled(&layer, &*store, &l).await;
}

/// The layer stamps requests with the store's clock (`BudgetStore::now`), not the machine's:
/// a store shared by replicas answers with its database's clock, so they agree on windows.
#[tokio::test]
async fn requests_are_stamped_with_the_store_clock() {
    #[derive(Debug)]
    struct Skewed {
        inner: Arc<budget_core::MemoryStore>,
        now: chrono::DateTime<chrono::Utc>,
    }
    #[async_trait::async_trait]
    impl budget_core::BudgetStore for Skewed {
        async fn find_limiter(
            &self,
            by: budget_core::store::LimiterRef<'_>,
        ) -> budget_core::store::Result<Option<Arc<budget_core::Limiter>>> {
            self.inner.find_limiter(by).await
        }
        async fn reserve(
            &self,
            r: &budget_core::store::ReserveRequest,
        ) -> budget_core::store::Result<budget_core::store::ReserveOutcome> {
            self.inner.reserve(r).await
        }
        async fn settle(
            &self,
            r: &budget_core::store::Reservation,
            u: UsageRecord,
        ) -> budget_core::store::Result<()> {
            self.inner.settle(r, u).await
        }
        async fn release(
            &self,
            r: &budget_core::store::Reservation,
        ) -> budget_core::store::Result<()> {
            self.inner.release(r).await
        }
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            self.now
        }
    }
    use budget_core::store::prelude::*;
    let memory = Arc::new(budget_core::MemoryStore::new());
    let l = limiter(&*memory, "20", EnforcementMode::Soft).await;
    let then = chrono::Utc::now() - chrono::Duration::days(3);
    let layer = BudgetLayer::new(
        Arc::new(Skewed {
            inner: memory.clone(),
            now: then,
        }),
        prices(),
    )
    .by_path_code();
    let svc = layer.clone().layer_on(json_upstream());
    let res = svc
        .oneshot(chat_request(
            l.code.as_str(),
            r#"{"model":"gpt-4o","messages":[]}"#,
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    body_string(res.into_body()).await;
    layer.settlements().await;
    let recent = memory.recent_usage(&UsageQuery::all(), 10).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].at, then, "charged to the store clock's window");
}

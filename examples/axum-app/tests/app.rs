//! The example app, driven as its users would: with their API keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum_app::{app, User};
use budget_core::store::prelude::*;
use budget_core::store::UsageQuery;
use budget_core::{Limiter, MemoryStore, Money, NewLimiter, Period};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn setup(budget: Money) -> (Arc<dyn Store>, axum::Router, Limiter) {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let l = Limiter::create(
        NewLimiter::new("alice", budget, Period::Day, "http://unused.invalid"),
        chrono::Utc::now(),
    )
    .unwrap();
    store.create_limiter(&l).await.unwrap();
    let users = HashMap::from([(
        "k".to_owned(),
        User {
            name: "alice".into(),
            limiter: l.id,
        },
    )]);
    (store.clone(), app(store, Arc::new(users)), l)
}

fn chat(key: &str, body: &str) -> Request<Body> {
    Request::post("/ai/v1/chat/completions")
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn text(res: axum::response::Response) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

async fn wait_settled(store: &dyn Store, l: &Limiter) -> Money {
    for _ in 0..200 {
        let w = budget_core::store::primary_window_spend(store, l.id, chrono::Utc::now())
            .await
            .unwrap();
        if w.in_flight == 0 {
            return w.spent;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("not settled");
}

#[tokio::test]
async fn the_apps_own_routes_and_auth_still_work() {
    let (_, app, _) = setup(Money::from_dollars(1)).await;
    let res = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .clone()
        .oneshot(Request::get("/me").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = app.oneshot(chat("wrong", "{}")).await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "auth runs before the budget layer"
    );
}

#[tokio::test]
async fn chat_spends_from_the_users_budget_until_it_is_gone() {
    let (store, app, l) = setup(Money::from_nanos(1)).await;
    let body = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#;
    let res = app.clone().oneshot(chat("k", body)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(text(res).await.contains("You said: hello there"));
    let spent = wait_settled(&*store, &l).await;
    assert!(spent > Money::ZERO);
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert_eq!((rec.prompt_tokens, rec.completion_tokens), (10, 4));

    let res = app.oneshot(chat("k", body)).await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(text(res).await.contains("budget_exceeded"));
}

#[tokio::test]
async fn streaming_gets_exact_usage_without_the_client_seeing_it() {
    let (store, app, l) = setup(Money::from_dollars(1)).await;
    let body = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"one two three"}]}"#;
    let res = app.oneshot(chat("k", body)).await.unwrap();
    let sse = text(res).await;
    assert!(
        !sse.contains("\"usage\""),
        "the injected usage chunk is hidden: {sse}"
    );
    assert!(sse.ends_with("data: [DONE]\n\n"));
    wait_settled(&*store, &l).await;
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert_eq!(
        (rec.prompt_tokens, rec.completion_tokens, rec.estimated),
        (11, 5, false)
    );
}

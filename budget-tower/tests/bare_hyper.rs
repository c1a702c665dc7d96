//! The layer in a bare hyper server (no axum router), over a real socket.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tower::{service_fn, Layer, ServiceExt};

use budget_core::store::UsageQuery;
use budget_core::EnforcementMode;
use budget_tower::BudgetLayer;

#[tokio::test]
async fn budget_layer_serves_a_plain_hyper_connection() {
    let store = memory();
    let l = limiter(&*store, "20", EnforcementMode::Soft).await;
    // The app's own OpenAI-compatible handler.
    let handler = service_fn(|_req: Request<axum::body::Body>| async {
        Ok::<_, Infallible>(json_response(CHAT_JSON))
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = layer.layer(handler);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // hyper hands us `Incoming`; the layer needs a body it can rebuild from bytes, so
        // wrap it in any streaming body that implements `From<Bytes>`.
        let hyper_svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            svc.clone().oneshot(req.map(axum::body::Body::new))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), hyper_svc)
            .await
            .unwrap();
    });

    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(format!("http://{addr}/v1/{}/chat/completions", l.code))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-4o","messages":[]}"#,
        )))
        .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-budget-remaining"));
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, CHAT_JSON.as_bytes());
    settled(&layer, &*store, &l).await;
    assert_eq!(
        store
            .usage_totals(&UsageQuery::all())
            .await
            .unwrap()
            .prompt_tokens,
        1000
    );
}

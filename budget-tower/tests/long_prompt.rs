//! A long prompt in strict mode: estimated once, on a blocking thread, and the same estimate
//! prices both the hold and a settlement that has to estimate.

mod common;

use common::*;
use http_body_util::BodyExt;
use tower::ServiceExt;

use budget_core::store::UsageQuery;
use budget_core::usage::{Endpoint, RequestInfo, COSTLY_TOKENIZE_BYTES};
use budget_core::EnforcementMode;
use budget_tower::BudgetLayer;

#[tokio::test]
async fn a_long_prompt_is_estimated_off_the_workers_and_settled_with_that_estimate() {
    let store = memory();
    let l = limiter(&*store, "1000", EnforcementMode::Strict).await;
    let long = "lorem ipsum dolor sit amet ".repeat(COSTLY_TOKENIZE_BYTES / 20);
    let req = format!(
        r#"{{"model":"gpt-4o-mini","stream":true,"max_tokens":50,"messages":[{{"role":"user","content":"{long}"}}]}}"#
    );
    let info = RequestInfo::parse(Endpoint::ChatCompletions, req.as_bytes());
    assert!(info.prompt_estimate_is_costly());
    let expected_prompt = info.estimate_prompt_tokens();

    // The upstream streams its answer without a usage block: the settlement must estimate.
    let (stream, _) = chat_stream(&["Hello", " there"], false);
    let upstream = tower::service_fn(move |_req| {
        let body = full(stream.clone());
        async move { Ok::<_, std::convert::Infallible>(sse_response(body)) }
    });
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let svc = tower::Layer::layer(&layer, upstream);
    let res = svc
        .oneshot(chat_request(l.code.as_str(), &req))
        .await
        .unwrap();
    assert!(res.status().is_success());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert!(body.ends_with(b"data: [DONE]\n\n"));

    let w = settled(&layer, &*store, &l).await;
    assert_eq!(w.held, money("0"));
    let rec = &store.recent_usage(&UsageQuery::all(), 1).await.unwrap()[0];
    assert!(rec.estimated);
    assert_eq!(rec.prompt_tokens, expected_prompt);
    assert!(rec.completion_tokens > 0);
}

//! 200 concurrent requests against one budget.

mod common;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use http::{Request, StatusCode};
use http_body_util::{BodyStream, Full};
use tower::{service_fn, Layer, ServiceExt};

use budget_core::usage::{Endpoint, RequestInfo, Usage};
use budget_core::{EnforcementMode, Money, Provider};
use budget_tower::BudgetLayer;

const PROMPT: &str =
    r#"{"model":"gpt-4o","max_tokens":100,"messages":[{"role":"user","content":"Hi"}]}"#;
const STREAM_PROMPT: &str = r#"{"model":"gpt-4o","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;

/// A slow upstream (so many requests are in flight at once) reporting 1 prompt token and
/// `max_tokens` completion tokens; it tracks the highest concurrency it saw.
fn upstream(
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = http::Response<UpBody>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    service_fn(move |req: Request<Full<Bytes>>| {
        let (now, peak) = (now.clone(), peak.clone());
        async move {
            let v = read_request(&Seen::default(), req).await;
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(n, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            now.fetch_sub(1, Ordering::SeqCst);
            if v["stream"] == true {
                let (s, _) = chat_stream(&["a"; 50], true);
                let s = s.replace("gpt-4o-mini-2024-07-18", "gpt-4o").replace(
                    "\"prompt_tokens\":12,\"completion_tokens\":40",
                    "\"prompt_tokens\":1,\"completion_tokens\":100",
                );
                Ok(sse_response(chunked(s.as_bytes(), 50)))
            } else {
                Ok(json_response(
                    r#"{"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":100,"total_tokens":101}}"#,
                ))
            }
        }
    })
}

fn per_request_cost() -> Money {
    prices()
        .cost(
            &Usage {
                model: Some("gpt-4o".into()),
                prompt_tokens: 1,
                completion_tokens: 100,
                ..Usage::default()
            },
            Provider::Openai,
        )
        .total()
        .unwrap()
}

async fn run(
    mode: EnforcementMode,
    budget: &str,
    max_in_flight: usize,
) -> (usize, usize, Money, usize, Money) {
    let store = memory();
    let l = limiter(&*store, budget, mode).await;
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let layer = BudgetLayer::new(store.clone(), prices()).by_path_code();
    let gate = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let svc = layer.layer(upstream(now.clone(), peak.clone()));
            let code = l.code.to_string();
            let gate = gate.clone();
            tokio::spawn(async move {
                // Held until this client is done with the response.
                let _permit = gate.acquire_owned().await.unwrap();
                let streaming = i % 2 == 1;
                let res = svc
                    .oneshot(chat_request(
                        &code,
                        if streaming { STREAM_PROMPT } else { PROMPT },
                    ))
                    .await
                    .unwrap();
                let status = res.status();
                let mut frames = BodyStream::new(res.into_body());
                if streaming && i % 4 == 1 {
                    // This client hangs up after the first frame.
                    frames.next().await;
                    drop(frames);
                } else {
                    while frames.next().await.is_some() {}
                }
                status
            })
        })
        .collect();
    let statuses: Vec<StatusCode> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(admitted + refused, 200, "{statuses:?}");
    let w = settled(&layer, &*store, &l).await;
    assert_eq!(
        (w.held, w.in_flight),
        (Money::ZERO, 0),
        "no reservation leaks"
    );
    (
        admitted,
        refused,
        w.spent,
        peak.load(Ordering::SeqCst),
        l.budget_limit,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn strict_mode_admits_no_more_than_the_budget() {
    let hold = prices()
        .worst_case_cost(
            "gpt-4o",
            Provider::Openai,
            RequestInfo::parse(Endpoint::ChatCompletions, PROMPT.as_bytes())
                .estimate_prompt_tokens(),
            Some(100),
            1,
        )
        .total()
        .unwrap();
    // Room for 30 worst cases.
    let budget = Money::from_nanos(hold.as_nanos() * 30);
    let (admitted, refused, spent, _, limit) = run(
        EnforcementMode::Strict,
        &budget.to_string().replace('$', ""),
        200,
    )
    .await;
    assert!(spent <= limit, "spent {spent} > budget {limit}");
    assert!(admitted >= 30, "{admitted}");
    assert!(refused > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soft_mode_overspends_at_most_what_was_in_flight() {
    // 200 clients, at most 20 with a request open at a time, against a 20 ms upstream: the
    // budget (25 requests' worth) runs out part-way whatever the machine's timing, and the
    // overspend bound is tight enough to mean something.
    let cost = per_request_cost();
    let budget = Money::from_nanos(cost.as_nanos() * 25);
    let (admitted, refused, spent, peak, limit) = run(
        EnforcementMode::Soft,
        &budget.to_string().replace('$', ""),
        20,
    )
    .await;
    assert!(refused > 0, "the budget ran out");
    let bound = limit + Money::from_nanos(cost.as_nanos() * peak as i64);
    assert!(
        spent <= bound,
        "spent {spent} > budget {limit} + {peak} in flight × {cost}"
    );
    assert!(admitted >= 25);
}

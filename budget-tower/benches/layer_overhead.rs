//! Per-request cost of the layer: the same inner service with and without `BudgetLayer`.
//!
//! `cargo bench -p budget-tower --bench layer_overhead` prints both times; the ratio is the
//! layer's overhead (JSON chat completion, MemoryStore, soft mode, response body drained).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{service_fn, Layer, ServiceExt};

use budget_core::pricing::PriceTable;
use budget_core::store::prelude::*;
use budget_core::{Limiter, MemoryStore, Money, NewLimiter, Period};
use budget_tower::BudgetLayer;

const RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28}}"#;
const REQUEST: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello!"}]}"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner = service_fn(|_req: Request<Full<Bytes>>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(RESPONSE.as_bytes())))
                .unwrap(),
        )
    });
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let limiter = Limiter::create(
        NewLimiter::new(
            "bench",
            Money::from_dollars(1_000_000),
            Period::Month,
            "https://api.openai.com",
        ),
        chrono::Utc::now(),
    )
    .unwrap();
    rt.block_on(store.create_limiter(&limiter)).unwrap();
    let layer = BudgetLayer::new(store, PriceTable::builtin()).by_path_code();
    let uri = format!("/v1/{}/chat/completions", limiter.code);
    let req = || {
        Request::post(uri.as_str())
            .body(Full::new(Bytes::from_static(REQUEST.as_bytes())))
            .unwrap()
    };

    let mut group = c.benchmark_group("chat_completion_json");
    group.bench_function("inner_service_only", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = inner.oneshot(req()).await.unwrap();
                res.into_body().collect().await.unwrap();
            })
        })
    });
    group.bench_function("with_budget_layer", |b| {
        b.iter(|| {
            rt.block_on(async {
                let res = layer.layer(inner).oneshot(req()).await.unwrap();
                res.into_body().collect().await.unwrap();
                // Let the spawned settlement run, as it would between requests on a server.
                tokio::task::yield_now().await;
            })
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

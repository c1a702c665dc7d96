//! Heap allocations per request: the same inner services as `layer_overhead`, with and without
//! `BudgetLayer`, under a counting global allocator.
//!
//! `cargo bench -p budget-tower --bench layer_allocations` prints, per request, the number of
//! allocations and reallocations and the bytes allocated, for the inner service alone and
//! through the layer (budgets on: MemoryStore, soft mode, body drained, settlement awaited), for
//! a JSON chat completion, for a streamed one (usage requested by the client) and for a streamed
//! one whose usage the layer asks for and hides (the usage chunk and `"usage":null` stripped).
//!
//! The counting allocator is `stats_alloc`'s (a wrapper over the system allocator that counts
//! with atomics): the workspace forbids `unsafe_code`, which a hand-written `GlobalAlloc` impl
//! would need and a crate-level `allow` cannot override. It lives in its own bench so that its
//! atomics never show in `layer_overhead`'s timings.

use std::alloc::System;
use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tower::{service_fn, Layer, Service, ServiceExt};

use budget_core::pricing::PriceTable;
use budget_core::store::prelude::*;
use budget_core::{Limiter, MemoryStore, Money, NewLimiter, Period};
use budget_tower::BudgetLayer;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const RESPONSE: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":19,"completion_tokens":9,"total_tokens":28}}"#;
const REQUEST: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello!"}]}"#;
const STREAM_REQUEST: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello!"}],"stream":true,"stream_options":{"include_usage":true}}"#;
/// The same stream without `include_usage`: the layer asks for usage and hides it again.
const STRIPPED_REQUEST: &str = r#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"Hello!"}],"stream":true}"#;
const DELTA: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello \"},\"finish_reason\":null}],\"usage\":null}\n\n";
const USAGE: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":32,\"total_tokens\":51}}\n\n";
const DONE: &str = "data: [DONE]\n\n";
/// Content deltas per stream; with the usage event and `[DONE]`, 34 events.
const DELTAS: usize = 32;

const WARMUP: usize = 1_000;
const ROUNDS: usize = 10_000;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Request header that makes the inner service answer with a stream.
const STREAM_HEADER: &str = "x-bench-stream";

/// The upstream: a JSON completion, or (with [`STREAM_HEADER`]) a stream of [`DELTAS`] events,
/// a usage event and `[DONE]`, one body frame each.
fn upstream(req: &Request<Full<Bytes>>) -> Response<Body> {
    let stream = req.headers().contains_key(STREAM_HEADER);
    let body = if stream {
        let frames = (0..DELTAS)
            .map(|_| DELTA)
            .chain([USAGE, DONE])
            .map(|e| Ok(Frame::data(Bytes::from_static(e.as_bytes()))));
        StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    } else {
        Full::new(Bytes::from_static(RESPONSE.as_bytes())).boxed_unsync()
    };
    Response::builder()
        .header(
            "content-type",
            if stream {
                "text/event-stream"
            } else {
                "application/json"
            },
        )
        .body(body)
        .unwrap()
}

/// Allocation counts over `ROUNDS` requests, per request.
struct PerRequest {
    allocations: f64,
    reallocations: f64,
    bytes: f64,
}

impl std::fmt::Display for PerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.1} allocations {:>6.1} reallocations {:>9.0} bytes",
            self.allocations, self.reallocations, self.bytes
        )
    }
}

/// `WARMUP` untimed requests, then `ROUNDS` requests counted; each request's response body is
/// drained and `after` runs (to let settlements finish) inside the counted region.
async fn count<S, B>(
    make: impl Fn() -> S,
    req: impl Fn() -> Request<Full<Bytes>>,
    after: impl AsyncFn(),
) -> PerRequest
where
    S: Service<Request<Full<Bytes>>, Response = Response<B>>,
    S::Error: Debug,
    B: http_body::Body,
    B::Error: Debug,
{
    async fn one<S, B>(svc: S, req: Request<Full<Bytes>>)
    where
        S: Service<Request<Full<Bytes>>, Response = Response<B>>,
        S::Error: Debug,
        B: http_body::Body,
        B::Error: Debug,
    {
        let res = svc.oneshot(req).await.unwrap();
        res.into_body().collect().await.unwrap();
    }
    for _ in 0..WARMUP {
        one(make(), req()).await;
        after().await;
    }
    let region = Region::new(GLOBAL);
    for _ in 0..ROUNDS {
        one(make(), req()).await;
        after().await;
    }
    let c = region.change();
    let n = ROUNDS as f64;
    PerRequest {
        allocations: c.allocations as f64 / n,
        reallocations: c.reallocations as f64 / n,
        bytes: c.bytes_allocated as f64 / n,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let inner =
        service_fn(|req: Request<Full<Bytes>>| async move { Ok::<_, Infallible>(upstream(&req)) });
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
    let json = || {
        Request::post(uri.as_str())
            .body(Full::new(Bytes::from_static(REQUEST.as_bytes())))
            .unwrap()
    };
    let stream = || {
        Request::post(uri.as_str())
            .header(STREAM_HEADER, "1")
            .body(Full::new(Bytes::from_static(STREAM_REQUEST.as_bytes())))
            .unwrap()
    };
    let stripped = || {
        Request::post(uri.as_str())
            .header(STREAM_HEADER, "1")
            .body(Full::new(Bytes::from_static(STRIPPED_REQUEST.as_bytes())))
            .unwrap()
    };
    let settle = async || {
        // The settlement task runs on this thread; wait for it inside the counted region.
        tokio::task::yield_now().await;
        layer.settlements().await;
    };
    let nothing = async || {};

    println!("Heap allocations per request ({ROUNDS} requests after {WARMUP} warm-up, current-thread runtime):");
    rt.block_on(async {
        let json_inner = count(|| inner, json, nothing).await;
        let json_layer = count(|| layer.layer(inner), json, settle).await;
        println!("chat completion, JSON");
        println!("  inner service only   {json_inner}");
        println!("  with BudgetLayer     {json_layer}");
        let stream_inner = count(|| inner, stream, nothing).await;
        let stream_layer = count(|| layer.layer(inner), stream, settle).await;
        println!(
            "chat completion, SSE ({} events, usage requested)",
            DELTAS + 2
        );
        println!("  inner service only   {stream_inner}");
        println!("  with BudgetLayer     {stream_layer}");
        let stripped_inner = count(|| inner, stripped, nothing).await;
        let stripped_layer = count(|| layer.layer(inner), stripped, settle).await;
        println!(
            "chat completion, SSE ({} events, usage added by the layer and hidden again)",
            DELTAS + 2
        );
        println!("  inner service only   {stripped_inner}");
        println!("  with BudgetLayer     {stripped_layer}");
    });
}

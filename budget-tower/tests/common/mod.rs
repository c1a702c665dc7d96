//! Shared test fixtures: a fake OpenAI upstream as a Tower service and helpers.
#![allow(dead_code, unreachable_pub)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::channel::mpsc;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};

use budget_core::pricing::PriceTable;
use budget_core::store::prelude::*;
use budget_core::{EnforcementMode, Limiter, MemoryStore, Money, NewLimiter, Period};
use budget_tower::BudgetLayer;

pub type UpBody = BoxBody<Bytes, Infallible>;

pub fn full(b: impl Into<Bytes>) -> UpBody {
    Full::new(b.into()).boxed()
}

/// A body whose frames the test pushes one by one.
pub fn channel_body() -> (mpsc::UnboundedSender<Bytes>, UpBody) {
    let (tx, rx) = mpsc::unbounded::<Bytes>();
    let stream = futures::StreamExt::map(rx, |b| Ok::<_, Infallible>(Frame::data(b)));
    (tx, StreamBody::new(stream).boxed())
}

/// An upstream answering one request with an SSE body the test feeds frame by frame.
pub fn channel_upstream() -> (
    mpsc::UnboundedSender<Bytes>,
    impl tower::Service<
            Request<Full<Bytes>>,
            Response = Response<UpBody>,
            Error = Infallible,
            Future = impl Send,
        > + Clone
        + Send,
) {
    let (tx, body) = channel_body();
    let body = Arc::new(Mutex::new(Some(body)));
    let upstream = tower::service_fn(move |_req: Request<Full<Bytes>>| {
        let b = body
            .lock()
            .unwrap()
            .take()
            .expect("one request per channel upstream");
        async move { Ok::<_, Infallible>(sse_response(b)) }
    });
    (tx, upstream)
}

/// A body yielding `data` in chunks of `size` bytes.
pub fn chunked(data: &[u8], size: usize) -> UpBody {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = data
        .chunks(size)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    StreamBody::new(futures::stream::iter(frames)).boxed()
}

pub fn json_response(body: &str) -> Response<UpBody> {
    Response::builder()
        .header("content-type", "application/json")
        .body(full(body.to_owned()))
        .unwrap()
}

pub fn sse_response(body: UpBody) -> Response<UpBody> {
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(body)
        .unwrap()
}

pub const CHAT_JSON: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":500,"total_tokens":1500,"prompt_tokens_details":{"cached_tokens":200}}}"#;

fn chunk(content: &str) -> String {
    format!(
        "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
    )
}

/// The SSE a chat stream sends, and the usage-only chunk it ends with when asked.
pub fn chat_stream(words: &[&str], with_usage: bool) -> (String, String) {
    let mut s = String::from(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    );
    for w in words {
        s.push_str(&chunk(w));
    }
    s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    let usage = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":40,\"total_tokens\":52}}\n\n".to_owned();
    let mut full = s.clone();
    if with_usage {
        full.push_str(&usage);
    }
    full.push_str("data: [DONE]\n\n");
    (full, usage)
}

pub fn chat_request(code: &str, body: &str) -> Request<Full<Bytes>> {
    Request::post(format!("/v1/{code}/chat/completions"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

pub async fn limiter(store: &dyn Store, budget: &str, mode: EnforcementMode) -> Limiter {
    let mut new = NewLimiter::new(
        "test",
        budget.parse().unwrap(),
        Period::Day,
        "https://api.openai.com",
    );
    new.mode = Some(mode);
    let l = Limiter::create(new, chrono::Utc::now()).unwrap();
    store.create_limiter(&l).await.unwrap();
    l
}

pub fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

pub fn prices() -> PriceTable {
    PriceTable::builtin()
}

/// Record `cost` (dollars) of gpt-4o usage against `l` now, without a reservation.
pub async fn already_spent(store: &dyn Store, l: &Limiter, cost: &str) {
    let mut r = budget_core::store::UsageRecord::new(
        l.id,
        chrono::Utc::now(),
        budget_core::usage::Endpoint::ChatCompletions,
        &budget_core::usage::Usage::default(),
        Some(money(cost)),
    );
    r.model = Some("gpt-4o".into());
    store.record_usage(r).await.unwrap();
}

/// Wait for every settlement `layer` has started, then check no reservation of `l` is left in
/// flight (a response body still alive would be one) and return the window's state.
pub async fn settled(
    layer: &BudgetLayer,
    store: &dyn Store,
    l: &Limiter,
) -> budget_core::store::WindowSpend {
    layer.settlements().await;
    let w = budget_core::store::primary_window_spend(store, l.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(w.in_flight, 0, "every admitted request settled or released");
    w
}

pub async fn body_string<B>(b: B) -> String
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    String::from_utf8(b.collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

/// Requests seen by a fake upstream.
#[derive(Clone, Default)]
pub struct Seen(pub Arc<Mutex<Vec<(String, serde_json::Value)>>>);

impl Seen {
    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

pub async fn read_request(seen: &Seen, req: Request<Full<Bytes>>) -> serde_json::Value {
    let path = req.uri().path().to_owned();
    let bytes = req.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    seen.0.lock().unwrap().push((path, v.clone()));
    v
}

pub fn money(s: &str) -> Money {
    s.parse().unwrap()
}

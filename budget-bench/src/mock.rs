//! The suite's own mock upstream: a minimal OpenAI-compatible chat-completions server on
//! hyper 1, cheap enough that it never limits what is measured.
//!
//! - `POST …/chat/completions` without `"stream":true`: a fixed ~1 KB `chat.completion` JSON
//!   with a `usage` block, built once at start.
//! - With `"stream":true`: `N` `chat.completion.chunk` deltas, a usage chunk and `[DONE]`, each
//!   event its own body frame. Event `i` leaves at `start + i × delay` (absolute deadlines, so
//!   a slow reader does not shift the schedule). `N` and the delay come from the request headers
//!   [`DELTAS_HEADER`] and [`DELAY_HEADER`] (µs), which a proxy forwards untouched.
//!
//! It runs as `budget-bench mock` in its own process, so its CPU never counts as the client's
//! or the server's.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};

/// Request header: how many content deltas a stream has (default 20).
pub(crate) const DELTAS_HEADER: &str = "x-mock-deltas";
/// Request header: microseconds between stream events (default 0).
pub(crate) const DELAY_HEADER: &str = "x-mock-delay-us";

/// The answers, built once.
struct Answers {
    json: Bytes,
    delta: Bytes,
    usage_prefix: String,
    done: Bytes,
}

impl Answers {
    fn new() -> Self {
        let mut content = String::new();
        while content.len() < 560 {
            content.push_str("The quick brown fox jumps over the lazy dog. ");
        }
        let json = serde_json::json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 14,
                "completion_tokens": 120,
                "total_tokens": 134,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
                }
            },
            "service_tier": "default",
            "system_fingerprint": "fp_bench"
        });
        let chunk = |delta: serde_json::Value| {
            serde_json::json!({
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": "gpt-4o-mini-2024-07-18",
                "system_fingerprint": "fp_bench",
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": null}],
                "usage": null
            })
        };
        Answers {
            json: Bytes::from(json.to_string()),
            delta: Bytes::from(format!("data: {}\n\n", chunk(serde_json::json!({"content": "hello "})))),
            usage_prefix: "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
                \"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_bench\",\"choices\":[],\"usage\":"
                .to_owned(),
            done: Bytes::from_static(b"data: [DONE]\n\n"),
        }
    }

    fn usage_event(&self, deltas: usize) -> Bytes {
        let usage = serde_json::json!({
            "prompt_tokens": 14, "completion_tokens": deltas, "total_tokens": 14 + deltas,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0}
        });
        Bytes::from(format!("{}{usage}}}\n\n", self.usage_prefix))
    }
}

/// Run the mock on `addr` until the process ends; prints `listening on http://ADDR` first.
pub(crate) async fn serve(addr: SocketAddr) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let answers = Arc::new(Answers::new());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let answers = answers.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(answers.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn header_num(req: &Request<Incoming>, name: &str, default: u64) -> u64 {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn answer(
    answers: Arc<Answers>,
    req: Request<Incoming>,
) -> Result<Response<MockBody>, Infallible> {
    let deltas = header_num(&req, DELTAS_HEADER, 20) as usize;
    let delay = Duration::from_micros(header_num(&req, DELAY_HEADER, 0));
    let chat =
        req.method() == http::Method::POST && req.uri().path().ends_with("/chat/completions");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    if !chat {
        let mut res = Response::new(MockBody::Full(Some(Bytes::from_static(
            b"{\"error\":{\"message\":\"not found\"}}",
        ))));
        *res.status_mut() = StatusCode::NOT_FOUND;
        return Ok(res);
    }
    let stream = body.windows(13).any(|w| w == b"\"stream\":true");
    let mut res = if stream {
        let mut res = Response::new(MockBody::Sse(SseBody {
            answers: answers.clone(),
            deltas,
            delay,
            next: 0,
            start: None,
            sleep: None,
        }));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        res
    } else {
        let mut res = Response::new(MockBody::Full(Some(answers.json.clone())));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        res
    };
    res.headers_mut()
        .insert("x-request-id", HeaderValue::from_static("req_bench"));
    Ok(res)
}

/// The mock's response body.
pub(crate) enum MockBody {
    Full(Option<Bytes>),
    Sse(SseBody),
}

/// A paced event stream: `deltas` content events, a usage event, `[DONE]`.
pub(crate) struct SseBody {
    answers: Arc<Answers>,
    deltas: usize,
    delay: Duration,
    next: usize,
    start: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl SseBody {
    fn events(&self) -> usize {
        self.deltas + 2
    }

    fn event(&self, i: usize) -> Bytes {
        if i < self.deltas {
            self.answers.delta.clone()
        } else if i == self.deltas {
            self.answers.usage_event(self.deltas)
        } else {
            self.answers.done.clone()
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Sse(sse) => {
                if sse.next >= sse.events() {
                    return Poll::Ready(None);
                }
                let start = *sse.start.get_or_insert_with(Instant::now);
                if sse.next > 0 && !sse.delay.is_zero() {
                    let due = start + sse.delay * sse.next as u32;
                    let sleep = sse
                        .sleep
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    ready!(sleep.as_mut().poll(cx));
                    sse.sleep = None;
                }
                let event = sse.event(sse.next);
                sse.next += 1;
                Poll::Ready(Some(Ok(Frame::data(event))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(data) => data.is_none(),
            MockBody::Sse(sse) => sse.next >= sse.events(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            MockBody::Sse(_) => SizeHint::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_answer_is_about_a_kilobyte_and_valid() {
        let a = Answers::new();
        assert!(
            (900..=1200).contains(&a.json.len()),
            "{} bytes",
            a.json.len()
        );
        let v: serde_json::Value = serde_json::from_slice(&a.json).unwrap();
        assert_eq!(v["usage"]["total_tokens"], 134);
    }

    #[test]
    fn stream_events_are_valid_json() {
        let a = Answers::new();
        for event in [a.delta.clone(), a.usage_event(20)] {
            let text = std::str::from_utf8(&event).unwrap();
            let json = text.strip_prefix("data: ").unwrap().trim_end();
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            assert_eq!(v["object"], "chat.completion.chunk");
        }
    }
}

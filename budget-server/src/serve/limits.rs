//! Limits on request bodies, applied before the application sees a request: a declared
//! `Content-Length` over the limit is refused with `413` before any of the body is read; a
//! body that grows past the limit, pauses too long or arrives too slowly is cut, and the
//! answer becomes `413` or `408`. Either way the connection is closed.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode, Version};
use http_body::{Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How request bodies are limited.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyRules {
    /// Largest body on `/v1/...` (the proxy).
    pub(crate) max_proxy: usize,
    /// Largest body anywhere else (admin API, login).
    pub(crate) max_other: usize,
    /// Longest pause, and the head start before `min_rate` applies.
    pub(crate) timeout: Duration,
    /// Slowest average rate in bytes per second after the head start (0: no rate rule).
    pub(crate) min_rate: u64,
}

impl BodyRules {
    /// The size limit for a request path.
    pub(crate) fn limit_for(&self, path: &str) -> usize {
        if is_proxy(path) {
            self.max_proxy
        } else {
            self.max_other
        }
    }
}

/// The proxy's paths, `/v1/{code}/...`.
fn is_proxy(path: &str) -> bool {
    path.starts_with("/v1/")
}

/// Why a request body was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// Larger than this many bytes.
    TooLarge(usize),
    /// Paused too long or arrived too slowly.
    TooSlow,
}

impl fmt::Display for Cut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cut::TooLarge(limit) => write!(f, "request body is larger than {limit} bytes"),
            Cut::TooSlow => f.write_str("request body arrived too slowly"),
        }
    }
}

impl StdError for Cut {}

/// Set once by a [`LimitedBody`] that cut its request; read when the response is ready.
pub(crate) type CutFlag = Arc<OnceLock<Cut>>;

/// The declared `Content-Length`, when it is over `limit`.
pub(crate) fn declared_over(headers: &HeaderMap, limit: usize) -> bool {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len > limit as u64)
}

/// The answer to a cut request: `{"error":{"message","type","code"}}`, and on HTTP/1 a
/// `Connection: close` (the rest of the body is never read).
pub(crate) fn refusal(cut: Cut, version: Version) -> Response {
    let (status, code, message) = match cut {
        Cut::TooLarge(limit) => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("Request body is larger than {limit} bytes"),
        ),
        Cut::TooSlow => (
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "The request body arrived too slowly".to_owned(),
        ),
    };
    let body = serde_json::json!({
        "error": {"message": message, "type": "invalid_request_error", "code": code}
    });
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if version < Version::HTTP_2 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    // The same browser headers as every other answer of the server's own.
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            crate::security_headers::CONTENT_SECURITY_POLICY,
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

pin_project! {
    /// A request body held to [`BodyRules`]: more than `limit` bytes, a pause longer than
    /// `timeout`, or fewer than `min_rate × (elapsed − timeout)` bytes end it with an error,
    /// and the reason goes to its [`CutFlag`].
    pub(crate) struct LimitedBody<B> {
        #[pin]
        inner: B,
        rules: BodyRules,
        limit: usize,
        received: u64,
        started: Instant,
        last: Instant,
        sleep: Option<Pin<Box<Sleep>>>,
        cut: CutFlag,
        done: bool,
    }
}

impl<B> LimitedBody<B> {
    pub(crate) fn new(inner: B, rules: BodyRules, limit: usize, cut: CutFlag) -> Self {
        let now = Instant::now();
        LimitedBody {
            inner,
            rules,
            limit,
            received: 0,
            started: now,
            last: now,
            sleep: None,
            cut,
            done: false,
        }
    }
}

/// When the body is cut if no more of it arrives.
fn deadline(rules: &BodyRules, started: Instant, last: Instant, received: u64) -> Instant {
    let pause = last + rules.timeout;
    if rules.min_rate == 0 {
        return pause;
    }
    let earned = Duration::from_millis(received.saturating_mul(1000) / rules.min_rate);
    pause.min(started + rules.timeout + earned)
}

impl<B> http_body::Body for LimitedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let mut cut = |reason: Cut| {
            *this.done = true;
            let _ = this.cut.set(reason);
            Poll::Ready(Some(Err(Box::new(reason) as BoxError)))
        };
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                    if *this.received > *this.limit as u64 {
                        return cut(Cut::TooLarge(*this.limit));
                    }
                }
                let now = Instant::now();
                // A steady trickle never pauses: check the rate here too.
                if deadline(this.rules, *this.started, now, *this.received) < now {
                    return cut(Cut::TooSlow);
                }
                *this.last = now;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let at = deadline(this.rules, *this.started, *this.last, *this.received);
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => cut(Cut::TooSlow),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn rules(timeout_ms: u64, min_rate: u64) -> BodyRules {
        BodyRules {
            max_proxy: 100,
            max_other: 10,
            timeout: Duration::from_millis(timeout_ms),
            min_rate,
        }
    }

    #[test]
    fn limits_follow_the_path() {
        let r = rules(1000, 0);
        assert_eq!(r.limit_for("/v1/abc/chat/completions"), 100);
        assert_eq!(r.limit_for("/api/auth/login"), 10);
        assert_eq!(r.limit_for("/v1"), 10);
    }

    #[test]
    fn declared_lengths_over_the_limit() {
        let mut h = HeaderMap::new();
        assert!(!declared_over(&h, 10));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert!(!declared_over(&h, 10));
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from_static("10000000000"),
        );
        assert!(declared_over(&h, 10));
    }

    #[test]
    fn the_rate_rule_earns_time_per_byte() {
        let r = rules(1000, 100);
        let t0 = Instant::now();
        assert_eq!(deadline(&r, t0, t0, 0), t0 + Duration::from_secs(1));
        // 50 bytes at 100 B/s earn half a second, but a pause is still at most one second.
        let later = t0 + Duration::from_millis(900);
        assert_eq!(
            deadline(&r, t0, later, 50),
            t0 + Duration::from_millis(1500)
        );
        assert_eq!(deadline(&r, t0, t0, 500), t0 + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn an_oversized_stream_is_cut_and_flagged() {
        let flag = CutFlag::default();
        let inner = http_body_util::Full::new(Bytes::from(vec![0u8; 11]));
        let body = LimitedBody::new(inner, rules(1000, 0), 10, flag.clone());
        assert!(body.collect().await.is_err());
        assert_eq!(flag.get(), Some(&Cut::TooLarge(10)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_is_cut_after_the_timeout() {
        let flag = CutFlag::default();
        let inner = http_body_util::StreamBody::new(futures::stream::pending::<
            Result<Frame<Bytes>, BoxError>,
        >());
        let body = LimitedBody::new(inner, rules(500, 0), 10, flag.clone());
        let started = Instant::now();
        assert!(body.collect().await.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(flag.get(), Some(&Cut::TooSlow));
    }
}

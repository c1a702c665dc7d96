//! The measuring client: raw hyper 1 HTTP/1.1 connections (keep-alive, `TCP_NODELAY`), one
//! request at a time per connection, timed with the monotonic clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use crate::mock::{DELAY_HEADER, DELTAS_HEADER};

/// Why a request did not get a complete 200 answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Could not connect or the connection broke.
    Io(String),
    /// An answer other than 200.
    Status(StatusCode),
    /// A stream with fewer events than the mock sent.
    Truncated { events: usize, expected: usize },
    /// No answer in time.
    Timeout,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Io(e) => write!(f, "connection: {e}"),
            Failure::Status(s) => write!(f, "status {s}"),
            Failure::Truncated { events, expected } => {
                write!(f, "stream ended after {events} of {expected} events")
            }
            Failure::Timeout => write!(f, "timed out"),
        }
    }
}

/// Where requests go: an address and the path prefix in front of `/chat/completions`.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The server's address.
    pub(crate) addr: SocketAddr,
    /// `/v1` for the mock, `/v1/{code}` for the proxy.
    pub(crate) prefix: String,
}

/// What to ask for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ask {
    /// A ~1 KB JSON chat completion.
    Json,
    /// A stream of `deltas` content events, `delay` apart.
    Stream { deltas: usize, delay: Duration },
}

const JSON_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":200}"#;
const STREAM_BODY: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":200,"stream":true,"stream_options":{"include_usage":true}}"#;

impl Endpoint {
    /// A `POST …/chat/completions` request.
    pub(crate) fn request(&self, ask: Ask) -> Request<Full<Bytes>> {
        let body = match ask {
            Ask::Json => JSON_BODY,
            Ask::Stream { .. } => STREAM_BODY,
        };
        let mut req = Request::post(format!("{}/chat/completions", self.prefix))
            .header(
                header::HOST,
                HeaderValue::from_str(&self.addr.to_string())
                    .unwrap_or(HeaderValue::from_static("localhost")),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, "Bearer sk-bench-not-a-real-key")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap_or_default();
        if let Ask::Stream { deltas, delay } = ask {
            let h = req.headers_mut();
            h.insert(DELTAS_HEADER, HeaderValue::from(deltas));
            h.insert(DELAY_HEADER, HeaderValue::from(delay.as_micros() as u64));
        }
        req
    }
}

/// One keep-alive connection.
pub(crate) struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connect to `addr`.
    pub(crate) async fn open(addr: SocketAddr) -> Result<Conn, Failure> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Send `req` and read the whole answer; the time from send to the last byte.
    pub(crate) async fn call(&mut self, req: Request<Full<Bytes>>) -> Result<Duration, Failure> {
        let sent = Instant::now();
        let body = self.exchange(req).await?;
        body.collect()
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        Ok(sent.elapsed())
    }

    /// Send a streaming request and time every event.
    pub(crate) async fn stream(
        &mut self,
        req: Request<Full<Bytes>>,
        expected: usize,
    ) -> Result<StreamTiming, Failure> {
        let sent = Instant::now();
        let mut body = self.exchange(req).await?;
        let mut scan = EventScanner::default();
        let mut events = Vec::with_capacity(expected);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Io(e.to_string()))?;
            if let Some(data) = frame.data_ref() {
                let at = Instant::now();
                for _ in 0..scan.feed(data) {
                    events.push(at);
                }
            }
        }
        if events.len() < expected {
            return Err(Failure::Truncated {
                events: events.len(),
                expected,
            });
        }
        Ok(StreamTiming { sent, events })
    }

    /// Send a JSON request (optionally with a bearer token); the status and the whole body.
    pub(crate) async fn json(
        &mut self,
        addr: SocketAddr,
        path: &str,
        token: Option<&str>,
        body: String,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let mut req = Request::post(path)
            .header(header::HOST, addr.to_string())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Failure::Io(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Io(e.to_string()))?
            .to_bytes();
        Ok((status, body))
    }

    async fn exchange(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> Result<hyper::body::Incoming, Failure> {
        self.sender
            .ready()
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        if res.status() != StatusCode::OK {
            let status = res.status();
            let _ = res.into_body().collect().await;
            return Err(Failure::Status(status));
        }
        Ok(res.into_body())
    }
}

/// When a stream was sent and when each of its events arrived.
#[derive(Debug, Clone)]
pub(crate) struct StreamTiming {
    pub(crate) sent: Instant,
    pub(crate) events: Vec<Instant>,
}

impl StreamTiming {
    /// Send to the end of the first event.
    pub(crate) fn ttfb(&self) -> Duration {
        self.events[0] - self.sent
    }

    /// Send to the end of the last event.
    pub(crate) fn total(&self) -> Duration {
        self.events[self.events.len() - 1] - self.sent
    }

    /// The time between consecutive events.
    pub(crate) fn gaps(&self) -> impl Iterator<Item = Duration> + '_ {
        self.events.windows(2).map(|w| w[1] - w[0])
    }

    /// When each event arrived, counted from the first.
    pub(crate) fn offsets(&self) -> impl Iterator<Item = Duration> + '_ {
        self.events.iter().map(|t| *t - self.events[0])
    }
}

/// Counts complete SSE events (a blank line ends one) across arbitrary frame boundaries.
#[derive(Debug, Default)]
struct EventScanner {
    after_newline: bool,
}

impl EventScanner {
    fn feed(&mut self, data: &[u8]) -> usize {
        let mut ended = 0;
        for &b in data {
            match b {
                b'\n' if self.after_newline => {
                    ended += 1;
                    self.after_newline = false;
                }
                b'\n' => self.after_newline = true,
                b'\r' => {}
                _ => self.after_newline = false,
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_counted_across_frames() {
        let mut s = EventScanner::default();
        assert_eq!(s.feed(b"data: a\n"), 0);
        assert_eq!(s.feed(b"\ndata: b\n\ndata: [DONE]\r\n\r"), 2);
        assert_eq!(s.feed(b"\n"), 1);
    }
}

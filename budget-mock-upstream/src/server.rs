//! [`MockUpstream`]: the listener, its connections and what it has seen.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::handler::handle;
use crate::MockOptions;

/// One request as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// Path with the query string, e.g. `/openai/deployments/d/chat/completions?api-version=…`.
    pub path: String,
    /// Headers in arrival order, names lower-case, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
}

impl SeenRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The distinct values of the credential headers the mock has received, each list in the order
/// first seen: what [`MockUpstream::seen_keys`] returns and `GET /mock/seen-keys` answers with
/// (as `{"authorization": […], "api-key": […], "openai-organization": […],
/// "openai-project": […]}`). Kept even when recording is off, so a test driving a separate mock
/// process can check which key reached it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenKeys {
    /// `Authorization` values, whole (`Bearer sk-…`).
    pub authorization: Vec<String>,
    /// `api-key` values (Azure).
    pub api_key: Vec<String>,
    /// `OpenAI-Organization` values.
    pub openai_organization: Vec<String>,
    /// `OpenAI-Project` values.
    pub openai_project: Vec<String>,
}

impl SeenKeys {
    /// The header names kept, lower-case, as the JSON keys of `GET /mock/seen-keys`.
    pub const HEADERS: [&'static str; 4] = [
        "authorization",
        "api-key",
        "openai-organization",
        "openai-project",
    ];

    /// The list kept for header `name` (one of [`HEADERS`](Self::HEADERS), case-insensitive).
    pub fn values(&self, name: &str) -> Option<&[String]> {
        let lists = [
            &self.authorization,
            &self.api_key,
            &self.openai_organization,
            &self.openai_project,
        ];
        Self::HEADERS
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .map(|i| lists[i].as_slice())
    }

    /// Whether `needle` occurs inside any kept value (e.g. a key inside `Bearer <key>`).
    pub fn contains(&self, needle: &str) -> bool {
        Self::HEADERS
            .iter()
            .filter_map(|h| self.values(h))
            .flatten()
            .any(|v| v.contains(needle))
    }

    /// Adds the credential headers of one request.
    pub(crate) fn note(&mut self, headers: &hyper::HeaderMap) {
        for (name, list) in Self::HEADERS.into_iter().zip([
            &mut self.authorization,
            &mut self.api_key,
            &mut self.openai_organization,
            &mut self.openai_project,
        ]) {
            for value in headers.get_all(name) {
                let value = String::from_utf8_lossy(value.as_bytes());
                if !list.iter().any(|v| *v == value) {
                    list.push(value.into_owned());
                }
            }
        }
    }

    /// `{"authorization": […], "api-key": […], "openai-organization": […], "openai-project": […]}`.
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        for name in Self::HEADERS {
            map.insert(
                name.to_owned(),
                self.values(name).unwrap_or_default().into(),
            );
        }
        Value::Object(map)
    }
}

/// State shared by the server's connections.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) opts: MockOptions,
    pub(crate) seen: Mutex<Vec<SeenRequest>>,
    pub(crate) keys: Mutex<SeenKeys>,
    pub(crate) count: AtomicU64,
    pub(crate) seq: AtomicU64,
}

impl Shared {
    pub(crate) fn record(&self, request: SeenRequest) {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(request);
    }

    pub(crate) fn note_keys(&self, headers: &hyper::HeaderMap) {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .note(headers);
    }

    pub(crate) fn seen_keys(&self) -> SeenKeys {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running mock upstream. Dropping it stops the listener and every open connection.
///
/// ```no_run
/// use budget_mock_upstream::{MockOptions, MockUpstream};
/// # async fn run() -> std::io::Result<()> {
/// let upstream = MockUpstream::start(MockOptions::default()).await?;
/// let base = upstream.url(); // http://127.0.0.1:PORT — point the proxy at it
/// // … send requests through the proxy …
/// let seen = upstream.requests();
/// assert_eq!(seen[0].header("authorization"), Some("Bearer sk-test"));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl MockUpstream {
    /// Binds `opts.addr` and starts serving on the current Tokio runtime.
    pub async fn start(opts: MockOptions) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind(opts.addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            opts,
            seen: Mutex::new(Vec::new()),
            keys: Mutex::new(SeenKeys::default()),
            count: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(MockUpstream { addr, shared, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The options it answers with.
    pub fn options(&self) -> &MockOptions {
        &self.shared.opts
    }

    /// Every request received since start or the last [`reset`](Self::reset), oldest first
    /// (empty when recording is off).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    /// Requests received since start or the last [`reset`](Self::reset) (counted even when
    /// recording is off).
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }

    /// Every distinct credential header value received since start or the last
    /// [`reset`](Self::reset) (kept even when recording is off).
    pub fn seen_keys(&self) -> SeenKeys {
        self.shared.seen_keys()
    }

    /// Forgets the recorded requests and credential headers, and zeroes the count.
    pub fn reset(&self) {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        *self
            .shared
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = SeenKeys::default();
        self.shared.count.store(0, Ordering::Relaxed);
    }

    /// Stops the listener and every open connection, and waits for them to end.
    pub async fn shutdown(self) {
        self.task.abort();
        // Awaiting a `JoinHandle` through `&mut` keeps `Drop` usable.
        let mut this = self;
        let _ = (&mut this.task).await;
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; aborting drops the `JoinSet`, which aborts every
/// connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // Out of file descriptors or similar: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let _ = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

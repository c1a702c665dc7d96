//! Serving connections with limits: the accept loop, per-connection timeouts, request-body
//! limits, the connection cap and graceful shutdown.
//!
//! [`serve`] runs the application on a listener through hyper's HTTP/1.1 and HTTP/2 (prior
//! knowledge) connection builder, with:
//!
//! - a **header-read timeout**: a request head must be complete `header_read_timeout` after
//!   the connection opens or after its first byte arrives (slowloris); the connection is
//!   closed otherwise;
//! - a **keep-alive idle timeout**: a connection with no request in flight closes after
//!   `keep_alive_timeout`;
//! - a **send timeout**: a connection whose client leaves a response unread (no progress
//!   writing to it) for `send_timeout` is closed, and the request settled as if it hung up;
//! - **request-body limits**: a declared `Content-Length` over the limit gets `413` before any
//!   of the body is read; a body that pauses longer than `body_read_timeout`, or averages
//!   less than `body_min_bytes_per_sec` after that head start, is cut with `408`. Proxy paths
//!   (`/v1/...`) allow `max_body_bytes`, everything else `admin_max_body_bytes`;
//! - a **connection cap**: past `max_connections`, new sockets get a one-line `503` and are
//!   closed at once, while open ones keep working ([`fit_open_files`] fits the cap to the
//!   open-file limit at start-up);
//! - `TCP_NODELAY`, [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo) for handlers, and
//!   **graceful shutdown**: when `shutdown` resolves, idle connections close, open requests and
//!   streams get up to `grace` to finish, then the rest are closed.
//!
//! [`IdleTimeout`] is the matching limit on the other side: the proxy ends an upstream
//! response that goes silent.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use budget_server::serve::{serve, ServeOptions};
//! use budget_server::{app, config::Config, state::AppState};
//! let state = AppState::build(Config::for_tests()).await?;
//! let options = ServeOptions::from_config(&state.config);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! serve(listener, app(state), options, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod activity;
mod fds;
mod idle;
mod limits;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::config::Config;
use activity::{Activity, InFlightBody, Timeouts, TrackedIo};
pub use fds::{fds_needed, fit_open_files, FdLimit, FD_RESERVE};
pub use idle::{IdleTimeout, UpstreamIdle};
use limits::{BodyRules, CutFlag, LimitedBody};

/// Timeouts and limits for [`serve`]. [`ServeOptions::from_config`] takes them from the
/// configuration; tests set the fields directly.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a request head may take, from connecting or from its first byte.
    pub header_read_timeout: Duration,
    /// How long a connection may sit idle between requests.
    pub keep_alive_timeout: Duration,
    /// How long writing a response may wait for the client to read.
    pub send_timeout: Duration,
    /// Longest pause in a request body, and the head start before the minimum rate applies.
    pub body_read_timeout: Duration,
    /// Slowest average request-body rate after the head start, in bytes per second (0: none).
    pub body_min_bytes_per_sec: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Largest request body on the proxy (`/v1/...`).
    pub max_body_bytes: usize,
    /// Largest request body anywhere else.
    pub admin_max_body_bytes: usize,
    /// How long open requests get to finish after shutdown begins.
    pub grace: Duration,
    /// Live connection counts (clone it before handing the options over to watch them).
    pub connections: Connections,
}

impl ServeOptions {
    /// The options `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(config.header_read_timeout_secs),
            keep_alive_timeout: Duration::from_secs(config.keep_alive_timeout_secs),
            send_timeout: Duration::from_secs(config.send_timeout_secs),
            body_read_timeout: Duration::from_secs(config.body_read_timeout_secs),
            body_min_bytes_per_sec: config.body_min_bytes_per_sec,
            max_connections: config.max_connections,
            max_body_bytes: config.max_body_bytes,
            admin_max_body_bytes: config.admin_max_body_bytes,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            connections: Connections::default(),
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header: self.header_read_timeout,
            keep_alive: self.keep_alive_timeout,
            write: self.send_timeout,
        }
    }

    fn body_rules(&self) -> BodyRules {
        BodyRules {
            max_proxy: self.max_body_bytes,
            max_other: self.admin_max_body_bytes,
            timeout: self.body_read_timeout,
            min_rate: self.body_min_bytes_per_sec,
        }
    }
}

/// Connection counts of a running [`serve`] (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct Connections(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    open: AtomicUsize,
    refused: AtomicU64,
}

impl Connections {
    /// Connections open now.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Acquire)
    }

    /// Connections refused so far because `max_connections` were open.
    pub fn refused(&self) -> u64 {
        self.0.refused.load(Ordering::Relaxed)
    }
}

/// Counts one open connection until dropped.
struct Slot(Connections);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0 .0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a socket over the connection cap reads before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\nretry-after: 1\r\nx-content-type-options: nosniff\r\n\
cache-control: no-store\r\ncontent-length: 101\r\n\r\n\
{\"error\":{\"message\":\"Too many open connections\",\"type\":\"server_error\",\"code\":\"too_many_connections\"}}";

/// Serve `app` on `listener` until `shutdown` resolves, then drain (see the module docs).
/// Returns when every connection has closed, or when `options.grace` has passed after
/// `shutdown` (the remaining connections are closed then).
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let options = Arc::new(options);
    let mut builder = Builder::new(TokioExecutor::new());
    // The header-read timeout is enforced per connection below (hyper's would also cut idle
    // keep-alive connections at the same moment).
    builder.http1().keep_alive(true).header_read_timeout(None);
    let builder = Arc::new(builder);
    // `true` once shutdown begins; closed when the grace period is over.
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; all gone = all connections closed.
    let (done_tx, done_rx) = watch::channel(());
    let mut last_refusal_log: Option<Instant> = None;
    let mut last_accept_error_log: Option<Instant> = None;
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory: wait a little for connections to close.
                if log_due(&mut last_accept_error_log) {
                    tracing::error!(error = %e, "accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let counts = &options.connections.0;
        if counts.open.load(Ordering::Acquire) >= options.max_connections {
            let refused = counts.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if log_due(&mut last_refusal_log) {
                tracing::warn!(
                    max_connections = options.max_connections,
                    refused_so_far = refused,
                    "connection refused: MAX_CONNECTIONS are open"
                );
            }
            let _ = tcp.try_write(REFUSED);
            continue;
        }
        counts.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(options.connections.clone());
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(
            builder.clone(),
            tcp,
            peer,
            app.clone(),
            options.clone(),
            stop_rx.clone(),
            (slot, done_rx.clone()),
        ));
    }
    drop(listener);
    drop(done_rx);
    stop_tx.send_replace(true);
    if tokio::time::timeout(options.grace, done_tx.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            open = options.connections.open(),
            "grace period over: closing the remaining connections"
        );
    }
    drop(stop_tx);
    Ok(())
}

/// At most one log line per second for repeated events.
fn log_due(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1)) {
        return false;
    }
    *last = Some(now);
    true
}

/// Errors about one connection (not the listener): skip it.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// One client connection: hyper serves it; a watchdog closes it when its head is too slow, it
/// sits idle too long or its client stops reading; shutdown drains it.
async fn connection(
    builder: Arc<Builder<TokioExecutor>>,
    tcp: TcpStream,
    peer: SocketAddr,
    app: Router,
    options: Arc<ServeOptions>,
    mut stop: watch::Receiver<bool>,
    _held: (Slot, watch::Receiver<()>),
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(TrackedIo::new(tcp, activity.clone()));
    let service = ConnectionService {
        app,
        peer,
        activity: activity.clone(),
        rules: options.body_rules(),
    };
    let conn = builder.serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let timeouts = options.timeouts();
    let recheck = timeouts.shortest();
    let watchdog = tokio::time::sleep(recheck);
    let mut watchdog = std::pin::pin!(watchdog);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                match activity.deadline(&timeouts) {
                    Some(at) if at <= now => {
                        tracing::debug!("closing a connection: request head too slow, idle too long or response unread");
                        return;
                    }
                    Some(at) => watchdog.as_mut().reset(at.min(now + recheck)),
                    None => watchdog.as_mut().reset(now + recheck),
                }
            }
            changed = stop.changed() => {
                // Closed: the grace period is over.
                if changed.is_err() || activity.is_idle() {
                    return;
                }
                if !draining {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// The application as one connection's hyper service: notes requests in flight, applies the
/// body limits, and gives handlers the peer address.
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    rules: BodyRules,
}

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<Response<InFlightBody>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<InFlightBody>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, req: Request<Incoming>) -> ServiceFuture {
        let request = self.activity.request_started();
        let version = req.version();
        let limit = self.rules.limit_for(req.uri().path());
        if limits::declared_over(req.headers(), limit) {
            let res = limits::refusal(limits::Cut::TooLarge(limit), version);
            return Box::pin(std::future::ready(Ok(
                res.map(|b| InFlightBody::new(b, request))
            )));
        }
        let cut = CutFlag::default();
        let mut req = req.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(LimitedBody::new(body, self.rules, limit, cut.clone()))
            }
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let app = self.app.clone();
        Box::pin(async move {
            let res = match app.oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            let res = match cut.get() {
                Some(&reason) => {
                    tracing::debug!(%reason, "request body cut");
                    limits::refusal(reason, version)
                }
                None => res,
            };
            Ok(res.map(|b| InFlightBody::new(b, request)))
        })
    }
}

//! What one client connection is doing, for the timeouts that close it: bytes arriving,
//! requests in flight, since when it has been idle, and since when a write has waited for the
//! client to read.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// "Not set" for the millisecond marks below.
const UNSET: u64 = u64::MAX;

/// One connection's activity, shared by its socket, its requests and its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Requests whose response has not finished.
    in_flight: AtomicUsize,
    /// Milliseconds after `opened` when the last request finished (0: none yet).
    idle_since: AtomicU64,
    /// Milliseconds after `opened` of the first byte read while idle: a request head has
    /// started. [`UNSET`] while none has.
    head_started: AtomicU64,
    /// Milliseconds after `opened` since when a write has been waiting for the client to read
    /// (its receive window is full), or [`UNSET`].
    write_blocked: AtomicU64,
}

/// The connection timeouts, as [`Activity::deadline`] applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// A request head must be complete this long after it started (or after connecting).
    pub(crate) header: Duration,
    /// An idle connection closes after this long.
    pub(crate) keep_alive: Duration,
    /// A write may wait this long for the client to read.
    pub(crate) write: Duration,
}

impl Timeouts {
    /// Every deadline that appears (a head starts, a request ends, a write blocks) is at least
    /// this far away: a watchdog that looks this often, or at the known deadline if sooner,
    /// never misses one.
    pub(crate) fn shortest(&self) -> Duration {
        self.header.min(self.keep_alive).min(self.write)
    }
}

impl Activity {
    pub(crate) fn new() -> Self {
        Activity {
            opened: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(UNSET),
            write_blocked: AtomicU64::new(UNSET),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(UNSET - 1)
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Relaxed) == UNSET
        {
            let _ = self.head_started.compare_exchange(
                UNSET,
                self.now_ms(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// A write is waiting for the client (`true`), or went through.
    fn on_write(&self, blocked: bool) {
        let since = self.write_blocked.load(Ordering::Relaxed);
        if blocked && since == UNSET {
            self.write_blocked.store(self.now_ms(), Ordering::Relaxed);
        } else if !blocked && since != UNSET {
            self.write_blocked.store(UNSET, Ordering::Relaxed);
        }
    }

    /// A request head was read; the guard marks the request finished when dropped (with the
    /// response body that carries it).
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(UNSET, Ordering::Release);
        InFlight(self.clone())
    }

    /// No request is being answered.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the connection is to be closed if nothing changes: a request head must be complete
    /// `header` after it started (or after connecting), an idle keep-alive connection closes
    /// after `keep_alive`, and a write may not wait for the client longer than `write`. `None`
    /// while a request is in flight and the client reads (the request body and the upstream
    /// response have their own timeouts).
    pub(crate) fn deadline(&self, t: &Timeouts) -> Option<Instant> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(UNSET / 2);
        let blocked = self.write_blocked.load(Ordering::Relaxed);
        let write = (blocked != UNSET).then(|| blocked.saturating_add(ms(t.write)));
        let idle = self.is_idle().then(|| {
            let head = self.head_started.load(Ordering::Acquire);
            if self.requests.load(Ordering::Relaxed) == 0 {
                // The first head is due `header` after connecting.
                ms(t.header)
            } else if head != UNSET {
                head.saturating_add(ms(t.header))
            } else {
                self.idle_since
                    .load(Ordering::Acquire)
                    .saturating_add(ms(t.keep_alive))
            }
        });
        let at = match (write, idle) {
            (Some(w), Some(i)) => w.min(i),
            (w, i) => w.or(i)?,
        };
        Some(self.opened + Duration::from_millis(at))
    }
}

/// One request in flight on a connection; finished when dropped.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The client socket, noting every read in the connection's [`Activity`].
#[derive(Debug)]
pub(crate) struct TrackedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl TrackedIo {
    pub(crate) fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        TrackedIo { stream, activity }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.on_read();
        }
        polled
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.activity.on_write(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.activity.on_write(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A response body that keeps its request in flight until it is finished or dropped.
#[derive(Debug)]
pub(crate) struct InFlightBody {
    inner: Body,
    _request: InFlight,
}

impl InFlightBody {
    pub(crate) fn new(inner: Body, request: InFlight) -> Self {
        InFlightBody {
            inner,
            _request: request,
        }
    }
}

impl http_body::Body for InFlightBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        keep_alive: Duration::from_secs(60),
        write: Duration::from_secs(30),
    };
    const HEADER: Duration = T.header;
    const KEEP_ALIVE: Duration = T.keep_alive;

    #[tokio::test(start_paused = true)]
    async fn a_new_connection_must_send_its_head_in_time() {
        let a = Arc::new(Activity::new());
        let opened = Instant::now();
        assert_eq!(a.deadline(&T), Some(opened + HEADER));
        tokio::time::advance(Duration::from_secs(3)).await;
        a.on_read();
        // The head started at connect time's deadline, not later.
        assert_eq!(a.deadline(&T), Some(opened + HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_have_no_deadline_and_idle_ones_get_keep_alive() {
        let a = Arc::new(Activity::new());
        let request = a.request_started();
        assert_eq!(a.deadline(&T), None);
        tokio::time::advance(Duration::from_secs(100)).await;
        drop(request);
        let idle = Instant::now();
        assert_eq!(a.deadline(&T), Some(idle + KEEP_ALIVE));
        // A head that starts after an idle pause gets the header timeout from its first byte.
        tokio::time::advance(Duration::from_secs(20)).await;
        a.on_read();
        assert_eq!(a.deadline(&T), Some(Instant::now() + HEADER));
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_does_not_read_has_a_deadline_even_in_flight() {
        let a = Arc::new(Activity::new());
        let _request = a.request_started();
        a.on_write(true);
        let blocked = Instant::now();
        assert_eq!(a.deadline(&T), Some(blocked + T.write));
        tokio::time::advance(Duration::from_secs(5)).await;
        a.on_write(true);
        assert_eq!(a.deadline(&T), Some(blocked + T.write));
        a.on_write(false);
        assert_eq!(a.deadline(&T), None);
    }
}

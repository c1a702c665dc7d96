//! [`IdleTimeout`]: ends a response body that has gone silent.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn StdError + Send + Sync>;

pin_project! {
    /// A body that ends with an [`UpstreamIdle`] error when its inner body yields nothing for
    /// `timeout`. The proxy wraps every upstream response in one (`UPSTREAM_IDLE_TIMEOUT_SECS`):
    /// a stream that stops mid-way is closed, and the budget layer settles it for what was
    /// delivered instead of holding its reservation for as long as the client waits.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use budget_server::serve::IdleTimeout;
    /// use http_body_util::{BodyExt, Full};
    /// let body = IdleTimeout::new(Full::new(bytes::Bytes::from("hi")), Duration::from_secs(300));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "hi");
    /// # }
    /// ```
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        last: Instant,
        #[pin]
        sleep: Sleep,
        fired: bool,
    }
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`; the first frame is due `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        let now = Instant::now();
        IdleTimeout {
            inner,
            timeout,
            last: now,
            sleep: tokio::time::sleep_until(now + timeout),
            fired: false,
        }
    }
}

impl<B> fmt::Debug for IdleTimeout<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdleTimeout")
            .field("timeout", &self.timeout)
            .field("fired", &self.fired)
            .finish_non_exhaustive()
    }
}

/// The upstream sent nothing for the idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpstreamIdle(pub Duration);

impl fmt::Display for UpstreamIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the upstream sent nothing for {} s",
            self.0.as_secs_f32()
        )
    }
}

impl StdError for UpstreamIdle {}

impl<B> Body for IdleTimeout<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        if *this.fired {
            return Poll::Ready(None);
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // The timer is moved only when it fires (below), not for every frame.
                *this.last = Instant::now();
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => loop {
                ready!(this.sleep.as_mut().poll(cx));
                let due = *this.last + *this.timeout;
                if due > Instant::now() {
                    this.sleep.as_mut().reset(due);
                    continue;
                }
                *this.fired = true;
                tracing::warn!(
                    idle_secs = this.timeout.as_secs_f32(),
                    "upstream stream went silent: closing it"
                );
                return Poll::Ready(Some(Err(Box::new(UpstreamIdle(*this.timeout)))));
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.fired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use futures::StreamExt;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_ends_with_an_error_after_the_timeout() {
        let frames = futures::stream::iter([Ok::<_, BoxError>(Frame::data(Bytes::from("a")))])
            .chain(futures::stream::pending());
        let mut body = Box::pin(IdleTimeout::new(
            StreamBody::new(frames),
            Duration::from_secs(5),
        ));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        let started = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.downcast_ref::<UpstreamIdle>().is_some(), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(body.frame().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_stream_is_left_alone() {
        let frames = futures::stream::unfold(0, |n| async move {
            if n == 4 {
                return None;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
            Some((Ok::<_, BoxError>(Frame::data(Bytes::from("x"))), n + 1))
        });
        let body = IdleTimeout::new(StreamBody::new(frames), Duration::from_secs(5));
        let all = body.collect().await.unwrap().to_bytes();
        assert_eq!(all, "xxxx");
    }
}

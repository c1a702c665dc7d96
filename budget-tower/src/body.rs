//! [`MeteredBody`]: forwards every frame as it arrives and meters it on the side.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use budget_core::store::{Reservation, UsageRecord};
use budget_core::usage::{Endpoint, Forward, UsageMeter};
use budget_core::Limiter;

use crate::layer::Config;

pin_project! {
    /// The response body of [`BudgetService`](crate::BudgetService).
    ///
    /// A metered body passes every frame through the moment the inner body yields it (it never
    /// buffers or delays a stream) while a [`UsageMeter`] reads a copy on the side. When the
    /// body ends — or is dropped early because the client hung up — the usage is priced and
    /// the reservation settled: a client that hangs up is charged for what was delivered
    /// (estimated when the usage block never arrived), and the rest of its hold is released.
    pub struct MeteredBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        // The layer's own answer (a refusal).
        Full { data: Option<Bytes> },
        // Not metered (endpoints without usage, upstream errors, fail-open).
        Passthrough { #[pin] inner: B },
        Metered {
            #[pin]
            inner: B,
            settlement: Option<Settlement>,
            // The meter hides the usage chunk (until the body ends).
            strip: bool,
        },
    }
}

impl<B> MeteredBody<B> {
    pub(crate) fn full(data: Bytes) -> Self {
        MeteredBody {
            kind: Kind::Full {
                data: Some(data).filter(|d| !d.is_empty()),
            },
        }
    }

    pub(crate) fn passthrough(inner: B) -> Self {
        MeteredBody {
            kind: Kind::Passthrough { inner },
        }
    }

    pub(crate) fn metered(inner: B, mut settlement: Settlement, strip: bool) -> Self {
        if strip {
            settlement.meter = settlement
                .meter
                .take()
                .map(UsageMeter::with_usage_chunk_stripping);
        }
        MeteredBody {
            kind: Kind::Metered {
                inner,
                settlement: Some(settlement),
                strip,
            },
        }
    }
}

impl<B> fmt::Debug for MeteredBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full { .. } => "full",
            Kind::Passthrough { .. } => "passthrough",
            Kind::Metered { .. } => "metered",
        };
        f.debug_struct("MeteredBody").field("kind", &kind).finish()
    }
}

impl<B> Body for MeteredBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Passthrough { inner } => inner.poll_frame(cx),
            KindProj::Metered {
                mut inner,
                settlement,
                strip,
            } => loop {
                match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        let Some(meter) = settlement.as_mut().and_then(|s| s.meter.as_mut()) else {
                            return Poll::Ready(Some(Ok(frame)));
                        };
                        let data = match frame.into_data() {
                            Ok(data) => data,
                            Err(frame) => return Poll::Ready(Some(Ok(frame))),
                        };
                        if !*strip {
                            meter.feed(&data);
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        let out = match meter.feed_forward(&data) {
                            // As it came (the usual case): no copy.
                            Forward::Piece(r) if r.len() == data.len() => data,
                            Forward::Piece(r) => data.slice(r),
                            Forward::Bytes(b) => Bytes::from(b),
                        };
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                        // Everything in this frame was the hidden usage chunk (or is held
                        // while it might be): poll on.
                    }
                    Some(Err(e)) => {
                        // The upstream broke off: settle for what was delivered.
                        settlement.take();
                        return Poll::Ready(Some(Err(e)));
                    }
                    None => {
                        let mut out = Vec::new();
                        if std::mem::take(strip) {
                            if let Some(meter) = settlement.as_mut().and_then(|s| s.meter.as_mut())
                            {
                                out = meter.end_forward();
                            }
                        }
                        settlement.take();
                        return Poll::Ready(
                            (!out.is_empty()).then(|| Ok(Frame::data(Bytes::from(out)))),
                        );
                    }
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data } => data.is_none(),
            Kind::Passthrough { inner } => inner.is_end_stream(),
            Kind::Metered { inner, strip, .. } => !strip && inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Passthrough { inner } => inner.size_hint(),
            // Stripping can only make the body shorter.
            Kind::Metered {
                inner, strip: true, ..
            } => {
                let mut hint = SizeHint::new();
                if let Some(upper) = inner.size_hint().upper() {
                    hint.set_upper(upper);
                }
                hint
            }
            Kind::Metered { inner, .. } => inner.size_hint(),
        }
    }
}

/// Everything needed to settle one admitted request; settles when dropped.
pub(crate) struct Settlement {
    pub(crate) config: Arc<Config>,
    pub(crate) limiter: Arc<Limiter>,
    pub(crate) reservation: Option<Reservation>,
    pub(crate) endpoint: Endpoint,
    pub(crate) user: Option<String>,
    pub(crate) status: StatusCode,
    pub(crate) streamed: bool,
    pub(crate) started: Instant,
    pub(crate) meter: Option<UsageMeter>,
}

impl Drop for Settlement {
    fn drop(&mut self) {
        let (Some(reservation), Some(meter)) = (self.reservation.take(), self.meter.take()) else {
            return;
        };
        let config = self.config.clone();
        let limiter = self.limiter.clone();
        let (endpoint, user, status, streamed) =
            (self.endpoint, self.user.take(), self.status, self.streamed);
        let latency_ms = self.started.elapsed().as_millis() as u64;
        let reservation_id = reservation.id;
        let settle = async move {
            // Pricing, then the store. Run at once when nothing waits (see
            // `Settlements::run`); tokenizing a long text always goes to a blocking thread.
            let usage = if meter.finish_is_costly() {
                // A long prompt or delivered text to tokenize: not on an async worker.
                match tokio::task::spawn_blocking(move || meter.finish()).await {
                    Ok(usage) => usage,
                    Err(e) => std::panic::resume_unwind(
                        e.try_into_panic()
                            .unwrap_or_else(|_| Box::new("runtime shut down during a settlement")),
                    ),
                }
            } else {
                meter.finish()
            };
            let cost = config.prices.cost(&usage, limiter.provider);
            let mut record =
                UsageRecord::new(limiter.id, reservation.at, endpoint, &usage, cost.total());
            record.user = user;
            record.status = status.as_u16();
            record.streamed = streamed;
            record.latency_ms = latency_ms;
            record.price_version = Some(config.prices.version().to_owned());
            settle(&config, &limiter, &reservation, record).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => self.config.settlements.run(&handle, settle),
            Err(_) => tracing::error!(
                reservation = %reservation_id,
                "no Tokio runtime to settle a reservation; its hold stays until the window ends"
            ),
        }
    }
}

/// Settle `reservation` with `record`, logging and reporting a store failure.
pub(crate) async fn settle(
    config: &Config,
    limiter: &Limiter,
    reservation: &Reservation,
    record: UsageRecord,
) {
    match config.store.settle(reservation, record.clone()).await {
        Ok(()) => config.hooks.settled(limiter, &record),
        Err(e) => {
            tracing::error!(limiter = %limiter.id, reservation = %reservation.id, error = %e, "settling usage failed");
            config.hooks.store_error(&e);
        }
    }
}

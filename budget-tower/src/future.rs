//! The response future of [`BudgetService`](crate::BudgetService).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use crate::MeteredBody;

type BoxFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<MeteredBody<B>>, E>> + Send + 'static>>;

/// Resolves to the inner service's response with a [`MeteredBody`], or to the layer's own
/// refusal.
///
/// The admission check is a chain of store calls of any [`BudgetStore`](budget_core::BudgetStore)
/// implementation, so the state machine is a boxed `async` block: one allocation per request,
/// measured by `benches/layer_overhead.rs`.
pub struct ResponseFuture<B, E> {
    inner: BoxFuture<B, E>,
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(inner: BoxFuture<B, E>) -> Self {
        ResponseFuture { inner }
    }
}

impl<B, E> fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<MeteredBody<B>>, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

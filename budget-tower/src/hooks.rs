//! Observation points for metrics and logs.

use budget_core::store::{Error, UsageRecord};
use budget_core::Limiter;

use crate::Refusal;

/// Called by the layer as requests are refused and settled. Every method has an empty
/// default; implement what you need (the server feeds its Prometheus metrics from these).
pub trait UsageHooks: std::fmt::Debug + Send + Sync + 'static {
    /// A request was answered by the layer itself (404, 403, 429, 400, 413, 503).
    fn refused(&self, limiter: Option<&Limiter>, refusal: &Refusal) {
        let _ = (limiter, refusal);
    }

    /// A request's usage was recorded (settled or, for an upstream error, recorded at $0).
    fn settled(&self, limiter: &Limiter, record: &UsageRecord) {
        let _ = (limiter, record);
    }

    /// The store failed.
    fn store_error(&self, error: &Error) {
        let _ = error;
    }
}

/// No observation.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl UsageHooks for NoHooks {}

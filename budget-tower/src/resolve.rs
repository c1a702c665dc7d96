//! Finding the limiter a request spends from.

use std::sync::Arc;

use budget_core::store::{self, LimiterRef};
use budget_core::{BudgetStore, Limiter, LimiterId};

/// How a request names its limiter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LimiterKey {
    /// By its public proxy code (`/v1/{code}/...`).
    Code(String),
    /// By id (e.g. from the app's own user table).
    Id(LimiterId),
}

/// Put this in the request's extensions (e.g. from your auth middleware) to choose the
/// limiter; the default resolver reads it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UseLimiter(pub LimiterKey);

/// A function from the request head to the limiter it spends from.
pub(crate) type Resolver = Arc<dyn Fn(&http::request::Parts) -> Option<LimiterKey> + Send + Sync>;

/// The default resolver: the [`UseLimiter`] request extension.
pub(crate) fn from_extension(parts: &http::request::Parts) -> Option<LimiterKey> {
    parts.extensions.get::<UseLimiter>().map(|u| u.0.clone())
}

/// The `{code}` of a `/v1/{code}/...` path (see [`crate::BudgetLayer::by_path_code`]).
pub(crate) fn from_path_code(parts: &http::request::Parts) -> Option<LimiterKey> {
    let mut segments = parts.uri.path().trim_start_matches('/').split('/');
    match (segments.next(), segments.next()) {
        (Some("v1"), Some(code)) if !code.is_empty() => Some(LimiterKey::Code(code.to_owned())),
        _ => None,
    }
}

/// The live limiter `key` names, straight from the store (wrap the store in
/// [`budget_core::store::CachingStore`] to serve this from memory).
pub(crate) async fn find(
    store: &dyn BudgetStore,
    key: &LimiterKey,
) -> store::Result<Option<Arc<Limiter>>> {
    let by = match key {
        LimiterKey::Code(code) => LimiterRef::Code(code),
        LimiterKey::Id(id) => LimiterRef::Id(*id),
    };
    store.find_limiter(by).await
}

//! Finding the limiter a request spends from.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use budget_core::{store, BudgetStore, Limiter, LimiterId};

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

/// A short-lived cache of limiters by key, so the hot path does not ask the store every time.
///
/// Only what is not decided by the store is served from it (upstream, mode, unpriced policy);
/// budget, active flag and deletion are checked by [`BudgetStore::reserve`] on every request,
/// so an update or delete through the store takes effect on the very next request.
#[derive(Clone)]
pub(crate) struct LimiterCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<LimiterKey, (Limiter, Instant)>>>,
}

impl fmt::Debug for LimiterCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimiterCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl LimiterCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        LimiterCache {
            ttl,
            entries: Arc::default(),
        }
    }

    pub(crate) async fn get(
        &self,
        store: &dyn BudgetStore,
        key: &LimiterKey,
    ) -> store::Result<Option<Limiter>> {
        if !self.ttl.is_zero() {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((l, at)) = entries.get(key) {
                if at.elapsed() < self.ttl {
                    return Ok(Some(l.clone()));
                }
            }
        }
        let found = match key {
            LimiterKey::Code(code) => store.limiter_by_code(code).await?,
            LimiterKey::Id(id) => store
                .get_limiter(*id)
                .await?
                .filter(|l| l.deleted_at.is_none()),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match &found {
            Some(l) if !self.ttl.is_zero() => {
                if entries.len() > 100_000 {
                    entries.clear();
                }
                entries.insert(key.clone(), (l.clone(), Instant::now()));
            }
            _ => {
                entries.remove(key);
            }
        }
        Ok(found)
    }

    pub(crate) fn forget(&self, key: &LimiterKey) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

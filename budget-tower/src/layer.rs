//! [`BudgetLayer`]: configuration, cheap to clone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use budget_core::pricing::PriceTable;
use budget_core::BudgetStore;
use http::HeaderName;
use tower::Layer;

use crate::hooks::{NoHooks, UsageHooks};
use crate::resolve::{from_extension, from_path_code, LimiterCache, LimiterKey, Resolver};
use crate::service::BudgetService;

/// Enforce budgets and meter OpenAI responses for every request of the wrapped service.
///
/// ```
/// use std::sync::Arc;
/// use budget_core::{BudgetStore, MemoryStore};
/// use budget_core::pricing::PriceTable;
/// use budget_tower::BudgetLayer;
///
/// let store: Arc<dyn BudgetStore> = Arc::new(MemoryStore::new());
/// let layer = BudgetLayer::new(store, PriceTable::builtin())
///     .by_path_code()                       // `/v1/{code}/...` picks the limiter
///     .with_user_header("x-end-user");      // record this header as the end user
/// ```
#[derive(Clone)]
pub struct BudgetLayer {
    pub(crate) config: Arc<Config>,
}

pub(crate) struct Config {
    pub(crate) store: Arc<dyn BudgetStore>,
    pub(crate) prices: PriceTable,
    pub(crate) resolver: Resolver,
    pub(crate) cache: LimiterCache,
    pub(crate) fail_open: bool,
    pub(crate) user_header: Option<HeaderName>,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_event_bytes: usize,
    pub(crate) inject_usage: bool,
    pub(crate) hooks: Arc<dyn UsageHooks>,
}

impl fmt::Debug for BudgetLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("BudgetLayer")
            .field("store", &c.store)
            .field("prices", &c.prices.len())
            .field("fail_open", &c.fail_open)
            .field("user_header", &c.user_header)
            .field("max_request_bytes", &c.max_request_bytes)
            .finish_non_exhaustive()
    }
}

impl BudgetLayer {
    /// A layer over `store` pricing with `prices`. By default the limiter comes from the
    /// [`UseLimiter`](crate::UseLimiter) request extension; see [`by_path_code`](Self::by_path_code)
    /// and [`with_resolver`](Self::with_resolver).
    pub fn new(store: Arc<dyn BudgetStore>, prices: PriceTable) -> Self {
        BudgetLayer {
            config: Arc::new(Config {
                store,
                prices,
                resolver: Arc::new(from_extension),
                cache: LimiterCache::new(Duration::from_secs(1)),
                fail_open: false,
                user_header: None,
                max_request_bytes: 32 * 1024 * 1024,
                max_event_bytes: 4 * 1024 * 1024,
                inject_usage: true,
                hooks: Arc::new(NoHooks),
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = match Arc::try_unwrap(self.config) {
            Ok(c) => c,
            Err(shared) => Config {
                store: shared.store.clone(),
                prices: shared.prices.clone(),
                resolver: shared.resolver.clone(),
                cache: shared.cache.clone(),
                fail_open: shared.fail_open,
                user_header: shared.user_header.clone(),
                max_request_bytes: shared.max_request_bytes,
                max_event_bytes: shared.max_event_bytes,
                inject_usage: shared.inject_usage,
                hooks: shared.hooks.clone(),
            },
        };
        f(&mut config);
        BudgetLayer {
            config: Arc::new(config),
        }
    }

    /// Pick the limiter from the first path segment after `/v1/`: `/v1/{code}/chat/completions`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .by_path_code();
    /// ```
    pub fn by_path_code(self) -> Self {
        self.map(|c| c.resolver = Arc::new(from_path_code))
    }

    /// Pick the limiter with your own function of the request head (a header, the
    /// authenticated user in an extension, a path segment…). `None` answers 404.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// use budget_tower::LimiterKey;
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_resolver(|parts| {
    ///         let code = parts.headers.get("x-limiter")?.to_str().ok()?;
    ///         Some(LimiterKey::Code(code.to_owned()))
    ///     });
    /// ```
    pub fn with_resolver<F>(self, f: F) -> Self
    where
        F: Fn(&http::request::Parts) -> Option<LimiterKey> + Send + Sync + 'static,
    {
        self.map(|c| c.resolver = Arc::new(f))
    }

    /// Record this request header as the end user (instead of the body's `user` field, which
    /// is still used when the header is absent).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_user_header("x-end-user");
    /// ```
    ///
    /// # Panics
    /// If `name` is not a valid header name.
    pub fn with_user_header(self, name: &str) -> Self {
        let name = HeaderName::try_from(name).expect("valid header name");
        self.map(|c| c.user_header = Some(name))
    }

    /// When the store fails, let requests through unmetered instead of answering 503.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_fail_open(true);
    /// ```
    pub fn with_fail_open(self, fail_open: bool) -> Self {
        self.map(|c| c.fail_open = fail_open)
    }

    /// How long a resolved limiter's upstream settings are cached (default 1 s; zero
    /// disables). Budget, active flag and deletion are always checked by the store.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_cache_ttl(std::time::Duration::ZERO);
    /// ```
    pub fn with_cache_ttl(self, ttl: Duration) -> Self {
        self.map(|c| c.cache = LimiterCache::new(ttl))
    }

    /// Largest request body the layer reads to learn the model and limits (default 32 MiB;
    /// larger bodies get 413).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_max_request_bytes(1 << 20);
    /// ```
    pub fn with_max_request_bytes(self, n: usize) -> Self {
        self.map(|c| c.max_request_bytes = n)
    }

    /// Largest single SSE event or JSON response body the meter keeps to find usage
    /// (default 4 MiB). Bigger ones are still forwarded whole; their usage is estimated.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_max_event_bytes(1 << 20);
    /// ```
    pub fn with_max_event_bytes(self, n: usize) -> Self {
        self.map(|c| c.max_event_bytes = n)
    }

    /// Whether to add `stream_options.include_usage: true` to streaming chat and completions
    /// requests that lack it (and hide the extra usage chunk from the client). Default on:
    /// without it, streamed usage can only be estimated.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_usage_injection(false);
    /// ```
    pub fn with_usage_injection(self, on: bool) -> Self {
        self.map(|c| c.inject_usage = on)
    }

    /// Observe every admission, refusal and settlement (metrics, logs).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// #[derive(Debug)]
    /// struct Log;
    /// impl budget_tower::UsageHooks for Log {}
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_hooks(Arc::new(Log));
    /// ```
    pub fn with_hooks(self, hooks: Arc<dyn UsageHooks>) -> Self {
        self.map(|c| c.hooks = hooks)
    }

    /// Drop a cached limiter now (e.g. after changing its upstream through an admin API).
    pub fn forget_limiter(&self, key: &LimiterKey) {
        self.config.cache.forget(key);
    }

    /// The store this layer spends from.
    pub fn store(&self) -> &Arc<dyn BudgetStore> {
        &self.config.store
    }

    /// The price table in force.
    pub fn prices(&self) -> &PriceTable {
        &self.config.prices
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = BudgetService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BudgetService::new(inner, self.config.clone())
    }
}

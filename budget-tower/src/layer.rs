//! [`BudgetLayer`]: configuration, cheap to clone.

use std::fmt;
use std::sync::Arc;

use budget_core::api::{classify, ApiRoute, UnmeteredPolicy};
use budget_core::pricing::PriceTable;
use budget_core::{BudgetStore, Provider};
use http::HeaderName;
use tower::Layer;

use crate::hooks::{NoHooks, UsageHooks};
use crate::resolve::{from_extension, from_path_code, LimiterKey, Resolver};
use crate::service::BudgetService;
use crate::settlements::Settlements;

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

#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn BudgetStore>,
    pub(crate) prices: PriceTable,
    pub(crate) resolver: Resolver,
    pub(crate) api_root: ApiRoot,
    pub(crate) unmetered: UnmeteredPolicy,
    pub(crate) fail_open: bool,
    pub(crate) user_header: Option<HeaderName>,
    pub(crate) max_request_bytes: usize,
    pub(crate) max_event_bytes: usize,
    pub(crate) inject_usage: bool,
    pub(crate) hooks: Arc<dyn UsageHooks>,
    pub(crate) settlements: Settlements,
}

/// Where the OpenAI API path begins in a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiRoot {
    /// OpenAI: after the first `v1` segment (`/ai/v1/chat/completions`); Azure: at the first
    /// `openai` segment (`/azure/openai/deployments/...`); the whole path when there is none.
    AfterV1,
    /// After `/v1/{code}/`.
    AfterCode,
}

impl ApiRoot {
    /// What a request for `path` is, for a limiter of `provider`.
    pub(crate) fn route(self, provider: Provider, method: &str, path: &str) -> ApiRoute {
        let rest = path.trim_start_matches('/');
        if self == ApiRoot::AfterCode {
            return classify(provider, method, rest.splitn(3, '/').nth(2).unwrap_or(""));
        }
        let mut at = 0;
        for seg in rest.split('/') {
            match provider {
                Provider::Azure if seg.eq_ignore_ascii_case("openai") => {
                    return classify(provider, method, &rest[at..])
                }
                Provider::Openai if seg.eq_ignore_ascii_case("v1") => {
                    return classify(
                        provider,
                        method,
                        rest.get(at + seg.len() + 1..).unwrap_or(""),
                    )
                }
                _ => at += seg.len() + 1,
            }
        }
        // Mounted under a prefix of the app's own (`/my-app/chat/completions`): the leftmost
        // suffix that names a known endpoint.
        std::iter::once(0)
            .chain(rest.match_indices('/').map(|(i, _)| i + 1))
            .map(|i| classify(provider, method, &rest[i..]))
            .find(|r| *r != ApiRoute::Unknown && *r != ApiRoute::OutsideApi)
            .unwrap_or(ApiRoute::Unknown)
    }
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
                api_root: ApiRoot::AfterV1,
                unmetered: UnmeteredPolicy::Refuse,
                fail_open: false,
                user_header: None,
                max_request_bytes: 32 * 1024 * 1024,
                max_event_bytes: 4 * 1024 * 1024,
                inject_usage: true,
                hooks: Arc::new(NoHooks),
                settlements: Settlements::default(),
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = Arc::unwrap_or_clone(self.config);
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
        self.map(|c| {
            c.resolver = Arc::new(from_path_code);
            c.api_root = ApiRoot::AfterCode;
        })
    }

    /// Whether endpoints that cost money without reporting usage (batches, fine-tuning jobs,
    /// realtime sessions, vector-store work…) and endpoints this version does not know are
    /// forwarded. The default, [`UnmeteredPolicy::Refuse`], answers them with a 403 naming the
    /// setting; a limiter's own `unmetered_endpoints` overrides it. Reads (`GET`, `HEAD`) and
    /// deletes of unknown endpoints always pass. See [`budget_core::api`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use budget_core::{MemoryStore, pricing::PriceTable};
    /// use budget_core::api::{classify, ApiRoute, UnmeteredPolicy};
    /// let layer = budget_tower::BudgetLayer::new(Arc::new(MemoryStore::new()), PriceTable::builtin())
    ///     .with_unmetered_endpoints(UnmeteredPolicy::Allow);
    /// ```
    pub fn with_unmetered_endpoints(self, policy: UnmeteredPolicy) -> Self {
        self.map(|c| c.unmetered = policy)
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

    /// Wait until every settlement the layer has spawned so far has reached the store.
    ///
    /// A response body settles when it ends or is dropped, in a task of its own (pricing and
    /// the store call stay off the body's poll path). Graceful shutdown awaits this before
    /// closing the store; tests await it instead of sleeping. Requests still streaming are not
    /// waited for: their settlement starts when their body ends or is dropped.
    ///
    /// ```
    /// # async fn example(layer: budget_tower::BudgetLayer) {
    /// layer.settlements().await;
    /// # }
    /// ```
    pub async fn settlements(&self) {
        self.config.settlements.idle().await;
    }

    /// How many settlements are running right now.
    pub fn settlements_running(&self) -> usize {
        self.config.settlements.running()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_under_any_prefix() {
        use budget_core::usage::Endpoint::*;
        use ApiRoot::*;
        use Provider::*;
        let chat = ApiRoute::Metered(ChatCompletions);
        assert_eq!(
            AfterCode.route(Openai, "POST", "/v1/abc123/chat/completions"),
            chat
        );
        assert_eq!(
            AfterCode.route(Azure, "POST", "/v1/abc/openai/v1/responses"),
            ApiRoute::Metered(Responses)
        );
        assert_eq!(
            AfterCode.route(Openai, "POST", "/v1/abc"),
            ApiRoute::Unknown
        );
        assert_eq!(
            AfterV1.route(Openai, "POST", "/ai/v1/embeddings"),
            ApiRoute::Metered(Embeddings)
        );
        assert_eq!(AfterV1.route(Openai, "POST", "/chat/completions"), chat);
        assert_eq!(
            AfterV1.route(Openai, "POST", "/my-app/chat/completions"),
            chat
        );
        assert_eq!(
            AfterV1.route(Openai, "POST", "/my-app/vector_stores/vs/files"),
            ApiRoute::Unmetered("vector stores")
        );
        assert_eq!(AfterV1.route(Openai, "POST", "/v1"), ApiRoute::Unknown);
        assert_eq!(
            AfterV1.route(Azure, "POST", "/v1/x/openai/deployments/d/chat/completions"),
            chat
        );
    }
}

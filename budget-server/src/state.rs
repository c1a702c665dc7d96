//! Everything a request handler needs, built once at start-up.

use std::sync::Arc;
use std::time::Instant;

use budget_core::pricing::PriceTable;
use budget_core::store::{CachingStore, Store};
use budget_core::MemoryStore;
use budget_store_postgres::{PostgresStore, PostgresStoreOptions};
use budget_store_sqlite::{SqliteStore, SqliteStoreOptions};
use budget_tower::BudgetLayer;

use crate::admin::AdminAuth;
use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::proxy::Upstream;
use crate::secrets::{Sealer, SecretsKey};

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Where budgets and usage live.
    pub store: Arc<dyn Store>,
    /// The SQLite store, when that is the store (closed on shutdown).
    pub sqlite: Option<SqliteStore>,
    /// The PostgreSQL store, when that is the store (closed on shutdown: writes the last
    /// usage and gives this replica's slices back).
    pub postgres: Option<PostgresStore>,
    /// The price table in force (built-in plus `PRICES_FILE`).
    pub prices: PriceTable,
    /// Admin credentials, token keys and the login throttle.
    pub auth: Arc<AdminAuth>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The budget layer in front of the proxy.
    pub layer: BudgetLayer,
    /// The pooled upstream HTTP client.
    pub upstream: Upstream,
    /// When the server started.
    pub started: Instant,
    /// Seals and opens upstream keys (`SECRETS_KEY`); `None` when it is not set.
    pub sealer: Option<Arc<Sealer>>,
    /// Threshold alerts (the watcher and the sender run while this lives).
    pub alerts: Arc<crate::alerts::Alerts>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("cannot open DATABASE_URL: {0}")]
    Store(String),
    /// The price file could not be loaded.
    #[error("cannot load PRICES_FILE: {0}")]
    Prices(String),
    /// Stored upstream credentials cannot be opened with the `SECRETS_KEY` given (or none).
    #[error("SECRETS_KEY: {0}")]
    Secrets(String),
}

impl AppState {
    /// Validate the configuration, open the store, load prices, set up auth and metrics, and
    /// check that `SECRETS_KEY` opens every stored upstream credential.
    pub async fn build(config: Config) -> Result<AppState, StartError> {
        let state = Self::open(config).await?;
        state.check_credentials().await?;
        Ok(state)
    }

    /// Refuse to start when upstream credentials are stored that `SECRETS_KEY` cannot open
    /// (it is missing, or another key): serving with them would send garbage upstream or fail
    /// every request of their limiters. A store without credentials passes.
    pub async fn check_credentials(&self) -> Result<(), StartError> {
        let stored = match self.store.list_credentials().await {
            Ok(c) => c,
            Err(budget_core::store::Error::Unsupported(_)) => return Ok(()),
            Err(e) => return Err(StartError::Store(e.to_string())),
        };
        if stored.is_empty() {
            return Ok(());
        }
        let Some(sealer) = &self.sealer else {
            return Err(StartError::Secrets(format!(
                "the database holds {} upstream credential(s) but SECRETS_KEY is not set; set \
                 it to the key they were saved with",
                stored.len()
            )));
        };
        let mut failed: Vec<&budget_core::Credential> = stored
            .iter()
            .filter(|c| sealer.open(c.id, &c.sealed).is_err())
            .collect();
        if !failed.is_empty() {
            if let Some(previous) = self
                .config
                .secrets_key_previous
                .as_deref()
                .filter(|k| !k.trim().is_empty())
            {
                let previous = Sealer::new(
                    &SecretsKey::parse(previous)
                        .map_err(|e| StartError::Secrets(format!("SECRETS_KEY_PREVIOUS {e}")))?,
                );
                failed = self.reseal(sealer, &previous, failed).await?;
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        let failed: Vec<&str> = failed.iter().map(|c| c.name.as_str()).collect();
        Err(StartError::Secrets(format!(
            "does not decrypt {} of the {} stored upstream credential(s) ({}): is it the key \
             they were saved with? Start with that key, or enter those keys again after \
             deleting the credentials",
            failed.len(),
            stored.len(),
            failed.join(", ")
        )))
    }

    /// Seal again under `sealer` every credential of `failed` that `previous` opens; the ones
    /// neither opens are returned. Each re-seal is in the audit trail.
    async fn reseal<'a>(
        &self,
        sealer: &Sealer,
        previous: &Sealer,
        failed: Vec<&'a budget_core::Credential>,
    ) -> Result<Vec<&'a budget_core::Credential>, StartError> {
        let mut still = Vec::new();
        let mut moved = 0;
        for c in failed {
            let Ok(key) = previous.open(c.id, &c.sealed) else {
                still.push(c);
                continue;
            };
            let mut next = c.clone();
            next.sealed = sealer.seal(c.id, &key);
            next.updated_at = chrono::Utc::now();
            self.store
                .update_credential(&next)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            let mut entry =
                budget_core::audit::AuditEntry::new("budget-server", "credential.reseal");
            entry.target = Some(c.id.to_string());
            entry.after = Some(serde_json::json!({"name": c.name, "sealed_under": "SECRETS_KEY"}));
            crate::admin::audit::append(self, &entry).await;
            moved += 1;
        }
        if moved > 0 {
            tracing::info!(
                credentials = moved,
                "upstream keys sealed again under the new SECRETS_KEY; SECRETS_KEY_PREVIOUS can be removed"
            );
        }
        Ok(still)
    }

    async fn open(config: Config) -> Result<AppState, StartError> {
        config.validate()?;
        let limits = (
            config.max_unsaved_usage_events,
            std::time::Duration::from_secs(config.max_unsaved_usage_secs),
        );
        if config.database_url == "memory" {
            return Self::with_store(config, Arc::new(MemoryStore::new()), None);
        }
        if config.is_postgres() {
            let options = PostgresStoreOptions::new(&config.database_url)
                .with_max_unsaved_events(limits.0)
                .with_max_unsaved_age(limits.1)
                .with_lease_ttl(std::time::Duration::from_secs(
                    config.postgres_lease_ttl_secs,
                ))
                .with_lease_grace(std::time::Duration::from_secs(
                    config.postgres_lease_grace_secs,
                ));
            let pg = PostgresStore::open_with(options)
                .await
                .map_err(|e| StartError::Store(e.to_string()))?;
            // No CachingStore: the PostgreSQL store keeps limiters in memory itself and
            // reloads one the moment any replica changes it (LISTEN/NOTIFY).
            return Self::assemble(config, Arc::new(pg.clone()), None, Some(pg), false);
        }
        let mut options = SqliteStoreOptions::new(&config.database_url)
            .with_max_unsaved_events(limits.0)
            .with_max_unsaved_age(limits.1);
        if let Some(pages) = config.sqlite_max_page_count {
            options = options.with_max_page_count(pages);
        }
        let s = SqliteStore::open_with(options)
            .await
            .map_err(|e| StartError::Store(e.to_string()))?;
        Self::with_store(config, Arc::new(s.clone()), Some(s))
    }

    /// Like [`build`](Self::build) with a store you provide (tests, custom stores).
    pub fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        sqlite: Option<SqliteStore>,
    ) -> Result<AppState, StartError> {
        Self::assemble(config, store, sqlite, None, true)
    }

    fn assemble(
        config: Config,
        store: Arc<dyn Store>,
        sqlite: Option<SqliteStore>,
        postgres: Option<PostgresStore>,
        cache: bool,
    ) -> Result<AppState, StartError> {
        config.validate()?;
        // The proxy looks its limiter up on every request: from memory, for at most a second;
        // the admin API changes limiters through the same wrapper, which forgets them at once.
        let store: Arc<dyn Store> = if cache {
            Arc::new(CachingStore::new(store))
        } else {
            store
        };
        let mut prices = PriceTable::builtin();
        if let Some(path) = &config.prices_file {
            let extra =
                PriceTable::load_file(path).map_err(|e| StartError::Prices(e.to_string()))?;
            prices = prices.with_overrides(extra);
        }
        let auth = Arc::new(AdminAuth::new(&config)?);
        let metrics = Arc::new(Metrics::new(store.clone()));
        let alerts = Arc::new(crate::alerts::Alerts::new(
            crate::alerts::AlertConfig::from_config(&config),
            store.clone(),
        ));
        metrics.register_alerts(&alerts.counts);
        let hooks = Arc::new(crate::alerts::ServerHooks {
            metrics: metrics.clone(),
            alerts: alerts.clone(),
        });
        let mut layer = BudgetLayer::new(store.clone(), prices.clone())
            .by_path_code()
            .with_fail_open(config.fail_open)
            .with_unmetered_endpoints(config.unmetered_endpoints.into())
            .with_max_request_bytes(config.max_body_bytes)
            .with_hooks(hooks);
        if let Some(h) = &config.user_header {
            layer = layer.with_user_header(h);
        }
        let upstream = Upstream::new(&config);
        crate::alerts::Alerts::spawn(&alerts, upstream.client().clone());
        let sealer = match config.secrets_key() {
            Some(key) => Some(Arc::new(Sealer::new(
                &SecretsKey::parse(key).map_err(StartError::Secrets)?,
            ))),
            None => None,
        };
        Ok(AppState {
            sealer,
            config: Arc::new(config),
            store,
            sqlite,
            postgres,
            prices,
            auth,
            metrics,
            layer,
            upstream,
            started: Instant::now(),
            alerts,
        })
    }
}

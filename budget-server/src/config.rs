//! Configuration: command-line flags, environment variables, or a `.env` file (in that order
//! of precedence), with safe defaults. Every variable is listed in `.env.example`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `UNMETERED_ENDPOINTS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UnmeteredSetting {
    /// Refuse them with a 403 that names this setting.
    Refuse,
    /// Forward them while the budget is open; their cost is not counted.
    Allow,
}

impl From<UnmeteredSetting> for budget_core::api::UnmeteredPolicy {
    fn from(s: UnmeteredSetting) -> Self {
        match s {
            UnmeteredSetting::Refuse => budget_core::api::UnmeteredPolicy::Refuse,
            UnmeteredSetting::Allow => budget_core::api::UnmeteredPolicy::Allow,
        }
    }
}

/// `budget-server` configuration.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "budget-server",
    version,
    about = "A hard dollar budget in front of the OpenAI API: proxy, admin API and dashboard"
)]
pub struct Config {
    /// Address to listen on. The default, loopback, is reachable only from this host; set
    /// `0.0.0.0` (or `::`) to serve the network, together with a strong `ADMIN_PASSWORD`.
    #[arg(long, env = "HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// Where budgets and usage live: `sqlite:usage_data.db` (a file, created if missing),
    /// `postgres://user:password@host:5432/db` (several replicas share one budget; see
    /// docs/storage-postgres.md) or `memory` (nothing survives a restart).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:usage_data.db")]
    pub database_url: String,

    /// Secret that signs admin tokens (at least 32 bytes). Unset: a random one is generated
    /// and tokens stop working when the server restarts.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// The key that seals upstream API keys held by the server (docs/upstream-keys.md): 32
    /// random bytes as base64 (`openssl rand -base64 32`) or 64 hex digits. Unset: the server
    /// runs, but refuses to store upstream credentials. Keep it apart from database backups;
    /// without it the stored keys cannot be read.
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,

    /// The previous `SECRETS_KEY`, while replacing it: at start-up every stored upstream key
    /// that `SECRETS_KEY` cannot open but this one can is sealed again under `SECRETS_KEY`.
    /// Remove it once the server has started with both.
    #[arg(long, env = "SECRETS_KEY_PREVIOUS", hide_env_values = true)]
    pub secrets_key_previous: Option<String>,

    /// How long an admin token lasts, in hours.
    #[arg(long, env = "JWT_EXPIRE_HOURS", default_value_t = 24)]
    pub jwt_expire_hours: u32,

    /// Admin user name.
    #[arg(long, env = "ADMIN_USERNAME", default_value = "admin")]
    pub admin_username: String,

    /// Admin password (plain text, hashed with argon2 at start), or an argon2 PHC hash
    /// (`$argon2id$...`).
    #[arg(
        long,
        env = "ADMIN_PASSWORD",
        default_value = "changeme",
        hide_env_values = true
    )]
    pub admin_password: String,

    /// Default upstream for new limiters.
    #[arg(
        long,
        env = "OPENAI_API_BASE_URL",
        default_value = "https://api.openai.com"
    )]
    pub openai_api_base_url: String,

    /// Browser origins allowed to call the admin API (comma-separated; `*` for any). The
    /// dashboard is served from the same origin and needs none.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',', default_value = "")]
    pub cors_origins: Vec<String>,

    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` / `X-Forwarded-Proto` headers
    /// are believed (comma-separated CIDRs or addresses, e.g. `10.0.0.0/8,::1`). Unset: the
    /// connection's address is the client (login throttling) and forwarding headers are
    /// ignored.
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub trusted_proxies: Vec<String>,

    /// Bearer token that `/metrics` requires (`Authorization: Bearer <token>`). Unset or
    /// empty: `/metrics` is open to anyone who can reach the port.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// The URL clients reach this server at, used in limiters' `proxy_endpoint`
    /// (default: from the request's `Host` header).
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Seconds to wait for a TCP/TLS connection to the upstream.
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub upstream_connect_timeout_secs: u64,

    /// Seconds to wait for the upstream's response headers (long for slow reasoning models).
    #[arg(long, env = "UPSTREAM_FIRST_BYTE_TIMEOUT_SECS", default_value_t = 600)]
    pub upstream_first_byte_timeout_secs: u64,

    /// Largest request body accepted, in bytes (audio uploads are the big ones).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// A JSON price file that overrides or extends the built-in prices (see docs/pricing.md).
    #[arg(long, env = "PRICES_FILE")]
    pub prices_file: Option<PathBuf>,

    /// Record this request header as the end user (the body's `user` field otherwise).
    #[arg(long, env = "USER_HEADER")]
    pub user_header: Option<String>,

    /// Endpoints that cost money without reporting usage (batches, fine-tuning jobs, realtime
    /// sessions, vector-store work…) and endpoints this version does not know: `refuse`
    /// (default; 403 naming this setting) or `allow` (forwarded while the budget is open, their
    /// cost not counted). A limiter's `unmetered_endpoints` overrides it.
    #[arg(
        long,
        env = "UNMETERED_ENDPOINTS",
        value_enum,
        default_value = "refuse"
    )]
    pub unmetered_endpoints: UnmeteredSetting,

    /// Allow limiters whose upstream is a link-local or cloud-metadata address
    /// (169.254.0.0/16, fe80::/10, fd00:ec2::254). Off by default: such an upstream would let
    /// code holders read the host's cloud credentials.
    #[arg(long, env = "ALLOW_LINK_LOCAL_UPSTREAMS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_link_local_upstreams: bool,

    /// Let requests through unmetered when the store fails (default: refuse with 503).
    #[arg(long, env = "FAIL_OPEN", default_value_t = false, action = clap::ArgAction::Set)]
    pub fail_open: bool,

    /// While usage cannot be saved (a full disk), new requests get `503` + `Retry-After` once
    /// this many settled requests wait unsaved (they stay queued and are saved on recovery).
    #[arg(long, env = "MAX_UNSAVED_USAGE_EVENTS", default_value_t = 10_000)]
    pub max_unsaved_usage_events: usize,

    /// … or once the oldest unsaved usage has waited this many seconds.
    #[arg(long, env = "MAX_UNSAVED_USAGE_SECS", default_value_t = 60)]
    pub max_unsaved_usage_secs: u64,

    /// PostgreSQL store: seconds a replica's slice of a budget stays valid without a report.
    /// A replica cut off from the database admits from its slices for 80 % of this, then
    /// answers 503; a dead replica's unused slice returns after this plus the grace.
    #[arg(long, env = "POSTGRES_LEASE_TTL_SECS", default_value_t = 15)]
    pub postgres_lease_ttl_secs: u64,

    /// PostgreSQL store: seconds after a lease expires before another replica reclaims it.
    #[arg(long, env = "POSTGRES_LEASE_GRACE_SECS", default_value_t = 5)]
    pub postgres_lease_grace_secs: u64,

    /// Diagnostic only: cap the SQLite file at this many pages (`PRAGMA max_page_count`), to
    /// rehearse a full disk. Unset in production.
    #[arg(long, env = "SQLITE_MAX_PAGE_COUNT", hide = true)]
    pub sqlite_max_page_count: Option<u32>,

    /// Enforce budgets (default). `false` turns the proxy into a plain pass-through (for
    /// measuring the budget layer's cost).
    #[arg(long, env = "BUDGETS_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub budgets_enabled: bool,

    /// Try everything offline: start the built-in mock OpenAI upstream, keep budgets in memory,
    /// and create a demo limiter (code `demo-limiter-code`) pointed at the mock.
    #[arg(long, env = "BUDGET_DEMO", default_value_t = false)]
    pub demo: bool,

    /// Seconds that open streams get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Seconds a client gets to send a request's headers, counted from connecting or from the
    /// first byte after an idle pause; slower connections are closed (slowloris).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 15)]
    pub header_read_timeout_secs: u64,

    /// Seconds an idle keep-alive connection stays open between requests.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 75)]
    pub keep_alive_timeout_secs: u64,

    /// Seconds writing a response may wait for the client to read; a client that stops
    /// reading is disconnected (and its request settled as if it hung up).
    #[arg(long, env = "SEND_TIMEOUT_SECS", default_value_t = 60)]
    pub send_timeout_secs: u64,

    /// Seconds a request body may pause, and the head start it gets before
    /// `BODY_MIN_BYTES_PER_SEC` applies; a slower body is cut with `408`.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub body_read_timeout_secs: u64,

    /// Slowest average request-body rate, in bytes per second, after the head start
    /// (`0`: no rate rule, only the pause limit).
    #[arg(long, env = "BODY_MIN_BYTES_PER_SEC", default_value_t = 8 * 1024)]
    pub body_min_bytes_per_sec: u64,

    /// Most client connections open at once; more are refused at once. Lowered at start-up
    /// when the open-file limit cannot be raised far enough.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Largest request body outside the proxy (admin API, login), in bytes.
    #[arg(long, env = "ADMIN_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub admin_max_body_bytes: usize,

    /// Seconds an upstream response may stay silent once it has started; then the stream is
    /// closed and settled for what was delivered.
    #[arg(long, env = "UPSTREAM_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    pub upstream_idle_timeout_secs: u64,

    /// Where alert events go (docs/alerts.md): a webhook URL for every limiter that names no
    /// webhook of its own. Unset: only limiters with their own `alerts.webhook_url` alert.
    #[arg(long, env = "ALERT_WEBHOOK_URL", hide_env_values = true)]
    pub alert_webhook_url: Option<String>,

    /// The body `ALERT_WEBHOOK_URL` receives: `json` (the event) or `slack` (`{"text": …}`).
    #[arg(long, env = "ALERT_WEBHOOK_FORMAT", value_enum, default_value = "json")]
    pub alert_webhook_format: WebhookFormatSetting,

    /// The secret every alert delivery is signed with (HMAC-SHA256, header
    /// `X-Budget-Signature`), at least 16 characters (`openssl rand -hex 32`). Required for
    /// any webhook.
    #[arg(long, env = "ALERT_WEBHOOK_SECRET", hide_env_values = true)]
    pub alert_webhook_secret: Option<String>,

    /// Percentages of each window's budget that raise an alert, for limiters that name none
    /// (comma-separated, ascending; empty for none).
    #[arg(long, env = "ALERT_THRESHOLDS", default_value = "80,100")]
    pub alert_thresholds: String,

    /// How long an undelivered alert is retried (with exponential backoff) before it is given
    /// up, in seconds.
    #[arg(long, env = "ALERT_RETRY_FOR_SECS", default_value_t = 24 * 3600)]
    pub alert_retry_for_secs: u64,

    /// The first retry's delay, in milliseconds; each later one doubles (to at most an hour),
    /// less up to half at random.
    #[arg(long, env = "ALERT_RETRY_BASE_MS", default_value_t = 5_000)]
    pub alert_retry_base_ms: u64,

    /// Seconds one delivery attempt may wait for the answer's status, connecting included.
    #[arg(long, env = "ALERT_TIMEOUT_SECS", default_value_t = 10)]
    pub alert_timeout_secs: u64,
}

/// `ALERT_WEBHOOK_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookFormatSetting {
    /// The event as JSON.
    Json,
    /// `{"text": …}` for Slack-compatible incoming webhooks.
    Slack,
}

impl From<WebhookFormatSetting> for budget_core::alert::WebhookFormat {
    fn from(s: WebhookFormatSetting) -> Self {
        match s {
            WebhookFormatSetting::Json => budget_core::alert::WebhookFormat::Json,
            WebhookFormatSetting::Slack => budget_core::alert::WebhookFormat::Slack,
        }
    }
}

/// A configuration value that stops start-up, with the variable it is about.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl Config {
    /// Defaults for tests: in-memory store, a fixed secret, loopback, port 0.
    pub fn for_tests() -> Self {
        let mut c = Config::parse_from(["budget-server"]);
        c.host = "127.0.0.1".into();
        c.port = 0;
        c.database_url = "memory".into();
        c.jwt_secret = Some("test-secret-test-secret-test-secret-0123".into());
        c.shutdown_grace_secs = 5;
        c
    }

    /// `ALERT_WEBHOOK_URL`, unless unset or empty.
    pub fn alert_webhook_url(&self) -> Option<&str> {
        self.alert_webhook_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
    }

    /// `ALERT_WEBHOOK_SECRET`, unless unset or empty.
    pub fn alert_webhook_secret(&self) -> Option<&str> {
        self.alert_webhook_secret
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// `ALERT_THRESHOLDS`, parsed and checked like a limiter's.
    pub fn alert_thresholds(&self) -> Result<Vec<u16>, String> {
        let t = self
            .alert_thresholds
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.trim_end_matches('%')
                    .parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a whole percentage"))
            })
            .collect::<Result<Vec<u16>, String>>()?;
        budget_core::alert::AlertSettings {
            thresholds: Some(t.clone()),
            ..Default::default()
        }
        .validate()
        .map_err(|e| e.reason)?;
        Ok(t)
    }

    /// `SECRETS_KEY`, unless unset or empty (an empty variable, as a Compose file's
    /// `${SECRETS_KEY:-}` gives, means none).
    pub fn secrets_key(&self) -> Option<&str> {
        self.secrets_key.as_deref().filter(|k| !k.trim().is_empty())
    }

    /// Check what clap cannot; the error names the variable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |variable, reason: String| Err(ConfigError { variable, reason });
        if let Some(secret) = &self.jwt_secret {
            if secret.len() < 32 {
                return err(
                    "JWT_SECRET",
                    format!("must be at least 32 bytes (got {})", secret.len()),
                );
            }
        }
        if self.jwt_expire_hours == 0 {
            return err("JWT_EXPIRE_HOURS", "must be at least 1".into());
        }
        if let Some(key) = self.secrets_key() {
            if let Err(reason) = crate::secrets::SecretsKey::parse(key) {
                return err("SECRETS_KEY", reason);
            }
        }
        if let Some(key) = self
            .secrets_key_previous
            .as_deref()
            .filter(|k| !k.trim().is_empty())
        {
            if let Err(reason) = crate::secrets::SecretsKey::parse(key) {
                return err("SECRETS_KEY_PREVIOUS", reason);
            }
            if self.secrets_key().is_none() {
                return err(
                    "SECRETS_KEY_PREVIOUS",
                    "is set without SECRETS_KEY: set SECRETS_KEY to the new key".into(),
                );
            }
        }
        if let Err(reason) = self.alert_thresholds() {
            return err("ALERT_THRESHOLDS", reason);
        }
        if let Some(u) = self.alert_webhook_url() {
            if let Err(reason) = budget_core::alert::validate_webhook_url(u) {
                return err("ALERT_WEBHOOK_URL", reason);
            }
            if self.alert_webhook_secret().is_none() {
                return err(
                    "ALERT_WEBHOOK_SECRET",
                    "is needed with ALERT_WEBHOOK_URL: every delivery is signed with it \
                     (`openssl rand -hex 32`)"
                        .into(),
                );
            }
        }
        if let Some(s) = self.alert_webhook_secret() {
            if s.len() < 16 {
                return err(
                    "ALERT_WEBHOOK_SECRET",
                    format!("must be at least 16 characters (got {})", s.len()),
                );
            }
        }
        if self.alert_timeout_secs == 0 || self.alert_retry_base_ms == 0 {
            return err(
                "ALERT_TIMEOUT_SECS",
                "ALERT_TIMEOUT_SECS and ALERT_RETRY_BASE_MS must be at least 1".into(),
            );
        }
        if self.admin_username.trim().is_empty() {
            return err("ADMIN_USERNAME", "must not be empty".into());
        }
        if self.admin_password.is_empty() {
            return err("ADMIN_PASSWORD", "must not be empty".into());
        }
        // The placeholders of .env.example and of old copies of it: a server started with them
        // would have a secret and a password that everyone knows.
        if self.admin_password == "strong-password-here" {
            return err(
                "ADMIN_PASSWORD",
                "is the placeholder from .env.example: choose a password".into(),
            );
        }
        if self
            .jwt_secret
            .as_deref()
            .is_some_and(|s| s.starts_with("your-super-secret-key") || s.starts_with("change-me"))
        {
            return err(
                "JWT_SECRET",
                "is the placeholder from .env.example: generate one with `openssl rand -hex 32`, or leave it unset".into(),
            );
        }
        if let Ok(addr) = self.listen_addr() {
            if !addr.ip().is_loopback() && self.default_password() {
                return err(
                    "ADMIN_PASSWORD",
                    format!(
                        "is the default `changeme` while HOST={} serves the network: set a strong ADMIN_PASSWORD, or HOST=127.0.0.1",
                        self.host
                    ),
                );
            }
        }
        if let Err(e) = budget_core::limiter::parse_base_url(&self.openai_api_base_url) {
            return err("OPENAI_API_BASE_URL", e.reason);
        }
        if let Some(u) = &self.public_url {
            if let Err(e) = budget_core::limiter::parse_base_url(u) {
                return err("PUBLIC_URL", e.reason);
            }
        }
        if self.listen_addr().is_err() {
            return err("HOST", format!("`{}` is not an IP address", self.host));
        }
        if !(self.database_url == "memory"
            || self.database_url.starts_with("sqlite:")
            || self.database_url.ends_with(".db")
            || self.is_postgres())
        {
            return err(
                "DATABASE_URL",
                format!(
                    "`{}`: expected sqlite:PATH, postgres://USER:PASSWORD@HOST/DB or memory",
                    self.database_url
                ),
            );
        }
        if self.max_body_bytes < 1024 {
            return err("MAX_BODY_BYTES", "must be at least 1024".into());
        }
        if self.admin_max_body_bytes < 1024 {
            return err("ADMIN_MAX_BODY_BYTES", "must be at least 1024".into());
        }
        for (variable, value) in [
            ("HEADER_READ_TIMEOUT_SECS", self.header_read_timeout_secs),
            ("KEEP_ALIVE_TIMEOUT_SECS", self.keep_alive_timeout_secs),
            ("SEND_TIMEOUT_SECS", self.send_timeout_secs),
            ("BODY_READ_TIMEOUT_SECS", self.body_read_timeout_secs),
            (
                "UPSTREAM_IDLE_TIMEOUT_SECS",
                self.upstream_idle_timeout_secs,
            ),
            ("MAX_CONNECTIONS", self.max_connections as u64),
        ] {
            if value == 0 {
                return err(variable, "must be at least 1".into());
            }
        }
        if let Some(h) = &self.user_header {
            if http::HeaderName::try_from(h.as_str()).is_err() {
                return err("USER_HEADER", format!("`{h}` is not a valid header name"));
            }
        }
        self.trusted_proxies()?;
        for origin in self
            .cors_origins
            .iter()
            .filter(|o| !o.is_empty() && *o != "*")
        {
            if http::HeaderValue::try_from(origin.as_str()).is_err()
                || url::Url::parse(origin).is_err()
            {
                return err(
                    "CORS_ORIGINS",
                    format!("`{origin}` is not an origin like https://app.example.com"),
                );
            }
        }
        Ok(())
    }

    /// `DATABASE_URL` with any password replaced by `***`, for logs and messages.
    pub fn database_url_for_logs(&self) -> String {
        budget_store_postgres::redact_url(&self.database_url)
    }

    /// Is `DATABASE_URL` a PostgreSQL URL?
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }

    /// The socket address to bind.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        Ok(SocketAddr::new(host.parse()?, self.port))
    }

    /// Upstream connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_connect_timeout_secs)
    }

    /// Upstream time-to-headers timeout.
    pub fn first_byte_timeout(&self) -> Duration {
        Duration::from_secs(self.upstream_first_byte_timeout_secs)
    }

    /// `TRUSTED_PROXIES`, parsed.
    pub fn trusted_proxies(&self) -> Result<Vec<crate::forwarded::IpCidr>, ConfigError> {
        self.trusted_proxies
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(|c| {
                c.parse()
                    .map_err(|e: crate::forwarded::BadCidr| ConfigError {
                        variable: "TRUSTED_PROXIES",
                        reason: e.to_string(),
                    })
            })
            .collect()
    }

    /// `METRICS_TOKEN`, when set and not empty.
    pub fn metrics_token(&self) -> Option<&str> {
        self.metrics_token.as_deref().filter(|t| !t.is_empty())
    }

    /// True while the seed's default admin password is in use.
    pub fn default_password(&self) -> bool {
        self.admin_password == "changeme"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed() {
        let c = Config::parse_from(["budget-server"]);
        // The seed listened on 0.0.0.0; loopback is the safe default (HOST=0.0.0.0 to serve
        // the network, which then needs a real ADMIN_PASSWORD).
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8000));
        assert_eq!(c.database_url, "sqlite:usage_data.db");
        assert_eq!(
            (c.jwt_expire_hours, c.admin_username.as_str()),
            (24, "admin")
        );
        assert!(c.default_password());
        assert!(c.validate().is_ok());
        let mut exposed = c.clone();
        exposed.host = "0.0.0.0".into();
        assert_eq!(exposed.validate().unwrap_err().variable, "ADMIN_PASSWORD");
        exposed.admin_password = "a-real-password".into();
        assert!(exposed.validate().is_ok());
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let mut c = Config::for_tests();
        c.jwt_secret = Some("short".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .starts_with("invalid configuration: JWT_SECRET:"));
        let mut c = Config::for_tests();
        c.openai_api_base_url = "ftp://x".into();
        assert_eq!(c.validate().unwrap_err().variable, "OPENAI_API_BASE_URL");
        let mut c = Config::for_tests();
        c.host = "not an ip".into();
        assert_eq!(c.validate().unwrap_err().variable, "HOST");
        let mut c = Config::for_tests();
        c.database_url = "mysql://x".into();
        assert_eq!(c.validate().unwrap_err().variable, "DATABASE_URL");
        c.database_url = "postgres://budget:pw@db:5432/budget".into();
        assert!(c.validate().is_ok());
        assert_eq!(
            c.database_url_for_logs(),
            "postgres://budget:***@db:5432/budget"
        );
        let mut c = Config::for_tests();
        c.cors_origins = vec!["not an origin".into()];
        assert_eq!(c.validate().unwrap_err().variable, "CORS_ORIGINS");
        let mut c = Config::for_tests();
        c.trusted_proxies = vec!["10.0.0.0/8".into(), "10.0.0.0/40".into()];
        assert_eq!(c.validate().unwrap_err().variable, "TRUSTED_PROXIES");
    }

    #[test]
    fn flags_override() {
        let c = Config::parse_from([
            "budget-server",
            "--port",
            "9000",
            "--budgets-enabled",
            "false",
        ]);
        assert_eq!(c.port, 9000);
        assert!(!c.budgets_enabled);
    }
}

//! `budget-server`: see the crate docs and `--help`.

use std::process::ExitCode;
use std::time::Duration;

use budget_server::config::{Config, LogFormat};
use budget_server::serve::{fit_open_files, serve, ServeOptions};
use budget_server::state::AppState;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` in the working directory fills in variables that are not already set.
    let dotenv = dotenvy::dotenv();
    let mut config = match Config::try_parse() {
        Ok(c) => c,
        Err(e) => return config_error(e),
    };
    init_tracing(config.log_format);
    if let Err(e) = &dotenv {
        if !e.not_found() {
            tracing::warn!(error = %e, "could not read .env");
        }
    }
    if let Err(e) = config.validate() {
        eprintln!("budget-server: {e}");
        return ExitCode::from(2);
    }
    if config.jwt_secret.is_none() {
        tracing::warn!("JWT_SECRET is not set: using a random secret; admin tokens stop working when the server restarts");
    }
    if config.default_password() {
        tracing::warn!("ADMIN_PASSWORD is the default `changeme`: set a strong one before exposing this server");
    }
    let addr = match config.listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("budget-server: invalid configuration: HOST: {e}");
            return ExitCode::from(2);
        }
    };
    if !addr.ip().is_loopback() && config.public_url.is_none() {
        tracing::warn!(
            host = %config.host,
            "PUBLIC_URL is not set while serving the network: limiters' proxy_endpoint is built from each request's Host header, which a client chooses; set PUBLIC_URL"
        );
    }
    // Listen before opening the store, so a start that fails (port in use) leaves no files.
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("budget-server: cannot listen on {addr} (HOST/PORT): {e}");
            return ExitCode::from(2);
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let demo = if config.demo {
        config.database_url = "memory".into();
        match budget_server::demo::start_upstream().await {
            Ok(mock) => Some(mock),
            Err(e) => {
                eprintln!("budget-server: --demo: cannot start the mock upstream: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let state = match AppState::build(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("budget-server: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(mock) = &demo {
        if let Err(e) = budget_server::demo::create_limiter(&state, &mock.url()).await {
            eprintln!("budget-server: --demo: cannot create the demo limiter: {e}");
            return ExitCode::from(2);
        }
    }
    tracing::info!(
        addr = %local,
        database = %state.config.database_url_for_logs(),
        budgets = state.config.budgets_enabled,
        "budget-server listening: dashboard at http://{local}/, proxy at http://{local}/v1/{{limiter_code}}"
    );
    println!("listening on http://{local}");
    if let Some(mock) = &demo {
        println!("{}", budget_server::demo::banner(&local, &mock.url()));
    }

    let mut options = ServeOptions::from_config(&state.config);
    match fit_open_files(options.max_connections) {
        Ok(fds) => {
            if fds.max_connections < options.max_connections {
                tracing::warn!(
                    max_connections = fds.max_connections,
                    wanted = options.max_connections,
                    open_files = fds.soft,
                    open_files_hard = fds.hard,
                    "MAX_CONNECTIONS lowered to what the open-file limit allows (raise the hard limit, e.g. `ulimit -Hn` or LimitNOFILE=, to serve more)"
                );
                options.max_connections = fds.max_connections;
            }
            if fds.soft > fds.soft_before {
                tracing::info!(
                    from = fds.soft_before,
                    to = fds.soft,
                    hard = fds.hard,
                    "raised the open-file limit"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; MAX_CONNECTIONS is used as set")
        }
    }
    tracing::info!(
        max_connections = options.max_connections,
        header_read_timeout_secs = options.header_read_timeout.as_secs(),
        keep_alive_timeout_secs = options.keep_alive_timeout.as_secs(),
        send_timeout_secs = options.send_timeout.as_secs(),
        body_read_timeout_secs = options.body_read_timeout.as_secs(),
        body_min_bytes_per_sec = options.body_min_bytes_per_sec,
        max_body_bytes = options.max_body_bytes,
        admin_max_body_bytes = options.admin_max_body_bytes,
        upstream_idle_timeout_secs = state.config.upstream_idle_timeout_secs,
        "connection limits"
    );

    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: letting open requests and streams finish"
        );
    };
    let app = budget_server::app(state.clone());
    let result = serve(listener, app, options, shutdown).await;
    // Let settlements spawned by the last responses reach the store (bounded), then flush it.
    wait_for_settlements(&state, Duration::from_secs(5)).await;
    state.metrics.flush_refusals().await;
    if let Some(pg) = &state.postgres {
        pg.close().await;
    } else if let Some(sqlite) = &state.sqlite {
        sqlite.close().await;
    } else if let Err(e) = state.store.flush().await {
        tracing::error!(error = %e, "flushing the store failed");
    }
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "server error");
            ExitCode::FAILURE
        }
    }
}

/// A flag or variable clap could not parse: name the environment variable too (`PORT=abc`
/// is reported as `PORT`, not only `--port <PORT>`), then exit 2. `--help` and `--version`
/// print and exit 0.
fn config_error(e: clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(a)) => Some(a.clone()),
        _ => None,
    };
    // `--port <PORT>`: the value name is the variable's name.
    let variable = arg
        .as_deref()
        .and_then(|a| a.split_once('<'))
        .map(|(_, v)| v.trim_end_matches('>').to_owned());
    let value = match e.get(ContextKind::InvalidValue) {
        Some(ContextValue::String(v)) => Some(v.clone()),
        _ => None,
    };
    match (variable, value) {
        (Some(var), Some(value)) => {
            let flag = arg.as_deref().unwrap_or("").split(' ').next().unwrap_or("");
            let why = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            eprintln!(
                "budget-server: invalid configuration: {var} (or {flag}): invalid value `{value}`{why}"
            );
        }
        _ => eprint!("{e}"),
    }
    ExitCode::from(2)
}

/// Wait until the settlements of finished responses have reached the store, or until `limit`
/// passes.
async fn wait_for_settlements(state: &AppState, limit: Duration) {
    if tokio::time::timeout(limit, state.layer.settlements())
        .await
        .is_err()
    {
        tracing::warn!(
            running = state.layer.settlements_running(),
            "stopping with settlements still running"
        );
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

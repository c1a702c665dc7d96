//! `budget-server`: see the crate docs and `--help`.

use std::process::ExitCode;
use std::time::Duration;

use budget_server::config::{Config, LogFormat};
use budget_server::state::AppState;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    // A `.env` in the working directory fills in variables that are not already set.
    let dotenv = dotenvy::dotenv();
    let config = Config::parse();
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
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let state = match AppState::build(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("budget-server: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = match state.config.listen_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("budget-server: invalid configuration: HOST: {e}");
            return ExitCode::from(2);
        }
    };
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
    tracing::info!(
        addr = %local,
        database = %state.config.database_url,
        budgets = state.config.budgets_enabled,
        "budget-server listening: dashboard at http://{local}/, proxy at http://{local}/v1/{{limiter_code}}"
    );
    println!("listening on http://{local}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: letting open requests and streams finish"
        );
        let _ = stop_tx.send(true);
    };
    let app = budget_server::app(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    // axum 0.8 leaves Nagle on: small writes (SSE chunks, headers) would wait for the peer's
    // delayed ACK, up to ~40 ms per chunk.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let mut stop_rx2 = stop_rx.clone();
    let result = tokio::select! {
        r = server => r,
        _ = async {
            let _ = stop_rx2.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("grace period over: closing the remaining connections");
            Ok(())
        }
    };
    drop(stop_rx);
    // Let settlements spawned by the last responses reach the store (bounded), then flush it.
    wait_for_settlements(&state, Duration::from_secs(5)).await;
    if let Some(sqlite) = &state.sqlite {
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

/// Wait until no limiter has a request in flight (their settlements are spawned tasks), or
/// until `limit` passes.
async fn wait_for_settlements(state: &AppState, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut in_flight = 0;
        if let Ok(limiters) = state.store.list_limiters(false).await {
            let now = chrono::Utc::now();
            for l in limiters {
                if let Ok(w) = state.store.window_spend(l.id, now).await {
                    in_flight += w.in_flight;
                }
            }
        }
        if in_flight == 0 || tokio::time::Instant::now() >= deadline {
            if in_flight > 0 {
                tracing::warn!(in_flight, "stopping with requests still unsettled");
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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

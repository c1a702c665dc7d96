//! `--demo`: everything working end to end without an OpenAI account.
//!
//! Starts the built-in mock upstream (`budget-mock-upstream`, which answers like the OpenAI API
//! and streams like it) on a free loopback port, keeps budgets in memory, and creates one demo
//! limiter with a fixed code, [`DEMO_CODE`], pointed at the mock. Nothing leaves the machine.

use budget_core::{EnforcementMode, Limiter, LimiterCode, Money, NewLimiter, Period};
use budget_mock_upstream::{MockOptions, MockUpstream};

use crate::state::AppState;

/// The demo limiter's code: fixed, so the README's commands can name it.
pub const DEMO_CODE: &str = "demo-limiter-code";

/// Start the mock upstream on a free loopback port.
pub async fn start_upstream() -> std::io::Result<MockUpstream> {
    MockUpstream::start(MockOptions {
        // A little pause between streamed events, so streaming is visible in a terminal.
        chunk_delay: std::time::Duration::from_millis(30),
        // Nobody reads the recording in a demo; don't let it grow.
        record: false,
        ..MockOptions::default()
    })
    .await
}

/// Create the demo limiter ($0.05 a day, strict) pointed at `upstream_url`.
pub async fn create_limiter(state: &AppState, upstream_url: &str) -> Result<Limiter, String> {
    let mut new = NewLimiter::new(
        "Demo - $0.05/day",
        Money::from_cents(5),
        Period::Day,
        upstream_url,
    );
    new.mode = Some(EnforcementMode::Strict);
    let mut limiter = Limiter::create(new, chrono::Utc::now()).map_err(|e| e.to_string())?;
    limiter.code = LimiterCode::parse(DEMO_CODE).map_err(|e| e.to_string())?;
    state
        .store
        .create_limiter(&limiter)
        .await
        .map_err(|e| e.to_string())?;
    Ok(limiter)
}

/// What the demo prints once the server listens on `local` (`127.0.0.1:8000`).
pub fn banner(local: &str, upstream_url: &str) -> String {
    let endpoint = format!("http://{local}/v1/{DEMO_CODE}");
    format!(
        "demo: mock OpenAI upstream at {upstream_url} (answers like the OpenAI API; nothing leaves this machine; budgets are kept in memory)\n\
         demo limiter endpoint: {endpoint}  ($0.05 per day, strict)\n\
         try:\n  \
         curl -s {endpoint}/chat/completions -H 'authorization: Bearer sk-demo' -H 'content-type: application/json' \\\n    \
         -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'\n  \
         curl -s {endpoint}/budget\n\
         dashboard: http://{local}/ (admin / changeme)"
    )
}

//! `budget-mock-upstream`: run the mock OpenAI / Azure OpenAI upstream as a process.
//!
//! Prints `listening on http://ADDR` as its first stdout line, then serves until Ctrl-C.
//! `GET /mock/seen-keys` lists the credential headers it has received.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use budget_mock_upstream::{MockOptions, MockUpstream};
use clap::Parser;

/// An OpenAI- and Azure-OpenAI-compatible mock upstream for tests and benchmarks.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to bind (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Pause between SSE events, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Content deltas per streamed choice (= completion tokens per choice).
    #[arg(long, default_value_t = 8)]
    deltas: usize,
    /// Split SSE events at awkward byte boundaries (mid-UTF-8, between line terminators).
    #[arg(long)]
    split_events: bool,
    /// End SSE lines with `\r\n`.
    #[arg(long)]
    crlf: bool,
    /// Answer every request with this HTTP status and OpenAI's error body.
    #[arg(long)]
    fail_with: Option<u16>,
    /// Accept only this API key (repeat for several); without it any non-empty key works.
    /// Others get OpenAI's 401 `invalid_api_key`.
    #[arg(long = "accept-key", value_name = "KEY")]
    accept_keys: Vec<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let opts = MockOptions {
        addr: args.addr,
        chunk_delay: Duration::from_millis(args.chunk_delay_ms),
        split_events: args.split_events,
        crlf: args.crlf,
        deltas: args.deltas,
        fail_with: args.fail_with,
        // Nobody can read the recording of a separate process; don't grow without bound.
        record: false,
        accepted_keys: args.accept_keys,
    };
    let upstream = MockUpstream::start(opts).await?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", upstream.url())?;
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c().await?;
    upstream.shutdown().await;
    Ok(())
}

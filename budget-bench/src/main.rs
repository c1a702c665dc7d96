//! `budget-bench`: what the budget proxy costs, measured side by side against a fast mock.
//!
//! Four targets are measured in the same run, interleaved:
//!
//! - **(a)** the suite's own mock upstream, directly (a minimal OpenAI-compatible hyper 1 server,
//!   run as `budget-bench mock` in its own process: ~1 KB JSON with usage, or `N` SSE deltas with
//!   usage, optionally paced);
//! - **(n)** a plain nginx reverse proxy in front of the mock (Debian's `nginx`, installed with
//!   `apt-get` when missing and run as root; skipped, saying why, otherwise and in `--quick`);
//! - **(b)** `budget-server` with `BUDGETS_ENABLED=false` (the same binary as a plain
//!   pass-through);
//! - **(c)** `budget-server` with budgets on and a SQLite file (in a temporary folder).
//!
//! Each server gets one limiter, created black-box through its admin API
//! (`POST /api/auth/login`, `POST /api/limiters`), so these measurements depend on no crate of
//! the workspace (only `replicas` uses `budget-store-postgres`, for its test cluster).
//!
//! Measurements:
//!
//! - closed-loop latency at concurrency 1 (median, p99; each proxy − (a));
//! - open-loop throughput steps (the highest rate with p99 < 10 ms and no errors), latency
//!   measured from each request's scheduled send time;
//! - each process's CPU microseconds per request (utime + stime from `/proc/PID/stat`, children
//!   included) and closed-loop requests per second;
//! - SSE time to first event and chunk pacing against a paced mock, the first event and the end
//!   of unpaced streams, many concurrent streams through each proxy, and each process's RSS
//!   (`VmRSS`) at idle and at peak;
//! - the ratios between them: budgets on ÷ off, on ÷ nginx, off ÷ nginx.
//!
//! It builds nothing: it runs the `budget-server` next to its own binary (or `--server-bin`).
//!
//! `budget-bench replicas` measures something else: proxied requests per second on one strict
//! limiter through one and three servers sharing a PostgreSQL database, and the database's
//! commits per request, against one server on SQLite (see [`replicas`]).
//!
//! `budget-bench export` measures the memory of `GET /api/usage/export`: the server's RSS
//! growth while it streams a million usage records from a SQLite file, against the growth for
//! a tenth of them in the same run (see [`export`]).
//!
//! ```sh
//! cargo build --release -p budget-server -p budget-bench
//! cargo run --release -p budget-bench -- --write-docs   # full run (minutes), updates docs/benchmarks.md
//! cargo run -p budget-bench -- --quick   # seconds (after a debug build of both); fails only if a target did not answer
//! ```

#![deny(missing_docs)]

mod client;
mod closed;
mod compare;
mod docs;
mod export;
mod machine;
mod mock;
mod nginx;
mod open;
mod replicas;
mod report;
mod sse;
mod stats;
mod targets;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::client::{Ask, Conn, Endpoint};
use crate::report::{spread, Report, DIRECT, NAMES, NGINX, OFF, ON};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "budget-bench",
    about = "Measure budget-server against a mock upstream: latency, throughput, CPU, SSE, memory"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A few seconds: tiny versions of every phase; exits non-zero only if a target failed to
    /// answer.
    #[arg(long, global = true)]
    quick: bool,
    /// The `budget-server` binary (default: the one next to this binary, i.e. built with the
    /// same profile).
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// Write the results into the "Proxy" section of `docs/benchmarks.md`.
    #[arg(long)]
    write_docs: bool,
    /// Run only these phases (for profiling; the table shows zeros for the others).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "write_docs")]
    only: Vec<Phase>,
    /// Sleep this long before each closed-loop latency request (e.g. `20ms`), to measure
    /// latency from idle rather than back to back.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    pause: Duration,
    /// Which proxies the concurrent streams go through, one after the other (`on`: (c), the
    /// measured one; `off`: (b), to see what the budget layer adds; `nginx`: (n)).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "nginx,off,on",
        value_parser = ["nginx", "on", "off"]
    )]
    streams_through: Vec<String>,
    /// Leave nginx out (its rows say so). `--quick` always does.
    #[arg(long)]
    no_nginx: bool,
    /// The file `--write-docs` writes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/benchmarks.md"))]
    docs: PathBuf,
}

/// A phase of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Closed-loop latency at concurrency 1.
    Latency,
    /// Open-loop throughput steps.
    Throughput,
    /// Server CPU per request.
    Cpu,
    /// SSE time to first event and chunk pacing; unpaced streams back to back.
    Sse,
    /// Many concurrent streams and RSS.
    Streams,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run only the mock upstream (the suite starts it this way, in its own process).
    Mock {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        addr: SocketAddr,
    },
    /// Proxied req/s on one strict limiter through one server on SQLite, one on PostgreSQL
    /// and three on one PostgreSQL database, with database commits per request (needs the
    /// PostgreSQL server binaries; says so and exits 0 without them).
    Replicas {
        /// Seconds of each measured run (closed loop and paced).
        #[arg(long, default_value_t = 10)]
        secs: u64,
        /// Concurrent clients of the closed loop.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Requests per second of the paced run, over all servers.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
    },
    /// The server's RSS growth while `GET /api/usage/export` streams all the usage records of
    /// a SQLite file, against a tenth of them, as CSV and JSON Lines (`--quick`: 20,000
    /// records).
    Export {
        /// Usage records in the file.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
    },
}

/// How big each phase is.
struct Plan {
    warmup: usize,
    rounds: usize,
    idle_rounds: usize,
    idle_pause: Duration,
    rates: Vec<u64>,
    step: Duration,
    cpu_blocks: usize,
    cpu_per_block: usize,
    cpu_concurrency: usize,
    sse_rounds: usize,
    sse_deltas: usize,
    sse_delay: Duration,
    burst_warmup: usize,
    burst_rounds: usize,
    burst_deltas: usize,
    crowd: usize,
    crowd_deltas: usize,
    crowd_delay: Duration,
    crowd_ramp: Duration,
    stall_bound: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                warmup: 10,
                rounds: 50,
                idle_rounds: 5,
                idle_pause: Duration::from_millis(20),
                rates: vec![200],
                step: Duration::from_millis(500),
                cpu_blocks: 1,
                cpu_per_block: 200,
                cpu_concurrency: 4,
                sse_rounds: 3,
                sse_deltas: 5,
                sse_delay: Duration::from_millis(2),
                burst_warmup: 2,
                burst_rounds: 10,
                burst_deltas: 32,
                crowd: 50,
                crowd_deltas: 5,
                crowd_delay: Duration::from_millis(20),
                crowd_ramp: Duration::from_millis(100),
                stall_bound: Duration::from_secs(1),
            }
        } else {
            Plan {
                warmup: 1_000,
                rounds: 10_000,
                idle_rounds: 300,
                idle_pause: Duration::from_millis(20),
                rates: vec![500, 1_000, 2_000, 4_000, 6_000, 8_000, 12_000, 16_000],
                step: Duration::from_secs(3),
                cpu_blocks: 4,
                cpu_per_block: 5_000,
                cpu_concurrency: 4,
                sse_rounds: 60,
                sse_deltas: 20,
                sse_delay: Duration::from_millis(10),
                burst_warmup: 100,
                burst_rounds: 1_000,
                burst_deltas: 32,
                crowd: 1_000,
                crowd_deltas: 40,
                crowd_delay: Duration::from_millis(100),
                crowd_ramp: Duration::from_secs(2),
                stall_bound: Duration::from_millis(500),
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("budget-bench: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::Mock { addr }) = cli.command {
        return match runtime.block_on(mock::serve(addr)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("budget-bench mock: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::Replicas {
        secs,
        clients,
        rate,
    }) = cli.command
    {
        return run_replicas(&cli, &runtime, secs, clients, rate);
    }
    if let Some(Command::Export { records }) = cli.command {
        return run_export(&cli, &runtime, if cli.quick { 20_000 } else { records });
    }
    let started = Instant::now();
    let report = match runtime.block_on(run(&cli)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("budget-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", report.markdown());
    let failures = report.failures();
    for f in &failures {
        eprintln!("failed: {f}");
    }
    if cli.write_docs {
        match docs::write_section(&cli.docs, &report.section()) {
            Ok(()) => eprintln!("wrote the Proxy section of {}", cli.docs.display()),
            Err(e) => {
                eprintln!("budget-bench: cannot write {}: {e}", cli.docs.display());
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "budget-bench: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if cli.quick && !failures.is_empty() {
        eprintln!(
            "budget-bench --quick: {} request(s) did not get an answer",
            failures.len()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// `budget-bench replicas`: print its tables, or say why there are none.
fn run_replicas(
    cli: &Cli,
    runtime: &tokio::runtime::Runtime,
    secs: u64,
    clients: usize,
    rate: u64,
) -> ExitCode {
    let opts = match server_bin(cli) {
        Ok(server_bin) => replicas::Options {
            server_bin,
            duration: Duration::from_secs(secs.max(1)),
            clients: clients.max(1),
            rate: rate.max(1),
        },
        Err(e) => {
            eprintln!("budget-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(replicas::run(&opts)) {
        Ok(Some(table)) => println!("{table}"),
        Ok(None) => println!(
            "budget-bench replicas: PostgreSQL is not installed (no initdb on PATH or in \
             /usr/lib/postgresql/*/bin): nothing measured"
        ),
        Err(e) => {
            eprintln!("budget-bench replicas: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `budget-bench export`: print its table.
fn run_export(cli: &Cli, runtime: &tokio::runtime::Runtime, records: usize) -> ExitCode {
    let opts = match server_bin(cli) {
        Ok(server_bin) => export::Options {
            server_bin,
            records,
        },
        Err(e) => {
            eprintln!("budget-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(export::run(&opts)) {
        Ok(table) => {
            println!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("budget-bench export: {e}");
            ExitCode::FAILURE
        }
    }
}

fn server_bin(cli: &Cli) -> Result<PathBuf, String> {
    if let Some(p) = &cli.server_bin {
        // The servers run in a temporary folder: a relative path would not resolve there.
        return std::fs::canonicalize(p).map_err(|e| format!("--server-bin {}: {e}", p.display()));
    }
    let sibling = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("budget-server")));
    sibling.filter(|p| p.is_file()).ok_or_else(|| {
        "no budget-server next to budget-bench: build both with the same profile \
         (`cargo build --release -p budget-server -p budget-bench`) or pass --server-bin"
            .to_owned()
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "ms"), |i| s.split_at(i));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}`: expected a number with ms or s"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        _ => Err(format!("`{s}`: expected a number with ms or s")),
    }
}

fn progress(what: &str) {
    eprintln!("budget-bench: {what}");
}

/// The nginx binary, or why there is none.
fn nginx_bin(cli: &Cli) -> Result<PathBuf, String> {
    if cli.quick {
        Err("skipped in quick mode (a full run measures it)".to_owned())
    } else if cli.no_nginx {
        Err("left out with --no-nginx".to_owned())
    } else {
        nginx::find_or_install()
    }
}

async fn run(cli: &Cli) -> Result<Report, String> {
    let plan = Plan::new(cli.quick);
    let server_bin = server_bin(cli)?;
    let nginx_bin = nginx_bin(cli);
    if let Err(why) = &nginx_bin {
        progress(&format!("nginx rows skipped: {why}"));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let mut report = Report {
        machine: machine::machine(cli.quick, &server_bin),
        nginx_skipped: nginx_bin.as_ref().err().cloned(),
        step_duration: plan.step,
        idle_pause: plan.idle_pause,
        cpu_concurrency: plan.cpu_concurrency,
        pacing_shape: (plan.sse_deltas, plan.sse_delay),
        burst_deltas: plan.burst_deltas,
        crowd_shape: (plan.crowd_deltas, plan.crowd_delay),
        stall_bound: plan.stall_bound,
        quick: cli.quick,
        ..Report::default()
    };

    progress("starting the mock, nginx and two servers");
    let mut mock = targets::start_mock()?;
    let mut nginx = match &nginx_bin {
        Ok(bin) => Some(nginx::start(bin, mock.addr)?),
        Err(_) => None,
    };
    if let (Some(n), Ok(bin)) = (&nginx, &nginx_bin) {
        report.machine.push((
            "nginx".to_owned(),
            machine::command_stderr(bin, &["-v"]).unwrap_or_else(|| "unknown version".to_owned()),
        ));
        progress(&format!("nginx listening on {}", n.process.addr));
    }
    let mut off = targets::start_server(
        "budget-server (budgets off)",
        &server_bin,
        dir.path(),
        mock.addr,
        false,
    )
    .await?;
    let mut on = targets::start_server(
        "budget-server (budgets on)",
        &server_bin,
        dir.path(),
        mock.addr,
        true,
    )
    .await?;
    // The measured targets, in slot order: endpoint and the process to read from /proc.
    let mut slots = vec![DIRECT];
    let mut endpoints = vec![Endpoint {
        addr: mock.addr,
        prefix: "/v1".to_owned(),
    }];
    let mut pids = vec![mock.pid()];
    if let Some(n) = &nginx {
        slots.push(NGINX);
        endpoints.push(Endpoint {
            addr: n.process.addr,
            prefix: "/v1".to_owned(),
        });
        pids.push(n.process.pid());
    }
    for s in [&off, &on] {
        endpoints.push(s.endpoint.clone());
        pids.push(s.process.pid());
    }
    slots.extend([OFF, ON]);
    // Idle: started, nothing asked yet.
    report.rss_idle_kib = spread(
        pids.iter()
            .map(|&p| targets::tree_rss_kib(p))
            .collect::<Result<_, _>>()?,
        &slots,
    );

    // Every target must answer before anything is measured.
    for (&i, e) in slots.iter().zip(&endpoints) {
        let name = NAMES[i];
        let mut conn = Conn::open(e.addr)
            .await
            .map_err(|err| format!("{name} did not answer: {err}"))?;
        conn.call(e.request(Ask::Json))
            .await
            .map_err(|err| format!("{name} did not answer: {err}"))?;
    }

    let run = |p: Phase| cli.only.is_empty() || cli.only.contains(&p);
    // Streams first, on fresh processes: after the open-loop overload a server's RSS stays
    // at what that phase left, which would decide the peak.
    report.crowds = spread(Vec::new(), &slots);
    if run(Phase::Streams) {
        for (slot, key) in [(NGINX, "nginx"), (OFF, "off"), (ON, "on")] {
            let Some(k) = slots.iter().position(|&s| s == slot) else {
                continue;
            };
            if !cli.streams_through.iter().any(|s| s == key) {
                continue;
            }
            progress(&format!(
                "{} concurrent streams through {}",
                plan.crowd, NAMES[slot]
            ));
            report.crowds[slot] = sse::crowd(
                &endpoints[k],
                pids[k],
                plan.crowd,
                plan.crowd_deltas,
                plan.crowd_delay,
                plan.crowd_ramp,
            )
            .await;
        }
    }

    report.latency = spread(Vec::new(), &slots);
    if run(Phase::Latency) {
        progress(&format!("latency at concurrency 1: {} rounds", plan.rounds));
        report.latency = spread(
            closed::latency(&endpoints, plan.warmup, plan.rounds, cli.pause).await,
            &slots,
        );
        progress(&format!(
            "latency from idle: {} rounds, {:?} pause",
            plan.idle_rounds, plan.idle_pause
        ));
        report.latency_idle = spread(
            closed::latency(&endpoints, 5, plan.idle_rounds, plan.idle_pause).await,
            &slots,
        );
    }
    if run(Phase::Throughput) {
        progress(&format!(
            "open-loop steps at {:?} req/s, {:?} each",
            plan.rates, plan.step
        ));
        report.steps = spread(
            open::throughput(&endpoints, &plan.rates, plan.step).await,
            &slots,
        );
    }
    if run(Phase::Cpu) {
        progress(&format!(
            "CPU per request: {} × {} requests per target",
            plan.cpu_blocks, plan.cpu_per_block
        ));
        let servers: Vec<(u32, Endpoint)> = pids.iter().copied().zip(endpoints.clone()).collect();
        let mut failures = Vec::new();
        let cpu = closed::cpu_per_request(
            &servers,
            plan.cpu_blocks,
            plan.cpu_per_block,
            plan.cpu_concurrency,
            targets::clock_ticks(),
            &mut failures,
        )
        .await;
        report.cpu = spread(cpu, &slots);
        report.cpu_failures = failures;
    }
    if run(Phase::Sse) {
        progress(&format!(
            "SSE pacing: {} rounds of {} deltas {:?} apart",
            plan.sse_rounds, plan.sse_deltas, plan.sse_delay
        ));
        let p = sse::pacing(&endpoints, plan.sse_rounds, plan.sse_deltas, plan.sse_delay).await;
        report.pacing = sse::Pacing {
            ttfb: spread(p.ttfb, &slots),
            gap_diff_p99: spread(p.gap_diff_p99, &slots),
            lateness: spread(p.lateness, &slots),
            failures: p.failures,
        };
        progress(&format!(
            "SSE back to back: {} rounds of {} deltas sent at once",
            plan.burst_rounds, plan.burst_deltas
        ));
        let b = sse::burst(
            &endpoints,
            plan.burst_warmup,
            plan.burst_rounds,
            plan.burst_deltas,
        )
        .await;
        report.burst = sse::Burst {
            ttfe: spread(b.ttfe, &slots),
            total: spread(b.total, &slots),
            failures: b.failures,
        };
    }
    mock.check_alive()?;
    off.process.check_alive()?;
    on.process.check_alive()?;
    if let Some(n) = &mut nginx {
        n.process.check_alive()?;
    }
    report.machine.push((
        "Load average at the end (1/5/15 min)".to_owned(),
        machine::loadavg(),
    ));
    Ok(report)
}

//! `budget-bench replicas`: proxied requests on one strict limiter through `budget-server`
//! replicas sharing a PostgreSQL database, against one server on SQLite measured in the same
//! run (issue 13).
//!
//! Three configurations, one after the other, each on a fresh database (or file) in front of
//! the same mock upstream:
//!
//! - **SQLite**: one server with `DATABASE_URL=sqlite:…`, the baseline;
//! - **PostgreSQL ×1**: one server with `DATABASE_URL=postgres://…`;
//! - **PostgreSQL ×3**: three servers on one database, each request sent to the next one in
//!   turn (round-robin per request, as an HTTP load balancer does).
//!
//! The PostgreSQL is a private cluster ([`TestCluster`]) with `fsync` and `full_page_writes`
//! on. Each configuration gets one strict limiter with a $1,000,000 daily budget, created
//! through the first server's admin API (the others read it from the database), then:
//!
//! - a closed loop: `clients` clients, each sending its next request when the last one
//!   answers, for `secs` seconds after a one-second warm-up: requests per second, p50 and p99
//!   latency, errors;
//! - a paced run: `rate` requests per second in all for `secs` seconds, split evenly over the
//!   servers ([`crate::open::step`], latency from each request's scheduled send time).
//!
//! Database round trips are counted as committed transactions: `xact_commit` of
//! `pg_stat_database` for the benchmark's database, read before and after each run (the
//! statistics reach the view within a second, so each reading waits 1.5 s first). Every call
//! the store makes outside an explicit transaction is a transaction of its own, so commits are
//! close to round trips; a transaction of several statements counts once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use budget_store_postgres::testing::TestCluster;
use sqlx::{Connection, PgConnection};

use crate::client::{Conn, Endpoint, Failure};
use crate::stats::{ms, Summary};
use crate::targets::{self, Process};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The `budget-server` binary.
    pub(crate) server_bin: std::path::PathBuf,
    /// Length of each measured run.
    pub(crate) duration: Duration,
    /// Concurrent clients of the closed loop.
    pub(crate) clients: usize,
    /// Requests per second of the paced run, over all servers.
    pub(crate) rate: u64,
}

/// What one closed loop measured.
#[derive(Debug, Default)]
struct Load {
    ok: usize,
    errors: usize,
    wall: Duration,
    latency: Summary,
    /// The first few distinct failures, for stderr.
    why: Vec<String>,
}

impl Load {
    fn per_second(&self) -> f64 {
        if self.wall.is_zero() {
            0.0
        } else {
            self.ok as f64 / self.wall.as_secs_f64()
        }
    }
}

/// What one paced run measured (over all servers).
#[derive(Debug, Default)]
struct Paced {
    sent: usize,
    errors: usize,
    /// The highest median and p99 among the servers.
    p50: Duration,
    p99: Duration,
}

/// One configuration's results.
#[derive(Debug)]
struct Row {
    name: &'static str,
    load: Load,
    /// Commits during the closed loop (PostgreSQL only).
    commits: Option<u64>,
    paced: Paced,
    paced_commits: Option<u64>,
}

const ADMIN_PASSWORD: &str = "budget-bench-replicas";
const WARMUP: Duration = Duration::from_secs(1);
/// Longer than PostgreSQL's 1 s statistics flush interval.
const STATS_SETTLE: Duration = Duration::from_millis(1500);

/// Run the three configurations and return the report as Markdown; `None` when PostgreSQL is
/// not installed.
pub(crate) async fn run(opts: &Options) -> Result<Option<String>, String> {
    let load_start = crate::machine::loadavg();
    crate::progress("starting a private PostgreSQL (fsync=on, full_page_writes=on)");
    let Some(cluster) = TestCluster::start(&[("fsync", "on"), ("full_page_writes", "on")]) else {
        return Ok(None);
    };
    let mut mock = targets::start_mock()?;
    let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
    let mut rows = Vec::new();
    let mut version = String::new();

    crate::progress("SQLite: one server");
    let sqlite = format!(
        "sqlite:{}",
        dir.path().join("replicas-baseline.db").display()
    );
    rows.push(
        measure(
            "SQLite, 1 server",
            &sqlite,
            1,
            None,
            opts,
            dir.path(),
            &mock,
        )
        .await?,
    );

    for (name, replicas) in [("PostgreSQL, 1 server", 1), ("PostgreSQL, 3 servers", 3)] {
        crate::progress(&format!("{name}: fresh database"));
        let url = cluster.fresh_database().await;
        let mut db = PgConnection::connect(&url)
            .await
            .map_err(|e| format!("connect to the benchmark database: {e}"))?;
        if version.is_empty() {
            version = sqlx::query_scalar::<_, String>("SHOW server_version")
                .fetch_one(&mut db)
                .await
                .map_err(|e| format!("SHOW server_version: {e}"))?;
        }
        rows.push(measure(name, &url, replicas, Some(&mut db), opts, dir.path(), &mock).await?);
        let _ = db.close().await;
    }
    mock.check_alive()?;
    Ok(Some(markdown(
        &rows,
        opts,
        &version,
        &load_start,
        &crate::machine::loadavg(),
    )))
}

/// Start `replicas` servers on `database_url`, create the limiter, measure both runs.
async fn measure(
    name: &'static str,
    database_url: &str,
    replicas: usize,
    mut db: Option<&mut PgConnection>,
    opts: &Options,
    dir: &Path,
    mock: &Process,
) -> Result<Row, String> {
    const NAMES: [&str; 3] = ["budget-server 1", "budget-server 2", "budget-server 3"];
    let tag = name.replace([',', ' '], "-").to_lowercase();
    let mut servers = Vec::new();
    for (i, server) in NAMES.iter().take(replicas).enumerate() {
        let log = dir.join(format!("{tag}-{}.log", i + 1));
        servers.push(start_server(
            server,
            &opts.server_bin,
            dir,
            database_url,
            &log,
        )?);
    }
    let code = create_strict_limiter(servers[0].addr, mock.addr)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let endpoints: Vec<Endpoint> = servers
        .iter()
        .map(|s| Endpoint {
            addr: s.addr,
            prefix: format!("/v1/{code}"),
        })
        .collect();
    // Every server must know the limiter before anything is measured.
    for e in &endpoints {
        let mut conn = Conn::open(e.addr)
            .await
            .map_err(|err| format!("{name}: {} did not answer: {err}", e.addr))?;
        conn.call(e.request(crate::client::Ask::Json))
            .await
            .map_err(|err| format!("{name}: {} did not answer: {err}", e.addr))?;
    }

    crate::progress(&format!("{name}: warm-up {WARMUP:?}"));
    closed_loop(&endpoints, opts.clients, WARMUP).await;
    let before = commits(db.as_deref_mut()).await?;
    crate::progress(&format!(
        "{name}: closed loop, {} clients, {:?}",
        opts.clients, opts.duration
    ));
    let load = closed_loop(&endpoints, opts.clients, opts.duration).await;
    let after = commits(db.as_deref_mut()).await?;
    for w in &load.why {
        eprintln!("budget-bench replicas: {name}: {w}");
    }

    crate::progress(&format!(
        "{name}: paced, {} req/s in all, {:?}",
        opts.rate, opts.duration
    ));
    let paced = paced(&endpoints, opts.rate, opts.duration).await;
    let paced_after = commits(db).await?;
    for s in &mut servers {
        s.check_alive()?;
    }
    let spent = |a: Option<u64>, b: Option<u64>| {
        // The earlier reading is itself a committed transaction.
        a.zip(b).map(|(a, b)| b.saturating_sub(a).saturating_sub(1))
    };
    Ok(Row {
        name,
        load,
        commits: spent(before, after),
        paced,
        paced_commits: spent(after, paced_after),
    })
}

/// `xact_commit` of the current database after [`STATS_SETTLE`]; `None` without a database.
async fn commits(db: Option<&mut PgConnection>) -> Result<Option<u64>, String> {
    let Some(db) = db else {
        return Ok(None);
    };
    tokio::time::sleep(STATS_SETTLE).await;
    let n: i64 = sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(db)
    .await
    .map_err(|e| format!("read pg_stat_database: {e}"))?;
    Ok(Some(u64::try_from(n).unwrap_or(0)))
}

/// A `budget-server` on `database_url`, logging to `log`.
fn start_server(
    name: &'static str,
    server_bin: &Path,
    dir: &Path,
    database_url: &str,
    log: &Path,
) -> Result<Process, String> {
    let log = std::fs::File::create(log)
        .map_err(|e| format!("{name}: cannot create its log file: {e}"))?;
    let mut command = Command::new(server_bin);
    command
        .current_dir(dir) // no stray `.env` from the caller's directory
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", "budget-bench-secret-budget-bench-secret")
        .env("ADMIN_USERNAME", "admin")
        .env("ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("RUST_LOG")
        .stderr(Stdio::from(log));
    Process::start(name, command)
}

/// Log in, then create a strict limiter with a $1,000,000 daily budget; its code.
async fn create_strict_limiter(
    server: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> Result<String, String> {
    let mut conn = Conn::open(server)
        .await
        .map_err(|e| format!("admin API: {e}"))?;
    let login = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let (status, body) = conn
        .json(server, "/api/auth/login", None, login)
        .await
        .map_err(|e| format!("login: {e}"))?;
    let field = |body: &[u8], key: &str| -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.get(key)?.as_str().map(str::to_owned)
    };
    let token = field(&body, "token")
        .filter(|_| status.is_success())
        .ok_or_else(|| format!("login: {status} {}", String::from_utf8_lossy(&body)))?;
    let new = serde_json::json!({
        "name": "budget-bench replicas",
        "budget_limit": 1_000_000,
        "period_type": "day",
        "mode": "strict",
        "base_url": format!("http://{upstream}"),
    })
    .to_string();
    let (status, body) = conn
        .json(server, "/api/limiters", Some(&token), new)
        .await
        .map_err(|e| format!("create limiter: {e}"))?;
    field(&body, "code")
        .filter(|_| status.is_success())
        .ok_or_else(|| {
            format!(
                "create limiter: {status} {}",
                String::from_utf8_lossy(&body)
            )
        })
}

/// `clients` clients, each sending its next request when the last one answered, until
/// `duration` has passed; request `k` of client `c` goes to server `(c + k) mod n`, over one
/// keep-alive connection per client and server.
async fn closed_loop(endpoints: &[Endpoint], clients: usize, duration: Duration) -> Load {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let endpoints = endpoints.to_vec();
        tasks.spawn(async move {
            let mut conns: Vec<Option<Conn>> = endpoints.iter().map(|_| None).collect();
            let (mut latencies, mut errors) = (Vec::new(), Vec::new());
            let mut k = c;
            while Instant::now() < deadline {
                let i = k % endpoints.len();
                k += 1;
                let e = &endpoints[i];
                if conns[i].is_none() {
                    match Conn::open(e.addr).await {
                        Ok(conn) => conns[i] = Some(conn),
                        Err(err) => {
                            errors.push(err.to_string());
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let Some(conn) = conns[i].as_mut() else {
                    continue;
                };
                let call = conn.call(e.request(crate::client::Ask::Json));
                match tokio::time::timeout(Duration::from_secs(10), call).await {
                    Ok(Ok(d)) => latencies.push(d),
                    Ok(Err(err)) => {
                        if !matches!(err, Failure::Status(_)) {
                            conns[i] = None;
                        }
                        errors.push(err.to_string());
                    }
                    Err(_) => {
                        conns[i] = None;
                        errors.push(Failure::Timeout.to_string());
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut load = Load::default();
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((l, e)) => {
                latencies.extend(l);
                load.errors += e.len();
                for why in e {
                    if load.why.len() < 5 && !load.why.contains(&why) {
                        load.why.push(why);
                    }
                }
            }
            Err(e) => {
                load.errors += 1;
                load.why.push(e.to_string());
            }
        }
    }
    load.wall = started.elapsed();
    load.ok = latencies.len();
    load.latency = Summary::of(&mut latencies);
    load
}

/// `rate` requests per second in all for `duration`, split evenly over `endpoints`, all at once.
async fn paced(endpoints: &[Endpoint], rate: u64, duration: Duration) -> Paced {
    let n = endpoints.len() as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, e) in endpoints.iter().enumerate() {
        let e = e.clone();
        let share = rate / n + u64::from((i as u64) < rate % n);
        tasks.spawn(async move { crate::open::step(&e, share, duration).await });
    }
    let mut out = Paced::default();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(step) => {
                out.sent += step.sent;
                out.errors += step.errors;
                out.p50 = out.p50.max(step.latency.median);
                out.p99 = out.p99.max(step.latency.p99);
            }
            Err(_) => out.errors += 1,
        }
    }
    out
}

fn per_request(commits: Option<u64>, requests: usize) -> String {
    match commits {
        Some(c) if requests > 0 => format!("{:.4} ({c} / {requests})", c as f64 / requests as f64),
        Some(c) => format!("— ({c} / 0)"),
        None => "—".to_owned(),
    }
}

fn markdown(
    rows: &[Row],
    opts: &Options,
    version: &str,
    load_start: &str,
    load_end: &str,
) -> String {
    let base = rows.first().map_or(0.0, |r| r.load.per_second());
    let secs = opts.duration.as_secs_f64();
    let mut out = format!(
        "Closed loop: {} clients, {secs:.0} s after a 1 s warm-up; one strict limiter \
         ($1,000,000 a day), non-streaming chat completions (`max_tokens` 200) to the mock.\n\n\
         | configuration | req/s | ÷ SQLite | p50 ms | p99 ms | errors | DB commits / request |\n\
         |---|---|---|---|---|---|---|\n",
        opts.clients
    );
    for r in rows {
        let l = &r.load;
        out.push_str(&format!(
            "| {} | {:.0} | {:.2}× | {} | {} | {} | {} |\n",
            r.name,
            l.per_second(),
            crate::report::ratio(l.per_second(), base),
            ms(l.latency.median),
            ms(l.latency.p99),
            l.errors,
            per_request(r.commits, l.ok),
        ));
    }
    out.push_str(&format!(
        "\nPaced (open loop): {} req/s in all for {secs:.0} s, split evenly over the servers; \
         latency from each request's scheduled send time (the highest p50 and p99 among the \
         servers). Target: ≤ 0.05 database round trips per request.\n\n\
         | configuration | sent | errors | p50 ms | p99 ms | DB commits / request |\n\
         |---|---|---|---|---|---|\n",
        opts.rate
    ));
    for r in rows {
        let p = &r.paced;
        let ok = p.sent.saturating_sub(p.errors);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.name,
            p.sent,
            p.errors,
            ms(p.p50),
            ms(p.p99),
            per_request(r.paced_commits, ok),
        ));
    }
    out.push_str(&format!(
        "\nPostgreSQL {version}; load average (1/5/15 min) {load_start} at the start, \
         {load_end} at the end.\n"
    ));
    out
}

//! A throwaway PostgreSQL for tests (feature `test-cluster`): `initdb` and `postgres` in a
//! temporary folder on a free port, stopped and deleted when the test process exits.
//!
//! - `BUDGET_TEST_DATABASE_URL=postgres://user@host/db` uses that server instead (each test
//!   gets a fresh database created on it; the user needs `CREATEDB`).
//! - Otherwise the PostgreSQL binaries are looked for on `PATH` and in
//!   `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package). When they are missing,
//!   [`TestCluster::shared`] prints which test it skips and returns `None`, unless
//!   `BUDGET_REQUIRE_POSTGRES=1` (what CI sets), which makes it a failure.
//! - Run as root, the server runs as the `postgres` user (or `nobody`): PostgreSQL refuses root.
//!
//! ```no_run
//! # async fn t() {
//! use budget_store_postgres::testing::TestCluster;
//! let Some(cluster) = TestCluster::shared("my_test") else { return };
//! let url = cluster.fresh_database().await;
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// A PostgreSQL server for tests: a private cluster, or the one `BUDGET_TEST_DATABASE_URL`
/// names.
#[derive(Debug)]
pub struct TestCluster {
    /// `postgres://…/` without a database name.
    base: String,
    /// The database to connect to for `CREATE DATABASE`.
    admin_db: String,
    own: Option<OwnCluster>,
}

#[derive(Debug)]
struct OwnCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    settings: Vec<(String, String)>,
    running: Mutex<bool>,
}

static SHARED: OnceLock<Option<TestCluster>> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

impl TestCluster {
    /// The test process's shared server, started on first use; `None` (after printing that
    /// `test` is skipped) when PostgreSQL is not installed and not required.
    pub fn shared(test: &str) -> Option<&'static TestCluster> {
        let cluster = SHARED
            .get_or_init(|| match Self::from_env() {
                Some(c) => Some(c),
                None => Self::start(&[]),
            })
            .as_ref();
        if cluster.is_none() {
            skip(test);
        }
        cluster
    }

    /// A private cluster with extra `postgres -c` settings (for benchmarks, restarts), or
    /// `None` when the binaries are missing and not required. Not shared: stopped when the
    /// process exits.
    pub fn start(settings: &[(&str, &str)]) -> Option<TestCluster> {
        let Some(bin) = find_bin_dir() else {
            if required() {
                panic!(
                    "BUDGET_REQUIRE_POSTGRES is set but no PostgreSQL server binaries \
                     (initdb, postgres, pg_ctl) were found on PATH or in /usr/lib/postgresql/*/bin"
                );
            }
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("budget-pg-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        let run_as = run_as();
        if let Some(user) = &run_as {
            run(Command::new("chown").arg("-R").arg(user).arg(&dir));
        }
        let data = dir.join("data");
        let mut initdb = command(&run_as, &bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(&mut initdb);
        let port = free_port();
        let mut all: Vec<(String, String)> = vec![
            ("listen_addresses".into(), "127.0.0.1".into()),
            ("unix_socket_directories".into(), dir.display().to_string()),
            ("max_connections".into(), "300".into()),
            ("fsync".into(), "off".into()),
            ("full_page_writes".into(), "off".into()),
            ("log_min_messages".into(), "warning".into()),
        ];
        for (k, v) in settings {
            all.retain(|(key, _)| key != k);
            all.push(((*k).to_owned(), (*v).to_owned()));
        }
        let own = OwnCluster {
            bin,
            dir,
            port,
            run_as,
            settings: all,
            running: Mutex::new(false),
        };
        own.launch();
        let cluster = TestCluster {
            base: format!("postgres://postgres@127.0.0.1:{port}/"),
            admin_db: "postgres".into(),
            own: Some(own),
        };
        cluster.wait_ready(Duration::from_secs(60));
        Some(cluster)
    }

    fn from_env() -> Option<TestCluster> {
        let url = std::env::var("BUDGET_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())?;
        let (base, db) = match url.rfind('/') {
            Some(i) if i > "postgres://".len() => (url[..=i].to_owned(), url[i + 1..].to_owned()),
            _ => (
                format!("{}/", url.trim_end_matches('/')),
                "postgres".to_owned(),
            ),
        };
        Some(TestCluster {
            base,
            admin_db: if db.is_empty() { "postgres".into() } else { db },
            own: None,
        })
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("{}{db}", self.base)
    }

    /// Create an empty database with a fresh name and return its URL.
    pub async fn fresh_database(&self) -> String {
        let name = format!(
            "budget_test_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect(&self.url(&self.admin_db))
            .await
            .expect("connect to the test server");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        let _ = conn.close().await;
        self.url(&name)
    }

    /// Can this server be stopped and started ([`stop`](Self::stop))? Only a private cluster.
    pub fn can_restart(&self) -> bool {
        self.own.is_some()
    }

    /// Stop the server (fast shutdown: connections are cut). Panics for a server this harness
    /// did not start.
    pub fn stop(&self) {
        let own = self
            .own
            .as_ref()
            .expect("only a private cluster can be stopped");
        let mut cmd = command(&own.run_as, &own.bin.join("pg_ctl"));
        cmd.arg("-D")
            .arg(own.dir.join("data"))
            .args(["stop", "-m", "fast", "-w"]);
        run(&mut cmd);
        *own.running.lock().unwrap_or_else(|p| p.into_inner()) = false;
    }

    /// Start a stopped server again, on the same port and data.
    pub fn start_again(&self) {
        let own = self
            .own
            .as_ref()
            .expect("only a private cluster can be started");
        own.launch();
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let url = self.url(&self.admin_db);
        loop {
            // On a thread of its own: the caller may be inside a runtime already.
            let probe = url.clone();
            let ok = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|rt| rt.block_on(async { PgConnection::connect(&probe).await.is_ok() }))
                    .unwrap_or(false)
            })
            .join()
            .unwrap_or(false);
            if ok {
                return;
            }
            if Instant::now() > deadline {
                panic!("the test PostgreSQL at {url} did not accept connections in {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl OwnCluster {
    /// Run `postgres` under a watchdog shell that stops it (and deletes the folder) when this
    /// process exits, however it exits.
    fn launch(&self) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if *running {
            return;
        }
        let mut args = vec![
            shell_quote(&self.bin.join("postgres")),
            "-D".into(),
            shell_quote(&self.dir.join("data")),
            "-p".into(),
            self.port.to_string(),
        ];
        for (k, v) in &self.settings {
            args.push("-c".into());
            args.push(shell_quote(Path::new(&format!("{k}={v}"))));
        }
        let server = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {}", args.join(" ")),
            None => args.join(" "),
        };
        let stop = {
            let ctl = format!(
                "{} -D {} stop -m immediate",
                shell_quote(&self.bin.join("pg_ctl")),
                shell_quote(&self.dir.join("data"))
            );
            match &self.run_as {
                Some(user) => format!("runuser -u {user} -- {ctl}"),
                None => ctl,
            }
        };
        // `runuser` does not pass signals on: stop the server with pg_ctl, not `kill`.
        let script = format!(
            "{server} >>{log} 2>&1 & pg=$!\n\
             while kill -0 {parent} 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done\n\
             if kill -0 $pg 2>/dev/null; then {stop} >/dev/null 2>&1; wait $pg; rm -rf {dir}; fi\n",
            log = shell_quote(&self.dir.join("server.log")),
            parent = std::process::id(),
            dir = shell_quote(&self.dir),
        );
        // Not waited for on purpose: the watchdog outlives this process to stop the server.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the PostgreSQL watchdog");
        *running = true;
    }
}

fn required() -> bool {
    std::env::var("BUDGET_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

fn skip(test: &str) {
    eprintln!(
        "SKIPPED {test}: PostgreSQL is not installed (no initdb on PATH or in \
         /usr/lib/postgresql/*/bin) and BUDGET_TEST_DATABASE_URL is not set. Install \
         Debian's `postgresql` package, or set BUDGET_TEST_DATABASE_URL, to run it."
    );
}

fn find_bin_dir() -> Option<PathBuf> {
    let has_all = |d: &Path| {
        ["initdb", "postgres", "pg_ctl"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = dirs.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            // A symlink on PATH (Debian's wrappers) resolves to the real folder.
            if let Ok(real) = std::fs::canonicalize(d.join("initdb")) {
                if let Some(parent) = real.parent() {
                    candidates.push(parent.to_path_buf());
                }
            }
            candidates.push(d);
        }
    }
    candidates.into_iter().find(|d| has_all(d))
}

/// PostgreSQL refuses to run as root: then run it as `postgres` (or `nobody`).
fn run_as() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    ["postgres", "nobody"]
        .into_iter()
        .find(|u| {
            Command::new("id")
                .arg(u)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
}

fn command(run_as: &Option<String>, program: &Path) -> Command {
    match run_as {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

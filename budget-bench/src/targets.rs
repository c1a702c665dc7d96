//! The processes under test: the mock (`budget-bench mock`), nginx (see [`crate::nginx`]) and
//! two `budget-server`s, each started as a child process and read through `/proc` (CPU time
//! and memory of the process and its children: nginx's workers are its master's children).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::client::{Conn, Endpoint};

/// A child process that prints `listening on http://ADDR` first; killed on drop.
pub(crate) struct Process {
    name: &'static str,
    child: Child,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl Process {
    /// Start `command` and wait (up to 30 s) for its `listening on` line.
    pub(crate) fn start(name: &'static str, mut command: Command) -> Result<Process, String> {
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", command.get_program()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{name}: no stdout"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok).unwrap_or_default();
            let _ = tx.send(first);
            // Keep draining, so that a later print never blocks the child.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                return Err(format!("{name}: no `listening on` line within 30 s"));
            }
        };
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| {
                let status = child.try_wait().ok().flatten();
                let _ = child.kill();
                format!("{name}: expected `listening on http://ADDR`, got {line:?} (exit status {status:?})")
            })?;
        Ok(Process { name, child, addr })
    }

    /// Start `command`, which listens on `addr` without saying so; the caller waits for it.
    pub(crate) fn spawn_at(
        name: &'static str,
        mut command: Command,
        addr: SocketAddr,
    ) -> Result<Process, String> {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("{name}: cannot start {:?}: {e}", command.get_program()))?;
        Ok(Process { name, child, addr })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fail if the process has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited: {status}", self.name)),
            Err(e) => Err(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the mock: this same binary, `mock` subcommand.
pub(crate) fn start_mock() -> Result<Process, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let mut command = Command::new(exe);
    command
        .args(["mock", "--addr", "127.0.0.1:0"])
        .stderr(Stdio::inherit());
    Process::start("mock upstream", command)
}

/// A `budget-server` child with its own SQLite file and one limiter pointing at the mock.
pub(crate) struct Server {
    /// The process.
    pub(crate) process: Process,
    /// The proxy endpoint for the pre-created limiter.
    pub(crate) endpoint: Endpoint,
}

const ADMIN_PASSWORD: &str = "budget-bench-not-the-default";

/// Start `server_bin` on `dir/{budgets-on,budgets-off}.db`, then create one limiter (a
/// $1,000,000 daily budget) for `upstream` through its admin API.
pub(crate) async fn start_server(
    name: &'static str,
    server_bin: &Path,
    dir: &Path,
    upstream: SocketAddr,
    budgets: bool,
) -> Result<Server, String> {
    let file = if budgets { "budgets-on" } else { "budgets-off" };
    let db: PathBuf = dir.join(format!("{file}.db"));
    let mut command = server_command(name, server_bin, dir, &db, &dir.join(format!("{file}.log")))?;
    command.env("BUDGETS_ENABLED", if budgets { "true" } else { "false" });
    let process = Process::start(name, command)?;
    let code = create_limiter(process.addr, upstream)
        .await
        .map_err(|e| format!("{name}: {e}"))?;
    let endpoint = Endpoint {
        addr: process.addr,
        prefix: format!("/v1/{code}"),
    };
    Ok(Server { process, endpoint })
}

/// The command that starts `server_bin` in `dir` on the SQLite file `db` (any free port, the
/// admin `admin` with [`ADMIN_PASSWORD`], stderr to `log`); log in with [`login`].
pub(crate) fn server_command(
    name: &str,
    server_bin: &Path,
    dir: &Path,
    db: &Path,
    log: &Path,
) -> Result<Command, String> {
    let log = std::fs::File::create(log)
        .map_err(|e| format!("{name}: cannot create its log file: {e}"))?;
    let mut command = Command::new(server_bin);
    command
        .current_dir(dir) // no stray `.env` from the caller's directory
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", format!("sqlite:{}", db.display()))
        .env("JWT_SECRET", "budget-bench-secret-budget-bench-secret")
        .env("ADMIN_USERNAME", "admin")
        .env(
            "ADMIN_PASSWORD",
            cheap_hash(ADMIN_PASSWORD).map_err(|e| format!("{name}: {e}"))?,
        )
        .env_remove("RUST_LOG")
        .stderr(Stdio::from(log));
    Ok(command)
}

/// An argon2id PHC hash of `password` with tiny parameters (64 KiB, one pass): the server
/// accepts a hash in `ADMIN_PASSWORD` and verifies logins with the hash's own parameters.
fn cheap_hash(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(64, 1, 1, None).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"budget-bench-salt").map_err(|e| e.to_string())?;
    let hash = argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| e.to_string())?;
    Ok(hash.to_string())
}

/// `POST /api/auth/login` as `admin` over `conn`; the token.
pub(crate) async fn login(conn: &mut Conn, server: SocketAddr) -> Result<String, String> {
    let login = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}).to_string();
    let (status, body) = conn
        .json(server, "/api/auth/login", None, login)
        .await
        .map_err(|e| format!("login: {e}"))?;
    field(&body, "token")
        .filter(|_| status.is_success())
        .ok_or_else(|| format!("login: {status} {}", String::from_utf8_lossy(&body)))
}

/// A string field of a JSON object.
fn field(body: &[u8], key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

/// `POST /api/auth/login`, then `POST /api/limiters`; the new limiter's code.
async fn create_limiter(server: SocketAddr, upstream: SocketAddr) -> Result<String, String> {
    let mut conn = Conn::open(server)
        .await
        .map_err(|e| format!("admin API: {e}"))?;
    let token = login(&mut conn, server).await?;
    let new = serde_json::json!({
        "name": "budget-bench",
        "budget_limit": 1_000_000,
        "period_type": "day",
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

/// Clock ticks per second for `/proc/PID/stat` times.
pub(crate) fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// `pid` and its descendants (nginx's master and workers; a lone process for the others).
pub(crate) fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(child)
                .ok()
                .and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
            {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        out.extend(parents.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// utime + stime of `pid` and its descendants, in clock ticks.
pub(crate) fn tree_cpu_ticks(pid: u32) -> Result<u64, String> {
    tree(pid).into_iter().map(cpu_ticks).sum()
}

/// `VmRSS` of `pid` and its descendants, summed (pages they share count once per process), KiB.
pub(crate) fn tree_rss_kib(pid: u32) -> Result<u64, String> {
    tree(pid).into_iter().map(rss_kib).sum()
}

/// The fields of `/proc/PID/stat` after the `(comm)` one: state is 0, ppid 1, utime 11.
fn stat_fields(pid: u32) -> Result<Vec<String>, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    Ok(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of `pid` (all threads, living and exited), in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64, String> {
    // utime and stime are fields 14 and 15 of the whole line.
    let fields = stat_fields(pid)?;
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or_else(|| format!("/proc/{pid}/stat: bad field"))
    };
    Ok(field(11)? + field(12)?)
}

/// Resident set size of `pid` (`VmRSS`), in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64, String> {
    status_kib(pid, "VmRSS:")
}

/// Peak resident set size of `pid` since it started (`VmHWM`), in KiB.
pub(crate) fn hwm_kib(pid: u32) -> Result<u64, String> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, key: &str) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("/proc/{pid}/status: no {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_proc_entries() {
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_ok());
        assert!(rss_kib(pid).unwrap() > 0);
    }

    #[test]
    fn a_tree_holds_the_children() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id();
        let t = tree(me);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(t[0], me);
        assert!(t.contains(&child.id()), "{t:?}");
        assert!(tree_cpu_ticks(me).is_ok());
        assert!(tree_rss_kib(me).unwrap() >= rss_kib(me).unwrap());
    }
}

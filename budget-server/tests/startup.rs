//! The real binary's start-up: safe defaults, configuration errors that name the variable, no
//! files left behind by a failed start, and the offline `--demo`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// The binary with a clean environment (nothing of the caller's HOST, PORT… leaks in), run in
/// `dir`.
fn server(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_budget-server"));
    cmd.env_clear()
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn");
    cmd
}

fn run(cmd: &mut Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

fn no_database_in(dir: &Path) {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.is_empty(), "a failed start left {files:?}");
}

#[test]
fn bad_values_name_the_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = run(server(dir.path()).env("PORT", "abc"));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("PORT") && err.contains("abc") && err.lines().count() == 1,
        "{err}"
    );
    let (out, err) = run(server(dir.path()).env("UNMETERED_ENDPOINTS", "maybe"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("UNMETERED_ENDPOINTS") && err.contains("maybe"),
        "{err}"
    );
    no_database_in(dir.path());
}

#[test]
fn the_network_is_not_served_with_the_default_or_a_placeholder_password() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = run(server(dir.path()).env("HOST", "0.0.0.0").env("PORT", "0"));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ADMIN_PASSWORD") && err.contains("HOST=0.0.0.0"),
        "{err}"
    );
    let (out, err) = run(server(dir.path())
        .env("PORT", "0")
        .env("ADMIN_PASSWORD", "strong-password-here"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("ADMIN_PASSWORD") && err.contains("placeholder"),
        "{err}"
    );
    let (out, err) = run(server(dir.path())
        .env("PORT", "0")
        .env("JWT_SECRET", "your-super-secret-key-min-32-characters"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("JWT_SECRET") && err.contains("openssl rand"),
        "{err}"
    );
    no_database_in(dir.path());
}

#[test]
fn a_start_that_cannot_listen_leaves_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (out, err) = run(server(dir.path()).env("PORT", &port));
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot listen"), "{err}");
    no_database_in(dir.path());
}

/// Kills the child when dropped, so a failed assertion leaves no server running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP request over a real socket; the body as text.
async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &str) -> String {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn the_demo_works_offline_and_binds_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let child = server(dir.path())
        .args(["--demo", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        lines.push(line.trim().to_owned());
    }
    let url = lines[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "loopback by default: {url}"
    );
    let endpoint = lines[2]
        .strip_prefix("demo limiter endpoint: ")
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{lines:?}"))
        .to_owned();
    assert_eq!(endpoint, format!("{url}/v1/demo-limiter-code"));

    let chat = http(
        "POST",
        &format!("{endpoint}/chat/completions"),
        &[
            ("authorization", "Bearer sk-demo"),
            ("content-type", "application/json"),
        ],
        r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}"#,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&chat).unwrap_or_else(|_| panic!("{chat}"));
    assert!(v["usage"]["total_tokens"].as_u64().unwrap() > 0, "{chat}");
    // The charge lands (settlement is asynchronous: poll briefly).
    let mut spent = 0.0;
    for _ in 0..100 {
        let budget = http("GET", &format!("{endpoint}/budget"), &[], "").await;
        let b: serde_json::Value = serde_json::from_str(&budget).unwrap();
        spent = b["current_spend"].as_f64().unwrap();
        if spent > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(spent > 0.0, "the demo request was charged");
    // Nothing was written beside it: the demo keeps budgets in memory.
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut rest = String::new();
    let _ = child.0.stderr.take().unwrap().read_to_string(&mut rest);
    no_database_in(dir.path());
}

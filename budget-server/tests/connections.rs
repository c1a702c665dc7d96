//! Connection limits over real sockets against the real server (`serve::serve` in-process):
//! slow request heads, idle keep-alive connections, trickled bodies, oversized
//! `Content-Length`, the connection cap, thousands of idle sockets, and a hung upstream stream.
//! Timeouts are set short for the tests; the defaults are in docs/server.md.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use budget_core::store::UsageQuery;
use budget_core::{EnforcementMode, Limiter, MemoryStore, Money, NewLimiter, Period};
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use budget_server::serve::{fit_open_files, serve, Connections, ServeOptions};
use budget_server::state::AppState;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest any single step may take before the test fails (a limit that never fires).
const PATIENCE: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    store: Arc<dyn Store>,
    mock: MockUpstream,
    connections: Connections,
}

async fn start(config: Config, tweak: impl FnOnce(&mut ServeOptions)) -> Server {
    start_with_mock(config, MockOptions::default().with_deltas(4), tweak).await
}

async fn start_with_mock(
    config: Config,
    mock: MockOptions,
    tweak: impl FnOnce(&mut ServeOptions),
) -> Server {
    let mock = MockUpstream::start(mock).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let state = AppState::with_store(config, store.clone(), None).unwrap();
    let mut options = ServeOptions::from_config(&state.config);
    tweak(&mut options);
    let connections = options.connections.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = budget_server::app(state);
    tokio::spawn(serve(listener, app, options, std::future::pending()));
    Server {
        addr,
        store,
        mock,
        connections,
    }
}

impl Server {
    async fn limiter(&self, mode: EnforcementMode) -> Limiter {
        let mut n = NewLimiter::new(
            "conn",
            Money::from_dollars(10),
            Period::Day,
            self.mock.url(),
        );
        n.mode = Some(mode);
        let l = Limiter::create(n, chrono::Utc::now()).unwrap();
        self.store.create_limiter(&l).await.unwrap();
        l
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    /// Wait until the server holds `n` connections.
    async fn wait_open(&self, n: usize) {
        tokio::time::timeout(PATIENCE, async {
            while self.connections.open() != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| {
            panic!(
                "server holds {} connections, not {n}",
                self.connections.open()
            )
        });
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// One HTTP/1.1 response read from a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: String,
}

/// Read one response (head, then `content-length` bytes of body).
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    tokio::time::timeout(PATIENCE, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.expect("read a response");
            assert!(
                n > 0,
                "connection closed before a response: {:?}",
                String::from_utf8_lossy(&buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let status = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + len {
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        RawResponse {
            status,
            head,
            body: String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
        }
    })
    .await
    .expect("a response in time")
}

/// Read (and discard) until the server closes the socket; how long that took. Panics after
/// [`PATIENCE`].
async fn wait_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server closes the connection");
    started.elapsed()
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(v["error"]["message"].is_string(), "{body}");
    assert!(v["error"]["type"].is_string(), "{body}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: budget\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_heads_are_closed_after_the_header_timeout() {
    let server = start(Config::for_tests(), |o| {
        o.header_read_timeout = ms(500);
        o.keep_alive_timeout = Duration::from_secs(30);
    })
    .await;

    // A socket that never sends a byte.
    let mut silent = server.connect().await;
    let took = wait_closed(&mut silent).await;
    println!("silent socket closed after {took:?}");
    assert!(took >= ms(400), "{took:?}");

    // Slowloris: a header line every 100 ms, never the blank line that ends the head.
    let mut slow = server.connect().await;
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: budget\r\n")
        .await
        .unwrap();
    let (mut read, mut write) = slow.into_split();
    let trickle = tokio::spawn(async move {
        for i in 0.. {
            tokio::time::sleep(ms(100)).await;
            if write
                .write_all(format!("x-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return i;
            }
        }
        unreachable!()
    });
    let started = Instant::now();
    tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 64];
        while let Ok(n) = read.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("the slowloris connection is closed");
    let lines = tokio::time::timeout(PATIENCE, trickle)
        .await
        .unwrap()
        .unwrap();
    println!(
        "slowloris closed after {:?} ({lines} header lines sent)",
        started.elapsed()
    );
    assert!(started.elapsed() >= ms(300));

    // A prompt client on the same server is served.
    let mut ok = server.connect().await;
    ok.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut ok).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let server = start(Config::for_tests(), |o| {
        o.header_read_timeout = Duration::from_secs(30);
        o.keep_alive_timeout = ms(500);
    })
    .await;
    let mut conn = server.connect().await;
    conn.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut conn).await.status, 200);
    // Within the idle timeout the connection is reused.
    tokio::time::sleep(ms(200)).await;
    conn.write_all(HEALTH).await.unwrap();
    let second = read_response(&mut conn).await;
    assert_eq!(second.status, 200);
    assert!(!second.head.contains("connection: close"));
    // Then it sits idle and is closed.
    let took = wait_closed(&mut conn).await;
    println!("idle keep-alive connection closed after {took:?}");
    assert!(took >= ms(400), "{took:?}");
    server.wait_open(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_its_stream_settled() {
    // A stream of tens of megabytes that the client never reads.
    let server = start_with_mock(
        Config::for_tests(),
        MockOptions::default().with_deltas(200_000),
        |o| o.send_timeout = ms(500),
    )
    .await;
    let limiter = server.limiter(EnforcementMode::Strict).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(server.addr).await.unwrap();
    let body = r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    conn.write_all(
        format!(
            "POST /v1/{}/chat/completions HTTP/1.1\r\nhost: budget\r\nauthorization: Bearer sk-test\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            limiter.code,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    let started = Instant::now();

    // The client reads nothing more, and keeps its socket open.
    let settled = tokio::time::timeout(PATIENCE, async {
        loop {
            let w = primary_window_spend(&*server.store, limiter.id, chrono::Utc::now())
                .await
                .unwrap();
            if w.in_flight == 0 && server.connections.open() == 0 {
                return w;
            }
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await
    .expect("the server drops the connection and settles the stream");
    println!(
        "unread stream: connection dropped and request settled {:?} after the response began",
        started.elapsed()
    );
    assert_eq!(settled.held, Money::ZERO);
    assert!(
        settled.spent > Money::ZERO,
        "charged for what was delivered"
    );
    let totals = server.store.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(totals.requests, 1);
    drop(conn);
}

/// Send `head`, then one body byte every 100 ms until the server answers; the answer.
async fn trickle(server: &Server, head: String) -> RawResponse {
    let mut conn = server.connect().await;
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = conn.into_split();
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        loop {
            tokio::time::sleep(ms(100)).await;
            if write.write_all(b"{").await.is_err() {
                return sent;
            }
            sent += 1;
        }
    });
    let started = Instant::now();
    let mut whole = Vec::new();
    tokio::time::timeout(PATIENCE, read.read_to_end(&mut whole))
        .await
        .expect("the server answers and closes")
        .ok();
    writer.abort();
    let text = String::from_utf8_lossy(&whole).into_owned();
    println!("trickled body answered after {:?}", started.elapsed());
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
    RawResponse {
        status: head[9..12].parse().unwrap(),
        head: head.to_lowercase(),
        body: body.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_is_cut_with_408() {
    // 10 bytes a second against a floor of 1,000 after a 500 ms head start.
    let server = start(Config::for_tests(), |o| {
        o.body_read_timeout = ms(500);
        o.body_min_bytes_per_sec = 1000;
    })
    .await;
    let limiter = server.limiter(EnforcementMode::Strict).await;

    let res = trickle(
        &server,
        "POST /api/auth/login HTTP/1.1\r\nhost: budget\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n".into(),
    )
    .await;
    assert_eq!(res.status, 408, "{res:?}");
    assert_eq!(error_code(&res.body), "request_timeout");
    assert!(res.head.contains("connection: close"));

    let res = trickle(
        &server,
        format!("POST /v1/{}/chat/completions HTTP/1.1\r\nhost: budget\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n", limiter.code),
    )
    .await;
    assert_eq!(res.status, 408, "{res:?}");
    assert_eq!(error_code(&res.body), "request_timeout");
    assert!(server.mock.requests().is_empty(), "nothing went upstream");

    // A body that stops half-way is cut by the pause limit.
    let mut conn = server.connect().await;
    conn.write_all(
        format!("POST /v1/{}/chat/completions HTTP/1.1\r\nhost: budget\r\ncontent-length: 100\r\n\r\n{{\"model\":", limiter.code)
            .as_bytes(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let res = read_response(&mut conn).await;
    println!("stalled body answered after {:?}", started.elapsed());
    assert_eq!(res.status, 408, "{res:?}");
    wait_closed(&mut conn).await;
    let w = primary_window_spend(&*server.store, limiter.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((w.in_flight, w.held), (0, Money::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_content_length_gets_413_before_the_body() {
    let server = start(Config::for_tests(), |o| {
        o.max_body_bytes = 1 << 20;
        o.admin_max_body_bytes = 64 * 1024;
    })
    .await;
    let limiter = server.limiter(EnforcementMode::Strict).await;
    let cases = [
        ("/api/auth/login".to_owned(), 10_000_000_000u64),
        (
            format!("/v1/{}/chat/completions", limiter.code),
            10_000_000_000,
        ),
        (format!("/v1/{}/files", limiter.code), 2 << 20),
        (
            "/v1/not-a-code/audio/transcriptions".to_owned(),
            10_000_000_000,
        ),
        // The admin API has the smaller limit.
        ("/api/limiters".to_owned(), 100_000),
    ];
    for (path, length) in cases {
        let mut conn = server.connect().await;
        conn.write_all(
            format!("POST {path} HTTP/1.1\r\nhost: budget\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let started = Instant::now();
        let res = read_response(&mut conn).await;
        println!(
            "{path} with content-length {length}: {} after {:?}",
            res.status,
            started.elapsed()
        );
        assert_eq!(res.status, 413, "{path}: {res:?}");
        assert_eq!(error_code(&res.body), "request_too_large");
        assert!(res.head.contains("connection: close"));
        assert!(res.head.contains("x-content-type-options: nosniff"));
        assert!(res.head.contains("cache-control: no-store"));
        wait_closed(&mut conn).await;
    }
    // A chunked body without a length is cut when it passes the limit.
    let mut conn = server.connect().await;
    conn.write_all(b"POST /api/auth/login HTTP/1.1\r\nhost: budget\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    for _ in 0..5 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let res = read_response(&mut conn).await;
    assert_eq!(res.status, 413, "{res:?}");
    assert_eq!(error_code(&res.body), "request_too_large");
    assert!(server.mock.requests().is_empty(), "nothing went upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_sockets_are_refused_and_open_ones_keep_working() {
    let server = start(Config::for_tests(), |o| {
        o.max_connections = 20;
        o.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(server.connect().await);
    }
    server.wait_open(20).await;

    let mut extra = server.connect().await;
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, extra.read_to_end(&mut answer))
        .await
        .expect("the extra socket is closed at once")
        .ok();
    println!(
        "over the cap: closed after {:?} with {:?}",
        started.elapsed(),
        String::from_utf8_lossy(&answer)
    );
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 503"));
    assert!(server.connections.refused() >= 1);

    // The open ones still work.
    held[7].write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut held[7]).await.status, 200);

    // Closing some makes room again.
    held.truncate(15);
    server.wait_open(15).await;
    let mut fresh = server.connect().await;
    fresh.write_all(HEALTH).await.unwrap();
    assert_eq!(read_response(&mut fresh).await.status, 200);
}

/// The built binary, started with a soft open-file limit of 1,024 (a common default, and the
/// limit under which 1,100 idle sockets once starved the server): its address, and its stderr
/// lines as they come.
fn spawn_binary(
    dir: &std::path::Path,
    db: &str,
) -> (
    std::process::Child,
    String,
    std::sync::mpsc::Receiver<String>,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n 1024 && exec \"$0\"")
        .arg(env!("CARGO_BIN_EXE_budget-server"))
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", db)
        .env("JWT_SECRET", "connections-test-secret-connections-test")
        .env("HEADER_READ_TIMEOUT_SECS", "120")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line names the address: {first:?}"))
        .to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_sockets_leave_health_and_the_proxy_answering() {
    const IDLE: usize = 2000;
    // This process holds the client end of every socket.
    let fds = fit_open_files(IDLE + 100).unwrap();
    assert!(
        fds.max_connections >= IDLE + 100,
        "the open-file limit ({} soft, {} hard) is too low for this test",
        fds.soft,
        fds.hard
    );
    let mock = MockUpstream::start(MockOptions::default().with_deltas(4))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("usage.db").display());
    let limiter = {
        let store = budget_store_sqlite::SqliteStore::open(&db).await.unwrap();
        let l = Limiter::create(
            NewLimiter::new("idle", Money::from_dollars(5), Period::Day, mock.url()),
            chrono::Utc::now(),
        )
        .unwrap();
        store.create_limiter(&l).await.unwrap();
        store.close().await;
        l
    };
    let (mut child, url, log) = spawn_binary(dir.path(), &db);
    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();

    let opened = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    tokio::time::timeout(PATIENCE * 3, async {
        for i in 0..IDLE {
            let mut s = TcpStream::connect(addr).await.unwrap();
            if i % 2 == 1 {
                // Half of them slowloris-style: a request line and nothing more.
                s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
            }
            idle.push(s);
        }
    })
    .await
    .expect("2,000 sockets connect");
    println!("{IDLE} idle sockets open after {:?}", opened.elapsed());

    // Accepted in order: this answer means every idle socket before it was accepted.
    let started = Instant::now();
    let mut health = TcpStream::connect(addr).await.unwrap();
    health.write_all(HEALTH).await.unwrap();
    let res = read_response(&mut health).await;
    let health_latency = started.elapsed();
    assert_eq!(res.status, 200, "{res:?}");

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("{url}/v1/{}/chat/completions", limiter.code))
        .header("authorization", "Bearer sk-test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )))
        .unwrap();
    let started = Instant::now();
    let res = tokio::time::timeout(PATIENCE, client.request(req))
        .await
        .expect("the proxy answers")
        .unwrap();
    let status = res.status();
    tokio::time::timeout(PATIENCE, res.into_body().collect())
        .await
        .unwrap()
        .unwrap();
    let proxy_latency = started.elapsed();
    assert_eq!(status, 200);
    println!(
        "with {IDLE} idle sockets held: /health answered in {health_latency:?}, a proxied chat completion in {proxy_latency:?}"
    );

    // Every idle socket was held open all along: each finishes its request now and is answered.
    let started = Instant::now();
    for (i, s) in idle.iter_mut().enumerate() {
        let rest: &[u8] = if i % 2 == 1 {
            b"host: budget\r\n\r\n"
        } else {
            HEALTH
        };
        s.write_all(rest).await.unwrap();
        assert_eq!(read_response(s).await.status, 200, "idle socket {i}");
    }
    println!(
        "all {IDLE} idle sockets then answered in {:?}",
        started.elapsed()
    );
    drop(idle);

    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let lines: Vec<String> = log.try_iter().collect();
    for wanted in ["raised the open-file limit", "connection limits"] {
        let line = lines
            .iter()
            .find(|l| l.contains(wanted))
            .unwrap_or_else(|| panic!("no `{wanted}` in the log: {lines:#?}"));
        println!("{line}");
    }
    assert!(
        !lines.iter().any(|l| l.contains("accept failed")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_upstream_stream_is_closed_and_its_reservation_settled() {
    let dir = tempfile::tempdir().unwrap();
    // Price the mock's hanging model so a strict limiter holds real money for it.
    let prices = dir.path().join("prices.json");
    std::fs::write(
        &prices,
        r#"{"models": {"mock-hang": {"input": "2.5", "output": "10"}}}"#,
    )
    .unwrap();
    let mut config = Config::for_tests();
    config.prices_file = Some(prices);
    config.upstream_idle_timeout_secs = 1;
    let server = start(config, |_| {}).await;
    let limiter = server.limiter(EnforcementMode::Strict).await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!(
        "http://{}/v1/{}/chat/completions",
        server.addr, limiter.code
    ))
    .header("authorization", "Bearer sk-test")
    .header("content-type", "application/json")
    .body(Full::new(Bytes::from_static(
        br#"{"model":"mock-hang","stream":true,"max_tokens":1000,"messages":[{"role":"user","content":"Hi"}]}"#,
    )))
    .unwrap();
    let res = client.request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    let during = primary_window_spend(&*server.store, limiter.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(during.in_flight, 1);
    assert!(during.held > Money::ZERO, "{during:?}");

    // The upstream says nothing more: the proxy closes the stream after its idle timeout.
    let started = Instant::now();
    let rest = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .expect("the silent stream is closed");
    println!(
        "silent upstream stream closed after {:?} ({})",
        started.elapsed(),
        match &rest {
            Ok(_) => "ended".to_owned(),
            Err(e) => format!("error: {e}"),
        }
    );
    assert!(
        rest.is_err(),
        "the client sees a broken stream, not a clean end"
    );

    // Settled for what was delivered: the hold is gone and the request is on record.
    let after = tokio::time::timeout(PATIENCE, async {
        loop {
            let w = primary_window_spend(&*server.store, limiter.id, chrono::Utc::now())
                .await
                .unwrap();
            if w.in_flight == 0 {
                return w;
            }
            tokio::time::sleep(ms(10)).await;
        }
    })
    .await
    .expect("the reservation is settled");
    assert_eq!(after.held, Money::ZERO);
    let totals = server.store.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(totals.requests, 1);
    assert_eq!(after.spent, totals.cost);
}

//! The real binary with a full disk, rehearsed with `SQLITE_MAX_PAGE_COUNT` (the file may not
//! grow): usage that cannot be saved stays queued, `/health` and `/metrics` say so, the proxy
//! refuses new requests with 503 + `Retry-After` past `MAX_UNSAVED_USAGE_EVENTS`, and once
//! room returns and the server is stopped with SIGTERM, every answered request is in the file
//! exactly once.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use budget_core::store::UsageQuery;
use budget_core::{Limiter, Money, NewLimiter, Period};
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_store_sqlite::SqliteStore;
use http::StatusCode;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

mod common;
use common::{bearer, Answer};

/// Unsaved events past which the server refuses new requests.
const MAX_UNSAVED: u64 = 150;
const PASSWORD: &str = "full-disk-test-password";

struct Server {
    url: String,
}

impl Server {
    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
        // The upstream's key for the proxy, the admin token for `/api`.
        let auth = bearer(token.unwrap_or("sk-test"));
        let headers = [
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ];
        common::send(&self.url, method, path, &headers, body).await
    }

    async fn chat(&self, l: &Limiter) -> Answer {
        self.send(
            "POST",
            &format!("/v1/{}/chat/completions", l.code),
            None,
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}]}"#,
        )
        .await
    }

    async fn json(&self, path: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
        let a = self.send("GET", path, token, "").await;
        (a.status, serde_json::from_str(&a.text).unwrap_or_default())
    }

    /// A sample of `/metrics`.
    async fn metric(&self, name: &str) -> Option<f64> {
        let a = self.send("GET", "/metrics", None, "").await;
        a.text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

async fn side_connection(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::from_str(&format!("sqlite:{}", path.display()))
        .unwrap()
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_survives_a_full_disk_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.db");
    let db = format!("sqlite:{}", path.display());
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let limiter = {
        let store = SqliteStore::open(&db).await.unwrap();
        let l = Limiter::create(
            NewLimiter::new(
                "full disk",
                Money::from_dollars(1_000),
                Period::Day,
                mock.url(),
            ),
            chrono::Utc::now(),
        )
        .unwrap();
        store.create_limiter(&l).await.unwrap();
        store.close().await;
        l
    };
    // 256 KiB of filler, everything checkpointed into the file; the server may not grow it.
    let pages = {
        let mut c = side_connection(&path).await;
        sqlx::raw_sql(
            "CREATE TABLE filler (b BLOB); \
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) \
             INSERT INTO filler SELECT zeroblob(4000) FROM n; \
             PRAGMA wal_checkpoint(TRUNCATE);",
        )
        .execute(&mut c)
        .await
        .unwrap();
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        pages
    };

    let log = dir.path().join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_budget-server"))
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", "full-disk-test-secret-full-disk-test-secret")
        .env("ADMIN_PASSWORD", PASSWORD)
        .env("SQLITE_MAX_PAGE_COUNT", pages.to_string())
        .env("MAX_UNSAVED_USAGE_EVENTS", MAX_UNSAVED.to_string())
        .env("RUST_LOG", "info")
        .env("LOG_FORMAT", "json")
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let server = Server {
        url: first
            .trim()
            .strip_prefix("listening on ")
            .expect("first line names the address")
            .to_owned(),
    };
    let login = server
        .send(
            "POST",
            "/api/auth/login",
            None,
            &format!(r#"{{"username":"admin","password":"{PASSWORD}"}}"#),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let token: serde_json::Value = serde_json::from_str(&login.text).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();

    // A trickle of single requests (each batch commits alone) while the file fills up, then
    // bursts of ten until the server refuses. A one-row INSERT that hits SQLITE_FULL makes
    // SQLite roll back the whole transaction by itself; the writer must cope with that.
    let mut answered = 0u64;
    for _ in 0..40 {
        let a = server.chat(&limiter).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        answered += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (health_status, health_when_full) = server.json("/health", None).await;
    let mut refusal = None;
    while refusal.is_none() && answered < 400 {
        let burst = futures::future::join_all((0..10).map(|_| server.chat(&limiter))).await;
        for a in burst {
            match a.status {
                StatusCode::OK => answered += 1,
                _ => refusal = Some(a),
            }
        }
    }
    let (refused_health_status, health_refusing) = server.json("/health", None).await;
    let store_errors = server.metric("budget_store_errors_total").await;
    let unsaved_metric = server.metric("budget_unsaved_usage_events").await;
    let stats: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            let (s, j) = server.json("/api/stats", Some(&token)).await;
            assert_eq!(s, StatusCode::OK, "{j}");
            v.push(j["total_requests"].as_u64().unwrap());
        }
        v
    };

    // Room returns: a connection of the test's own frees the filler's pages.
    let freed = {
        let mut c = side_connection(&path).await;
        let r = sqlx::query("DELETE FROM filler").execute(&mut c).await;
        c.close().await.unwrap();
        r.map(|_| ()).map_err(|e| e.to_string())
    };
    let started = Instant::now();
    let mut recovered = None;
    while started.elapsed() < Duration::from_secs(15) {
        let (s, j) = server.json("/health", None).await;
        if s == StatusCode::OK {
            recovered = Some(j);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = if recovered.is_some() {
        let a = server.chat(&limiter).await;
        if a.status == StatusCode::OK {
            answered += 1;
        }
        let created = server
            .send(
                "POST",
                "/api/limiters",
                Some(&token),
                r#"{"name":"after recovery","budget_limit":30.00,"period_type":"day"}"#,
            )
            .await;
        Some((a.status, created.status, created.text))
    } else {
        None
    };

    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let log = std::fs::read_to_string(&log).unwrap();

    let store = SqliteStore::open(&db).await.unwrap();
    let totals = store.usage_totals(&UsageQuery::all()).await.unwrap();
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT id) FROM usage_events")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let w = primary_window_spend(&store, limiter.id, chrono::Utc::now())
        .await
        .unwrap();
    store.close().await;
    eprintln!(
        "answered {answered}; health when full {health_status} {health_when_full}; \
         refused: {:?}; health when refusing {refused_health_status} {health_refusing}; \
         budget_store_errors_total {store_errors:?}, budget_unsaved_usage_events {unsaved_metric:?}; \
         stats while failing {stats:?}; freeing room: {freed:?}; after recovery: {recovered:?} {after:?}; \
         exit {status:?}; in the file: {rows} rows, {distinct} distinct, {} in roll-ups; lost {}",
        refusal.as_ref().map(|a| (a.status, a.headers.get("retry-after"), &a.text)),
        totals.requests,
        answered as i64 - distinct,
    );

    // While full: visible.
    assert_eq!(health_status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health_when_full["status"], "degraded", "{health_when_full}");
    assert!(health_when_full["unsaved_events"].as_u64().unwrap() > 0);
    assert!(store_errors.unwrap() >= 1.0, "writer failures are counted");
    assert!(
        log.contains("usage batch commit failed") && log.contains(r#""unsaved_events":"#),
        "the log says how much usage waits: {log}"
    );
    // Bounded: fail closed, OpenAI-shaped, with Retry-After.
    let refusal = refusal.expect("the server refused once too much usage waited unsaved");
    assert_eq!(refusal.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refusal.headers["retry-after"], "5");
    let v: serde_json::Value = serde_json::from_str(&refusal.text).unwrap();
    assert_eq!(v["error"]["code"], "budget_store_unavailable");
    assert_eq!(v["error"]["type"], "server_error");
    assert_eq!(refused_health_status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health_refusing["refusing_requests"], true);
    assert!(health_refusing["unsaved_events"].as_u64().unwrap() >= MAX_UNSAVED);
    assert!(unsaved_metric.unwrap() >= MAX_UNSAVED as f64);
    // Consistent statistics while writes fail.
    assert!(stats.windows(2).all(|w| w[0] == w[1]), "{stats:?}");
    // Recovery.
    freed.expect("freeing room is not blocked by a writer stuck in a transaction");
    let recovered = recovered.expect("/health is 200 again once usage is saved");
    assert_eq!(recovered["unsaved_events"], 0);
    let (chat, created, body) = after.unwrap();
    assert_eq!(chat, StatusCode::OK, "requests are admitted again");
    assert_eq!(
        created,
        StatusCode::CREATED,
        "creating a limiter works: {body}"
    );
    assert!(log.contains("usage writes recovered"), "{log}");
    assert!(status.success(), "exit status {status:?}");
    // Nothing lost, nothing doubled.
    assert_eq!((rows, distinct), (answered as i64, answered as i64));
    assert_eq!(totals.requests, answered);
    assert_eq!(w.spent, totals.cost, "the counter rebuilt from the file");
}

//! The real binary: SIGTERM lets an open stream finish, flushes the store, exits 0.

use budget_core::store::prelude::*;
use budget_core::store::primary_window_spend;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use budget_core::store::UsageQuery;
use budget_core::{Limiter, Money, NewLimiter, Period};
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_store_sqlite::SqliteStore;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_streams_finish_and_flushes_usage() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("usage.db").display());
    // 20 deltas, 100 ms apart: a two-second stream.
    let mock = MockUpstream::start(
        MockOptions::default()
            .with_deltas(20)
            .with_chunk_delay(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let limiter = {
        let store = SqliteStore::open(&db).await.unwrap();
        let l = Limiter::create(
            NewLimiter::new("shutdown", Money::from_dollars(5), Period::Day, mock.url()),
            chrono::Utc::now(),
        )
        .unwrap();
        store.create_limiter(&l).await.unwrap();
        store.close().await;
        l
    };

    let mut child = Command::new(env!("CARGO_BIN_EXE_budget-server"))
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("DATABASE_URL", &db)
        .env("JWT_SECRET", "shutdown-test-secret-shutdown-test-secret")
        .env("SHUTDOWN_GRACE_SECS", "20")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("first line names the address")
        .to_owned();

    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::post(format!("{url}/v1/{}/chat/completions", limiter.code))
        .header("authorization", "Bearer sk-test")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(
            br#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        )))
        .unwrap();
    let res = client.request(req).await.unwrap();
    let mut body = res.into_body();
    let first_frame = body.frame().await.unwrap().unwrap();
    assert!(first_frame.is_data());

    // Mid-stream: ask the server to stop.
    let started = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let rest = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.ends_with("data: [DONE]\n\n"),
        "the stream finished: {text}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it was really mid-stream"
    );

    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    // The settled usage reached the file before the process exited.
    let store = SqliteStore::open(&db).await.unwrap();
    let totals = store.usage_totals(&UsageQuery::all()).await.unwrap();
    assert_eq!(totals.requests, 1);
    assert!(
        totals.completion_tokens >= 20 && totals.cost > Money::ZERO,
        "{totals:?}"
    );
    let w = primary_window_spend(&store, limiter.id, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(w.spent, totals.cost);
    store.close().await;
}

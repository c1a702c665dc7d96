//! What the socket-level integration tests share: a server on a real socket over a real
//! database, and HTTP calls to it with hyper's client.
//!
//! Each test binary uses a part of this, so the rest is dead code there.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use budget_server::config::Config;
use budget_server::state::AppState;
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The server on 127.0.0.1 and an ephemeral port, as `budget_server::app` serves it.
pub(crate) struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// An admin's `Authorization` header value: `Bearer <token>`.
    pub(crate) admin: String,
    pub(crate) state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// A server on the SQLite file `db` (created if missing), with `tune` applied to
    /// `Config::for_tests()`.
    pub(crate) async fn start(db: &Path, tune: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::on(format!("sqlite:{}", db.display()), tune).await
    }

    /// A server on any `DATABASE_URL`, with `tune` applied to `Config::for_tests()`.
    pub(crate) async fn on(database_url: String, tune: impl FnOnce(&mut Config)) -> TestServer {
        let mut c = Config::for_tests();
        c.database_url = database_url;
        tune(&mut c);
        TestServer::serve(AppState::build(c).await.unwrap()).await
    }

    /// Serve a state built by the test.
    pub(crate) async fn serve(state: AppState) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app =
            budget_server::app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let admin = bearer(&state.auth.issue(chrono::Utc::now()).unwrap().token);
        TestServer {
            url,
            admin,
            state,
            task,
        }
    }

    /// Stop serving, wait for the settlements in flight and close the database, as a
    /// process that exits would.
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.state.layer.settlements().await;
        if let Some(s) = &self.state.sqlite {
            s.close().await;
        }
        if let Some(p) = &self.state.postgres {
            p.close().await;
        }
    }

    /// A raw request to this server.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        send(&self.url, method, path, headers, body).await
    }

    /// A JSON request as the admin.
    pub(crate) async fn as_admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        request(&self.url, method, path, Some(&self.admin), body).await
    }

    /// A JSON request as the admin that must succeed; the answer's JSON.
    pub(crate) async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = call(&self.url, method, path, Some(&self.admin), body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// Create a limiter through the admin API: its id and code.
    pub(crate) async fn limiter(&self, body: Value) -> (String, String) {
        let l = self.api("POST", "/api/limiters", Some(body)).await;
        (
            l["id"].as_str().unwrap().to_owned(),
            l["code"].as_str().unwrap().to_owned(),
        )
    }
}

/// `Bearer <token>`.
pub(crate) fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// An answer, whole.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) bytes: Bytes,
    /// The body as text (invalid UTF-8 replaced).
    pub(crate) text: String,
    /// The body as JSON; `Value::Null` for an empty or non-JSON body.
    pub(crate) json: Value,
}

/// A request with these headers and body, as given.
pub(crate) async fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{url}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = client
        .request(req.body(Full::new(Bytes::from(body.to_owned()))).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
    }
}

/// A request with `auth` as its `Authorization` header (if any) and `body` as JSON (if any).
pub(crate) async fn request(
    url: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut headers = Vec::new();
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    let body = match body {
        Some(b) => {
            headers.push(("content-type", "application/json"));
            b.to_string()
        }
        None => String::new(),
    };
    send(url, method, path, &headers, &body).await
}

/// [`request`], for the status and the JSON (`Value::Null` for an empty or non-JSON body).
pub(crate) async fn call(
    url: &str,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let a = request(url, method, path, auth, body).await;
    (a.status, a.json)
}

//! A tiny HTTP/1.1 client over a real socket that timestamps every body frame.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::response::Parts;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// An answer: head, and each data frame with the time it arrived.
pub struct Answer {
    pub parts: Parts,
    pub sent_at: Instant,
    pub frames: Vec<(Instant, Bytes)>,
}

impl Answer {
    pub fn status(&self) -> u16 {
        self.parts.status.as_u16()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|(_, b)| b.to_vec()).collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.bytes()).expect("UTF-8 body")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes()).expect("JSON body")
    }

    /// SSE events as (event name, data) pairs, comments skipped; accepts `\n` and `\r\n`.
    pub fn events(&self) -> Vec<(Option<String>, String)> {
        let text = self.text().replace("\r\n", "\n");
        let mut out = Vec::new();
        for block in text.split("\n\n").filter(|b| !b.is_empty()) {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_owned());
                }
            }
            if let Some(data) = data {
                out.push((name, data));
            }
        }
        out
    }

    /// The `data:` payloads other than `[DONE]`, as JSON.
    pub fn chunks(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|(_, d)| d != "[DONE]")
            .map(|(_, d)| serde_json::from_str(&d).expect("JSON chunk"))
            .collect()
    }
}

async fn open(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (Parts, Incoming, Instant) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let sent_at = Instant::now();
    let resp = sender
        .send_request(req.body(Full::new(Bytes::from(body))).expect("request"))
        .await
        .expect("response");
    let (parts, body) = resp.into_parts();
    (parts, body, sent_at)
}

/// Sends a request and reads the whole answer, frame by frame.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    let (parts, mut body, sent_at) = open(addr, method, path, headers, body).await;
    let mut frames = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.expect("frame").into_data() {
            frames.push((Instant::now(), data));
        }
    }
    Answer {
        parts,
        sent_at,
        frames,
    }
}

/// Sends a request and reads frames until `timeout` passes without one.
pub async fn send_until_quiet(
    addr: SocketAddr,
    path: &str,
    body: Value,
    timeout: Duration,
) -> (Answer, bool) {
    let headers = [
        ("authorization", "Bearer sk-test"),
        ("content-type", "application/json"),
    ];
    let (parts, mut body, sent_at) =
        open(addr, "POST", path, &headers, body.to_string().into_bytes()).await;
    let mut frames = Vec::new();
    let ended = loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Ok(Some(frame)) => {
                if let Ok(data) = frame.expect("frame").into_data() {
                    frames.push((Instant::now(), data));
                }
            }
            Ok(None) => break true,
            Err(_) => break false,
        }
    };
    (
        Answer {
            parts,
            sent_at,
            frames,
        },
        ended,
    )
}

/// POSTs JSON to an OpenAI path with a Bearer key.
pub async fn post(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    send(
        addr,
        "POST",
        path,
        &[
            ("authorization", "Bearer sk-test"),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

/// POSTs JSON to an Azure path with an `api-key`.
pub async fn post_azure(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    send(
        addr,
        "POST",
        path,
        &[
            ("api-key", "azure-key"),
            ("content-type", "application/json"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

//! One request: record it, check it, route it by path suffix, apply the test hooks.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde_json::Value;

use crate::body::{MockBody, Pacing};
use crate::call::Call;
use crate::errors::{incorrect_key, invalid_url, missing_key, openai_error, status_error};
use crate::server::{SeenRequest, Shared};
use crate::tokens::usage_for_model;
use crate::{chat, media, models, responses};

/// Delay of the `mock-slow` hook before the first byte.
pub(crate) const SLOW_DELAY: Duration = Duration::from_secs(2);

/// Request header asking for a pause before the answer (milliseconds, whole number): lets a
/// test give each request its own upstream latency.
pub(crate) const LATENCY_HEADER: &str = "x-mock-latency-ms";

/// The longest pause [`LATENCY_HEADER`] can ask for.
pub(crate) const MAX_LATENCY: Duration = Duration::from_secs(60);

/// The pause a request asks for with [`LATENCY_HEADER`], capped at [`MAX_LATENCY`]; `None`
/// when the header is absent or not a whole number of milliseconds.
fn requested_latency(headers: &HeaderMap) -> Option<Duration> {
    let ms: u64 = headers
        .get(LATENCY_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_millis(ms).min(MAX_LATENCY))
}

/// Which API family a path belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor<'a> {
    /// `…/v1/…` and anything else.
    OpenAi,
    /// `/openai/deployments/{deployment}/…`.
    AzureDeployment(&'a str),
    /// `/openai/v1/…`.
    AzureV1,
}

/// What is asked for, by path suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    Responses,
    Images,
    Transcriptions,
    Models,
}

fn endpoint(path: &str) -> Option<Endpoint> {
    let path = path.trim_end_matches('/');
    Some(if path.ends_with("/chat/completions") {
        Endpoint::Chat
    } else if path.ends_with("/completions") {
        Endpoint::Completions
    } else if path.ends_with("/embeddings") {
        Endpoint::Embeddings
    } else if path.ends_with("/responses") {
        Endpoint::Responses
    } else if path.ends_with("/images/generations") {
        Endpoint::Images
    } else if path.ends_with("/audio/transcriptions") {
        Endpoint::Transcriptions
    } else if path.ends_with("/models") {
        Endpoint::Models
    } else {
        return None;
    })
}

fn flavor(path: &str) -> Flavor<'_> {
    if let Some(i) = path.find("/openai/deployments/") {
        let rest = &path[i + "/openai/deployments/".len()..];
        Flavor::AzureDeployment(rest.split('/').next().unwrap_or(""))
    } else if path.contains("/openai/v1/") || path.contains("/openai/responses") {
        // `/openai/responses?api-version=…` is where `AzureOpenAI().responses` goes.
        Flavor::AzureV1
    } else {
        Flavor::OpenAi
    }
}

/// The key in `Authorization: Bearer <key>`, if any (empty counts as none).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// The 401 to answer when the request's credentials are not acceptable, else `None`. OpenAI
/// paths read only `Authorization: Bearer`; Azure paths take that or `api-key`. With
/// `accepted` non-empty, the key must be one of them (on Azure paths: every credential sent).
fn refuse_key(headers: &HeaderMap, azure: bool, accepted: &[String]) -> Option<Response<MockBody>> {
    let bearer = bearer(headers);
    let api_key = if azure {
        headers
            .get("api-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty())
    } else {
        None
    };
    let sent: Vec<&str> = bearer.into_iter().chain(api_key.as_deref()).collect();
    if sent.is_empty() {
        return Some(missing_key());
    }
    if accepted.is_empty() {
        return None;
    }
    sent.iter()
        .find(|key| !accepted.iter().any(|a| a == *key))
        .map(|wrong| incorrect_key(wrong))
}

/// The mock's own endpoint listing the credential headers it has seen (not an OpenAI path).
pub(crate) const SEEN_KEYS_PATH: &str = "/mock/seen-keys";

/// `GET /mock/seen-keys`: [`SeenKeys`](crate::SeenKeys) as JSON.
fn seen_keys(shared: &Shared, method: &Method, path: &str) -> Response<MockBody> {
    if method != Method::GET {
        return invalid_url(method.as_str(), path);
    }
    let mut resp = Response::new(MockBody::full(shared.seen_keys().to_json().to_string()));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Answers one request; never fails.
pub(crate) async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<MockBody> {
    if req.uri().path() == SEEN_KEYS_PATH {
        // The mock's own inspection endpoint: neither counted, recorded nor key-checked.
        return seen_keys(shared, req.method(), req.uri().path());
    }
    shared.note_keys(req.headers());
    shared.count.fetch_add(1, Ordering::Relaxed);
    let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
    let opts = &shared.opts;
    let (parts, body) = req.into_parts();
    let Ok(collected) = body.collect().await else {
        return openai_error(
            400,
            "Could not read the request body.",
            "invalid_request_error",
            None,
            None,
        );
    };
    let bytes = collected.to_bytes();
    let req = Request::from_parts(parts, ());
    if opts.record {
        shared.record(SeenRequest {
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned()),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: bytes.clone(),
        });
    }
    if let Some(pause) = requested_latency(req.headers()) {
        // Before anything is sent: for a stream, before its first byte.
        tokio::time::sleep(pause).await;
    }
    let mut resp = answer(shared, &req, &bytes, seq).await;
    let headers = resp.headers_mut();
    let request_id = format!("req_mock{seq:024x}");
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert("x-request-id", v.clone());
        if req.uri().path().contains("/openai/") {
            headers.insert("apim-request-id", v);
            headers.insert("x-ms-region", HeaderValue::from_static("East US"));
        }
    }
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    headers.insert("openai-processing-ms", HeaderValue::from_static("1"));
    resp
}

async fn answer(shared: &Shared, req: &Request<()>, bytes: &[u8], seq: u64) -> Response<MockBody> {
    let opts = &shared.opts;
    let path = req.uri().path();
    let json: Option<Value> = serde_json::from_slice(bytes).ok();
    let requested = json
        .as_ref()
        .and_then(|b| b.get("model"))
        .and_then(Value::as_str);
    if req.method() == Method::OPTIONS {
        return cors_preflight();
    }
    if let Some(status) = opts.fail_with {
        return status_error(status, requested.unwrap_or("gpt-4o"));
    }
    let flavor = flavor(path);
    let azure = flavor != Flavor::OpenAi;
    let Some(endpoint) = endpoint(path) else {
        return invalid_url(req.method().as_str(), path);
    };
    let wanted = if endpoint == Endpoint::Models {
        Method::GET
    } else {
        Method::POST
    };
    if req.method() != wanted {
        return invalid_url(req.method().as_str(), path);
    }
    if let Some(unauthorized) = refuse_key(req.headers(), azure, &opts.accepted_keys) {
        return unauthorized;
    }
    if let Flavor::AzureDeployment(_) = flavor {
        if !req.uri().query().unwrap_or("").contains("api-version=") {
            return azure_not_found();
        }
    }
    if endpoint == Endpoint::Models {
        return media::model_list();
    }

    // The body: JSON, or multipart for transcriptions.
    let null = Value::Null;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let form = if endpoint == Endpoint::Transcriptions {
        media::multipart(bytes, content_type)
    } else {
        Vec::new()
    };
    let body =
        if endpoint == Endpoint::Transcriptions {
            &null
        } else {
            match json.as_ref() {
                Some(body @ Value::Object(_)) => body,
                _ => return openai_error(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means \
                     you aren't using your HTTP library correctly. The OpenAI API expects a JSON \
                     payload, but what was sent was not valid JSON. If you have trouble figuring \
                     out how to fix this, please contact us through our help center at \
                     help.openai.com.)",
                    "invalid_request_error",
                    None,
                    None,
                ),
            }
        };

    // The model: the deployment on Azure deployment URLs, else the body's (or form's) `model`.
    let form_model = form
        .iter()
        .find(|p| p.name == "model")
        .and_then(|p| std::str::from_utf8(p.data).ok());
    let name = match (flavor, endpoint) {
        (Flavor::AzureDeployment(deployment), _) => Some(deployment),
        (_, Endpoint::Transcriptions) => form_model,
        (_, Endpoint::Images) => Some(requested.unwrap_or("dall-e-2")),
        _ => requested,
    };
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return openai_error(
            400,
            "you must provide a model parameter",
            "invalid_request_error",
            None,
            None,
        );
    };

    // Test hooks.
    let mut hang = false;
    match name {
        "mock-error-500" => return status_error(500, name),
        "mock-error-429" => return status_error(429, name),
        "mock-slow" => tokio::time::sleep(SLOW_DELAY).await,
        "mock-hang" => hang = true,
        _ => {}
    }

    let model = if azure {
        let fallback = match endpoint {
            Endpoint::Embeddings => "text-embedding-3-small",
            Endpoint::Completions => "gpt-35-turbo-instruct",
            _ => models::AZURE_DEFAULT_MODEL,
        };
        models::resolve_azure(name, fallback)
    } else {
        models::resolve(name)
    };
    let streams = matches!(
        endpoint,
        Endpoint::Chat | Endpoint::Completions | Endpoint::Responses
    );
    let call = Call {
        body,
        model,
        usage: usage_for_model(model, body, opts.deltas),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        seq,
        azure,
        stream: streams && body.get("stream").and_then(Value::as_bool) == Some(true),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            == Some(true),
        pacing: Pacing {
            chunk_delay: opts.chunk_delay,
            split_events: opts.split_events,
            crlf: opts.crlf,
        },
        hang,
    };
    match endpoint {
        Endpoint::Chat => chat::chat_completion(&call),
        Endpoint::Completions => chat::text_completion(&call),
        Endpoint::Responses => responses::response(&call),
        Endpoint::Embeddings => media::embeddings(&call),
        Endpoint::Images => media::image_generation(&call),
        Endpoint::Transcriptions => media::transcription(&call, &form),
        Endpoint::Models => media::model_list(),
    }
}

/// A CORS preflight answer (OpenAI allows any origin), for browser tests.
fn cors_preflight() -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(""));
    *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
    let headers = resp.headers_mut();
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("*"),
    );
    headers.insert("access-control-max-age", HeaderValue::from_static("600"));
    resp
}

/// Azure's 404 for a deployment URL without `api-version`.
fn azure_not_found() -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(
        r#"{"error":{"code":"404","message":"Resource not found"}}"#,
    ));
    *resp.status_mut() = hyper::StatusCode::NOT_FOUND;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_suffix_under_any_prefix() {
        assert_eq!(endpoint("/v1/chat/completions"), Some(Endpoint::Chat));
        assert_eq!(
            endpoint("/proxy/abc/v1/completions"),
            Some(Endpoint::Completions)
        );
        assert_eq!(endpoint("/v1/responses/"), Some(Endpoint::Responses));
        assert_eq!(endpoint("/v1/files"), None);
        assert_eq!(
            flavor("/openai/deployments/prod-4o/chat/completions"),
            Flavor::AzureDeployment("prod-4o")
        );
        assert_eq!(flavor("/x/openai/v1/responses"), Flavor::AzureV1);
        assert_eq!(flavor("/v1/chat/completions"), Flavor::OpenAi);
    }

    #[test]
    fn latency_header_is_whole_milliseconds_capped() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(LATENCY_HEADER, HeaderValue::from_str(v).unwrap());
            requested_latency(&h)
        };
        assert_eq!(with("250"), Some(Duration::from_millis(250)));
        assert_eq!(with(" 0 "), Some(Duration::ZERO));
        assert_eq!(with("99999999"), Some(MAX_LATENCY));
        assert_eq!(with("1.5"), None);
        assert_eq!(with("-3"), None);
        assert_eq!(requested_latency(&HeaderMap::new()), None);
    }

    /// The pause comes before the status line: a raw HTTP/1.1 exchange on a real socket.
    #[tokio::test]
    async fn latency_header_delays_the_first_byte() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let up = crate::MockUpstream::start(crate::MockOptions::default())
            .await
            .unwrap();
        let body =
            r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let mut first_byte = Vec::new();
        for latency in [0u64, 300] {
            let mut s = tokio::net::TcpStream::connect(up.addr()).await.unwrap();
            let req = format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: mock\r\nauthorization: Bearer sk-test\r\n\
                 content-type: application/json\r\n{LATENCY_HEADER}: {latency}\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let sent = std::time::Instant::now();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.unwrap();
            first_byte.push(sent.elapsed());
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            let text = String::from_utf8_lossy(&rest);
            assert!(text.starts_with("TTP/1.1 200"), "{text}");
            assert!(text.contains("data: [DONE]"), "{text}");
        }
        assert!(
            first_byte[1] >= Duration::from_millis(300),
            "{first_byte:?}"
        );
        assert_eq!(up.request_count(), 2);
    }
}

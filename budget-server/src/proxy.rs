//! The transparent proxy: `/v1/{limiter_code}/{*rest}` to the limiter's upstream.
//!
//! - OpenAI limiters: `{base_url}/v1/{rest}` (or `{base_url}/{rest}` when the base URL already
//!   ends in `/v1`).
//! - Azure limiters: `{base_url}/{rest}`, for `openai/deployments/{deployment}/...` and
//!   `openai/v1/...` paths as the `AzureOpenAI` SDK sends them.
//!
//! The query string (`api-version`) is kept. The client's own `Authorization` / `api-key`
//! header goes upstream, unless the limiter has an upstream key held by the server
//! ([`UpstreamKeys`]): then the client's credential headers are removed and the stored key is
//! sent instead (docs/upstream-keys.md). Hop-by-hop headers and `Host` are not
//! forwarded; `Accept-Encoding` is set to `identity` so the meter reads plain bytes. Bodies are
//! streamed both ways; nothing is buffered.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use budget_core::api::{check_canonical, classify, ApiRoute};
use budget_core::store::LimiterRef;
use budget_core::{Limiter, Provider};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Config;
use crate::egress::GuardedResolver;
use crate::metrics::Metrics;
use budget_tower::Refusal;

/// The pooled HTTP(S) client to upstreams.
#[derive(Clone)]
pub struct Upstream {
    client: HttpClient,
    first_byte_timeout: std::time::Duration,
    /// How long a started response may stay silent (`UPSTREAM_IDLE_TIMEOUT_SECS`).
    idle_timeout: std::time::Duration,
}

/// The pooled HTTP client (rustls with the Mozilla roots, HTTP/1.1 and HTTP/2, the
/// link-local guard) the proxy and alert deliveries use.
pub type HttpClient = Client<HttpsConnector<HttpConnector<GuardedResolver>>, Body>;

impl Upstream {
    /// The client (cheap to clone).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    /// A client with the configured connect timeout, rustls with the Mozilla roots, HTTP/1.1
    /// and HTTP/2.
    pub fn new(config: &Config) -> Self {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver::new(
            config.allow_link_local_upstreams,
        ));
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout()));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .build(https);
        Upstream {
            client,
            first_byte_timeout: config.first_byte_timeout(),
            idle_timeout: std::time::Duration::from_secs(config.upstream_idle_timeout_secs),
        }
    }
}

/// Where a request for `rest` (the path after `/v1/{code}/`) goes.
pub fn upstream_uri(
    limiter: &Limiter,
    rest: &str,
    query: Option<&str>,
) -> Result<Uri, http::uri::InvalidUri> {
    let base = limiter.base_url.as_str().trim_end_matches('/');
    let rest = rest.trim_start_matches('/');
    let query = query.filter(|q| !q.is_empty());
    // One string, handed to the `Uri` without a copy.
    let mut uri = String::with_capacity(base.len() + rest.len() + 5 + query.map_or(0, str::len));
    uri.push_str(base);
    if limiter.provider == Provider::Openai && !base.ends_with("/v1") {
        uri.push_str("/v1");
    }
    uri.push('/');
    uri.push_str(rest);
    if let Some(q) = query {
        uri.push('?');
        uri.push_str(q);
    }
    Uri::try_from(uri)
}

/// Headers that describe one connection, not the message: never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Remove hop-by-hop headers, and those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually there are none: one look at the names instead of a removal (a hash) per name.
    if !headers
        .keys()
        .any(|name| HOP_BY_HOP.contains(&name.as_str()))
    {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::try_from(name.trim()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The proxy as a Tower service (behind the budget layer, which puts the resolved
/// [`Limiter`] in the request extensions).
#[derive(Clone)]
pub struct ProxyService {
    /// Behind an `Arc`: the service is cloned into every request's future, and the client
    /// inside is several reference counts of its own.
    pub(crate) upstream: std::sync::Arc<Upstream>,
    pub(crate) metrics: std::sync::Arc<Metrics>,
    /// Without the budget layer (BUDGETS_ENABLED=false) the proxy resolves codes itself.
    pub(crate) store: Option<std::sync::Arc<dyn budget_core::BudgetStore>>,
    /// Upstream keys held by the server, sent in place of the client's.
    pub(crate) keys: std::sync::Arc<UpstreamKeys>,
}

/// The client headers that carry an OpenAI or Azure credential (or choose what it bills):
/// removed when the server sends its own key.
const CLIENT_CREDENTIAL_HEADERS: [&str; 4] = [
    "authorization",
    "api-key",
    "openai-organization",
    "openai-project",
];

/// Finds and opens a limiter's upstream key for each request (from the store's memory; the
/// key is decrypted per request and wiped after).
pub struct UpstreamKeys {
    store: std::sync::Arc<dyn budget_core::BudgetStore>,
    sealer: Option<std::sync::Arc<crate::secrets::Sealer>>,
}

impl UpstreamKeys {
    /// Keys from `store`, opened with `sealer` (none: no key can be opened).
    pub fn new(
        store: std::sync::Arc<dyn budget_core::BudgetStore>,
        sealer: Option<std::sync::Arc<crate::secrets::Sealer>>,
    ) -> Self {
        UpstreamKeys { store, sealer }
    }

    /// Replace the client's credential headers with credential `id`'s. `Err` (nothing
    /// changed) when the credential is gone or does not open; the reason is for the log and
    /// never holds the key.
    pub async fn apply(
        &self,
        id: budget_core::CredentialId,
        headers: &mut HeaderMap,
    ) -> Result<(), &'static str> {
        let credential = match self.store.find_credential(id).await {
            Ok(Some(c)) => c,
            Ok(None) => return Err("the limiter's credential does not exist"),
            Err(_) => return Err("the store could not be asked for the credential"),
        };
        let sealer = self.sealer.as_ref().ok_or("SECRETS_KEY is not set")?;
        let key = sealer
            .open(id, &credential.sealed)
            .map_err(|_| "the credential does not decrypt with SECRETS_KEY")?;
        let (name, value) = match credential.kind {
            budget_core::CredentialKind::Openai => {
                let bearer = zeroize::Zeroizing::new(format!("Bearer {}", key.as_str()));
                (header::AUTHORIZATION, HeaderValue::from_str(&bearer))
            }
            budget_core::CredentialKind::Azure => (
                HeaderName::from_static("api-key"),
                HeaderValue::from_str(&key),
            ),
        };
        let mut value = value.map_err(|_| "the stored key is not a valid header value")?;
        value.set_sensitive(true);
        for h in CLIENT_CREDENTIAL_HEADERS {
            headers.remove(h);
        }
        headers.insert(name, value);
        for (h, v) in [
            ("openai-organization", &credential.organization),
            ("openai-project", &credential.project),
        ] {
            if let Some(v) = v.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(HeaderName::from_static(h), v);
            }
        }
        Ok(())
    }
}

impl tower::Service<Request> for ProxyService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

fn error(status: StatusCode, message: &str, kind: &'static str, code: &'static str) -> Response {
    let body = serde_json::json!({"error": {"message": message, "type": kind, "code": code}});
    let mut res = Response::new(Body::from(body.to_string()));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl ProxyService {
    async fn forward(&self, req: Request) -> Response {
        let (mut parts, body) = req.into_parts();
        let mut segments = parts.uri.path().trim_start_matches('/').splitn(3, '/');
        let (_v1, code, rest) = (
            segments.next(),
            segments.next().unwrap_or(""),
            segments.next().unwrap_or(""),
        );
        let limiter = match parts.extensions.remove::<std::sync::Arc<Limiter>>() {
            Some(l) => l, // the budget layer resolved it, and checked the path
            None => match &self.store {
                Some(store) => match store.find_limiter(LimiterRef::Code(code)).await {
                    Ok(Some(l)) if l.is_active => l,
                    Ok(Some(_)) => return Refusal::inactive().into_response(Body::from),
                    Ok(None) => return Refusal::unknown_limiter().into_response(Body::from),
                    Err(_) => return Refusal::store_unavailable().into_response(Body::from),
                },
                None => return Refusal::unknown_limiter().into_response(Body::from),
            },
        };
        if self.store.is_some() {
            // No budget layer (BUDGETS_ENABLED=false): still forward only canonical paths
            // inside the provider's API, as the layer would.
            if let Err(e) = check_canonical(parts.uri.path()) {
                return Refusal::invalid_path(e).into_response(Body::from);
            }
            if classify(limiter.provider, parts.method.as_str(), rest) == ApiRoute::OutsideApi {
                return Refusal::outside_api(limiter.provider).into_response(Body::from);
            }
        }
        let uri = match upstream_uri(&limiter, rest, parts.uri.query()) {
            Ok(u) => u,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "The request path cannot be forwarded",
                    "invalid_request_error",
                    "invalid_path",
                )
            }
        };
        if let Some(id) = limiter.credential_id {
            if let Err(why) = self.keys.apply(id, &mut parts.headers).await {
                tracing::error!(limiter = %limiter.id, credential = %id, reason = why, "upstream key unavailable");
                self.metrics.upstream_error();
                let mut res = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The upstream key this limiter uses is unavailable; an administrator must \
                     fix its credential",
                    "server_error",
                    "upstream_credential_unavailable",
                );
                res.headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
                return res;
            }
        }
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        parts.headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        parts.uri = uri;
        parts.version = http::Version::HTTP_11;
        let req = Request::from_parts(parts, body);

        let started = Instant::now();
        let result = tokio::time::timeout(
            self.upstream.first_byte_timeout,
            self.upstream.client.request(req),
        )
        .await;
        self.metrics.upstream_latency(started.elapsed());
        match result {
            Ok(Ok(res))
                if res.status() == StatusCode::UNAUTHORIZED && limiter.credential_id.is_some() =>
            {
                // The upstream refused the key this server holds. Its error names (part of) that
                // key and would tell the client its own credential is wrong: neither is true to
                // say to the client. The body is dropped unread.
                tracing::error!(
                    limiter = %limiter.id,
                    credential = ?limiter.credential_id,
                    host = limiter.base_url.host_str().unwrap_or(""),
                    "the upstream refused the server-held key (401): rotate the credential"
                );
                self.metrics.upstream_error();
                let mut res = error(
                    StatusCode::BAD_GATEWAY,
                    "The upstream API refused the key this server holds for the limiter; an \
                     administrator must rotate its credential",
                    "server_error",
                    "upstream_credential_rejected",
                );
                res.headers_mut()
                    .insert("x-should-retry", HeaderValue::from_static("false"));
                res
            }
            Ok(Ok(res)) => {
                let (mut head, incoming) = res.into_parts();
                strip_hop_by_hop(&mut head.headers);
                let body = crate::serve::IdleTimeout::new(incoming, self.upstream.idle_timeout);
                Response::from_parts(head, Body::new(body))
            }
            Ok(Err(e)) => {
                let chain = error_chain(&e);
                let cause = UpstreamFailure::of(&e, &chain);
                tracing::warn!(
                    limiter = %limiter.id,
                    host = limiter.base_url.host_str().unwrap_or(""),
                    cause = cause.describe(),
                    error = %chain,
                    "upstream request failed"
                );
                self.metrics.upstream_error();
                error(
                    StatusCode::BAD_GATEWAY,
                    &format!(
                        "The upstream API could not be reached: {}",
                        cause.describe()
                    ),
                    "server_error",
                    "upstream_unreachable",
                )
            }
            Err(_) => {
                tracing::warn!(
                    limiter = %limiter.id,
                    host = limiter.base_url.host_str().unwrap_or(""),
                    timeout_secs = self.upstream.first_byte_timeout.as_secs(),
                    "upstream did not answer in time"
                );
                self.metrics.upstream_error();
                error(
                    StatusCode::GATEWAY_TIMEOUT,
                    "The upstream API did not answer in time",
                    "server_error",
                    "upstream_timeout",
                )
            }
        }
    }
}

/// Why a request to the upstream failed, in words an operator can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UpstreamFailure {
    Dns,
    Refused,
    Tls,
    ConnectTimeout,
    Connect,
    Other,
}

impl UpstreamFailure {
    /// `chain` is [`error_chain`] of `e`, already built for the log.
    fn of(e: &hyper_util::client::legacy::Error, chain: &str) -> Self {
        let chain = chain.to_ascii_lowercase();
        let io_kind = std::iter::successors(Some(e as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .find_map(|e| e.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
        if chain.contains("dns error") || chain.contains("failed to lookup address") {
            UpstreamFailure::Dns
        } else if io_kind == Some(std::io::ErrorKind::ConnectionRefused) {
            UpstreamFailure::Refused
        } else if chain.contains("certificate")
            || chain.contains("tls")
            || chain.contains("handshake")
            || chain.contains("invalid peer")
        {
            UpstreamFailure::Tls
        } else if io_kind == Some(std::io::ErrorKind::TimedOut) || chain.contains("timed out") {
            UpstreamFailure::ConnectTimeout
        } else if e.is_connect() {
            UpstreamFailure::Connect
        } else {
            UpstreamFailure::Other
        }
    }

    fn describe(self) -> &'static str {
        match self {
            UpstreamFailure::Dns => "DNS lookup of the upstream host failed",
            UpstreamFailure::Refused => "the upstream host refused the connection",
            UpstreamFailure::Tls => "TLS handshake with the upstream failed",
            UpstreamFailure::ConnectTimeout => "connecting to the upstream timed out",
            UpstreamFailure::Connect => "connecting to the upstream failed",
            UpstreamFailure::Other => "the upstream connection failed",
        }
    }
}

/// `e: its source: its source…`, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out.push_str(": ");
        out.push_str(&s.to_string());
        next = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use budget_core::{Money, NewLimiter, Period};

    fn limiter(base: &str, provider: Provider) -> Limiter {
        let mut n = NewLimiter::new("t", Money::from_dollars(1), Period::Day, base);
        n.provider = Some(provider);
        Limiter::create(n, chrono::Utc::now()).unwrap()
    }

    #[test]
    fn upstream_paths() {
        let l = limiter("https://api.openai.com", Provider::Openai);
        assert_eq!(
            upstream_uri(&l, "chat/completions", None).unwrap(),
            "https://api.openai.com/v1/chat/completions"
        );
        let l = limiter("https://gw.example.com/openai/v1/", Provider::Openai);
        assert_eq!(
            upstream_uri(&l, "embeddings", None).unwrap(),
            "https://gw.example.com/openai/v1/embeddings"
        );
        let l = limiter("https://x.openai.azure.com", Provider::Azure);
        assert_eq!(
            upstream_uri(&l, "openai/deployments/gpt4o/chat/completions", Some("api-version=2024-10-21")).unwrap(),
            "https://x.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        h.insert("authorization", HeaderValue::from_static("Bearer sk"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("authorization"));
    }
}

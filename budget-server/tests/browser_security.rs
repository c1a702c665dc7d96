//! Browser and deployment defaults: security headers, the dashboard's session cookie and its
//! CSRF check, `METRICS_TOKEN`, and the login throttle behind `TRUSTED_PROXIES` (over a real
//! socket, since the throttle keys on the connection's peer address).

use std::net::SocketAddr;
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use budget_core::MemoryStore;
use budget_server::config::Config;
use budget_server::security_headers::CONTENT_SECURITY_POLICY;
use budget_server::state::AppState;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

mod common;
use common::TestServer;

const GOOD: &str = r#"{"username": "admin", "password": "changeme"}"#;
const BAD: &str = r#"{"username": "admin", "password": "nope"}"#;
const CREATE: &str = r#"{"name": "csrf", "budget_limit": 1, "period_type": "day", "base_url": "https://api.openai.com"}"#;

/// A PHC hash with tiny argon2 costs, so the many logins below stay fast.
fn cheap_hash(password: &str) -> String {
    let params = Params::new(64, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn config() -> Config {
    let mut c = Config::for_tests();
    c.admin_password = cheap_hash("changeme");
    c
}

fn app_with(config: Config) -> Router {
    budget_server::app(AppState::with_store(config, Arc::new(MemoryStore::new()), None).unwrap())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

async fn call(
    app: &Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost:8000");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

fn header<'a>(a: &'a Answer, name: &str) -> Option<&'a str> {
    a.headers.get(name).map(|v| v.to_str().unwrap())
}

/// The `Set-Cookie` line for cookie `name`.
fn set_cookie<'a>(a: &'a Answer, name: &str) -> &'a str {
    a.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", a.headers))
}

/// A cookie's value from its `Set-Cookie` line.
fn cookie_value<'a>(a: &'a Answer, name: &str) -> &'a str {
    let line = set_cookie(a, name);
    line[name.len() + 1..].split(';').next().unwrap()
}

fn assert_browser_headers(a: &Answer, what: &str) {
    assert_eq!(
        header(a, "content-security-policy"),
        Some(CONTENT_SECURITY_POLICY),
        "{what}"
    );
    assert_eq!(header(a, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(a, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(a, "referrer-policy"), Some("no-referrer"), "{what}");
}

#[test]
fn the_policy_allows_no_inline_script_and_no_framing() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split(';').map(str::trim).collect();
    assert!(directives.contains(&"script-src 'self'"));
    assert!(directives.contains(&"frame-ancestors 'none'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-inline"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe-eval"));
}

#[tokio::test]
async fn every_answer_of_the_server_carries_the_browser_headers() {
    let app = app_with(config());
    for path in [
        "/",
        "/login",
        "/statistics",
        "/health",
        "/metrics",
        "/api/nope",
    ] {
        let a = call(&app, Method::GET, path, &[], None).await;
        assert_browser_headers(&a, path);
    }
    // The dashboard's files keep their cache policy; API answers are never stored.
    let shell = call(&app, Method::GET, "/login", &[], None).await;
    assert_eq!(header(&shell, "cache-control"), Some("no-cache"));
    for (method, path, body) in [
        (Method::GET, "/api/limiters", None),
        (Method::POST, "/api/auth/login", Some(BAD)),
        (Method::POST, "/api/auth/login", Some(GOOD)),
        (Method::GET, "/api/openapi.json", None),
    ] {
        let a = call(&app, method, path, &[], body).await;
        assert_browser_headers(&a, path);
        assert_eq!(
            header(&a, "cache-control"),
            Some("no-store"),
            "{path} {}",
            a.status
        );
    }
    // A proxied path keeps the upstream's (here: the layer's refusal) headers as they are.
    let code = "0".repeat(32);
    let a = call(
        &app,
        Method::POST,
        &format!("/v1/{code}/chat/completions"),
        &[],
        Some("{}"),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(header(&a, "content-security-policy"), None);
}

#[tokio::test]
async fn login_sets_an_httponly_strict_session_cookie_and_a_csrf_cookie() {
    let app = app_with(config());
    let a = call(&app, Method::POST, "/api/auth/login", &[], Some(GOOD)).await;
    assert_eq!(a.status, StatusCode::OK);
    // API clients still get the token in the body.
    let token = a.json["token"].as_str().unwrap();
    assert_eq!(cookie_value(&a, "budget_session"), token);
    let session = set_cookie(&a, "budget_session");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/api", "Max-Age=86400"] {
        assert!(session.contains(attr), "{session} lacks {attr}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: {session}");
    let csrf = set_cookie(&a, "budget_csrf");
    assert!(
        csrf.contains("SameSite=Strict") && csrf.contains("Path=/;"),
        "{csrf}"
    );
    assert!(!csrf.contains("HttpOnly"), "the dashboard must read {csrf}");
    assert_eq!(cookie_value(&a, "budget_csrf").len(), 32);
    // A failed login sets nothing.
    let a = call(&app, Method::POST, "/api/auth/login", &[], Some(BAD)).await;
    assert!(a.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn cookies_are_secure_behind_https() {
    let mut c = config();
    c.public_url = Some("https://budget.example.com".into());
    let a = call(
        &app_with(c),
        Method::POST,
        "/api/auth/login",
        &[],
        Some(GOOD),
    )
    .await;
    assert!(set_cookie(&a, "budget_session").ends_with("; Secure"));
    assert!(set_cookie(&a, "budget_csrf").ends_with("; Secure"));
    let a = call(
        &app_with(config()),
        Method::POST,
        "/api/auth/logout",
        &[],
        None,
    )
    .await;
    assert!(!set_cookie(&a, "budget_session").contains("Secure"));
}

#[tokio::test]
async fn cookie_requests_need_the_csrf_header_to_change_anything() {
    let app = app_with(config());
    let login = call(&app, Method::POST, "/api/auth/login", &[], Some(GOOD)).await;
    let token = cookie_value(&login, "budget_session").to_owned();
    let csrf = cookie_value(&login, "budget_csrf").to_owned();
    let cookies = format!("budget_session={token}; budget_csrf={csrf}");

    // Reads need only the cookie.
    let a = call(
        &app,
        Method::GET,
        "/api/limiters",
        &[("cookie", &cookies)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);

    // Writes without the header, with a wrong one, or with a planted cookie pair that does
    // not match the token's claim are refused.
    let planted = "0123456789abcdef0123456789abcdef";
    let forged_cookies = format!("budget_session={token}; budget_csrf={planted}");
    for headers in [
        vec![("cookie", cookies.as_str())],
        vec![("cookie", cookies.as_str()), ("x-csrf-token", "wrong")],
        vec![("cookie", cookies.as_str()), ("x-csrf-token", "")],
        vec![
            ("cookie", forged_cookies.as_str()),
            ("x-csrf-token", planted),
        ],
    ] {
        let a = call(&app, Method::POST, "/api/limiters", &headers, Some(CREATE)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{headers:?}: {}", a.json);
        assert_eq!(a.json["error"]["code"], "csrf_failed");
        assert_eq!(a.json["error"]["type"], "permission_error");
    }
    let a = call(
        &app,
        Method::GET,
        "/api/limiters",
        &[("cookie", &cookies)],
        None,
    )
    .await;
    assert_eq!(
        a.json,
        serde_json::json!([]),
        "a refused write changed something"
    );

    let with_csrf = [
        ("cookie", cookies.as_str()),
        ("x-csrf-token", csrf.as_str()),
    ];
    let a = call(
        &app,
        Method::POST,
        "/api/limiters",
        &with_csrf,
        Some(CREATE),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let id = a.json["id"].as_str().unwrap().to_owned();
    let a = call(
        &app,
        Method::DELETE,
        &format!("/api/limiters/{id}"),
        &[("cookie", &cookies)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = call(
        &app,
        Method::DELETE,
        &format!("/api/limiters/{id}"),
        &with_csrf,
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);

    // Bearer clients are unchanged: no CSRF header, and the cookies are not consulted.
    let bearer = format!("Bearer {token}");
    let a = call(
        &app,
        Method::POST,
        "/api/limiters",
        &[("authorization", &bearer)],
        Some(CREATE),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    let a = call(
        &app,
        Method::GET,
        "/api/limiters",
        &[("authorization", "Bearer nope"), ("cookie", &cookies)],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // A bad cookie is a 401 like a bad bearer token.
    let a = call(
        &app,
        Method::GET,
        "/api/limiters",
        &[("cookie", "budget_session=x.y.z")],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json["error"]["code"], "invalid_token");
}

#[tokio::test]
async fn logout_clears_both_cookies() {
    let app = app_with(config());
    let a = call(&app, Method::POST, "/api/auth/logout", &[], None).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    for name in ["budget_session", "budget_csrf"] {
        let line = set_cookie(&a, name);
        assert!(
            line.starts_with(&format!("{name}=;")) && line.contains("Max-Age=0"),
            "{line}"
        );
    }
    assert!(set_cookie(&a, "budget_session").contains("Path=/api"));
    assert!(set_cookie(&a, "budget_csrf").contains("Path=/;"));
    assert_eq!(header(&a, "cache-control"), Some("no-store"));
}

#[tokio::test]
async fn metrics_token_guards_metrics_when_set() {
    let a = call(&app_with(config()), Method::GET, "/metrics", &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    let mut c = config();
    c.metrics_token = Some("scrape-secret-0123456789".into());
    let app = app_with(c);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer scrape-secret-012345678"),
        Some("scrape-secret-0123456789"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|v| ("authorization", v)).into_iter().collect();
        let a = call(&app, Method::GET, "/metrics", &headers, None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(a.json["error"]["code"], "invalid_token");
    }
    let a = call(
        &app,
        Method::GET,
        "/metrics",
        &[("authorization", "Bearer scrape-secret-0123456789")],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // An empty METRICS_TOKEN leaves /metrics open rather than locking everyone out.
    let mut c = config();
    c.metrics_token = Some(String::new());
    assert_eq!(
        call(&app_with(c), Method::GET, "/metrics", &[], None)
            .await
            .status,
        StatusCode::OK
    );
}

/// A server on a real socket (the test client connects from 127.0.0.1).
async fn serve(config: Config) -> String {
    let state = AppState::with_store(config, Arc::new(MemoryStore::new()), None).unwrap();
    TestServer::serve(state).await.url
}

async fn login(url: &str, body: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    common::send(url, "POST", "/api/auth/login", &all, body)
        .await
        .status
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_throttle_counts_forwarded_clients() {
    let mut c = config();
    c.trusted_proxies = vec!["127.0.0.1/32".into(), "10.0.0.0/8".into()];
    let url = serve(c).await;
    let attacker = [("x-forwarded-for", "198.51.100.1")];
    for _ in 0..5 {
        assert_eq!(login(&url, BAD, &attacker).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&url, GOOD, &attacker).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The real admin, another client behind the same proxy, still gets in.
    let admin = [("x-forwarded-for", "203.0.113.50")];
    assert_eq!(login(&url, GOOD, &admin).await, StatusCode::OK);
    // The attacker cannot pick a fresh bucket: entries left of the proxy's own are the
    // client's word, as is a Forwarded header the proxy did not write.
    for dodge in [
        [
            ("x-forwarded-for", "192.0.2.1, 198.51.100.1"),
            ("x-other", ""),
        ],
        [
            ("x-forwarded-for", "198.51.100.1, 10.0.0.7"),
            ("x-other", ""),
        ],
        [
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=192.0.2.2"),
        ],
    ] {
        assert_eq!(
            login(&url, GOOD, &dodge).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{dodge:?}"
        );
    }
    // The proxy's own address (no forwarding header) is a bucket of its own.
    assert_eq!(login(&url, GOOD, &[]).await, StatusCode::OK);
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let mut c = config();
    c.trusted_proxies = vec!["10.0.0.0/8".into()];
    let url = serve(c).await;
    for i in 0..5 {
        let xff = format!("198.51.100.{i}");
        assert_eq!(
            login(
                &url,
                BAD,
                &[
                    ("x-forwarded-for", &xff),
                    ("forwarded", &format!("for={xff}"))
                ]
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    // Every guess counted against 127.0.0.1, whatever the headers claimed.
    for xff in ["203.0.113.50", "198.51.100.0"] {
        assert_eq!(
            login(&url, GOOD, &[("x-forwarded-for", xff)]).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}

#[tokio::test]
async fn secure_cookies_when_a_trusted_proxy_reports_https() {
    let mut c = config();
    c.trusted_proxies = vec!["10.0.0.0/8".into()];
    let app = app_with(c);
    let req = |peer: &str| {
        let mut r = Request::post("/api/auth/login")
            .header("content-type", "application/json")
            .header("x-forwarded-proto", "https")
            .body(Body::from(GOOD))
            .unwrap();
        r.extensions_mut().insert(axum::extract::ConnectInfo(
            peer.parse::<SocketAddr>().unwrap(),
        ));
        r
    };
    for (peer, secure) in [("10.1.2.3:5000", true), ("192.0.2.9:5000", false)] {
        let res = app.clone().oneshot(req(peer)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookies: Vec<&str> = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies.len(), 2);
        for c in cookies {
            assert_eq!(c.ends_with("; Secure"), secure, "peer {peer}: {c}");
        }
    }
}

//! The admin API through `app(state)` and `oneshot` (no sockets): login and tokens, the
//! seed's walk-through bodies, validation errors, code rotation, statistics, prices and the
//! OpenAPI document.

use budget_core::store::LimiterRef;
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use budget_core::store::UsageRecord;
use budget_core::usage::{Endpoint, Usage};
use budget_core::{LimiterId, MemoryStore, Money};
use budget_server::admin::ROUTES;
use budget_server::app;
use budget_server::config::Config;
use budget_server::state::AppState;
use chrono::{DateTime, TimeDelta, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const SEED_CREATE: &str = r#"{
  "name": "Customer A - $20/day",
  "budget_limit": 20.00,
  "period_type": "day",
  "base_url": "https://api.openai.com"
}"#;

/// A PHC hash with tiny argon2 costs, so tests that log in many times stay fast (the
/// verification uses the parameters written in the hash).
fn cheap_hash(password: &str) -> String {
    let params = Params::new(64, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn state_with(config: Config) -> AppState {
    AppState::with_store(config, Arc::new(MemoryStore::new()), None).unwrap()
}

fn state() -> AppState {
    let mut config = Config::for_tests();
    config.admin_password = cheap_hash("changeme");
    state_with(config)
}

fn token(state: &AppState) -> String {
    state.auth.issue(Utc::now()).unwrap().token
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
    token: Option<&str>,
    body: Option<&str>,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost:8000");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
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
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Answer {
        status,
        headers,
        json,
    }
}

/// Assert the error shape and return `(code, field)`.
fn error_of(a: &Answer) -> (String, Option<String>) {
    let e = &a.json["error"];
    assert!(
        e["message"].is_string() && e["type"].is_string() && e["code"].is_string(),
        "error shape: {}",
        a.json
    );
    (
        e["code"].as_str().unwrap().to_owned(),
        e["field"].as_str().map(str::to_owned),
    )
}

async fn create(app: &Router, t: &str, body: &str) -> Value {
    let a = call(app, Method::POST, "/api/limiters", Some(t), Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.json);
    a.json
}

fn usage(model: Option<&str>, prompt: u64, completion: u64) -> Usage {
    Usage {
        model: model.map(str::to_owned),
        prompt_tokens: prompt,
        completion_tokens: completion,
        ..Usage::default()
    }
}

async fn record(
    state: &AppState,
    limiter: &str,
    at: DateTime<Utc>,
    model: Option<&str>,
    user: Option<&str>,
    cents: i64,
) {
    let id: LimiterId = limiter.parse().unwrap();
    let mut r = UsageRecord::new(
        id,
        at,
        Endpoint::ChatCompletions,
        &usage(model, 100, 50),
        Some(Money::from_cents(cents)),
    );
    r.user = user.map(str::to_owned);
    state.store.record_usage(r).await.unwrap();
}

#[tokio::test]
async fn login_with_the_seed_credentials() {
    // The plain default password, hashed at start.
    let state = state_with(Config::for_tests());
    let app = app(state);
    let a = call(
        &app,
        Method::POST,
        "/api/auth/login",
        None,
        Some(r#"{"username": "admin", "password": "changeme"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["username"], "admin");
    let token = a.json["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let expires: DateTime<Utc> = a.json["expires_at"].as_str().unwrap().parse().unwrap();
    let hours = (expires - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    let a = call(&app, Method::GET, "/api/limiters", Some(token), None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json, json!([]));
}

#[tokio::test]
async fn wrong_credentials_are_401_and_repeated_failures_429() {
    let app = app(state());
    let good = r#"{"username": "admin", "password": "changeme"}"#;
    let bad_password = r#"{"username": "admin", "password": "nope"}"#;
    let bad_user = r#"{"username": "root", "password": "changeme"}"#;

    // A success resets the count.
    for body in [bad_password, bad_user, bad_password] {
        let a = call(&app, Method::POST, "/api/auth/login", None, Some(body)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(error_of(&a).0, "invalid_credentials");
    }
    assert_eq!(
        call(&app, Method::POST, "/api/auth/login", None, Some(good))
            .await
            .status,
        StatusCode::OK
    );

    for _ in 0..5 {
        let a = call(
            &app,
            Method::POST,
            "/api/auth/login",
            None,
            Some(bad_password),
        )
        .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    for body in [bad_password, good] {
        let a = call(&app, Method::POST, "/api/auth/login", None, Some(body)).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.json);
        assert_eq!(error_of(&a).0, "too_many_login_attempts");
        let retry: u64 = a.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=300).contains(&retry), "{retry}");
    }
}

#[tokio::test]
async fn protected_routes_need_a_valid_unexpired_token() {
    let state = state();
    let app = app(state.clone());

    let a = call(&app, Method::GET, "/api/limiters", None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&a).0, "missing_token");
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Bearer");

    let a = call(&app, Method::GET, "/api/stats", Some("not-a-jwt"), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&a).0, "invalid_token");

    let secret = Config::for_tests().jwt_secret.unwrap();
    let sign = |secret: &str, exp: i64| {
        let claims = json!({"sub": "admin", "iat": exp - 3600, "exp": exp});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let expired = sign(&secret, Utc::now().timestamp() - 5);
    let a = call(&app, Method::GET, "/api/limiters", Some(&expired), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&a).0, "token_expired");

    let forged = sign(
        "another-secret-another-secret-another-secret",
        Utc::now().timestamp() + 3600,
    );
    let a = call(&app, Method::GET, "/api/limiters", Some(&forged), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&a).0, "invalid_token");

    let fine = sign(&secret, Utc::now().timestamp() + 3600);
    assert_eq!(
        call(&app, Method::GET, "/api/limiters", Some(&fine), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, "/api/openapi.json", None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_seed_walkthrough() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);

    // Create.
    let l = create(&app, &t, SEED_CREATE).await;
    let id = l["id"].as_str().unwrap().to_owned();
    let code = l["code"].as_str().unwrap().to_owned();
    assert!(id.parse::<LimiterId>().is_ok());
    let hex = code
        .strip_prefix("sk-budget-")
        .expect("new codes are prefixed");
    assert_eq!(hex.len(), 32);
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(l["name"], "Customer A - $20/day");
    assert_eq!(
        l["proxy_endpoint"],
        format!("http://localhost:8000/v1/{code}")
    );
    assert_eq!(l["budget_limit"], json!(20.0));
    assert_eq!(l["period_type"], "day");
    assert_eq!(l["timezone"], "UTC");
    assert_eq!(l["base_url"], "https://api.openai.com/");
    assert_eq!(
        (&l["provider"], &l["mode"], &l["unpriced"]),
        (&json!("openai"), &json!("soft"), &json!("admit"))
    );
    assert_eq!(l["is_active"], true);
    assert_eq!(l["deleted_at"], Value::Null);
    assert_eq!(
        (
            &l["current_spend"],
            &l["remaining_budget"],
            &l["usage_percentage"]
        ),
        (&json!(0.0), &json!(20.0), &json!(0.0))
    );
    let start: DateTime<Utc> = l["period_start"].as_str().unwrap().parse().unwrap();
    let end: DateTime<Utc> = l["period_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end - start, TimeDelta::days(1));
    assert!(l["created_at"].is_string() && l["updated_at"].is_string());

    // List and get.
    let a = call(&app, Method::GET, "/api/limiters", Some(&t), None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json.as_array().unwrap().len(), 1);
    assert_eq!(a.json[0]["id"], id.as_str());
    assert_eq!(a.json[0]["proxy_endpoint"], l["proxy_endpoint"]);
    let a = call(
        &app,
        Method::GET,
        &format!("/api/limiters/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!((a.status, &a.json["code"]), (StatusCode::OK, &json!(code)));

    // Stats, after $5.25 of usage.
    record(&state, &id, Utc::now(), Some("gpt-4o"), Some("alice"), 525).await;
    let a = call(
        &app,
        Method::GET,
        &format!("/api/limiters/{id}/stats"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let s = &a.json;
    for field in [
        "limiter_id",
        "limiter_name",
        "current_spend",
        "budget_limit",
        "remaining_budget",
        "usage_percentage",
        "total_requests",
        "period_start",
        "period_end",
    ] {
        assert!(!s[field].is_null(), "missing {field}: {s}");
    }
    assert_eq!(s["limiter_id"], id.as_str());
    assert_eq!(s["limiter_name"], "Customer A - $20/day");
    assert_eq!(
        (&s["current_spend"], &s["budget_limit"]),
        (&json!(5.25), &json!(20.0))
    );
    assert_eq!(
        (&s["remaining_budget"], &s["usage_percentage"]),
        (&json!(14.75), &json!(26.25))
    );
    assert_eq!(s["total_requests"], 1);
    assert_eq!(
        (
            &s["prompt_tokens"],
            &s["completion_tokens"],
            &s["total_tokens"]
        ),
        (&json!(100), &json!(50), &json!(150))
    );
    assert_eq!(s["period_start"], l["period_start"]);

    // Partial update, the seed's body.
    let body = r#"{"name": "Customer A - $30/day", "budget_limit": 30.00, "is_active": true}"#;
    let a = call(
        &app,
        Method::PUT,
        &format!("/api/limiters/{id}"),
        Some(&t),
        Some(body),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(
        (&a.json["name"], &a.json["budget_limit"]),
        (&json!("Customer A - $30/day"), &json!(30.0))
    );
    assert_eq!(
        (&a.json["period_type"], &a.json["code"]),
        (&json!("day"), &json!(code))
    );
    assert_eq!(
        (&a.json["current_spend"], &a.json["remaining_budget"]),
        (&json!(5.25), &json!(24.75))
    );
    let stored = state
        .store
        .get_limiter(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.budget_limit, Money::from_dollars(30));
    let a = call(
        &app,
        Method::PUT,
        &format!("/api/limiters/{id}"),
        Some(&t),
        Some(r#"{"is_active": false}"#),
    )
    .await;
    assert_eq!(
        (a.status, &a.json["is_active"]),
        (StatusCode::OK, &json!(false))
    );

    // Delete: gone from the API and the proxy.
    let a = call(
        &app,
        Method::DELETE,
        &format!("/api/limiters/{id}"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    for path in [
        format!("/api/limiters/{id}"),
        format!("/api/limiters/{id}/stats"),
    ] {
        let a = call(&app, Method::GET, &path, Some(&t), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_of(&a).0, "not_found");
    }
    assert!(state
        .store
        .find_limiter(LimiterRef::Code(&code))
        .await
        .unwrap()
        .is_none());
    let a = call(&app, Method::GET, &format!("/v1/{code}/budget"), None, None).await;
    assert_ne!(a.status, StatusCode::OK);
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/api/limiters/{id}"),
            Some(&t),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );
    let a = call(
        &app,
        Method::PUT,
        &format!("/api/limiters/{id}"),
        Some(&t),
        Some(r#"{"name": "x"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(
        call(&app, Method::GET, "/api/limiters", Some(&t), None)
            .await
            .json,
        json!([])
    );
    let a = call(
        &app,
        Method::GET,
        "/api/limiters?include_deleted=true",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.json.as_array().unwrap().len(), 1);
    assert!(a.json[0]["deleted_at"].is_string());

    // Purge removes it entirely.
    let a = call(
        &app,
        Method::DELETE,
        &format!("/api/limiters/{id}?purge=true"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(state
        .store
        .get_limiter(id.parse().unwrap())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    for path in [
        format!("/api/limiters/{}", LimiterId::new()),
        "/api/limiters/not-a-uuid".to_owned(),
    ] {
        let a = call(&app, Method::GET, &path, Some(&t), None).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_of(&a).0, "not_found");
    }
    let a = call(
        &app,
        Method::POST,
        &format!("/api/limiters/{}/rotate-code", LimiterId::new()),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_bodies_name_the_field() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    let cases = [
        (
            r#"{"name": "A", "budget_limit": -1, "period_type": "day", "base_url": "https://api.openai.com"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "budget_limit",
        ),
        (
            r#"{"name": "A", "budget_limit": 0, "period_type": "day"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "budget_limit",
        ),
        (
            r#"{"name": "A", "budget_limit": 20, "period_type": "fortnight", "base_url": "https://api.openai.com"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "period_type",
        ),
        (
            r#"{"name": "A", "budget_limit": 20, "period_type": "day", "colour": "red"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            r#"{"budget_limit": 20, "period_type": "day"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            r#"{"name": "A", "budget_limit": true, "period_type": "day"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "budget_limit",
        ),
        (
            r#"{"name": "A", "budget_limit": "abc", "period_type": "day"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "budget_limit",
        ),
        (
            r#"{"name": "  ", "budget_limit": 20, "period_type": "day"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            r#"{"name": "A", "budget_limit": 20, "period_type": "day", "base_url": "ftp://x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "base_url",
        ),
        (
            r#"{"name": "A", "budget_limit": 20, "period_type": "day", "mode": "harsh"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "mode",
        ),
        (
            r#"{"name": "A", "budget_limit": 20, "period_type": "day", "timezone": "Mars/Olympus"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "timezone",
        ),
    ];
    for (body, status, field) in cases {
        let a = call(&app, Method::POST, "/api/limiters", Some(&t), Some(body)).await;
        assert_eq!(a.status, status, "{body}: {}", a.json);
        let (_, f) = error_of(&a);
        assert_eq!(f.as_deref(), Some(field), "{body}: {}", a.json);
        assert!(
            a.json["error"]["message"].as_str().unwrap().contains(field),
            "{}",
            a.json
        );
    }
    let a = call(
        &app,
        Method::POST,
        "/api/limiters",
        Some(&t),
        Some(r#"{"name": "A", "budget_limit": -1, "period_type": "day"}"#),
    )
    .await;
    assert_eq!(error_of(&a).0, "validation_failed");
    assert_eq!(
        a.json["error"]["message"],
        "budget_limit: must be greater than 0"
    );

    let a = call(
        &app,
        Method::POST,
        "/api/limiters",
        Some(&t),
        Some(r#"{"name": "A", "#),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&a).0, "invalid_json");
    let a = call(
        &app,
        Method::POST,
        "/api/limiters",
        Some(&t),
        Some("[1, 2]"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);

    let req = Request::post("/api/limiters")
        .header(header::AUTHORIZATION, format!("Bearer {t}"))
        .body(Body::from(SEED_CREATE))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );

    // Nothing was created by the bad bodies.
    assert!(state.store.list_limiters(true).await.unwrap().is_empty());

    // PUT: the same rules.
    let l = create(&app, &t, SEED_CREATE).await;
    let path = format!("/api/limiters/{}", l["id"].as_str().unwrap());
    for (body, field) in [
        (r#"{"budget_limit": -1}"#, "budget_limit"),
        (r#"{"period_type": "fortnight"}"#, "period_type"),
        (r#"{"colour": "red"}"#, "colour"),
        (r#"{"is_active": "yes"}"#, "is_active"),
    ] {
        let a = call(&app, Method::PUT, &path, Some(&t), Some(body)).await;
        assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(error_of(&a).1.as_deref(), Some(field), "{body}: {}", a.json);
    }
    let a = call(&app, Method::GET, &path, Some(&t), None).await;
    assert_eq!(a.json["budget_limit"], json!(20.0));
}

#[tokio::test]
async fn create_defaults_and_options() {
    let mut config = Config::for_tests();
    config.admin_password = cheap_hash("changeme");
    config.openai_api_base_url = "http://upstream.test:9000".into();
    config.public_url = Some("https://budget.example.com/".into());
    let state = state_with(config);
    let app = app(state.clone());
    let t = token(&state);
    let l = create(
        &app,
        &t,
        r#"{"name": "B", "budget_limit": "1.50", "period_type": "month"}"#,
    )
    .await;
    assert_eq!(l["base_url"], "http://upstream.test:9000/");
    assert_eq!(l["budget_limit"], json!(1.5));
    let code = l["code"].as_str().unwrap();
    assert_eq!(
        l["proxy_endpoint"],
        format!("https://budget.example.com/v1/{code}")
    );
    let body = r#"{"name": "Az", "budget_limit": 5, "period_type": "week", "base_url": "https://x.openai.azure.com",
        "provider": "azure", "mode": "strict", "unpriced": "refuse", "is_active": false, "timezone": "Europe/Paris"}"#;
    let l = create(&app, &t, body).await;
    assert_eq!(
        (&l["provider"], &l["mode"], &l["unpriced"]),
        (&json!("azure"), &json!("strict"), &json!("refuse"))
    );
    assert_eq!(
        (&l["is_active"], &l["timezone"]),
        (&json!(false), &json!("Europe/Paris"))
    );
}

#[tokio::test]
async fn rotate_code_retires_the_old_code() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    let l = create(&app, &t, SEED_CREATE).await;
    let (id, old) = (l["id"].as_str().unwrap(), l["code"].as_str().unwrap());
    assert!(state
        .store
        .find_limiter(LimiterRef::Code(old))
        .await
        .unwrap()
        .is_some());
    let a = call(
        &app,
        Method::POST,
        &format!("/api/limiters/{id}/rotate-code"),
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    let new = a.json["code"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(a.json["id"], id);
    assert_eq!(
        a.json["proxy_endpoint"],
        format!("http://localhost:8000/v1/{new}")
    );
    assert!(state
        .store
        .find_limiter(LimiterRef::Code(old))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        state
            .store
            .find_limiter(LimiterRef::Code(new))
            .await
            .unwrap()
            .unwrap()
            .id
            .to_string(),
        id
    );
    assert_ne!(
        call(&app, Method::GET, &format!("/v1/{old}/budget"), None, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        call(&app, Method::GET, &format!("/v1/{new}/budget"), None, None)
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn statistics_after_usage() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    let a = create(
        &app,
        &t,
        r#"{"name": "Team A", "budget_limit": 100, "period_type": "month"}"#,
    )
    .await;
    let b = create(
        &app,
        &t,
        r#"{"name": "Team B", "budget_limit": 50, "period_type": "month"}"#,
    )
    .await;
    let c = create(
        &app,
        &t,
        r#"{"name": "Idle", "budget_limit": 5, "period_type": "day"}"#,
    )
    .await;
    let (a_id, b_id, c_id) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    let h0: DateTime<Utc> = "2025-10-10T10:15:00Z".parse().unwrap();
    record(&state, a_id, h0, Some("gpt-4o"), Some("alice"), 100).await;
    record(
        &state,
        a_id,
        h0 + TimeDelta::minutes(30),
        Some("gpt-4o-mini"),
        Some("bob"),
        50,
    )
    .await;
    record(
        &state,
        b_id,
        h0 + TimeDelta::minutes(50),
        Some("gpt-4o"),
        Some("alice"),
        200,
    )
    .await;
    record(&state, b_id, h0 + TimeDelta::days(1), None, None, 25).await;
    // B is deleted; its usage still counts.
    assert_eq!(
        call(
            &app,
            Method::DELETE,
            &format!("/api/limiters/{b_id}"),
            Some(&t),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    let s = call(&app, Method::GET, "/api/stats", Some(&t), None).await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.json);
    let s = s.json;
    assert_eq!(
        (&s["total_requests"], &s["total_tokens"], &s["total_cost"]),
        (&json!(4), &json!(600), &json!(3.75))
    );
    assert_eq!(s["active_users"], 2);
    for f in ["unpriced_requests", "estimated_requests", "error_requests"] {
        assert_eq!(s[f], 0, "{f}");
    }
    let rows = s["limiters"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{s}");
    assert_eq!(rows[0]["limiter_id"], b_id);
    assert_eq!(
        (
            &rows[0]["limiter_name"],
            &rows[0]["is_deleted"],
            &rows[0]["is_active"]
        ),
        (&json!("Team B"), &json!(true), &json!(false))
    );
    assert_eq!(
        (
            &rows[0]["requests"],
            &rows[0]["cost"],
            &rows[0]["total_tokens"]
        ),
        (&json!(2), &json!(2.25), &json!(300))
    );
    assert_eq!(
        (
            &rows[1]["limiter_name"],
            &rows[1]["cost"],
            &rows[1]["is_deleted"]
        ),
        (&json!("Team A"), &json!(1.5), &json!(false))
    );
    assert_eq!(
        (
            &rows[2]["limiter_id"],
            &rows[2]["requests"],
            &rows[2]["cost"]
        ),
        (&json!(c_id), &json!(0), &json!(0.0))
    );
    for f in ["current_spend", "budget_limit", "usage_percentage"] {
        assert!(rows[1][f].is_number(), "{f}");
    }

    // The range and limiter filters.
    let s = call(
        &app,
        Method::GET,
        "/api/stats?from=2025-10-10T00:00:00Z&to=2025-10-11T00:00:00Z",
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(
        (&s["total_requests"], &s["total_cost"]),
        (&json!(3), &json!(3.5))
    );
    let s = call(
        &app,
        Method::GET,
        &format!("/api/stats?limiter_id={a_id}"),
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(
        (
            &s["total_requests"],
            &s["limiters"].as_array().unwrap().len()
        ),
        (&json!(2), &1)
    );

    // Breakdowns.
    let m = call(
        &app,
        Method::GET,
        "/api/stats/breakdown?by=model",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.json);
    let m = m.json;
    assert_eq!(
        (
            &m[0]["key"],
            &m[0]["label"],
            &m[0]["requests"],
            &m[0]["cost"]
        ),
        (&json!("gpt-4o"), &json!("gpt-4o"), &json!(2), &json!(3.0))
    );
    assert_eq!(
        (
            &m[0]["prompt_tokens"],
            &m[0]["completion_tokens"],
            &m[0]["total_tokens"]
        ),
        (&json!(200), &json!(100), &json!(300))
    );
    assert_eq!(m[0]["unpriced_requests"], 0);
    assert_eq!(m.as_array().unwrap().len(), 3);
    let none = m
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"].is_null())
        .unwrap();
    assert_eq!(none["label"], "(none)");
    let u = call(
        &app,
        Method::GET,
        "/api/stats/breakdown?by=user&limit=1",
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(u.as_array().unwrap().len(), 1);
    assert_eq!(
        (&u[0]["key"], &u[0]["cost"]),
        (&json!("alice"), &json!(3.0))
    );
    let l = call(
        &app,
        Method::GET,
        "/api/stats/breakdown?by=limiter",
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(
        (&l[0]["key"], &l[0]["label"]),
        (&json!(b_id), &json!("Team B"))
    );
    assert_eq!(
        (&l[1]["key"], &l[1]["label"]),
        (&json!(a_id), &json!("Team A"))
    );

    // Time series.
    let q = "from=2025-10-10T00:00:00Z&to=2025-10-12T00:00:00Z";
    let h = call(
        &app,
        Method::GET,
        &format!("/api/stats/timeseries?bucket=hour&{q}"),
        Some(&t),
        None,
    )
    .await
    .json;
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(
        h[0]["start"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        "2025-10-10T10:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        (&h[0]["requests"], &h[0]["cost"], &h[0]["total_tokens"]),
        (&json!(2), &json!(1.5), &json!(300))
    );
    let d = call(
        &app,
        Method::GET,
        &format!("/api/stats/timeseries?bucket=day&{q}"),
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(d.as_array().unwrap().len(), 2);
    let m = call(
        &app,
        Method::GET,
        &format!("/api/stats/timeseries?bucket=minute&{q}"),
        Some(&t),
        None,
    )
    .await
    .json;
    assert_eq!(m.as_array().unwrap().len(), 4);

    // Recent usage.
    let r = call(
        &app,
        Method::GET,
        "/api/usage/recent?limit=2",
        Some(&t),
        None,
    )
    .await
    .json;
    let r = r.as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (&r[0]["limiter_name"], &r[0]["cost"], &r[0]["total_tokens"]),
        (&json!("Team B"), &json!(0.25), &json!(150))
    );
    assert_eq!(
        (&r[1]["model"], &r[1]["user"]),
        (&json!("gpt-4o"), &json!("alice"))
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_them() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    for (uri, field) in [
        ("/api/stats/timeseries?bucket=week", "bucket"),
        ("/api/stats/breakdown?by=colour", "by"),
        ("/api/stats/breakdown?limit=5000", "limit"),
        ("/api/stats/breakdown?limit=0", "limit"),
        ("/api/usage/recent?limit=many", "limit"),
        ("/api/stats?from=yesterday", "from"),
        ("/api/stats?to=2025-13-01T00:00:00Z", "to"),
        (
            "/api/stats?from=2025-10-11T00:00:00Z&to=2025-10-10T00:00:00Z",
            "to",
        ),
        ("/api/stats?limiter_id=xyz", "limiter_id"),
        ("/api/limiters?include_deleted=maybe", "include_deleted"),
    ] {
        let a = call(&app, Method::GET, uri, Some(&t), None).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}: {}", a.json);
        assert_eq!(
            error_of(&a),
            ("invalid_parameter".to_owned(), Some(field.to_owned())),
            "{uri}"
        );
    }
    let a = call(
        &app,
        Method::GET,
        "/api/stats/breakdown?limit=1000",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn pricing_lists_the_table_in_force() {
    let state = state();
    let app = app(state.clone());
    let a = call(
        &app,
        Method::GET,
        "/api/pricing",
        Some(&token(&state)),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let models = a.json["models"].as_array().unwrap();
    assert!(models.len() > 10);
    let gpt4o = models.iter().find(|m| m["name"] == "gpt-4o").unwrap();
    assert_eq!(
        (&gpt4o["input"], &gpt4o["output"]),
        (&json!(2.5), &json!(10.0))
    );
    assert_eq!(gpt4o["cached_input"], json!(1.25));
    assert!(a.json.get("source").is_some());
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let state = state();
    let app = app(state);
    let a = call(&app, Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    let doc = a.json;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );

    // Every route the router serves is in the document (admin routes under `/api`) ...
    let routes: Vec<(&str, String)> = ROUTES
        .iter()
        .map(|(m, p)| (*m, format!("/api{p}")))
        .chain(
            budget_server::ops::ROUTES
                .iter()
                .map(|(m, p)| (*m, p.to_string())),
        )
        .collect();
    for (method, path) in &routes {
        let op = &doc["paths"][path.as_str()][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {path} missing from openapi.json");
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
        if matches!(*method, "POST" | "PUT")
            && !path.ends_with("rotate-code")
            && !path.ends_with("logout")
        {
            assert!(
                op["requestBody"].is_object(),
                "{method} {path} has no request body"
            );
        }
        // ... and the router does serve it (a fallback would be 404, a wrong method 405).
        let uri = path
            .replace("{id}", &LimiterId::new().to_string())
            .replace("{code}", "0123456789abcdef0123456789abcdef");
        let body = (*method == "POST" || *method == "PUT").then_some("{}");
        let answer = call(&app, method.parse().unwrap(), &uri, None, body).await;
        // (An unknown limiter code is a 404 in OpenAI's error shape, not the fallback's; the
        // dashboard's fallback answers other GETs with its HTML page.)
        let html = answer
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
        let routed = !html
            && (answer.status != StatusCode::NOT_FOUND
                || answer.json["error"]["code"] == "limiter_not_found");
        assert!(
            routed && answer.status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri}: {}",
            answer.status
        );
    }
    // ... and nothing else is.
    let mut documented = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "parameters")
        {
            documented += 1;
            assert!(
                routes
                    .iter()
                    .any(|(m, p)| p == path && m.eq_ignore_ascii_case(method)),
                "{method} {path} documented but not routed"
            );
        }
    }
    assert_eq!(documented, routes.len());

    // Every $ref resolves.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
}

#[tokio::test]
async fn metadata_upstreams_are_refused_and_the_unmetered_policy_is_a_limiter_setting() {
    let state = state();
    let app = app(state.clone());
    let t = token(&state);
    for base in [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]",
        "http://[fe80::1]:8080",
    ] {
        let body = format!(
            r#"{{"name": "meta", "budget_limit": 1, "period_type": "day", "base_url": "{base}"}}"#
        );
        let a = call(&app, Method::POST, "/api/limiters", Some(&t), Some(&body)).await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{base}: {}",
            a.json
        );
        let (_, field) = error_of(&a);
        assert_eq!(field.as_deref(), Some("base_url"));
        assert!(a.json.to_string().contains("ALLOW_LINK_LOCAL_UPSTREAMS"));
    }
    let l = create(
        &app,
        &t,
        r#"{"name": "ok", "budget_limit": 1, "period_type": "day", "base_url": "http://127.0.0.1:9", "unmetered_endpoints": "allow"}"#,
    )
    .await;
    assert_eq!(l["unmetered_endpoints"], "allow");
    let id = l["id"].as_str().unwrap();
    let uri = format!("/api/limiters/{id}");
    let a = call(
        &app,
        Method::PUT,
        &uri,
        Some(&t),
        Some(r#"{"base_url": "http://169.254.169.254"}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.json);
    // `null` returns the limiter to the server's setting; an absent field keeps it.
    let a = call(
        &app,
        Method::PUT,
        &uri,
        Some(&t),
        Some(r#"{"name": "renamed"}"#),
    )
    .await;
    assert_eq!(a.json["unmetered_endpoints"], "allow");
    let a = call(
        &app,
        Method::PUT,
        &uri,
        Some(&t),
        Some(r#"{"unmetered_endpoints": null}"#),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["unmetered_endpoints"], Value::Null);

    // With the server's permission they are accepted.
    let mut config = Config::for_tests();
    config.admin_password = cheap_hash("changeme");
    config.allow_link_local_upstreams = true;
    let state = state_with(config);
    let open = budget_server::app(state.clone());
    create(
        &open,
        &token(&state),
        r#"{"name": "meta", "budget_limit": 1, "period_type": "day", "base_url": "http://169.254.169.254"}"#,
    )
    .await;
}

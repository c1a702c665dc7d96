//! The committed `budget-server/openapi.json` is the document the server generates and serves.
//! The dashboard's TypeScript types are generated from that file, so a stale copy means stale
//! types: regenerate with `UPDATE_OPENAPI=1 cargo test -p budget-server --test openapi`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request};
use axum::Router;
use budget_core::store::UsageRecord;
use budget_core::usage::{Endpoint, Usage};
use budget_core::{LimiterId, MemoryStore, Money};
use budget_server::admin::openapi::document_json;
use budget_server::app;
use budget_server::config::Config;
use budget_server::state::AppState;
use chrono::Utc;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

#[test]
fn committed_document_is_current() {
    let generated = document_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test -p budget-server --test \
         openapi`, then the dashboard's types with `npm run gen:api` in budget-server/dashboard",
        path.display()
    );
}

#[test]
fn document_is_openapi_3_1_with_every_schema_it_refers_to() {
    let doc: Value = serde_json::from_str(&document_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Money",
        "Limiter",
        "LimiterCreate",
        "LimiterUpdate",
        "Error",
        "Period",
    ] {
        assert!(schemas.contains_key(name), "no {name} schema");
    }
    // Money is a JSON number at the edge, never a string.
    let limiter = serde_json::to_string(&doc["components"]["schemas"]["LimiterRecord"]).unwrap();
    assert!(limiter.contains(r##""budget_limit":{"$ref":"#/components/schemas/Money""##));
}

/// What is wrong with `value` under `schema`, for the subset of JSON Schema the document uses
/// (`$ref`, `allOf`, `oneOf`, `type`, `enum`, `required`, `properties`,
/// `additionalProperties: false`, `items`).
fn problems(doc: &Value, value: &Value, schema: &Value, at: &str) -> Vec<String> {
    if let Some(r) = schema["$ref"].as_str() {
        let target = doc
            .pointer(r.trim_start_matches('#'))
            .expect("a $ref that resolves");
        return problems(doc, value, target, at);
    }
    let mut out = Vec::new();
    for s in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(problems(doc, value, s, at));
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let matching = alternatives
            .iter()
            .filter(|s| problems(doc, value, s, at).is_empty())
            .count();
        if matching != 1 {
            out.push(format!(
                "{at}: matches {matching} of the oneOf alternatives"
            ));
        }
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let allowed = types.is_empty()
        || types.contains(&kind)
        || (kind == "integer" && types.contains(&"number"));
    if !allowed {
        out.push(format!("{at}: {kind}, expected {types:?}"));
        return out;
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            out.push(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let Value::Object(fields) = value {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !fields.contains_key(name) {
                out.push(format!("{at}.{name}: missing"));
            }
        }
        for (name, v) in fields {
            match schema["properties"].get(name) {
                Some(s) => out.extend(problems(doc, v, s, &format!("{at}.{name}"))),
                None if schema["additionalProperties"] == Value::Bool(false) => {
                    out.push(format!("{at}.{name}: not in the schema"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            out.extend(problems(doc, v, s, &format!("{at}[{i}]")));
        }
    }
    out
}

struct Client {
    app: Router,
    token: String,
    doc: Value,
    checked: usize,
}

impl Client {
    /// Send a request and check the answer against the operation's documented response for
    /// its status; returns the JSON body.
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        uri: &str,
        body: Option<Value>,
    ) -> Value {
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::HOST, "localhost:8000")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
            .unwrap();
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status().as_u16().to_string();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let op = &self.doc["paths"][template][method.as_str().to_ascii_lowercase()];
        let answer = &op["responses"][&status];
        assert!(
            answer.is_object(),
            "{method} {uri}: {status} is not documented"
        );
        let Some(schema) = answer["content"]["application/json"].get("schema") else {
            assert!(bytes.is_empty() || !content_type.starts_with("application/json"));
            return Value::Null;
        };
        assert!(
            content_type.starts_with("application/json"),
            "{method} {uri}: {content_type}"
        );
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let found = problems(&self.doc, &value, schema, "$");
        assert!(
            found.is_empty(),
            "{method} {uri} {status}: {found:#?}\n{value}"
        );
        self.checked += 1;
        value
    }
}

/// The server's answers (with data in them: a limiter, usage with and without a model or
/// user, prices) have the shapes the document gives them. schemathesis does the same from
/// outside in CI (`scripts/schemathesis.sh`); this keeps `cargo test` honest without it.
#[tokio::test]
async fn answers_match_the_document() {
    let mut config = Config::for_tests();
    config.admin_password = "changeme".into();
    let state = AppState::with_store(config, Arc::new(MemoryStore::new()), None).unwrap();
    let token = state.auth.issue(Utc::now()).unwrap().token;
    let doc: Value = serde_json::from_str(&document_json()).unwrap();
    let mut c = Client {
        app: app(state.clone()),
        token,
        doc,
        checked: 0,
    };
    let limiter = c
        .call(
            Method::POST,
            "/api/limiters",
            "/api/limiters",
            Some(
                json!({"name": "A", "budget_limit": "20.00", "period_type": "month",
                "timezone": "Europe/Berlin", "mode": "strict", "unmetered_endpoints": "allow"}),
            ),
        )
        .await;
    let id = limiter["id"].as_str().unwrap().to_owned();
    let code = limiter["code"].as_str().unwrap().to_owned();
    let limiter_id: LimiterId = id.parse().unwrap();
    for (model, user, cents) in [(Some("gpt-4o"), Some("u1"), 125), (None, None, 0)] {
        let usage = Usage {
            model: model.map(str::to_owned),
            prompt_tokens: 100,
            completion_tokens: 50,
            ..Usage::default()
        };
        let mut r = UsageRecord::new(
            limiter_id,
            Utc::now(),
            Endpoint::ChatCompletions,
            &usage,
            (cents > 0).then(|| Money::from_cents(cents)),
        );
        r.user = user.map(str::to_owned);
        state.store.record_usage(r).await.unwrap();
    }
    let one = format!("/api/limiters/{id}");
    let t = "/api/limiters/{id}";
    c.call(
        Method::GET,
        "/api/limiters",
        "/api/limiters?include_deleted=true",
        None,
    )
    .await;
    c.call(Method::GET, t, &one, None).await;
    c.call(
        Method::PUT,
        t,
        &one,
        Some(json!({"unmetered_endpoints": null, "is_active": false})),
    )
    .await;
    c.call(Method::PUT, t, &one, Some(json!({"budget_limit": 0})))
        .await;
    c.call(Method::PUT, t, &one, Some(json!({"colour": "red"})))
        .await;
    c.call(
        Method::GET,
        "/api/limiters/{id}/stats",
        &format!("{one}/stats"),
        None,
    )
    .await;
    c.call(Method::GET, "/api/stats", "/api/stats", None).await;
    c.call(Method::GET, "/api/stats", "/api/stats?from=yesterday", None)
        .await;
    c.call(
        Method::GET,
        "/api/stats/timeseries",
        "/api/stats/timeseries?bucket=day",
        None,
    )
    .await;
    for by in ["model", "user", "limiter"] {
        let uri = format!("/api/stats/breakdown?by={by}");
        c.call(Method::GET, "/api/stats/breakdown", &uri, None)
            .await;
    }
    let recent = c
        .call(Method::GET, "/api/usage/recent", "/api/usage/recent", None)
        .await;
    assert_eq!(recent.as_array().unwrap().len(), 2);
    let pricing = c
        .call(Method::GET, "/api/pricing", "/api/pricing", None)
        .await;
    assert!(!pricing["models"].as_array().unwrap().is_empty());
    c.call(Method::GET, "/health", "/health", None).await;
    let budget = format!("/v1/{code}/budget");
    c.call(Method::GET, "/v1/{code}/budget", &budget, None)
        .await;
    c.call(
        Method::POST,
        "/api/limiters/{id}/rotate-code",
        &format!("{one}/rotate-code"),
        None,
    )
    .await;
    c.call(Method::GET, "/v1/{code}/budget", &budget, None)
        .await;
    c.call(Method::DELETE, t, &one, None).await;
    c.call(Method::GET, t, &one, None).await;
    c.token = "not-a-token".into();
    c.call(Method::GET, "/api/limiters", "/api/limiters", None)
        .await;
    assert_eq!(c.checked, 21, "JSON answers checked");

    // The checker itself sees a wrong shape.
    let limiter = json!({"$ref": "#/components/schemas/Limiter"});
    let found = problems(
        &c.doc,
        &json!({"id": "x", "budget_limit": "20"}),
        &limiter,
        "$",
    );
    assert!(found.contains(&"$.name: missing".to_owned()), "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("$.budget_limit: string")),
        "{found:?}"
    );
}

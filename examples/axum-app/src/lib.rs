//! An existing Axum application — its own routes, its own API-key auth — that puts one route
//! group (`/ai/...`, an OpenAI-compatible endpoint it serves itself) behind
//! [`budget_tower::BudgetLayer`], spending from the signed-in user's limiter.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use budget_core::pricing::PriceTable;
use budget_core::{BudgetStore, LimiterId};
use budget_tower::{BudgetLayer, LimiterKey};
use serde_json::{json, Value};

/// A signed-in user of the app.
#[derive(Debug, Clone)]
pub struct User {
    /// Display name.
    pub name: String,
    /// The budget this user spends from.
    pub limiter: LimiterId,
}

/// The app's users by API key.
pub type Users = Arc<HashMap<String, User>>;

/// The whole app.
pub fn app(store: Arc<dyn BudgetStore>, users: Users) -> Router {
    // The budgeted group: the limiter is the signed-in user's (set by `auth` below).
    let ai = Router::new()
        .route("/ai/v1/chat/completions", post(chat))
        .layer(
            BudgetLayer::new(store, PriceTable::builtin()).with_resolver(|parts| {
                parts
                    .extensions
                    .get::<User>()
                    .map(|u| LimiterKey::Id(u.limiter))
            }),
        );
    Router::new()
        .route("/me", get(me))
        .merge(ai)
        // Outermost: the app's own auth runs before the budget layer.
        .layer(middleware::from_fn_with_state(users, auth))
        .route(
            "/",
            get(|| async {
                "Hello from an app with budgets. Try GET /me or POST /ai/v1/chat/completions\n"
            }),
        )
}

/// The app's own auth: `Authorization: Bearer <api key>`.
async fn auth(State(users): State<Users>, mut req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match key.and_then(|k| users.get(k)) {
        Some(user) => {
            req.extensions_mut().insert(user.clone());
            next.run(req).await
        }
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "unknown API key", "type": "invalid_request_error", "code": "invalid_api_key"}}))).into_response(),
    }
}

async fn me(Extension(user): Extension<User>) -> Json<Value> {
    Json(json!({ "name": user.name, "limiter": user.limiter }))
}

/// The app's own OpenAI-compatible chat endpoint: an echo "model" that reports usage the way
/// OpenAI does (JSON, or SSE with a usage chunk when `stream_options.include_usage` is set —
/// which the budget layer asks for on the client's behalf).
async fn chat(Json(req): Json<Value>) -> Response {
    let model = req["model"].as_str().unwrap_or("gpt-4o-mini").to_owned();
    let said = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let words: Vec<String> = format!("You said: {said}")
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let prompt_tokens = said.split_whitespace().count() as u64 + 8;
    let completion_tokens = words.len() as u64;
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens});
    if req["stream"] != true {
        return Json(json!({
            "id": "chatcmpl-echo", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": words.concat()}, "finish_reason": "stop"}],
            "usage": usage,
        }))
        .into_response();
    }
    let include_usage = req["stream_options"]["include_usage"] == true;
    let mut events: Vec<String> = words
        .iter()
        .map(|w| {
            let chunk = json!({"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": null}]});
            format!("data: {chunk}\n\n")
        })
        .collect();
    if include_usage {
        let chunk = json!({"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": [], "usage": usage});
        events.push(format!("data: {chunk}\n\n"));
    }
    events.push("data: [DONE]\n\n".to_owned());
    let stream = futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

//! `cargo run -p axum-app`: an app with two users, each with a budget, on 127.0.0.1:3000.

use std::collections::HashMap;
use std::sync::Arc;

use axum_app::{app, User};
use budget_core::store::prelude::*;
use budget_core::{Limiter, MemoryStore, Money, NewLimiter, Period};

#[tokio::main]
async fn main() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let mut users = HashMap::new();
    for (key, name, cents) in [("alice-key", "alice", 100), ("bob-key", "bob", 0)] {
        // Bob's budget is one nano-dollar: his first request spends it, the next gets a 429.
        let budget = if cents == 0 {
            Money::from_nanos(1)
        } else {
            Money::from_cents(cents)
        };
        let limiter = Limiter::create(
            NewLimiter::new(
                format!("{name}'s daily budget"),
                budget,
                Period::Day,
                "http://unused.invalid",
            ),
            chrono::Utc::now(),
        )
        .expect("valid limiter");
        store.create_limiter(&limiter).await.expect("store");
        users.insert(
            key.to_owned(),
            User {
                name: name.to_owned(),
                limiter: limiter.id,
            },
        );
    }
    let addr = std::env::var("AXUM_APP_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("axum-app on http://{addr}");
    println!("  curl -s http://{addr}/me -H 'authorization: Bearer alice-key'");
    println!(
        "  curl -si http://{addr}/ai/v1/chat/completions -H 'authorization: Bearer bob-key' \\\n    -H 'content-type: application/json' -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"hi\"}}]}}'"
    );
    axum::serve(listener, app(store, Arc::new(users)))
        .await
        .expect("serve");
}

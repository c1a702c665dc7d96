//! What upstream keys held by the server cost a request, measured in one run against the
//! pass-through baseline: the whole app (`budget_server::app`, budget layer on, MemoryStore)
//! in front of the in-process mock upstream over loopback, one JSON chat completion at a time.
//!
//! `cargo bench -p budget-server --bench upstream_keys` prints three times:
//! - `pass_through`: `/v1/{code}/…` with the client's own key (the baseline);
//! - `server_key_path`: the same path, the limiter holding the key (decrypt and swap headers);
//! - `code_as_api_key`: `/v1/chat/completions` with `Bearer <code>` (the rewrite before
//!   routing, then as above).

#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use budget_core::store::prelude::*;
use budget_core::{
    Credential, CredentialId, CredentialKind, Limiter, MemoryStore, Money, NewLimiter, Period,
};
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use budget_server::secrets::{fingerprint, hint, Sealer, SecretsKey};
use budget_server::state::AppState;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

const CHAT: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}],"max_tokens":16}"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, plain, keyed) = rt.block_on(async {
        let mock = MockUpstream::start(MockOptions::default().with_record(false))
            .await
            .unwrap();
        let url = mock.url();
        std::mem::forget(mock); // serves until the process ends
        let key_b64 = base64::engine::general_purpose::STANDARD.encode(
            [7u8; 31]
                .iter()
                .chain([8u8].iter())
                .copied()
                .collect::<Vec<_>>(),
        );
        let mut config = Config::for_tests();
        config.secrets_key = Some(key_b64.clone());
        config.allow_link_local_upstreams = true;
        let store = Arc::new(MemoryStore::new());
        let sealer = Sealer::new(&SecretsKey::parse(&key_b64).unwrap());
        let now = chrono::Utc::now();
        let id = CredentialId::new();
        let key = "sk-proj-benchmark-key-0123456789abcdefghijklmnopqrstuvwxyz";
        store
            .create_credential(&Credential {
                id,
                name: "bench".into(),
                kind: CredentialKind::Openai,
                organization: Some("org-bench".into()),
                project: None,
                sealed: sealer.seal(id, key),
                hint: hint(key),
                fingerprint: fingerprint(key),
                created_at: now,
                updated_at: now,
                rotated_at: now,
            })
            .await
            .unwrap();
        let limiter = |cred: Option<CredentialId>| {
            let mut n = NewLimiter::new(
                "bench",
                Money::from_dollars(1_000_000),
                Period::Month,
                url.clone(),
            );
            n.credential_id = cred;
            Limiter::create(n, now).unwrap()
        };
        let (plain, keyed) = (limiter(None), limiter(Some(id)));
        store.create_limiter(&plain).await.unwrap();
        store.create_limiter(&keyed).await.unwrap();
        let state = AppState::with_store(config, store, None).unwrap();
        (
            budget_server::app(state),
            plain.code.to_string(),
            keyed.code.to_string(),
        )
    });

    let run = |path: String, auth: String| {
        let app = app.clone();
        async move {
            let req = Request::post(path)
                .header("authorization", auth)
                .header("content-type", "application/json")
                .body(Body::from(CHAT))
                .unwrap();
            let res = app.oneshot(req).await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            res.into_body().collect().await.unwrap();
        }
    };
    let mut group = c.benchmark_group("chat_completion_through_the_app");
    group.bench_function("pass_through", |b| {
        b.to_async(&rt).iter(|| {
            run(
                format!("/v1/{plain}/chat/completions"),
                "Bearer sk-client-key".into(),
            )
        })
    });
    group.bench_function("server_key_path", |b| {
        b.to_async(&rt).iter(|| {
            run(
                format!("/v1/{keyed}/chat/completions"),
                "Bearer sk-client-key".into(),
            )
        })
    });
    group.bench_function("code_as_api_key", |b| {
        b.to_async(&rt)
            .iter(|| run("/v1/chat/completions".into(), format!("Bearer {keyed}")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

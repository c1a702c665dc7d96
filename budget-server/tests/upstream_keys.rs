//! Upstream keys held by the server, over real sockets with a real SQLite file: the stored key
//! replaces whatever the client sends, the limiter code works as the API key, rotations of
//! both take effect at once (with a grace period for codes), and the key never shows in an
//! answer, in `/metrics` or in the database file.

use std::sync::Arc;

use base64::Engine as _;
use budget_core::store::prelude::*;
use budget_core::MemoryStore;
use budget_mock_upstream::{MockOptions, MockUpstream};
use budget_server::config::Config;
use budget_server::state::{AppState, StartError};
use http::StatusCode;
use serde_json::json;

mod common;
use common::TestServer;

const SERVER_KEY: &str = "sk-proj-SERVERHELD-abcdefghijklmnopqrstuvwxyz-0123";
const ROTATED_KEY: &str = "sk-proj-ROTATEDKEY-zyxwvutsrqponmlkjihgfedcba-9876";
const CLIENT_KEY: &str = "sk-client-REALLOOKING-0123456789abcdefghijklmnop";

fn secrets_key(byte: u8) -> String {
    let mut k = [byte; 32];
    k[31] = byte.wrapping_add(1);
    base64::engine::general_purpose::STANDARD.encode(k)
}

async fn serve(state: AppState) -> TestServer {
    TestServer::serve(state).await
}

fn sqlite_config(dir: &std::path::Path, key: Option<String>) -> Config {
    let mut c = Config::for_tests();
    c.database_url = format!("sqlite:{}", dir.join("keys.db").display());
    c.secrets_key = key;
    c.allow_link_local_upstreams = true;
    c
}

const CHAT: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;

/// The credential headers the mock received on its last request.
fn last_auth(mock: &MockUpstream) -> (Option<String>, Option<String>, Option<String>) {
    let r = mock
        .requests()
        .last()
        .cloned()
        .expect("the mock saw a request");
    let h = |n: &str| r.header(n).map(str::to_owned);
    (h("authorization"), h("api-key"), h("openai-organization"))
}

#[tokio::test]
async fn the_server_key_replaces_the_clients_and_the_code_is_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let state = AppState::build(sqlite_config(dir.path(), Some(secrets_key(7))))
        .await
        .unwrap();
    let s = serve(state).await;

    // A credential: the answer shows a hint and a fingerprint, never the key.
    let created = s
        .as_admin(
            "POST",
            "/api/credentials",
            Some(json!({"name": "openai-prod", "kind": "openai", "api_key": SERVER_KEY, "organization": "org-server"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    assert!(!created.text.contains("SERVERHELD"), "{}", created.text);
    let cred = created.json;
    assert_eq!(cred["key_hint"], "…0123");
    assert!(cred["fingerprint"].as_str().unwrap().starts_with("sha256:"));
    let cred_id = cred["id"].as_str().unwrap().to_owned();

    // Two limiters: one with the server's key, one pass-through.
    let limiter = |name: &str, cred: Option<&str>| json!({"name": name, "budget_limit": 5, "period_type": "day", "base_url": mock.url(), "credential_id": cred});
    let keyed = s
        .as_admin(
            "POST",
            "/api/limiters",
            Some(limiter("keyed", Some(&cred_id))),
        )
        .await;
    assert_eq!(keyed.status, StatusCode::CREATED, "{}", keyed.text);
    let keyed = keyed.json;
    assert_eq!(keyed["credential_id"], cred_id.as_str());
    let code = keyed["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("sk-budget-"), "{code}");
    let plain = s
        .as_admin("POST", "/api/limiters", Some(limiter("plain", None)))
        .await
        .json;
    let plain_code = plain["code"].as_str().unwrap().to_owned();
    let unknown = s
        .as_admin(
            "POST",
            "/api/limiters",
            Some(limiter(
                "ghost",
                Some("5f7a0a43-6f8e-4a59-9c3c-111111111111"),
            )),
        )
        .await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.text
    );
    assert_eq!(unknown.json["error"]["field"], "credential_id");

    // Path mode, with the client's own (real-looking) key and headers: none of it goes up.
    let client_auth = format!("Bearer {CLIENT_KEY}");
    let a = s
        .send(
            "POST",
            &format!("/v1/{code}/chat/completions"),
            &[
                ("authorization", &client_auth),
                ("api-key", CLIENT_KEY),
                ("openai-organization", "org-client"),
                ("openai-project", "proj_client"),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        last_auth(&mock),
        (
            Some(format!("Bearer {SERVER_KEY}")),
            None,
            Some("org-server".into())
        )
    );
    let seen = mock.requests().last().cloned().unwrap();
    assert!(
        seen.header("openai-project").is_none(),
        "the client's project is not forwarded"
    );

    // The code as the API key: chat, a stream, embeddings and the Responses API.
    let bearer = format!("Bearer {code}");
    let as_key = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let bodies = [
        ("/v1/chat/completions", CHAT.to_owned()),
        (
            "/v1/chat/completions",
            r#"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#.to_owned(),
        ),
        ("/v1/embeddings", r#"{"model":"text-embedding-3-small","input":"hello"}"#.to_owned()),
        ("/v1/responses", r#"{"model":"gpt-4o-mini","input":"hi","max_output_tokens":16}"#.to_owned()),
    ];
    let before = mock.request_count();
    for (path, body) in &bodies {
        let a = s.send("POST", path, &as_key, body).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        assert_eq!(
            last_auth(&mock).0,
            Some(format!("Bearer {SERVER_KEY}")),
            "{path}"
        );
    }
    assert_eq!(mock.request_count(), before + bodies.len() as u64);
    for r in mock.requests() {
        for (_, v) in &r.headers {
            assert!(
                !v.contains(&code) && !v.contains(CLIENT_KEY),
                "a client credential reached the upstream: {v}"
            );
        }
    }
    let own = s.send("GET", "/v1/budget", &as_key, "").await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert!(own.text.contains("budget_limit"), "{}", own.text);

    // Code as key for a pass-through limiter, or an unknown code: 401 invalid_api_key.
    let plain_bearer = format!("Bearer {plain_code}");
    for auth in [
        plain_bearer.as_str(),
        "Bearer sk-budget-00000000000000000000000000000000",
    ] {
        let a = s
            .send(
                "POST",
                "/v1/chat/completions",
                &[
                    ("authorization", auth),
                    ("content-type", "application/json"),
                ],
                CHAT,
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
        assert_eq!(a.json["error"]["code"], "invalid_api_key");
        assert!(!a.text.contains(&plain_code), "the code is not echoed");
    }
    // The pass-through limiter still forwards the client's key in path mode.
    let a = s
        .send(
            "POST",
            &format!("/v1/{plain_code}/chat/completions"),
            &[
                ("authorization", &client_auth),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(last_auth(&mock).0, Some(client_auth.clone()));

    // Rotating the credential: the next request sends the new key.
    let rotated = s
        .as_admin(
            "PUT",
            &format!("/api/credentials/{cred_id}"),
            Some(json!({"api_key": ROTATED_KEY})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(rotated.json["key_hint"], "…9876");
    assert_ne!(rotated.json["fingerprint"], cred["fingerprint"]);
    assert_eq!(rotated.json["limiter_count"], 1);
    let a = s.send("POST", "/v1/chat/completions", &as_key, CHAT).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(last_auth(&mock).0, Some(format!("Bearer {ROTATED_KEY}")));

    // Rotating the code with a grace period: both work; then without one: only the newest.
    let keyed_id = keyed["id"].as_str().unwrap().to_owned();
    let r = s
        .as_admin(
            "POST",
            &format!("/api/limiters/{keyed_id}/rotate-code"),
            Some(json!({"grace_seconds": 3600})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let new_code = r.json["code"].as_str().unwrap().to_owned();
    assert_eq!(r.json["previous_code"]["code"], code.as_str());
    for c in [&code, &new_code] {
        let bearer = format!("Bearer {c}");
        let a = s
            .send(
                "POST",
                "/v1/chat/completions",
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                CHAT,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let too_long = s
        .as_admin(
            "POST",
            &format!("/api/limiters/{keyed_id}/rotate-code"),
            Some(json!({"grace_seconds": 99999999})),
        )
        .await;
    assert_eq!(
        too_long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_long.text
    );
    let r = s
        .as_admin(
            "POST",
            &format!("/api/limiters/{keyed_id}/rotate-code"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json["previous_code"].is_null());
    let a = s
        .send(
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &format!("Bearer {new_code}")),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);

    // Nowhere to be seen: admin answers, metrics, the database file.
    let mut seen = String::new();
    for path in [
        "/api/credentials",
        &format!("/api/credentials/{cred_id}"),
        "/api/limiters",
        "/metrics",
    ] {
        let a = s.as_admin("GET", path, None).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        seen.push_str(&a.text);
    }
    for key in [SERVER_KEY, ROTATED_KEY] {
        assert!(
            !seen.contains(key) && !seen.contains(&key[8..30]),
            "the key is shown"
        );
    }
    s.state.store.flush().await.unwrap();
    for name in ["keys.db", "keys.db-wal"] {
        let Ok(bytes) = std::fs::read(dir.path().join(name)) else {
            continue;
        };
        for key in [SERVER_KEY, ROTATED_KEY, "SERVERHELD", "ROTATEDKEY"] {
            assert!(
                !bytes.windows(key.len()).any(|w| w == key.as_bytes()),
                "{name} holds {key} in clear"
            );
        }
    }

    // In use: not deleted; detached: deleted.
    let d = s
        .as_admin("DELETE", &format!("/api/credentials/{cred_id}"), None)
        .await;
    assert_eq!(d.status, StatusCode::CONFLICT, "{}", d.text);
    assert!(d.text.contains("keyed"), "{}", d.text);
    let u = s
        .as_admin(
            "PUT",
            &format!("/api/limiters/{keyed_id}"),
            Some(json!({"credential_id": null})),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    assert!(u.json["credential_id"].is_null());
    let d = s
        .as_admin("DELETE", &format!("/api/credentials/{cred_id}"), None)
        .await;
    assert_eq!(d.status, StatusCode::NO_CONTENT, "{}", d.text);
    assert_eq!(
        s.as_admin("GET", &format!("/api/credentials/{cred_id}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_wrong_or_missing_secrets_key_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let state = AppState::build(sqlite_config(dir.path(), Some(secrets_key(7))))
            .await
            .unwrap();
        let s = serve(state).await;
        let a = s
            .as_admin("POST", "/api/credentials", Some(json!({"name": "azure-east", "kind": "azure", "api_key": "0123456789abcdef0123456789abcdef"})))
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
        s.state.sqlite.as_ref().unwrap().close().await;
    }
    for (key, why) in [
        (Some(secrets_key(8)), "does not decrypt"),
        (None, "not set"),
        (Some(String::new()), "not set"),
    ] {
        match AppState::build(sqlite_config(dir.path(), key)).await {
            Err(StartError::Secrets(m)) => {
                assert!(m.contains(why) && m.contains('1'), "{m}");
                let shown = StartError::Secrets(m).to_string();
                assert!(shown.starts_with("SECRETS_KEY"), "{shown}");
            }
            Err(e) => panic!("another error: {e}"),
            Ok(_) => panic!("started with a key that cannot open the stored credentials"),
        }
    }
    let state = AppState::build(sqlite_config(dir.path(), Some(secrets_key(7))))
        .await
        .unwrap();
    assert_eq!(state.store.list_credentials().await.unwrap().len(), 1);

    // A malformed key is a configuration error that says how to make one.
    let mut c = sqlite_config(dir.path(), Some("too-short".into()));
    c.database_url = "memory".into();
    let e = AppState::build(c).await.unwrap_err().to_string();
    assert!(
        e.contains("SECRETS_KEY") && e.contains("openssl rand -base64 32"),
        "{e}"
    );
}

#[tokio::test]
async fn without_secrets_key_credentials_are_refused_and_broken_ones_fail_closed() {
    // No SECRETS_KEY: the API says how to set one.
    let mut config = Config::for_tests();
    config.allow_link_local_upstreams = true;
    let s =
        serve(AppState::with_store(config.clone(), Arc::new(MemoryStore::new()), None).unwrap())
            .await;
    let a = s
        .as_admin(
            "POST",
            "/api/credentials",
            Some(json!({"name": "x", "api_key": SERVER_KEY})),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "secrets_key_missing");
    assert!(!a.text.contains("SERVERHELD"));

    // A credential sealed under another key: the request is refused, nothing goes upstream,
    // and the client's key is not forwarded instead.
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let store = Arc::new(MemoryStore::new());
    config.secrets_key = Some(secrets_key(7));
    let other = budget_server::secrets::Sealer::new(
        &budget_server::secrets::SecretsKey::parse(&secrets_key(9)).unwrap(),
    );
    let now = chrono::Utc::now();
    let id = budget_core::CredentialId::new();
    let c = budget_core::Credential {
        id,
        name: "sealed-elsewhere".into(),
        kind: budget_core::CredentialKind::Openai,
        organization: None,
        project: None,
        sealed: other.seal(id, SERVER_KEY),
        hint: "…0123".into(),
        fingerprint: "sha256:x".into(),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    };
    store.create_credential(&c).await.unwrap();
    let mut n = budget_core::NewLimiter::new(
        "broken",
        "5".parse().unwrap(),
        budget_core::Period::Day,
        mock.url(),
    );
    n.credential_id = Some(id);
    let l = budget_core::Limiter::create(n, now).unwrap();
    store.create_limiter(&l).await.unwrap();
    let s = serve(AppState::with_store(config, store, None).unwrap()).await;
    let client_auth = format!("Bearer {CLIENT_KEY}");
    let a = s
        .send(
            "POST",
            &format!("/v1/{}/chat/completions", l.code),
            &[
                ("authorization", &client_auth),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "upstream_credential_unavailable");
    assert_eq!(a.headers.get("x-should-retry").unwrap(), "false");
    assert_eq!(mock.request_count(), 0, "nothing was forwarded");
}

#[tokio::test]
async fn azure_limiters_send_the_server_held_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let s = serve(
        AppState::build(sqlite_config(dir.path(), Some(secrets_key(3))))
            .await
            .unwrap(),
    )
    .await;
    let azure_key = "0123456789abcdef0123456789abcdefAZURE";
    let cred = s
        .as_admin(
            "POST",
            "/api/credentials",
            Some(json!({"name": "azure-east", "kind": "azure", "api_key": azure_key})),
        )
        .await
        .json;
    let l = s
        .as_admin(
            "POST",
            "/api/limiters",
            Some(json!({"name": "az", "budget_limit": 5, "period_type": "day", "base_url": mock.url(), "provider": "azure", "credential_id": cred["id"]})),
        )
        .await
        .json;
    let code = l["code"].as_str().unwrap();
    // An Azure key on an OpenAI limiter (or the provider changed under it) would go out in
    // the wrong header: refused.
    let wrong = s
        .as_admin(
            "POST",
            "/api/limiters",
            Some(json!({"name": "oa", "budget_limit": 5, "period_type": "day", "base_url": mock.url(), "credential_id": cred["id"]})),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text
    );
    assert_eq!(wrong.json["error"]["field"], "credential_id");
    let id = l["id"].as_str().unwrap();
    let wrong = s
        .as_admin(
            "PUT",
            &format!("/api/limiters/{id}"),
            Some(json!({"provider": "openai"})),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text
    );
    // A previous code is shown while it works, and not after.
    let r = s
        .as_admin(
            "POST",
            &format!("/api/limiters/{id}/rotate-code"),
            Some(json!({"grace_seconds": 1})),
        )
        .await
        .json;
    assert_eq!(r["previous_code"]["code"], code);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = s
        .as_admin("GET", &format!("/api/limiters/{id}"), None)
        .await
        .json;
    assert!(after["previous_code"].is_null(), "{after}");
    let code = r["code"].as_str().unwrap();
    let path = "openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21";
    // Path mode with the client's junk key, then the code as Azure's api-key.
    let a = s
        .send(
            "POST",
            &format!("/v1/{code}/{path}"),
            &[
                ("api-key", "client-junk-key-123456"),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(last_auth(&mock), (None, Some(azure_key.to_owned()), None));
    let a = s
        .send(
            "POST",
            &format!("/{path}"),
            &[("api-key", code), ("content-type", "application/json")],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(last_auth(&mock), (None, Some(azure_key.to_owned()), None));
    let seen = mock.requests().last().cloned().unwrap();
    assert!(
        seen.path.contains("api-version=2024-10-21"),
        "{}",
        seen.path
    );
}

#[tokio::test]
async fn an_upstream_that_refuses_the_held_key_is_reported_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    // The upstream accepts another key than the one the server holds (a revoked key).
    let mock = MockUpstream::start(
        MockOptions::default().with_accepted_keys(["sk-proj-the-only-good-key-0000"]),
    )
    .await
    .unwrap();
    let s = serve(
        AppState::build(sqlite_config(dir.path(), Some(secrets_key(5))))
            .await
            .unwrap(),
    )
    .await;
    let cred = s
        .as_admin(
            "POST",
            "/api/credentials",
            Some(json!({"name": "revoked", "api_key": SERVER_KEY})),
        )
        .await
        .json;
    let l = s
        .as_admin(
            "POST",
            "/api/limiters",
            Some(json!({"name": "r", "budget_limit": 5, "period_type": "day", "base_url": mock.url(), "credential_id": cred["id"]})),
        )
        .await
        .json;
    let bearer = format!("Bearer {}", l["code"].as_str().unwrap());
    let a = s
        .send(
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_GATEWAY, "{}", a.text);
    assert_eq!(a.json["error"]["code"], "upstream_credential_rejected");
    assert_eq!(a.headers.get("x-should-retry").unwrap(), "false");
    assert!(
        !a.text.contains("0123") && !a.text.contains("SERVERHELD"),
        "{}",
        a.text
    );
    assert_eq!(mock.request_count(), 1, "it did go upstream, once");
    // Nothing was charged for it.
    let stats = s
        .as_admin(
            "GET",
            &format!("/api/limiters/{}/stats", l["id"].as_str().unwrap()),
            None,
        )
        .await
        .json;
    assert_eq!(stats["current_spend"], 0.0, "{stats}");
}

#[tokio::test]
async fn a_new_secrets_key_takes_over_with_the_previous_one_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockUpstream::start(MockOptions::default()).await.unwrap();
    let code = {
        let s = serve(
            AppState::build(sqlite_config(dir.path(), Some(secrets_key(7))))
                .await
                .unwrap(),
        )
        .await;
        let cred = s
            .as_admin(
                "POST",
                "/api/credentials",
                Some(json!({"name": "prod", "api_key": SERVER_KEY})),
            )
            .await
            .json;
        let (_, code) = s
            .limiter(json!({"name": "k", "budget_limit": 5, "period_type": "day", "base_url": mock.url(), "credential_id": cred["id"]}))
            .await;
        s.state.sqlite.as_ref().unwrap().close().await;
        code
    };
    let with = |key: u8, previous: Option<u8>| {
        let mut c = sqlite_config(dir.path(), Some(secrets_key(key)));
        c.secrets_key_previous = previous.map(secrets_key);
        c
    };
    // The new key alone cannot start; with the previous one beside it, it re-seals.
    assert!(matches!(
        AppState::build(with(8, None)).await,
        Err(StartError::Secrets(_))
    ));
    let state = AppState::build(with(8, Some(7))).await.unwrap();
    let trail = state
        .store
        .list_audit(&budget_core::audit::AuditQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.action == "credential.reseal"),
        "{trail:?}"
    );
    state.sqlite.as_ref().unwrap().close().await;
    // From now on the new key alone is enough, and the held key still goes upstream.
    let s = serve(AppState::build(with(8, None)).await.unwrap()).await;
    let bearer = format!("Bearer {code}");
    let a = s
        .send(
            "POST",
            "/v1/chat/completions",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            CHAT,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(last_auth(&mock).0, Some(format!("Bearer {SERVER_KEY}")));
    s.state.sqlite.as_ref().unwrap().close().await;
    // The old key no longer opens anything; a previous key without a key is refused.
    assert!(matches!(
        AppState::build(with(7, None)).await,
        Err(StartError::Secrets(_))
    ));
    let mut c = sqlite_config(dir.path(), None);
    c.secrets_key_previous = Some(secrets_key(8));
    let e = AppState::build(c).await.unwrap_err().to_string();
    assert!(e.contains("SECRETS_KEY_PREVIOUS"), "{e}");
}

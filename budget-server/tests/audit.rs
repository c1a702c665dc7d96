//! The audit trail over a real socket with a real SQLite file: every admin action is recorded
//! with who, when, from where and what changed; codes are masked and keys never appear;
//! `GET /api/audit` filters; the trail survives a restart and has no way to be changed.

use base64::Engine as _;
use budget_server::state::AppState;
use http::StatusCode;
use serde_json::json;

mod common;
use common::{bearer, call, TestServer};

const KEY: &str = "sk-proj-AUDITKEY-abcdefghijklmnopqrstuvwxyz-0123";

async fn serve(dir: &std::path::Path) -> (String, AppState) {
    let srv = TestServer::start(&dir.join("audit.db"), |c| {
        c.secrets_key = Some(
            base64::engine::general_purpose::STANDARD.encode(
                [3u8; 31]
                    .iter()
                    .chain([4u8].iter())
                    .copied()
                    .collect::<Vec<_>>(),
            ),
        );
        c.admin_password = "audit-password-123".into();
    })
    .await;
    (srv.url.clone(), srv.state.clone())
}

#[tokio::test]
async fn every_admin_action_is_in_the_audit_trail() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve(dir.path()).await;
    let login = |password: &str| json!({"username": "admin", "password": password});
    let (s, _) = call(
        &url,
        "POST",
        "/api/auth/login",
        None,
        Some(login("wrong-guess")),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = call(
        &url,
        "POST",
        "/api/auth/login",
        None,
        Some(login("audit-password-123")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let token = bearer(body["token"].as_str().unwrap());
    let t = Some(token.as_str());

    let (_, l) = call(
        &url,
        "POST",
        "/api/limiters",
        t,
        Some(json!({"name": "acme", "budget_limit": 5, "period_type": "day"})),
    )
    .await;
    let id = l["id"].as_str().unwrap().to_owned();
    let code = l["code"].as_str().unwrap().to_owned();
    call(
        &url,
        "PUT",
        &format!("/api/limiters/{id}"),
        t,
        Some(json!({"budget_limit": 7, "is_active": false})),
    )
    .await;
    call(
        &url,
        "PUT",
        &format!("/api/limiters/{id}/users/alice"),
        t,
        Some(json!({"budget_limit": 1, "period_type": "day"})),
    )
    .await;
    call(
        &url,
        "DELETE",
        &format!("/api/limiters/{id}/users/alice"),
        t,
        None,
    )
    .await;
    let (_, rotated) = call(
        &url,
        "POST",
        &format!("/api/limiters/{id}/rotate-code"),
        t,
        Some(json!({"grace_seconds": 60})),
    )
    .await;
    let new_code = rotated["code"].as_str().unwrap().to_owned();
    let (_, c) = call(
        &url,
        "POST",
        "/api/credentials",
        t,
        Some(json!({"name": "prod", "api_key": KEY})),
    )
    .await;
    let cid = c["id"].as_str().unwrap().to_owned();
    call(
        &url,
        "PUT",
        &format!("/api/credentials/{cid}"),
        t,
        Some(json!({"api_key": "sk-proj-ROTATED-zyxwvutsrqponm-9876"})),
    )
    .await;
    call(&url, "DELETE", &format!("/api/credentials/{cid}"), t, None).await;
    call(&url, "DELETE", &format!("/api/limiters/{id}"), t, None).await;

    let (s, trail) = call(&url, "GET", "/api/audit", t, None).await;
    assert_eq!(s, StatusCode::OK, "{trail}");
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "limiter.delete",
            "credential.delete",
            "credential.rotate",
            "credential.create",
            "limiter.rotate_code",
            "limiter.user_override.remove",
            "limiter.user_override.set",
            "limiter.update",
            "limiter.create",
            "login.succeeded",
            "login.failed",
        ],
        "newest first"
    );
    let entries = trail.as_array().unwrap();
    for e in entries {
        assert_eq!(e["actor"], "admin");
        assert_eq!(e["client"], "127.0.0.1", "{e}");
    }
    let update = &entries[7];
    assert_eq!(update["limiter_id"], id.as_str());
    assert_eq!(
        update["before"],
        json!({"budget_limit": 5.0, "is_active": true, "updated_at": update["before"]["updated_at"]})
    );
    assert_eq!(update["after"]["budget_limit"], 7.0);
    assert_eq!(update["after"]["is_active"], false);
    assert_eq!(entries[6]["target"], "alice");
    assert_eq!(
        entries[6]["after"],
        json!({"budget_limit": 1.0, "period_type": "day"})
    );
    assert_eq!(entries[2]["before"]["key_hint"], "…0123");
    assert_eq!(entries[2]["after"]["key_hint"], "…9876");

    // No secret anywhere: codes masked, keys never.
    let text = trail.to_string();
    for secret in [
        code.as_str(),
        new_code.as_str(),
        KEY,
        "AUDITKEY",
        "ROTATED-zyx",
        "audit-password-123",
        "wrong-guess",
    ] {
        assert!(!text.contains(secret), "the trail holds {secret}");
    }
    assert!(
        text.contains(&format!("{}…", &code[..14])),
        "the code is shown masked"
    );

    // Filters: one limiter, one actor, a time range, a limit; bad ones are 400s.
    let (_, of_l) = call(&url, "GET", &format!("/api/audit?limiter_id={id}"), t, None).await;
    assert_eq!(of_l.as_array().unwrap().len(), 6);
    let (_, nobody) = call(&url, "GET", "/api/audit?actor=mallory", t, None).await;
    assert!(nobody.as_array().unwrap().is_empty());
    let (_, two) = call(&url, "GET", "/api/audit?limit=2", t, None).await;
    assert_eq!(two.as_array().unwrap().len(), 2);
    let (_, future) = call(&url, "GET", "/api/audit?from=2999-01-01T00:00:00Z", t, None).await;
    assert!(future.as_array().unwrap().is_empty());
    for q in ["limit=0", "limit=5000", "from=yesterday", "limiter_id=x"] {
        let (s, _) = call(&url, "GET", &format!("/api/audit?{q}"), t, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
    }
    let (s, _) = call(&url, "GET", "/api/audit", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // There is no route that changes an entry.
    let first = entries[0]["id"].as_str().unwrap();
    for method in ["DELETE", "PUT", "POST"] {
        let (s, _) = call(
            &url,
            method,
            &format!("/api/audit/{first}"),
            t,
            Some(json!({})),
        )
        .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED,
            "{method}: {s}"
        );
    }

    // The file refuses to change the trail too, and keeps it across a restart.
    state.sqlite.as_ref().unwrap().close().await;
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("audit.db").display()))
            .await
            .unwrap();
    for sql in ["DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'"] {
        let err = sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    pool.close().await;
    let (url, _) = serve(dir.path()).await;
    let (_, again) = call(&url, "GET", "/api/audit?limit=1000", t, None).await;
    assert_eq!(
        again.as_array().unwrap().len(),
        entries.len(),
        "kept across a restart"
    );
}

//! Team accounts over a real socket with a real SQLite file: viewers read with codes masked
//! and change nothing; disabling, a password reset and a password change end the account's
//! sessions at once; a demotion holds on an existing token; nobody disables or demotes
//! themselves; the login throttle and the audit trail cover named accounts; no password or
//! hash is ever answered or audited; accounts survive a restart.

use base64::Engine as _;
use budget_core::store::UsageRecord;
use budget_core::usage::{Endpoint, Usage};
use budget_core::Money;
use budget_server::admin::ROUTES;
use budget_server::state::AppState;
use http::StatusCode;
use serde_json::{json, Value};

mod common;
use common::{bearer, Answer, TestServer};

const BOOTSTRAP_PASSWORD: &str = "bootstrap-password-123";
const VIEWER_PASSWORD: &str = "viewer-password-1";
const ADMIN2_PASSWORD: &str = "second-admin-pass";
const RESET_PASSWORD: &str = "reset-by-an-admin-7";
const OWN_PASSWORD: &str = "chosen-by-myself-42";
const KEY: &str = "sk-proj-ACCOUNTSKEY-abcdefghijklmnopqrstuvwxyz-0123";
/// A webhook URL with its secret in the path, as Slack's are.
const HOOK: &str = "https://hooks.example.com/services/T0/B0/webhooksecret";

async fn serve(dir: &std::path::Path) -> (String, AppState) {
    let srv = TestServer::start(&dir.join("accounts.db"), |c| {
        c.secrets_key =
            Some(base64::engine::general_purpose::STANDARD.encode((1u8..=32).collect::<Vec<u8>>()));
        c.admin_password = BOOTSTRAP_PASSWORD.into();
        c.alert_webhook_secret = Some("accounts-test-webhook-secret-0123456789".into());
    })
    .await;
    (srv.url.clone(), srv.state.clone())
}

/// A JSON request with `token` (if any) as the bearer.
async fn call(
    url: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    common::request(url, method, path, token.map(bearer).as_deref(), body).await
}

async fn login(url: &str, username: &str, password: &str) -> Answer {
    call(
        url,
        "POST",
        "/api/auth/login",
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

async fn token(url: &str, username: &str, password: &str) -> String {
    let a = login(url, username, password).await;
    assert_eq!(a.status, StatusCode::OK, "{username}: {}", a.text);
    a.json["token"].as_str().unwrap().to_owned()
}

async fn create_account(
    url: &str,
    admin: &str,
    username: &str,
    password: &str,
    role: &str,
) -> String {
    let a = call(
        url,
        "POST",
        "/api/accounts",
        Some(admin),
        Some(json!({"username": username, "password": password, "role": role})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text);
    assert_eq!(a.json["role"], role);
    assert!(a.json.get("password").is_none() && a.json.get("password_hash").is_none());
    a.json["id"].as_str().unwrap().to_owned()
}

fn is_error(a: &Answer, status: StatusCode, code: &str) -> bool {
    a.status == status && a.json["error"]["code"] == code
}

#[tokio::test]
async fn a_viewer_reads_with_codes_masked_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve(dir.path()).await;
    let admin = token(&url, "admin", BOOTSTRAP_PASSWORD).await;
    let a = Some(admin.as_str());

    let cred = call(
        &url,
        "POST",
        "/api/credentials",
        a,
        Some(json!({"name": "prod", "api_key": KEY})),
    )
    .await;
    assert_eq!(cred.status, StatusCode::CREATED, "{}", cred.text);
    let cred_id = cred.json["id"].as_str().unwrap().to_owned();
    let l = call(
        &url,
        "POST",
        "/api/limiters",
        a,
        Some(
            json!({"name": "acme", "budget_limit": 5, "period_type": "day",
                    "alerts": {"webhook_url": HOOK}}),
        ),
    )
    .await;
    assert_eq!(l.status, StatusCode::CREATED, "{}", l.text);
    let limiter_id = l.json["id"].as_str().unwrap().to_owned();
    let old_code = l.json["code"].as_str().unwrap().to_owned();
    // A rotation with a grace period: the old code still works and is a secret too.
    let r = call(
        &url,
        "POST",
        &format!("/api/limiters/{limiter_id}/rotate-code"),
        a,
        Some(json!({"grace_seconds": 600})),
    )
    .await;
    let code = r.json["code"].as_str().unwrap().to_owned();
    assert_eq!(r.json["previous_code"]["code"], old_code.as_str());
    // A usage record, so recent usage and the export have something to show.
    let usage = Usage {
        model: Some("gpt-4o".into()),
        prompt_tokens: 10,
        ..Usage::default()
    };
    state
        .store
        .record_usage(UsageRecord::new(
            limiter_id.parse().unwrap(),
            chrono::Utc::now(),
            Endpoint::ChatCompletions,
            &usage,
            Some(Money::from_cents(1)),
        ))
        .await
        .unwrap();

    let viewer_id = create_account(&url, &admin, "vera", VIEWER_PASSWORD, "viewer").await;
    let v = login(&url, "vera", VIEWER_PASSWORD).await;
    assert_eq!(v.json["role"], "viewer");
    assert_eq!(v.json["username"], "vera");
    let viewer = v.json["token"].as_str().unwrap().to_owned();
    let vt = Some(viewer.as_str());

    let me = call(&url, "GET", "/api/auth/me", vt, None).await;
    assert_eq!(
        me.json,
        json!({"username": "vera", "role": "viewer", "bootstrap": false, "id": viewer_id})
    );
    let me = call(&url, "GET", "/api/auth/me", a, None).await;
    assert_eq!(me.json["bootstrap"], true);
    assert_eq!(me.json["role"], "admin");

    // Every GET route: limiters and statistics answer with no code (nor key) in them;
    // accounts and the audit trail are for admins.
    for (method, path) in ROUTES.iter().filter(|(m, _)| *m == "GET") {
        let uri = format!("/api{path}")
            .replace("/accounts/{id}", &format!("/accounts/{viewer_id}"))
            .replace("/credentials/{id}", &format!("/credentials/{cred_id}"))
            .replace("{id}", &limiter_id)
            .replace("{user}", "alice");
        let answer = call(&url, method, &uri, vt, None).await;
        if path.starts_with("/accounts") || *path == "/audit" {
            assert!(
                is_error(&answer, StatusCode::FORBIDDEN, "forbidden"),
                "GET {uri}: {} {}",
                answer.status,
                answer.text
            );
            continue;
        }
        assert_eq!(answer.status, StatusCode::OK, "GET {uri}: {}", answer.text);
        for secret in [code.as_str(), old_code.as_str(), KEY, "webhooksecret"] {
            assert!(
                !answer.text.contains(secret),
                "GET {uri} shows {secret} to a viewer: {}",
                answer.text
            );
        }
    }
    // The export (and recent usage) did hold the record, so the check above read something.
    let export = call(&url, "GET", "/api/usage/export?format=jsonl", vt, None).await;
    assert!(export.text.contains(&limiter_id), "{}", export.text);
    let shown = call(
        &url,
        "GET",
        &format!("/api/limiters/{limiter_id}"),
        vt,
        None,
    )
    .await;
    let masked = shown.json["code"].as_str().unwrap();
    assert!(
        masked.starts_with("sk-budget-") && masked.ends_with('…'),
        "{masked}"
    );
    assert_eq!(&masked[..14], &code[..14]);
    assert_eq!(
        shown.json["previous_code"]["code"].as_str().unwrap(),
        format!("{}…", &old_code[..14])
    );
    assert!(shown.json["proxy_endpoint"]
        .as_str()
        .unwrap()
        .ends_with(masked));
    assert_eq!(
        shown.json["alerts"]["webhook_url"],
        "https://hooks.example.com/…"
    );
    // An admin still sees the whole code and URL.
    let full = call(&url, "GET", "/api/limiters", a, None).await;
    assert_eq!(full.json[0]["code"], code.as_str());
    assert_eq!(full.json[0]["alerts"]["webhook_url"], HOOK);

    // Every route that changes something: 403 for a viewer, nothing changed. Logging out
    // and changing one's own password are a viewer's to do (checked elsewhere).
    for (method, path) in ROUTES.iter().filter(|(m, _)| *m != "GET") {
        if matches!(*path, "/auth/login" | "/auth/logout" | "/auth/password") {
            continue;
        }
        let uri = format!("/api{path}")
            .replace("/accounts/{id}", &format!("/accounts/{viewer_id}"))
            .replace("/credentials/{id}", &format!("/credentials/{cred_id}"))
            .replace("{id}", &limiter_id)
            .replace("{user}", "alice");
        let body = matches!(*method, "POST" | "PUT").then(|| json!({}));
        let answer = call(&url, method, &uri, vt, body).await;
        assert!(
            is_error(&answer, StatusCode::FORBIDDEN, "forbidden"),
            "{method} {uri}: {} {}",
            answer.status,
            answer.text
        );
    }
    // A viewer cannot promote itself either.
    let promote = call(
        &url,
        "PUT",
        &format!("/api/accounts/{viewer_id}"),
        vt,
        Some(json!({"role": "admin"})),
    )
    .await;
    assert!(is_error(&promote, StatusCode::FORBIDDEN, "forbidden"));
    let after = call(&url, "GET", &format!("/api/limiters/{limiter_id}"), a, None).await;
    assert_eq!(after.json["code"], code.as_str(), "nothing rotated");
    assert_eq!(after.json["budget_limit"], r.json["budget_limit"]);
    let creds = call(&url, "GET", "/api/credentials", a, None).await;
    assert_eq!(creds.json.as_array().unwrap().len(), 1, "nothing deleted");
    let accounts = call(&url, "GET", "/api/accounts", a, None).await;
    assert_eq!(accounts.json.as_array().unwrap().len(), 1);
    assert_eq!(accounts.json[0]["role"], "viewer");
    assert!(!accounts.text.contains("argon2") && !accounts.text.contains("password"));

    let out = call(&url, "POST", "/api/auth/logout", vt, None).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn disabling_resets_and_changes_end_sessions_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, state) = serve(dir.path()).await;
    let root = token(&url, "admin", BOOTSTRAP_PASSWORD).await;
    let r = Some(root.as_str());
    let vera = create_account(&url, &root, "vera", VIEWER_PASSWORD, "viewer").await;
    let adam = create_account(&url, &root, "adam", ADMIN2_PASSWORD, "admin").await;
    let a2 = token(&url, "adam", ADMIN2_PASSWORD).await;
    let a2t = Some(a2.as_str());

    // Names: unique ignoring case, never the bootstrap admin's, valid, with a long password.
    for (name, password, code, status) in [
        ("VERA", VIEWER_PASSWORD, "conflict", StatusCode::CONFLICT),
        ("admin", VIEWER_PASSWORD, "conflict", StatusCode::CONFLICT),
        ("Admin", VIEWER_PASSWORD, "conflict", StatusCode::CONFLICT),
        (
            "has space",
            VIEWER_PASSWORD,
            "validation_failed",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "shorty",
            "eleven-char",
            "validation_failed",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let a = call(
            &url,
            "POST",
            "/api/accounts",
            a2t,
            Some(json!({"username": name, "password": password, "role": "viewer"})),
        )
        .await;
        assert!(is_error(&a, status, code), "{name}: {}", a.text);
    }
    let long = call(
        &url,
        "POST",
        "/api/accounts",
        a2t,
        Some(json!({"username": "longpw", "password": "x".repeat(1025), "role": "viewer"})),
    )
    .await;
    assert_eq!(long.json["error"]["field"], "password", "{}", long.text);

    // Disable: the viewer's token stops at once, and its login fails like a wrong password.
    let v1 = token(&url, "vera", VIEWER_PASSWORD).await;
    assert_eq!(
        call(&url, "GET", "/api/stats", Some(&v1), None)
            .await
            .status,
        StatusCode::OK
    );
    let d = call(
        &url,
        "PUT",
        &format!("/api/accounts/{vera}"),
        a2t,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(d.status, StatusCode::OK, "{}", d.text);
    assert_eq!(d.json["disabled"], true);
    let refused = call(&url, "GET", "/api/stats", Some(&v1), None).await;
    assert!(
        is_error(&refused, StatusCode::UNAUTHORIZED, "invalid_token"),
        "{}",
        refused.text
    );
    let disabled_login = login(&url, "vera", VIEWER_PASSWORD).await;
    let wrong_password = login(&url, "adam", "not-adams-password").await;
    let unknown = login(&url, "nobody", "whatever-password").await;
    assert_eq!(disabled_login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(disabled_login.text, wrong_password.text);
    assert_eq!(disabled_login.text, unknown.text);
    // Enabled again: logins work, the old token does not come back.
    call(
        &url,
        "PUT",
        &format!("/api/accounts/{vera}"),
        a2t,
        Some(json!({"disabled": false})),
    )
    .await;
    assert_eq!(
        call(&url, "GET", "/api/stats", Some(&v1), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let v2 = token(&url, "Vera", VIEWER_PASSWORD).await;

    // An admin's reset: the old token and password stop, the new password works.
    let reset = call(
        &url,
        "PUT",
        &format!("/api/accounts/{vera}"),
        a2t,
        Some(json!({"password": RESET_PASSWORD})),
    )
    .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.text);
    assert_eq!(
        call(&url, "GET", "/api/stats", Some(&v2), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&url, "vera", VIEWER_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let v3 = token(&url, "vera", RESET_PASSWORD).await;

    // One's own change (a viewer may): the current password is checked, the answer is a new
    // session, every older token stops.
    let wrong = call(
        &url,
        "POST",
        "/api/auth/password",
        Some(&v3),
        Some(json!({"current_password": "not-the-password", "new_password": OWN_PASSWORD})),
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text
    );
    assert_eq!(wrong.json["error"]["field"], "current_password");
    let short = call(
        &url,
        "POST",
        "/api/auth/password",
        Some(&v3),
        Some(json!({"current_password": RESET_PASSWORD, "new_password": "short"})),
    )
    .await;
    assert_eq!(
        short.json["error"]["field"], "new_password",
        "{}",
        short.text
    );
    let changed = call(
        &url,
        "POST",
        "/api/auth/password",
        Some(&v3),
        Some(json!({"current_password": RESET_PASSWORD, "new_password": OWN_PASSWORD})),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text);
    assert_eq!(changed.json["role"], "viewer");
    let v4 = changed.json["token"].as_str().unwrap().to_owned();
    assert_eq!(
        call(&url, "GET", "/api/stats", Some(&v3), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&url, "GET", "/api/stats", Some(&v4), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        login(&url, "vera", RESET_PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let v5 = token(&url, "vera", OWN_PASSWORD).await;

    // The bootstrap admin's password is the environment's.
    let boot = call(
        &url,
        "POST",
        "/api/auth/password",
        r,
        Some(json!({"current_password": BOOTSTRAP_PASSWORD, "new_password": OWN_PASSWORD})),
    )
    .await;
    assert_eq!(boot.status, StatusCode::CONFLICT);
    assert!(boot.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ADMIN_PASSWORD"));

    // Nobody disables, demotes or resets themselves here.
    for body in [
        json!({"disabled": true}),
        json!({"role": "viewer"}),
        json!({"password": RESET_PASSWORD}),
    ] {
        let own = call(
            &url,
            "PUT",
            &format!("/api/accounts/{adam}"),
            a2t,
            Some(body.clone()),
        )
        .await;
        assert!(
            is_error(&own, StatusCode::CONFLICT, "conflict"),
            "{body}: {}",
            own.text
        );
    }

    // A demotion holds on a token already issued; a promotion too.
    let demote = call(
        &url,
        "PUT",
        &format!("/api/accounts/{adam}"),
        r,
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(demote.json["role"], "viewer");
    let write = call(
        &url,
        "POST",
        "/api/limiters",
        a2t,
        Some(json!({"name": "x", "budget_limit": 1, "period_type": "day"})),
    )
    .await;
    assert!(
        is_error(&write, StatusCode::FORBIDDEN, "forbidden"),
        "{}",
        write.text
    );
    assert_eq!(
        call(&url, "GET", "/api/limiters", a2t, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&url, "GET", "/api/auth/me", a2t, None).await.json["role"],
        "viewer"
    );
    call(
        &url,
        "PUT",
        &format!("/api/accounts/{adam}"),
        r,
        Some(json!({"role": "admin"})),
    )
    .await;
    let write = call(
        &url,
        "POST",
        "/api/limiters",
        a2t,
        Some(json!({"name": "x", "budget_limit": 1, "period_type": "day"})),
    )
    .await;
    assert_eq!(write.status, StatusCode::CREATED, "{}", write.text);

    // The login throttle counts guesses at a named account: 5 failures, then 429 even for the
    // right password.
    for _ in 0..5 {
        assert_eq!(
            login(&url, "vera", "guess-guess-guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let locked = login(&url, "vera", OWN_PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.text
    );

    // The audit trail has every account action, and no password or hash anywhere.
    let audit = call(&url, "GET", "/api/audit?limit=1000", r, None).await;
    assert_eq!(audit.status, StatusCode::OK);
    let entries = audit.json.as_array().unwrap();
    let has = |actor: &str, action: &str, target: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && (target.is_empty() || e["target"] == target)
        })
    };
    assert!(has("admin", "account.create", &vera));
    assert!(has("admin", "account.create", &adam));
    assert!(has("adam", "account.update", &vera));
    assert!(has("adam", "account.password_reset", &vera));
    assert!(has("vera", "account.password_change", &vera));
    assert!(has("admin", "account.update", &adam));
    assert!(has("vera", "login.succeeded", ""));
    assert!(has("vera", "login.failed", ""));
    let disable = entries
        .iter()
        .find(|e| e["action"] == "account.update" && e["after"]["disabled"] == true)
        .unwrap();
    assert_eq!(disable["before"], json!({"disabled": false}));
    let demotion = entries
        .iter()
        .find(|e| e["action"] == "account.update" && e["after"]["role"] == "viewer")
        .unwrap();
    assert_eq!(demotion["before"], json!({"role": "admin"}));
    let passwords = [
        VIEWER_PASSWORD,
        ADMIN2_PASSWORD,
        RESET_PASSWORD,
        OWN_PASSWORD,
    ];
    for p in passwords.iter().chain([&"argon2", &"password_hash"]) {
        assert!(!audit.text.contains(p), "{p} in the audit trail");
    }

    // Accounts survive a restart (and no password is in the database file).
    state.sqlite.as_ref().unwrap().close().await;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for p in passwords {
            assert!(
                !bytes.windows(p.len()).any(|w| w == p.as_bytes()),
                "{p} in the database files"
            );
        }
    }
    let (url, _) = serve(dir.path()).await;
    assert_eq!(
        call(&url, "GET", "/api/auth/me", Some(&v5), None)
            .await
            .json["username"],
        "vera",
        "a token outlives a restart (JWT_SECRET is set in the tests)"
    );
    let root = token(&url, "admin", BOOTSTRAP_PASSWORD).await;
    let accounts = call(&url, "GET", "/api/accounts", Some(&root), None).await;
    let names: Vec<&str> = accounts
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["adam", "vera"]);
    assert!(!token(&url, "adam", ADMIN2_PASSWORD).await.is_empty());
}

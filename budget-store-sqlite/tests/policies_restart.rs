//! Policies and the spend behind them survive a restart: a limiter with an extra window and a
//! per-user budget, reopened from its file, still refuses what the spend committed before the
//! restart has used up — per window and per end user.

use budget_core::policy::BudgetWindow;
use budget_core::store::prelude::*;
use budget_core::store::{CounterKey, DenialReason, ReserveOutcome, ReserveRequest, UsageRecord};
use budget_core::usage::{Endpoint, Usage};
use budget_core::{EnforcementMode, Limiter, LimiterUpdate, Money, NewLimiter, Period};
use budget_store_sqlite::SqliteStore;
use chrono::Utc;

fn ask(l: &Limiter, cents: i64, user: Option<&str>) -> ReserveRequest {
    let mut r = ReserveRequest::new(l.id, Money::from_cents(cents), Utc::now());
    r.user = user.map(str::to_owned);
    r
}

#[tokio::test]
async fn windows_users_and_overrides_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("policies.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let mut n = NewLimiter::new(
        "restart",
        Money::from_dollars(100),
        Period::Month,
        "https://api.openai.com",
    );
    n.mode = Some(EnforcementMode::Strict);
    n.extra_budgets = vec![BudgetWindow::new(Money::from_dollars(10), Period::Day)];
    n.user_budget = Some(BudgetWindow::new(Money::from_dollars(1), Period::Day));
    n.allowed_models = vec!["gpt-4o-mini".into()];
    n.max_request_cost = Some(Money::from_cents(50));
    let l = Limiter::create(n, Utc::now()).unwrap();
    store.create_limiter(&l).await.unwrap();
    let l = store
        .update_limiter(
            l.id,
            &LimiterUpdate {
                user_override: Some((
                    "vip".into(),
                    Some(BudgetWindow::new(Money::from_dollars(20), Period::Week)),
                )),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    // alice spends 95 cents of her dollar, vip $8 of the day's $10 (within their week's $20).
    for (user, cents) in [("alice", 95), ("vip", 800)] {
        let ReserveOutcome::Reserved(r) = store.reserve(&ask(&l, cents, Some(user))).await.unwrap()
        else {
            panic!("{user} fits")
        };
        let usage = Usage {
            model: Some("gpt-4o-mini".into()),
            ..Usage::default()
        };
        let mut rec = UsageRecord::new(
            l.id,
            r.at,
            Endpoint::ChatCompletions,
            &usage,
            Some(Money::from_cents(cents)),
        );
        rec.user = Some(user.into());
        store.settle(&r, rec).await.unwrap();
    }
    store.close().await;

    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(
        store.get_limiter(l.id).await.unwrap().unwrap(),
        l,
        "every policy read back"
    );
    // alice has 5 cents left of her own day (the limiter's day has $1.05).
    let ReserveOutcome::Denied(d) = store.reserve(&ask(&l, 10, Some("alice"))).await.unwrap()
    else {
        panic!("alice's day is nearly spent")
    };
    assert_eq!(
        (d.reason, d.user.as_deref()),
        (DenialReason::BudgetExceeded, Some("alice"))
    );
    // vip's week has room, but the limiter's day has only $1.05 left.
    let ReserveOutcome::Denied(d) = store.reserve(&ask(&l, 200, Some("vip"))).await.unwrap() else {
        panic!("the day is nearly spent")
    };
    assert_eq!((d.user, d.period), (None, Period::Day));
    assert!(matches!(
        store.reserve(&ask(&l, 50, Some("bob"))).await.unwrap(),
        ReserveOutcome::Reserved(_)
    ));
    let alice = CounterKey {
        limiter_id: l.id,
        user: Some("alice".into()),
        window: Period::Day.window_at_in(Utc::now(), l.timezone),
    };
    assert_eq!(
        store.window_spend(&alice).await.unwrap().spent,
        Money::from_cents(95)
    );
    store.close().await;
}

/// Upstream credentials, a limiter's attachment and a rotation's grace period are read back
/// from the file after a restart, to the byte and the microsecond.
#[tokio::test]
async fn credentials_and_code_grace_survive_a_restart() {
    use budget_core::credential::{Credential, CredentialId, CredentialKind, SealedSecret};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("credentials.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let now = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let c = Credential {
        id: CredentialId::new(),
        name: "openai-prod".into(),
        kind: CredentialKind::Openai,
        organization: Some("org-1".into()),
        project: Some("proj_1".into()),
        sealed: SealedSecret((0..=255).collect()),
        hint: "…wxyz".into(),
        fingerprint: "sha256:00112233".into(),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    };
    store.create_credential(&c).await.unwrap();
    let mut n = NewLimiter::new(
        "keyed",
        Money::from_dollars(1),
        Period::Day,
        "https://api.openai.com",
    );
    n.credential_id = Some(c.id);
    let l = Limiter::create(n, Utc::now()).unwrap();
    store.create_limiter(&l).await.unwrap();
    let rotated = store
        .rotate_code(l.id, Some(Utc::now() + chrono::Duration::hours(1)))
        .await
        .unwrap();
    store.close().await;

    let store = SqliteStore::open(&url).await.unwrap();
    assert_eq!(store.list_credentials().await.unwrap(), vec![c.clone()]);
    assert_eq!(
        store.find_credential(c.id).await.unwrap().as_deref(),
        Some(&c)
    );
    let back = store.get_limiter(l.id).await.unwrap().unwrap();
    assert_eq!(back.credential_id, Some(c.id));
    assert_eq!(back.previous_code, rotated.previous_code);
    for code in [&l.code, &rotated.code] {
        let found = store
            .find_limiter(budget_core::store::LimiterRef::Code(code.as_str()))
            .await
            .unwrap();
        assert_eq!(
            found.map(|f| f.id),
            Some(l.id),
            "old and new code both work"
        );
    }
    assert!(matches!(
        store.delete_credential(c.id).await,
        Err(budget_core::store::Error::Conflict(_))
    ));
    store.close().await;
}

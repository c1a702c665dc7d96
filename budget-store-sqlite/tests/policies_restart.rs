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

//! Several budgets per request: extra windows, per-user budgets and overrides, expiry — each
//! decided all or nothing, alone and under races.

use std::sync::Arc;

use chrono::Duration;

use crate::policy::BudgetWindow;
use crate::store::{
    CounterKey, DenialReason, Error, ReserveOutcome, ReserveRequest, Store, UsageQuery,
};
use crate::{EnforcementMode, Limiter, LimiterUpdate, Money, NewLimiter, Period};

use super::{m, record, spend, t0};

/// Create a limiter from `new` (strict unless set) in `store`.
async fn create(store: &dyn Store, mut new: NewLimiter) -> Limiter {
    new.mode.get_or_insert(EnforcementMode::Strict);
    let l = Limiter::create(new, t0()).unwrap();
    store.create_limiter(&l).await.unwrap();
    l
}

fn new(budget: &str, period: Period) -> NewLimiter {
    NewLimiter::new(
        "policies",
        budget.parse().unwrap(),
        period,
        "https://api.openai.com",
    )
}

fn window(budget: &str, period: Period) -> BudgetWindow {
    BudgetWindow::new(budget.parse().unwrap(), period)
}

async fn ask(
    s: &dyn Store,
    l: &Limiter,
    amount: &str,
    at: chrono::DateTime<chrono::Utc>,
    user: Option<&str>,
) -> ReserveOutcome {
    let mut r = ReserveRequest::new(l.id, amount.parse().unwrap(), at);
    r.user = user.map(str::to_owned);
    s.reserve(&r).await.unwrap()
}

async fn counter(s: &dyn Store, l: &Limiter, user: Option<&str>, period: Period) -> Money {
    let key = CounterKey {
        limiter_id: l.id,
        user: user.map(str::to_owned),
        window: period.window_at_in(t0(), l.timezone),
    };
    s.window_spend(&key).await.unwrap().spent
}

/// Policies are stored and read back whole; a bad update (an extra window of the limiter's
/// own period) changes nothing; an empty list removes the extra windows.
pub async fn policies_round_trip(store: Arc<dyn Store>) {
    let s = &*store;
    let mut n = new("100", Period::Month);
    n.extra_budgets = vec![window("5", Period::Hour), window("30", Period::Day)];
    n.user_budget = Some(window("1", Period::Day));
    n.require_user = Some(true);
    n.allowed_models = vec!["gpt-4o-mini".into(), "text-embedding-3-*".into()];
    n.max_request_cost = Some(m("0.5"));
    n.cap_output_tokens = Some(false);
    n.expires_at = Some(t0() + Duration::days(30));
    let l = create(s, n).await;
    assert_eq!(s.get_limiter(l.id).await.unwrap().as_ref(), Some(&l));

    let bad = LimiterUpdate {
        extra_budgets: Some(vec![window("5", Period::Month)]),
        ..Default::default()
    };
    assert!(matches!(
        s.update_limiter(l.id, &bad).await,
        Err(Error::Validation(e)) if e.field == "extra_budgets"
    ));
    assert_eq!(s.get_limiter(l.id).await.unwrap().as_ref(), Some(&l));

    let up = LimiterUpdate {
        extra_budgets: Some(vec![]),
        user_budget: Some(None),
        user_override: Some(("vip".into(), Some(window("9", Period::Week)))),
        max_request_cost: Some(None),
        expires_at: Some(None),
        ..Default::default()
    };
    let updated = s.update_limiter(l.id, &up).await.unwrap();
    assert!(updated.extra_budgets.is_empty() && updated.user_budget.is_none());
    assert_eq!(
        updated.user_overrides.get("vip"),
        Some(&window("9", Period::Week))
    );
    assert_eq!((updated.max_request_cost, updated.expires_at), (None, None));
    assert_eq!(s.get_limiter(l.id).await.unwrap().unwrap(), updated);
}

/// A request must fit every window: $10 a day and $2 an hour. The hour refuses, naming its
/// period; the next hour admits again; both windows count every charge.
pub async fn every_window_must_admit(store: Arc<dyn Store>) {
    let s = &*store;
    let mut n = new("10", Period::Day);
    n.extra_budgets = vec![window("2", Period::Hour)];
    let l = create(s, n).await;
    let ReserveOutcome::Reserved(r) = ask(s, &l, "1.5", t0(), None).await else {
        panic!("fits both")
    };
    assert_eq!(r.holds.len(), 2);
    assert_eq!(r.remaining(), m("0.5"), "the tightest window: the hour");
    assert_eq!(r.window, Period::Hour.window_at(t0()));
    let ReserveOutcome::Denied(d) = ask(s, &l, "1", t0(), None).await else {
        panic!("the hour is full")
    };
    assert_eq!(
        (d.reason, d.period, d.budget),
        (DenialReason::BudgetExceeded, Period::Hour, m("2"))
    );
    assert_eq!(
        spend(s, l.id, t0()).await.held,
        m("1.5"),
        "the refusal held nothing"
    );
    s.settle(&r, record(&l, t0(), "1.25", "gpt-4o", None))
        .await
        .unwrap();
    assert_eq!(counter(s, &l, None, Period::Hour).await, m("1.25"));
    assert_eq!(counter(s, &l, None, Period::Day).await, m("1.25"));

    let next_hour = t0() + Duration::hours(1);
    let ReserveOutcome::Reserved(r2) = ask(s, &l, "1", next_hour, None).await else {
        panic!("a new hour")
    };
    s.release(&r2).await.unwrap();
    let w = spend(s, l.id, t0()).await;
    assert_eq!((w.spent, w.held, w.in_flight), (m("1.25"), Money::ZERO, 0));
}

/// Each end user has $1 a day inside the limiter's $10; an override gives one user $3;
/// requests without a user count only against the limiter.
pub async fn user_budgets_and_overrides(store: Arc<dyn Store>) {
    let s = &*store;
    let mut n = new("10", Period::Day);
    n.user_budget = Some(window("1", Period::Day));
    let l = create(s, n).await;
    let ReserveOutcome::Reserved(a1) = ask(s, &l, "0.8", t0(), Some("alice")).await else {
        panic!("alice fits")
    };
    assert_eq!(a1.holds.len(), 2);
    let ReserveOutcome::Denied(d) = ask(s, &l, "0.5", t0(), Some("alice")).await else {
        panic!("alice's $1 is committed")
    };
    assert_eq!(d.user.as_deref(), Some("alice"));
    assert!(d.message().contains("alice"), "{}", d.message());
    assert!(matches!(
        ask(s, &l, "0.8", t0(), Some("bob")).await,
        ReserveOutcome::Reserved(_)
    ));
    let ReserveOutcome::Reserved(anon) = ask(s, &l, "5", t0(), None).await else {
        panic!("no user: only the limiter's budget")
    };
    assert_eq!(anon.holds.len(), 1);

    let up = LimiterUpdate {
        user_override: Some(("carol".into(), Some(window("3", Period::Day)))),
        ..Default::default()
    };
    let l = s.update_limiter(l.id, &up).await.unwrap();
    assert!(matches!(
        ask(s, &l, "2.5", t0(), Some("carol")).await,
        ReserveOutcome::Reserved(_)
    ));
    assert!(matches!(
        ask(s, &l, "0.6", t0(), Some("carol")).await,
        ReserveOutcome::Denied(_)
    ));

    s.settle(&a1, record(&l, t0(), "0.7", "gpt-4o", Some("alice")))
        .await
        .unwrap();
    assert_eq!(counter(s, &l, Some("alice"), Period::Day).await, m("0.7"));
    assert_eq!(
        s.usage_totals(&UsageQuery::window(l.id, l.window_at(t0())))
            .await
            .unwrap()
            .cost,
        m("0.7")
    );
}

/// From `expires_at` on, every reservation is refused as expired; before it, admitted.
pub async fn expired_limiter_is_denied(store: Arc<dyn Store>) {
    let s = &*store;
    let mut n = new("10", Period::Day);
    n.expires_at = Some(t0());
    let l = create(s, n).await;
    assert!(matches!(
        ask(s, &l, "1", t0() - Duration::seconds(1), None).await,
        ReserveOutcome::Reserved(_)
    ));
    let ReserveOutcome::Denied(d) = ask(s, &l, "0", t0(), None).await else {
        panic!("expired")
    };
    assert_eq!(d.reason, DenialReason::Expired);
}

/// 200 tasks race for a limiter of $15 a month and $10 an hour at $1 each, strict: exactly
/// ten get in this hour; 20 users with $2 a day each race with 3 requests apiece: exactly two
/// each get in.
pub async fn concurrent_reservations_respect_every_budget(store: Arc<dyn Store>) {
    let mut n = new("15", Period::Month);
    n.extra_budgets = vec![window("10", Period::Hour)];
    let l = create(&*store, n).await;
    let admitted = race(&store, &l, (0..200).map(|_| None)).await;
    assert_eq!(admitted.len(), 10);
    let next_hour = t0() + Duration::hours(1);
    let ReserveOutcome::Reserved(_) = ask(&*store, &l, "5", next_hour, None).await else {
        panic!("the month has $5 left")
    };
    assert!(matches!(
        ask(&*store, &l, "0.01", next_hour, None).await,
        ReserveOutcome::Denied(_)
    ));

    let mut n = new("1000", Period::Day);
    n.user_budget = Some(window("2", Period::Day));
    let l = create(&*store, n).await;
    let users: Vec<String> = (0..20).map(|i| format!("user-{i}")).collect();
    let admitted = race(
        &store,
        &l,
        users.iter().cycle().take(60).map(|u| Some(u.clone())),
    )
    .await;
    assert_eq!(admitted.len(), 40);
    for u in &users {
        assert_eq!(
            admitted
                .iter()
                .filter(|a| a.as_deref() == Some(u.as_str()))
                .count(),
            2,
            "{u}"
        );
    }
}

/// 120 requests race across a minute rollover (half stamped in the last second of one minute,
/// half in the first of the next) against $3 a minute and $5 an hour, strict: each minute
/// admits exactly three, and the hour never passes five.
pub async fn concurrent_rollover_keeps_every_window(store: Arc<dyn Store>) {
    let mut n = new("3", Period::Minute);
    n.extra_budgets = vec![window("5", Period::Hour)];
    let l = create(&*store, n).await;
    let minute = Period::Minute.window_at(t0());
    let (late, early) = (
        minute.end - Duration::milliseconds(1),
        minute.end + Duration::milliseconds(1),
    );
    assert_eq!(
        Period::Hour.window_at(late),
        Period::Hour.window_at(early),
        "one hour, two minutes"
    );
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let (store, l) = (store.clone(), l.clone());
            let at = if i % 2 == 0 { late } else { early };
            tokio::spawn(async move {
                match ask(&*store, &l, "1", at, None).await {
                    ReserveOutcome::Reserved(r) => Some(r.at),
                    ReserveOutcome::Denied(_) => None,
                }
            })
        })
        .collect();
    let admitted: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    let first = admitted.iter().filter(|at| **at == late).count();
    let second = admitted.len() - first;
    assert!(
        first <= 3 && second <= 3,
        "per minute: {first} and {second}"
    );
    assert_eq!(
        admitted.len(),
        5,
        "the hour's $5 is the tighter budget overall"
    );
}

/// Reserve $1 at `t0` once per entry of `users`, all at once; the users of the admitted ones.
async fn race(
    store: &Arc<dyn Store>,
    l: &Limiter,
    users: impl Iterator<Item = Option<String>>,
) -> Vec<Option<String>> {
    let tasks: Vec<_> = users
        .map(|user| {
            let (store, l) = (store.clone(), l.clone());
            tokio::spawn(async move {
                match ask(&*store, &l, "1", t0(), user.as_deref()).await {
                    ReserveOutcome::Reserved(_) => Some(user),
                    ReserveOutcome::Denied(_) => None,
                }
            })
        })
        .collect();
    futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect()
}

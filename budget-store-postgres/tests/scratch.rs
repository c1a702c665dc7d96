#![allow(missing_docs)]
use budget_core::conformance::t0;
use budget_core::policy::BudgetWindow;
use budget_core::store::prelude::*;
use budget_core::store::*;
use budget_core::*;
use budget_store_postgres::testing::TestCluster;
use budget_store_postgres::PostgresStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scratch() {
    let c = TestCluster::shared("scratch").unwrap();
    let s = PostgresStore::open(&c.fresh_database().await).await.unwrap();
    let mut new = NewLimiter::new("x", "10".parse().unwrap(), Period::Day, "https://api.openai.com");
    new.mode = Some(EnforcementMode::Strict);
    new.user_budget = Some(BudgetWindow::new("1".parse().unwrap(), Period::Day));
    let l = Limiter::create(new, t0()).unwrap();
    s.create_limiter(&l).await.unwrap();
    let ask = |a: &str, u: Option<&str>| {
        let mut r = ReserveRequest::new(l.id, a.parse().unwrap(), t0());
        r.user = u.map(str::to_owned);
        r
    };
    for (a, u) in [("0.8", Some("alice")), ("0.5", Some("alice")), ("0.8", Some("bob")), ("5", None)] {
        let r = s.reserve(&ask(a, u)).await.unwrap();
        eprintln!("{a} {u:?}: {}", matches!(r, ReserveOutcome::Reserved(_)));
    }
    let up = LimiterUpdate { user_override: Some(("carol".into(), Some(BudgetWindow::new("3".parse().unwrap(), Period::Day)))), ..Default::default() };
    s.update_limiter(l.id, &up).await.unwrap();
    let r = s.reserve(&ask("2.5", Some("carol"))).await.unwrap();
    eprintln!("carol {r:?}");
    let rows = sqlx::query_as::<_, (String, i64, i64, i64, String)>("SELECT user_key, granted, exposed, settled, state FROM budget_leases").fetch_all(s.pool()).await.unwrap();
    eprintln!("{rows:?}");
    let rows = sqlx::query_as::<_, (String, i64, i64, i64)>("SELECT user_key, budget, spent, leased FROM budget_windows").fetch_all(s.pool()).await.unwrap();
    eprintln!("{rows:?}");
}

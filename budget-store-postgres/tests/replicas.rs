//! Several stores (replicas) on one PostgreSQL database: one strict budget between them, a
//! dead replica's slice reclaimed and its late reports fenced, changes seen by every replica,
//! and a database outage that fails closed and loses nothing. Skipped, saying so, when
//! PostgreSQL is not installed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use budget_core::conformance::record;
use budget_core::store::prelude::*;
use budget_core::store::{LimiterRef, ReserveOutcome, ReserveRequest};
use budget_core::{EnforcementMode, Limiter, LimiterUpdate, Money, NewLimiter, Period};
use budget_store_postgres::testing::TestCluster;
use budget_store_postgres::{PostgresStore, PostgresStoreOptions};
use chrono::Utc;

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

async fn replicas(url: &str, n: usize, ttl: Duration) -> Vec<PostgresStore> {
    let mut v = Vec::new();
    for _ in 0..n {
        let o = PostgresStoreOptions::new(url)
            .with_lease_ttl(ttl)
            .with_lease_grace(Duration::from_millis(500))
            .with_report_interval(Duration::from_millis(200));
        v.push(PostgresStore::open_with(o).await.unwrap());
    }
    v
}

async fn strict_limiter(s: &PostgresStore, budget: &str) -> Limiter {
    let mut n = NewLimiter::new("shared", m(budget), Period::Day, "https://api.openai.com");
    n.mode = Some(EnforcementMode::Strict);
    let l = Limiter::create(n, Utc::now()).unwrap();
    s.create_limiter(&l).await.unwrap();
    l
}

async fn window_row(s: &PostgresStore, l: &Limiter) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT budget, spent, leased FROM budget_windows WHERE limiter_id = $1 AND user_key = ''",
    )
    .bind(l.id.0)
    .fetch_one(s.pool())
    .await
    .unwrap()
}

/// 3 replicas race 300 requests of $0.10 for $10, holding them all: exactly 100 get in,
/// whichever replica they reach — money idle in one replica's slice goes to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_one_strict_budget_to_the_last_dollar() {
    let Some(cluster) = TestCluster::shared("replicas_share_one_strict_budget") else {
        return;
    };
    let url = cluster.fresh_database().await;
    let stores = replicas(&url, 3, Duration::from_secs(15)).await;
    let l = strict_limiter(&stores[0], "10").await;
    for s in &stores {
        while s
            .find_limiter(LimiterRef::Id(l.id))
            .await
            .unwrap()
            .is_none()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let started = Instant::now();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let s = stores[i % 3].clone();
            let id = l.id;
            tokio::spawn(async move {
                let r = ReserveRequest::new(id, m("0.10"), Utc::now());
                matches!(s.reserve(&r).await.unwrap(), ReserveOutcome::Reserved(_))
            })
        })
        .collect();
    let admitted = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    let (budget, spent, leased) = window_row(&stores[0], &l).await;
    eprintln!(
        "3 replicas, 300 × $0.10 for $10: {admitted} admitted in {:?}; leased {leased} of {budget} nano-$",
        started.elapsed()
    );
    assert_eq!(admitted, 100, "every dollar is spendable, none twice");
    assert!(spent + leased <= budget);
    let trips: u64 = stores.iter().map(PostgresStore::round_trips).sum();
    eprintln!("database round trips: {trips}");
    for s in &stores {
        s.close().await;
    }
}

/// A replica stops reporting (frozen or cut off) while it holds a slice and a request: after
/// the lease's TTL and grace another replica reclaims it, charging what it exposed and
/// returning the rest; the frozen replica's late report is absorbed by that charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_silent_replica_is_reclaimed_and_its_late_report_fenced() {
    let Some(cluster) = TestCluster::shared("a_silent_replica_is_reclaimed") else {
        return;
    };
    let url = cluster.fresh_database().await;
    let stores = replicas(&url, 2, Duration::from_secs(2)).await;
    let (a, b) = (&stores[0], &stores[1]);
    let l = strict_limiter(a, "10").await;
    let ReserveOutcome::Reserved(r) = a
        .reserve(&ReserveRequest::new(l.id, m("1"), Utc::now()))
        .await
        .unwrap()
    else {
        panic!("admitted")
    };
    let (granted, exposed): (i64, i64) = sqlx::query_as(
        "SELECT granted, exposed FROM budget_leases WHERE replica = $1 AND state = 'active'",
    )
    .bind(a.replica_id())
    .fetch_one(a.pool())
    .await
    .unwrap();
    assert!(
        exposed >= m("1").as_nanos() && exposed <= granted,
        "{exposed} of {granted}"
    );
    a.stop_reporting_for_tests();

    // B takes money until the silent lease is reclaimed.
    let start = Instant::now();
    loop {
        let state: String =
            sqlx::query_scalar("SELECT state FROM budget_leases WHERE replica = $1")
                .bind(a.replica_id())
                .fetch_one(b.pool())
                .await
                .unwrap();
        if state == "reclaimed" {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not reclaimed in 10 s"
        );
        // A grant reclaims expired leases of its window on the way (a slow answer on a busy
        // machine is just another turn of the loop).
        if let Ok(ReserveOutcome::Reserved(x)) = b
            .reserve(&ReserveRequest::new(l.id, m("0.01"), Utc::now()))
            .await
        {
            b.release(&x).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "silent lease reclaimed {:?} after it stopped reporting (TTL 2 s + grace 0.5 s)",
        start.elapsed()
    );
    b.flush().await.unwrap();
    let (budget, spent, leased) = window_row(b, &l).await;
    assert_eq!(spent, exposed, "charged what it exposed, the rest returned");
    assert!(spent + leased <= budget);

    // The late report: A settles its request ($0.40); the charge absorbs it.
    a.settle(&r, record(&l, r.at, "0.40", "gpt-4o", None))
        .await
        .unwrap();
    a.flush().await.unwrap();
    let (_, spent_after, _) = window_row(b, &l).await;
    assert_eq!(spent_after, exposed, "the late record is not counted twice");
    let crash_left: i64 =
        sqlx::query_scalar("SELECT crash_left FROM budget_leases WHERE replica = $1")
            .bind(a.replica_id())
            .fetch_one(b.pool())
            .await
            .unwrap();
    assert_eq!(crash_left, exposed - m("0.40").as_nanos());
    let recorded: i64 =
        sqlx::query_scalar("SELECT COALESCE(SUM(cost), 0)::bigint FROM usage_events")
            .fetch_one(b.pool())
            .await
            .unwrap();
    assert_eq!(
        recorded,
        m("0.40").as_nanos(),
        "the record itself is kept for statistics"
    );

    // What was returned is spendable by B, and no more.
    let mut got = Money::ZERO;
    while let ReserveOutcome::Reserved(_) = b
        .reserve(&ReserveRequest::new(l.id, m("0.5"), Utc::now()))
        .await
        .unwrap()
    {
        got += m("0.5");
    }
    let free = Money::from_nanos(budget - exposed);
    eprintln!("after the reclaim B could hold {got} of the {free} left");
    assert!(
        got <= free && free.saturating_sub(got) < m("0.5"),
        "{got} of {free}"
    );
    b.close().await;
}

/// A change made on one replica reaches the other within a second (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_reach_every_replica_within_a_second() {
    let Some(cluster) = TestCluster::shared("changes_reach_every_replica") else {
        return;
    };
    let url = cluster.fresh_database().await;
    let stores = replicas(&url, 2, Duration::from_secs(15)).await;
    let (a, b) = (&stores[0], &stores[1]);
    let l = strict_limiter(a, "10").await;
    let wait_until = |what: &'static str,
                      f: Box<dyn Fn(Option<Arc<Limiter>>) -> bool + Send + Sync>,
                      by: LimiterRef<'static>| {
        let b = b.clone();
        async move {
            let start = Instant::now();
            loop {
                if f(b.find_limiter(by).await.unwrap()) {
                    eprintln!(
                        "{what} seen by the other replica after {:?}",
                        start.elapsed()
                    );
                    assert!(
                        start.elapsed() < Duration::from_secs(1),
                        "{what} took {:?}",
                        start.elapsed()
                    );
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_until(
        "a new limiter",
        Box::new(|l| l.is_some()),
        LimiterRef::Id(l.id),
    )
    .await;
    a.update_limiter(
        l.id,
        &LimiterUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_until(
        "deactivation",
        Box::new(|l| l.is_some_and(|l| !l.is_active)),
        LimiterRef::Id(l.id),
    )
    .await;
    let old = l.code.as_str().to_owned();
    let old: &'static str = Box::leak(old.into_boxed_str());
    a.rotate_code(l.id, None).await.unwrap();
    wait_until(
        "a rotated code",
        Box::new(|l| l.is_none()),
        LimiterRef::Code(old),
    )
    .await;

    // An upstream credential: created, attached and rotated on one replica, the other sends
    // the new secret from its next request (within a second).
    let now = chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).unwrap();
    let mut cred = budget_core::credential::Credential {
        id: budget_core::credential::CredentialId::new(),
        name: "openai-prod".into(),
        kind: budget_core::credential::CredentialKind::Openai,
        organization: None,
        project: None,
        sealed: budget_core::credential::SealedSecret(b"sealed-1".to_vec()),
        hint: "…0001".into(),
        fingerprint: "sha256:01".into(),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    };
    a.create_credential(&cred).await.unwrap();
    a.update_limiter(
        l.id,
        &LimiterUpdate {
            credential_id: Some(Some(cred.id)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    wait_until(
        "an attached credential",
        Box::new(move |l| l.is_some_and(|l| l.credential_id == Some(cred.id))),
        LimiterRef::Id(l.id),
    )
    .await;
    let seen = |b: &PostgresStore, want: &'static [u8]| {
        let b = b.clone();
        let id = cred.id;
        async move {
            let start = Instant::now();
            while b
                .find_credential(id)
                .await
                .unwrap()
                .map(|c| c.sealed.0.clone())
                .as_deref()
                != Some(want)
            {
                assert!(
                    start.elapsed() < Duration::from_secs(1),
                    "credential change took {:?}",
                    start.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            eprintln!(
                "a credential change seen by the other replica after {:?}",
                start.elapsed()
            );
        }
    };
    seen(b, b"sealed-1").await;
    cred.sealed = budget_core::credential::SealedSecret(b"sealed-2".to_vec());
    a.update_credential(&cred).await.unwrap();
    seen(b, b"sealed-2").await;
    // In use on either replica: not deleted.
    assert!(matches!(
        b.delete_credential(cred.id).await,
        Err(budget_core::store::Error::Conflict(_))
    ));

    a.delete_limiter(l.id, false).await.unwrap();
    wait_until("deletion", Box::new(|l| l.is_none()), LimiterRef::Id(l.id)).await;
    for s in &stores {
        s.close().await;
    }
}

/// The database stops: the replica admits from the slice it holds until its deadline, then
/// refuses; usage settled meanwhile is written once when the database is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_down_admits_within_the_slice_then_fails_closed_and_loses_nothing() {
    let Some(cluster) = TestCluster::start(&[]) else {
        eprintln!("SKIPPED database_down…: PostgreSQL is not installed");
        return;
    };
    let url = cluster.fresh_database().await;
    let stores = replicas(&url, 1, Duration::from_secs(3)).await;
    let s = &stores[0];
    let l = strict_limiter(s, "100").await;
    let mut settled = 0u32;
    let mut served_while_down = 0u32;
    let mut refused = None;
    let ask = |s: &PostgresStore| {
        let s = s.clone();
        async move {
            s.reserve(&ReserveRequest::new(l.id, m("0.01"), Utc::now()))
                .await
        }
    };
    for _ in 0..20 {
        if let ReserveOutcome::Reserved(r) = ask(s).await.unwrap() {
            s.settle(&r, record(&l, r.at, "0.01", "gpt-4o", None))
                .await
                .unwrap();
            settled += 1;
        }
    }
    s.flush().await.unwrap();
    cluster.stop();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(5) {
        match ask(s).await {
            Ok(ReserveOutcome::Reserved(r)) => {
                s.settle(&r, record(&l, r.at, "0.01", "gpt-4o", None))
                    .await
                    .unwrap();
                settled += 1;
                served_while_down += 1;
                assert!(refused.is_none(), "admitted again after refusing");
            }
            Ok(ReserveOutcome::Denied(d)) => panic!("{d:?}"),
            Err(e) => {
                refused.get_or_insert_with(|| (down.elapsed(), e.to_string()));
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (after, error) = refused.expect("refuses once the lease deadline passes");
    eprintln!("database down: {served_while_down} served from the slice, refusing after {after:?}: {error}");
    assert!(
        after <= Duration::from_secs(4),
        "deadline is 80 % of the 3 s TTL"
    );
    assert!(s.write_status().unsaved_events > 0 || served_while_down == 0);
    cluster.start_again();
    let back = Instant::now();
    loop {
        if s.flush().await.is_ok() && s.write_status().unsaved_events == 0 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "usage not written after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (n, cost): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(cost), 0)::bigint FROM usage_events")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(n, i64::from(settled), "every settled request written once");
    let (_, spent, _) = window_row(s, &l).await;
    assert_eq!(spent, cost, "the budget counts each once");
    // Requests fail fast for up to a second after the last failed call, then serve again.
    let back = Instant::now();
    while !matches!(ask(s).await, Ok(ReserveOutcome::Reserved(_))) {
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not serving after recovery"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.close().await;
}

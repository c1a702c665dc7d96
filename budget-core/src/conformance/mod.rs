//! The conformance suite every [`Store`] runs, ours and yours (feature `test-utils`).
//!
//! One line in a store crate's tests runs all of it, one `#[tokio::test]` per check (here for
//! budget-core's own [`MemoryStore`](crate::MemoryStore); put your store's constructor in the
//! `async` block, with `.await` where it is async):
//!
//! ```
//! budget_core::store_conformance_tests!(async { budget_core::MemoryStore::new() });
//! ```
//!
//! The expression is evaluated once per test and must be a future resolving to a fresh, empty
//! store (any type implementing [`Store`]: the hot path, the catalogue and the statistics):
//! write it as an `async` block. The test crate needs `tokio` with the `macros` and
//! `rt-multi-thread` features. Each check is also a public `async fn` taking an
//! `Arc<dyn Store>`, so a store can run them by hand.

mod accounts;
mod alerts;
mod audit;
mod budgets;
mod credentials;
mod export;
mod limiters;
mod policies;
mod races;
mod refusals;
mod stats;

pub use accounts::accounts_crud_unique_names;
pub use alerts::alert_outbox_sends_each_event_once;
pub use audit::audit_trail_is_append_only_and_filtered;
pub use budgets::{
    budget_update_takes_effect_at_once, inactive_limiter_is_denied,
    record_usage_without_reservation, release_leaks_nothing, reserve_settle_release_accounting,
    soft_mode_admits_until_spent, strict_mode_never_passes_budget,
    user_counters_and_reservations_for_users, window_rollover,
};
pub use credentials::{credentials_crud_and_hot_path, rotation_grace_keeps_the_old_code};
pub use export::usage_pages_in_time_order;
pub use limiters::{
    code_lookup_and_rotation, delete_keeps_history_and_purge_removes_it, limiter_crud,
};
pub use policies::{
    concurrent_reservations_respect_every_budget, concurrent_rollover_keeps_every_window,
    every_window_must_admit, expired_limiter_is_denied, policies_round_trip,
    user_budgets_and_overrides,
};
pub use races::{
    concurrent_soft_reservations_lose_nothing, concurrent_strict_reservations_never_overspend,
};
pub use refusals::refusals_add_up_per_limiter_and_reason;
pub use stats::statistics;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::store::{
    CounterKey, LimiterRef, Reservation, ReserveOutcome, ReserveRequest, Store, UsageRecord,
    WindowSpend,
};
use crate::usage::{Endpoint, Usage};
use crate::{EnforcementMode, Limiter, LimiterId, LimiterUpdate, Money, NewLimiter, Period};

/// Generate one `#[tokio::test]` per conformance check, in a module named `conformance`.
///
/// For a store that needs a service which may be missing (a database server), write
/// `store_conformance_tests!(optional async { … })` with a future resolving to `Option<store>`:
/// on `None` each test returns at once (the factory should say why it skipped).
#[macro_export]
macro_rules! store_conformance_tests {
    (optional $factory:expr) => {
        $crate::store_conformance_tests!(@list [optional] $factory);
    };
    ($factory:expr) => {
        $crate::store_conformance_tests!(@list [plain] $factory);
    };
    (@list [$mode:ident] $factory:expr) => {
        $crate::store_conformance_tests!(@tests [$mode] $factory;
            limiter_crud,
            code_lookup_and_rotation,
            rotation_grace_keeps_the_old_code,
            credentials_crud_and_hot_path,
            delete_keeps_history_and_purge_removes_it,
            reserve_settle_release_accounting,
            release_leaks_nothing,
            soft_mode_admits_until_spent,
            strict_mode_never_passes_budget,
            inactive_limiter_is_denied,
            budget_update_takes_effect_at_once,
            window_rollover,
            record_usage_without_reservation,
            user_counters_and_reservations_for_users,
            policies_round_trip,
            every_window_must_admit,
            user_budgets_and_overrides,
            expired_limiter_is_denied,
            concurrent_reservations_respect_every_budget,
            concurrent_rollover_keeps_every_window,
            statistics,
            usage_pages_in_time_order,
            audit_trail_is_append_only_and_filtered,
            alert_outbox_sends_each_event_once,
            accounts_crud_unique_names,
            refusals_add_up_per_limiter_and_reason,
            concurrent_strict_reservations_never_overspend,
            concurrent_soft_reservations_lose_nothing
        );
    };
    (@tests [optional] $factory:expr; $($name:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            /// A fresh store from the factory expression, or `None` to skip.
            #[allow(dead_code)]
            async fn fresh_store() -> ::std::option::Option<::std::sync::Arc<dyn $crate::store::Store>> {
                match $factory.await {
                    ::std::option::Option::Some(s) => ::std::option::Option::Some(::std::sync::Arc::new(s)),
                    ::std::option::Option::None => ::std::option::Option::None,
                }
            }
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let ::std::option::Option::Some(store) = fresh_store().await {
                        $crate::conformance::$name(store).await;
                    }
                }
            )*
        }
    };
    (@tests [plain] $factory:expr; $($name:ident),* $(,)?) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            /// A fresh store from the factory expression. Outside the tests too, so that the
            /// expression is type-checked in every build (`#[test]` functions are compiled
            /// only under `--test`, doctests never).
            #[allow(dead_code)]
            async fn fresh_store() -> ::std::sync::Arc<dyn $crate::store::Store> {
                ::std::sync::Arc::new($factory.await)
            }
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::conformance::$name(fresh_store().await).await;
                }
            )*
        }
    };
}

/// A fixed instant the suite works around: 2025-10-10 12:00:30 UTC, a Friday.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 10, 12, 0, 30).unwrap()
}

/// Create a limiter in `store` with the given budget (dollars as text), period and mode.
pub async fn limiter(
    store: &dyn Store,
    budget: &str,
    period: Period,
    mode: EnforcementMode,
) -> Limiter {
    let mut new = NewLimiter::new(
        format!("conformance {budget}/{period}"),
        budget.parse().unwrap(),
        period,
        "https://api.openai.com",
    );
    new.mode = Some(mode);
    let l = Limiter::create(new, t0()).unwrap();
    store.create_limiter(&l).await.unwrap();
    l
}

/// A usage record for `limiter` at `at` costing `cost` (dollars as text).
pub fn record(
    l: &Limiter,
    at: DateTime<Utc>,
    cost: &str,
    model: &str,
    user: Option<&str>,
) -> UsageRecord {
    let usage = Usage {
        model: Some(model.to_owned()),
        prompt_tokens: 100,
        completion_tokens: 50,
        cached_tokens: 10,
        reasoning_tokens: 5,
        ..Usage::default()
    };
    let mut r = UsageRecord::new(
        l.id,
        at,
        Endpoint::ChatCompletions,
        &usage,
        Some(cost.parse().unwrap()),
    );
    r.user = user.map(str::to_owned);
    r
}

async fn reserve(
    store: &dyn Store,
    l: &Limiter,
    amount: &str,
    at: DateTime<Utc>,
) -> ReserveOutcome {
    store
        .reserve(&ReserveRequest::new(l.id, amount.parse().unwrap(), at))
        .await
        .unwrap()
}

async fn reserved(store: &dyn Store, l: &Limiter, amount: &str, at: DateTime<Utc>) -> Reservation {
    match reserve(store, l, amount, at).await {
        ReserveOutcome::Reserved(r) => r,
        ReserveOutcome::Denied(d) => panic!("expected admission, got {d:?}"),
    }
}

/// The live limiter with this code, through the hot path.
async fn by_code(store: &dyn Store, code: &str) -> Option<Arc<Limiter>> {
    store.find_limiter(LimiterRef::Code(code)).await.unwrap()
}

/// The limiter's own counter for the window (of its current period) containing `at`.
pub async fn spend(store: &dyn Store, id: LimiterId, at: DateTime<Utc>) -> WindowSpend {
    let l = store
        .get_limiter(id)
        .await
        .unwrap()
        .expect("limiter exists");
    store
        .window_spend(&CounterKey::limiter(id, l.window_at(at)))
        .await
        .unwrap()
}

fn m(s: &str) -> Money {
    s.parse().unwrap()
}

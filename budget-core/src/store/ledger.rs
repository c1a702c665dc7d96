//! [`Ledger`]: the budget arithmetic — spend and holds per counter, reservations held against
//! several counters at once — written once for every store that decides in memory.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    admits, BudgetLine, CounterKey, Denial, DenialReason, Hold, Reservation, ReservationId,
    ReserveOutcome, ReserveRequest, WindowSpend,
};
use crate::{Limiter, LimiterId, Money};

/// Spend and holds of one counter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// Settled spend.
    pub spent: Money,
    /// Held by reservations not yet settled or released (never negative).
    pub held: Money,
    /// Number of such reservations.
    pub in_flight: u64,
}

/// A counter the ledger has not been given yet: the store must load its settled spend
/// ([`Ledger::load`]) and ask again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unloaded(pub CounterKey);

/// The hot-path arithmetic of a store that decides in memory: counters (settled spend, holds,
/// in-flight count per [`CounterKey`]) and the open reservations.
///
/// - **All or nothing**: [`reserve`](Self::reserve) admits a request only if every one of its
///   [`BudgetLine`]s admits it, and then holds the amount on all of them; a refusal changes
///   nothing.
/// - **Exact holds**: a hold is returned exactly once, by [`settle`](Self::settle) or
///   [`release`](Self::release) of its reservation id; a second call for the same id is a
///   no-op that returns `None`. Holds never go negative.
/// - **Loading is the store's**: a counter starts from the settled spend the store loads for
///   it ([`load`](Self::load)); `reserve` names the first counter it lacks.
///
/// Not thread-safe by itself: a store keeps it behind one lock, which makes its decisions
/// atomic. [`MemoryStore`](super::MemoryStore) and `budget-store-sqlite` use it; a custom store
/// that decides in memory can too (see `examples/custom-store`).
///
/// ```
/// use budget_core::store::{CounterKey, Ledger, ReserveOutcome, ReserveRequest};
/// use budget_core::{Limiter, Money, NewLimiter, Period};
/// use chrono::Utc;
///
/// let now = Utc::now();
/// let limiter = Limiter::create(NewLimiter::new("demo", Money::from_dollars(1), Period::Day, "https://api.openai.com"), now)?;
/// let mut ledger = Ledger::new();
/// let request = ReserveRequest::new(limiter.id, Money::from_cents(40), now);
/// // The first call names the counter to load; here it has spent nothing yet.
/// let missing = ledger.reserve(&limiter, &request).unwrap_err();
/// ledger.load(missing.0, Money::ZERO);
/// let Ok(ReserveOutcome::Reserved(r)) = ledger.reserve(&limiter, &request) else { panic!() };
/// assert_eq!(r.remaining(), Money::from_cents(60));
/// let settled = ledger.settle(r.id, Money::from_cents(25)).unwrap();
/// assert_eq!(ledger.counter(&settled.holds[0].key).unwrap().spent, Money::from_cents(25));
/// assert!(ledger.settle(r.id, Money::from_cents(25)).is_none()); // once only
/// # Ok::<(), budget_core::ValidationError>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    counters: HashMap<CounterKey, Counter>,
    reservations: HashMap<ReservationId, Reservation>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter, if loaded.
    pub fn counter(&self, key: &CounterKey) -> Option<&Counter> {
        self.counters.get(key)
    }

    /// Is the counter loaded?
    pub fn is_loaded(&self, key: &CounterKey) -> bool {
        self.counters.contains_key(key)
    }

    /// Start counting `key` from its settled spend. A counter already loaded is left as it
    /// is (it is more current than any load).
    pub fn load(&mut self, key: CounterKey, spent: Money) {
        self.counters.entry(key).or_insert(Counter {
            spent,
            ..Counter::default()
        });
    }

    /// The counter's state as a [`WindowSpend`], if loaded.
    pub fn window_spend(&self, key: &CounterKey) -> Option<WindowSpend> {
        self.counters.get(key).map(|c| WindowSpend {
            window: key.window,
            spent: c.spent,
            held: c.held,
            in_flight: c.in_flight,
            leased: Default::default(),
        })
    }

    /// Decide `request` against `limiter` (its budget lines for the request's time and user),
    /// all or nothing. `Err(Unloaded)` names a counter to [`load`](Self::load) first; nothing
    /// has changed then.
    pub fn reserve(
        &mut self,
        limiter: &Limiter,
        request: &ReserveRequest,
    ) -> Result<ReserveOutcome, Unloaded> {
        let lines = limiter.budget_lines(request.at, request.user.as_deref());
        self.reserve_lines(limiter, &lines, request)
    }

    /// [`reserve`](Self::reserve) against explicit lines (at least one).
    pub fn reserve_lines(
        &mut self,
        limiter: &Limiter,
        lines: &[BudgetLine],
        request: &ReserveRequest,
    ) -> Result<ReserveOutcome, Unloaded> {
        assert!(!lines.is_empty(), "a request counts in at least one budget");
        let mut counters = Vec::with_capacity(lines.len());
        for line in lines {
            match self.counters.get(&line.key) {
                Some(c) => counters.push(*c),
                None => return Err(Unloaded(line.key.clone())),
            }
        }
        let denial = |reason, line: &BudgetLine, c: &Counter| {
            ReserveOutcome::Denied(Denial {
                limiter_id: limiter.id,
                user: line.key.user.clone(),
                reason,
                spent: c.spent,
                held: c.held,
                requested: request.amount,
                budget: line.budget,
                period: line.period,
                window: line.key.window,
            })
        };
        if !limiter.is_active {
            return Ok(denial(DenialReason::Inactive, &lines[0], &counters[0]));
        }
        if limiter.is_expired(request.at) {
            return Ok(denial(DenialReason::Expired, &lines[0], &counters[0]));
        }
        if let Some((line, c)) = lines
            .iter()
            .zip(&counters)
            .find(|(l, c)| !admits(l.mode, l.budget, c.spent, c.held, request.amount))
        {
            return Ok(denial(DenialReason::BudgetExceeded, line, c));
        }
        let mut holds = Vec::with_capacity(lines.len());
        for line in lines {
            let c = self.counters.get_mut(&line.key).expect("checked above");
            c.held = c.held.saturating_add(request.amount);
            c.in_flight += 1;
            holds.push(Hold {
                key: line.key.clone(),
                period: line.period,
                budget: line.budget,
                committed: c.spent.saturating_add(c.held),
            });
        }
        let reservation = Reservation::new(limiter.id, request.amount, request.at, holds);
        self.reservations
            .insert(reservation.id, reservation.clone());
        Ok(ReserveOutcome::Reserved(reservation))
    }

    /// Replace reservation `id`'s holds with `cost` spent on each of its counters. Returns the
    /// reservation, or `None` if it was already settled or released (nothing changes then).
    pub fn settle(&mut self, id: ReservationId, cost: Money) -> Option<Reservation> {
        let r = self.reservations.remove(&id)?;
        for h in &r.holds {
            if let Some(c) = self.counters.get_mut(&h.key) {
                unhold(c, r.amount);
                c.spent = c.spent.saturating_add(cost);
            }
        }
        Some(r)
    }

    /// Drop reservation `id`'s holds, charging nothing. `None` if it was already settled or
    /// released.
    pub fn release(&mut self, id: ReservationId) -> Option<Reservation> {
        let r = self.reservations.remove(&id)?;
        for h in &r.holds {
            if let Some(c) = self.counters.get_mut(&h.key) {
                unhold(c, r.amount);
            }
        }
        Some(r)
    }

    /// Add `cost` to the counter's spend if it is loaded (an unloaded one includes it when
    /// loaded from the store's records). Returns whether it was loaded.
    pub fn add_spent(&mut self, key: &CounterKey, cost: Money) -> bool {
        match self.counters.get_mut(key) {
            Some(c) => {
                c.spent = c.spent.saturating_add(cost);
                true
            }
            None => false,
        }
    }

    /// The open reservation `id`.
    pub fn reservation(&self, id: ReservationId) -> Option<&Reservation> {
        self.reservations.get(&id)
    }

    /// Number of open reservations.
    pub fn open_reservations(&self) -> usize {
        self.reservations.len()
    }

    /// Forget a limiter's counters and drop its open reservations (deleted, or its windows
    /// changed shape: they are loaded again from the records when next needed). Settling a
    /// dropped reservation then finds nothing (`None`).
    pub fn forget_limiter(&mut self, id: LimiterId) {
        self.counters.retain(|k, _| k.limiter_id != id);
        self.reservations.retain(|_, r| r.limiter_id != id);
    }

    /// Forget a limiter's counters but keep its open reservations (its windows changed shape:
    /// the new ones are loaded from the records; the old holds are gone, their costs still
    /// count when settled, as records).
    pub fn forget_counters(&mut self, id: LimiterId) {
        self.counters.retain(|k, _| k.limiter_id != id);
    }

    /// Drop counters whose window ended at or before `before` and that hold nothing (memory
    /// stays bounded by the counters in use, however many end users or windows pass). Call it
    /// with the start of the window being loaded: the other counters of the same request
    /// contain that request's time, so they end after it and are kept.
    pub fn evict_ended(&mut self, before: DateTime<Utc>) {
        self.counters
            .retain(|k, c| k.window.end > before || c.in_flight > 0);
    }

    /// Number of loaded counters.
    pub fn counters_loaded(&self) -> usize {
        self.counters.len()
    }
}

fn unhold(c: &mut Counter, amount: Money) {
    debug_assert!(c.held >= amount, "a hold is returned once");
    c.held = c.held.saturating_sub(amount).non_negative();
    c.in_flight = c.in_flight.saturating_sub(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EnforcementMode, NewLimiter, Period};
    use proptest::prelude::*;

    fn limiter(budget_cents: i64, mode: EnforcementMode) -> Limiter {
        let mut l = Limiter::create(
            NewLimiter::new(
                "t",
                Money::from_cents(budget_cents),
                Period::Day,
                "https://api.openai.com",
            ),
            Utc::now(),
        )
        .unwrap();
        l.mode = mode;
        l
    }

    /// Two lines: the limiter's own day and a user's day with budget `user_cents`.
    fn two_lines(l: &Limiter, user_cents: i64, at: DateTime<Utc>) -> Vec<BudgetLine> {
        let mut lines = l.budget_lines(at, None);
        let mut user = lines[0].clone();
        user.key.user = Some("u".into());
        user.budget = Money::from_cents(user_cents);
        lines.push(user);
        lines
    }

    fn load_all(ledger: &mut Ledger, lines: &[BudgetLine]) {
        for line in lines {
            ledger.load(line.key.clone(), Money::ZERO);
        }
    }

    #[test]
    fn all_or_nothing_across_counters() {
        let now = Utc::now();
        let l = limiter(1000, EnforcementMode::Strict);
        let lines = two_lines(&l, 300, now);
        let mut ledger = Ledger::new();
        let req = ReserveRequest::new(l.id, Money::from_cents(200), now);
        assert_eq!(
            ledger.reserve_lines(&l, &lines, &req),
            Err(Unloaded(lines[0].key.clone()))
        );
        load_all(&mut ledger, &lines);
        let Ok(ReserveOutcome::Reserved(r)) = ledger.reserve_lines(&l, &lines, &req) else {
            panic!("first fits both")
        };
        assert_eq!(r.holds.len(), 2);
        // The tightest hold is the user's: $3 budget, $2 held.
        assert_eq!(r.remaining(), Money::from_cents(100));
        assert_eq!(r.budget, Money::from_cents(300));
        // The second would pass the user's $3: refused, and neither counter moves.
        let before: Vec<Counter> = lines
            .iter()
            .map(|l| *ledger.counter(&l.key).unwrap())
            .collect();
        let Ok(ReserveOutcome::Denied(d)) = ledger.reserve_lines(&l, &lines, &req) else {
            panic!("second passes the user budget")
        };
        assert_eq!(d.user.as_deref(), Some("u"));
        assert_eq!(d.budget, Money::from_cents(300));
        let after: Vec<Counter> = lines
            .iter()
            .map(|l| *ledger.counter(&l.key).unwrap())
            .collect();
        assert_eq!(before, after);
        // Settling charges both counters and frees both holds.
        ledger.settle(r.id, Money::from_cents(150)).unwrap();
        for line in &lines {
            let c = ledger.counter(&line.key).unwrap();
            assert_eq!(
                (c.spent, c.held, c.in_flight),
                (Money::from_cents(150), Money::ZERO, 0)
            );
        }
    }

    #[test]
    fn inactive_is_refused_before_any_budget() {
        let now = Utc::now();
        let mut l = limiter(1000, EnforcementMode::Soft);
        l.is_active = false;
        let mut ledger = Ledger::new();
        let req = ReserveRequest::new(l.id, Money::ZERO, now);
        load_all(&mut ledger, &l.budget_lines(now, None));
        let Ok(ReserveOutcome::Denied(d)) = ledger.reserve(&l, &req) else {
            panic!()
        };
        assert_eq!(d.reason, DenialReason::Inactive);
        assert_eq!(ledger.open_reservations(), 0);
    }

    #[test]
    fn ended_windows_are_evicted_unless_in_flight() {
        let l = limiter(1000, EnforcementMode::Soft);
        let then = Utc::now() - chrono::TimeDelta::days(3);
        let mut ledger = Ledger::new();
        let req = ReserveRequest::new(l.id, Money::from_cents(1), then);
        let lines = l.budget_lines(then, None);
        load_all(&mut ledger, &lines);
        let Ok(ReserveOutcome::Reserved(r)) = ledger.reserve(&l, &req) else {
            panic!()
        };
        ledger.evict_ended(Utc::now());
        assert!(
            ledger.is_loaded(&lines[0].key),
            "kept while a request is in flight"
        );
        ledger.release(r.id).unwrap();
        ledger.evict_ended(Utc::now());
        assert!(!ledger.is_loaded(&lines[0].key));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve { cents: i64, user: bool },
        Settle { nth: usize, cents: i64 },
        Release { nth: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0i64..400, any::<bool>()).prop_map(|(cents, user)| Op::Reserve { cents, user }),
            (0usize..16, 0i64..400).prop_map(|(nth, cents)| Op::Settle { nth, cents }),
            (0usize..16).prop_map(|nth| Op::Release { nth }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any sequence of reserves, settles and releases (repeats included): holds are never
        /// negative and equal the sum of open reservations on each counter; a settle or release
        /// of an id already closed changes nothing; a strict admission never commits a counter
        /// past its budget; spend is exactly the sum of settled costs.
        #[test]
        fn ledger_invariants(ops in proptest::collection::vec(op(), 1..60), strict in any::<bool>()) {
            let now = Utc::now();
            let mode = if strict { EnforcementMode::Strict } else { EnforcementMode::Soft };
            let l = limiter(1000, mode);
            let lines = two_lines(&l, 600, now);
            let mut ledger = Ledger::new();
            load_all(&mut ledger, &lines);
            let mut ids: Vec<ReservationId> = Vec::new();
            let mut open: HashMap<ReservationId, (Money, bool)> = HashMap::new();
            let mut spent = [Money::ZERO, Money::ZERO];
            for op in ops {
                match op {
                    Op::Reserve { cents, user } => {
                        let used = if user { &lines[..] } else { &lines[..1] };
                        let req = ReserveRequest::new(l.id, Money::from_cents(cents), now);
                        let before: Vec<Counter> = lines.iter().map(|x| *ledger.counter(&x.key).unwrap()).collect();
                        match ledger.reserve_lines(&l, used, &req).unwrap() {
                            ReserveOutcome::Reserved(r) => {
                                if strict {
                                    for h in &r.holds {
                                        prop_assert!(h.committed <= h.budget);
                                    }
                                }
                                ids.push(r.id);
                                open.insert(r.id, (r.amount, user));
                            }
                            ReserveOutcome::Denied(_) => {
                                let after: Vec<Counter> = lines.iter().map(|x| *ledger.counter(&x.key).unwrap()).collect();
                                prop_assert_eq!(before, after);
                            }
                        }
                    }
                    Op::Settle { nth, cents } => {
                        let Some(&id) = ids.get(nth) else { continue };
                        let cost = Money::from_cents(cents);
                        let got = ledger.settle(id, cost);
                        match open.remove(&id) {
                            Some((_, user)) => {
                                prop_assert!(got.is_some());
                                spent[0] += cost;
                                if user { spent[1] += cost; }
                            }
                            None => prop_assert!(got.is_none()),
                        }
                    }
                    Op::Release { nth } => {
                        let Some(&id) = ids.get(nth) else { continue };
                        let got = ledger.release(id);
                        prop_assert_eq!(got.is_some(), open.remove(&id).is_some());
                    }
                }
                for (i, line) in lines.iter().enumerate() {
                    let c = ledger.counter(&line.key).unwrap();
                    let expect_held: Money = open.values().filter(|(_, u)| i == 0 || *u).map(|(a, _)| *a).sum();
                    let expect_n = open.values().filter(|(_, u)| i == 0 || *u).count() as u64;
                    prop_assert!(c.held >= Money::ZERO);
                    prop_assert_eq!(c.held, expect_held);
                    prop_assert_eq!(c.in_flight, expect_n);
                    prop_assert_eq!(c.spent, spent[i]);
                }
            }
        }
    }
}

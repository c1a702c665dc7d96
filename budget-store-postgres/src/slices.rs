//! [`Slice`]: this replica's share of one budget counter, and the local arithmetic that admits
//! requests from it without a round trip.
//!
//! A slice mirrors one lease row: `granted` (money the database set aside for this replica),
//! `exposed` (the durable upper bound of what this replica may have spent or hold on it: what a
//! crash would be charged) and, kept only here, `settled` (charged on this lease, written or
//! not) and `held` (reserved by requests in flight). The rules:
//!
//! - strict: admit only if `settled + held + amount ≤ exposed`;
//! - soft: admit while `settled + held < exposed`;
//! - past `exposed` but within `granted`: raise `exposed` first (one small write to the
//!   replica's own lease row); past `granted`: ask for a grant.

use std::time::{Duration, Instant};

use budget_core::store::BudgetLine;
use budget_core::{EnforcementMode, Money};

/// The database's figures for a counter at the last round trip.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct View {
    pub(crate) spent: Money,
    pub(crate) leased: Money,
    pub(crate) budget: Money,
}

/// What a request needs before a slice can admit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// It fits: hold it.
    Fits,
    /// Raise `exposed` on lease `lease` to `to` (within `granted`).
    Expose { lease: i64, to: Money },
    /// Ask for at least `min` more (this request's own need; ideally `want`, which covers
    /// the requests waiting behind it and the recent demand), then expose up to `expose`.
    Grant {
        min: Money,
        want: Money,
        expose: Money,
    },
}

/// This replica's slice of one counter.
#[derive(Debug, Clone)]
pub(crate) struct Slice {
    pub(crate) line: BudgetLine,
    pub(crate) lease: Option<i64>,
    pub(crate) granted: Money,
    pub(crate) exposed: Money,
    pub(crate) settled: Money,
    pub(crate) held: Money,
    pub(crate) in_flight: u64,
    /// Admissions stop here (the lease's TTL less a margin, from the last renewal sent).
    pub(crate) deadline: Option<Instant>,
    /// A database call for this slice is under way; others wait for it.
    pub(crate) busy: bool,
    /// Requests waiting for that call, and what they want to hold together.
    pub(crate) waiting: Money,
    /// Another replica was refused while this one holds unused money: give it back.
    pub(crate) wanted: bool,
    /// Little is left: grants are exactly what is asked for; give back after each request.
    pub(crate) endgame: bool,
    pub(crate) view: View,
    /// Admitted since the last report, and the smoothed demand per second.
    admitted: Money,
    rate: Money,
    pub(crate) last_admit: Option<Instant>,
}

impl Slice {
    pub(crate) fn new(line: BudgetLine) -> Self {
        Slice {
            view: View {
                budget: line.budget,
                ..View::default()
            },
            line,
            lease: None,
            granted: Money::ZERO,
            exposed: Money::ZERO,
            settled: Money::ZERO,
            held: Money::ZERO,
            in_flight: 0,
            deadline: None,
            busy: false,
            waiting: Money::ZERO,
            wanted: false,
            endgame: false,
            admitted: Money::ZERO,
            rate: Money::ZERO,
            last_admit: None,
        }
    }

    /// Spent or held on this slice.
    pub(crate) fn committed(&self) -> Money {
        self.settled.saturating_add(self.held)
    }

    fn strict(&self) -> bool {
        self.line.mode == EnforcementMode::Strict
    }

    /// Does the lease still admit (held, and renewed recently enough)?
    pub(crate) fn usable(&self, now: Instant) -> bool {
        self.lease.is_some() && self.deadline.is_some_and(|d| now < d)
    }

    fn fits(&self, limit: Money, amount: Money) -> bool {
        let c = self.committed();
        if self.strict() {
            c.saturating_add(amount) <= limit
        } else {
            c < limit
        }
    }

    /// How far to expose beyond what a request needs: about a quarter second of demand, and
    /// at least two requests like this one.
    fn step(&self, amount: Money) -> Money {
        let quarter = Money::from_nanos(self.rate.as_nanos() / 4);
        quarter
            .max(amount.saturating_add(amount))
            .max(Money::from_nanos(1))
    }

    /// What a request reserving `amount` needs.
    pub(crate) fn need(&self, amount: Money, now: Instant, slice_demand: Duration) -> Need {
        let usable = self.usable(now);
        if usable && self.fits(self.exposed, amount) {
            return Need::Fits;
        }
        let step = self.step(amount);
        let c = self.committed();
        if usable && self.fits(self.granted, amount) {
            return Need::Expose {
                lease: self.lease.unwrap_or_default(),
                to: self
                    .granted
                    .min(c.saturating_add(amount).saturating_add(step)),
            };
        }
        // The floor is this request's own need; requests waiting behind it make the ask
        // bigger but never turn a grant this one could have had into a refusal.
        let min = c
            .saturating_add(amount)
            .saturating_sub(self.granted)
            .max(Money::from_nanos(1));
        let demand = Money::from_nanos(
            (i128::from(self.rate.as_nanos()) * slice_demand.as_millis() as i128 / 1000)
                .clamp(0, i128::from(i64::MAX)) as i64,
        );
        let want = min
            .saturating_add(self.waiting)
            .max(demand)
            .max(Money::from_nanos(amount.as_nanos().saturating_mul(4)));
        Need::Grant {
            min,
            want,
            expose: c
                .saturating_add(amount)
                .saturating_add(self.waiting)
                .saturating_add(step),
        }
    }

    /// Hold `amount` (after [`Need::Fits`]).
    pub(crate) fn hold(&mut self, amount: Money, now: Instant) {
        self.held = self.held.saturating_add(amount);
        self.in_flight += 1;
        self.admitted = self.admitted.saturating_add(amount);
        self.last_admit = Some(now);
    }

    /// A request of this lease ended: drop its hold, charge `cost`.
    pub(crate) fn finish(&mut self, amount: Money, cost: Money) {
        self.held = self.held.saturating_sub(amount).max(Money::ZERO);
        self.in_flight = self.in_flight.saturating_sub(1);
        self.settled = self.settled.saturating_add(cost);
    }

    /// The database granted: lease `lease` now has `granted` and `exposed`. A different lease
    /// than before (the old one expired) starts from nothing.
    pub(crate) fn granted(
        &mut self,
        lease: i64,
        granted: Money,
        exposed: Money,
        deadline: Instant,
    ) {
        if self.lease != Some(lease) {
            self.settled = Money::ZERO;
            self.held = Money::ZERO;
            self.in_flight = 0;
        }
        self.lease = Some(lease);
        self.granted = granted;
        self.exposed = exposed;
        self.deadline = Some(deadline);
    }

    /// The lease is gone (reclaimed while this replica was away, or closed): requests still
    /// in flight on it settle to the old lease in the database; the slice starts over.
    pub(crate) fn lost(&mut self) {
        self.lease = None;
        self.granted = Money::ZERO;
        self.exposed = Money::ZERO;
        self.settled = Money::ZERO;
        self.held = Money::ZERO;
        self.in_flight = 0;
        self.deadline = None;
        self.endgame = false;
    }

    /// Budget left for a request admitted now, as far as this replica knows: what the
    /// database has free plus what this slice has unused.
    pub(crate) fn remaining(&self) -> Money {
        let free = self
            .view
            .budget
            .saturating_sub(self.view.spent)
            .saturating_sub(self.view.leased)
            .max(Money::ZERO);
        free.saturating_add(
            self.granted
                .saturating_sub(self.committed())
                .max(Money::ZERO),
        )
    }

    /// Should the report give back everything this slice does not use right now?
    pub(crate) fn give_back(&self, now: Instant, idle_return: Duration) -> bool {
        self.wanted
            || self.endgame
            || self
                .last_admit
                .is_none_or(|t| now.duration_since(t) >= idle_return)
    }

    /// Fold the demand of the last `interval` into the smoothed rate.
    pub(crate) fn tick(&mut self, interval: Duration) {
        let per_sec = i128::from(self.admitted.as_nanos()) * 1000
            / i128::from(
                u32::try_from(interval.as_millis())
                    .unwrap_or(u32::MAX)
                    .max(1),
            );
        let per_sec = per_sec.clamp(0, i128::from(i64::MAX)) as i64;
        self.rate = Money::from_nanos(self.rate.as_nanos() / 2 + per_sec / 2);
        self.admitted = Money::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use budget_core::store::CounterKey;
    use budget_core::{LimiterId, Period};

    fn slice(mode: EnforcementMode) -> Slice {
        let now = chrono::Utc::now();
        Slice::new(BudgetLine {
            key: CounterKey::limiter(LimiterId::new(), Period::Day.window_at(now)),
            budget: Money::from_dollars(10),
            mode,
            period: Period::Day,
        })
    }

    fn d(n: i64) -> Money {
        Money::from_dollars(n)
    }

    #[test]
    fn strict_admits_within_exposed_then_exposes_then_grants() {
        let now = Instant::now();
        let later = now + Duration::from_secs(10);
        let mut s = slice(EnforcementMode::Strict);
        assert!(
            matches!(s.need(d(1), now, Duration::from_secs(2)), Need::Grant { min, .. } if min == d(1))
        );
        s.granted(7, d(4), d(2), later);
        assert_eq!(s.need(d(1), now, Duration::ZERO), Need::Fits);
        s.hold(d(1), now);
        s.hold(d(1), now);
        // 2 committed of 2 exposed: the next needs exposure, within the 4 granted.
        assert_eq!(
            s.need(d(1), now, Duration::ZERO),
            Need::Expose { lease: 7, to: d(4) }
        );
        s.exposed = d(4);
        s.hold(d(1), now);
        s.hold(d(1), now);
        match s.need(d(1), now, Duration::ZERO) {
            Need::Grant { min, want, .. } => {
                assert_eq!(min, d(1));
                assert!(want >= min);
            }
            n => panic!("{n:?}"),
        }
        // A finished request frees its hold and charges its cost.
        s.finish(d(1), Money::from_cents(25));
        assert_eq!(s.committed(), Money::from_cents(325));
        assert_eq!(
            s.need(Money::from_cents(75), now, Duration::ZERO),
            Need::Fits
        );
    }

    #[test]
    fn an_expired_deadline_admits_nothing() {
        let now = Instant::now();
        let mut s = slice(EnforcementMode::Strict);
        s.granted(1, d(5), d(5), now);
        assert!(matches!(
            s.need(d(1), now, Duration::ZERO),
            Need::Grant { .. }
        ));
        s.deadline = Some(now + Duration::from_secs(1));
        assert_eq!(s.need(d(1), now, Duration::ZERO), Need::Fits);
    }

    #[test]
    fn soft_admits_while_under_exposed() {
        let now = Instant::now();
        let mut s = slice(EnforcementMode::Soft);
        s.granted(1, d(2), d(2), now + Duration::from_secs(5));
        assert_eq!(s.need(d(5), now, Duration::ZERO), Need::Fits);
        s.hold(d(5), now);
        assert!(matches!(
            s.need(d(1), now, Duration::ZERO),
            Need::Grant { .. }
        ));
    }

    #[test]
    fn a_new_lease_starts_from_nothing() {
        let now = Instant::now();
        let mut s = slice(EnforcementMode::Strict);
        s.granted(1, d(5), d(5), now + Duration::from_secs(5));
        s.hold(d(2), now);
        s.granted(2, d(3), d(3), now + Duration::from_secs(5));
        assert_eq!(
            (s.held, s.in_flight, s.committed()),
            (Money::ZERO, 0, Money::ZERO)
        );
        // $10 budget, this slice's $3 leased: $7 free elsewhere plus the $3 unused here.
        s.view.leased = d(3);
        assert_eq!(s.remaining(), d(10));
    }

    #[test]
    fn demand_sizes_the_next_grant() {
        let now = Instant::now();
        let mut s = slice(EnforcementMode::Strict);
        s.granted(1, d(100), d(100), now + Duration::from_secs(5));
        for _ in 0..50 {
            s.hold(d(1), now);
        }
        s.tick(Duration::from_secs(1));
        s.exposed = d(50);
        s.granted = d(50);
        match s.need(d(1), now, Duration::from_secs(2)) {
            Need::Grant { want, .. } => assert_eq!(want, d(50), "half of 50/s, for 2 s"),
            n => panic!("{n:?}"),
        }
    }
}

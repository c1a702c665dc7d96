//! The hot path's memory: limiters, per-window counters and open reservations, behind one
//! `std::sync::Mutex` that is never held across an `.await`.

use std::collections::HashMap;
use std::sync::Arc;

use budget_core::store::{Error, LimiterIndex, Reservation, ReservationId, UsageRecord};
use budget_core::{Limiter, LimiterId, Money, Window};

/// Where a window's settled spend stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Load {
    /// `spent` is the window's full spend.
    Ready,
    /// The writer is summing the window's committed usage (load number `n`); `spent` holds
    /// only what was charged since the load was asked for, and the sum is added when it lands.
    Loading(u64),
    /// The load failed; the next caller reports this and tries again.
    Failed(Arc<str>),
}

/// Spend, holds and in-flight count of one (limiter, window).
#[derive(Debug, Clone)]
pub(crate) struct Counter {
    pub(crate) spent: Money,
    pub(crate) held: Money,
    pub(crate) in_flight: u64,
    pub(crate) load: Load,
}

impl Counter {
    pub(crate) fn ready(spent: Money) -> Self {
        Counter {
            spent,
            held: Money::ZERO,
            in_flight: 0,
            load: Load::Ready,
        }
    }
}

/// Everything budget decisions read, authoritative for this process.
#[derive(Debug, Default)]
pub(crate) struct HotState {
    pub(crate) limiters: LimiterIndex,
    pub(crate) windows: HashMap<(LimiterId, Window), Counter>,
    pub(crate) reservations: HashMap<ReservationId, Reservation>,
    pub(crate) next_load: u64,
}

impl HotState {
    pub(crate) fn new(limiters: Vec<Limiter>) -> Self {
        HotState {
            limiters: LimiterIndex::new(limiters),
            ..HotState::default()
        }
    }

    /// The limiter, unless unknown or deleted.
    pub(crate) fn live(&self, id: LimiterId) -> Result<&Limiter, Error> {
        self.limiters.live(id)
    }

    /// Count `record`'s cost in its window's counter if that counter exists (a missing one is
    /// summed from the database, record included, when first needed).
    pub(crate) fn charge(&mut self, record: &UsageRecord) {
        if let Some(window) = self
            .limiters
            .get(record.limiter_id)
            .map(|l| l.window_at(record.at))
        {
            if let Some(c) = self.windows.get_mut(&(record.limiter_id, window)) {
                c.spent += record.cost;
            }
        }
    }

    /// Give back a reservation's hold.
    pub(crate) fn unhold(&mut self, r: &Reservation) {
        if let Some(c) = self.windows.get_mut(&(r.limiter_id, r.window)) {
            c.held = (c.held - r.amount).non_negative();
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }

    /// Forget everything in memory about a limiter's windows and holds.
    pub(crate) fn forget_windows(&mut self, id: LimiterId) {
        self.windows.retain(|(l, _), _| *l != id);
    }
}

//! The hot path's memory: limiters, the [`Ledger`] (counters and open reservations) and the
//! counters being summed from the database, behind one `std::sync::Mutex` that is never held
//! across an `.await`.

use std::collections::HashMap;
use std::sync::Arc;

use budget_core::credential::Credential;
use budget_core::store::{
    CounterKey, CredentialIndex, Error, Ledger, LimiterIndex, Reservation, UsageRecord,
};
use budget_core::{Limiter, LimiterId, Money};

/// A counter the ledger does not have yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Load {
    /// The writer is summing the counter's committed usage (load number `n`); the money is what
    /// was charged to it since the load was asked for, added when the sum lands.
    Loading(u64, Money),
    /// The load failed; the next caller reports this and tries again.
    Failed(Arc<str>),
}

/// Everything budget decisions read, authoritative for this process.
#[derive(Debug, Default)]
pub(crate) struct HotState {
    pub(crate) limiters: LimiterIndex,
    pub(crate) credentials: CredentialIndex,
    pub(crate) ledger: Ledger,
    pub(crate) loading: HashMap<CounterKey, Load>,
    pub(crate) next_load: u64,
}

impl HotState {
    pub(crate) fn new(limiters: Vec<Limiter>, credentials: Vec<Credential>) -> Self {
        HotState {
            limiters: LimiterIndex::new(limiters),
            credentials: CredentialIndex::new(credentials),
            ..HotState::default()
        }
    }

    /// The limiter, unless unknown or deleted.
    pub(crate) fn live(&self, id: LimiterId) -> Result<&Arc<Limiter>, Error> {
        self.limiters.live(id)
    }

    /// Count `cost` in counter `key`: in the ledger if loaded, else in its pending load (a
    /// counter neither loaded nor loading includes it when summed from the database later).
    fn charge_key(&mut self, key: &CounterKey, cost: Money) {
        if !self.ledger.add_spent(key, cost) {
            if let Some(Load::Loading(_, since)) = self.loading.get_mut(key) {
                *since += cost;
            }
        }
    }

    /// Count a record that had no reservation in every counter it belongs to.
    pub(crate) fn charge(&mut self, record: &UsageRecord) {
        let Some(l) = self.limiters.get(record.limiter_id).cloned() else {
            return;
        };
        for line in l.budget_lines(record.at, record.user.as_deref()) {
            self.charge_key(&line.key, record.cost);
        }
    }

    /// The settled reservation's counters that were loading when it settled get its cost
    /// there (the ledger charged the loaded ones).
    pub(crate) fn charge_loading(&mut self, r: &Reservation, cost: Money) {
        for h in &r.holds {
            if !self.ledger.is_loaded(&h.key) {
                self.charge_key(&h.key, cost);
            }
        }
    }

    /// The limiter's windows change shape: forget its counters (the new ones are summed from
    /// the database when first touched). Holds of requests in flight are dropped; their cost
    /// still counts when settled.
    pub(crate) fn forget_counters(&mut self, id: LimiterId) {
        self.ledger.forget_counters(id);
        self.loading.retain(|k, _| k.limiter_id != id);
    }

    /// The limiter is deleted: forget its counters and open reservations.
    pub(crate) fn forget_limiter(&mut self, id: LimiterId) {
        self.ledger.forget_limiter(id);
        self.loading.retain(|k, _| k.limiter_id != id);
    }
}

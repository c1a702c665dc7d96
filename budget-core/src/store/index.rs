//! [`LimiterIndex`]: limiters by id, with live codes indexed.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Error, LimiterRef, Result};
use crate::{Limiter, LimiterId};

/// The in-memory catalogue of limiters a store keeps for its hot path: by id, and live
/// (not deleted) ones by proxy code. Used by [`MemoryStore`](super::MemoryStore) and as the
/// limiter cache of `budget-store-sqlite`; a custom store can keep one too.
#[derive(Debug, Default, Clone)]
pub struct LimiterIndex {
    limiters: HashMap<LimiterId, Arc<Limiter>>,
    by_code: HashMap<String, LimiterId>,
}

impl LimiterIndex {
    /// An index of these limiters.
    pub fn new(limiters: impl IntoIterator<Item = Limiter>) -> Self {
        let mut index = LimiterIndex::default();
        for l in limiters {
            index.put(l);
        }
        index
    }

    /// Any limiter (deleted ones included) by id.
    pub fn get(&self, id: LimiterId) -> Option<&Arc<Limiter>> {
        self.limiters.get(&id)
    }

    /// A live limiter by id; [`Error::LimiterNotFound`] for unknown or deleted ones.
    pub fn live(&self, id: LimiterId) -> Result<&Arc<Limiter>> {
        self.limiters
            .get(&id)
            .filter(|l| l.deleted_at.is_none())
            .ok_or(Error::LimiterNotFound(id))
    }

    /// The live limiter with this code: its current one, or its previous one during a
    /// rotation's grace period ([`Limiter::previous_code`]).
    pub fn by_code(&self, code: &str) -> Option<&Arc<Limiter>> {
        self.by_code_at(code, chrono::Utc::now())
    }

    /// [`by_code`](Self::by_code) at time `t` (a previous code's grace period ends by `t`).
    pub fn by_code_at(
        &self,
        code: &str,
        t: chrono::DateTime<chrono::Utc>,
    ) -> Option<&Arc<Limiter>> {
        self.by_code
            .get(code)
            .and_then(|id| self.limiters.get(id))
            .filter(|l| l.answers_to(code, t))
    }

    /// The live limiter the request path names (what [`BudgetStore::find_limiter`]
    /// answers); a cheap `Arc` clone.
    ///
    /// [`BudgetStore::find_limiter`]: super::BudgetStore::find_limiter
    pub fn find(&self, by: LimiterRef<'_>) -> Option<Arc<Limiter>> {
        match by {
            LimiterRef::Code(code) => self.by_code(code).cloned(),
            LimiterRef::Id(id) => self.live(id).ok().cloned(),
        }
    }

    /// Is this code in use by a live limiter (as its code or a previous one)?
    pub fn code_taken(&self, code: &str) -> bool {
        self.by_code.contains_key(code)
    }

    /// All limiters, oldest first (then by id); deleted ones only when asked.
    pub fn list(&self, include_deleted: bool) -> Vec<Limiter> {
        let mut all: Vec<Limiter> = self
            .limiters
            .values()
            .filter(|l| include_deleted || l.deleted_at.is_none())
            .map(|l| Limiter::clone(l))
            .collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Insert or replace a limiter, keeping the code index right (a replaced limiter's old
    /// code is retired; a deleted limiter's code is not indexed). Returns the previous state.
    pub fn put(&mut self, limiter: Limiter) -> Option<Arc<Limiter>> {
        let limiter = Arc::new(limiter);
        let old = self.limiters.insert(limiter.id, limiter.clone());
        if let Some(o) = &old {
            self.unindex(o);
        }
        if limiter.deleted_at.is_none() {
            self.by_code
                .insert(limiter.code.as_str().to_owned(), limiter.id);
            if let Some(p) = &limiter.previous_code {
                self.by_code.insert(p.code.as_str().to_owned(), limiter.id);
            }
        }
        old
    }

    /// Forget the codes of `l` (those still pointing at it).
    fn unindex(&mut self, l: &Limiter) {
        let codes = std::iter::once(&l.code).chain(l.previous_code.as_ref().map(|p| &p.code));
        for code in codes {
            if self.by_code.get(code.as_str()) == Some(&l.id) {
                self.by_code.remove(code.as_str());
            }
        }
    }

    /// Remove a limiter entirely (purge).
    pub fn remove(&mut self, id: LimiterId) -> Option<Arc<Limiter>> {
        let old = self.limiters.remove(&id)?;
        self.unindex(&old);
        Some(old)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LimiterCode, Money, NewLimiter, Period};

    fn limiter() -> Limiter {
        let n = NewLimiter::new(
            "x",
            Money::from_dollars(1),
            Period::Day,
            "https://api.openai.com",
        );
        Limiter::create(n, chrono::Utc::now()).unwrap()
    }

    #[test]
    fn codes_follow_rotation_deletion_and_purge() {
        let a = limiter();
        let mut index = LimiterIndex::new([a.clone()]);
        assert_eq!(index.by_code(a.code.as_str()).map(|l| l.id), Some(a.id));
        let mut rotated = a.clone();
        rotated.code = LimiterCode::generate();
        assert!(index.put(rotated.clone()).is_some());
        assert!(index.by_code(a.code.as_str()).is_none());
        assert!(index.code_taken(rotated.code.as_str()));
        let mut deleted = rotated.clone();
        deleted.deleted_at = Some(chrono::Utc::now());
        index.put(deleted);
        assert!(index.by_code(rotated.code.as_str()).is_none());
        assert!(matches!(index.live(a.id), Err(Error::LimiterNotFound(_))));
        assert!(index.get(a.id).is_some());
        assert_eq!((index.list(false).len(), index.list(true).len()), (0, 1));
        assert!(index.remove(a.id).is_some());
        assert!(index.get(a.id).is_none());
    }

    #[test]
    fn a_previous_code_works_until_its_grace_period_ends() {
        let a = limiter();
        let mut index = LimiterIndex::new([a.clone()]);
        let now = chrono::Utc::now();
        let mut rotated = a.clone();
        rotated.rotate_code(now, Some(now + chrono::Duration::minutes(5)));
        index.put(rotated.clone());
        assert!(rotated.code.as_str().starts_with(LimiterCode::PREFIX));
        assert_eq!(
            index.by_code_at(a.code.as_str(), now).map(|l| l.id),
            Some(a.id)
        );
        assert_eq!(
            index.by_code_at(rotated.code.as_str(), now).map(|l| l.id),
            Some(a.id)
        );
        let later = now + chrono::Duration::minutes(5);
        assert!(
            index.by_code_at(a.code.as_str(), later).is_none(),
            "grace is over"
        );
        assert!(index.code_taken(a.code.as_str()));
        // A second rotation without grace retires both older codes at once.
        let mut again = rotated.clone();
        again.rotate_code(now, None);
        index.put(again.clone());
        assert!(index.by_code_at(a.code.as_str(), now).is_none());
        assert!(index.by_code_at(rotated.code.as_str(), now).is_none());
        assert_eq!(
            index.by_code_at(again.code.as_str(), now).map(|l| l.id),
            Some(a.id)
        );
        assert!(!index.code_taken(a.code.as_str()));
    }
}

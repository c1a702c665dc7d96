//! [`CredentialIndex`]: the upstream credentials a store keeps in memory for its hot path.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Error, LimiterIndex, Result};
use crate::credential::{Credential, CredentialId};

/// Upstream credentials by id, with the checks every store makes before writing one: unique
/// ids and names, and no deleting one that a live limiter uses. Used by the stores of this
/// workspace; a custom store can keep one too.
#[derive(Debug, Default, Clone)]
pub struct CredentialIndex {
    by_id: HashMap<CredentialId, Arc<Credential>>,
}

impl CredentialIndex {
    /// An index of these credentials.
    pub fn new(credentials: impl IntoIterator<Item = Credential>) -> Self {
        let mut index = CredentialIndex::default();
        for c in credentials {
            index.put(c);
        }
        index
    }

    /// A credential by id (what [`BudgetStore::find_credential`] answers).
    ///
    /// [`BudgetStore::find_credential`]: super::BudgetStore::find_credential
    pub fn get(&self, id: CredentialId) -> Option<Arc<Credential>> {
        self.by_id.get(&id).cloned()
    }

    /// Every credential, by name.
    pub fn list(&self) -> Vec<Credential> {
        let mut all: Vec<Credential> = self.by_id.values().map(|c| Credential::clone(c)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        all
    }

    /// May `c` be created: valid, and neither its id nor its name taken?
    pub fn check_new(&self, c: &Credential) -> Result<()> {
        c.validate()?;
        if self.by_id.contains_key(&c.id) {
            return Err(Error::Conflict(format!(
                "credential id {} already exists",
                c.id
            )));
        }
        self.check_name(c)
    }

    /// May `c` replace the stored credential with its id: valid, existing, and its name not
    /// another's?
    pub fn check_update(&self, c: &Credential) -> Result<()> {
        c.validate()?;
        if !self.by_id.contains_key(&c.id) {
            return Err(Error::CredentialNotFound(c.id));
        }
        self.check_name(c)
    }

    fn check_name(&self, c: &Credential) -> Result<()> {
        if self
            .by_id
            .values()
            .any(|o| o.id != c.id && o.name == c.name)
        {
            return Err(Error::Conflict(format!(
                "a credential named {:?} already exists",
                c.name
            )));
        }
        Ok(())
    }

    /// May the credential `id` be deleted: it exists, and no live limiter in `limiters` uses
    /// it? The conflict names the limiters.
    pub fn check_delete(&self, id: CredentialId, limiters: &LimiterIndex) -> Result<()> {
        if !self.by_id.contains_key(&id) {
            return Err(Error::CredentialNotFound(id));
        }
        let users: Vec<String> = limiters
            .list(false)
            .into_iter()
            .filter(|l| l.credential_id == Some(id))
            .map(|l| l.name)
            .collect();
        if users.is_empty() {
            Ok(())
        } else {
            Err(Error::Conflict(format!(
                "the credential is used by {} limiter(s): {}; detach it from them first",
                users.len(),
                users.join(", ")
            )))
        }
    }

    /// Insert or replace.
    pub fn put(&mut self, c: Credential) {
        self.by_id.insert(c.id, Arc::new(c));
    }

    /// Remove; the removed credential, if it was there.
    pub fn remove(&mut self, id: CredentialId) -> Option<Arc<Credential>> {
        self.by_id.remove(&id)
    }
}

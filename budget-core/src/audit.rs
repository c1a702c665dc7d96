//! The audit trail: who did what to which limiter, from where and when, with what changed
//! (before → after, secrets never included). Stores keep entries append-only
//! ([`crate::store::LimiterCatalog::append_audit`]); nothing in the API changes or removes
//! one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::LimiterId;

/// One admin action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Identifier.
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who: the admin account's name (for a failed login, the name that was tried).
    pub actor: String,
    /// From where: the client's address as the server sees it (the forwarded client behind a
    /// trusted proxy).
    pub client: Option<String>,
    /// What, e.g. `login.failed`, `limiter.update`, `credential.rotate`.
    pub action: String,
    /// The limiter it concerns, if any.
    pub limiter_id: Option<LimiterId>,
    /// Another object it concerns (a credential's id, an end user's id), if any.
    pub target: Option<String>,
    /// The changed fields before, as JSON (secrets masked or left out).
    pub before: Option<serde_json::Value>,
    /// The changed fields after, as JSON (secrets masked or left out).
    pub after: Option<serde_json::Value>,
}

impl AuditEntry {
    /// A new entry, now, with a fresh id.
    pub fn new(actor: impl Into<String>, action: impl Into<String>) -> Self {
        let now = Utc::now();
        AuditEntry {
            id: Uuid::new_v4(),
            // To the microsecond, as stores keep it.
            at: DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now),
            actor: actor.into(),
            client: None,
            action: action.into(),
            limiter_id: None,
            target: None,
            before: None,
            after: None,
        }
    }
}

/// Which entries to list: every filter is optional; newest first, at most `limit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this limiter's.
    pub limiter_id: Option<LimiterId>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: usize,
}

impl AuditQuery {
    /// Does `e` match?
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.limiter_id.is_none_or(|l| e.limiter_id == Some(l))
            && self.actor.as_deref().is_none_or(|a| e.actor == a)
            && self.from.is_none_or(|f| e.at >= f)
            && self.to.is_none_or(|t| e.at < t)
    }
}

/// `changed(before, after)`: the top-level fields of two JSON objects that differ, as
/// `(before, after)` objects holding only those fields.
pub fn changed(
    before: &serde_json::Value,
    after: &serde_json::Value,
) -> (serde_json::Value, serde_json::Value) {
    let empty = serde_json::Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut out_b = serde_json::Map::new();
    let mut out_a = serde_json::Map::new();
    for key in b.keys().chain(a.keys()) {
        let (vb, va) = (b.get(key), a.get(key));
        if vb != va && !out_b.contains_key(key) && !out_a.contains_key(key) {
            out_b.insert(key.clone(), vb.cloned().unwrap_or(serde_json::Value::Null));
            out_a.insert(key.clone(), va.cloned().unwrap_or(serde_json::Value::Null));
        }
    }
    (out_b.into(), out_a.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changed_keeps_only_what_differs() {
        let (b, a) = changed(
            &json!({"name": "a", "budget_limit": 5, "is_active": true}),
            &json!({"name": "a", "budget_limit": 7, "is_active": false, "new": 1}),
        );
        assert_eq!(
            b,
            json!({"budget_limit": 5, "is_active": true, "new": null})
        );
        assert_eq!(a, json!({"budget_limit": 7, "is_active": false, "new": 1}));
    }
}

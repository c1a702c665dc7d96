//! Named admin accounts (team accounts): besides the bootstrap admin that `budget-server`
//! takes from its environment, a store may keep accounts with a role each.
//!
//! - [`Role::Admin`] may do everything; [`Role::Viewer`] reads limiters and statistics, never
//!   sees a whole limiter code and changes nothing (the server enforces this).
//! - The password is kept only as an argon2id PHC string ([`Account::password_hash`]); its
//!   `Debug` never prints it.
//! - [`Account::token_version`] goes up whenever the password changes or the account is
//!   disabled: the server puts it in every token it issues and refuses tokens of an older
//!   version, so those changes end every session of the account at once.
//!
//! User names are unique **ignoring ASCII case** (`Alice` and `alice` are one account, so a
//! look-alike cannot be created beside an existing one), and
//! [`LimiterCatalog::find_account`](crate::store::LimiterCatalog::find_account) finds a name
//! ignoring ASCII case too; the stored spelling is what the account is shown and audited as.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

/// An account's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub Uuid);

impl AccountId {
    /// A fresh random id.
    pub fn new() -> Self {
        AccountId(Uuid::new_v4())
    }
}

impl Default for AccountId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for AccountId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(AccountId)
    }
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: limiters, keys, accounts, the audit trail.
    Admin,
    /// Reads limiters (codes masked) and statistics; changes nothing but its own password.
    Viewer,
}

impl Role {
    /// `admin` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// A named admin account as a store keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// Identifier.
    pub id: AccountId,
    /// The name it logs in with ([`validate_username`]); unique ignoring ASCII case.
    pub username: String,
    /// What it may do.
    pub role: Role,
    /// The password as an argon2id PHC string (`$argon2id$v=19$...`). Never shown.
    pub password_hash: String,
    /// A disabled account cannot log in and its tokens are refused.
    pub disabled: bool,
    /// Goes up on every password change and on disabling; tokens carry the version they were
    /// issued under and stop working when it moves on.
    pub token_version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When anything of it last changed.
    pub updated_at: DateTime<Utc>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("password_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .field("token_version", &self.token_version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl Account {
    /// Check what a store checks before writing: the user name ([`validate_username`]) and a
    /// non-empty password hash.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_username(&self.username)?;
        if self.password_hash.is_empty() {
            return Err(ValidationError::new("password", "must be set"));
        }
        Ok(())
    }

    /// Whether `name` is this account's name, ignoring ASCII case.
    pub fn is_named(&self, name: &str) -> bool {
        self.username.eq_ignore_ascii_case(name)
    }
}

/// Check a user name: 1 to 64 characters of ASCII letters, digits, `.`, `_`, `@` and `-`.
pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "username",
            "must be 1 to 64 characters of ASCII letters, digits, '.', '_', '@' or '-'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        let now = Utc::now();
        Account {
            id: AccountId::new(),
            username: "ops.lead@example".into(),
            role: Role::Viewer,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            disabled: false,
            token_version: 0,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b_c-d@e").is_ok());
        assert!(validate_username(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            "has space",
            "tab\t",
            "ünï",
            "semi;colon",
            &"x".repeat(65),
        ] {
            assert_eq!(
                validate_username(bad).unwrap_err().field,
                "username",
                "{bad:?}"
            );
        }
        assert!(account().validate().is_ok());
        assert!(account().is_named("OPS.LEAD@example"));
    }

    #[test]
    fn roles_are_lowercase() {
        assert_eq!(serde_json::to_string(&Role::Viewer).unwrap(), "\"viewer\"");
        assert_eq!("admin".parse::<Role>().unwrap(), Role::Admin);
        assert!("Admin".parse::<Role>().is_err());
    }

    #[test]
    fn the_hash_is_not_in_debug_output() {
        let shown = format!("{:?}", account());
        assert!(!shown.contains("argon2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}

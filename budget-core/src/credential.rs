//! Upstream credentials held by the server: an OpenAI API key or an Azure `api-key` that the
//! proxy sends upstream in place of whatever the client sent, so that the customer holds only
//! a limiter code and never a key that works without the proxy.
//!
//! A store keeps a [`Credential`] with its secret **sealed**: [`SealedSecret`] is opaque bytes
//! (in `budget-server`, AES-256-GCM under `SECRETS_KEY`, bound to the credential's id). Stores
//! never see the key itself, and nothing in this crate can open it.
//!
//! Limiters name their credential by [`CredentialId`] ([`crate::Limiter::credential_id`]);
//! several limiters may share one, so rotating the upstream key is one change.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ValidationError;

/// A credential's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CredentialId(pub Uuid);

impl CredentialId {
    /// A fresh random id.
    pub fn new() -> Self {
        CredentialId(Uuid::new_v4())
    }
}

impl Default for CredentialId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CredentialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for CredentialId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(CredentialId)
    }
}

/// Which header the secret goes upstream in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    /// An OpenAI (or OpenAI-compatible) API key: `Authorization: Bearer <key>`, with the
    /// optional `OpenAI-Organization` and `OpenAI-Project` headers.
    #[default]
    Openai,
    /// An Azure OpenAI resource key: `api-key: <key>`.
    Azure,
}

impl CredentialKind {
    /// `openai` or `azure`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Openai => "openai",
            CredentialKind::Azure => "azure",
        }
    }
}

impl FromStr for CredentialKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "openai" => Ok(CredentialKind::Openai),
            "azure" => Ok(CredentialKind::Azure),
            other => Err(format!("unknown credential kind {other:?}")),
        }
    }
}

/// A secret as stored: opaque bytes only its sealer can open. Its `Debug` shows the length,
/// never the bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(pub Vec<u8>);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// An upstream credential as a store keeps it (the secret sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Identifier.
    pub id: CredentialId,
    /// Unique human name, e.g. `openai-prod`.
    pub name: String,
    /// OpenAI key or Azure `api-key`.
    pub kind: CredentialKind,
    /// `OpenAI-Organization` header sent with the key (OpenAI only).
    pub organization: Option<String>,
    /// `OpenAI-Project` header sent with the key (OpenAI only).
    pub project: Option<String>,
    /// The key, sealed.
    pub sealed: SealedSecret,
    /// What may be shown of the key: its last four characters, e.g. `…x9Qa`.
    pub hint: String,
    /// A short fingerprint of the key (the sealer's choice, e.g. the start of its SHA-256), to
    /// tell two keys apart without showing either.
    pub fingerprint: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When anything of it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the key itself was last set (created or rotated).
    pub rotated_at: DateTime<Utc>,
}

impl Credential {
    /// The form a database keeps: times to the microsecond. Stores answer with this form
    /// from memory too, so what they say reads the same before and after a restart.
    pub fn normalized(&self) -> Credential {
        let us =
            |t: DateTime<Utc>| DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t);
        Credential {
            created_at: us(self.created_at),
            updated_at: us(self.updated_at),
            rotated_at: us(self.rotated_at),
            ..self.clone()
        }
    }

    /// Check the fields a user typed: the name (1–100 characters of letters, digits, `.`,
    /// `_`, `-`, space) and the organization and project headers (printable ASCII, at most
    /// 200). The key itself is checked by whoever seals it.
    pub fn validate(&self) -> Result<(), ValidationError> {
        validate_credential_name(&self.name)?;
        for (field, v) in [
            ("organization", &self.organization),
            ("project", &self.project),
        ] {
            if let Some(v) = v {
                let ok = !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic());
                if !ok {
                    return Err(ValidationError::new(
                        field,
                        "must be 1 to 200 printable ASCII characters without spaces",
                    ));
                }
            }
        }
        if self.kind == CredentialKind::Azure
            && (self.organization.is_some() || self.project.is_some())
        {
            return Err(ValidationError::new(
                "organization",
                "organization and project are OpenAI headers; an Azure key takes neither",
            ));
        }
        Ok(())
    }
}

/// Check a credential name: 1–100 characters of letters, digits, `.`, `_`, `-` and spaces,
/// not blank.
pub fn validate_credential_name(name: &str) -> Result<(), ValidationError> {
    let ok = !name.trim().is_empty()
        && name.chars().count() <= 100
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' '));
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "name",
            "must be 1 to 100 characters of letters, digits, '.', '_', '-' or spaces",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred() -> Credential {
        let now = Utc::now();
        Credential {
            id: CredentialId::new(),
            name: "openai-prod".into(),
            kind: CredentialKind::Openai,
            organization: Some("org-123".into()),
            project: None,
            sealed: SealedSecret(vec![1, 2, 3]),
            hint: "…abcd".into(),
            fingerprint: "sha256:0011".into(),
            created_at: now,
            updated_at: now,
            rotated_at: now,
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert!(cred().validate().is_ok());
        let mut c = cred();
        c.name = "  ".into();
        assert_eq!(c.validate().unwrap_err().field, "name");
        let mut c = cred();
        c.organization = Some("org 1".into());
        assert_eq!(c.validate().unwrap_err().field, "organization");
        let mut c = cred();
        c.kind = CredentialKind::Azure;
        assert!(
            c.validate().is_err(),
            "an Azure key with an OpenAI organization"
        );
    }

    #[test]
    fn sealed_bytes_are_not_in_debug_output() {
        let c = cred();
        let shown = format!("{c:?}");
        assert!(shown.contains("SealedSecret(3 bytes)"), "{shown}");
    }
}

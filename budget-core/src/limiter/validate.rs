//! Field validation: what a limiter's fields may hold, with errors that name the field.

use super::*;

/// A field that failed validation, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field's name as in the JSON body.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// An error about `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ValidationError {
            field,
            reason: reason.into(),
        }
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), ValidationError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(ValidationError::new("name", "must not be empty"));
    }
    if n.chars().count() > 200 {
        return Err(ValidationError::new(
            "name",
            "must be at most 200 characters",
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

pub(crate) fn validate_budget(b: Money) -> Result<(), ValidationError> {
    budget_bounds(b).map_err(|reason| ValidationError::new("budget_limit", reason))
}

/// What any budget amount must be (a limiter's, an extra window's, a user's): more than $0 and
/// at most $1,000,000,000. The reason, when it is not.
pub(crate) fn budget_bounds(b: Money) -> Result<(), &'static str> {
    if b <= Money::ZERO {
        return Err("must be greater than 0");
    }
    if b > Money::from_dollars(1_000_000_000) {
        return Err("must be at most $1,000,000,000");
    }
    Ok(())
}

/// Parse and check an upstream base URL: absolute http(s), a host, no query, fragment or
/// credentials. A trailing `/` is removed so paths join cleanly.
pub fn parse_base_url(s: &str) -> Result<Url, ValidationError> {
    let field = "base_url";
    let mut url = Url::parse(s.trim())
        .map_err(|e| ValidationError::new(field, format!("not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::new(
            field,
            "must start with http:// or https://",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "must have a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ValidationError::new(
            field,
            "must not have a query string or fragment",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValidationError::new(field, "must not contain credentials"));
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

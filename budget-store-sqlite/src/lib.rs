//! budget-store-sqlite: filled in by its own issue.

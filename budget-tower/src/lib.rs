//! budget-tower: filled in by its own issue.

-- Budget policies per limiter (extra windows, per-user budgets and overrides, model rules, a
-- per-request cost cap, expiry) as one JSON object with money in integer nano-dollars and
-- times in unix microseconds. '{}' is "no policies": existing limiters keep working as before.
ALTER TABLE limiters ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';

-- Which price table (a content hash of the built-in table and any override in force) priced
-- each usage record, for audits. NULL for records written before this migration.
ALTER TABLE usage_events ADD COLUMN price_version TEXT;

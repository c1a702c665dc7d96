-- Refused requests per limiter, minute (unix microseconds of its start) and reason, added in
-- batches by budget-server: one row per limiter, minute and reason however many requests a
-- client sends, so refusals cannot fill the disk. Purging a limiter removes its rows.
CREATE TABLE refusals (
    limiter_id TEXT    NOT NULL,
    minute     INTEGER NOT NULL,
    reason     TEXT    NOT NULL,
    count      INTEGER NOT NULL,
    PRIMARY KEY (limiter_id, minute, reason)
) WITHOUT ROWID;
CREATE INDEX refusals_minute ON refusals (minute);

-- Refused requests per limiter, minute and reason, added in batches by every replica: one row
-- per limiter, minute and reason however many requests a client sends. Purging a limiter
-- removes its rows.
CREATE TABLE refusals (
    limiter_id uuid        NOT NULL,
    minute     timestamptz NOT NULL,
    reason     text        NOT NULL,
    count      bigint      NOT NULL,
    PRIMARY KEY (limiter_id, minute, reason)
);
CREATE INDEX refusals_minute ON refusals (minute);

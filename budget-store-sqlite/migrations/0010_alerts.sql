-- The alert outbox (budget-server's threshold and limiter alerts): one row per event id, so
-- an event noticed twice (two requests, a restart) is sent once. `event` is the event as
-- JSON; `next_attempt_at` is when it is due, or when a sender's claim on it runs out.
-- Purging a limiter keeps its rows (its `deleted` event must still go out).
CREATE TABLE alert_outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    limiter_id      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL, -- unix microseconds
    status          TEXT    NOT NULL, -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL, -- unix microseconds
    last_error      TEXT,
    delivered_at    INTEGER,
    event           TEXT    NOT NULL
);
CREATE INDEX alert_outbox_due ON alert_outbox (status, next_attempt_at);
CREATE INDEX alert_outbox_limiter ON alert_outbox (limiter_id, seq);

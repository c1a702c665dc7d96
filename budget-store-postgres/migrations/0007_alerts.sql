-- The alert outbox (budget-server's threshold and limiter alerts): one row per event id, so an
-- event noticed by several replicas at once is sent once. `event` is the event as JSON;
-- `next_attempt_at` is when it is due, or when a sender's claim on it runs out (a replica
-- that dies while sending leaves it to be retried then). Purging a limiter keeps its rows.
CREATE TABLE alert_outbox (
    seq             bigserial   PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    limiter_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    delivered_at    timestamptz,
    event           jsonb       NOT NULL
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_outbox_limiter ON alert_outbox (limiter_id, seq);

-- Limiters and the raw usage log.
--
-- Conventions: money is INTEGER nano-dollars, times are INTEGER unix microseconds (UTC),
-- ids are TEXT (hyphenated lowercase UUIDs).

CREATE TABLE limiters (
    id            TEXT    NOT NULL PRIMARY KEY,
    name          TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    budget_limit  INTEGER NOT NULL,              -- nano-dollars
    period_type   TEXT    NOT NULL,              -- minute | hour | day | week | month | year
    timezone      TEXT    NOT NULL,              -- IANA name
    base_url      TEXT    NOT NULL,
    provider      TEXT    NOT NULL,              -- openai | azure
    mode          TEXT    NOT NULL,              -- soft | strict
    unpriced      TEXT    NOT NULL,              -- admit | refuse
    is_active     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER                        -- set when soft-deleted
);

-- A code names at most one live limiter; deleted limiters keep theirs for audit.
CREATE UNIQUE INDEX limiters_live_code ON limiters (code) WHERE deleted_at IS NULL;

-- One row per metered request. Append-only, except that purging a limiter removes its rows.
-- No FOREIGN KEY on purpose: the writer must never fail a batch of charges on a constraint,
-- and history outlives (soft-)deleted limiters.
CREATE TABLE usage_events (
    seq                INTEGER PRIMARY KEY,      -- rowid: insertion order
    id                 TEXT    NOT NULL,
    at                 INTEGER NOT NULL,
    limiter_id         TEXT    NOT NULL,
    model              TEXT,
    user               TEXT,
    endpoint           TEXT    NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,         -- nano-dollars
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    status             INTEGER NOT NULL,
    streamed           INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL
);

CREATE INDEX usage_events_limiter_at ON usage_events (limiter_id, at);
CREATE INDEX usage_events_at ON usage_events (at);

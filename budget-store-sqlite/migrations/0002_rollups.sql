-- Roll-ups: per limiter x model x user x {hour, UTC day, UTC month}, kept in the same
-- transactions as the raw events, so statistics read a few thousand rows instead of millions.
--
-- `model` and `user` are '' where the event has none (NULL would defeat the primary key).
-- Existing events are rolled up here, so a database from 0001 upgrades in place.

CREATE TABLE usage_hourly (
    limiter_id         TEXT    NOT NULL,
    hour_start         INTEGER NOT NULL,
    model              TEXT    NOT NULL,
    user               TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    PRIMARY KEY (limiter_id, hour_start, model, user)
) WITHOUT ROWID;

CREATE INDEX usage_hourly_start ON usage_hourly (hour_start);

CREATE TABLE usage_daily (
    limiter_id         TEXT    NOT NULL,
    day_start          INTEGER NOT NULL,
    model              TEXT    NOT NULL,
    user               TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    PRIMARY KEY (limiter_id, day_start, model, user)
) WITHOUT ROWID;

CREATE INDEX usage_daily_start ON usage_daily (day_start);

CREATE TABLE usage_monthly (
    limiter_id         TEXT    NOT NULL,
    month_start        INTEGER NOT NULL,
    model              TEXT    NOT NULL,
    user               TEXT    NOT NULL,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    PRIMARY KEY (limiter_id, month_start, model, user)
) WITHOUT ROWID;

CREATE INDEX usage_monthly_start ON usage_monthly (month_start);

INSERT INTO usage_hourly
SELECT limiter_id, (at / 3600000000) * 3600000000, IFNULL(model, ''), IFNULL(user, ''),
       COUNT(*), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(status >= 400)
FROM usage_events
GROUP BY 1, 2, 3, 4;

INSERT INTO usage_daily
SELECT limiter_id, (hour_start / 86400000000) * 86400000000, model, user,
       SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors)
FROM usage_hourly
GROUP BY 1, 2, 3, 4;

INSERT INTO usage_monthly
SELECT limiter_id,
       CAST(strftime('%s', day_start / 1000000, 'unixepoch', 'start of month') AS INTEGER) * 1000000,
       model, user,
       SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors)
FROM usage_daily
GROUP BY 1, 2, 3, 4;

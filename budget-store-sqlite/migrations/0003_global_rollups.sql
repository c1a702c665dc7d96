-- Global roll-ups: one row per hour / UTC day / UTC month over every limiter, model and user,
-- with the number of distinct (non-empty) users in that bucket, so global totals and series
-- read one row per bucket instead of every (limiter, model, user) row of it.
--
-- Distinct counts add neither across limiters nor across buckets, so each level also keeps
-- the set of users seen per bucket (`usage_users_*`, one row per (bucket, user)). Both are
-- kept by triggers, in the writer's transaction: a roll-up row that is new (not one that an
-- upsert updated) adds its user to the bucket's set, and a user new to the set adds 1 to the
-- bucket's `users`. The writer upserts a bucket's global sums before its roll-up rows. Ranges
-- that are not whole buckets count distinct users over these sets (plus raw events at
-- unaligned edges).
--
-- Per-limiter statistics keep reading usage_hourly / _daily / _monthly. Existing data is
-- back-filled from those roll-ups, so a database from 0002 upgrades in place.

CREATE TABLE usage_global_hourly (
    hour_start         INTEGER NOT NULL PRIMARY KEY,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    users              INTEGER NOT NULL      -- distinct non-empty users in the bucket
);

CREATE TABLE usage_users_hourly (
    hour_start         INTEGER NOT NULL,
    user               TEXT    NOT NULL,     -- never ''
    PRIMARY KEY (hour_start, user)
) WITHOUT ROWID;

INSERT INTO usage_global_hourly
SELECT hour_start, SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors),
       COUNT(DISTINCT NULLIF(user, ''))
FROM usage_hourly
GROUP BY hour_start;

INSERT INTO usage_users_hourly
SELECT DISTINCT hour_start, user FROM usage_hourly WHERE user <> '';

CREATE TRIGGER usage_users_hourly_count AFTER INSERT ON usage_users_hourly
BEGIN
    UPDATE usage_global_hourly SET users = users + 1 WHERE hour_start = NEW.hour_start;
END;

CREATE TRIGGER usage_hourly_users AFTER INSERT ON usage_hourly WHEN NEW.user <> ''
BEGIN
    INSERT INTO usage_users_hourly (hour_start, user) VALUES (NEW.hour_start, NEW.user) ON CONFLICT DO NOTHING;
END;

CREATE TABLE usage_global_daily (
    day_start          INTEGER NOT NULL PRIMARY KEY,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    users              INTEGER NOT NULL      -- distinct non-empty users in the bucket
);

CREATE TABLE usage_users_daily (
    day_start          INTEGER NOT NULL,
    user               TEXT    NOT NULL,     -- never ''
    PRIMARY KEY (day_start, user)
) WITHOUT ROWID;

INSERT INTO usage_global_daily
SELECT day_start, SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors),
       COUNT(DISTINCT NULLIF(user, ''))
FROM usage_daily
GROUP BY day_start;

INSERT INTO usage_users_daily
SELECT DISTINCT day_start, user FROM usage_daily WHERE user <> '';

CREATE TRIGGER usage_users_daily_count AFTER INSERT ON usage_users_daily
BEGIN
    UPDATE usage_global_daily SET users = users + 1 WHERE day_start = NEW.day_start;
END;

CREATE TRIGGER usage_daily_users AFTER INSERT ON usage_daily WHEN NEW.user <> ''
BEGIN
    INSERT INTO usage_users_daily (day_start, user) VALUES (NEW.day_start, NEW.user) ON CONFLICT DO NOTHING;
END;

CREATE TABLE usage_global_monthly (
    month_start        INTEGER NOT NULL PRIMARY KEY,
    requests           INTEGER NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    cached_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    reasoning_tokens   INTEGER NOT NULL,
    cost               INTEGER NOT NULL,
    unpriced           INTEGER NOT NULL,
    estimated          INTEGER NOT NULL,
    errors             INTEGER NOT NULL,
    users              INTEGER NOT NULL      -- distinct non-empty users in the bucket
);

CREATE TABLE usage_users_monthly (
    month_start        INTEGER NOT NULL,
    user               TEXT    NOT NULL,     -- never ''
    PRIMARY KEY (month_start, user)
) WITHOUT ROWID;

INSERT INTO usage_global_monthly
SELECT month_start, SUM(requests), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),
       SUM(reasoning_tokens), SUM(cost), SUM(unpriced), SUM(estimated), SUM(errors),
       COUNT(DISTINCT NULLIF(user, ''))
FROM usage_monthly
GROUP BY month_start;

INSERT INTO usage_users_monthly
SELECT DISTINCT month_start, user FROM usage_monthly WHERE user <> '';

CREATE TRIGGER usage_users_monthly_count AFTER INSERT ON usage_users_monthly
BEGIN
    UPDATE usage_global_monthly SET users = users + 1 WHERE month_start = NEW.month_start;
END;

CREATE TRIGGER usage_monthly_users AFTER INSERT ON usage_monthly WHEN NEW.user <> ''
BEGIN
    INSERT INTO usage_users_monthly (month_start, user) VALUES (NEW.month_start, NEW.user) ON CONFLICT DO NOTHING;
END;

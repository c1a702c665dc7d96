-- Roll-ups of usage_events, so statistics read a few thousand rows instead of millions.
--
-- Per level (hour, UTC day, UTC month), three tables:
--   usage_{hourly,daily,monthly}           per limiter × bucket × model × user, the sums;
--   usage_global_{hourly,daily,monthly}    per bucket over every limiter, the sums and `users`,
--                                          the bucket's distinct non-empty users;
--   usage_users_{hourly,daily,monthly}     the (bucket, user) pairs seen, which keep `users`
--                                          exact (distinct counts add neither across limiters
--                                          nor across buckets).
-- `model` and `user` are '' where the event has none (NULL would defeat the primary key).
--
-- Kept by statement-level triggers on usage_events, in the writer's transaction: an INSERT
-- (budget_apply's batch) adds its new rows (`new_rows`, the transition table: rows skipped by
-- ON CONFLICT DO NOTHING are not in it) with one upsert per table and level; a DELETE (purging
-- a limiter) subtracts its rows and recounts the global rows of the buckets it touched.
-- Statistics read aligned hours, days and months from here and only the unaligned edges of a
-- range (less than an hour each) from usage_events.
--
-- budget_rollups_rebuild() recomputes everything from usage_events: for tools that load
-- events with the triggers disabled. Existing events are rolled up here, so a database from
-- 0001 upgrades in place.

CREATE TABLE usage_hourly (
    limiter_id         uuid        NOT NULL,
    hour_start         timestamptz NOT NULL,
    model              text        NOT NULL,
    "user"             text        NOT NULL,
    requests           bigint      NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    cached_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    reasoning_tokens   bigint      NOT NULL,
    cost               bigint      NOT NULL,
    unpriced           bigint      NOT NULL,
    estimated          bigint      NOT NULL,
    errors             bigint      NOT NULL,
    PRIMARY KEY (limiter_id, hour_start, model, "user")
);
CREATE INDEX usage_hourly_start ON usage_hourly (hour_start);

CREATE TABLE usage_daily (LIKE usage_hourly INCLUDING ALL);
ALTER TABLE usage_daily RENAME COLUMN hour_start TO day_start;
CREATE TABLE usage_monthly (LIKE usage_hourly INCLUDING ALL);
ALTER TABLE usage_monthly RENAME COLUMN hour_start TO month_start;

CREATE TABLE usage_global_hourly (
    hour_start         timestamptz NOT NULL PRIMARY KEY,
    requests           bigint      NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    cached_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    reasoning_tokens   bigint      NOT NULL,
    cost               bigint      NOT NULL,
    unpriced           bigint      NOT NULL,
    estimated          bigint      NOT NULL,
    errors             bigint      NOT NULL,
    users              bigint      NOT NULL  -- distinct non-empty users in the bucket
) WITH (fillfactor = 70);
CREATE TABLE usage_global_daily (LIKE usage_global_hourly INCLUDING ALL);
ALTER TABLE usage_global_daily RENAME COLUMN hour_start TO day_start;
CREATE TABLE usage_global_monthly (LIKE usage_global_hourly INCLUDING ALL);
ALTER TABLE usage_global_monthly RENAME COLUMN hour_start TO month_start;

CREATE TABLE usage_users_hourly (
    hour_start         timestamptz NOT NULL,
    "user"             text        NOT NULL,  -- never ''
    PRIMARY KEY (hour_start, "user")
);
CREATE TABLE usage_users_daily (LIKE usage_users_hourly INCLUDING ALL);
ALTER TABLE usage_users_daily RENAME COLUMN hour_start TO day_start;
CREATE TABLE usage_users_monthly (LIKE usage_users_hourly INCLUDING ALL);
ALTER TABLE usage_users_monthly RENAME COLUMN hour_start TO month_start;

-- The statements that add the events of relation `p_source` (usage_events, or a trigger's
-- transition table) to the roll-ups of one level ('hour', 'day' or 'month'): one text per
-- statement, run with EXECUTE by the caller (a transition table is visible only to queries
-- run by the trigger function itself). Keys are upserted in key order, so concurrent
-- writers lock roll-up rows in the same order.
CREATE FUNCTION budget_rollup_add_sql(p_level text, p_source text)
RETURNS SETOF text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := CASE p_level WHEN 'hour' THEN 'hourly' WHEN 'day' THEN 'daily' ELSE 'monthly' END;
    c text := p_level || '_start';
    b text := format('date_trunc(%L, at, ''UTC'')', p_level);
    sums text := 'count(*), sum(prompt_tokens)::bigint, sum(cached_tokens)::bigint, '
              || 'sum(completion_tokens)::bigint, sum(reasoning_tokens)::bigint, sum(cost)::bigint, '
              || 'count(*) FILTER (WHERE unpriced), count(*) FILTER (WHERE estimated), '
              || 'count(*) FILTER (WHERE status >= 400)';
    cols text := 'requests, prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens, '
              || 'cost, unpriced, estimated, errors';
    adds text := 'requests = r.requests + EXCLUDED.requests, '
              || 'prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens, '
              || 'cached_tokens = r.cached_tokens + EXCLUDED.cached_tokens, '
              || 'completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens, '
              || 'reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens, '
              || 'cost = r.cost + EXCLUDED.cost, unpriced = r.unpriced + EXCLUDED.unpriced, '
              || 'estimated = r.estimated + EXCLUDED.estimated, errors = r.errors + EXCLUDED.errors';
BEGIN
    RETURN NEXT format(
        'INSERT INTO usage_%1$s AS r (limiter_id, %2$I, model, "user", %5$s) '
        'SELECT limiter_id, %3$s, COALESCE(model, ''''), COALESCE("user", ''''), %6$s '
        'FROM %4$I GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 '
        'ON CONFLICT (limiter_id, %2$I, model, "user") DO UPDATE SET %7$s',
        t, c, b, p_source, cols, sums, adds);
    -- A (bucket, user) pair new to the set adds 1 to the bucket's `users`; a pair another
    -- transaction is inserting waits for it and is then skipped, so it counts once.
    RETURN NEXT format(
        'WITH nu AS (INSERT INTO usage_users_%1$s (%2$I, "user") '
        '            SELECT DISTINCT %3$s, "user" FROM %4$I WHERE "user" <> '''' ORDER BY 1, 2 '
        '            ON CONFLICT DO NOTHING RETURNING %2$I), '
        '     n AS (SELECT %2$I, count(*) AS users FROM nu GROUP BY 1), '
        '     s AS (SELECT %3$s AS %2$I, %6$s FROM %4$I GROUP BY 1) '
        'INSERT INTO usage_global_%1$s AS r (%2$I, %5$s, users) '
        'SELECT s.*, COALESCE(n.users, 0) FROM s LEFT JOIN n USING (%2$I) ORDER BY 1 '
        'ON CONFLICT (%2$I) DO UPDATE SET %7$s, users = r.users + EXCLUDED.users',
        t, c, b, p_source, cols, sums, adds);
END $$;

CREATE FUNCTION usage_rollups_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows) THEN
        RETURN NULL;
    END IF;
    FOR s IN SELECT budget_rollup_add_sql(l, 'new_rows')
               FROM unnest(ARRAY['hour', 'day', 'month']) AS l
    LOOP
        EXECUTE s;
    END LOOP;
    RETURN NULL;
END $$;

-- Deleted events (a purge) are subtracted from the per-limiter roll-ups (rows left with no
-- requests go); the global rows and user sets of the buckets they touched are recounted from
-- the per-limiter roll-ups. Writers are held off meanwhile (and waited for), so the recount
-- cannot miss a concurrent batch.
CREATE FUNCTION usage_rollups_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    l text;
    t text;
    c text;
    b text;
    k text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows) THEN
        RETURN NULL;
    END IF;
    LOCK TABLE usage_global_hourly, usage_global_daily, usage_global_monthly
        IN SHARE ROW EXCLUSIVE MODE;
    FOREACH l IN ARRAY ARRAY['hour', 'day', 'month'] LOOP
        t := CASE l WHEN 'hour' THEN 'hourly' WHEN 'day' THEN 'daily' ELSE 'monthly' END;
        c := l || '_start';
        b := format('date_trunc(%L, at, ''UTC'')', l);
        EXECUTE format(
            'UPDATE usage_%1$s r SET requests = r.requests - d.requests, '
            '  prompt_tokens = r.prompt_tokens - d.prompt_tokens, '
            '  cached_tokens = r.cached_tokens - d.cached_tokens, '
            '  completion_tokens = r.completion_tokens - d.completion_tokens, '
            '  reasoning_tokens = r.reasoning_tokens - d.reasoning_tokens, cost = r.cost - d.cost, '
            '  unpriced = r.unpriced - d.unpriced, estimated = r.estimated - d.estimated, '
            '  errors = r.errors - d.errors '
            'FROM (SELECT limiter_id, %3$s AS k, COALESCE(model, '''') AS model, '
            '             COALESCE("user", '''') AS "user", count(*) AS requests, '
            '             sum(prompt_tokens) AS prompt_tokens, sum(cached_tokens) AS cached_tokens, '
            '             sum(completion_tokens) AS completion_tokens, '
            '             sum(reasoning_tokens) AS reasoning_tokens, sum(cost) AS cost, '
            '             count(*) FILTER (WHERE unpriced) AS unpriced, '
            '             count(*) FILTER (WHERE estimated) AS estimated, '
            '             count(*) FILTER (WHERE status >= 400) AS errors '
            '        FROM old_rows GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4) d '
            'WHERE (r.limiter_id, r.%2$I, r.model, r."user") = (d.limiter_id, d.k, d.model, d."user")',
            t, c, b);
        EXECUTE format(
            'DELETE FROM usage_%1$s r USING (SELECT DISTINCT limiter_id FROM old_rows) d '
            'WHERE r.limiter_id = d.limiter_id AND r.requests <= 0', t);
        -- The buckets the deleted events touched: their user sets and global rows, recounted.
        k := format('(SELECT DISTINCT %s FROM old_rows)', b);
        EXECUTE format('DELETE FROM usage_users_%1$s WHERE %2$I IN %3$s', t, c, k);
        EXECUTE format(
            'INSERT INTO usage_users_%1$s (%2$I, "user") SELECT DISTINCT %2$I, "user" '
            'FROM usage_%1$s WHERE %2$I IN %3$s AND "user" <> ''''',
            t, c, k);
        EXECUTE format('DELETE FROM usage_global_%1$s WHERE %2$I IN %3$s', t, c, k);
        EXECUTE format(
            'INSERT INTO usage_global_%1$s '
            'SELECT %2$I, sum(requests), sum(prompt_tokens), sum(cached_tokens), '
            '       sum(completion_tokens), sum(reasoning_tokens), sum(cost), sum(unpriced), '
            '       sum(estimated), sum(errors), count(DISTINCT NULLIF("user", '''')) '
            'FROM usage_%1$s WHERE %2$I IN %3$s GROUP BY 1',
            t, c, k);
    END LOOP;
    RETURN NULL;
END $$;

-- Recompute every roll-up from usage_events (one transaction when called as one statement).
-- For tools that wrote usage_events with the triggers disabled (a bulk import, the
-- benchmark); not needed in normal operation.
CREATE FUNCTION budget_rollups_rebuild() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s text;
BEGIN
    LOCK TABLE usage_events IN SHARE MODE;
    TRUNCATE usage_hourly, usage_daily, usage_monthly,
             usage_global_hourly, usage_global_daily, usage_global_monthly,
             usage_users_hourly, usage_users_daily, usage_users_monthly;
    FOR s IN SELECT budget_rollup_add_sql(l, 'usage_events')
               FROM unnest(ARRAY['hour', 'day', 'month']) AS l
    LOOP
        EXECUTE s;
    END LOOP;
END $$;

SELECT budget_rollups_rebuild();

CREATE TRIGGER usage_events_rollups_insert AFTER INSERT ON usage_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_insert();
CREATE TRIGGER usage_events_rollups_delete AFTER DELETE ON usage_events
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION usage_rollups_delete();

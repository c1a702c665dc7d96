-- budget-store-postgres: limiters, usage, and budgets shared by replicas through leased slices.
--
-- Conventions: money is BIGINT nano-dollars, times are timestamptz, a limiter is one JSONB
-- document (budget-core's StoredLimiter: integer money, no floats).
--
-- Invariants (see docs/storage-postgres.md):
--   budget_windows.leased = Σ over its active leases of (granted − settled)
--   strict windows: spent + leased ≤ budget, except by the cost of requests that overran their
--   reservation (folded into granted at the next report)
-- Lock order everywhere: limiters → budget_windows (by key) → budget_leases (by id).

CREATE TABLE limiters (
    id          uuid        PRIMARY KEY,
    code        text        NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    -- Bumped on every change: replicas reload what changed since the last number they saw,
    -- and a grant made from an older copy of the limiter is refused ("stale").
    change_seq  bigint      NOT NULL,
    doc         jsonb       NOT NULL
);
CREATE SEQUENCE limiter_changes;
CREATE UNIQUE INDEX limiters_live_code ON limiters (code) WHERE deleted_at IS NULL;
CREATE INDEX limiters_change_seq ON limiters (change_seq);

-- One row per metered request. Append-only, except that purging a limiter removes its rows.
CREATE TABLE usage_events (
    id                 uuid        PRIMARY KEY,
    at                 timestamptz NOT NULL,
    limiter_id         uuid        NOT NULL,
    model              text,
    "user"             text,
    endpoint           text        NOT NULL,
    prompt_tokens      bigint      NOT NULL,
    cached_tokens      bigint      NOT NULL,
    completion_tokens  bigint      NOT NULL,
    reasoning_tokens   bigint      NOT NULL,
    cost               bigint      NOT NULL,
    unpriced           boolean     NOT NULL,
    estimated          boolean     NOT NULL,
    status             integer     NOT NULL,
    streamed           boolean     NOT NULL,
    latency_ms         bigint      NOT NULL,
    price_version      text
);
CREATE INDEX usage_events_limiter_at ON usage_events (limiter_id, at);
CREATE INDEX usage_events_at ON usage_events (at);

-- One row per budget counter and window (user_key '' is the limiter's own counter), created
-- when a replica first asks for a slice of it: no reset job, old rows are history.
CREATE TABLE budget_windows (
    limiter_id    uuid        NOT NULL,
    user_key      text        NOT NULL,
    window_end    timestamptz NOT NULL,
    window_start  timestamptz NOT NULL,
    budget        bigint      NOT NULL,
    spent         bigint      NOT NULL DEFAULT 0,
    leased        bigint      NOT NULL DEFAULT 0,
    -- Set when a grant was refused while others held unused slices: their next report
    -- returns them.
    wanted        bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (limiter_id, user_key, window_end, window_start)
) WITH (fillfactor = 70);

-- A replica's slice of one window. `exposed` is the durable upper bound of what the replica
-- may have spent or have in flight on it: a dead replica is charged `exposed − settled` and the
-- rest returns to the pool.
CREATE TABLE budget_leases (
    id            bigserial   PRIMARY KEY,
    limiter_id    uuid        NOT NULL,
    user_key      text        NOT NULL,
    window_end    timestamptz NOT NULL,
    window_start  timestamptz NOT NULL,
    replica       uuid        NOT NULL,
    granted       bigint      NOT NULL,
    exposed       bigint      NOT NULL DEFAULT 0,
    settled       bigint      NOT NULL DEFAULT 0,
    held          bigint      NOT NULL DEFAULT 0,
    in_flight     bigint      NOT NULL DEFAULT 0,
    -- What a reclaim charged and a late report may still absorb (fencing).
    crash_left    bigint      NOT NULL DEFAULT 0,
    expires_at    timestamptz NOT NULL,
    state         text        NOT NULL DEFAULT 'active'
                  CHECK (state IN ('active', 'closed', 'reclaimed')),
    CHECK (exposed >= 0 AND granted >= 0),
    CHECK (exposed <= granted OR state <> 'active')
);
CREATE UNIQUE INDEX budget_leases_one_per_replica
    ON budget_leases (limiter_id, user_key, window_end, window_start, replica)
    WHERE state = 'active';
CREATE INDEX budget_leases_expiry ON budget_leases (expires_at) WHERE state = 'active';

-- Reclaim the expired leases of one window whose row the caller has locked: charge each
-- `exposed − settled` (what it may have spent unreported) and return the rest.
CREATE FUNCTION budget_reclaim_window(p_limiter uuid, p_user text, p_end timestamptz,
                                      p_start timestamptz, p_grace interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    v_charge bigint;
BEGIN
    FOR r IN SELECT * FROM budget_leases
             WHERE limiter_id = p_limiter AND user_key = p_user AND window_end = p_end
               AND window_start = p_start AND state = 'active'
               AND expires_at < now() - p_grace
             ORDER BY id FOR UPDATE
    LOOP
        v_charge := GREATEST(r.exposed - r.settled, 0);
        UPDATE budget_leases
           SET state = 'reclaimed', crash_left = v_charge, held = 0, in_flight = 0
         WHERE id = r.id;
        UPDATE budget_windows
           SET spent = spent + v_charge, leased = leased - (r.granted - r.settled)
         WHERE limiter_id = p_limiter AND user_key = p_user AND window_end = p_end
           AND window_start = p_start;
        RAISE LOG 'budget: reclaimed lease % of replica % (charged %, returned %)',
            r.id, r.replica, v_charge, r.granted - r.settled - v_charge;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Grant replica `p_replica` a slice of one window: one round trip. Creates the window row
-- (its spend summed from the usage already recorded in it), reclaims expired leases, and
-- grants between `p_min` and `p_want` — less as the budget runs out, exactly `p_min` (all of it
-- exposed) in the endgame — or refuses when less than `p_min` is free (strict) or nothing is
-- free (soft). `p_have` is what the replica counts as granted on its lease: anything above it
-- (given back locally, not yet reported) returns to the pool first. Refuses with 'stale' when the replica's copy of the limiter is older than the
-- database's, and with 'gone' when the limiter is deleted.
CREATE FUNCTION budget_grant(p_limiter uuid, p_user text, p_start timestamptz,
                             p_end timestamptz, p_budget bigint, p_strict boolean,
                             p_change bigint, p_replica uuid, p_want bigint, p_min bigint,
                             p_expose bigint, p_have bigint, p_ttl interval,
                             p_grace interval)
RETURNS TABLE (status text, lease_id bigint, granted bigint, exposed bigint, spent bigint,
               leased bigint, budget bigint, others_free bigint, endgame boolean,
               db_now timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_change bigint;
    v_deleted timestamptz;
    w budget_windows%ROWTYPE;
    l budget_leases%ROWTYPE;
    v_free bigint;
    v_n bigint;
    v_share bigint;
    v_g bigint;
    v_min bigint := GREATEST(p_min, 1);
    v_end boolean := false;
    v_others bigint;
BEGIN
    SELECT li.change_seq, li.deleted_at INTO v_change, v_deleted
      FROM limiters li WHERE li.id = p_limiter;
    IF NOT FOUND OR v_deleted IS NOT NULL THEN
        RETURN QUERY SELECT 'gone'::text, NULL::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::bigint, 0::bigint, 0::bigint, false, now();
        RETURN;
    END IF;
    IF v_change <> p_change THEN
        RETURN QUERY SELECT 'stale'::text, NULL::bigint, 0::bigint, 0::bigint, 0::bigint,
                            0::bigint, 0::bigint, 0::bigint, false, now();
        RETURN;
    END IF;

    SELECT * INTO w FROM budget_windows bw
     WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
       AND bw.window_start = p_start
       FOR UPDATE;
    IF NOT FOUND THEN
        -- Usage batches lock the limiter FOR SHARE before they add to windows: while we hold
        -- it, none is half-way, so the sum below misses nothing and counts nothing twice.
        PERFORM 1 FROM limiters li WHERE li.id = p_limiter FOR UPDATE;
        INSERT INTO budget_windows AS bw (limiter_id, user_key, window_end, window_start, budget, spent)
        VALUES (p_limiter, p_user, p_end, p_start, p_budget,
                (SELECT COALESCE(SUM(e.cost), 0)::bigint FROM usage_events e
                  WHERE e.limiter_id = p_limiter AND e.at >= p_start AND e.at < p_end
                    AND (p_user = '' OR e."user" = p_user)))
        ON CONFLICT DO NOTHING;
        SELECT * INTO w FROM budget_windows bw
         WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
           AND bw.window_start = p_start
           FOR UPDATE;
    END IF;
    IF w.budget <> p_budget THEN
        UPDATE budget_windows bw SET budget = p_budget
         WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
           AND bw.window_start = p_start;
    END IF;
    IF budget_reclaim_window(p_limiter, p_user, p_end, p_start, p_grace) > 0 THEN
        SELECT * INTO w FROM budget_windows bw
         WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
           AND bw.window_start = p_start;
    END IF;
    w.budget := p_budget;

    SELECT * INTO l FROM budget_leases bl
     WHERE bl.limiter_id = p_limiter AND bl.user_key = p_user AND bl.window_end = p_end
       AND bl.window_start = p_start AND bl.replica = p_replica AND bl.state = 'active'
       FOR UPDATE;
    IF l.id IS NOT NULL AND l.granted > GREATEST(p_have, l.settled) THEN
        UPDATE budget_leases bl
           SET granted = GREATEST(p_have, bl.settled),
               exposed = LEAST(bl.exposed, GREATEST(p_have, bl.settled))
         WHERE bl.id = l.id;
        w.leased := w.leased - (l.granted - GREATEST(p_have, l.settled));
        UPDATE budget_windows bw SET leased = w.leased
         WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
           AND bw.window_start = p_start;
        SELECT * INTO l FROM budget_leases bl WHERE bl.id = l.id;
    END IF;
    SELECT count(*), COALESCE(SUM(GREATEST(bl.granted - GREATEST(bl.exposed, bl.settled), 0)), 0)
      INTO v_n, v_others
      FROM budget_leases bl
     WHERE bl.limiter_id = p_limiter AND bl.user_key = p_user AND bl.window_end = p_end
       AND bl.window_start = p_start AND bl.replica <> p_replica AND bl.state = 'active';
    v_n := v_n + 1;
    v_free := w.budget - w.spent - w.leased;

    IF (p_strict AND v_free < v_min) OR (NOT p_strict AND v_free <= 0) THEN
        UPDATE budget_windows bw SET wanted = GREATEST(bw.wanted, v_min)
         WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
           AND bw.window_start = p_start;
        IF v_others > 0 THEN
            PERFORM pg_notify('budget_wanted', p_limiter::text);
        END IF;
        RETURN QUERY SELECT 'denied'::text, l.id, COALESCE(l.granted, 0), COALESCE(l.exposed, 0),
                            w.spent, w.leased, w.budget, v_others, true, now();
        RETURN;
    END IF;

    -- A share of what is free: less as the budget fills, split among the replicas using it.
    v_share := (v_free * (CASE
                    WHEN w.budget <= 0 THEN 0.1
                    WHEN (w.spent + w.leased)::numeric / w.budget < 0.5 THEN 0.5
                    WHEN (w.spent + w.leased)::numeric / w.budget < 0.8 THEN 0.25
                    ELSE 0.1 END) / v_n)::bigint;
    v_g := LEAST(GREATEST(p_want, v_min), GREATEST(v_share, v_min), v_free);
    IF v_free < 4 * v_n * v_min THEN
        -- The endgame: exactly what is asked for, all of it exposed, so nothing strands.
        v_end := true;
        v_g := LEAST(v_min, v_free);
    END IF;

    IF l.id IS NULL THEN
        INSERT INTO budget_leases AS bl (limiter_id, user_key, window_end, window_start, replica,
                                         granted, exposed, expires_at)
        VALUES (p_limiter, p_user, p_end, p_start, p_replica, v_g,
                CASE WHEN v_end THEN v_g ELSE LEAST(GREATEST(p_expose, 0), v_g) END,
                now() + p_ttl)
        RETURNING * INTO l;
    ELSE
        UPDATE budget_leases bl
           SET granted = bl.granted + v_g,
               exposed = CASE WHEN v_end THEN bl.granted + v_g
                              ELSE GREATEST(bl.exposed, LEAST(p_expose, bl.granted + v_g)) END,
               expires_at = now() + p_ttl
         WHERE bl.id = l.id
        RETURNING * INTO l;
    END IF;
    UPDATE budget_windows bw SET leased = bw.leased + v_g, wanted = 0
     WHERE bw.limiter_id = p_limiter AND bw.user_key = p_user AND bw.window_end = p_end
       AND bw.window_start = p_start;
    RETURN QUERY SELECT 'granted'::text, l.id, l.granted, l.exposed, w.spent, w.leased + v_g,
                        w.budget, v_others, v_end, now();
END $$;

-- A replica's periodic report on its leases (one round trip for all of them): renew each,
-- lower `granted` and `exposed` to the replica's targets (giving the difference back), fold a
-- soft overrun (granted is never below settled), record held/in-flight for statistics, or
-- close the lease. A lease that is no longer active (reclaimed while the replica was away)
-- comes back with its state, changed nothing.
CREATE FUNCTION budget_report(p_replica uuid, p_leases jsonb, p_ttl interval)
RETURNS TABLE (lease_id bigint, state text, granted bigint, exposed bigint, wanted bigint,
               spent bigint, leased bigint, budget bigint)
LANGUAGE plpgsql AS $$
DECLARE
    x record;
    l budget_leases%ROWTYPE;
    w budget_windows%ROWTYPE;
    v_g bigint;
    v_e bigint;
BEGIN
    -- In window key order (then lease id), the order every writer locks windows in, so that
    -- two replicas reporting on leases in the same windows cannot deadlock.
    FOR x IN SELECT t.* FROM jsonb_to_recordset(p_leases)
                 AS t(id bigint, granted bigint, exposed bigint, held bigint, in_flight bigint,
                      close boolean)
               LEFT JOIN budget_leases k ON k.id = t.id
             ORDER BY k.limiter_id, k.user_key, k.window_end, k.window_start, t.id
    LOOP
        SELECT * INTO l FROM budget_leases bl WHERE bl.id = x.id AND bl.replica = p_replica;
        IF NOT FOUND THEN
            RETURN QUERY SELECT x.id, 'missing'::text, 0::bigint, 0::bigint, 0::bigint,
                                0::bigint, 0::bigint, 0::bigint;
            CONTINUE;
        END IF;
        SELECT * INTO w FROM budget_windows bw
         WHERE bw.limiter_id = l.limiter_id AND bw.user_key = l.user_key
           AND bw.window_end = l.window_end AND bw.window_start = l.window_start
           FOR UPDATE;
        SELECT * INTO l FROM budget_leases bl WHERE bl.id = x.id FOR UPDATE;
        IF l.state <> 'active' THEN
            RETURN QUERY SELECT l.id, l.state, l.granted, l.exposed, w.wanted, w.spent, w.leased,
                                w.budget;
            CONTINUE;
        END IF;
        IF x.close THEN
            v_g := l.settled;
            v_e := 0;
        ELSE
            v_g := GREATEST(LEAST(x.granted, l.granted), l.settled, 0);
            v_e := LEAST(GREATEST(x.exposed, 0), v_g);
        END IF;
        UPDATE budget_leases bl
           SET granted = v_g, exposed = v_e, held = GREATEST(x.held, 0),
               in_flight = GREATEST(x.in_flight, 0), expires_at = now() + p_ttl,
               state = CASE WHEN x.close THEN 'closed' ELSE 'active' END
         WHERE bl.id = l.id;
        UPDATE budget_windows bw SET leased = bw.leased + (v_g - l.granted),
               wanted = CASE WHEN v_g < l.granted THEN 0 ELSE bw.wanted END
         WHERE bw.limiter_id = l.limiter_id AND bw.user_key = l.user_key
           AND bw.window_end = l.window_end AND bw.window_start = l.window_start
        RETURNING * INTO w;
        RETURN QUERY SELECT l.id, CASE WHEN x.close THEN 'closed' ELSE 'active' END, v_g, v_e,
                            w.wanted, w.spent, w.leased, w.budget;
    END LOOP;
END $$;

-- Reclaim every expired lease (any window): what each replica's sweeper runs. Skips windows
-- another transaction is working on; they are reclaimed by that window's next grant anyway.
-- Also forgets leases that ended more than an hour ago (closed, or reclaimed and long past any
-- late report), so per-user budgets do not leave a row per user and window behind forever.
CREATE FUNCTION budget_reclaim_expired(p_grace interval)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    k record;
    n integer := 0;
BEGIN
    DELETE FROM budget_leases bl
     WHERE bl.state <> 'active' AND bl.expires_at < now() - interval '1 hour';
    FOR k IN SELECT DISTINCT bl.limiter_id, bl.user_key, bl.window_end, bl.window_start
               FROM budget_leases bl
              WHERE bl.state = 'active' AND bl.expires_at < now() - p_grace
    LOOP
        PERFORM 1 FROM budget_windows bw
         WHERE bw.limiter_id = k.limiter_id AND bw.user_key = k.user_key
           AND bw.window_end = k.window_end AND bw.window_start = k.window_start
           FOR UPDATE SKIP LOCKED;
        IF FOUND THEN
            n := n + budget_reclaim_window(k.limiter_id, k.user_key, k.window_end,
                                           k.window_start, p_grace);
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- A replica whose lease was reclaimed while it was cut off has since written every record of
-- that lease: what the reclaim charged beyond them (still in `crash_left`) was never spent, so
-- it comes off `spent` again. Only the lease's own replica knows when that point is reached.
CREATE FUNCTION budget_settle_reclaimed(p_lease bigint, p_replica uuid)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    l budget_leases%ROWTYPE;
BEGIN
    SELECT * INTO l FROM budget_leases bl WHERE bl.id = p_lease AND bl.replica = p_replica;
    IF NOT FOUND OR l.state <> 'reclaimed' THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM budget_windows bw
     WHERE bw.limiter_id = l.limiter_id AND bw.user_key = l.user_key
       AND bw.window_end = l.window_end AND bw.window_start = l.window_start
       FOR UPDATE;
    SELECT * INTO l FROM budget_leases bl WHERE bl.id = p_lease FOR UPDATE;
    IF l.crash_left <= 0 THEN
        RETURN 0;
    END IF;
    UPDATE budget_leases bl SET crash_left = 0 WHERE bl.id = p_lease;
    UPDATE budget_windows bw SET spent = bw.spent - l.crash_left
     WHERE bw.limiter_id = l.limiter_id AND bw.user_key = l.user_key
       AND bw.window_end = l.window_end AND bw.window_start = l.window_start;
    RETURN l.crash_left;
END $$;

-- Write a batch of settled usage exactly once (one round trip, one transaction): insert the
-- records that are new (an id seen before is skipped, so a retried batch changes nothing), add
-- their cost to every budget window they count in, and move it from `leased` to `spent` on the
-- leases that held them. A record whose lease was reclaimed is first absorbed by what the
-- reclaim charged for it (fencing: no money is counted twice).
CREATE FUNCTION budget_apply(p_events jsonb)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    r record;
    v_abs bigint;
BEGIN
    PERFORM 1 FROM limiters li
     WHERE li.id IN (SELECT DISTINCT (e->>'limiter_id')::uuid FROM jsonb_array_elements(p_events) e)
     ORDER BY li.id FOR SHARE;

    WITH ins AS (
        INSERT INTO usage_events (id, at, limiter_id, model, "user", endpoint, prompt_tokens,
                                  cached_tokens, completion_tokens, reasoning_tokens, cost,
                                  unpriced, estimated, status, streamed, latency_ms,
                                  price_version)
        SELECT x.id, x.at, x.limiter_id, x.model, x."user", x.endpoint, x.prompt_tokens,
               x.cached_tokens, x.completion_tokens, x.reasoning_tokens, x.cost, x.unpriced,
               x.estimated, x.status, x.streamed, x.latency_ms, x.price_version
          FROM jsonb_to_recordset(p_events) AS x(id uuid, at timestamptz, limiter_id uuid,
               model text, "user" text, endpoint text, prompt_tokens bigint,
               cached_tokens bigint, completion_tokens bigint, reasoning_tokens bigint,
               cost bigint, unpriced boolean, estimated boolean, status integer,
               streamed boolean, latency_ms bigint, price_version text)
        ON CONFLICT (id) DO NOTHING
        RETURNING id)
    SELECT array_agg(id) INTO v_ids FROM ins;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;

    -- Every budget window a new record counts in, locked in key order.
    FOR r IN WITH n AS (
                 SELECT x.at, x.limiter_id, COALESCE(x."user", '') AS user_key, x.cost
                   FROM jsonb_to_recordset(p_events) AS x(id uuid, at timestamptz,
                        limiter_id uuid, "user" text, cost bigint)
                   JOIN unnest(v_ids) AS new(id) ON new.id = x.id)
             SELECT bw.limiter_id, bw.user_key, bw.window_end, bw.window_start, SUM(n.cost) AS c
               FROM n
               JOIN budget_windows bw
                 ON bw.limiter_id = n.limiter_id AND bw.user_key IN ('', n.user_key)
                AND bw.window_end > n.at AND bw.window_start <= n.at
              GROUP BY 1, 2, 3, 4
              ORDER BY 1, 2, 3, 4
    LOOP
        UPDATE budget_windows bw SET spent = bw.spent + r.c
         WHERE bw.limiter_id = r.limiter_id AND bw.user_key = r.user_key
           AND bw.window_end = r.window_end AND bw.window_start = r.window_start;
    END LOOP;

    -- The leases that held them, in id order. Their windows are locked above, so no reclaim
    -- can change a lease's state under us.
    FOR r IN WITH n AS (
                 SELECT x.cost, COALESCE(x.leases, '{}') AS leases
                   FROM jsonb_to_recordset(p_events) AS x(id uuid, cost bigint, leases bigint[])
                   JOIN unnest(v_ids) AS new(id) ON new.id = x.id)
             SELECT bl.id, bl.state, bl.crash_left, bl.limiter_id, bl.user_key, bl.window_end,
                    bl.window_start, SUM(n.cost) AS c
               FROM n
               CROSS JOIN LATERAL unnest(n.leases) AS held(lease)
               JOIN budget_leases bl ON bl.id = held.lease
              GROUP BY bl.id
              ORDER BY bl.id
    LOOP
        UPDATE budget_leases bl SET settled = bl.settled + r.c WHERE bl.id = r.id;
        IF r.state = 'active' THEN
            UPDATE budget_windows bw SET leased = bw.leased - r.c
             WHERE bw.limiter_id = r.limiter_id AND bw.user_key = r.user_key
               AND bw.window_end = r.window_end AND bw.window_start = r.window_start;
        ELSIF r.state = 'reclaimed' THEN
            v_abs := LEAST(r.c, r.crash_left);
            UPDATE budget_leases bl SET crash_left = bl.crash_left - v_abs WHERE bl.id = r.id;
            UPDATE budget_windows bw SET spent = bw.spent - v_abs
             WHERE bw.limiter_id = r.limiter_id AND bw.user_key = r.user_key
               AND bw.window_end = r.window_end AND bw.window_start = r.window_start;
        END IF;
    END LOOP;
    RETURN array_length(v_ids, 1);
END $$;

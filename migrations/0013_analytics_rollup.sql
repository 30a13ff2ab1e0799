-- The "state as of" rollup behind the manager KPIs, the summary and the checklist (PRODUCT.md, Definitions).
--
-- Every figure of a manager row is a sum of contributions of single deals (a deal with its history, its tasks
-- and its calls) and of calls without a deal. A contribution is a row (manager, day, t, at, values):
--   tbl 1, period figures (talk time, outgoing calls, created, won, revenue, lost): counted for a period
--          [S, E) (local dates) when S <= day < E and t >= E. day is the local date of the call, creation or
--          move; t is 'infinity', or for a move into won or lost the date of the deal's next move into the
--          same outcome (a deal counts once, at its last such move in the period).
--   tbl 2, tasks due (due, on time, late done and its seconds, still open and late and the sum of their due
--          times): counted when the due date is in the period and the change happened by as_of: at <= as_of
--          (t is the local date of at). A value goes in at a (+) and out at b (-), so the rows of a task add
--          up to its figures as of any moment.
--   tbl 3, deals without tasks and deals with overdue tasks: spans [a, b) during which the deal counts, with
--          +1 at a and -1 at b; counted when at <= as_of, whatever the period (day is '-infinity').
-- kpi_contrib keeps each entity's rows, so a change replaces exactly what that entity gave before;
-- kpi_roll holds the sums by (tbl, manager, day, t): writers append signed deltas (compact = false) and never
-- update a shared row, and the scheduler folds them into one compact row per key (salesops_kpi_compact).
-- A read adds up the rows by key range; rows of tbl 2 and 3 dated on the day of as_of are taken from
-- kpi_contrib by their exact instant when as_of is not the last second of its day.
--
-- Nothing has to call this: statement triggers on deals, deal_history, tasks, task_history and calls note the
-- entities a transaction touched (kpi_dirty), and one deferred trigger recomputes them at commit, so every
-- write path (API, events, webhooks, import, late and out-of-order events) keeps the rollup exact. A change of
-- an account's time zone rebuilds its rollup. The former functions stay as salesops_kpis_raw and
-- salesops_summary_raw: the reference that tests compare the rollup with.

-- Building the rollup of existing accounts (at the end) takes about 6 minutes per million deals on 2 cores,
-- longer than the 60-s statement limit of migrations: this migration lifts it for itself.
SET LOCAL statement_timeout = 0;

CREATE TABLE kpi_contrib (
    account_id bigint   NOT NULL,
    ent_kind   smallint NOT NULL,          -- 0 a deal (with its tasks and calls), 1 a call without a deal
    ent_id     bigint   NOT NULL,
    tbl        smallint NOT NULL,
    manager_id bigint   NOT NULL,          -- 0: nobody; the stage (tbl 4) or pipeline (tbl 5)
    k2         bigint   NOT NULL,          -- tbl 4: the loss reason of a lost row (-1: none), else 0
    day        date     NOT NULL,
    p          date     NOT NULL,          -- tbl 4: the date of the deal's previous entry into the stage
    t          date     NOT NULL,
    at         timestamptz,
    v1 bigint NOT NULL, v2 bigint NOT NULL, v3 bigint NOT NULL,
    v4 bigint NOT NULL, v5 bigint NOT NULL, v6 bigint NOT NULL
);
CREATE INDEX kpi_contrib_by_entity ON kpi_contrib (account_id, ent_kind, ent_id);
-- a deal's calls, for its refresh
CREATE INDEX IF NOT EXISTS calls_by_deal ON calls (account_id, deal_id) WHERE deal_id IS NOT NULL;
-- the rows of as_of's day, for a period that is still running (read from this index alone)
CREATE INDEX kpi_contrib_by_t ON kpi_contrib (account_id, tbl, t)
    INCLUDE (at, manager_id, k2, day, p, v1, v2, v3, v4, v5, v6);

CREATE TABLE kpi_roll (
    account_id bigint   NOT NULL,
    tbl        smallint NOT NULL,
    manager_id bigint   NOT NULL,
    k2         bigint   NOT NULL,
    day        date     NOT NULL,
    p          date     NOT NULL,
    t          date     NOT NULL,
    v1 bigint NOT NULL, v2 bigint NOT NULL, v3 bigint NOT NULL,
    v4 bigint NOT NULL, v5 bigint NOT NULL, v6 bigint NOT NULL,
    compact    boolean  NOT NULL DEFAULT false
);
-- reads scan key ranges of this index alone (the rows of a range lie all over the table)
CREATE INDEX kpi_roll_read ON kpi_roll (account_id, tbl, day, t)
    INCLUDE (manager_id, k2, p, v1, v2, v3, v4, v5, v6);
CREATE UNIQUE INDEX kpi_roll_key ON kpi_roll (account_id, tbl, day, t, manager_id, k2, p) WHERE compact;
CREATE INDEX kpi_roll_pending ON kpi_roll (account_id) WHERE NOT compact;

-- The entities each open transaction touched; emptied by the flush at its commit.
CREATE TABLE kpi_dirty (
    txid       xid8     NOT NULL DEFAULT pg_current_xact_id(),
    account_id bigint   NOT NULL,
    ent_kind   smallint NOT NULL,
    ent_id     bigint   NOT NULL,
    PRIMARY KEY (txid, account_id, ent_kind, ent_id)
);

-- The contribution rows of the given deals (with their tasks and calls) and calls without a deal, from their
-- current state. Deleted deals give nothing, and neither do their tasks and calls.
CREATE FUNCTION salesops_kpi_rows(p_account bigint, p_deals bigint[], p_calls bigint[])
RETURNS TABLE (ent_kind smallint, ent_id bigint, tbl smallint, manager_id bigint, k2 bigint, day date, p date,
               t date, at timestamptz, v1 bigint, v2 bigint, v3 bigint, v4 bigint, v5 bigint, v6 bigint)
LANGUAGE sql STABLE AS $$
    WITH z AS (SELECT a.timezone AS tz FROM accounts a WHERE a.id = p_account),
    d AS (SELECT dl.id, dl.created_at, dl.creator_manager_id, dl.pipeline_id FROM deals dl
          WHERE dl.account_id = p_account AND dl.id IN (SELECT unnest(p_deals)) AND dl.deleted_at IS NULL),
    h AS (SELECT h.deal_id, h.id, h.at, h.status, h.manager_id, h.price, h.from_stage_id, h.to_stage_id,
                 h.loss_reason_id, s.kind, s.pipeline_id, s.position,
                 lag(h.status) OVER w AS prev,
                 coalesce(lead(h.at) OVER w, 'infinity') AS next_at,
                 -- the next row that is not lost, and the last open stage before this row
                 coalesce(min(CASE WHEN h.status <> 'lost' THEN h.at END)
                              OVER (w ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING), 'infinity') AS unlost_at,
                 count(*) FILTER (WHERE h.status = 'open') OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
                     AS opens_before,
                 count(*) FILTER (WHERE h.status = 'open') OVER (w ROWS UNBOUNDED PRECEDING) AS opens_so_far
          FROM deal_history h
          JOIN stages s ON s.account_id = h.account_id AND s.id = h.to_stage_id
          WHERE h.account_id = p_account AND h.deal_id IN (SELECT d.id FROM d)
          WINDOW w AS (PARTITION BY h.deal_id ORDER BY h.at, h.id)),
    -- funnel: each entry into an open stage (created, moved or reopened there), with the deal's previous entry
    -- into the same stage, and when it first advanced after it (a later open stage of the pipeline, or won)
    ent AS (SELECT h.deal_id, h.id, h.at, h.to_stage_id AS stage, h.pipeline_id, h.position,
                   lag(h.at) OVER (PARTITION BY h.deal_id, h.to_stage_id ORDER BY h.at, h.id) AS prev_at
            FROM h WHERE h.kind = 'open' AND h.from_stage_id IS DISTINCT FROM h.to_stage_id),
    adv AS (SELECT e.deal_id, e.id, e.at, e.stage, e.prev_at, min(r.at) AS a
            FROM ent e
            LEFT JOIN h r ON r.deal_id = e.deal_id AND (r.at, r.id) > (e.at, e.id)
                         AND (r.status = 'won' OR (r.kind = 'open' AND r.pipeline_id = e.pipeline_id
                                                   AND r.position > e.position))
            GROUP BY e.deal_id, e.id, e.at, e.stage, e.prev_at),
    -- each time the deal was lost: from the move into lost until it was not, with the last open stage before it
    lseg AS (SELECT x.deal_id, x.at AS lx, x.unlost_at AS ly, x.loss_reason_id, o.to_stage_id AS stage
             FROM h x
             JOIN h o ON o.deal_id = x.deal_id AND o.status = 'open' AND o.opens_so_far = x.opens_before
             WHERE x.status = 'lost' AND x.prev IS DISTINCT FROM 'lost'),
    moves AS (SELECT h.deal_id, h.status, h.manager_id, h.price, h.at,
                     lead(h.at) OVER (PARTITION BY h.deal_id, h.status ORDER BY h.at, h.id) AS next_at
              FROM h WHERE h.status IN ('won', 'lost') AND h.prev IS DISTINCT FROM h.status),
    tk AS (SELECT tk.id, tk.deal_id, tk.created_at, tk.completed_at AS c,
                  least(coalesce(tk.completed_at, 'infinity'), coalesce(tk.deleted_at, 'infinity')) AS open_end,
                  coalesce(tk.deleted_at, 'infinity') AS gone
           FROM tasks tk
           WHERE tk.account_id = p_account AND tk.deal_id IN (SELECT d.id FROM d) AND tk.type <> 'rejection_control'),
    -- each due time a task had, and while it stood and the task existed: [va, vb)
    tv AS (SELECT th.task_id, tk.deal_id, th.due_at AS due, tk.c, tk.open_end,
                  greatest(th.at, tk.created_at) AS va,
                  least(coalesce(lead(th.at) OVER (PARTITION BY th.task_id ORDER BY th.at, th.id), 'infinity'),
                        tk.gone) AS vb
           FROM task_history th JOIN tk ON tk.id = th.task_id
           WHERE th.account_id = p_account AND th.due_at IS NOT NULL),
    -- the task's responsible from y until y_next
    sm AS (SELECT th.task_id, th.at AS y, th.manager_id AS m,
                  coalesce(lead(th.at) OVER (PARTITION BY th.task_id ORDER BY th.at, th.id), 'infinity') AS y_next
           FROM task_history th JOIN tk ON tk.id = th.task_id
           WHERE th.account_id = p_account AND th.set_manager),
    -- whom a due time counts for, as of T: the responsible at min(due, T); pieces [pu, pv) of T
    pieces AS (
        SELECT tv.*, sm.m, sm.y AS pu, least(sm.y_next, tv.due) AS pv
        FROM tv JOIN sm ON sm.task_id = tv.task_id AND sm.y < tv.due
        UNION ALL
        SELECT tv.*, sm.m, tv.due, 'infinity'
        FROM tv LEFT JOIN sm ON sm.task_id = tv.task_id AND sm.y <= tv.due AND tv.due < sm.y_next),
    -- each figure holds while T is in [lo, hi): 1 due, 2 on time, 3 late and done, 4 open and late
    task_iv AS (
        SELECT p.deal_id, p.m, p.due, g.k, greatest(g.lo, p.pu) AS a, least(g.hi, p.pv) AS b,
               CASE g.k WHEN 3 THEN extract(epoch FROM p.c - p.due)::bigint
                        WHEN 4 THEN extract(epoch FROM p.due)::bigint ELSE 0 END AS val
        FROM pieces p
        CROSS JOIN LATERAL (VALUES
            (1, p.va, p.vb),
            (2, CASE WHEN p.c <= p.due THEN greatest(p.va, p.c) END, p.vb),
            (3, CASE WHEN p.c > p.due THEN greatest(p.va, p.c) END, p.vb),
            (4, greatest(p.va, p.due + interval '1 second'), least(p.vb, coalesce(p.c, 'infinity')))
        ) AS g (k, lo, hi)
        WHERE g.lo IS NOT NULL),
    -- spans: the deal's state, its open tasks and its overdue tasks change at these instants
    ev AS (
        SELECT h.deal_id, h.at AS p, 0 AS dopen, 0 AS dod, h.id AS hid FROM h
        UNION ALL
        SELECT tk.deal_id, tk.created_at, 1, 0, NULL FROM tk WHERE tk.created_at < tk.open_end
        UNION ALL
        SELECT tk.deal_id, tk.open_end, -1, 0, NULL FROM tk
        WHERE tk.created_at < tk.open_end AND tk.open_end < 'infinity'
        UNION ALL
        SELECT o.deal_id, x.p, 0, x.dod, NULL
        FROM (SELECT tv.deal_id, greatest(tv.va, tv.due + interval '1 second') AS oa,
                     least(tv.vb, tv.open_end) AS ob FROM tv) o
        CROSS JOIN LATERAL (VALUES (o.oa, 1), (o.ob, -1)) AS x (p, dod)
        WHERE o.oa < o.ob AND x.p < 'infinity'),
    pt AS (SELECT ev.deal_id, ev.p, sum(ev.dopen) AS dopen, sum(ev.dod) AS dod, max(ev.hid) AS hid
           FROM ev GROUP BY ev.deal_id, ev.p),
    run AS (SELECT pt.deal_id, pt.p, sum(pt.dopen) OVER w AS nopen, sum(pt.dod) OVER w AS nod,
                   count(pt.hid) OVER w AS grp, hh.status AS hs, hh.manager_id AS hm,
                   coalesce(lead(pt.p) OVER w, 'infinity') AS pnext
            FROM pt LEFT JOIN h hh ON hh.id = pt.hid
            WINDOW w AS (PARTITION BY pt.deal_id ORDER BY pt.p)),
    -- the deal's status and responsible at each instant: those of its last history row so far
    st AS (SELECT s.deal_id, s.p, s.pnext, s.m,
                  CASE WHEN s.status = 'open' AND s.m IS NOT NULL
                       THEN CASE WHEN s.nopen = 0 THEN 1 WHEN s.nod > 0 THEN 2 ELSE 0 END ELSE 0 END AS kind
           FROM (SELECT run.*, first_value(run.hs) OVER g AS status, first_value(run.hm) OVER g AS m
                 FROM run WINDOW g AS (PARTITION BY run.deal_id, run.grp ORDER BY run.p)) s),
    isl AS (SELECT st.*, sum(st.brk) OVER (PARTITION BY st.deal_id ORDER BY st.p) AS island
            FROM (SELECT st.*, CASE WHEN (st.kind, st.m) IS NOT DISTINCT FROM
                                         (lag(st.kind) OVER w, lag(st.m) OVER w) THEN 0 ELSE 1 END AS brk
                  FROM st WINDOW w AS (PARTITION BY st.deal_id ORDER BY st.p)) st),
    spans AS (SELECT isl.deal_id, isl.kind, isl.m, min(isl.p) AS a, max(isl.pnext) AS b
              FROM isl WHERE isl.kind > 0 GROUP BY isl.deal_id, isl.island, isl.kind, isl.m),
    raw AS (
        -- deals created
        SELECT 0 AS ek, d.id AS eid, 1 AS tb, d.creator_manager_id AS m, 0::bigint AS k2, d.created_at AS dt,
               NULL::timestamptz AS pdt, 'infinity'::date AS t, NULL::timestamptz AS at, 0::bigint AS v1,
               0::bigint AS v2, 1::bigint AS v3, 0::bigint AS v4, 0::bigint AS v5, 0::bigint AS v6
        FROM d
        UNION ALL
        -- moves into won or lost, counted in a period unless the next such move of the deal is in it too
        SELECT 0, mv.deal_id, 1, mv.manager_id, 0, mv.at, NULL,
               CASE WHEN mv.next_at IS NULL THEN 'infinity'::date ELSE (mv.next_at AT TIME ZONE z.tz)::date END,
               NULL, 0, 0, 0, (mv.status = 'won')::int, CASE WHEN mv.status = 'won' THEN mv.price ELSE 0 END,
               (mv.status = 'lost')::int
        FROM moves mv, z
        UNION ALL
        -- calls: of the deals, and those without a deal
        SELECT (c.deal_id IS NULL)::int, coalesce(c.deal_id, c.id), 1, c.manager_id, 0, c.started_at, NULL,
               'infinity', NULL, CASE WHEN c.answered THEN c.duration_s ELSE 0 END, (c.direction = 'out')::int,
               0, 0, 0, 0
        FROM (SELECT c.* FROM calls c JOIN d ON c.deal_id = d.id WHERE c.account_id = p_account
              UNION ALL
              SELECT c.* FROM calls c
              WHERE c.account_id = p_account AND c.deal_id IS NULL AND c.id IN (SELECT unnest(p_calls))) c
        UNION ALL
        -- tasks due: + at a, - at b
        SELECT 0, ti.deal_id, 2, ti.m, 0, ti.due, NULL, (x.at AT TIME ZONE z.tz)::date, x.at,
               x.s * (ti.k = 1)::int, x.s * (ti.k = 2)::int, x.s * (ti.k = 3)::int,
               CASE WHEN ti.k = 3 THEN x.s * ti.val ELSE 0 END, x.s * (ti.k = 4)::int,
               CASE WHEN ti.k = 4 THEN x.s * ti.val ELSE 0 END
        FROM task_iv ti, z
        CROSS JOIN LATERAL (VALUES (ti.a, 1), (ti.b, -1)) AS x (at, s)
        WHERE ti.a < ti.b AND x.at < 'infinity'
        UNION ALL
        -- deals without tasks (v1) and with overdue tasks (v2): + at a, - at b
        SELECT 0, sp.deal_id, 3, sp.m, 0, NULL, NULL, (x.at AT TIME ZONE z.tz)::date, x.at,
               x.s * (sp.kind = 1)::int, x.s * (sp.kind = 2)::int, 0, 0, 0, 0
        FROM spans sp, z
        CROSS JOIN LATERAL (VALUES (sp.a, 1), (sp.b, -1)) AS x (at, s)
        WHERE x.at < 'infinity'
        UNION ALL
        -- funnel, per stage entry (day: the entry, p: the previous entry into the stage): entered (v1), advanced
        -- (v2) from the first advance after it, and lost (v3, k2 the reason) while the deal is lost from that
        -- stage and has not advanced
        SELECT 0, e.deal_id, 4, e.stage, 0, e.at, e.prev_at, '-infinity', NULL, 1, 0, 0, 0, 0, 0
        FROM adv e
        UNION ALL
        SELECT 0, e.deal_id, 4, e.stage, 0, e.at, e.prev_at, (e.a AT TIME ZONE z.tz)::date, e.a, 0, 1, 0, 0, 0, 0
        FROM adv e, z WHERE e.a IS NOT NULL
        UNION ALL
        SELECT 0, e.deal_id, 4, e.stage, coalesce(l.loss_reason_id, -1), e.at, e.prev_at,
               (x.at AT TIME ZONE z.tz)::date, x.at, 0, 0, x.s, 0, 0, 0
        FROM adv e
        JOIN lseg l ON l.deal_id = e.deal_id AND l.stage = e.stage
        CROSS JOIN LATERAL (VALUES (l.lx, 1), (least(l.ly, coalesce(e.a, 'infinity')), -1)) AS x (at, s), z
        WHERE l.lx < least(l.ly, coalesce(e.a, 'infinity')) AND x.at < 'infinity'
        UNION ALL
        -- funnel totals, per the deal's pipeline and creation: created (v1), won (v2) and lost (v3) as of T
        SELECT 0, d.id, 5, d.pipeline_id, 0, d.created_at, NULL, '-infinity', NULL, 1, 0, 0, 0, 0, 0
        FROM d
        UNION ALL
        SELECT 0, d.id, 5, d.pipeline_id, 0, d.created_at, NULL, (x.at AT TIME ZONE z.tz)::date, x.at, 0,
               x.s * (h.status = 'won')::int, x.s * (h.status = 'lost')::int, 0, 0, 0
        FROM h JOIN d ON d.id = h.deal_id
        CROSS JOIN LATERAL (VALUES (h.at, 1), (h.next_at, -1)) AS x (at, s), z
        WHERE h.status <> 'open' AND h.at < h.next_at AND x.at < 'infinity')
    SELECT r.ek::smallint, r.eid, r.tb::smallint, coalesce(r.m, 0), r.k2,
           CASE WHEN r.dt IS NULL THEN '-infinity'::date ELSE (r.dt AT TIME ZONE z.tz)::date END,
           CASE WHEN r.pdt IS NULL THEN '-infinity'::date ELSE (r.pdt AT TIME ZONE z.tz)::date END, r.t, r.at,
           sum(r.v1)::bigint, sum(r.v2)::bigint, sum(r.v3)::bigint, sum(r.v4)::bigint, sum(r.v5)::bigint,
           sum(r.v6)::bigint
    FROM raw r, z
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    HAVING (sum(r.v1), sum(r.v2), sum(r.v3), sum(r.v4), sum(r.v5), sum(r.v6)) <> (0, 0, 0, 0, 0, 0)
$$;

-- Replaces the contributions of the given entities by their current ones, and appends the difference to
-- kpi_roll. Refreshes of one entity take turns (a lock per entity, taken in order, under the account's lock
-- in shared mode); a refresh of over 1,000 entities (an import, a rebuild) takes the account's lock alone
-- and joins by hashing.
-- Up to 64 entities run one cached generic plan (planning the statement costs more than running it for a
-- few deals); more are planned for their number (a plan for a few would loop over each of them).
CREATE FUNCTION salesops_kpi_refresh(p_account bigint, p_deals bigint[], p_calls bigint[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n int := cardinality(p_deals) + cardinality(p_calls);
    saved_mode text := current_setting('plan_cache_mode');
    saved_nestloop text := current_setting('enable_nestloop');
BEGIN
    PERFORM set_config('plan_cache_mode', CASE WHEN n > 64 THEN 'force_custom_plan' ELSE 'force_generic_plan' END,
                       true);
    IF n > 1000 THEN
        PERFORM pg_advisory_xact_lock(1263553601, hashint8(p_account));
        -- the CTEs' estimates are rough: a nested loop over thousands of rows on each side never ends
        PERFORM set_config('enable_nestloop', 'off', true);
    ELSE
        PERFORM pg_advisory_xact_lock_shared(1263553601, hashint8(p_account));
        PERFORM pg_advisory_xact_lock(hashint8(p_account), hashint8(k.id * 2 + k.kind))
        FROM (SELECT 0 AS kind, x AS id FROM unnest(p_deals) AS x
              UNION SELECT 1, x FROM unnest(p_calls) AS x ORDER BY 1, 2) k;
    END IF;
    WITH old AS (
        DELETE FROM kpi_contrib c
        USING (SELECT 0 AS kind, unnest(p_deals) AS id UNION ALL SELECT 1, unnest(p_calls)) e
        WHERE c.account_id = p_account AND c.ent_kind = e.kind AND c.ent_id = e.id
        RETURNING c.*),
    new AS (
        INSERT INTO kpi_contrib
        SELECT p_account, r.* FROM salesops_kpi_rows(p_account, p_deals, p_calls) r
        RETURNING *),
    diff AS (
        SELECT o.tbl, o.manager_id, o.k2, o.day, o.p, o.t, -o.v1 AS v1, -o.v2 AS v2, -o.v3 AS v3, -o.v4 AS v4,
               -o.v5 AS v5, -o.v6 AS v6 FROM old o
        UNION ALL
        SELECT n.tbl, n.manager_id, n.k2, n.day, n.p, n.t, n.v1, n.v2, n.v3, n.v4, n.v5, n.v6 FROM new n)
    INSERT INTO kpi_roll (account_id, tbl, manager_id, k2, day, p, t, v1, v2, v3, v4, v5, v6)
    SELECT p_account, x.tbl, x.manager_id, x.k2, x.day, x.p, x.t, sum(x.v1), sum(x.v2), sum(x.v3), sum(x.v4),
           sum(x.v5), sum(x.v6)
    FROM diff x
    GROUP BY x.tbl, x.manager_id, x.k2, x.day, x.p, x.t
    HAVING (sum(x.v1), sum(x.v2), sum(x.v3), sum(x.v4), sum(x.v5), sum(x.v6)) <> (0, 0, 0, 0, 0, 0);
    PERFORM set_config('plan_cache_mode', saved_mode, true);
    PERFORM set_config('enable_nestloop', saved_nestloop, true);
END
$$;

-- Folds the account's appended deltas into its compact rows (the caller holds its compaction lock); returns the
-- rows folded.
CREATE FUNCTION salesops_kpi_fold(p_account bigint)
RETURNS bigint LANGUAGE sql AS $$
    WITH moved AS (
        DELETE FROM kpi_roll r WHERE r.account_id = p_account AND NOT r.compact RETURNING r.*),
    sums AS (
        SELECT m.tbl, m.manager_id, m.k2, m.day, m.p, m.t, sum(m.v1) AS v1, sum(m.v2) AS v2, sum(m.v3) AS v3,
               sum(m.v4) AS v4, sum(m.v5) AS v5, sum(m.v6) AS v6, count(*) AS n
        FROM moved m GROUP BY m.tbl, m.manager_id, m.k2, m.day, m.p, m.t),
    up AS (
        INSERT INTO kpi_roll AS r (account_id, tbl, manager_id, k2, day, p, t, v1, v2, v3, v4, v5, v6, compact)
        SELECT p_account, s.tbl, s.manager_id, s.k2, s.day, s.p, s.t, s.v1, s.v2, s.v3, s.v4, s.v5, s.v6, true
        FROM sums s ORDER BY s.tbl, s.day, s.t, s.manager_id, s.k2, s.p
        ON CONFLICT (account_id, tbl, day, t, manager_id, k2, p) WHERE compact DO UPDATE
        SET v1 = r.v1 + excluded.v1, v2 = r.v2 + excluded.v2, v3 = r.v3 + excluded.v3,
            v4 = r.v4 + excluded.v4, v5 = r.v5 + excluded.v5, v6 = r.v6 + excluded.v6
        RETURNING 1)
    SELECT coalesce(sum(s.n), 0)::bigint FROM sums s
$$;

-- The whole rollup of an account from its data (a new time zone, the migration, generated data).
CREATE FUNCTION salesops_kpi_rebuild(p_account bigint)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1263553601, hashint8(p_account));
    PERFORM pg_advisory_xact_lock(1263553602, hashint8(p_account));
    PERFORM set_config('work_mem', '256MB', true);
    DELETE FROM kpi_contrib WHERE account_id = p_account;
    DELETE FROM kpi_roll WHERE account_id = p_account;
    PERFORM salesops_kpi_refresh(p_account, ARRAY(SELECT id FROM deals WHERE account_id = p_account),
                                 ARRAY(SELECT id FROM calls WHERE account_id = p_account AND deal_id IS NULL));
    PERFORM salesops_kpi_fold(p_account);
END
$$;

-- Folds the appended deltas of up to p_accounts accounts; returns the rows folded. An account another
-- compactor is busy with is skipped.
CREATE FUNCTION salesops_kpi_compact(p_accounts int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    acc bigint;
    n bigint := 0;
BEGIN
    FOR acc IN SELECT DISTINCT r.account_id FROM kpi_roll r WHERE NOT r.compact LIMIT p_accounts LOOP
        CONTINUE WHEN NOT pg_try_advisory_xact_lock(1263553602, hashint8(acc));
        n := n + salesops_kpi_fold(acc);
    END LOOP;
    RETURN n;
END
$$;

-- At commit: recompute what the transaction touched, once.
CREATE FUNCTION salesops_kpi_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF current_setting('salesops.kpi_flushed', true) = pg_current_xact_id()::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('salesops.kpi_flushed', pg_current_xact_id()::text, true);
    FOR r IN
        WITH x AS (DELETE FROM kpi_dirty WHERE txid = pg_current_xact_id()
                   RETURNING account_id, ent_kind, ent_id)
        SELECT x.account_id, coalesce(array_agg(x.ent_id) FILTER (WHERE x.ent_kind = 0), '{}') AS deals,
               coalesce(array_agg(x.ent_id) FILTER (WHERE x.ent_kind = 1), '{}') AS calls
        FROM x GROUP BY x.account_id ORDER BY x.account_id
    LOOP
        PERFORM salesops_kpi_refresh(r.account_id, r.deals, r.calls);
    END LOOP;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER kpi_dirty_flush AFTER INSERT ON kpi_dirty DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION salesops_kpi_flush();

-- Statement triggers: note the entities of the rows a statement wrote, from its transition table "changed" (the
-- new rows of an insert, the old ones of a delete, and both of an update, by two triggers: an update may move a
-- task or call to another deal).
CREATE FUNCTION salesops_kpi_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'deals' THEN
        INSERT INTO kpi_dirty (account_id, ent_kind, ent_id)
        SELECT DISTINCT c.account_id, 0, c.id FROM changed c ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'task_history' THEN
        INSERT INTO kpi_dirty (account_id, ent_kind, ent_id)
        SELECT DISTINCT t.account_id, 0, t.deal_id FROM tasks t
        WHERE (t.account_id, t.id) IN (SELECT c.account_id, c.task_id FROM changed c) ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'calls' THEN
        -- a call without a deal is an entity of its own
        INSERT INTO kpi_dirty (account_id, ent_kind, ent_id)
        SELECT DISTINCT c.account_id, (c.deal_id IS NULL)::int, coalesce(c.deal_id, c.id) FROM changed c
        ON CONFLICT DO NOTHING;
    ELSE -- deal_history, tasks
        INSERT INTO kpi_dirty (account_id, ent_kind, ent_id)
        SELECT DISTINCT c.account_id, 0, c.deal_id FROM changed c ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    tbl text;
    how text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['deals', 'deal_history', 'tasks', 'task_history', 'calls'] LOOP
        FOREACH how IN ARRAY ARRAY['INSERT:NEW', 'DELETE:OLD', 'UPDATE:NEW', 'UPDATE:OLD'] LOOP
            EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I REFERENCING %s TABLE AS changed'
                           ' FOR EACH STATEMENT EXECUTE FUNCTION salesops_kpi_note()',
                           tbl || '_kpi_' || lower(replace(how, ':', '_')), split_part(how, ':', 1), tbl,
                           split_part(how, ':', 2));
        END LOOP;
    END LOOP;
END
$$;

CREATE FUNCTION salesops_kpi_timezone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM salesops_kpi_rebuild(NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER accounts_kpi_timezone AFTER UPDATE OF timezone ON accounts
    FOR EACH ROW WHEN (OLD.timezone IS DISTINCT FROM NEW.timezone) EXECUTE FUNCTION salesops_kpi_timezone();

-- A period [p_start, p_end) as local dates [s, e), the local date n of p_as_of, whether p_as_of is the last
-- second of that day (then every change dated that day has happened), and p_as_of in epoch seconds.
CREATE FUNCTION salesops_kpi_bounds(p_account bigint, p_start timestamptz, p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (s date, e date, n date, eod boolean, asof bigint)
LANGUAGE sql STABLE AS $$
    SELECT (p_start AT TIME ZONE a.timezone)::date, (p_end AT TIME ZONE a.timezone)::date,
           (p_as_of AT TIME ZONE a.timezone)::date,
           ((p_as_of + interval '1 second') AT TIME ZONE a.timezone)::date <> (p_as_of AT TIME ZONE a.timezone)::date,
           extract(epoch FROM p_as_of)::bigint
    FROM accounts a WHERE a.id = p_account
$$;

-- The sums of rollup table p_tbl for each period i ([p_starts[i], p_ends[i]) as of p_as_ofs[i]), by key
-- (manager_id: the manager, stage or pipeline; k2), in one pass over the rows of all periods:
--   tbl 1: day in the period and t >= its end;
--   tbl 2, 4, 5: day in the period, no earlier entry in it (p, funnel), and the change at or before as_of;
--   tbl 3: the change at or before as_of, whatever its day: each row is read once, into the bucket of the
--          first period whose as_of it precedes, and a period adds up the buckets up to its own.
-- When as_of is within its day, that day's rows come from kpi_contrib by their exact instant.
CREATE FUNCTION salesops_kpi_read(p_account bigint, p_tbl smallint, p_starts timestamptz[], p_ends timestamptz[],
                                  p_as_ofs timestamptz[])
RETURNS TABLE (period int, manager_id bigint, k2 bigint, v1 bigint, v2 bigint, v3 bigint, v4 bigint, v5 bigint,
               v6 bigint)
LANGUAGE sql STABLE AS $$
    WITH pr AS (
        SELECT i, b.*, b.n + b.eod::int AS upto
        FROM generate_subscripts(p_starts, 1) AS i,
             LATERAL salesops_kpi_bounds(p_account, p_starts[i], p_ends[i], p_as_ofs[i]) b),
    -- tbl 3: the distinct limits in order; a row's bucket is the number of limits at or before its t
    lim AS (SELECT array_agg(DISTINCT pr.upto ORDER BY pr.upto) AS a FROM pr),
    spans AS (
        SELECT r.manager_id, r.k2, width_bucket(r.t, lim.a) AS bk, sum(r.v1) AS v1, sum(r.v2) AS v2
        FROM kpi_roll r, lim
        WHERE p_tbl = 3 AND r.account_id = p_account AND r.tbl = 3 AND r.day = '-infinity'
          AND r.t < lim.a[cardinality(lim.a)]
        GROUP BY 1, 2, 3),
    x AS (
        SELECT pr.i, r.manager_id, r.k2, r.v1, r.v2, r.v3, r.v4, r.v5, r.v6
        FROM pr JOIN kpi_roll r ON r.account_id = p_account AND r.tbl = 1 AND r.day >= pr.s AND r.day < pr.e
                               AND r.t >= pr.e
        WHERE p_tbl = 1
        UNION ALL
        SELECT pr.i, r.manager_id, r.k2, r.v1, r.v2, r.v3, r.v4, r.v5, r.v6
        FROM pr JOIN kpi_roll r ON r.account_id = p_account AND r.tbl = p_tbl AND r.day >= pr.s AND r.day < pr.e
                               AND r.p < pr.s AND r.t < pr.upto
        WHERE p_tbl IN (2, 4, 5)
        UNION ALL
        SELECT pr.i, sp.manager_id, sp.k2, sp.v1, sp.v2, 0, 0, 0, 0
        FROM pr, lim, spans sp WHERE sp.bk < array_position(lim.a, pr.upto)
        UNION ALL
        -- (a lookup per period, kept one by OFFSET 0: as a join it read the table's rows of every day)
        SELECT pr.i, c.manager_id, c.k2, c.v1, c.v2, c.v3, c.v4, c.v5, c.v6
        FROM pr CROSS JOIN LATERAL (
            SELECT c.* FROM kpi_contrib c
            WHERE c.account_id = p_account AND c.tbl = p_tbl AND c.t = pr.n AND c.at <= p_as_ofs[pr.i]
              AND (p_tbl = 3 OR (c.day >= pr.s AND c.day < pr.e AND c.p < pr.s))
            OFFSET 0) c
        WHERE p_tbl <> 1 AND NOT pr.eod)
    SELECT x.i, x.manager_id, x.k2, sum(x.v1)::bigint, sum(x.v2)::bigint, sum(x.v3)::bigint, sum(x.v4)::bigint,
           sum(x.v5)::bigint, sum(x.v6)::bigint
    FROM x GROUP BY x.i, x.manager_id, x.k2
$$;

ALTER FUNCTION salesops_kpis(bigint, timestamptz, timestamptz, timestamptz) RENAME TO salesops_kpis_raw;
ALTER FUNCTION salesops_summary(bigint, timestamptz, timestamptz) RENAME TO salesops_summary_raw;

-- Manager KPIs from the rollup for several periods at once (the checklist's weeks): per period (1-based), the
-- rows of salesops_kpis_raw for it. late_tasks is the number of late tasks.
CREATE FUNCTION salesops_kpis_multi(p_account bigint, p_starts timestamptz[], p_ends timestamptz[],
                                    p_as_ofs timestamptz[])
RETURNS TABLE (period int, manager_id bigint, name text, talk_time_s bigint, outgoing_calls bigint,
               deals_created bigint, won bigint, won_revenue bigint, lost bigint, deals_without_tasks bigint,
               deals_with_overdue_tasks bigint, tasks_due bigint, tasks_on_time bigint, overdue_total_s bigint,
               late_tasks bigint)
LANGUAGE sql STABLE AS $$
    WITH f AS (
        SELECT x.period, x.manager_id,
               sum(x.v1) FILTER (WHERE x.tbl = 1) AS talk, sum(x.v2) FILTER (WHERE x.tbl = 1) AS outgoing,
               sum(x.v3) FILTER (WHERE x.tbl = 1) AS created, sum(x.v4) FILTER (WHERE x.tbl = 1) AS won,
               sum(x.v5) FILTER (WHERE x.tbl = 1) AS revenue, sum(x.v6) FILTER (WHERE x.tbl = 1) AS lost,
               sum(x.v1) FILTER (WHERE x.tbl = 3) AS without, sum(x.v2) FILTER (WHERE x.tbl = 3) AS overdue,
               sum(x.v1) FILTER (WHERE x.tbl = 2) AS due_n, sum(x.v2) FILTER (WHERE x.tbl = 2) AS on_time,
               -- lateness: done late (v4), and open and late: as_of - due, summed as n * as_of - sum(due)
               sum(x.v4 + x.v5 * extract(epoch FROM p_as_ofs[x.period])::bigint - x.v6) FILTER (WHERE x.tbl = 2)
                   AS late_s,
               sum(x.v3 + x.v5) FILTER (WHERE x.tbl = 2) AS late_n
        FROM (SELECT 1 AS tbl, r.* FROM salesops_kpi_read(p_account, 1::smallint, p_starts, p_ends, p_as_ofs) r
              UNION ALL
              SELECT 2, r.* FROM salesops_kpi_read(p_account, 2::smallint, p_starts, p_ends, p_as_ofs) r
              UNION ALL
              SELECT 3, r.* FROM salesops_kpi_read(p_account, 3::smallint, p_starts, p_ends, p_as_ofs) r) x
        GROUP BY x.period, x.manager_id)
    SELECT i, m.id, m.name, coalesce(f.talk, 0)::bigint, coalesce(f.outgoing, 0)::bigint,
           coalesce(f.created, 0)::bigint, coalesce(f.won, 0)::bigint, coalesce(f.revenue, 0)::bigint,
           coalesce(f.lost, 0)::bigint, coalesce(f.without, 0)::bigint, coalesce(f.overdue, 0)::bigint,
           coalesce(f.due_n, 0)::bigint, coalesce(f.on_time, 0)::bigint, coalesce(f.late_s, 0)::bigint,
           coalesce(f.late_n, 0)::bigint
    FROM generate_subscripts(p_starts, 1) AS i
    CROSS JOIN managers m
    LEFT JOIN f ON f.period = i AND f.manager_id = m.id
    WHERE m.account_id = p_account AND m.role = 'manager' AND NOT m.pool_user
    ORDER BY i, m.id
$$;

-- Manager KPIs from the rollup: the same rows as salesops_kpis_raw.
CREATE FUNCTION salesops_kpis(p_account bigint, p_start timestamptz, p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (manager_id bigint, name text, talk_time_s bigint, outgoing_calls bigint, deals_created bigint,
               won bigint, won_revenue bigint, lost bigint, deals_without_tasks bigint,
               deals_with_overdue_tasks bigint, tasks_due bigint, tasks_on_time bigint, overdue_total_s bigint,
               late_tasks bigint)
LANGUAGE sql STABLE AS $$
    SELECT k.manager_id, k.name, k.talk_time_s, k.outgoing_calls, k.deals_created, k.won, k.won_revenue, k.lost,
           k.deals_without_tasks, k.deals_with_overdue_tasks, k.tasks_due, k.tasks_on_time, k.overdue_total_s,
           k.late_tasks
    FROM salesops_kpis_multi(p_account, ARRAY[p_start], ARRAY[p_end], ARRAY[p_as_of]) k
$$;

-- Account-wide, from the rollup: the same row as salesops_summary_raw.
CREATE FUNCTION salesops_summary(p_account bigint, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (created bigint, won bigint, won_revenue bigint, lost bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(r.v3), 0)::bigint, coalesce(sum(r.v4), 0)::bigint, coalesce(sum(r.v5), 0)::bigint,
           coalesce(sum(r.v6), 0)::bigint
    FROM salesops_kpi_read(p_account, 1::smallint, ARRAY[p_start], ARRAY[p_end], ARRAY[p_end - interval '1 second']) r
$$;

ALTER FUNCTION salesops_funnel_totals(bigint, bigint, timestamptz, timestamptz, timestamptz)
    RENAME TO salesops_funnel_totals_raw;

-- The funnel from the rollup, per open stage of the pipeline and loss reason (reason 0: the entered and advanced
-- counts; -1: lost without a reason): the same counts as salesops_funnel_entries.
CREATE FUNCTION salesops_funnel_counts(p_account bigint, p_pipeline bigint, p_start timestamptz,
                                       p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (stage_id bigint, reason bigint, entered bigint, advanced bigint, lost bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.manager_id, x.k2, x.v1, x.v2, x.v3
    FROM salesops_kpi_read(p_account, 4::smallint, ARRAY[p_start], ARRAY[p_end], ARRAY[p_as_of]) x
    WHERE x.manager_id IN (SELECT s.id FROM stages s
                           WHERE s.account_id = p_account AND s.pipeline_id = p_pipeline AND s.kind = 'open')
$$;

-- The pipeline's totals from the rollup: the same row as salesops_funnel_totals_raw.
CREATE FUNCTION salesops_funnel_totals(p_account bigint, p_pipeline bigint, p_start timestamptz,
                                       p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (created bigint, won bigint, lost bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(sum(x.v1), 0)::bigint, coalesce(sum(x.v2), 0)::bigint, coalesce(sum(x.v3), 0)::bigint
    FROM salesops_kpi_read(p_account, 5::smallint, ARRAY[p_start], ARRAY[p_end], ARRAY[p_as_of]) x
    WHERE x.manager_id = p_pipeline
$$;

DO $$
DECLARE
    acc bigint;
BEGIN
    FOR acc IN SELECT id FROM accounts ORDER BY id LOOP
        PERFORM salesops_kpi_rebuild(acc);
    END LOOP;
END
$$;

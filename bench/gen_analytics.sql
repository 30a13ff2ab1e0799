-- The analytics benchmark's account, generated directly in SQL (set-based, generate_series; no HTTP, no
-- import): a year of a large sales team in one existing account.
--
--   psql -X -v ON_ERROR_STOP=1 -v account=ID [-v deals=N] [-v managers=N] [-v tasks=N] [-v calls=N]
--        [-v seed=S] -f bench/gen_analytics.sql DATABASE_URL
--
-- Defaults: 200 managers (role manager) and 1 head of sales, 1,000,000 deals, 3,000,000 tasks, 3,000,000
-- calls, seed 0.42 (the same seed gives the same data relative to the moment of the run).
--
-- What it writes, all in account ID, consistent with how the service stores it:
--   managers      MANAGERS with role manager ('Manager 001'..) and one head
--   pipeline      'Analytics bench': 5 open stages (the case's), won, lost (positions 1..7); 6 loss reasons
--   (every time is whole seconds, as the service stores them)
--   deals         created over the last 365 days (ids in creation order), creator_manager_id = manager_id
--                 (managers take turns), each moved forward through the open stages with the case's funnel:
--                 ~80 % reach stage 2, ~55 % stage 3, ~35 % stage 4, ~20 % stage 5; ~6 % end won (from
--                 stage 5), ~60 % lost (at the furthest stage they reached, with a reason), the rest open.
--                 About 40 % of the forward moves go back one stage and forward again (a deal returned to
--                 the previous stage), which brings the history to about 5 rows per deal. Moves are spaced
--                 by a per-deal gap (6 h to 6.25 days); a move that would come after now has not happened
--                 yet, so recent deals are further behind. The current columns (stage_id, status,
--                 closed_at, loss_reason_id, updated_at) are those of the last history row.
--   deal_history  one row per creation and move (creation: from_stage_id NULL), in time order
--   deal_changes  one row per history row: the creation row with creation, stage_id, set_manager,
--                 manager_id, price and name; a move with stage_id (and loss_reason_id into lost)
--   tasks         on random deals (about 5 % of the deals get none), created during the deal's life
--                 (creation .. close, or now), due 1 h to ~4 days later; 65 % completed on time, 27 %
--                 completed late (or still open if that is after now), 5 % never completed, 3 % deleted;
--                 ids in creation order
--   task_history  one creation row per task (creation, set_manager, manager_id, due_at)
--   calls         85 % on a deal (by its manager, during its life), 15 % without one (any manager, any
--                 time of the year); 70 % outgoing, 70 % answered (15 s to ~15 min), the rest 0 s;
--                 ids in time order
-- then VACUUM (ANALYZE) of every table it wrote (so that no autovacuum runs during the measurements).
--
-- Speed: the foreign-key triggers are off for this session (session_replication_role = replica; needs a
-- superuser): every id written comes from the rows written just before, and the script checks the
-- references at the end with set-based anti-joins. The session uses large work_mem and temp_buffers.
-- Each step prints its time (\timing) and the script prints the row counts and the total at the end.

\set ON_ERROR_STOP on
\if :{?account}
\else
DO $$ BEGIN RAISE EXCEPTION 'gen_analytics.sql: -v account=ID is required'; END $$;
\endif
\if :{?deals}
\else
\set deals 1000000
\endif
\if :{?managers}
\else
\set managers 200
\endif
\if :{?tasks}
\else
\set tasks 3000000
\endif
\if :{?calls}
\else
\set calls 3000000
\endif
\if :{?seed}
\else
\set seed 0.42
\endif

SET temp_buffers = '1GB';
SET work_mem = '512MB';
SET maintenance_work_mem = '1GB';
SET synchronous_commit = off;
SET session_replication_role = replica;
SET client_min_messages = warning;

SELECT clock_timestamp() AS gen_started, date_trunc('second', now()) AS t0 \gset
SELECT setseed(:seed) AS seeded \gset
\echo gen_analytics: account :account, :managers managers, :deals deals, :tasks tasks, :calls calls, now :t0
SELECT EXISTS (SELECT 1 FROM accounts WHERE id = :account) AS account_exists \gset
\if :account_exists
\else
DO $$ BEGIN RAISE EXCEPTION 'gen_analytics.sql: no such account'; END $$;
\endif

\timing on

-- --------------------------------------------------------------------------------- managers, pipeline
\echo '== managers, pipeline, stages, loss reasons'
BEGIN;
INSERT INTO managers (account_id, external_id, name, email, role, created_at, updated_at)
VALUES (:account, 'ab-head', 'Head of sales', 'head@analytics.bench', 'head',
        :'t0'::timestamptz - interval '400 days', :'t0'::timestamptz - interval '400 days');
CREATE TEMP TABLE gm (mi int PRIMARY KEY, id bigint NOT NULL);
WITH ins AS (
    INSERT INTO managers (account_id, external_id, name, email, role, created_at, updated_at)
    SELECT :account, 'ab-m' || i, 'Manager ' || lpad(i::text, 3, '0'), 'm' || i || '@analytics.bench', 'manager',
           :'t0'::timestamptz - interval '400 days', :'t0'::timestamptz - interval '400 days'
    FROM generate_series(1, :managers) AS i
    RETURNING id, external_id)
INSERT INTO gm SELECT substr(external_id, 5)::int - 1, id FROM ins;

INSERT INTO pipelines (account_id, external_id, name, created_at)
VALUES (:account, 'ab-pipeline', 'Analytics bench', :'t0'::timestamptz - interval '400 days')
RETURNING id AS pipeline_id \gset
-- pos 1..5 open, 6 won, 7 lost
CREATE TEMP TABLE gs (pos int PRIMARY KEY, id bigint NOT NULL, kind text NOT NULL);
WITH ins AS (
    INSERT INTO stages (account_id, pipeline_id, name, kind, position)
    SELECT :account, :pipeline_id, name, kind, pos
    FROM (VALUES (1, 'Неразобранное', 'open'), (2, 'Взят в работу', 'open'), (3, 'Квалификация', 'open'),
                 (4, 'Выслано КП', 'open'), (5, 'Дожим', 'open'), (6, 'Успешно', 'won'),
                 (7, 'Закрыто и не реализовано', 'lost')) AS s (pos, name, kind)
    RETURNING id, position, kind)
INSERT INTO gs SELECT position, id, kind FROM ins;
CREATE TEMP TABLE glr (ri int PRIMARY KEY, id bigint NOT NULL);
WITH ins AS (
    INSERT INTO loss_reasons (account_id, external_id, name, created_at)
    SELECT :account, 'ab-r' || ri, name, :'t0'::timestamptz - interval '400 days'
    FROM (VALUES (0, 'Дорого'), (1, 'Выбрал конкурента'), (2, 'Нет бюджета'), (3, 'Не дозвонились'),
                 (4, 'Неактуально'), (5, 'Дубль')) AS r (ri, name)
    RETURNING id, external_id)
INSERT INTO glr SELECT substr(external_id, 5)::int, id FROM ins;
COMMIT;

-- ----------------------------------------------------------------------------------------- deal plan
-- One row per deal (g = 0 .. deals-1): manager, creation time, the furthest open stage it will reach (m),
-- its outcome, the forward moves that bounce (bits), the gap between moves, price and loss reason.
\echo '== deal plan'
CREATE TEMP TABLE dp AS
SELECT g, g % :managers AS mi, c, m, outcome, bits,
       -- bounces among the m - 1 forward moves
       ((bits & ((1 << (m - 1)) - 1)) & 1) + (((bits & ((1 << (m - 1)) - 1)) >> 1) & 1)
         + (((bits & ((1 << (m - 1)) - 1)) >> 2) & 1) + (((bits & ((1 << (m - 1)) - 1)) >> 3) & 1) AS nb,
       gap, price, ri
FROM (
    SELECT g,
           date_trunc('second', :'t0'::timestamptz - interval '365 days'
                                + (g + 0.999 * random()) / :deals * interval '365 days') AS c,
           CASE WHEN u1 < 0.20 THEN 1 WHEN u1 < 0.45 THEN 2 WHEN u1 < 0.65 THEN 3 WHEN u1 < 0.80 THEN 4
                ELSE 5 END AS m,
           CASE WHEN u1 >= 0.80 THEN CASE WHEN u2 < 0.30 THEN 'won' WHEN u2 < 0.70 THEN 'lost' ELSE 'open' END
                ELSE CASE WHEN u2 < 0.65 THEN 'lost' ELSE 'open' END END AS outcome,
           (random() < 0.40)::int + 2 * (random() < 0.40)::int + 4 * (random() < 0.40)::int
             + 8 * (random() < 0.40)::int AS bits,
           interval '6 hours' + random() ^ 2 * interval '6 days' AS gap,
           (50 + floor(random() ^ 2 * 5000)::int8) * 100 AS price,
           floor(6 * random() ^ 1.6)::int AS ri
    FROM (SELECT g, random() AS u1, random() AS u2 FROM generate_series(0, :deals - 1) AS g) AS r
) AS p;

-- Every history step of every deal: j = 0 is the creation (stage 1); forward move k (stage k -> k + 1,
-- k = 1 .. m - 1) is one step, or three when it bounces (k -> k + 1 -> k -> k + 1); then the close (into 6 won
-- or 7 lost) unless open. Step j is at c + (j + 0.9 u) * gap, so the steps of a deal are in order; steps
-- after now are left out (they have not happened yet).
\echo '== history steps'
CREATE TEMP TABLE st AS
SELECT g, j, from_pos, to_pos, at
FROM (
    SELECT dp.g, s.j, s.from_pos, s.to_pos,
           CASE WHEN s.j = 0 THEN dp.c ELSE date_trunc('second', dp.c + (s.j + 0.9 * random()) * dp.gap) END AS at
    FROM dp
    CROSS JOIN LATERAL (
        SELECT 0 AS j, NULL::int AS from_pos, 1 AS to_pos
        UNION ALL
        SELECT k + 2 * ((((dp.bits & ((1 << (k - 1)) - 1))) & 1) + (((dp.bits & ((1 << (k - 1)) - 1)) >> 1) & 1)
                        + (((dp.bits & ((1 << (k - 1)) - 1)) >> 2) & 1)) + (sub - 1),
               CASE sub WHEN 2 THEN k + 1 ELSE k END, CASE sub WHEN 2 THEN k ELSE k + 1 END
        FROM generate_series(1, dp.m - 1) AS k,
             generate_series(1, CASE WHEN dp.bits & (1 << (k - 1)) <> 0 THEN 3 ELSE 1 END) AS sub
        UNION ALL
        SELECT dp.m + 2 * dp.nb, dp.m, CASE dp.outcome WHEN 'won' THEN 6 ELSE 7 END
        WHERE dp.outcome <> 'open'
    ) AS s
) AS x
WHERE at <= :'t0'::timestamptz;

-- each deal's final state: its last step
\echo '== final states'
CREATE TEMP TABLE df AS
SELECT DISTINCT ON (st.g) st.g, st.to_pos AS pos, st.at AS last_at
FROM st ORDER BY st.g, st.j DESC;
ALTER TABLE df ADD PRIMARY KEY (g);

-- ---------------------------------------------------------------------------------------------- deals
-- Deal ids are reserved from the sequence in one block: deal g is id base + g (ids follow creation times).
SELECT nextval('deals_id_seq') AS deal_base \gset
SELECT setval('deals_id_seq', :deal_base + :deals - 1) AS deal_last \gset

\echo '== deals'
INSERT INTO deals (account_id, id, name, price, pipeline_id, stage_id, status, manager_id, creator_manager_id,
                   loss_reason_id, created_at, closed_at, updated_at)
SELECT :account, :deal_base + dp.g, 'Сделка ' || (dp.g + 1) || ': поставка оборудования', dp.price, :pipeline_id,
       s.id, s.kind, m.id, m.id, CASE WHEN s.kind = 'lost' THEN r.id END, dp.c,
       CASE WHEN s.kind <> 'open' THEN df.last_at END, df.last_at
FROM dp
JOIN df USING (g)
JOIN gs s ON s.pos = df.pos
JOIN gm m ON m.mi = dp.mi
JOIN glr r ON r.ri = dp.ri
ORDER BY dp.g;

-- deal_history and deal_changes in time order, as the service appends them
\echo '== deal_history'
INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id,
                          loss_reason_id, price)
SELECT :account, :deal_base + st.g, fs.id, ts.id, ts.kind, st.at, m.id, CASE WHEN ts.kind = 'lost' THEN r.id END,
       dp.price
FROM st
JOIN dp USING (g)
LEFT JOIN gs fs ON fs.pos = st.from_pos
JOIN gs ts ON ts.pos = st.to_pos
JOIN gm m ON m.mi = dp.mi
JOIN glr r ON r.ri = dp.ri
ORDER BY st.at, st.g, st.j;

\echo '== deal_changes'
INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager, manager_id,
                          price, name)
SELECT :account, :deal_base + st.g, st.at, st.j = 0, ts.id, CASE WHEN ts.kind = 'lost' THEN r.id END, st.j = 0,
       CASE WHEN st.j = 0 THEN m.id END, CASE WHEN st.j = 0 THEN dp.price END,
       CASE WHEN st.j = 0 THEN 'Сделка ' || (dp.g + 1) || ': поставка оборудования' END
FROM st
JOIN dp USING (g)
JOIN gs ts ON ts.pos = st.to_pos
JOIN gm m ON m.mi = dp.mi
JOIN glr r ON r.ri = dp.ri
ORDER BY st.at, st.g, st.j;

-- ---------------------------------------------------------------------------------------------- tasks
-- Per task: a random deal, a creation time in the deal's life, a due time, and what became of it.
\echo '== task plan'
CREATE TEMP TABLE tp AS
SELECT g, manager_id, created_at, due_at, type,
       CASE WHEN fate = 'deleted'
            THEN date_trunc('second', created_at + u * (least(due_at, :'t0'::timestamptz) - created_at)) END
           AS deleted_at,
       CASE WHEN fate = 'on_time' AND created_at + u * (due_at - created_at) <= :'t0'::timestamptz
                THEN date_trunc('second', created_at + u * (due_at - created_at))
            WHEN fate = 'late' AND due_at + interval '1 hour' + u ^ 2 * interval '5 days' <= :'t0'::timestamptz
                THEN date_trunc('second', due_at + interval '1 hour' + u ^ 2 * interval '5 days') END AS completed_at
FROM (
    SELECT g, manager_id, created_at,
           date_trunc('second', created_at + interval '1 hour' + random() ^ 2 * interval '4 days') AS due_at,
           CASE WHEN ut < 0.5 THEN 'call' WHEN ut < 0.6 THEN 'meeting' WHEN ut < 0.9 THEN 'follow_up'
                ELSE 'other' END AS type,
           CASE WHEN uf < 0.03 THEN 'deleted' WHEN uf < 0.68 THEN 'on_time' WHEN uf < 0.95 THEN 'late'
                ELSE 'never' END AS fate,
           random() AS u
    FROM (
        SELECT x.g, m.id AS manager_id,
               date_trunc('second', dp.c + random() * (CASE WHEN s.kind = 'open' THEN :'t0'::timestamptz
                                                              ELSE df.last_at END - dp.c)) AS created_at,
               random() AS ut, random() AS uf
        FROM (SELECT floor(random() * :deals)::int AS g FROM generate_series(1, :tasks)) AS x
        JOIN dp ON dp.g = x.g
        JOIN df ON df.g = x.g
        JOIN gs s ON s.pos = df.pos
        JOIN gm m ON m.mi = dp.mi
    ) AS a
) AS b;

SELECT nextval('tasks_id_seq') AS task_base \gset
SELECT setval('tasks_id_seq', :task_base + :tasks - 1) AS task_last \gset

\echo '== tasks'
INSERT INTO tasks (account_id, id, deal_id, manager_id, type, text, due_at, completed_at, deleted_at, result,
                   created_at, updated_at, completion_set_at, deleted_set_at)
SELECT :account, :task_base + row_number() OVER (ORDER BY created_at, g) - 1, :deal_base + g, manager_id, type,
       CASE type WHEN 'call' THEN 'Позвонить клиенту' WHEN 'meeting' THEN 'Встреча с клиентом'
                 WHEN 'follow_up' THEN 'Напомнить о КП' ELSE 'Подготовить документы' END,
       due_at, completed_at, deleted_at, CASE WHEN completed_at IS NOT NULL THEN 'Сделано' END,
       created_at, greatest(created_at, completed_at, deleted_at), completed_at, deleted_at
FROM tp
ORDER BY created_at, g;

\echo '== task_history'
INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)
SELECT :account, t.id, t.created_at, true, true, t.manager_id, t.due_at
FROM tasks t
WHERE t.account_id = :account AND t.id BETWEEN :task_base AND :task_last
ORDER BY t.id;

-- ---------------------------------------------------------------------------------------------- calls
\echo '== calls'
INSERT INTO calls (account_id, manager_id, deal_id, direction, started_at, duration_s, answered, created_at)
SELECT :account, manager_id, deal_id, direction, started_at, duration_s, answered,
       least(started_at + make_interval(secs => duration_s), :'t0'::timestamptz)
FROM (
    SELECT manager_id, deal_id, started_at,
           CASE WHEN random() < 0.7 THEN 'out' ELSE 'in' END AS direction,
           CASE WHEN ua < 0.7 THEN 15 + floor(random() ^ 2 * 900)::int ELSE 0 END AS duration_s,
           ua < 0.7 AS answered
    FROM (
        SELECT CASE WHEN x.on_deal THEN m.id ELSE rm.id END AS manager_id,
               CASE WHEN x.on_deal THEN :deal_base + x.g END AS deal_id,
               date_trunc('second', CASE WHEN x.on_deal
                    THEN dp.c + x.u * (CASE WHEN s.kind = 'open' THEN :'t0'::timestamptz ELSE df.last_at END - dp.c)
                    ELSE :'t0'::timestamptz - x.u * interval '365 days' END) AS started_at,
               random() AS ua
        FROM (SELECT floor(random() * :deals)::int AS g, random() < 0.85 AS on_deal,
                     floor(random() * :managers)::int AS rmi, random() AS u
              FROM generate_series(1, :calls)) AS x
        JOIN dp ON dp.g = x.g
        JOIN df ON df.g = x.g
        JOIN gs s ON s.pos = df.pos
        JOIN gm m ON m.mi = dp.mi
        JOIN gm rm ON rm.mi = x.rmi
    ) AS a
) AS b
ORDER BY started_at;

-- ---------------------------------------------------------------------------------------------- checks
-- ------------------------------------------------------------------------------------------- analyze
\echo '== VACUUM (ANALYZE)'
RESET session_replication_role;
VACUUM (ANALYZE) managers;
VACUUM (ANALYZE) pipelines;
VACUUM (ANALYZE) stages;
VACUUM (ANALYZE) loss_reasons;
VACUUM (ANALYZE) deals;
VACUUM (ANALYZE) deal_history;
VACUUM (ANALYZE) deal_changes;
VACUUM (ANALYZE) tasks;
VACUUM (ANALYZE) task_history;
VACUUM (ANALYZE) calls;

-- The checks run on fresh statistics: planned on stale ones they took minutes (nested loops).
\echo '== checks (references, current columns against the last history row)'
SELECT
    (SELECT count(*) FROM deal_history h WHERE h.account_id = :account
       AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = h.account_id AND d.id = h.deal_id))
  + (SELECT count(*) FROM deal_changes c WHERE c.account_id = :account
       AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = c.account_id AND d.id = c.deal_id))
  + (SELECT count(*) FROM tasks t WHERE t.account_id = :account
       AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = t.account_id AND d.id = t.deal_id))
  + (SELECT count(*) FROM task_history th WHERE th.account_id = :account
       AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.account_id = th.account_id AND t.id = th.task_id))
  + (SELECT count(*) FROM calls c WHERE c.account_id = :account AND c.deal_id IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = c.account_id AND d.id = c.deal_id))
    AS dangling_references,
    (SELECT count(*) FROM deals d
     JOIN (SELECT DISTINCT ON (h.deal_id) h.deal_id, h.to_stage_id, h.status, h.manager_id, h.loss_reason_id, h.at
           FROM deal_history h WHERE h.account_id = :account ORDER BY h.deal_id, h.at DESC, h.id DESC) l
       ON l.deal_id = d.id
     WHERE d.account_id = :account
       AND (d.stage_id <> l.to_stage_id OR d.status <> l.status OR d.manager_id IS DISTINCT FROM l.manager_id
            OR d.loss_reason_id IS DISTINCT FROM l.loss_reason_id OR d.updated_at <> l.at
            OR d.closed_at IS DISTINCT FROM CASE WHEN l.status <> 'open' THEN l.at END))
    AS deals_not_matching_history \gset
\echo dangling references: :dangling_references, deals whose columns differ from their last history row: :deals_not_matching_history
SELECT :dangling_references = 0 AND :deals_not_matching_history = 0 AS checks_ok \gset
\if :checks_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'gen_analytics.sql: the generated data is inconsistent'; END $$;
\endif

-- The analytics rollup (migration 0013): the triggers that keep it are off in this session, so it is built here
-- in one pass, as the migration builds it for existing accounts.
\echo '== analytics rollup'
SELECT salesops_kpi_rebuild(:account);
-- (VACUUM sets the visibility map, as autovacuum does on a live database: the reports read the rollup's
-- covering indexes alone only on all-visible pages)
VACUUM (ANALYZE) kpi_contrib;
VACUUM (ANALYZE) kpi_roll;
\timing off

-- ---------------------------------------------------------------------------------------------- summary
\echo '== the account'
SELECT :pipeline_id AS pipeline_id, :deal_base AS first_deal_id, :deal_last AS last_deal_id;
SELECT what, n FROM (
    SELECT 1 AS k, 'managers (role manager)' AS what, count(*) AS n FROM managers
    WHERE account_id = :account AND role = 'manager'
    UNION ALL SELECT 2, 'deals', count(*) FROM deals WHERE account_id = :account
    UNION ALL SELECT 3, 'deal_history', count(*) FROM deal_history WHERE account_id = :account
    UNION ALL SELECT 4, 'deal_history: stage moves (transitions)', count(*) FROM deal_history
    WHERE account_id = :account AND from_stage_id IS NOT NULL
    UNION ALL SELECT 5, 'deal_changes', count(*) FROM deal_changes WHERE account_id = :account
    UNION ALL SELECT 6, 'tasks', count(*) FROM tasks WHERE account_id = :account
    UNION ALL SELECT 7, 'task_history', count(*) FROM task_history WHERE account_id = :account
    UNION ALL SELECT 8, 'calls', count(*) FROM calls WHERE account_id = :account
    UNION ALL SELECT 9, 'kpi_contrib (rollup contributions)', count(*) FROM kpi_contrib WHERE account_id = :account
    UNION ALL SELECT 10, 'kpi_roll (rollup rows)', count(*) FROM kpi_roll WHERE account_id = :account) AS c
ORDER BY k;
\echo '== deals by status, and the share that reached each open stage'
SELECT status, count(*) AS deals, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM deals WHERE account_id = :account GROUP BY status ORDER BY status;
SELECT s.position, s.name, count(DISTINCT h.deal_id) AS deals_reached,
       round(100.0 * count(DISTINCT h.deal_id) / :deals, 1) AS pct
FROM deal_history h JOIN stages s ON s.account_id = h.account_id AND s.id = h.to_stage_id
WHERE h.account_id = :account AND s.pipeline_id = :pipeline_id
GROUP BY s.position, s.name ORDER BY s.position;
\echo '== tasks by fate (as of now)'
SELECT CASE WHEN deleted_at IS NOT NULL THEN 'deleted'
            WHEN completed_at IS NULL AND due_at < now() THEN 'open, past due'
            WHEN completed_at IS NULL THEN 'open'
            WHEN completed_at <= due_at THEN 'completed on time'
            ELSE 'completed late' END AS fate,
       count(*) AS tasks, round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct
FROM tasks WHERE account_id = :account GROUP BY 1 ORDER BY 1;
\echo '== calls'
SELECT direction, answered, count(*) AS calls, round(avg(duration_s)) AS avg_duration_s,
       count(deal_id) AS on_a_deal, min(started_at)::date AS first, max(started_at)::date AS last
FROM calls WHERE account_id = :account GROUP BY direction, answered ORDER BY direction, answered;
SELECT round(extract(epoch FROM clock_timestamp() - :'gen_started'::timestamptz)::numeric, 1) AS generation_s \gset
\echo gen_analytics: done in :generation_s s

-- Bulk import, faster. Each event's inbox row is inserted once, at the end, with its outcome: 0004 inserted
-- every row as 'pending' first and then updated all of them, which rewrote every row and every index entry
-- (state is indexed): 39 of the 195 s of a 1,000,000-event import. And the places in apply order, and the ids
-- of the new deals and tasks, are computed into new tables instead of UPDATEs of (nearly) every row of ev
-- (about 60 s there for the places). Everything else is as in 0004 (migrations are immutable, so the whole
-- function is given again).

-- ev_next, built from ev by the apply, takes its place, with ev's indexes and fresh statistics.
CREATE FUNCTION salesops_import_swap_ev() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE ev;
    ALTER TABLE ev_next RENAME TO ev;
    CREATE INDEX ON ev (deal_ext, type);
    CREATE INDEX ON ev (task_ext, type);
    ANALYZE ev;
END
$$;

CREATE OR REPLACE FUNCTION salesops_import_apply(p_account bigint, OUT accepted bigint, OUT duplicates bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
    v_ord bigint;
BEGIN
    SELECT count(*) INTO v_total FROM import_events;

    -- 1. The first line of each event id that is new to the account; the rest are duplicates. (The caller
    --    holds the account's ingest lock: no other writer adds event ids meanwhile. The inbox rows are
    --    inserted once, in step 12, with their outcome.)
    CREATE TEMP TABLE ev ON COMMIT DROP AS
    WITH firsts AS (
        SELECT DISTINCT ON (event_id) seq, event_id, type, at, creation, data FROM import_events
        ORDER BY event_id, seq
    )
    SELECT f.seq, f.event_id, f.type, f.at, f.creation, f.data,
           row_number() OVER (ORDER BY f.at, NOT f.creation, f.seq) AS ord,
           row_number() OVER (ORDER BY f.at, NOT f.creation, f.seq) AS eff,
           f.data ->> 'deal' AS deal_ext, f.data ->> 'task' AS task_ext,
           NULL::bigint AS deal_id, NULL::bigint AS task_id, NULL::bigint AS pipeline_id,
           NULL::bigint AS stage_id, NULL::text AS stage_kind, NULL::text AS outcome
    FROM firsts f
    WHERE NOT EXISTS (SELECT 1 FROM inbox i
                      WHERE i.account_id = p_account AND i.event_id = f.event_id AND i.event_id IS NOT NULL);
    SELECT count(*) INTO accepted FROM ev;
    duplicates := v_total - accepted;
    CREATE INDEX ON ev (deal_ext, type);
    CREATE INDEX ON ev (task_ext, type);
    ANALYZE ev;

    -- 2. What exists before, what the file creates, what waits, and when each event applies.
    UPDATE ev SET deal_id = d.id FROM deals d WHERE d.account_id = p_account AND d.external_id = ev.deal_ext;
    UPDATE ev SET task_id = t.id FROM tasks t WHERE t.account_id = p_account AND t.external_id = ev.task_ext;
    -- a creation of a deal that exists (or that an earlier creation made) is ignored
    UPDATE ev SET outcome = 'ignored'
    FROM (SELECT seq, row_number() OVER (PARTITION BY deal_ext ORDER BY ord) AS n FROM ev
          WHERE type = 'deal.created') x
    WHERE ev.seq = x.seq AND (ev.deal_id IS NOT NULL OR x.n > 1);
    -- events about a deal that neither exists nor is created wait; the others apply once it is created
    UPDATE ev SET outcome = 'waiting:deal'
    WHERE type NOT IN ('deal.created', 'manager.upserted', 'task.updated', 'task.completed', 'task.deleted')
      AND deal_ext IS NOT NULL AND deal_id IS NULL
      AND deal_ext NOT IN (SELECT c.deal_ext FROM ev c WHERE c.type = 'deal.created' AND c.outcome IS NULL);
    -- an event about a deal the file creates applies after the creation (a new table rather than an UPDATE
    -- of most rows; at most one creation of a deal is not ignored)
    CREATE TEMP TABLE ev_next ON COMMIT DROP AS
    SELECT e.seq, e.event_id, e.type, e.at, e.creation, e.data, e.ord,
           CASE WHEN c.ord IS NOT NULL AND e.deal_id IS NULL AND e.outcome IS NULL AND e.type <> 'deal.created'
                THEN greatest(e.ord, c.ord) ELSE e.eff END AS eff,
           e.deal_ext, e.task_ext, e.deal_id, e.task_id, e.pipeline_id, e.stage_id, e.stage_kind, e.outcome
    FROM ev e LEFT JOIN ev c ON c.type = 'deal.created' AND c.outcome IS NULL AND c.deal_ext = e.deal_ext;
    PERFORM salesops_import_swap_ev();
    -- tasks: the first creation (in apply order) of a new task on a deal that will exist creates it
    UPDATE ev SET outcome = 'ignored'
    FROM (SELECT seq, row_number() OVER (PARTITION BY task_ext ORDER BY eff, eff > ord, ord) AS n FROM ev
          WHERE type = 'task.created' AND outcome IS NULL) x
    WHERE ev.seq = x.seq AND (ev.task_id IS NOT NULL OR x.n > 1);
    UPDATE ev SET outcome = 'waiting:task'
    WHERE type IN ('task.updated', 'task.completed', 'task.deleted') AND task_id IS NULL
      AND task_ext NOT IN (SELECT c.task_ext FROM ev c WHERE c.type = 'task.created' AND c.outcome IS NULL);
    -- the place in apply order: right after the creation an event waited for (woken events in their order);
    -- first for deals (pos1), then the events about a task the file creates after its creation (pos2);
    -- eff = ord
    CREATE TEMP TABLE ev_next ON COMMIT DROP AS
    WITH by_deal AS (
        SELECT e.*, row_number() OVER (ORDER BY e.eff, e.eff > e.ord, e.ord) AS pos1 FROM ev e
    ), created AS (
        SELECT task_ext, pos1 FROM by_deal WHERE type = 'task.created' AND outcome IS NULL
    ), by_task AS (
        SELECT f.*, CASE WHEN c.pos1 IS NOT NULL AND f.task_id IS NULL AND f.outcome IS NULL
                              AND f.type IN ('task.updated', 'task.completed', 'task.deleted')
                         THEN greatest(f.pos1, c.pos1) ELSE f.pos1 END AS pos2
        FROM by_deal f LEFT JOIN created c ON c.task_ext = f.task_ext
    )
    SELECT seq, event_id, type, at, creation, data,
           row_number() OVER w AS ord, row_number() OVER w AS eff,
           deal_ext, task_ext, deal_id, task_id, pipeline_id, stage_id, stage_kind, outcome
    FROM by_task WINDOW w AS (ORDER BY pos2, pos2 > pos1, pos1);
    PERFORM salesops_import_swap_ev();

    -- 3. Managers: every one named becomes at least a placeholder when it is first named in apply order;
    --    manager.upserted sets the last name given, and the last role and active given.
    INSERT INTO managers (account_id, external_id, name, role, active, distribution_enabled, weight, needs_setup,
                          created_at, updated_at)
    SELECT p_account, ext, ext, 'manager', true, false, 1, true, at, at
    FROM (SELECT DISTINCT ON (data ->> 'manager') data ->> 'manager' AS ext, at FROM ev
          WHERE data ->> 'manager' IS NOT NULL AND outcome IS NULL ORDER BY data ->> 'manager', eff, ord) m
    ON CONFLICT (account_id, external_id) DO NOTHING;
    UPDATE managers m
    SET name = u.name, role = coalesce(u.role, m.role), active = coalesce(u.active, m.active),
        needs_setup = false, updated_at = u.at
    FROM (SELECT DISTINCT ON (ext) ext, name, at, role, active
          FROM (SELECT e.data ->> 'manager' AS ext, e.data ->> 'name' AS name, e.at, e.ord,
                       (array_agg(e.data ->> 'role') FILTER (WHERE e.data ? 'role') OVER w)[
                           count(*) FILTER (WHERE e.data ? 'role') OVER w] AS role,
                       (array_agg((e.data ->> 'active')::boolean) FILTER (WHERE e.data ? 'active') OVER w)[
                           count(*) FILTER (WHERE e.data ? 'active') OVER w] AS active
                FROM ev e WHERE e.type = 'manager.upserted'
                WINDOW w AS (PARTITION BY e.data ->> 'manager' ORDER BY e.ord
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) y
          ORDER BY ext, ord DESC) u
    WHERE m.account_id = p_account AND m.external_id = u.ext;

    -- 4. Pipelines named and unknown: placeholders with a won and a lost stage.
    WITH named AS (
        SELECT DISTINCT ON (data ->> 'pipeline') data ->> 'pipeline' AS ext, at, eff, ord FROM ev
        WHERE data ->> 'pipeline' IS NOT NULL AND outcome IS NULL ORDER BY data ->> 'pipeline', eff, ord
    ), created AS (
        INSERT INTO pipelines (account_id, name, external_id, needs_setup, created_at)
        SELECT p_account, ext, ext, true, at FROM named ORDER BY eff, ord
        ON CONFLICT (account_id, external_id) DO NOTHING RETURNING id
    )
    INSERT INTO stages (account_id, pipeline_id, name, kind, position)
    SELECT p_account, id, s.name, s.kind, s.position FROM created
    CROSS JOIN (VALUES ('Успешно реализовано', 'won', 1), ('Закрыто и не реализовано', 'lost', 2)) s (name, kind, position);

    -- 5. The pipeline a stage is looked up in: the event's own, else the deal's at that time, which is the
    --    pipeline of the latest (by time) stage change applied before it. A deal whose events name a single
    --    pipeline (the usual case) is settled at once; the others are walked in apply order.
    UPDATE ev SET pipeline_id = p.id
    FROM pipelines p WHERE p.account_id = p_account AND p.external_id = ev.data ->> 'pipeline';
    WITH named AS (
        SELECT deal_ext, pipeline_id FROM ev
        WHERE type IN ('deal.created', 'deal.stage_changed') AND outcome IS NULL AND pipeline_id IS NOT NULL
        UNION ALL
        SELECT d.external_id, d.pipeline_id FROM deals d
        WHERE d.account_id = p_account AND d.external_id IN (SELECT deal_ext FROM ev)
    ), single AS (
        SELECT deal_ext, min(pipeline_id) AS pipeline_id FROM named GROUP BY deal_ext
        HAVING count(DISTINCT pipeline_id) = 1
    )
    UPDATE ev SET pipeline_id = s.pipeline_id FROM single s
    WHERE ev.deal_ext = s.deal_ext AND ev.type = 'deal.stage_changed' AND ev.outcome IS NULL
      AND ev.pipeline_id IS NULL;
    FOR v_ord IN SELECT ord FROM ev WHERE type = 'deal.stage_changed' AND outcome IS NULL AND pipeline_id IS NULL
                 ORDER BY ord LOOP
        UPDATE ev SET pipeline_id = (
            SELECT x.pipeline_id FROM (
                SELECT r.at, r.creation, 1 AS src, r.seq AS n, r.pipeline_id FROM ev r
                WHERE r.deal_ext = ev.deal_ext AND r.ord < ev.ord AND r.outcome IS NULL
                  AND r.type IN ('deal.created', 'deal.stage_changed') AND r.pipeline_id IS NOT NULL
                UNION ALL
                SELECT c.at, c.creation, 0, c.id, st.pipeline_id FROM deal_changes c
                JOIN stages st ON st.account_id = c.account_id AND st.id = c.stage_id
                WHERE c.account_id = p_account AND c.deal_id = ev.deal_id) x
            ORDER BY x.at DESC, x.creation, x.src DESC, x.n DESC LIMIT 1)
        WHERE ev.ord = v_ord;
    END LOOP;

    -- 6. Stages: "won"/"lost" (and 142/143 in pipelines from amoCRM) by kind; others by external id, unknown
    --    ones appended after the last open stage in the order they are first named.
    UPDATE ev SET stage_kind = CASE WHEN data ->> 'stage' IN ('won', 'lost') THEN data ->> 'stage'
                                    WHEN data ->> 'stage' = '142' THEN 'won' ELSE 'lost' END
    FROM pipelines p
    WHERE ev.type IN ('deal.created', 'deal.stage_changed') AND ev.outcome IS NULL
      AND p.account_id = p_account AND p.id = ev.pipeline_id
      AND (ev.data ->> 'stage' IN ('won', 'lost') OR (p.crm = 'amocrm' AND ev.data ->> 'stage' IN ('142', '143')));
    UPDATE ev SET stage_id = (SELECT x.id FROM stages x WHERE x.account_id = p_account
                              AND x.pipeline_id = ev.pipeline_id AND x.kind = ev.stage_kind
                              ORDER BY x.position, x.id LIMIT 1)
    WHERE stage_kind IS NOT NULL;
    -- a deal.created without a stage: the first open stage; in a pipeline without one (and none named before
    -- it), a placeholder stage "new"
    UPDATE ev SET data = data || '{"stage": "new"}'::jsonb
    WHERE type = 'deal.created' AND outcome IS NULL AND NOT data ? 'stage'
      AND NOT EXISTS (SELECT 1 FROM stages s WHERE s.account_id = p_account AND s.pipeline_id = ev.pipeline_id
                      AND s.kind = 'open')
      AND NOT EXISTS (SELECT 1 FROM ev o WHERE o.pipeline_id = ev.pipeline_id AND (o.eff, o.ord) < (ev.eff, ev.ord)
                      AND o.type IN ('deal.created', 'deal.stage_changed') AND o.outcome IS NULL
                      AND o.data ->> 'stage' IS NOT NULL AND o.stage_kind IS NULL);
    UPDATE ev SET stage_id = s.id, stage_kind = s.kind
    FROM stages s
    WHERE ev.type IN ('deal.created', 'deal.stage_changed') AND ev.outcome IS NULL AND ev.stage_kind IS NULL
      AND s.account_id = p_account AND s.pipeline_id = ev.pipeline_id AND s.external_id = ev.data ->> 'stage';
    WITH unknown AS (
        SELECT DISTINCT ON (pipeline_id, data ->> 'stage') pipeline_id, data ->> 'stage' AS ext, eff, ord
        FROM ev WHERE type IN ('deal.created', 'deal.stage_changed') AND outcome IS NULL AND stage_id IS NULL
          AND stage_kind IS NULL AND pipeline_id IS NOT NULL AND data ->> 'stage' IS NOT NULL
        ORDER BY pipeline_id, data ->> 'stage', eff, ord
    ), ranked AS (
        SELECT u.*, row_number() OVER (PARTITION BY pipeline_id ORDER BY eff, ord) AS n,
               count(*) OVER (PARTITION BY pipeline_id) AS added
        FROM unknown u
    ), shifted AS (
        UPDATE stages s SET position = s.position + r.added
        FROM (SELECT DISTINCT pipeline_id, added FROM ranked) r
        WHERE s.account_id = p_account AND s.pipeline_id = r.pipeline_id AND s.kind <> 'open'
    )
    INSERT INTO stages (account_id, pipeline_id, external_id, name, kind, position, needs_setup)
    SELECT p_account, r.pipeline_id, r.ext, r.ext, 'open',
           coalesce((SELECT max(position) FROM stages s WHERE s.account_id = p_account
                     AND s.pipeline_id = r.pipeline_id AND s.kind = 'open'), 0) + r.n, true
    FROM ranked r ORDER BY r.pipeline_id, r.n;
    UPDATE ev SET stage_id = s.id, stage_kind = s.kind
    FROM stages s
    WHERE ev.type IN ('deal.created', 'deal.stage_changed') AND ev.outcome IS NULL AND ev.stage_id IS NULL
      AND s.account_id = p_account AND s.pipeline_id = ev.pipeline_id AND s.external_id = ev.data ->> 'stage';
    UPDATE ev SET stage_id = s.id, stage_kind = s.kind
    FROM stages s
    WHERE ev.type = 'deal.created' AND ev.outcome IS NULL AND ev.stage_id IS NULL
      AND s.id = (SELECT x.id FROM stages x WHERE x.account_id = p_account AND x.pipeline_id = ev.pipeline_id
                  AND x.kind = 'open' ORDER BY x.position, x.id LIMIT 1);

    -- 7. Loss reasons named with a move into lost: placeholders.
    INSERT INTO loss_reasons (account_id, external_id, name, needs_setup, created_at)
    SELECT DISTINCT ON (data ->> 'loss_reason') p_account, data ->> 'loss_reason', data ->> 'loss_reason', true, at
    FROM ev WHERE type = 'deal.stage_changed' AND stage_kind = 'lost' AND data ->> 'loss_reason' IS NOT NULL
      AND outcome IS NULL
    ORDER BY data ->> 'loss_reason', eff, ord
    ON CONFLICT (account_id, external_id) DO NOTHING;

    -- 8. The new deals, and their creation in the change log.
    INSERT INTO deals (account_id, external_id, name, price, pipeline_id, stage_id, status, manager_id,
                       creator_manager_id, created_at, closed_at, updated_at)
    SELECT p_account, e.deal_ext, e.data ->> 'name', (e.data ->> 'price')::bigint, e.pipeline_id,
           e.stage_id, e.stage_kind, m.id, m.id, e.at, CASE WHEN e.stage_kind <> 'open' THEN e.at END, e.at
    FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    WHERE e.type = 'deal.created' AND e.outcome IS NULL ORDER BY e.eff, e.ord;
    -- the events that apply get their deal's id (a deal that existed before has it already)
    CREATE TEMP TABLE ev_next ON COMMIT DROP AS
    SELECT e.seq, e.event_id, e.type, e.at, e.creation, e.data, e.ord, e.eff, e.deal_ext, e.task_ext,
           CASE WHEN e.outcome IS NULL AND d.id IS NOT NULL THEN d.id ELSE e.deal_id END AS deal_id,
           e.task_id, e.pipeline_id, e.stage_id, e.stage_kind, e.outcome
    FROM ev e LEFT JOIN deals d ON d.account_id = p_account AND d.external_id = e.deal_ext;
    PERFORM salesops_import_swap_ev();

    -- 9. Every change of a known deal goes into its change log; deletes and restores keep the latest.
    INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager,
                              manager_id, price, name)
    SELECT p_account, e.deal_id, e.at, e.type = 'deal.created', e.stage_id,
           CASE WHEN e.stage_kind = 'lost' THEN lr.id END,
           e.type IN ('deal.created', 'deal.responsible_changed'), m.id,
           CASE WHEN e.type IN ('deal.created', 'deal.updated') THEN (e.data ->> 'price')::bigint END,
           CASE WHEN e.type IN ('deal.created', 'deal.updated') THEN e.data ->> 'name' END
    FROM ev e
    LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    LEFT JOIN loss_reasons lr ON lr.account_id = p_account AND lr.external_id = e.data ->> 'loss_reason'
    WHERE e.deal_id IS NOT NULL AND e.outcome IS NULL
      AND e.type IN ('deal.created', 'deal.updated', 'deal.stage_changed', 'deal.responsible_changed')
      AND NOT (e.type = 'deal.updated' AND e.data ->> 'name' IS NULL AND e.data ->> 'price' IS NULL)
    ORDER BY e.eff, e.ord;
    UPDATE deals d SET deleted_at = CASE WHEN x.type = 'deal.deleted' THEN x.at END, deleted_set_at = x.at
    FROM (SELECT DISTINCT ON (deal_id) deal_id, type, at FROM ev
          WHERE deal_id IS NOT NULL AND outcome IS NULL AND type IN ('deal.deleted', 'deal.restored')
          ORDER BY deal_id, at DESC, eff DESC, ord DESC) x
    WHERE d.account_id = p_account AND d.id = x.deal_id AND (d.deleted_set_at IS NULL OR d.deleted_set_at <= x.at);
    PERFORM salesops_rebuild_deals(p_account, array_agg(DISTINCT deal_id), '-infinity')
    FROM ev WHERE deal_id IS NOT NULL AND type LIKE 'deal.%' AND outcome IS NULL;

    ANALYZE ev;
    -- 10. Tasks: responsible the given manager, or the deal's when the task was applied (the last change of
    --     the responsible, by time, among the deal's events applied before it; else the deal's before the import).
    CREATE TEMP TABLE task_owner ON COMMIT DROP AS
    SELECT DISTINCT ON (e.seq) e.seq, r.data ->> 'manager' AS manager_ext
    FROM ev e JOIN ev r ON r.deal_ext = e.deal_ext AND r.ord < e.ord AND r.outcome IS NULL
                        AND r.type IN ('deal.created', 'deal.responsible_changed')
    WHERE e.type = 'task.created' AND e.outcome IS NULL AND e.data ->> 'manager' IS NULL
    ORDER BY e.seq, r.at DESC, r.creation, r.seq DESC;
    WITH created AS (
        INSERT INTO tasks (account_id, external_id, deal_id, manager_id, type, text, due_at, created_at, updated_at)
        SELECT p_account, e.task_ext, e.deal_id,
               CASE WHEN e.data ->> 'manager' IS NOT NULL THEN m.id
                    WHEN o.seq IS NOT NULL THEN om.id
                    ELSE (SELECT d.manager_id FROM deals d WHERE d.account_id = p_account AND d.id = e.deal_id) END,
               e.data ->> 'type', coalesce(e.data ->> 'text', ''), (e.data ->> 'due_at')::timestamptz, e.at, e.at
        FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
        LEFT JOIN task_owner o ON o.seq = e.seq
        LEFT JOIN managers om ON om.account_id = p_account AND om.external_id = o.manager_ext
        WHERE e.type = 'task.created' AND e.outcome IS NULL ORDER BY e.eff, e.ord
        RETURNING id, manager_id, due_at, created_at
    )
    INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)
    SELECT p_account, id, created_at, true, true, manager_id, due_at FROM created;
    -- the events that apply get their task's id (a task that existed before has it already)
    CREATE TEMP TABLE ev_next ON COMMIT DROP AS
    SELECT e.seq, e.event_id, e.type, e.at, e.creation, e.data, e.ord, e.eff, e.deal_ext, e.task_ext, e.deal_id,
           CASE WHEN e.outcome IS NULL AND t.id IS NOT NULL THEN t.id ELSE e.task_id END AS task_id,
           e.pipeline_id, e.stage_id, e.stage_kind, e.outcome
    FROM ev e LEFT JOIN tasks t ON t.account_id = p_account AND t.external_id = e.task_ext;
    PERFORM salesops_import_swap_ev();
    INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)
    SELECT p_account, e.task_id, e.at, false, e.data ? 'manager', m.id, (e.data ->> 'due_at')::timestamptz
    FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    WHERE e.type = 'task.updated' AND e.outcome IS NULL AND e.task_id IS NOT NULL
      AND (e.data ? 'manager' OR e.data ? 'due_at')
    ORDER BY e.eff, e.ord;
    -- text, completion and deletion: each the latest by time (ties: the later applied), if not older than
    -- what the task had
    UPDATE tasks t SET text = coalesce(x.data ->> 'text', ''), text_set_at = x.at, updated_at = greatest(t.updated_at, x.at)
    FROM (SELECT DISTINCT ON (task_id) task_id, data, at FROM ev
          WHERE type = 'task.updated' AND outcome IS NULL AND task_id IS NOT NULL AND data ? 'text'
          ORDER BY task_id, at DESC, eff DESC, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id AND (t.text_set_at IS NULL OR t.text_set_at <= x.at);
    UPDATE tasks t SET completed_at = x.at, completion_set_at = x.at, updated_at = greatest(t.updated_at, x.at),
                       result = coalesce(x.result, t.result)
    FROM (SELECT DISTINCT ON (task_id) task_id, at, result
          FROM (SELECT task_id, at, eff, ord,
                       (array_agg(data ->> 'result') FILTER (WHERE data ->> 'result' IS NOT NULL) OVER w)[
                           count(*) FILTER (WHERE data ->> 'result' IS NOT NULL) OVER w] AS result
                FROM ev WHERE type = 'task.completed' AND outcome IS NULL AND task_id IS NOT NULL
                WINDOW w AS (PARTITION BY task_id ORDER BY at, eff, ord
                             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)) c
          ORDER BY task_id, at DESC, eff DESC, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id
      AND (t.completion_set_at IS NULL OR t.completion_set_at <= x.at);
    UPDATE tasks t SET deleted_at = x.at, deleted_set_at = x.at, updated_at = greatest(t.updated_at, x.at)
    FROM (SELECT DISTINCT ON (task_id) task_id, at FROM ev
          WHERE type = 'task.deleted' AND outcome IS NULL AND task_id IS NOT NULL
          ORDER BY task_id, at DESC, eff DESC, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id AND (t.deleted_set_at IS NULL OR t.deleted_set_at <= x.at);
    PERFORM salesops_rebuild_tasks(p_account, array_agg(DISTINCT task_id))
    FROM ev WHERE task_id IS NOT NULL AND type LIKE 'task.%' AND outcome IS NULL;

    -- 11. Calls and notes by external id: the first applied creates (its time is created_at); later ones
    --     update the call's fields, or only the note's text.
    INSERT INTO calls (account_id, external_id, manager_id, deal_id, direction, started_at, duration_s, answered,
                       created_at)
    SELECT p_account, x.ext, m.id, x.deal_id, x.data ->> 'direction', x.at, (x.data ->> 'duration_s')::integer,
           (x.data ->> 'answered')::boolean, x.first_at
    FROM (SELECT e.data ->> 'call' AS ext, e.deal_id, e.data, e.at,
                 first_value(e.at) OVER (PARTITION BY e.data ->> 'call' ORDER BY e.eff, e.ord) AS first_at,
                 row_number() OVER (PARTITION BY e.data ->> 'call' ORDER BY e.eff DESC, e.ord DESC) AS latest
          FROM ev e WHERE e.type = 'call.logged' AND e.outcome IS NULL) x
    JOIN managers m ON m.account_id = p_account AND m.external_id = x.data ->> 'manager'
    WHERE x.latest = 1
    ON CONFLICT (account_id, external_id) DO UPDATE SET manager_id = EXCLUDED.manager_id,
        deal_id = EXCLUDED.deal_id, direction = EXCLUDED.direction, started_at = EXCLUDED.started_at,
        duration_s = EXCLUDED.duration_s, answered = EXCLUDED.answered;
    INSERT INTO notes (account_id, external_id, deal_id, text, manager_id, created_at)
    SELECT p_account, x.ext, x.deal_id, x.last_text, m.id, x.at
    FROM (SELECT e.data ->> 'note' AS ext, e.deal_id, e.data, e.at,
                 first_value(e.data ->> 'text') OVER (PARTITION BY e.data ->> 'note' ORDER BY e.eff DESC, e.ord DESC)
                     AS last_text,
                 row_number() OVER (PARTITION BY e.data ->> 'note' ORDER BY e.eff, e.ord) AS first
          FROM ev e WHERE e.type = 'note.added' AND e.outcome IS NULL) x
    LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = x.data ->> 'manager'
    WHERE x.first = 1
    ON CONFLICT (account_id, external_id) DO UPDATE SET text = EXCLUDED.text;

    -- 12. The inbox rows, once, with their outcome: applied, ignored, or waiting for the deal or task that has
    --     not come; in the file's order.
    INSERT INTO inbox (account_id, source, event_id, event_type, event_at, body, state, waits_for_kind,
                       waits_for_ext, applied_at)
    SELECT p_account, 'import', x.event_id, x.type, x.at, l.body,
           CASE WHEN x.outcome IS NULL THEN 'applied' WHEN x.outcome = 'ignored' THEN 'ignored' ELSE 'waiting' END,
           CASE x.outcome WHEN 'waiting:deal' THEN 'deal' WHEN 'waiting:task' THEN 'task' END,
           CASE x.outcome WHEN 'waiting:deal' THEN x.deal_ext WHEN 'waiting:task' THEN x.task_ext END,
           CASE WHEN x.outcome IS NULL THEN now() END
    FROM ev x JOIN import_events l ON l.seq = x.seq
    ORDER BY x.seq;
END
$$;

-- Bulk import: the set-based twin of per-event apply. `salesops import` validates each line in C (the same
-- parser as POST /events), COPYs the good ones into the session's temp table import_events, then calls
-- salesops_import_apply(), which stores them in the inbox and applies them all at once with the same rules
-- and the same derivation of current state and history (salesops_rebuild_deals / _tasks). Never distributes,
-- never writes to the CRM.
--
-- import_events (created by the caller, ON COMMIT DROP):
--   seq bigint, event_id text, type text, at timestamptz, creation boolean, data jsonb, body text

CREATE FUNCTION salesops_import_apply(p_account bigint, OUT accepted bigint, OUT duplicates bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
BEGIN
    SELECT count(*) INTO v_total FROM import_events;

    -- 1. Store: the first line of each event id that is new to the account; the rest are duplicates.
    CREATE TEMP TABLE ev ON COMMIT DROP AS
    WITH firsts AS (
        SELECT DISTINCT ON (event_id) * FROM import_events ORDER BY event_id, seq
    ), stored AS (
        INSERT INTO inbox (account_id, source, event_id, event_type, event_at, body, state)
        SELECT p_account, 'import', f.event_id, f.type, f.at, f.body, 'pending' FROM firsts f ORDER BY f.seq
        ON CONFLICT DO NOTHING
        RETURNING id, event_id
    )
    SELECT f.seq, f.event_id, f.type, f.at, f.creation, f.data, s.id AS inbox_id,
           row_number() OVER (ORDER BY f.at, NOT f.creation, f.seq) AS ord,
           NULL::bigint AS deal_id, NULL::bigint AS task_id, NULL::bigint AS pipeline_id,
           NULL::bigint AS stage_id, NULL::text AS stage_kind, NULL::text AS outcome
    FROM firsts f JOIN stored s USING (event_id);
    SELECT count(*) INTO accepted FROM ev;
    duplicates := v_total - accepted;
    CREATE INDEX ON ev (ord);
    CREATE INDEX ON ev ((data ->> 'deal'), type);
    CREATE INDEX ON ev ((data ->> 'task'), type);
    CREATE INDEX ON ev (task_id, type);
    ANALYZE ev;

    -- What per-event apply would do first: a creation of something that exists is ignored (before it names
    -- anything); an event about a deal or task that will not exist after the import waits (likewise).
    UPDATE ev SET outcome = 'ignored'
    WHERE type = 'deal.created' AND (
        EXISTS (SELECT 1 FROM deals d WHERE d.account_id = p_account AND d.external_id = ev.data ->> 'deal')
        OR EXISTS (SELECT 1 FROM ev o WHERE o.type = 'deal.created' AND o.data ->> 'deal' = ev.data ->> 'deal'
                   AND o.ord < ev.ord));
    UPDATE ev SET outcome = 'waiting:deal'
    WHERE type NOT IN ('deal.created', 'manager.upserted', 'task.updated', 'task.completed', 'task.deleted')
      AND data ->> 'deal' IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = p_account AND d.external_id = ev.data ->> 'deal')
      AND NOT EXISTS (SELECT 1 FROM ev o WHERE o.type = 'deal.created' AND o.outcome IS NULL
                      AND o.data ->> 'deal' = ev.data ->> 'deal');
    UPDATE ev SET outcome = 'ignored'
    WHERE type = 'task.created' AND outcome IS NULL AND (
        EXISTS (SELECT 1 FROM tasks t JOIN deals d ON d.account_id = t.account_id AND d.id = t.deal_id
                AND d.deleted_at IS NULL WHERE t.account_id = p_account AND t.external_id = ev.data ->> 'task')
        OR EXISTS (SELECT 1 FROM ev o WHERE o.type = 'task.created' AND o.outcome IS NULL
                   AND o.data ->> 'task' = ev.data ->> 'task' AND o.ord < ev.ord));
    UPDATE ev SET outcome = 'waiting:task'
    WHERE type IN ('task.updated', 'task.completed', 'task.deleted')
      AND NOT EXISTS (SELECT 1 FROM tasks t JOIN deals d ON d.account_id = t.account_id AND d.id = t.deal_id
                      AND d.deleted_at IS NULL WHERE t.account_id = p_account AND t.external_id = ev.data ->> 'task')
      AND NOT EXISTS (SELECT 1 FROM ev o WHERE o.type = 'task.created' AND o.outcome IS NULL
                      AND o.data ->> 'task' = ev.data ->> 'task');

    -- 2. Managers: every one named becomes at least a placeholder, created at its first mention; then
    --    manager.upserted sets the last name given, and the last role and active given.
    INSERT INTO managers (account_id, external_id, name, role, active, distribution_enabled, weight, needs_setup,
                          created_at, updated_at)
    SELECT p_account, ext, ext, 'manager', true, false, 1, true, at, at
    FROM (SELECT DISTINCT ON (data ->> 'manager') data ->> 'manager' AS ext, at FROM ev
          WHERE data ->> 'manager' IS NOT NULL AND outcome IS NULL ORDER BY data ->> 'manager', ord) m
    ON CONFLICT (account_id, external_id) DO NOTHING;
    UPDATE managers m
    SET name = u.name, role = coalesce(u.role, m.role), active = coalesce(u.active, m.active),
        needs_setup = false, updated_at = u.at
    FROM (SELECT DISTINCT ON (e.data ->> 'manager') e.data ->> 'manager' AS ext, e.data ->> 'name' AS name, e.at,
                 (SELECT r.data ->> 'role' FROM ev r WHERE r.type = 'manager.upserted'
                  AND r.data ->> 'manager' = e.data ->> 'manager' AND r.data ? 'role' ORDER BY r.ord DESC LIMIT 1) AS role,
                 (SELECT (r.data ->> 'active')::boolean FROM ev r WHERE r.type = 'manager.upserted'
                  AND r.data ->> 'manager' = e.data ->> 'manager' AND r.data ? 'active' ORDER BY r.ord DESC LIMIT 1) AS active
          FROM ev e WHERE e.type = 'manager.upserted' ORDER BY e.data ->> 'manager', e.ord DESC) u
    WHERE m.account_id = p_account AND m.external_id = u.ext;

    -- 3. Pipelines named and unknown: placeholders with a won and a lost stage.
    WITH named AS (
        SELECT DISTINCT ON (data ->> 'pipeline') data ->> 'pipeline' AS ext, at FROM ev
        WHERE data ->> 'pipeline' IS NOT NULL AND outcome IS NULL ORDER BY data ->> 'pipeline', ord
    ), created AS (
        INSERT INTO pipelines (account_id, name, external_id, needs_setup, created_at)
        SELECT p_account, ext, ext, true, at FROM named ORDER BY at, ext
        ON CONFLICT (account_id, external_id) DO NOTHING RETURNING id
    )
    INSERT INTO stages (account_id, pipeline_id, name, kind, position)
    SELECT p_account, id, s.name, s.kind, s.position FROM created
    CROSS JOIN (VALUES ('Успешно реализовано', 'won', 1), ('Закрыто и не реализовано', 'lost', 2)) s (name, kind, position);

    -- 4. Deals: the first deal.created of each new external id creates it (later ones are ignored).
    UPDATE ev SET pipeline_id = p.id
    FROM pipelines p WHERE p.account_id = p_account AND p.external_id = ev.data ->> 'pipeline';
    UPDATE ev SET deal_id = d.id
    FROM deals d WHERE d.account_id = p_account AND d.external_id = ev.data ->> 'deal';
    -- a stage_changed without a pipeline looks in the deal's pipeline (as created, or as it is)
    UPDATE ev SET pipeline_id = coalesce(
        (SELECT d.pipeline_id FROM deals d WHERE d.account_id = p_account AND d.id = ev.deal_id),
        (SELECT c.pipeline_id FROM ev c WHERE c.type = 'deal.created' AND c.outcome IS NULL
         AND c.data ->> 'deal' = ev.data ->> 'deal'))
    WHERE type = 'deal.stage_changed' AND pipeline_id IS NULL;

    -- 5. Stages: "won"/"lost" (and 142/143 in pipelines from amoCRM) by kind; others by external id, unknown
    --    ones appended after the last open stage in the order they are first named.
    UPDATE ev SET stage_id = s.id, stage_kind = s.kind
    FROM stages s JOIN pipelines p ON p.account_id = s.account_id AND p.id = s.pipeline_id
    WHERE ev.type IN ('deal.created', 'deal.stage_changed') AND ev.outcome IS NULL AND s.account_id = p_account
      AND s.pipeline_id = ev.pipeline_id
      AND s.id = (SELECT x.id FROM stages x WHERE x.account_id = p_account AND x.pipeline_id = ev.pipeline_id
                  AND ((ev.data ->> 'stage' IN ('won', 'lost') AND x.kind = ev.data ->> 'stage')
                       OR (p.crm = 'amocrm' AND ev.data ->> 'stage' = '142' AND x.kind = 'won')
                       OR (p.crm = 'amocrm' AND ev.data ->> 'stage' = '143' AND x.kind = 'lost')
                       OR (x.external_id = ev.data ->> 'stage' AND NOT (ev.data ->> 'stage' IN ('won', 'lost'))
                           AND NOT (p.crm = 'amocrm' AND ev.data ->> 'stage' IN ('142', '143'))))
                  ORDER BY CASE x.kind WHEN 'open' THEN 0 WHEN 'won' THEN 1 ELSE 2 END, x.position, x.id LIMIT 1);
    -- a deal.created without a stage: the first open stage; in a pipeline without one (and none named before
    -- it), a placeholder stage "new"
    UPDATE ev SET data = data || '{"stage": "new"}'::jsonb
    WHERE type = 'deal.created' AND outcome IS NULL AND NOT data ? 'stage'
      AND NOT EXISTS (SELECT 1 FROM stages s WHERE s.account_id = p_account AND s.pipeline_id = ev.pipeline_id
                      AND s.kind = 'open')
      AND NOT EXISTS (SELECT 1 FROM ev o WHERE o.pipeline_id = ev.pipeline_id AND o.ord < ev.ord
                      AND o.type IN ('deal.created', 'deal.stage_changed') AND o.outcome IS NULL
                      AND o.data ->> 'stage' IS NOT NULL AND o.data ->> 'stage' NOT IN ('won', 'lost', '142', '143'));
    WITH unknown AS (
        SELECT DISTINCT ON (pipeline_id, data ->> 'stage') pipeline_id, data ->> 'stage' AS ext, ord
        FROM ev WHERE type IN ('deal.created', 'deal.stage_changed') AND outcome IS NULL AND stage_id IS NULL
          AND pipeline_id IS NOT NULL AND data ->> 'stage' IS NOT NULL
        ORDER BY pipeline_id, data ->> 'stage', ord
    ), ranked AS (
        SELECT u.*, row_number() OVER (PARTITION BY pipeline_id ORDER BY ord) AS n,
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

    -- 6. Loss reasons named with a move into lost: placeholders.
    INSERT INTO loss_reasons (account_id, external_id, name, needs_setup, created_at)
    SELECT DISTINCT ON (data ->> 'loss_reason') p_account, data ->> 'loss_reason', data ->> 'loss_reason', true, at
    FROM ev WHERE type = 'deal.stage_changed' AND stage_kind = 'lost' AND data ->> 'loss_reason' IS NOT NULL
    ORDER BY data ->> 'loss_reason', ord
    ON CONFLICT (account_id, external_id) DO NOTHING;

    -- 7. The new deals, and their creation in the change log.
    WITH created AS (
        INSERT INTO deals (account_id, external_id, name, price, pipeline_id, stage_id, status, manager_id,
                           creator_manager_id, created_at, closed_at, updated_at)
        SELECT p_account, e.data ->> 'deal', e.data ->> 'name', (e.data ->> 'price')::bigint, e.pipeline_id,
               e.stage_id, e.stage_kind, m.id, m.id, e.at, CASE WHEN e.stage_kind <> 'open' THEN e.at END, e.at
        FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
        WHERE e.type = 'deal.created' AND e.outcome IS NULL ORDER BY e.ord
        RETURNING id, external_id
    )
    UPDATE ev SET deal_id = c.id FROM created c WHERE ev.data ->> 'deal' = c.external_id;

    -- 8. Every change of a known deal goes into its change log; deletes and restores keep the last.
    INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager,
                              manager_id, price, name)
    SELECT p_account, e.deal_id, e.at, e.type = 'deal.created',
           e.stage_id,
           CASE WHEN e.stage_kind = 'lost' THEN lr.id END,
           e.type IN ('deal.created', 'deal.responsible_changed'),
           m.id,
           CASE WHEN e.type IN ('deal.created', 'deal.updated') THEN (e.data ->> 'price')::bigint END,
           CASE WHEN e.type IN ('deal.created', 'deal.updated') THEN e.data ->> 'name' END
    FROM ev e
    LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    LEFT JOIN loss_reasons lr ON lr.account_id = p_account AND lr.external_id = e.data ->> 'loss_reason'
    WHERE e.deal_id IS NOT NULL AND e.outcome IS NULL
      AND e.type IN ('deal.created', 'deal.updated', 'deal.stage_changed', 'deal.responsible_changed')
    ORDER BY e.ord;
    UPDATE deals d SET deleted_at = CASE WHEN x.type = 'deal.deleted' THEN x.at END, deleted_set_at = x.at
    FROM (SELECT DISTINCT ON (deal_id) deal_id, type, at FROM ev
          WHERE deal_id IS NOT NULL AND outcome IS NULL AND type IN ('deal.deleted', 'deal.restored')
          ORDER BY deal_id, ord DESC) x
    WHERE d.account_id = p_account AND d.id = x.deal_id AND (d.deleted_set_at IS NULL OR d.deleted_set_at <= x.at);
    PERFORM salesops_rebuild_deals(p_account, array_agg(DISTINCT deal_id), '-infinity')
    FROM ev WHERE deal_id IS NOT NULL AND type LIKE 'deal.%';

    -- 9. Tasks: the first task.created of each new external id on a known deal creates it, responsible the
    --    given manager or the deal's at that time.
    UPDATE ev SET task_id = t.id FROM tasks t
    WHERE t.account_id = p_account AND t.external_id = ev.data ->> 'task';
    WITH created AS (
        INSERT INTO tasks (account_id, external_id, deal_id, manager_id, type, text, due_at, created_at, updated_at)
        SELECT p_account, e.data ->> 'task', e.deal_id,
               CASE WHEN e.data ->> 'manager' IS NOT NULL THEN m.id
                    ELSE (SELECT h.manager_id FROM deal_history h WHERE h.account_id = p_account
                          AND h.deal_id = e.deal_id AND h.at <= e.at ORDER BY h.at DESC, h.id DESC LIMIT 1) END,
               e.data ->> 'type', coalesce(e.data ->> 'text', ''), (e.data ->> 'due_at')::timestamptz, e.at, e.at
        FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
        WHERE e.type = 'task.created' AND e.outcome IS NULL AND e.deal_id IS NOT NULL ORDER BY e.ord
        RETURNING id, external_id, manager_id, due_at, created_at
    ), history AS (
        INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)
        SELECT p_account, id, created_at, true, true, manager_id, due_at FROM created
    )
    UPDATE ev SET task_id = c.id FROM created c WHERE ev.data ->> 'task' = c.external_id;
    INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)
    SELECT p_account, e.task_id, e.at, false, e.data ? 'manager', m.id, (e.data ->> 'due_at')::timestamptz
    FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    WHERE e.type = 'task.updated' AND e.outcome IS NULL AND e.task_id IS NOT NULL
      AND (e.data ? 'manager' OR e.data ? 'due_at')
    ORDER BY e.ord;
    UPDATE tasks t SET text = coalesce(x.data ->> 'text', ''), text_set_at = x.at, updated_at = greatest(t.updated_at, x.at)
    FROM (SELECT DISTINCT ON (task_id) task_id, data, at FROM ev
          WHERE type = 'task.updated' AND task_id IS NOT NULL AND data ? 'text' ORDER BY task_id, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id AND (t.text_set_at IS NULL OR t.text_set_at <= x.at);
    UPDATE tasks t SET completed_at = x.at, completion_set_at = x.at, updated_at = greatest(t.updated_at, x.at),
                       result = coalesce(x.result, t.result)
    FROM (SELECT DISTINCT ON (task_id) task_id, at,
                 (SELECT r.data ->> 'result' FROM ev r WHERE r.type = 'task.completed' AND r.task_id = c.task_id
                  AND r.data ->> 'result' IS NOT NULL ORDER BY r.ord DESC LIMIT 1) AS result
          FROM ev c WHERE type = 'task.completed' AND task_id IS NOT NULL ORDER BY task_id, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id
      AND (t.completion_set_at IS NULL OR t.completion_set_at <= x.at);
    UPDATE tasks t SET deleted_at = x.at, deleted_set_at = x.at, updated_at = greatest(t.updated_at, x.at)
    FROM (SELECT DISTINCT ON (task_id) task_id, at FROM ev
          WHERE type = 'task.deleted' AND task_id IS NOT NULL ORDER BY task_id, ord DESC) x
    WHERE t.account_id = p_account AND t.id = x.task_id AND (t.deleted_set_at IS NULL OR t.deleted_set_at <= x.at);
    PERFORM salesops_rebuild_tasks(p_account, array_agg(DISTINCT task_id))
    FROM ev WHERE task_id IS NOT NULL AND type LIKE 'task.%';

    -- 10. Calls and notes: the last event of each external id wins.
    INSERT INTO calls (account_id, external_id, manager_id, deal_id, direction, started_at, duration_s, answered,
                       created_at)
    SELECT DISTINCT ON (e.data ->> 'call') p_account, e.data ->> 'call', m.id, e.deal_id, e.data ->> 'direction',
           e.at, (e.data ->> 'duration_s')::integer, (e.data ->> 'answered')::boolean, e.at
    FROM ev e JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    WHERE e.type = 'call.logged' AND e.outcome IS NULL
    ORDER BY e.data ->> 'call', e.ord DESC
    ON CONFLICT (account_id, external_id) DO UPDATE SET manager_id = EXCLUDED.manager_id,
        deal_id = EXCLUDED.deal_id, direction = EXCLUDED.direction, started_at = EXCLUDED.started_at,
        duration_s = EXCLUDED.duration_s, answered = EXCLUDED.answered;
    INSERT INTO notes (account_id, external_id, deal_id, text, manager_id, created_at)
    SELECT DISTINCT ON (e.data ->> 'note') p_account, e.data ->> 'note', e.deal_id, e.data ->> 'text', m.id, e.at
    FROM ev e LEFT JOIN managers m ON m.account_id = p_account AND m.external_id = e.data ->> 'manager'
    WHERE e.type = 'note.added' AND e.outcome IS NULL
    ORDER BY e.data ->> 'note', e.ord DESC
    ON CONFLICT (account_id, external_id) DO UPDATE SET text = EXCLUDED.text;

    -- 11. The inbox rows: applied, ignored, or waiting for the deal or task that has not come.
    UPDATE inbox i
    SET state = CASE WHEN x.outcome IS NULL THEN 'applied' WHEN x.outcome = 'ignored' THEN 'ignored'
                     ELSE 'waiting' END,
        waits_for_kind = CASE x.outcome WHEN 'waiting:deal' THEN 'deal' WHEN 'waiting:task' THEN 'task' END,
        waits_for_ext = CASE x.outcome WHEN 'waiting:deal' THEN x.data ->> 'deal'
                                       WHEN 'waiting:task' THEN x.data ->> 'task' END,
        applied_at = CASE WHEN x.outcome IS NULL THEN now() END
    FROM ev x
    WHERE i.account_id = p_account AND i.id = x.inbox_id;
END
$$;

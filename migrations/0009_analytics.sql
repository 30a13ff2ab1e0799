-- Analytics: the figures of PRODUCT.md (Definitions) as set-based SQL over the histories. Periods are
-- [p_start, p_end) instants; p_as_of is the moment "as of" which states are taken (end - 1 s, or now).
-- Deleted deals are left out of everything.

CREATE INDEX IF NOT EXISTS deal_history_by_status_at ON deal_history (account_id, status, at);
CREATE INDEX IF NOT EXISTS deals_by_created ON deals (account_id, created_at);
CREATE INDEX IF NOT EXISTS calls_by_started ON calls (account_id, started_at);
CREATE INDEX IF NOT EXISTS task_history_by_task ON task_history (account_id, task_id, at);

-- The moves into won or lost in the period: per deal and outcome, the last such move, with the responsible and
-- the price at that move.
CREATE FUNCTION salesops_outcome_moves(p_account bigint, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (deal_id bigint, status text, manager_id bigint, price bigint)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (x.deal_id, x.status) x.deal_id, x.status, x.manager_id, x.price
    FROM (SELECT h.deal_id, h.status, h.manager_id, h.price, h.at, h.id,
                 lag(h.status) OVER (PARTITION BY h.deal_id ORDER BY h.at, h.id) AS prev
          FROM deal_history h
          JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id AND d.deleted_at IS NULL
          WHERE h.account_id = p_account
            AND h.deal_id IN (SELECT c.deal_id FROM deal_history c
                              WHERE c.account_id = p_account AND c.status IN ('won', 'lost')
                                AND c.at >= p_start AND c.at < p_end)) x
    WHERE x.status IN ('won', 'lost') AND x.prev IS DISTINCT FROM x.status AND x.at >= p_start AND x.at < p_end
    ORDER BY x.deal_id, x.status, x.at DESC, x.id DESC
$$;

-- Manager KPIs: one row per manager in reports (role manager, not a pool user), by id. late_tasks is the
-- number of late tasks (for the averages of sums).
CREATE FUNCTION salesops_kpis(p_account bigint, p_start timestamptz, p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (manager_id bigint, name text, talk_time_s bigint, outgoing_calls bigint, deals_created bigint,
               won bigint, won_revenue bigint, lost bigint, deals_without_tasks bigint,
               deals_with_overdue_tasks bigint, tasks_due bigint, tasks_on_time bigint, overdue_total_s bigint,
               late_tasks bigint)
LANGUAGE sql STABLE AS $$
    WITH m AS (SELECT id, name FROM managers
               WHERE account_id = p_account AND role = 'manager' AND NOT pool_user),
    calls_p AS (
        SELECT c.manager_id, sum(c.duration_s) FILTER (WHERE c.answered) AS talk,
               count(*) FILTER (WHERE c.direction = 'out') AS outgoing
        FROM calls c
        WHERE c.account_id = p_account AND c.started_at >= p_start AND c.started_at < p_end
          AND NOT EXISTS (SELECT 1 FROM deals d WHERE d.account_id = c.account_id AND d.id = c.deal_id
                          AND d.deleted_at IS NOT NULL) -- a deleted deal's calls go with it
        GROUP BY c.manager_id),
    created AS (
        SELECT d.creator_manager_id AS manager_id, count(*) AS n FROM deals d
        WHERE d.account_id = p_account AND d.deleted_at IS NULL AND d.created_at >= p_start AND d.created_at < p_end
        GROUP BY d.creator_manager_id),
    outcomes AS (
        SELECT o.manager_id, count(*) FILTER (WHERE o.status = 'won') AS won,
               coalesce(sum(o.price) FILTER (WHERE o.status = 'won'), 0) AS revenue,
               count(*) FILTER (WHERE o.status = 'lost') AS lost
        FROM salesops_outcome_moves(p_account, p_start, p_end) o GROUP BY o.manager_id),
    -- each deal's state at as_of: its last history row at or before it
    deal_at AS (
        SELECT DISTINCT ON (h.deal_id) h.deal_id, h.status, h.manager_id
        FROM deal_history h
        JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id AND d.deleted_at IS NULL
        WHERE h.account_id = p_account AND h.at <= p_as_of
        ORDER BY h.deal_id, h.at DESC, h.id DESC),
    -- tasks that exist and are not deleted at as_of, with their due time as last set at or before it
    task_at AS (
        SELECT t.id, t.deal_id, t.completed_at,
               (SELECT th.due_at FROM task_history th
                WHERE th.account_id = t.account_id AND th.task_id = t.id AND th.due_at IS NOT NULL
                  AND th.at <= p_as_of
                ORDER BY th.at DESC, th.id DESC LIMIT 1) AS due
        FROM tasks t
        JOIN deals d ON d.account_id = t.account_id AND d.id = t.deal_id AND d.deleted_at IS NULL
        WHERE t.account_id = p_account AND t.type <> 'rejection_control' AND t.created_at <= p_as_of
          AND (t.deleted_at IS NULL OR t.deleted_at > p_as_of)),
    open_tasks AS (SELECT * FROM task_at WHERE completed_at IS NULL OR completed_at > p_as_of),
    deal_tasks AS (
        SELECT da.manager_id, da.deal_id, count(ot.id) AS open_n,
               count(ot.id) FILTER (WHERE ot.due < p_as_of) AS overdue_n
        FROM deal_at da LEFT JOIN open_tasks ot ON ot.deal_id = da.deal_id
        WHERE da.status = 'open' AND da.manager_id IS NOT NULL
        GROUP BY da.manager_id, da.deal_id),
    deal_fig AS (
        SELECT dt.manager_id, count(*) FILTER (WHERE dt.open_n = 0) AS without,
               count(*) FILTER (WHERE dt.overdue_n > 0) AS overdue
        FROM deal_tasks dt GROUP BY dt.manager_id),
    -- tasks due in the period, each with its responsible at min(due, as_of)
    due_tasks AS (
        SELECT ta.*, (SELECT th.manager_id FROM task_history th
                      WHERE th.account_id = p_account AND th.task_id = ta.id AND th.set_manager
                        AND th.at <= least(ta.due, p_as_of)
                      ORDER BY th.at DESC, th.id DESC LIMIT 1) AS resp,
               CASE WHEN ta.completed_at <= p_as_of AND ta.completed_at > ta.due
                        THEN extract(epoch FROM ta.completed_at - ta.due)
                    WHEN (ta.completed_at IS NULL OR ta.completed_at > p_as_of) AND ta.due < p_as_of
                        THEN extract(epoch FROM p_as_of - ta.due) END AS lateness
        FROM task_at ta WHERE ta.due >= p_start AND ta.due < p_end),
    due_fig AS (
        SELECT dt.resp AS manager_id, count(*) AS due_n,
               count(*) FILTER (WHERE dt.completed_at <= dt.due AND dt.completed_at <= p_as_of) AS on_time,
               coalesce(sum(dt.lateness), 0)::bigint AS late_s, count(dt.lateness) AS late_n
        FROM due_tasks dt GROUP BY dt.resp)
    SELECT m.id, m.name, coalesce(c.talk, 0)::bigint, coalesce(c.outgoing, 0), coalesce(cr.n, 0),
           coalesce(o.won, 0), coalesce(o.revenue, 0)::bigint, coalesce(o.lost, 0), coalesce(df.without, 0),
           coalesce(df.overdue, 0), coalesce(du.due_n, 0), coalesce(du.on_time, 0), coalesce(du.late_s, 0),
           coalesce(du.late_n, 0)
    FROM m
    LEFT JOIN calls_p c ON c.manager_id = m.id
    LEFT JOIN created cr ON cr.manager_id = m.id
    LEFT JOIN outcomes o ON o.manager_id = m.id
    LEFT JOIN deal_fig df ON df.manager_id = m.id
    LEFT JOIN due_fig du ON du.manager_id = m.id
    ORDER BY m.id
$$;

-- Account-wide: every deal, whoever is responsible.
CREATE FUNCTION salesops_summary(p_account bigint, p_start timestamptz, p_end timestamptz)
RETURNS TABLE (created bigint, won bigint, won_revenue bigint, lost bigint)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT count(*) FROM deals d WHERE d.account_id = p_account AND d.deleted_at IS NULL
              AND d.created_at >= p_start AND d.created_at < p_end),
           count(*) FILTER (WHERE o.status = 'won'),
           coalesce(sum(o.price) FILTER (WHERE o.status = 'won'), 0)::bigint,
           count(*) FILTER (WHERE o.status = 'lost')
    FROM salesops_outcome_moves(p_account, p_start, p_end) o
$$;

-- The funnel's entries: per open stage S of the pipeline, each deal that entered S in the period, classified
-- relative to its first entry into S in the period by its history up to as_of (advanced, lost, in_stage),
-- with the loss reason of a lost one.
CREATE FUNCTION salesops_funnel_entries(p_account bigint, p_pipeline bigint, p_start timestamptz,
                                        p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (stage_id bigint, deal_id bigint, class text, loss_reason_id bigint)
LANGUAGE sql STABLE AS $$
    WITH st AS (SELECT s.id, s.position FROM stages s
                WHERE s.account_id = p_account AND s.pipeline_id = p_pipeline AND s.kind = 'open'),
    first_entry AS (
        SELECT DISTINCT ON (h.to_stage_id, h.deal_id) h.to_stage_id AS stage_id, h.deal_id, h.at, h.id
        FROM deal_history h
        JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id AND d.deleted_at IS NULL
        WHERE h.account_id = p_account AND h.to_stage_id IN (SELECT id FROM st)
          AND h.from_stage_id IS DISTINCT FROM h.to_stage_id AND h.at >= p_start AND h.at < p_end
        ORDER BY h.to_stage_id, h.deal_id, h.at, h.id),
    -- the last move into lost at or before as_of, for deals lost at as_of
    state AS (
        SELECT DISTINCT ON (h.deal_id) h.deal_id, h.status
        FROM deal_history h
        WHERE h.account_id = p_account AND h.deal_id IN (SELECT fe.deal_id FROM first_entry fe) AND h.at <= p_as_of
        ORDER BY h.deal_id, h.at DESC, h.id DESC),
    loss AS (
        SELECT DISTINCT ON (h.deal_id) h.deal_id, h.loss_reason_id,
               (SELECT p.to_stage_id FROM deal_history p
                WHERE p.account_id = h.account_id AND p.deal_id = h.deal_id AND p.status = 'open'
                  AND (p.at, p.id) < (h.at, h.id)
                ORDER BY p.at DESC, p.id DESC LIMIT 1) AS last_open_stage
        FROM (SELECT h.*, lag(h.status) OVER (PARTITION BY h.deal_id ORDER BY h.at, h.id) AS prev
              FROM deal_history h
              WHERE h.account_id = p_account
                AND h.deal_id IN (SELECT s.deal_id FROM state s WHERE s.status = 'lost') AND h.at <= p_as_of) h
        WHERE h.status = 'lost' AND h.prev IS DISTINCT FROM 'lost'
        ORDER BY h.deal_id, h.at DESC, h.id DESC)
    SELECT fe.stage_id, fe.deal_id,
           CASE WHEN EXISTS (SELECT 1 FROM deal_history r
                             LEFT JOIN stages rs ON rs.account_id = r.account_id AND rs.id = r.to_stage_id
                             WHERE r.account_id = p_account AND r.deal_id = fe.deal_id
                               AND (r.at, r.id) > (fe.at, fe.id) AND r.at <= p_as_of
                               AND (r.status = 'won'
                                    OR (rs.kind = 'open' AND rs.pipeline_id = p_pipeline
                                        AND rs.position > (SELECT position FROM st WHERE st.id = fe.stage_id))))
                    THEN 'advanced'
                WHEN l.last_open_stage = fe.stage_id THEN 'lost'
                ELSE 'in_stage' END,
           CASE WHEN l.last_open_stage = fe.stage_id THEN l.loss_reason_id END
    FROM first_entry fe LEFT JOIN loss l ON l.deal_id = fe.deal_id
$$;

-- The pipeline's totals: deals of the pipeline created in the period, and those of them won or lost at as_of.
CREATE FUNCTION salesops_funnel_totals(p_account bigint, p_pipeline bigint, p_start timestamptz,
                                       p_end timestamptz, p_as_of timestamptz)
RETURNS TABLE (created bigint, won bigint, lost bigint)
LANGUAGE sql STABLE AS $$
    WITH c AS (SELECT d.id FROM deals d
               WHERE d.account_id = p_account AND d.pipeline_id = p_pipeline AND d.deleted_at IS NULL
                 AND d.created_at >= p_start AND d.created_at < p_end),
    s AS (SELECT DISTINCT ON (h.deal_id) h.deal_id, h.status FROM deal_history h
          WHERE h.account_id = p_account AND h.deal_id IN (SELECT id FROM c) AND h.at <= p_as_of
          ORDER BY h.deal_id, h.at DESC, h.id DESC)
    SELECT (SELECT count(*) FROM c), count(*) FILTER (WHERE s.status = 'won'),
           count(*) FILTER (WHERE s.status = 'lost')
    FROM s
$$;

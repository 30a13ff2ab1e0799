-- The managers' report (the figures of salesops_kpis, same columns and order) as a naive implementation
-- would compute it straight from the raw tables: per manager, per group of figures, a plain query over that
-- manager's rows, with the "as of" states found by correlated subqueries (the deal's last history row at or
-- before as_of, a task's due time as last set at or before as_of, the status before a move), the way an ORM's
-- deal.state_at(as_of) or task.due_at_as_of(t) helpers would fetch them row by row. No window functions, no
-- set-based passes over the histories. It uses the indexes the schema has.
--
--   psql -X -v account=ID -v start=TIMESTAMPTZ -v end=TIMESTAMPTZ -v as_of=TIMESTAMPTZ -f bench/naive_kpis.sql
--
-- The deals and tasks of a manager are those he is responsible for now (deals.manager_id, tasks.manager_id),
-- then checked against the responsible as of the period; on data without reassignments (bench/
-- gen_analytics.sql) that is the same set as salesops_kpis', and bench/run_analytics.sh compares the rows.
SELECT m.id AS manager_id, m.name,
       coalesce(c.talk, 0)::bigint AS talk_time_s, c.outgoing AS outgoing_calls, dc.n AS deals_created,
       o.won, o.won_revenue, o.lost, dl.without AS deals_without_tasks, dl.overdue AS deals_with_overdue_tasks,
       tk.due_n AS tasks_due, tk.on_time AS tasks_on_time, tk.late_s AS overdue_total_s, tk.late_n AS late_tasks
FROM managers m
-- calls of the period (not those of a deleted deal)
CROSS JOIN LATERAL (
    SELECT sum(c.duration_s) FILTER (WHERE c.answered) AS talk, count(*) FILTER (WHERE c.direction = 'out') AS outgoing
    FROM calls c
    WHERE c.account_id = m.account_id AND c.manager_id = m.id
      AND c.started_at >= :'start'::timestamptz AND c.started_at < :'end'::timestamptz
      AND (c.deal_id IS NULL
           OR (SELECT d.deleted_at FROM deals d WHERE d.account_id = c.account_id AND d.id = c.deal_id) IS NULL)
) c
-- deals he created in the period
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM deals d
    WHERE d.account_id = m.account_id AND d.creator_manager_id = m.id AND d.deleted_at IS NULL
      AND d.created_at >= :'start'::timestamptz AND d.created_at < :'end'::timestamptz
) dc
-- moves into won or lost in the period made while he was responsible: the status before each move must
-- differ, and only the last such move of a deal into that status in the period counts
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE h.status = 'won') AS won,
           coalesce(sum(h.price) FILTER (WHERE h.status = 'won'), 0)::bigint AS won_revenue,
           count(*) FILTER (WHERE h.status = 'lost') AS lost
    FROM deal_history h
    JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id AND d.deleted_at IS NULL
    WHERE h.account_id = m.account_id AND h.manager_id = m.id AND h.status IN ('won', 'lost')
      AND h.at >= :'start'::timestamptz AND h.at < :'end'::timestamptz
      AND (SELECT p.status FROM deal_history p
           WHERE p.account_id = h.account_id AND p.deal_id = h.deal_id AND (p.at, p.id) < (h.at, h.id)
           ORDER BY p.at DESC, p.id DESC LIMIT 1) IS DISTINCT FROM h.status
      AND NOT EXISTS (
          SELECT 1 FROM deal_history l
          WHERE l.account_id = h.account_id AND l.deal_id = h.deal_id AND l.status = h.status
            AND (l.at, l.id) > (h.at, h.id) AND l.at < :'end'::timestamptz
            AND (SELECT p.status FROM deal_history p
                 WHERE p.account_id = l.account_id AND p.deal_id = l.deal_id AND (p.at, p.id) < (l.at, l.id)
                 ORDER BY p.at DESC, p.id DESC LIMIT 1) IS DISTINCT FROM l.status)
) o
-- his deals open at as_of: without an open task, with an overdue one
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE NOT x.has_open) AS without, count(*) FILTER (WHERE x.has_overdue) AS overdue
    FROM (
        SELECT EXISTS (SELECT 1 FROM tasks t
                       WHERE t.account_id = d.account_id AND t.deal_id = d.id AND t.type <> 'rejection_control'
                         AND t.created_at <= :'as_of'::timestamptz
                         AND (t.deleted_at IS NULL OR t.deleted_at > :'as_of'::timestamptz)
                         AND (t.completed_at IS NULL OR t.completed_at > :'as_of'::timestamptz)) AS has_open,
               EXISTS (SELECT 1 FROM tasks t
                       WHERE t.account_id = d.account_id AND t.deal_id = d.id AND t.type <> 'rejection_control'
                         AND t.created_at <= :'as_of'::timestamptz
                         AND (t.deleted_at IS NULL OR t.deleted_at > :'as_of'::timestamptz)
                         AND (t.completed_at IS NULL OR t.completed_at > :'as_of'::timestamptz)
                         AND (SELECT th.due_at FROM task_history th
                              WHERE th.account_id = t.account_id AND th.task_id = t.id AND th.due_at IS NOT NULL
                                AND th.at <= :'as_of'::timestamptz
                              ORDER BY th.at DESC, th.id DESC LIMIT 1) < :'as_of'::timestamptz) AS has_overdue
        FROM deals d
        CROSS JOIN LATERAL (
            SELECT h.status, h.manager_id FROM deal_history h
            WHERE h.account_id = d.account_id AND h.deal_id = d.id AND h.at <= :'as_of'::timestamptz
            ORDER BY h.at DESC, h.id DESC LIMIT 1) s
        WHERE d.account_id = m.account_id AND d.manager_id = m.id AND d.deleted_at IS NULL
          AND s.status = 'open' AND s.manager_id = m.id
    ) x
) dl
-- his tasks due in the period (due time as of as_of), with his responsibility at min(due, as_of)
CROSS JOIN LATERAL (
    SELECT count(*) AS due_n,
           count(*) FILTER (WHERE y.completed_at <= y.due AND y.completed_at <= :'as_of'::timestamptz) AS on_time,
           coalesce(sum(y.lateness), 0)::bigint AS late_s, count(y.lateness) AS late_n
    FROM (
        SELECT x.completed_at, x.due,
               CASE WHEN x.completed_at <= :'as_of'::timestamptz AND x.completed_at > x.due
                        THEN extract(epoch FROM x.completed_at - x.due)
                    WHEN (x.completed_at IS NULL OR x.completed_at > :'as_of'::timestamptz)
                         AND x.due < :'as_of'::timestamptz
                        THEN extract(epoch FROM :'as_of'::timestamptz - x.due) END AS lateness
        FROM (
            SELECT t.id, t.account_id, t.completed_at,
                   (SELECT th.due_at FROM task_history th
                    WHERE th.account_id = t.account_id AND th.task_id = t.id AND th.due_at IS NOT NULL
                      AND th.at <= :'as_of'::timestamptz
                    ORDER BY th.at DESC, th.id DESC LIMIT 1) AS due
            FROM tasks t
            JOIN deals d ON d.account_id = t.account_id AND d.id = t.deal_id AND d.deleted_at IS NULL
            WHERE t.account_id = m.account_id AND t.manager_id = m.id AND t.type <> 'rejection_control'
              AND t.created_at <= :'as_of'::timestamptz
              AND (t.deleted_at IS NULL OR t.deleted_at > :'as_of'::timestamptz)
        ) x
        WHERE x.due >= :'start'::timestamptz AND x.due < :'end'::timestamptz
          AND (SELECT th.manager_id FROM task_history th
               WHERE th.account_id = x.account_id AND th.task_id = x.id AND th.set_manager
                 AND th.at <= least(x.due, :'as_of'::timestamptz)
               ORDER BY th.at DESC, th.id DESC LIMIT 1) = m.id
    ) y
) tk
WHERE m.account_id = :account AND m.role = 'manager' AND NOT m.pool_user
ORDER BY m.id;

-- Events may arrive out of order. Every change of a deal is kept in deal_changes; the deal's current fields
-- and its deal_history rows are derived from that log in the order (at, creations first, arrival), so that a
-- late event lands in its place and corrects what follows it. Tasks keep their responsible and due time as
-- a change log too (task_history), and the time each other field was last set.

CREATE TABLE deal_changes (
    account_id     bigint      NOT NULL,
    id             bigserial,
    deal_id        bigint      NOT NULL,
    at             timestamptz NOT NULL,
    creation       boolean     NOT NULL DEFAULT false,
    stage_id       bigint,              -- the deal moved to this stage (its kind gives the status)
    loss_reason_id bigint,              -- with a move into lost
    set_manager    boolean     NOT NULL DEFAULT false,
    manager_id     bigint,              -- the responsible after the change (null: unassigned), if set_manager
    price          bigint,              -- the new price, if it changed
    name           text,                -- the new name, if it changed
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id),
    FOREIGN KEY (account_id, stage_id) REFERENCES stages (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    FOREIGN KEY (account_id, loss_reason_id) REFERENCES loss_reasons (account_id, id)
);
CREATE INDEX deal_changes_by_deal ON deal_changes (account_id, deal_id, at, id);

-- The history already written by the first schema becomes the change log it was made from.
INSERT INTO deal_changes (account_id, deal_id, at, creation, stage_id, loss_reason_id, set_manager, manager_id,
                          price, name)
SELECT h.account_id, h.deal_id, h.at, h.from_stage_id IS NULL, h.to_stage_id, h.loss_reason_id, true, h.manager_id,
       h.price, CASE WHEN h.from_stage_id IS NULL THEN d.name END
FROM deal_history h JOIN deals d ON d.account_id = h.account_id AND d.id = h.deal_id
ORDER BY h.account_id, h.deal_id, h.at, h.id;

ALTER TABLE deals ADD COLUMN deleted_set_at timestamptz;   -- time of the last delete or restore event

-- Pipelines that came from amoCRM: there "142" and "143" name the won and lost stage.
ALTER TABLE pipelines ADD COLUMN crm text CHECK (crm IN ('amocrm'));

-- task_history: a change log of responsible and due time (a row sets one or both).
ALTER TABLE task_history ADD COLUMN creation boolean NOT NULL DEFAULT false;
ALTER TABLE task_history ADD COLUMN set_manager boolean NOT NULL DEFAULT true;
ALTER TABLE task_history ALTER COLUMN due_at DROP NOT NULL;
UPDATE task_history h SET creation = true
WHERE h.id = (SELECT min(id) FROM task_history f WHERE f.account_id = h.account_id AND f.task_id = h.task_id);
ALTER TABLE tasks ADD COLUMN text_set_at timestamptz;
ALTER TABLE tasks ADD COLUMN completion_set_at timestamptz;
ALTER TABLE tasks ADD COLUMN deleted_set_at timestamptz;

-- Derives deals' current fields and their deal_history rows at or after p_from from deal_changes. Rows
-- before p_from are kept (their ids stay); the rest are written anew. Used by every door: one REST command,
-- one event, or a whole import at once.
CREATE FUNCTION salesops_rebuild_deals(p_account bigint, p_deals bigint[], p_from timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM deal_history h
    WHERE h.account_id = p_account AND h.deal_id = ANY (p_deals) AND h.at >= p_from;

    WITH ordered AS (
        SELECT c.deal_id, c.at, c.creation, c.stage_id, c.loss_reason_id, c.manager_id, c.price,
               row_number() OVER w AS n,
               count(c.stage_id) OVER w AS stage_grp,
               count(CASE WHEN c.set_manager THEN 1 END) OVER w AS manager_grp,
               count(c.price) OVER w AS price_grp
        FROM deal_changes c
        WHERE c.account_id = p_account AND c.deal_id = ANY (p_deals)
        WINDOW w AS (PARTITION BY c.deal_id ORDER BY c.at, c.creation DESC, c.id)
    ), state AS (
        SELECT o.deal_id, o.at, o.n, o.creation,
               first_value(o.stage_id) OVER (PARTITION BY o.deal_id, o.stage_grp ORDER BY o.n) AS stage_id,
               first_value(o.loss_reason_id) OVER (PARTITION BY o.deal_id, o.stage_grp ORDER BY o.n) AS loss_reason_id,
               first_value(o.manager_id) OVER (PARTITION BY o.deal_id, o.manager_grp ORDER BY o.n) AS manager_id,
               first_value(o.price) OVER (PARTITION BY o.deal_id, o.price_grp ORDER BY o.n) AS price
        FROM ordered o
    ), steps AS (
        SELECT s.*, st.kind AS status,
               lag(s.stage_id) OVER (PARTITION BY s.deal_id ORDER BY s.n) AS prev_stage,
               lag(s.manager_id) OVER (PARTITION BY s.deal_id ORDER BY s.n) AS prev_manager
        FROM state s
        JOIN stages st ON st.account_id = p_account AND st.id = s.stage_id
    )
    INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id,
                              loss_reason_id, price)
    SELECT p_account, deal_id, CASE WHEN creation THEN NULL ELSE prev_stage END, stage_id, status, at, manager_id,
           CASE WHEN status = 'lost' THEN loss_reason_id END, coalesce(price, 0)
    FROM steps
    WHERE at >= p_from
      AND (creation OR stage_id IS DISTINCT FROM prev_stage OR manager_id IS DISTINCT FROM prev_manager)
    ORDER BY deal_id, n;

    UPDATE deals d
    SET stage_id = h.to_stage_id,
        pipeline_id = st.pipeline_id,
        status = h.status,
        manager_id = h.manager_id,
        loss_reason_id = CASE WHEN h.status = 'lost' THEN lr.loss_reason_id END,
        price = coalesce(pr.price, d.price),
        name = coalesce(nm.name, d.name),
        closed_at = CASE WHEN h.status = 'open' THEN NULL ELSE cl.at END,
        updated_at = greatest(d.updated_at, last.at)
    FROM unnest(p_deals) AS x (deal_id)
    CROSS JOIN LATERAL (
        SELECT to_stage_id, status, manager_id FROM deal_history
        WHERE account_id = p_account AND deal_id = x.deal_id ORDER BY at DESC, id DESC LIMIT 1) h
    JOIN stages st ON st.account_id = p_account AND st.id = h.to_stage_id
    CROSS JOIN LATERAL (
        SELECT loss_reason_id FROM deal_changes
        WHERE account_id = p_account AND deal_id = x.deal_id AND stage_id IS NOT NULL
        ORDER BY at DESC, creation, id DESC LIMIT 1) lr
    LEFT JOIN LATERAL (
        SELECT price FROM deal_changes
        WHERE account_id = p_account AND deal_id = x.deal_id AND price IS NOT NULL
        ORDER BY at DESC, creation, id DESC LIMIT 1) pr ON true
    LEFT JOIN LATERAL (
        SELECT name FROM deal_changes
        WHERE account_id = p_account AND deal_id = x.deal_id AND name IS NOT NULL
        ORDER BY at DESC, creation, id DESC LIMIT 1) nm ON true
    LEFT JOIN LATERAL (
        SELECT at FROM deal_history
        WHERE account_id = p_account AND deal_id = x.deal_id AND from_stage_id IS DISTINCT FROM to_stage_id
        ORDER BY at DESC, id DESC LIMIT 1) cl ON true
    CROSS JOIN LATERAL (
        SELECT max(at) AS at FROM deal_changes WHERE account_id = p_account AND deal_id = x.deal_id) last
    WHERE d.account_id = p_account AND d.id = x.deal_id;
END
$$;

-- Derives tasks' current responsible and due time from task_history.
CREATE FUNCTION salesops_rebuild_tasks(p_account bigint, p_tasks bigint[])
RETURNS void LANGUAGE sql AS $$
    UPDATE tasks t
    SET manager_id = m.manager_id, due_at = coalesce(du.due_at, t.due_at)
    FROM unnest(p_tasks) AS x (task_id)
    LEFT JOIN LATERAL (
        SELECT manager_id FROM task_history
        WHERE account_id = p_account AND task_id = x.task_id AND set_manager
        ORDER BY at DESC, creation, id DESC LIMIT 1) m ON true
    LEFT JOIN LATERAL (
        SELECT due_at FROM task_history
        WHERE account_id = p_account AND task_id = x.task_id AND due_at IS NOT NULL
        ORDER BY at DESC, creation, id DESC LIMIT 1) du ON true
    WHERE t.account_id = p_account AND t.id = x.task_id;
$$;

-- The inbox: everything that comes from outside is stored here before it is acknowledged. A row is one event
-- (from POST /events, import, or mapped from a webhook body) or one raw amoCRM webhook body.
CREATE TABLE inbox (
    account_id      bigint      NOT NULL REFERENCES accounts (id),
    id              bigserial,
    source          text        NOT NULL CHECK (source IN ('events', 'import', 'amocrm', 'amocrm_event')),
    parent_id       bigint,              -- the webhook body an event was mapped from
    event_id        text,                -- unique per account
    event_type      text,
    event_at        timestamptz,
    body            text        NOT NULL,
    body_hash       bytea,               -- raw webhook bodies: the same body within 10 minutes is a duplicate
    state           text        NOT NULL
                    CHECK (state IN ('pending', 'waiting', 'failed', 'ignored', 'applied')),
    waits_for_kind  text,                -- deal | task
    waits_for_ext   text,
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,
    error           text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    applied_at      timestamptz,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX inbox_event_id ON inbox (account_id, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX inbox_due ON inbox (next_attempt_at) WHERE state IN ('pending', 'waiting');
CREATE INDEX inbox_by_state ON inbox (account_id, state, id);
CREATE INDEX inbox_waiting_for ON inbox (account_id, waits_for_kind, waits_for_ext) WHERE state = 'waiting';
CREATE INDEX inbox_body_hash ON inbox (account_id, body_hash, received_at) WHERE body_hash IS NOT NULL;

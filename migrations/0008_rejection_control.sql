-- Rejection control: the rule, every move into lost judged once by the rule then in force, and the reviews.

CREATE TABLE rejection_rules (
    account_id          bigint        PRIMARY KEY REFERENCES accounts (id),
    enabled             boolean       NOT NULL DEFAULT false,
    any_reason          boolean       NOT NULL DEFAULT false,
    loss_reason_ids     bigint[]      NOT NULL DEFAULT '{}',
    reviewer_id         bigint,
    due_hours           integer       NOT NULL DEFAULT 24 CHECK (due_hours > 0),
    target_return_share numeric(5, 4) NOT NULL DEFAULT 0.1 CHECK (target_return_share BETWEEN 0 AND 1),
    sample_share        numeric(5, 4) NOT NULL DEFAULT 1 CHECK (sample_share BETWEEN 0 AND 1),
    enabled_since       timestamptz,  -- the latest switch from off to on
    updated_at          timestamptz   NOT NULL,
    FOREIGN KEY (account_id, reviewer_id) REFERENCES managers (account_id, id)
);

-- One row per move into lost, written when the move is judged (applied, or its reason read from amoCRM).
-- ordinal tells apart moves into lost of one deal within the same second (lost, returned, lost again).
CREATE TABLE rejection_losses (
    account_id         bigint      NOT NULL,
    deal_id            bigint      NOT NULL,
    lost_at            timestamptz NOT NULL,
    ordinal            integer     NOT NULL DEFAULT 1,
    lost_by_manager_id bigint,
    loss_reason_id     bigint,
    from_stage_id      bigint,      -- the stage the deal was lost from (null: created lost)
    qualifies          boolean     NOT NULL,
    sampled            boolean     NOT NULL,
    judged_at          timestamptz NOT NULL,
    PRIMARY KEY (account_id, deal_id, lost_at, ordinal),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id)
);
CREATE INDEX rejection_losses_due ON rejection_losses (account_id, deal_id, lost_at, ordinal)
    WHERE qualifies AND sampled;

CREATE TABLE rejection_reviews (
    account_id           bigint      NOT NULL,
    id                   bigserial,
    deal_id              bigint      NOT NULL,
    lost_at              timestamptz NOT NULL,
    ordinal              integer     NOT NULL DEFAULT 1,
    task_id              bigint,
    lost_by_manager_id   bigint,
    loss_reason_id       bigint,
    from_stage_id        bigint,
    state                text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'returned', 'confirmed')),
    decided_at           timestamptz,
    decided_by_key_id    bigint,
    note                 text,
    returned_to_id       bigint,
    follow_up_task_id    bigint,
    created_at           timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, deal_id, lost_at, ordinal),
    FOREIGN KEY (account_id, deal_id, lost_at, ordinal)
        REFERENCES rejection_losses (account_id, deal_id, lost_at, ordinal),
    FOREIGN KEY (account_id, task_id) REFERENCES tasks (account_id, id)
);
CREATE INDEX rejection_reviews_by_loss ON rejection_reviews (account_id, lost_at);

-- The draw of sample_share: a fixed hash of (deal id, lost time) into [0, 1).
CREATE FUNCTION salesops_rejection_draw(p_deal bigint, p_lost_at timestamptz) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT ((((p_deal % 2147483647) * 48271 + floor(extract(epoch FROM p_lost_at))::bigint % 2147483647)
             % 2147483647) * 48271 % 2147483647 % 1000000)::numeric / 1000000
$$;

-- The moves into lost of a deal: its lost history rows whose previous row was not lost, numbered within each
-- second (the ordinal).
CREATE FUNCTION salesops_loss_moves(p_account bigint, p_deal bigint, p_until timestamptz)
RETURNS TABLE (id bigint, at timestamptz, ordinal integer, manager_id bigint, loss_reason_id bigint,
               from_stage_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT x.id, x.at, (row_number() OVER (PARTITION BY x.at ORDER BY x.id))::int, x.manager_id, x.loss_reason_id,
           x.from_stage_id
    FROM (SELECT h.*, lag(h.status) OVER (ORDER BY h.at, h.id) AS prev FROM deal_history h
          WHERE h.account_id = p_account AND h.deal_id = p_deal AND h.at <= p_until) x
    WHERE x.status = 'lost' AND x.prev IS DISTINCT FROM 'lost'
$$;

-- Judges a move into lost of the deal at p_lost_at (p_row: that history row; NULL: the latest at that time) by
-- the rule in force now; a move judged before keeps its judgment. Returns the move's ordinal when it is due a
-- review that does not exist yet, else 0.
CREATE FUNCTION salesops_rejection_judge(p_account bigint, p_deal bigint, p_lost_at timestamptz,
                                         p_row bigint DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m record;
    r rejection_rules%ROWTYPE;
    q boolean;
BEGIN
    SELECT * INTO m FROM salesops_loss_moves(p_account, p_deal, p_lost_at) x
    WHERE x.at = p_lost_at AND (p_row IS NULL OR x.id = p_row)
    ORDER BY x.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN 0; -- not a move into lost (lost before already, or no loss at that time)
    END IF;
    SELECT * INTO r FROM rejection_rules WHERE account_id = p_account;
    q := coalesce(r.enabled, false) AND p_lost_at >= r.enabled_since
         AND (r.any_reason OR m.loss_reason_id = ANY (r.loss_reason_ids));
    INSERT INTO rejection_losses (account_id, deal_id, lost_at, ordinal, lost_by_manager_id, loss_reason_id,
                                  from_stage_id, qualifies, sampled, judged_at)
    VALUES (p_account, p_deal, p_lost_at, m.ordinal, m.manager_id, m.loss_reason_id, m.from_stage_id,
            coalesce(q, false), coalesce(salesops_rejection_draw(p_deal, p_lost_at) < r.sample_share, false), now())
    ON CONFLICT DO NOTHING;
    IF EXISTS (SELECT 1 FROM rejection_losses l
               WHERE l.account_id = p_account AND l.deal_id = p_deal AND l.lost_at = p_lost_at
                 AND l.ordinal = m.ordinal AND l.qualifies AND l.sampled
                 AND NOT EXISTS (SELECT 1 FROM rejection_reviews v WHERE v.account_id = l.account_id
                                 AND v.deal_id = l.deal_id AND v.lost_at = l.lost_at AND v.ordinal = l.ordinal)) THEN
        RETURN m.ordinal;
    END IF;
    RETURN 0;
END
$$;

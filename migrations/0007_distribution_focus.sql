-- Lead distribution and focus mode.

-- One row per account that changed the defaults (weighted, no working hours, no cap on focus).
CREATE TABLE distribution_settings (
    account_id    bigint      PRIMARY KEY REFERENCES accounts (id),
    strategy      text        NOT NULL DEFAULT 'weighted' CHECK (strategy IN ('weighted', 'round_robin')),
    working_hours jsonb,
    max_in_focus  integer     CHECK (max_in_focus >= 0),
    updated_at    timestamptz NOT NULL
);

-- The smooth weighted round robin state: one current weight per manager and kind (lead, call). A missing
-- row is 0. Rows are only written under the account's distribution lock, so all instances agree.
CREATE TABLE distribution_cursors (
    account_id bigint NOT NULL,
    kind       text   NOT NULL CHECK (kind IN ('lead', 'call')),
    manager_id bigint NOT NULL,
    current    bigint NOT NULL,
    PRIMARY KEY (account_id, kind, manager_id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id)
);

-- Every choice, with why it was made.
CREATE TABLE assignments (
    account_id bigint      NOT NULL,
    id         bigserial,
    kind       text        NOT NULL CHECK (kind IN ('lead', 'call')),
    deal_id    bigint,
    manager_id bigint      NOT NULL,
    reason     text        NOT NULL CHECK (reason IN ('new_deal', 'pool_user', 'awaited', 'next')),
    strategy   text        NOT NULL,
    at         timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id)
);
CREATE INDEX assignments_by_deal ON assignments (account_id, deal_id) WHERE deal_id IS NOT NULL;
CREATE INDEX assignments_by_manager ON assignments (account_id, manager_id, id);

-- Deals that found no eligible manager: assigned oldest first as soon as someone is eligible.
CREATE TABLE distribution_waiting (
    account_id bigint      NOT NULL,
    deal_id    bigint      NOT NULL,
    reason     text        NOT NULL CHECK (reason IN ('new_deal', 'pool_user')),
    queued_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, deal_id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id)
);
CREATE INDEX distribution_waiting_by_age ON distribution_waiting (account_id, queued_at, deal_id);

CREATE TABLE focus_filters (
    account_id  bigint      NOT NULL,
    manager_id  bigint      NOT NULL,
    pipeline_id bigint      NOT NULL,
    stage_ids   bigint[]    NOT NULL,
    ord         text        NOT NULL CHECK (ord IN ('oldest', 'price_desc', 'overdue_first')),
    lim         integer     CHECK (lim > 0),
    max_minutes integer     NOT NULL CHECK (max_minutes > 0),
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, manager_id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    FOREIGN KEY (account_id, pipeline_id) REFERENCES pipelines (account_id, id)
);

-- A session keeps the filter it started with. ended_at IS NULL: active.
CREATE TABLE focus_sessions (
    account_id  bigint      NOT NULL,
    id          bigserial,
    manager_id  bigint      NOT NULL,
    pipeline_id bigint      NOT NULL,
    stage_ids   bigint[]    NOT NULL,
    ord         text        NOT NULL,
    lim         integer,
    started_at  timestamptz NOT NULL,
    ends_by     timestamptz NOT NULL,
    ended_at    timestamptz,
    end_reason  text        CHECK (end_reason IN ('queue_done', 'timeout', 'stopped')),
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- At most one active session per manager, whatever the races.
CREATE UNIQUE INDEX focus_sessions_one_active ON focus_sessions (account_id, manager_id) WHERE ended_at IS NULL;
CREATE INDEX focus_sessions_due ON focus_sessions (ends_by) WHERE ended_at IS NULL;
CREATE INDEX focus_sessions_by_manager ON focus_sessions (account_id, manager_id, id);

CREATE TABLE focus_items (
    account_id bigint      NOT NULL,
    session_id bigint      NOT NULL,
    deal_id    bigint      NOT NULL,
    position   integer     NOT NULL,
    done_at    timestamptz,
    PRIMARY KEY (account_id, session_id, deal_id),
    FOREIGN KEY (account_id, session_id) REFERENCES focus_sessions (account_id, id)
);
-- Activity on a deal looks up the open items for it.
CREATE INDEX focus_items_by_deal ON focus_items (account_id, deal_id);

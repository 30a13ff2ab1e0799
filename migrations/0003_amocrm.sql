-- The amoCRM connector: one integration per account, and the outbox of salesops' own writes to amoCRM.

CREATE TABLE amocrm_integrations (
    account_id      bigint      PRIMARY KEY REFERENCES accounts (id),
    subdomain       text        NOT NULL,
    base_url        text        NOT NULL,
    access_token    text        NOT NULL,          -- never returned, never logged
    pool_user_ids   bigint[]    NOT NULL DEFAULT '{}',
    connected_at    timestamptz NOT NULL DEFAULT now(),
    last_sync_at    timestamptz,
    next_sync_at    timestamptz NOT NULL DEFAULT now(),
    sync_error      text,
    next_request_at timestamptz NOT NULL DEFAULT now()  -- the rate limit: 7 requests a second
);

-- Losses of connected accounts wait for their reason, read through the API.
CREATE TABLE amocrm_loss_reads (
    account_id      bigint      NOT NULL REFERENCES accounts (id),
    deal_id         bigint      NOT NULL,
    lead_id         text        NOT NULL,
    lost_at         timestamptz NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    error           text,
    PRIMARY KEY (account_id, deal_id, lost_at)
);
CREATE INDEX amocrm_loss_reads_due ON amocrm_loss_reads (next_attempt_at) WHERE state = 'pending';

CREATE TABLE outbox (
    account_id      bigint      NOT NULL REFERENCES accounts (id),
    id              bigserial,
    kind            text        NOT NULL
                    CHECK (kind IN ('lead_responsible', 'lead_status', 'task_add', 'task_complete', 'note_add')),
    object_id       bigint      NOT NULL,          -- the salesops deal or task
    payload         jsonb       NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'dead', 'skipped')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    PRIMARY KEY (account_id, id)
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_by_account ON outbox (account_id, state);

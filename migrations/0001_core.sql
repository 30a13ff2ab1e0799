-- Core schema: accounts, keys, managers, pipelines and stages, loss reasons, deals with their history,
-- notes, tasks with their history, calls, idempotency keys. Every key starts with account_id so that the
-- schema can be distributed by account without change.

CREATE TABLE accounts (
    id                 bigserial PRIMARY KEY,
    name               text        NOT NULL,
    timezone           text        NOT NULL DEFAULT 'Europe/Moscow',
    webhook_token_hash bytea       NOT NULL UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE managers (
    account_id           bigint      NOT NULL REFERENCES accounts (id),
    id                   bigserial,
    external_id          text,
    name                 text        NOT NULL,
    email                text,
    role                 text        NOT NULL CHECK (role IN ('manager', 'head', 'admin')),
    active               boolean     NOT NULL DEFAULT true,
    distribution_enabled boolean     NOT NULL DEFAULT true,
    weight               integer     NOT NULL DEFAULT 1 CHECK (weight BETWEEN 1 AND 100),
    needs_setup          boolean     NOT NULL DEFAULT false,
    pool_user            boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id)
);

CREATE TABLE api_keys (
    account_id bigint      NOT NULL REFERENCES accounts (id),
    id         bigserial,
    key_hash   bytea       NOT NULL UNIQUE,
    role       text        NOT NULL CHECK (role IN ('admin', 'head', 'manager', 'readonly')),
    manager_id bigint,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    CHECK ((role = 'manager') = (manager_id IS NOT NULL))
);

CREATE TABLE pipelines (
    account_id  bigint      NOT NULL REFERENCES accounts (id),
    id          bigserial,
    external_id text,
    name        text        NOT NULL,
    needs_setup boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id)
);

CREATE TABLE stages (
    account_id  bigint  NOT NULL,
    id          bigserial,
    pipeline_id bigint  NOT NULL,
    external_id text,
    name        text    NOT NULL,
    kind        text    NOT NULL CHECK (kind IN ('open', 'won', 'lost')),
    position    integer NOT NULL,
    needs_setup boolean NOT NULL DEFAULT false,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, pipeline_id, external_id),
    FOREIGN KEY (account_id, pipeline_id) REFERENCES pipelines (account_id, id)
);
CREATE INDEX stages_by_pipeline ON stages (account_id, pipeline_id, position);

CREATE TABLE loss_reasons (
    account_id  bigint      NOT NULL REFERENCES accounts (id),
    id          bigserial,
    external_id text,
    name        text        NOT NULL,
    needs_setup boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id)
);

CREATE TABLE deals (
    account_id         bigint      NOT NULL,
    id                 bigserial,
    external_id        text,
    name               text        NOT NULL,
    price              bigint      NOT NULL CHECK (price >= 0),
    pipeline_id        bigint      NOT NULL,
    stage_id           bigint      NOT NULL,
    status             text        NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    manager_id         bigint,
    creator_manager_id bigint,
    loss_reason_id     bigint,
    created_at         timestamptz NOT NULL,
    closed_at          timestamptz,
    updated_at         timestamptz NOT NULL,
    deleted_at         timestamptz,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id),
    FOREIGN KEY (account_id, pipeline_id) REFERENCES pipelines (account_id, id),
    FOREIGN KEY (account_id, stage_id) REFERENCES stages (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    FOREIGN KEY (account_id, loss_reason_id) REFERENCES loss_reasons (account_id, id)
);
CREATE INDEX deals_by_manager ON deals (account_id, manager_id, id) WHERE deleted_at IS NULL;
CREATE INDEX deals_by_updated ON deals (account_id, updated_at);

-- One row per change of stage, status or responsible; price is the deal's price at that moment.
CREATE TABLE deal_history (
    account_id     bigint      NOT NULL,
    id             bigserial,
    deal_id        bigint      NOT NULL,
    from_stage_id  bigint,
    to_stage_id    bigint      NOT NULL,
    status         text        NOT NULL CHECK (status IN ('open', 'won', 'lost')),
    at             timestamptz NOT NULL,
    manager_id     bigint,
    loss_reason_id bigint,
    price          bigint      NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id)
);
CREATE INDEX deal_history_by_deal ON deal_history (account_id, deal_id, at, id);

CREATE TABLE notes (
    account_id  bigint      NOT NULL,
    id          bigserial,
    external_id text,
    deal_id     bigint      NOT NULL,
    text        text        NOT NULL,
    manager_id  bigint,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id)
);
CREATE INDEX notes_by_deal ON notes (account_id, deal_id, id);

CREATE TABLE tasks (
    account_id   bigint      NOT NULL,
    id           bigserial,
    external_id  text,
    deal_id      bigint      NOT NULL,
    manager_id   bigint,
    type         text        NOT NULL
                 CHECK (type IN ('call', 'meeting', 'follow_up', 'other', 'rejection_control')),
    text         text        NOT NULL DEFAULT '',
    due_at       timestamptz NOT NULL,
    completed_at timestamptz,
    deleted_at   timestamptz,
    result       text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id)
);
CREATE INDEX tasks_by_deal ON tasks (account_id, deal_id);
CREATE INDEX tasks_by_manager ON tasks (account_id, manager_id, id);

-- One row per change of a task's responsible or due time (the first at creation): "as of" rules read it.
CREATE TABLE task_history (
    account_id bigint      NOT NULL,
    id         bigserial,
    task_id    bigint      NOT NULL,
    at         timestamptz NOT NULL,
    manager_id bigint,
    due_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, task_id) REFERENCES tasks (account_id, id)
);
CREATE INDEX task_history_by_task ON task_history (account_id, task_id, at, id);

CREATE TABLE calls (
    account_id  bigint      NOT NULL,
    id          bigserial,
    external_id text,
    manager_id  bigint      NOT NULL,
    deal_id     bigint,
    direction   text        NOT NULL CHECK (direction IN ('in', 'out')),
    started_at  timestamptz NOT NULL,
    duration_s  integer     NOT NULL CHECK (duration_s >= 0),
    answered    boolean     NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, external_id),
    FOREIGN KEY (account_id, manager_id) REFERENCES managers (account_id, id),
    FOREIGN KEY (account_id, deal_id) REFERENCES deals (account_id, id)
);
CREATE INDEX calls_by_manager ON calls (account_id, manager_id, started_at);

CREATE TABLE idempotency_keys (
    account_id   bigint      NOT NULL,
    api_key_id   bigint      NOT NULL,
    method       text        NOT NULL,
    path         text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       integer,
    body         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, api_key_id, method, path, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

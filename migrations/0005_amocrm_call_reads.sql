-- Call notes whose duration and status were not in the webhook: the connector reads them through the API.
CREATE TABLE amocrm_call_reads (
    account_id      bigint      NOT NULL REFERENCES accounts (id),
    call_id         bigint      NOT NULL,
    lead_id         text        NOT NULL,
    note_id         text        NOT NULL,
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    error           text,
    PRIMARY KEY (account_id, call_id),
    FOREIGN KEY (account_id, call_id) REFERENCES calls (account_id, id)
);
CREATE INDEX amocrm_call_reads_due ON amocrm_call_reads (next_attempt_at) WHERE state = 'pending';

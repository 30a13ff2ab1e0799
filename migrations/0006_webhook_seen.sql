-- Duplicate webhook bodies (the same body within 10 minutes) are caught by a unique key instead of a read
-- before the insert: two copies arriving together cannot both pass, and bodies of one account are not
-- serialised behind one another. Rows older than 10 minutes are swept by the scheduler.
CREATE TABLE webhook_seen (
    account_id bigint      NOT NULL REFERENCES accounts (id),
    body_hash  bytea       NOT NULL,
    seen_at    timestamptz NOT NULL,
    PRIMARY KEY (account_id, body_hash)
);
CREATE INDEX webhook_seen_by_age ON webhook_seen (seen_at);

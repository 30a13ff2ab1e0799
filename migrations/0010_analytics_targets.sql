-- The head of sales' targets for the checklist: per figure a target, a direction and a warning band.
CREATE TABLE analytics_targets (
    account_id  bigint      NOT NULL REFERENCES accounts (id),
    figure      text        NOT NULL,
    target      numeric     NOT NULL,
    direction   text        NOT NULL CHECK (direction IN ('min', 'max')),
    warn_within numeric     NOT NULL CHECK (warn_within >= 0),
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, figure)
);

-- The appliers claim the oldest due webhook body, of any account or of one account, ORDER BY next_attempt_at,
-- id. Under a backlog of tens of thousands of bodies the planner could sort every pending body of the
-- account for each claim (seen: a temporary file per claim, about 20 bodies applied a second). These
-- indexes give both claims their order directly.
CREATE INDEX inbox_webhooks_due ON inbox (next_attempt_at, id) WHERE state = 'pending' AND source = 'amocrm';
CREATE INDEX inbox_webhooks_due_of ON inbox (account_id, next_attempt_at, id)
    WHERE state = 'pending' AND source = 'amocrm';

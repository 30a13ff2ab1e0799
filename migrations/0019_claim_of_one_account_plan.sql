-- The other half of 0015. The claim of one account's bodies (account_id = $1) also implies the predicate of
-- inbox_webhooks_due, the index of the claim of any account; under statistics that saw no pending body the
-- planner sometimes took it for that claim (one run in three of the stale-statistics test in
-- tests/http/test_webhooks.c), walking the due bodies of every account in order and filtering out the others:
-- 735 pages instead of 6 there, the whole backlog of a busy instance. inbox_webhooks_due adds
-- `next_attempt_at > '-infinity'` (true of every row: a due time is never -infinity). The claim of any account
-- and the receipt's reading of the appliers' lag state it; the claim of one account does not, so it can no
-- longer take this index.
DROP INDEX inbox_webhooks_due;
CREATE INDEX inbox_webhooks_due ON inbox (next_attempt_at, id)
    WHERE state = 'pending' AND source = 'amocrm' AND next_attempt_at > '-infinity';

-- Plans that stay right when the statistics are stale. After a burst of webhooks the last ANALYZE of inbox
-- may have seen no pending rows; every partial index over pending rows then looks empty to the planner, and
-- it chose them for the wrong queries: the wake-up lookup of waiting events (one per created deal) scanned
-- every pending body through inbox_due (0.3 s a lookup with 70,000 bodies waiting), and the claim of the
-- oldest body of any account sorted the whole backlog through inbox_webhooks_due_of. The appliers then
-- applied 5 bodies a second until autovacuum analyzed the table.
--
-- A partial index is a candidate only for queries whose conditions imply its predicate. inbox_open (for the
-- /metrics gauges and the expiry of waiting events) adds `received_at IS NOT NULL`, which only queries that
-- name received_at imply; inbox_webhooks_due_of adds `account_id IS NOT NULL`, which the claim of one account
-- implies (account_id = $1) and the claim of any account does not.
DROP INDEX inbox_due;
CREATE INDEX inbox_open ON inbox (received_at)
    WHERE state IN ('pending', 'waiting') AND received_at IS NOT NULL;
DROP INDEX inbox_webhooks_due_of;
CREATE INDEX inbox_webhooks_due_of ON inbox (account_id, next_attempt_at, id)
    WHERE state = 'pending' AND source = 'amocrm' AND account_id IS NOT NULL;

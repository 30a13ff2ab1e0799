-- pgbench pair of bench/run's deal_create scenario (POST /api/v1/deals without a manager, distributed): the
-- rows such a request writes, in one transaction: the deal, its creation history row, the move of the lead
-- cursor of the chosen manager and the assignment.
--   pgbench -M prepared -n -D account_id=.. -D pipeline_id=.. -D stage_id=.. -D manager_lo=.. -D manager_hi=..
\set m random(:manager_lo, :manager_hi)
BEGIN;
SELECT pg_advisory_xact_lock(:account_id, 1);
UPDATE distribution_cursors SET current = current + 1
WHERE account_id = :account_id AND kind = 'lead' AND manager_id = :m;
WITH d AS (
    INSERT INTO deals (account_id, name, price, pipeline_id, stage_id, status, manager_id, creator_manager_id,
                       created_at, updated_at)
    VALUES (:account_id, 'Bench lead', 1000, :pipeline_id, :stage_id, 'open', :m, :m, now(), now())
    RETURNING account_id, id, stage_id, manager_id, price, created_at
), h AS (
    INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id, price)
    SELECT account_id, id, NULL, stage_id, 'open', created_at, manager_id, price FROM d
)
INSERT INTO assignments (account_id, kind, deal_id, manager_id, reason, strategy, at)
SELECT account_id, 'lead', id, manager_id, 'new_deal', 'weighted', created_at FROM d;
COMMIT;

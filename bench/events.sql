-- pgbench pair of bench/run's events scenario (POST /api/v1/events, 100 deal.created events): what storing
-- and applying them writes at the least, in one transaction: 100 inbox rows, 100 deals and their 100
-- creation history rows.
--   pgbench -M prepared -n -D account_id=.. -D pipeline_id=.. -D stage_id=.. -D manager_id=.. -f bench/events.sql
\set n random(1, 2000000000)
BEGIN;
INSERT INTO inbox (account_id, source, event_id, event_type, event_at, body, state, applied_at)
SELECT :account_id, 'events', 'pg-' || :n || '-' || random() || '-' || g, 'deal.created', now(),
       '{"id":"pg-' || g || '","type":"deal.created","at":"2026-11-27T06:00:00Z","data":{"deal":"pg-' || g
       || '","name":"Bench event deal","price":1000,"pipeline":"bench","manager":"bench-m1"}}', 'applied', now()
FROM generate_series(1, 100) AS g;
WITH d AS (
    INSERT INTO deals (account_id, external_id, name, price, pipeline_id, stage_id, status, manager_id,
                       creator_manager_id, created_at, updated_at)
    SELECT :account_id, 'pg-' || :n || '-' || random() || '-' || g, 'Bench event deal', 1000, :pipeline_id,
           :stage_id, 'open', :manager_id, :manager_id, now(), now()
    FROM generate_series(1, 100) AS g
    RETURNING account_id, id, stage_id, manager_id, price, created_at
)
INSERT INTO deal_history (account_id, deal_id, from_stage_id, to_stage_id, status, at, manager_id, price)
SELECT account_id, id, NULL, stage_id, 'open', created_at, manager_id, price FROM d;
COMMIT;

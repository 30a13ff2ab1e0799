-- pgbench scenario: the statement GET /api/v1/deals/{id} runs (stmt_deal_get in src/store/deals.c), with a
-- uniformly random id of the benchmark account.
--   pgbench -M prepared -n -c 64 -j 2 -T 10 -D account_id=.. -D min_id=.. -D max_id=.. -f bench/deal_get.sql
\set id random(:min_id, :max_id)
SELECT id, external_id, name, price, pipeline_id, stage_id, status, manager_id, loss_reason_id,
       floor(extract(epoch from created_at))::int8, floor(extract(epoch from closed_at))::int8,
       floor(extract(epoch from updated_at))::int8
FROM deals WHERE account_id = :account_id AND id = :id AND deleted_at IS NULL;

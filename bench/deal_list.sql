-- pgbench pair of bench/run's list_deals: the first page (50) of one manager's deals, newest ids last, as a
-- query written for exactly that (the service runs its general list statement, stmt_deal_list).
--   pgbench -M prepared -n -D account_id=.. -D manager_lo=.. -D manager_hi=.. -f bench/deal_list.sql
\set m random(:manager_lo, :manager_hi)
SELECT id, external_id, name, price, pipeline_id, stage_id, status, manager_id, loss_reason_id,
       floor(extract(epoch from created_at))::int8, floor(extract(epoch from closed_at))::int8,
       floor(extract(epoch from updated_at))::int8
FROM deals WHERE account_id = :account_id AND manager_id = :m AND deleted_at IS NULL
ORDER BY id LIMIT 50;

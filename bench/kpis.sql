-- pgbench pair of bench/run's analytics scenarios: the service's own report SQL, run directly.
--   month report (GET /analytics/managers for a month):  -D weeks=0 -D start=EPOCH -D end=EPOCH
--   checklist of 8 weeks (9 weekly reports in one read: 8 and the week before, for the changes):
--   -D weeks=9 -D start=MONDAY
-- A pgbench "transaction" is one whole report; every row and column is returned, as the service reads them
-- (an aggregate over the rows would let the planner skip the figures).
-- the service's connections run without JIT (src/store/db.c)
SET jit = off;
\if :weeks = 0
SELECT * FROM salesops_kpis(:account_id, to_timestamp(:start), to_timestamp(:end), to_timestamp(:end));
\else
SELECT k.* FROM salesops_kpis_multi(:account_id,
    ARRAY(SELECT to_timestamp(:start + w * 604800) FROM generate_series(0, :weeks - 1) AS w ORDER BY w),
    ARRAY(SELECT to_timestamp(:start + (w + 1) * 604800) FROM generate_series(0, :weeks - 1) AS w ORDER BY w),
    ARRAY(SELECT to_timestamp(:start + (w + 1) * 604800 - 1) FROM generate_series(0, :weeks - 1) AS w ORDER BY w)) AS k;
\endif

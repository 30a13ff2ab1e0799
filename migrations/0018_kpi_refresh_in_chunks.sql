-- The rollup's refresh at commit in chunks of at most 64 entities. salesops_kpi_refresh plans a call of up to 64
-- entities once (a generic plan) and a larger one each time; one call for the 100 deals of an /events batch took
-- 12-14 ms, two calls of 50 for the same number 8 ms (docs/BENCHMARKS.md). A transaction that touched more
-- than 1,000 entities of an account (an import, a rebuild) still refreshes them in one call, on the bulk path
-- that call takes. The chunks follow the order (kind, id), the order in which salesops_kpi_refresh takes the
-- entities' locks, so the locks of a transaction are still taken in one global order.
CREATE OR REPLACE FUNCTION salesops_kpi_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    IF current_setting('salesops.kpi_flushed', true) = pg_current_xact_id()::text THEN
        RETURN NULL;
    END IF;
    PERFORM set_config('salesops.kpi_flushed', pg_current_xact_id()::text, true);
    FOR r IN
        WITH x AS (DELETE FROM kpi_dirty WHERE txid = pg_current_xact_id()
                   RETURNING account_id, ent_kind, ent_id),
        placed AS (
            SELECT x.account_id, x.ent_kind, x.ent_id,
                   CASE WHEN count(*) OVER (PARTITION BY x.account_id) > 1000 THEN 0
                        ELSE (row_number() OVER (PARTITION BY x.account_id ORDER BY x.ent_kind, x.ent_id) - 1) / 64
                   END AS chunk
            FROM x)
        SELECT p.account_id, coalesce(array_agg(p.ent_id) FILTER (WHERE p.ent_kind = 0), '{}') AS deals,
               coalesce(array_agg(p.ent_id) FILTER (WHERE p.ent_kind = 1), '{}') AS calls
        FROM placed p GROUP BY p.account_id, p.chunk ORDER BY p.account_id, p.chunk
    LOOP
        PERFORM salesops_kpi_refresh(r.account_id, r.deals, r.calls);
    END LOOP;
    RETURN NULL;
END
$$;

-- Statistics that keep up with a burst. The plans of the apply path are cached, many of them generic, and
-- they are only as good as the statistics they were made from. When the tables of a new account's first burst
-- were last analyzed nearly empty, applying webhook bodies ran 5 times slower (429 bodies a second against
-- 2,224 once analyzed: the rollup refresh took 18 ms a transaction instead of 1.8, a deal insert 0.64 ms
-- instead of 0.1) until autovacuum got to the tables, which it visits once a minute per database at best.
--
-- salesops_analyze_grown() analyzes every table of the schema that has changed by more rows than it had at
-- its last analyze (and by more than 1,000): so a table is analyzed as it doubles, a handful of times while
-- it grows from empty, and almost never once it is large. One caller at a time (the others return at once);
-- a table salesops does not own is skipped by ANALYZE with a warning. Returns the tables analyzed.
CREATE FUNCTION salesops_analyze_grown() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
    n int := 0;
BEGIN
    IF NOT pg_try_advisory_xact_lock(1263553603) THEN
        RETURN 0;
    END IF;
    FOR t IN
        SELECT s.relid::regclass FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
        WHERE s.schemaname = ANY (current_schemas(false))
          AND s.n_mod_since_analyze > greatest(1000, c.reltuples)
        ORDER BY s.relid
    LOOP
        EXECUTE format('ANALYZE %s', t);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

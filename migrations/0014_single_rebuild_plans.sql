-- One deal's or one task's rebuild, as every live write does it (an event, a REST change, a webhook), with
-- generic plans. salesops_rebuild_deals/_tasks take an array; with the default plan_cache_mode each call
-- planned its statements afresh for its array (about 0.6 ms of a 1-ms rebuild of one deal). A generic plan
-- of `deal_id = ANY ($2)` is the index lookup a short array needs. The bulk caller (the import, one call for
-- every deal of the file) keeps calling the array functions with custom plans.
CREATE FUNCTION salesops_rebuild_deal(p_account bigint, p_deal bigint, p_from timestamptz)
RETURNS void LANGUAGE sql SET plan_cache_mode = force_generic_plan
AS $$ SELECT salesops_rebuild_deals(p_account, ARRAY[p_deal], p_from) $$;

CREATE FUNCTION salesops_rebuild_task(p_account bigint, p_task bigint)
RETURNS void LANGUAGE sql SET plan_cache_mode = force_generic_plan
AS $$ SELECT salesops_rebuild_tasks(p_account, ARRAY[p_task]) $$;

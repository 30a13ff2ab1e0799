-- Small partial indexes over the rare states that /metrics counts across all accounts, so that a scrape
-- reads a few index pages instead of whole tables (pending and waiting rows already have theirs).
CREATE INDEX inbox_failed ON inbox (received_at) WHERE state = 'failed';
CREATE INDEX outbox_dead ON outbox (created_at) WHERE state = 'dead';
CREATE INDEX amocrm_loss_reads_dead ON amocrm_loss_reads (account_id) WHERE state = 'dead';
CREATE INDEX amocrm_call_reads_dead ON amocrm_call_reads (account_id) WHERE state = 'dead';
CREATE INDEX rejection_reviews_pending ON rejection_reviews (account_id, id) WHERE state = 'pending';

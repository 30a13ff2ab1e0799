/* The amoCRM connector's tables: integrations, loss reads, the outbox, and the sync upserts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_internal.h"

#define INTEGRATION_COLUMNS                                                                                  \
    "account_id, subdomain, base_url, pool_user_ids::text, " EPOCH("connected_at") ", " EPOCH(               \
        "last_sync_at") ", sync_error"

static void parse_id_array(struct arena *a, const char *text, struct so_integration *out)
{
    out->pool_count = db_parse_id_array(a, text, &out->pool_user_ids);
}

DB_STMT(
    stmt_integration_put,
    "INSERT INTO amocrm_integrations (account_id, subdomain, base_url, access_token, pool_user_ids)"
    " VALUES ($1, $2, $3, $4, $5::int8[]) ON CONFLICT (account_id) DO UPDATE SET subdomain = "
    "EXCLUDED.subdomain,"
    " base_url = EXCLUDED.base_url, access_token = EXCLUDED.access_token,"
    " pool_user_ids = EXCLUDED.pool_user_ids, connected_at = now(), next_sync_at = now(), sync_error = NULL");
DB_STMT(stmt_integration_get,
        "SELECT " INTEGRATION_COLUMNS " FROM amocrm_integrations WHERE account_id = $1");
DB_STMT(stmt_integration_conn, "SELECT " INTEGRATION_COLUMNS ", access_token FROM amocrm_integrations"
                               " WHERE account_id = $1");
DB_STMT(
    stmt_integration_claim_sync,
    "UPDATE amocrm_integrations SET next_sync_at = now() + interval '1 hour' WHERE account_id = ("
    " SELECT account_id FROM amocrm_integrations WHERE next_sync_at <= now() ORDER BY next_sync_at LIMIT 1"
    " FOR UPDATE SKIP LOCKED) RETURNING " INTEGRATION_COLUMNS ", access_token");
DB_STMT(stmt_integration_synced,
        "UPDATE amocrm_integrations SET sync_error = $2,"
        " last_sync_at = CASE WHEN $2::text IS NULL THEN now() ELSE last_sync_at END,"
        " next_sync_at = CASE WHEN $2::text IS NULL THEN next_sync_at ELSE now() + interval '1 minute' END"
        " WHERE account_id = $1");
/* 150 ms a request: at most 7 in any second, across every instance (143 ms would let an 8th in at the edge)
 */
DB_STMT(stmt_integration_slot,
        "UPDATE amocrm_integrations SET next_request_at = greatest(next_request_at, clock_timestamp())"
        " + interval '150 milliseconds' WHERE account_id = $1"
        " RETURNING greatest(0, floor(extract(epoch from (next_request_at - interval '150 milliseconds'"
        " - clock_timestamp())) * 1000))::int8");

static void fill_integration(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_integration *x = item;
    x->account_id = db_i64(r, row, 0);
    x->subdomain = db_str(a, r, row, 1);
    x->base_url = db_str(a, r, row, 2);
    parse_id_array(a, PQgetvalue(r, row, 3), x);
    x->connected_at = db_i64(r, row, 4);
    x->last_sync_at = db_i64(r, row, 5);
    x->sync_error = db_str(a, r, row, 6);
    x->access_token = PQnfields(r) > 7 ? db_str(a, r, row, 7) : NULL;
}

enum db_rc store_integration_put(struct db *db, int64_t account_id, const char *subdomain,
                                 const char *base_url, const char *access_token, const int64_t *pool_user_ids,
                                 int pool_count)
{
    struct arena a = {0};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, subdomain);
    dbp_str(&p, base_url);
    dbp_str(&p, access_token);
    dbp_str(&p, db_id_array(&a, pool_user_ids, pool_count));
    enum db_rc rc = db_run(db, &stmt_integration_put, &p);
    arena_release(&a);
    return rc;
}

static enum db_rc integration_read(struct db *db, struct db_stmt *stmt, struct arena *a, int64_t account_id,
                                   struct so_integration *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_one(db, a, stmt, &p, fill_integration, out);
}

enum db_rc store_integration_get(struct db *db, struct arena *a, int64_t account_id,
                                 struct so_integration *out)
{
    return integration_read(db, &stmt_integration_get, a, account_id, out);
}

enum db_rc store_integration_conn(struct db *db, struct arena *a, int64_t account_id,
                                  struct so_integration *out)
{
    return integration_read(db, &stmt_integration_conn, a, account_id, out);
}

enum db_rc store_integration_claim_sync(struct db *db, struct arena *a, struct so_integration *out)
{
    return db_one(db, a, &stmt_integration_claim_sync, NULL, fill_integration, out);
}

enum db_rc store_integration_synced(struct db *db, int64_t account_id, const char *error)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, error);
    return db_run(db, &stmt_integration_synced, &p);
}

enum db_rc store_integration_slot(struct db *db, int64_t account_id, int64_t *wait_ms)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_returning_id(db, &stmt_integration_slot, &p, wait_ms);
}

DB_STMT(stmt_sync_pipeline,
        "INSERT INTO pipelines (account_id, name, external_id, needs_setup, crm, created_at)"
        " VALUES ($1, $3, $2, false, 'amocrm', now()) ON CONFLICT (account_id, external_id) DO UPDATE"
        " SET name = EXCLUDED.name, needs_setup = false, crm = 'amocrm' RETURNING id");
DB_STMT(stmt_sync_stage,
        "INSERT INTO stages (account_id, pipeline_id, external_id, name, kind, position, needs_setup)"
        " VALUES ($1, $2, $3, $4, $5, $6, false) ON CONFLICT (account_id, pipeline_id, external_id) DO UPDATE"
        " SET name = EXCLUDED.name, kind = EXCLUDED.kind, position = EXCLUDED.position, needs_setup = false");
DB_STMT(stmt_sync_loss_reason,
        "INSERT INTO loss_reasons (account_id, external_id, name, needs_setup, created_at)"
        " VALUES ($1, $2, $3, false, now()) ON CONFLICT (account_id, external_id) DO UPDATE"
        " SET name = EXCLUDED.name, needs_setup = false");
DB_STMT(
    stmt_sync_user,
    "INSERT INTO managers (account_id, external_id, name, email, role, active, distribution_enabled, weight,"
    " needs_setup, created_at, updated_at) VALUES ($1, $2, $3, nullif($4, ''),"
    " CASE WHEN $6 THEN 'admin' ELSE 'manager' END, $5, false, 1, false, to_timestamp($7), to_timestamp($7))"
    " ON CONFLICT (account_id, external_id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email,"
    " active = EXCLUDED.active, needs_setup = false, updated_at = EXCLUDED.updated_at");
DB_STMT(stmt_sync_pool_users,
        "UPDATE managers SET pool_user = (external_id = ANY ($2::text[])) WHERE account_id = $1"
        " AND pool_user IS DISTINCT FROM (external_id = ANY ($2::text[]))");

enum db_rc store_sync_pipeline(struct db *db, int64_t account_id, const char *external_id, const char *name,
                               int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    dbp_str(&p, name);
    return db_returning_id(db, &stmt_sync_pipeline, &p, id);
}

enum db_rc store_sync_stage(struct db *db, int64_t account_id, int64_t pipeline_id, const char *external_id,
                            const char *name, enum stage_kind kind, int position)
{
    static const char *const kinds[] = {"open", "won", "lost"};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    dbp_str(&p, external_id);
    dbp_str(&p, name);
    dbp_str(&p, kinds[kind]);
    dbp_int(&p, position);
    return db_run(db, &stmt_sync_stage, &p);
}

enum db_rc store_sync_loss_reason(struct db *db, int64_t account_id, const char *external_id,
                                  const char *name)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    dbp_str(&p, name);
    return db_run(db, &stmt_sync_loss_reason, &p);
}

enum db_rc store_sync_user(struct db *db, int64_t account_id, const char *external_id, const char *name,
                           const char *email, bool active, bool admin, int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    dbp_str(&p, name);
    dbp_str(&p, email ? email : "");
    dbp_bool(&p, active);
    dbp_bool(&p, admin);
    dbp_int(&p, now);
    return db_run(db, &stmt_sync_user, &p);
}

enum db_rc store_sync_pool_users(struct db *db, int64_t account_id, const int64_t *ids, int count)
{
    struct arena a = {0};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, db_id_array(&a, ids, count));
    enum db_rc rc = db_run(db, &stmt_sync_pool_users, &p);
    arena_release(&a);
    return rc;
}

DB_STMT(stmt_loss_read_insert, "INSERT INTO amocrm_loss_reads (account_id, deal_id, lead_id, lost_at)"
                               " VALUES ($1, $2, $3, to_timestamp($4)) ON CONFLICT DO NOTHING");
DB_STMT(
    stmt_loss_read_claim,
    "UPDATE amocrm_loss_reads SET next_attempt_at = now() + interval '1 minute' WHERE (account_id, deal_id,"
    " lost_at) = (SELECT account_id, deal_id, lost_at FROM amocrm_loss_reads WHERE state = 'pending'"
    " AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING account_id, deal_id, lead_id, " EPOCH("lost_at") ", attempts");
DB_STMT(stmt_loss_read_finish,
        "UPDATE amocrm_loss_reads SET state = $4, attempts = attempts + 1, error = $6,"
        " next_attempt_at = now() + interval '1 second' * $5 WHERE account_id = $1 AND deal_id = $2"
        " AND lost_at = to_timestamp($3)");

enum db_rc store_loss_read_insert(struct db *db, int64_t account_id, int64_t deal_id, const char *lead_id,
                                  int64_t lost_at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_str(&p, lead_id);
    dbp_int(&p, lost_at);
    return db_run(db, &stmt_loss_read_insert, &p);
}

static void fill_loss_read(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_loss_read *x = item;
    x->account_id = db_i64(r, row, 0);
    x->deal_id = db_i64(r, row, 1);
    x->lead_id = db_str(a, r, row, 2);
    x->lost_at = db_i64(r, row, 3);
    x->attempts = db_int(r, row, 4);
}

enum db_rc store_loss_read_claim(struct db *db, struct arena *a, struct so_loss_read *out)
{
    return db_one(db, a, &stmt_loss_read_claim, NULL, fill_loss_read, out);
}

enum db_rc store_loss_read_finish(struct db *db, const struct so_loss_read *r, const char *state,
                                  int backoff_s, const char *error)
{
    struct db_params p = {0};
    dbp_int(&p, r->account_id);
    dbp_int(&p, r->deal_id);
    dbp_int(&p, r->lost_at);
    dbp_str(&p, state);
    dbp_int(&p, backoff_s);
    dbp_str(&p, error);
    return db_run(db, &stmt_loss_read_finish, &p);
}

DB_STMT(stmt_call_read_insert, "INSERT INTO amocrm_call_reads (account_id, call_id, lead_id, note_id)"
                               " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING");
DB_STMT(
    stmt_call_read_claim,
    "UPDATE amocrm_call_reads SET next_attempt_at = now() + interval '1 minute' WHERE (account_id, call_id) "
    "= ("
    " SELECT account_id, call_id FROM amocrm_call_reads WHERE state = 'pending' AND next_attempt_at <= now()"
    " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " RETURNING account_id, call_id, lead_id, note_id, attempts");
DB_STMT(stmt_call_read_finish,
        "UPDATE amocrm_call_reads SET state = $3, attempts = attempts + 1, error = $5,"
        " next_attempt_at = now() + interval '1 second' * $4 WHERE account_id = $1 AND call_id = $2");
DB_STMT(stmt_call_set_details,
        "UPDATE calls SET duration_s = $3, answered = $4 WHERE account_id = $1 AND id = $2");

enum db_rc store_call_read_insert(struct db *db, int64_t account_id, int64_t call_id, const char *lead_id,
                                  const char *note_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, call_id);
    dbp_str(&p, lead_id);
    dbp_str(&p, note_id);
    return db_run(db, &stmt_call_read_insert, &p);
}

static void fill_call_read(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_call_read *x = item;
    x->account_id = db_i64(r, row, 0);
    x->call_id = db_i64(r, row, 1);
    x->lead_id = db_str(a, r, row, 2);
    x->note_id = db_str(a, r, row, 3);
    x->attempts = db_int(r, row, 4);
}

enum db_rc store_call_read_claim(struct db *db, struct arena *a, struct so_call_read *out)
{
    return db_one(db, a, &stmt_call_read_claim, NULL, fill_call_read, out);
}

enum db_rc store_call_read_finish(struct db *db, const struct so_call_read *r, const char *state,
                                  int backoff_s, const char *error)
{
    struct db_params p = {0};
    dbp_int(&p, r->account_id);
    dbp_int(&p, r->call_id);
    dbp_str(&p, state);
    dbp_int(&p, backoff_s);
    dbp_str(&p, error);
    return db_run(db, &stmt_call_read_finish, &p);
}

enum db_rc store_call_set_details(struct db *db, int64_t account_id, int64_t call_id, int duration_s,
                                  bool answered)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, call_id);
    dbp_int(&p, duration_s);
    dbp_bool(&p, answered);
    return db_run(db, &stmt_call_set_details, &p);
}

DB_STMT(stmt_outbox_insert,
        "INSERT INTO outbox (account_id, kind, object_id, payload, state, last_error)"
        " VALUES ($1, $2, $3, $4::jsonb, CASE WHEN $5::text IS NULL THEN 'pending' ELSE 'skipped' END, $5)");
DB_STMT(stmt_outbox_claim,
        "UPDATE outbox SET next_attempt_at = now() + interval '1 minute' WHERE (account_id, id) IN ("
        " SELECT account_id, id FROM outbox WHERE state = 'pending' AND next_attempt_at <= now()"
        " ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " RETURNING account_id, id, kind, object_id, payload::text, attempts");
DB_STMT(stmt_outbox_finish,
        "UPDATE outbox SET state = $3, attempts = attempts + 1, last_error = $5,"
        " next_attempt_at = now() + interval '1 second' * $4,"
        " delivered_at = CASE WHEN $3 = 'delivered' THEN now() END WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_outbox_counts,
        "SELECT count(*) FILTER (WHERE state = 'pending'), count(*) FILTER (WHERE state = 'dead')"
        " FROM outbox WHERE account_id = $1");

enum db_rc store_outbox_insert(struct db *db, int64_t account_id, const char *kind, int64_t object_id,
                               const char *payload, const char *skipped_why)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, kind);
    dbp_int(&p, object_id);
    dbp_str(&p, payload);
    dbp_str(&p, skipped_why);
    return db_run(db, &stmt_outbox_insert, &p);
}

static void fill_outbox(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_outbox_row *x = item;
    x->account_id = db_i64(r, row, 0);
    x->id = db_i64(r, row, 1);
    x->kind = db_str(a, r, row, 2);
    x->object_id = db_i64(r, row, 3);
    x->payload = db_str(a, r, row, 4);
    x->attempts = db_int(r, row, 5);
}

enum db_rc store_outbox_claim(struct db *db, struct arena *a, int max, struct so_outbox_row **rows,
                              int *count)
{
    struct db_params p = {0};
    dbp_int(&p, max);
    return db_list(db, a, &stmt_outbox_claim, &p, sizeof **rows, fill_outbox, (void **)rows, count);
}

enum db_rc store_outbox_finish(struct db *db, int64_t account_id, int64_t id, const char *state,
                               int backoff_s, const char *error)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, state);
    dbp_int(&p, backoff_s);
    dbp_str(&p, error);
    return db_run(db, &stmt_outbox_finish, &p);
}

enum db_rc store_outbox_counts(struct db *db, int64_t account_id, int64_t *pending, int64_t *dead)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_outbox_counts, &p, &r);
    if (rc != DB_OK) return rc;
    *pending = db_i64(r, 0, 0);
    *dead = db_i64(r, 0, 1);
    PQclear(r);
    return DB_OK;
}

DB_STMT(stmt_task_set_external, "UPDATE tasks SET external_id = $3 WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_note_set_external, "UPDATE notes SET external_id = $3 WHERE account_id = $1 AND id = $2");
DB_STMT(
    stmt_task_match_inflight,
    "SELECT t.id FROM tasks t JOIN outbox o ON o.account_id = t.account_id AND o.object_id = t.id"
    " AND o.kind = 'task_add' WHERE t.account_id = $1 AND t.deal_id = $2 AND t.external_id IS NULL"
    " AND t.text = $3 AND o.created_at > now() - interval '10 minutes'"
    " AND (o.payload ->> 'task_type_id')::int = CASE $4 WHEN 'call' THEN 1 WHEN 'meeting' THEN 2 ELSE 0 END"
    " ORDER BY t.id LIMIT 1");
DB_STMT(stmt_note_match_inflight,
        "SELECT n.id FROM notes n JOIN outbox o ON o.account_id = n.account_id AND o.object_id = n.id"
        " AND o.kind = 'note_add' WHERE n.account_id = $1 AND n.deal_id = $2 AND n.external_id IS NULL"
        " AND n.text = $3 AND o.created_at > now() - interval '10 minutes' ORDER BY n.id LIMIT 1");

static enum db_rc set_external(struct db *db, struct db_stmt *stmt, int64_t account_id, int64_t id,
                               const char *external_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, external_id);
    return db_run(db, stmt, &p);
}

enum db_rc store_task_set_external(struct db *db, int64_t account_id, int64_t task_id,
                                   const char *external_id)
{
    return set_external(db, &stmt_task_set_external, account_id, task_id, external_id);
}

enum db_rc store_note_set_external(struct db *db, int64_t account_id, int64_t note_id,
                                   const char *external_id)
{
    return set_external(db, &stmt_note_set_external, account_id, note_id, external_id);
}

static enum db_rc match_inflight(struct db *db, struct db_stmt *stmt, int64_t account_id, int64_t deal_id,
                                 const char *text, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_str(&p, text ? text : "");
    return db_returning_id(db, stmt, &p, id);
}

enum db_rc store_task_match_inflight(struct db *db, int64_t account_id, int64_t deal_id, const char *type,
                                     const char *text, int64_t *task_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_str(&p, text ? text : "");
    dbp_str(&p, type);
    return db_returning_id(db, &stmt_task_match_inflight, &p, task_id);
}

enum db_rc store_note_match_inflight(struct db *db, int64_t account_id, int64_t deal_id, const char *text,
                                     int64_t *note_id)
{
    return match_inflight(db, &stmt_note_match_inflight, account_id, deal_id, text, note_id);
}

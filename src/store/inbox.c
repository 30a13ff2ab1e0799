/* The inbox: every event and webhook body, stored before it is acknowledged. */
#include <stdio.h>
#include <string.h>
#include "db_internal.h"
#include "salesops/buf.h"

#define INBOX_COLUMNS                                                                                        \
    "id, account_id, source, parent_id, event_id, event_type, " EPOCH(                                       \
        "event_at") ", body, state,"                                                                         \
                    " waits_for_kind, waits_for_ext, attempts, error, " EPOCH("received_at") ", " EPOCH(     \
                        "applied_at")

/* Many event rows in one statement, in the order given, each stored as applied (the outcome of its apply changes
 * that when it is another). The ids are drawn first, in that order, so that the rows a conflict skipped (a
 * duplicate event id, stored before or earlier in the same batch) are known: they have no row. */
DB_STMT(stmt_inbox_insert_many,
        "WITH input AS MATERIALIZED (SELECT t.*, nextval('inbox_id_seq') AS id"
        "  FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::int8[], $7::text[])"
        "  WITH ORDINALITY AS t(source, parent_id, event_id, event_type, event_at, body, ord)),"
        " stored AS (INSERT INTO inbox (account_id, id, source, parent_id, event_id, event_type, event_at, body,"
        "  state, applied_at)"
        "  SELECT $1, id, source, parent_id, event_id, event_type, to_timestamp(event_at), body, 'applied', now()"
        "  FROM input ORDER BY ord ON CONFLICT DO NOTHING RETURNING id)"
        " SELECT i.id, s.id IS NOT NULL FROM input i LEFT JOIN stored s USING (id) ORDER BY i.ord");
DB_STMT(stmt_inbox_set_state,
        "UPDATE inbox SET state = $3, waits_for_kind = $4, waits_for_ext = $5, error = $6,"
        " applied_at = CASE WHEN $3 = 'applied' THEN now() END,"
        " attempts = attempts + CASE WHEN $3 = 'failed' THEN 1 ELSE 0 END"
        " WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_inbox_waiting_for,
        "SELECT " INBOX_COLUMNS
        " FROM inbox WHERE account_id = $1 AND state = 'waiting' AND waits_for_kind = $2"
        " AND waits_for_ext = $3 ORDER BY event_at, id FOR UPDATE SKIP LOCKED");
DB_STMT(stmt_inbox_list, "SELECT " INBOX_COLUMNS " FROM inbox WHERE account_id = $1 AND id > $2"
                         " AND ($4::text IS NULL OR state = $4) ORDER BY id LIMIT $3");
DB_STMT(stmt_inbox_get, "SELECT " INBOX_COLUMNS " FROM inbox WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_inbox_get_locked, "SELECT " INBOX_COLUMNS " FROM inbox WHERE account_id = $1 AND id = $2 FOR UPDATE");
DB_STMT(stmt_inbox_retry, "UPDATE inbox SET state = 'pending', next_attempt_at = now(), error = NULL,"
                          " attempts = 0, lease_until = NULL WHERE account_id = $1 AND id = $2"
                          " AND state IN ('failed', 'waiting') RETURNING id");

DB_STMT(stmt_lock_account_ingest, "SELECT pg_advisory_xact_lock(1936682867, $1::int4)");
DB_STMT(stmt_lock_account_ingest_shared, "SELECT pg_advisory_xact_lock_shared(1936682867, $1::int4)");
DB_STMT(stmt_lock_catalog, "SELECT pg_advisory_xact_lock(1668571500, $1::int4)");
/* one bigint key each, in the array's order (a function scan keeps it) */
DB_STMT(stmt_lock_ingest_keys, "SELECT count(pg_advisory_xact_lock(k)) FROM unnest($1::int8[]) AS k");

static enum db_rc lock_account(struct db *db, struct db_stmt *stmt, int64_t account_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_run(db, stmt, &p);
}

enum db_rc store_lock_account_ingest(struct db *db, int64_t account_id)
{
    return lock_account(db, &stmt_lock_account_ingest, account_id);
}

enum db_rc store_lock_account_ingest_shared(struct db *db, int64_t account_id)
{
    return lock_account(db, &stmt_lock_account_ingest_shared, account_id);
}

enum db_rc store_lock_catalog(struct db *db, int64_t account_id)
{
    return lock_account(db, &stmt_lock_catalog, account_id);
}

enum db_rc store_lock_ingest_keys(struct db *db, struct arena *a, const int64_t *keys, int count)
{
    if (count == 0) return DB_OK;
    struct db_params p = {0};
    char *list = db_id_array(a, keys, count);
    if (list == NULL) return DB_ERROR;
    dbp_str(&p, list);
    return db_run(db, &stmt_lock_ingest_keys, &p);
}

enum db_rc store_tx_commit_async(struct db *db)
{
    return db_simple(db, "SET LOCAL synchronous_commit = off");
}

enum db_rc store_savepoint(struct db *db)
{
    return db_simple(db, "SAVEPOINT event");
}
enum db_rc store_savepoint_rollback(struct db *db)
{
    return db_simple(db, "ROLLBACK TO SAVEPOINT event");
}
enum db_rc store_savepoint_release(struct db *db)
{
    return db_simple(db, "RELEASE SAVEPOINT event");
}

enum db_rc store_inbox_insert_many(struct db *db, int64_t account_id, const struct so_inbox_row *rows, int count,
                                   int64_t *ids)
{
    if (count == 0) return DB_OK;
    enum { COLUMNS = 6 };
    struct so_buf col[COLUMNS] = {0};
    for (int i = 0; i < count; i++) {
        const struct so_inbox_row *r = &rows[i];
        db_array_row(col, COLUMNS, i);
        db_array_put_text(&col[0], r->source, strlen(r->source));
        db_array_put_id(&col[1], r->parent_id);
        db_array_put_text(&col[2], r->event_id, r->event_id ? strlen(r->event_id) : 0);
        db_array_put_text(&col[3], r->event_type, r->event_type ? strlen(r->event_type) : 0);
        db_array_put_id(&col[4], r->event_at);
        db_array_put_text(&col[5], r->body, strlen(r->body));
    }
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *res;
    enum db_rc rc = db_array_exec(db, &stmt_inbox_insert_many, col, COLUMNS, &p, count, &res);
    for (int i = 0; rc == DB_OK && i < count; i++)
        ids[i] = PQgetvalue(res, i, 1)[0] == 't' ? db_i64(res, i, 0) : 0;
    PQclear(res);
    return rc;
}

enum db_rc store_inbox_set_state(struct db *db, int64_t account_id, int64_t id, const char *state,
                                 const char *waits_kind, const char *waits_for, const char *error)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, state);
    dbp_str(&p, waits_kind);
    dbp_str(&p, waits_for);
    dbp_str(&p, error);
    return db_run(db, &stmt_inbox_set_state, &p);
}

static void fill_inbox(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_inbox_row *x = item;
    x->id = db_i64(r, row, 0);
    x->account_id = db_i64(r, row, 1);
    x->source = db_str(a, r, row, 2);
    x->parent_id = db_i64(r, row, 3);
    x->event_id = db_str(a, r, row, 4);
    x->event_type = db_str(a, r, row, 5);
    x->event_at = db_i64(r, row, 6);
    x->body = db_str(a, r, row, 7);
    x->state = db_str(a, r, row, 8);
    x->waits_kind = db_str(a, r, row, 9);
    x->waits_for = db_str(a, r, row, 10);
    x->attempts = db_int(r, row, 11);
    x->error = db_str(a, r, row, 12);
    x->received_at = db_i64(r, row, 13);
    x->applied_at = db_i64(r, row, 14);
}

enum db_rc store_inbox_waiting_for(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                                   const char *external_id, struct so_inbox_row **rows, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, kind);
    dbp_str(&p, external_id);
    return db_list(db, a, &stmt_inbox_waiting_for, &p, sizeof **rows, fill_inbox, (void **)rows, count);
}

enum db_rc store_inbox_list(struct db *db, struct arena *a, int64_t account_id, const char *state,
                            const struct so_page *page, struct so_inbox_row **rows, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_str(&p, state);
    return db_list(db, a, &stmt_inbox_list, &p, sizeof **rows, fill_inbox, (void **)rows, count);
}

static enum db_rc inbox_get(struct db *db, struct db_stmt *stmt, struct arena *a, int64_t account_id, int64_t id,
                            struct so_inbox_row *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, stmt, &p, fill_inbox, out);
}

enum db_rc store_inbox_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                           struct so_inbox_row *out)
{
    return inbox_get(db, &stmt_inbox_get, a, account_id, id, out);
}

enum db_rc store_inbox_get_locked(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                  struct so_inbox_row *out)
{
    return inbox_get(db, &stmt_inbox_get_locked, a, account_id, id, out);
}

enum db_rc store_inbox_retry(struct db *db, int64_t account_id, int64_t id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    int64_t back;
    return db_returning_id(db, &stmt_inbox_retry, &p, &back);
}

DB_STMT(stmt_inbox_claim_webhook,
        "SELECT " INBOX_COLUMNS " FROM inbox WHERE state = 'pending' AND source = 'amocrm'"
        " AND next_attempt_at <= now() AND next_attempt_at > '-infinity'" /* inbox_webhooks_due (0019) */
        " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED");
DB_STMT(stmt_inbox_claim_webhooks_of,
        "SELECT " INBOX_COLUMNS
        " FROM inbox WHERE state = 'pending' AND source = 'amocrm' AND account_id = $1"
        " AND next_attempt_at <= now() AND id <> $3 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED");
DB_STMT(stmt_inbox_any_waiting,
        "SELECT EXISTS (SELECT 1 FROM inbox WHERE account_id = $1 AND state = 'waiting')::int");
DB_STMT(stmt_inbox_set_applied,
        "UPDATE inbox SET state = 'applied', waits_for_kind = NULL, waits_for_ext = NULL, error = NULL,"
        " applied_at = now() WHERE account_id = $1 AND id = ANY ($2::int8[])");
DB_STMT(stmt_inbox_backoff,
        "UPDATE inbox SET attempts = attempts + 1, error = $3,"
        " state = CASE WHEN attempts + 1 >= $4 THEN 'failed' ELSE state END,"
        " next_attempt_at = now() + least(interval '1 second' * power(2, attempts), interval '10 minutes')"
        " WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_inbox_expire_waiting,
        "UPDATE inbox SET state = CASE waits_for_kind WHEN 'task' THEN 'ignored' ELSE 'failed' END,"
        " error = 'waited 24 hours for ' || waits_for_kind || ' ' || waits_for_ext"
        " WHERE state = 'waiting' AND received_at < now() - interval '24 hours' RETURNING id");

DB_STMT(stmt_webhook_seen_sweep, "DELETE FROM webhook_seen WHERE seen_at < now() - interval '10 minutes'");

enum db_rc store_webhook_seen_sweep(struct db *db)
{
    return db_run(db, &stmt_webhook_seen_sweep, NULL);
}

enum db_rc store_inbox_claim_webhooks_of(struct db *db, struct arena *a, int64_t account_id, int64_t claimed_id,
                                         int limit, struct so_inbox_row **rows, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, limit);
    dbp_int(&p, claimed_id);
    return db_list(db, a, &stmt_inbox_claim_webhooks_of, &p, sizeof **rows, fill_inbox, (void **)rows, count);
}

enum db_rc store_inbox_any_waiting(struct db *db, int64_t account_id, bool *any)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    int64_t n = 0;
    enum db_rc rc = db_one(db, NULL, &stmt_inbox_any_waiting, &p, db_fill_i64, &n);
    *any = n != 0;
    return rc;
}

enum db_rc store_inbox_set_applied(struct db *db, struct arena *a, int64_t account_id, const int64_t *ids,
                                   int count)
{
    if (count == 0) return DB_OK;
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, db_id_array(a, ids, count));
    return db_run(db, &stmt_inbox_set_applied, &p);
}

enum db_rc store_inbox_claim_webhook(struct db *db, struct arena *a, struct so_inbox_row *out)
{
    return db_one(db, a, &stmt_inbox_claim_webhook, NULL, fill_inbox, out);
}

enum db_rc store_inbox_backoff(struct db *db, int64_t account_id, int64_t id, const char *error,
                               int max_attempts)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, error);
    dbp_int(&p, max_attempts);
    return db_run(db, &stmt_inbox_backoff, &p);
}

enum db_rc store_inbox_expire_waiting(struct db *db, int *expired)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_inbox_expire_waiting, NULL, &r);
    *expired = rc == DB_OK ? PQntuples(r) : 0;
    PQclear(r);
    return rc == DB_NONE ? DB_OK : rc;
}

/* A waiting row i whose deal or task exists now. */
#define WAITED_FOR_EXISTS                                                                                    \
    " i.state = 'waiting' AND ("                                                                             \
    " (i.waits_for_kind = 'deal' AND EXISTS (SELECT 1 FROM deals d WHERE d.account_id = i.account_id"        \
    "  AND d.external_id = i.waits_for_ext))"                                                               \
    " OR (i.waits_for_kind = 'task' AND EXISTS (SELECT 1 FROM tasks t WHERE t.account_id = i.account_id"     \
    "  AND t.external_id = i.waits_for_ext)))"

DB_STMT(stmt_inbox_woken, "SELECT " INBOX_COLUMNS " FROM inbox i WHERE i.account_id = $1 AND" WAITED_FOR_EXISTS
                          " ORDER BY i.event_at, i.id");

enum db_rc store_inbox_woken(struct db *db, struct arena *a, int64_t account_id, struct so_inbox_row **rows,
                             int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_list(db, a, &stmt_inbox_woken, &p, sizeof **rows, fill_inbox, (void **)rows, count);
}

/* the same test, for every account (partial index inbox_waiting_for, one probe per waiting row) */
DB_STMT(stmt_inbox_accounts_woken, "SELECT DISTINCT i.account_id FROM inbox i WHERE" WAITED_FOR_EXISTS " LIMIT $1");

enum db_rc store_inbox_accounts_woken(struct db *db, struct arena *a, int limit, int64_t **accounts, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, limit);
    return db_list(db, a, &stmt_inbox_accounts_woken, &p, sizeof **accounts, db_fill_i64, (void **)accounts,
                   count);
}

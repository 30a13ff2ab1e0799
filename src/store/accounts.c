/* Accounts, API keys, and external ids. */
#include <string.h>
#include "db_internal.h"
#include "salesops/crypto.h"

DB_STMT(stmt_account_insert,
        "INSERT INTO accounts (name, timezone, webhook_token_hash) VALUES ($1, $2, $3::bytea) RETURNING id");
DB_STMT(stmt_account_get, "SELECT id, name, timezone, " EPOCH("created_at") " FROM accounts WHERE id = $1");
DB_STMT(stmt_account_update,
        "UPDATE accounts SET name = coalesce($2, name), timezone = coalesce($3, timezone),"
        " updated_at = now() WHERE id = $1");
DB_STMT(stmt_timezone_exists, "SELECT 1 FROM pg_timezone_names WHERE name = $1");

enum db_rc store_account_insert(struct db *db, const char *name, const char *timezone,
                                const uint8_t *webhook_token_hash, int64_t *id)
{
    struct db_params p = {0};
    dbp_str(&p, name);
    dbp_str(&p, timezone);
    dbp_bytes_hex(&p, webhook_token_hash, SO_SHA256_LEN);
    return db_returning_id(db, &stmt_account_insert, &p, id);
}

static void fill_account(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_account *o = item;
    o->id = db_i64(r, row, 0);
    o->name = db_str(a, r, row, 1);
    o->timezone = db_str(a, r, row, 2);
    o->created_at = db_i64(r, row, 3);
}

enum db_rc store_account_get(struct db *db, struct arena *a, int64_t account_id, struct so_account *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_one(db, a, &stmt_account_get, &p, fill_account, out);
}

enum db_rc store_account_update(struct db *db, int64_t account_id, const char *name, const char *timezone)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, name);
    dbp_str(&p, timezone);
    return db_run(db, &stmt_account_update, &p);
}

enum db_rc store_timezone_exists(struct db *db, const char *timezone)
{
    struct db_params p = {0};
    dbp_str(&p, timezone);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_timezone_exists, &p, &r);
    PQclear(r);
    return rc;
}

DB_STMT(stmt_api_key_insert,
        "INSERT INTO api_keys (account_id, key_hash, role, manager_id, name, created_at)"
        " VALUES ($1, $2::bytea, $3, $4, $5, to_timestamp($6)) RETURNING id, " EPOCH("created_at"));
DB_STMT(stmt_api_key_lookup, "SELECT k.account_id, k.id, k.role, k.manager_id FROM api_keys k"
                             " WHERE k.key_hash = $1::bytea AND k.deleted_at IS NULL");
DB_STMT(stmt_api_key_list,
        "SELECT id, role, manager_id, name, " EPOCH(
            "created_at") " FROM api_keys"
                          " WHERE account_id = $1 AND deleted_at IS NULL AND id > $2 ORDER BY id LIMIT $3");
DB_STMT(stmt_api_key_delete, "UPDATE api_keys SET deleted_at = to_timestamp($3)"
                             " WHERE account_id = $1 AND id = $2 AND deleted_at IS NULL RETURNING id");

enum db_rc store_api_key_insert(struct db *db, int64_t account_id, const uint8_t *key_hash, enum so_role role,
                                int64_t manager_id, const char *name, int64_t now, struct so_api_key *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_bytes_hex(&p, key_hash, SO_SHA256_LEN);
    dbp_str(&p, so_role_name(role));
    dbp_id(&p, manager_id);
    dbp_str(&p, name);
    dbp_int(&p, now);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_api_key_insert, &p, &r);
    if (rc != DB_OK) return rc;
    out->id = db_i64(r, 0, 0);
    out->created_at = db_i64(r, 0, 1);
    out->role = role;
    out->manager_id = manager_id;
    out->name = name;
    PQclear(r);
    return DB_OK;
}

enum db_rc store_api_key_lookup(struct db *db, const uint8_t *key_hash, struct so_auth *out)
{
    struct db_params p = {0};
    dbp_bytes_hex(&p, key_hash, SO_SHA256_LEN);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_api_key_lookup, &p, &r);
    if (rc != DB_OK) return rc;
    out->account_id = db_i64(r, 0, 0);
    out->key_id = db_i64(r, 0, 1);
    so_role_parse(PQgetvalue(r, 0, 2), &out->role);
    out->manager_id = db_i64(r, 0, 3);
    PQclear(r);
    return DB_OK;
}

static void fill_api_key(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_api_key *k = item;
    k->id = db_i64(r, row, 0);
    so_role_parse(PQgetvalue(r, row, 1), &k->role);
    k->manager_id = db_i64(r, row, 2);
    k->name = db_str(a, r, row, 3);
    k->created_at = db_i64(r, row, 4);
}

enum db_rc store_api_key_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                              struct so_api_key **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    return db_list(db, a, &stmt_api_key_list, &p, sizeof **items, fill_api_key, (void **)items, count);
}

enum db_rc store_api_key_delete(struct db *db, int64_t account_id, int64_t id, int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_int(&p, now);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_api_key_delete, &p, &r);
    PQclear(r);
    return rc;
}

DB_STMT(stmt_manager_by_ext, "SELECT id FROM managers WHERE account_id = $1 AND external_id = $2");
DB_STMT(stmt_deal_by_ext,
        "SELECT id FROM deals WHERE account_id = $1 AND external_id = $2 AND deleted_at IS NULL");
DB_STMT(stmt_task_by_ext, "SELECT id FROM tasks WHERE account_id = $1 AND external_id = $2");
DB_STMT(stmt_call_by_ext, "SELECT id FROM calls WHERE account_id = $1 AND external_id = $2");
DB_STMT(stmt_pipeline_by_ext, "SELECT id FROM pipelines WHERE account_id = $1 AND external_id = $2");
DB_STMT(stmt_loss_reason_by_ext, "SELECT id FROM loss_reasons WHERE account_id = $1 AND external_id = $2");

enum db_rc store_id_by_external(struct db *db, int64_t account_id, enum so_kind kind, const char *external_id,
                                int64_t *id)
{
    struct db_stmt *stmt = NULL;
    switch (kind) {
    case KIND_MANAGER:
        stmt = &stmt_manager_by_ext;
        break;
    case KIND_DEAL:
        stmt = &stmt_deal_by_ext;
        break;
    case KIND_TASK:
        stmt = &stmt_task_by_ext;
        break;
    case KIND_CALL:
        stmt = &stmt_call_by_ext;
        break;
    case KIND_PIPELINE:
        stmt = &stmt_pipeline_by_ext;
        break;
    case KIND_LOSS_REASON:
        stmt = &stmt_loss_reason_by_ext;
        break;
    }
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, stmt, &p, &r);
    if (rc == DB_OK) {
        *id = db_i64(r, 0, 0);
        PQclear(r);
    }
    return rc;
}

#include "db_internal.h"

#define MANAGER_COLUMNS                                                                                      \
    "id, external_id, name, email, role, active, distribution_enabled, weight, needs_setup, "                \
    "pool_user, " EPOCH("created_at") ", EXISTS (SELECT 1 FROM focus_sessions f WHERE f.account_id = "      \
    "managers.account_id AND f.manager_id = managers.id AND f.ended_at IS NULL)"

DB_STMT(
    stmt_manager_insert,
    "INSERT INTO managers (account_id, external_id, name, email, role, active, distribution_enabled, weight,"
    " needs_setup, pool_user, created_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, to_timestamp($11), to_timestamp($11)) RETURNING id");
DB_STMT(stmt_manager_get, "SELECT " MANAGER_COLUMNS " FROM managers WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_manager_list, "SELECT " MANAGER_COLUMNS " FROM managers WHERE account_id = $1 AND id > $2"
                           " ORDER BY id LIMIT $3");
DB_STMT(stmt_manager_update,
        "UPDATE managers SET external_id = $3, name = $4, email = $5, role = $6, active = $7,"
        " distribution_enabled = $8, weight = $9, needs_setup = $10, pool_user = $11, updated_at = "
        "to_timestamp($12)"
        " WHERE account_id = $1 AND id = $2");

static void manager_params(struct db_params *p, const struct so_manager *m)
{
    dbp_str(p, m->external_id);
    dbp_str(p, m->name);
    dbp_str(p, m->email);
    dbp_str(p, m->role);
    dbp_bool(p, m->active);
    dbp_bool(p, m->distribution_enabled);
    dbp_int(p, m->weight);
    dbp_bool(p, m->needs_setup);
    dbp_bool(p, m->pool_user);
}

enum db_rc store_manager_insert(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    manager_params(&p, m);
    dbp_int(&p, now);
    return db_returning_id(db, &stmt_manager_insert, &p, id);
}

static void fill_manager(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_manager *m = item;
    m->id = db_i64(r, row, 0);
    m->external_id = db_str(a, r, row, 1);
    m->name = db_str(a, r, row, 2);
    m->email = db_str(a, r, row, 3);
    m->role = db_str(a, r, row, 4);
    m->active = db_bool(r, row, 5);
    m->distribution_enabled = db_bool(r, row, 6);
    m->weight = db_int(r, row, 7);
    m->needs_setup = db_bool(r, row, 8);
    m->pool_user = db_bool(r, row, 9);
    m->created_at = db_i64(r, row, 10);
    m->in_focus = db_bool(r, row, 11);
}

enum db_rc store_manager_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                             struct so_manager *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, &stmt_manager_get, &p, fill_manager, out);
}

enum db_rc store_manager_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                              struct so_manager **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    return db_list(db, a, &stmt_manager_list, &p, sizeof **items, fill_manager, (void **)items, count);
}

enum db_rc store_manager_update(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, m->id);
    manager_params(&p, m);
    dbp_int(&p, now);
    return db_run(db, &stmt_manager_update, &p);
}

/* Tasks and their history of responsible and due time. Tasks of deleted deals are left out. */
#include "db_internal.h"

#define TASK_COLUMNS                                                                                         \
    "t.id, t.external_id, t.deal_id, t.manager_id, t.type, t.text, " EPOCH("t.due_at") ", " EPOCH(           \
        "t.completed_at") ", " EPOCH("t.deleted_at") ", t.result, " EPOCH("t.created_at")
#define LIVE_DEAL " JOIN deals d ON d.account_id = t.account_id AND d.id = t.deal_id AND d.deleted_at IS NULL"

DB_STMT(stmt_task_insert,
        "INSERT INTO tasks (account_id, external_id, deal_id, manager_id, type, text, due_at, completed_at,"
        " deleted_at, result, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7),"
        " to_timestamp($8), to_timestamp($9), $10, to_timestamp($11), to_timestamp($11)) RETURNING id");
DB_STMT(stmt_task_get,
        "SELECT " TASK_COLUMNS " FROM tasks t" LIVE_DEAL " WHERE t.account_id = $1 AND t.id = $2");
DB_STMT(stmt_task_get_any_locked, "SELECT " TASK_COLUMNS " FROM tasks t WHERE t.account_id = $1"
                                  " AND t.external_id = $2 FOR UPDATE OF t");
DB_STMT(stmt_task_get_locked, "SELECT " TASK_COLUMNS " FROM tasks t" LIVE_DEAL
                              " WHERE t.account_id = $1 AND t.id = $2 FOR UPDATE OF t");
DB_STMT(
    stmt_task_list,
    "SELECT " TASK_COLUMNS " FROM tasks t" LIVE_DEAL " WHERE t.account_id = $1 AND t.id > $2"
    " AND ($4::int8 IS NULL OR t.manager_id = $4) AND ($5::int8 IS NULL OR t.deal_id = $5)"
    " AND ($6::text IS NULL OR t.type = $6)"
    " AND CASE $7::text"
    "  WHEN 'open' THEN t.completed_at IS NULL AND t.deleted_at IS NULL"
    "  WHEN 'overdue' THEN t.completed_at IS NULL AND t.deleted_at IS NULL AND t.due_at < to_timestamp($8)"
    "  WHEN 'done' THEN t.completed_at IS NOT NULL AND t.deleted_at IS NULL"
    "  WHEN 'deleted' THEN t.deleted_at IS NOT NULL"
    "  ELSE true END"
    " ORDER BY t.id LIMIT $3");
DB_STMT(stmt_task_update, "UPDATE tasks SET manager_id = $3, type = $4, text = $5, due_at = to_timestamp($6),"
                          " completed_at = to_timestamp($7), deleted_at = to_timestamp($8), result = $9,"
                          " updated_at = to_timestamp($10) WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_task_history_insert,
        "INSERT INTO task_history (account_id, task_id, at, creation, set_manager, manager_id, due_at)"
        " VALUES ($1, $2, to_timestamp($3), $4, $5, $6, to_timestamp($7))");
DB_STMT(stmt_task_rebuild, "SELECT salesops_rebuild_task($1, $2)");
DB_STMT(stmt_task_set_text,
        "UPDATE tasks SET text = $3, text_set_at = to_timestamp($4),"
        " updated_at = greatest(updated_at, to_timestamp($4)) WHERE account_id = $1 AND id = $2"
        " AND (text_set_at IS NULL OR text_set_at <= to_timestamp($4))");
DB_STMT(stmt_task_set_completed,
        "UPDATE tasks SET completed_at = to_timestamp($4), result = coalesce($3, result),"
        " completion_set_at = to_timestamp($4), updated_at = greatest(updated_at, to_timestamp($4))"
        " WHERE account_id = $1 AND id = $2 AND (completion_set_at IS NULL OR completion_set_at <= "
        "to_timestamp($4))");
DB_STMT(stmt_task_set_deleted,
        "UPDATE tasks SET deleted_at = to_timestamp($3), deleted_set_at = to_timestamp($3),"
        " updated_at = greatest(updated_at, to_timestamp($3)) WHERE account_id = $1 AND id = $2"
        " AND (deleted_set_at IS NULL OR deleted_set_at <= to_timestamp($3))");

enum db_rc store_task_insert(struct db *db, int64_t account_id, const struct so_task *t, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, t->external_id);
    dbp_int(&p, t->deal_id);
    dbp_id(&p, t->manager_id);
    dbp_str(&p, t->type);
    dbp_str(&p, t->text ? t->text : "");
    dbp_int(&p, t->due_at);
    dbp_id(&p, t->completed_at);
    dbp_id(&p, t->deleted_at);
    dbp_str(&p, t->result);
    dbp_int(&p, t->created_at);
    return db_returning_id(db, &stmt_task_insert, &p, id);
}

static void fill_task(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_task *t = item;
    t->id = db_i64(r, row, 0);
    t->external_id = db_str(a, r, row, 1);
    t->deal_id = db_i64(r, row, 2);
    t->manager_id = db_i64(r, row, 3);
    t->type = db_str(a, r, row, 4);
    t->text = db_str(a, r, row, 5);
    t->due_at = db_i64(r, row, 6);
    t->completed_at = db_i64(r, row, 7);
    t->deleted_at = db_i64(r, row, 8);
    t->result = db_str(a, r, row, 9);
    t->created_at = db_i64(r, row, 10);
}

enum db_rc store_task_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                          struct so_task *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, for_update ? &stmt_task_get_locked : &stmt_task_get, &p, fill_task, out);
}

enum db_rc store_task_list(struct db *db, struct arena *a, int64_t account_id, const struct so_task_filter *f,
                           const struct so_page *page, struct so_task **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_id(&p, f->manager_id);
    dbp_id(&p, f->deal_id);
    dbp_str(&p, f->type);
    dbp_str(&p, f->state);
    dbp_int(&p, f->now);
    return db_list(db, a, &stmt_task_list, &p, sizeof **items, fill_task, (void **)items, count);
}

enum db_rc store_task_update(struct db *db, int64_t account_id, const struct so_task *t, int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, t->id);
    dbp_id(&p, t->manager_id);
    dbp_str(&p, t->type);
    dbp_str(&p, t->text ? t->text : "");
    dbp_int(&p, t->due_at);
    dbp_id(&p, t->completed_at);
    dbp_id(&p, t->deleted_at);
    dbp_str(&p, t->result);
    dbp_int(&p, now);
    return db_run(db, &stmt_task_update, &p);
}

enum db_rc store_task_history_insert(struct db *db, int64_t account_id, int64_t task_id, int64_t at,
                                     bool creation, bool set_manager, int64_t manager_id, int64_t due_at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, task_id);
    dbp_int(&p, at);
    dbp_bool(&p, creation);
    dbp_bool(&p, set_manager);
    dbp_id(&p, set_manager ? manager_id : 0);
    dbp_id(&p, due_at);
    return db_run(db, &stmt_task_history_insert, &p);
}

enum db_rc store_task_rebuild(struct db *db, int64_t account_id, int64_t task_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, task_id);
    return db_run(db, &stmt_task_rebuild, &p);
}

static enum db_rc task_set(struct db *db, struct db_stmt *stmt, int64_t account_id, int64_t task_id,
                           const char *text, bool with_text, int64_t at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, task_id);
    if (with_text) dbp_str(&p, text);
    dbp_int(&p, at);
    return db_run(db, stmt, &p);
}

enum db_rc store_task_set_text(struct db *db, int64_t account_id, int64_t task_id, const char *text,
                               int64_t at)
{
    return task_set(db, &stmt_task_set_text, account_id, task_id, text ? text : "", true, at);
}

enum db_rc store_task_set_completed(struct db *db, int64_t account_id, int64_t task_id, const char *result,
                                    int64_t at)
{
    return task_set(db, &stmt_task_set_completed, account_id, task_id, result, true, at);
}

enum db_rc store_task_set_deleted(struct db *db, int64_t account_id, int64_t task_id, int64_t at)
{
    return task_set(db, &stmt_task_set_deleted, account_id, task_id, NULL, false, at);
}

enum db_rc store_task_get_any_by_external(struct db *db, struct arena *a, int64_t account_id,
                                          const char *external_id, struct so_task *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, external_id);
    return db_one(db, a, &stmt_task_get_any_locked, &p, fill_task, out);
}

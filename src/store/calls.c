#include "db_internal.h"

#define CALL_COLUMNS                                                                                         \
    "id, external_id, manager_id, deal_id, direction, " EPOCH(                                               \
        "started_at") ", duration_s, answered, " EPOCH("created_at")

DB_STMT(stmt_call_insert,
        "INSERT INTO calls (account_id, external_id, manager_id, deal_id, direction, started_at, duration_s,"
        " answered, created_at) VALUES ($1, $2, $3, $4, $5, to_timestamp($6), $7, $8, to_timestamp($9))"
        " RETURNING id");
DB_STMT(stmt_call_upsert,
        "INSERT INTO calls (account_id, external_id, manager_id, deal_id, direction, started_at, duration_s,"
        " answered, created_at) VALUES ($1, $2, $3, $4, $5, to_timestamp($6), $7, $8, to_timestamp($9))"
        " ON CONFLICT (account_id, external_id) DO UPDATE SET manager_id = EXCLUDED.manager_id,"
        " deal_id = EXCLUDED.deal_id, direction = EXCLUDED.direction, started_at = EXCLUDED.started_at,"
        " duration_s = EXCLUDED.duration_s, answered = EXCLUDED.answered RETURNING id");
DB_STMT(stmt_call_get, "SELECT " CALL_COLUMNS " FROM calls WHERE account_id = $1 AND id = $2");
DB_STMT(
    stmt_call_list,
    "SELECT " CALL_COLUMNS " FROM calls WHERE account_id = $1 AND id > $2"
    " AND ($4::int8 IS NULL OR manager_id = $4) AND ($5::int8 IS NULL OR deal_id = $5) ORDER BY id LIMIT $3");

static enum db_rc call_write(struct db *db, struct db_stmt *stmt, int64_t account_id, const struct so_call *c,
                             int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, c->external_id);
    dbp_int(&p, c->manager_id);
    dbp_id(&p, c->deal_id);
    dbp_str(&p, c->direction);
    dbp_int(&p, c->started_at);
    dbp_int(&p, c->duration_s);
    dbp_bool(&p, c->answered);
    dbp_int(&p, c->created_at);
    return db_returning_id(db, stmt, &p, id);
}

enum db_rc store_call_insert(struct db *db, int64_t account_id, const struct so_call *c, int64_t *id)
{
    return call_write(db, &stmt_call_insert, account_id, c, id);
}

enum db_rc store_call_upsert(struct db *db, int64_t account_id, const struct so_call *c, int64_t *id)
{
    return call_write(db, &stmt_call_upsert, account_id, c, id);
}

static void fill_call(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_call *c = item;
    c->id = db_i64(r, row, 0);
    c->external_id = db_str(a, r, row, 1);
    c->manager_id = db_i64(r, row, 2);
    c->deal_id = db_i64(r, row, 3);
    c->direction = db_str(a, r, row, 4);
    c->started_at = db_i64(r, row, 5);
    c->duration_s = db_int(r, row, 6);
    c->answered = db_bool(r, row, 7);
    c->created_at = db_i64(r, row, 8);
}

enum db_rc store_call_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, struct so_call *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, &stmt_call_get, &p, fill_call, out);
}

enum db_rc store_call_list(struct db *db, struct arena *a, int64_t account_id, const struct so_call_filter *f,
                           const struct so_page *page, struct so_call **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_id(&p, f->manager_id);
    dbp_id(&p, f->deal_id);
    return db_list(db, a, &stmt_call_list, &p, sizeof **items, fill_call, (void **)items, count);
}

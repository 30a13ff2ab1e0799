/* Lead distribution's tables: settings, round robin cursors, the assignment log and the waiting deals. */
#include <string.h>
#include "db_internal.h"

#define LOCAL_NOW "(to_timestamp($2) AT TIME ZONE a.timezone)"

DB_STMT(stmt_dist_settings_get,
        "SELECT coalesce(s.strategy, 'weighted'), s.working_hours::text, coalesce(s.max_in_focus, -1),"
        " extract(isodow FROM " LOCAL_NOW ")::int - 1,"
        " (extract(hour FROM " LOCAL_NOW ") * 60 + extract(minute FROM " LOCAL_NOW "))::int"
        " FROM accounts a LEFT JOIN distribution_settings s ON s.account_id = a.id WHERE a.id = $1");
DB_STMT(stmt_dist_settings_put,
        "INSERT INTO distribution_settings (account_id, strategy, working_hours, max_in_focus, updated_at)"
        " VALUES ($1, $2, $3::jsonb, $4, to_timestamp($5)) ON CONFLICT (account_id) DO UPDATE SET"
        " strategy = EXCLUDED.strategy, working_hours = EXCLUDED.working_hours,"
        " max_in_focus = EXCLUDED.max_in_focus, updated_at = EXCLUDED.updated_at");
/* 'dstl' and 'dstc': one lock per account and kind */
DB_STMT(stmt_dist_lock, "SELECT pg_advisory_xact_lock(CASE WHEN $2 = 'call' THEN 1685287011 ELSE 1685287020 END,"
                        " $1::int4)");
DB_STMT(stmt_dist_candidates,
        "SELECT m.id, m.name, m.role, m.active, m.distribution_enabled, m.pool_user, m.weight,"
        " EXISTS (SELECT 1 FROM focus_sessions f WHERE f.account_id = m.account_id AND f.manager_id = m.id"
        " AND f.ended_at IS NULL), coalesce(c.current, 0)"
        " FROM managers m LEFT JOIN distribution_cursors c"
        " ON c.account_id = m.account_id AND c.kind = $2 AND c.manager_id = m.id"
        " WHERE m.account_id = $1 ORDER BY m.id");
DB_STMT(stmt_dist_cursor_save,
        "INSERT INTO distribution_cursors (account_id, kind, manager_id, current)"
        " SELECT $1, $2, m, c FROM unnest($3::int8[], $4::int8[]) AS u (m, c)"
        " ON CONFLICT (account_id, kind, manager_id) DO UPDATE SET current = EXCLUDED.current");
DB_STMT(stmt_assignment_insert,
        "INSERT INTO assignments (account_id, kind, deal_id, manager_id, reason, strategy, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7)) RETURNING id");
DB_STMT(stmt_assignment_list,
        "SELECT id, kind, deal_id, manager_id, reason, strategy, " EPOCH("at") " FROM assignments"
        " WHERE account_id = $1 AND id > $2 AND ($4::text IS NULL OR kind = $4)"
        " AND ($5::int8 IS NULL OR manager_id = $5) AND ($6::int8 IS NULL OR deal_id = $6)"
        " ORDER BY id LIMIT $3");
DB_STMT(stmt_dist_wait,
        "INSERT INTO distribution_waiting (account_id, deal_id, reason, queued_at)"
        " VALUES ($1, $2, $3, to_timestamp($4)) ON CONFLICT DO NOTHING");
DB_STMT(stmt_dist_waiting_accounts,
        "SELECT DISTINCT account_id FROM distribution_waiting ORDER BY account_id LIMIT $1");
DB_STMT(stmt_dist_waiting_list,
        "SELECT deal_id, reason FROM distribution_waiting WHERE account_id = $1"
        " ORDER BY queued_at, deal_id LIMIT $2");
DB_STMT(stmt_dist_waiting_done, "DELETE FROM distribution_waiting WHERE account_id = $1 AND deal_id = $2");
DB_STMT(stmt_dist_waiting_count, "SELECT count(*) FROM distribution_waiting WHERE account_id = $1");
DB_STMT(stmt_deal_assign_new,
        "WITH d AS (UPDATE deals SET manager_id = $3, creator_manager_id = $3"
        "  WHERE account_id = $1 AND id = $2 RETURNING id),"
        " c AS (UPDATE deal_changes SET set_manager = true, manager_id = $3"
        "  WHERE account_id = $1 AND deal_id = $2 AND creation RETURNING id),"
        " h AS (UPDATE deal_history SET manager_id = $3 WHERE account_id = $1 AND deal_id = $2 RETURNING id)"
        " SELECT (SELECT count(*) FROM d) + (SELECT count(*) FROM c)");
DB_STMT(stmt_deal_set_creator, "UPDATE deals SET creator_manager_id = $3 WHERE account_id = $1 AND id = $2");

enum db_rc store_dist_settings_get(struct db *db, struct arena *a, int64_t account_id, int64_t now,
                                   struct so_dist_settings *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, now);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_dist_settings_get, &p, &r);
    if (rc != DB_OK) return rc;
    out->strategy = db_str(a, r, 0, 0);
    out->working_hours = db_str(a, r, 0, 1);
    out->max_in_focus = db_int(r, 0, 2);
    out->local_dow = db_int(r, 0, 3);
    out->local_minute = db_int(r, 0, 4);
    PQclear(r);
    return DB_OK;
}

enum db_rc store_dist_settings_put(struct db *db, int64_t account_id, const struct so_dist_settings *s,
                                   int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, s->strategy);
    dbp_str(&p, s->working_hours);
    if (s->max_in_focus < 0)
        dbp_str(&p, NULL);
    else
        dbp_int(&p, s->max_in_focus);
    dbp_int(&p, now);
    return db_run(db, &stmt_dist_settings_put, &p);
}

enum db_rc store_dist_lock(struct db *db, int64_t account_id, const char *kind)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, kind);
    return db_run(db, &stmt_dist_lock, &p);
}

static void fill_candidate(struct arena *a, const PGresult *r, int row, void *item)
{
    struct dist_candidate *c = item;
    c->manager_id = db_i64(r, row, 0);
    c->name = db_str(a, r, row, 1);
    c->role = db_str(a, r, row, 2);
    c->active = db_bool(r, row, 3);
    c->enabled = db_bool(r, row, 4);
    c->pool_user = db_bool(r, row, 5);
    c->weight = db_int(r, row, 6);
    c->in_focus = db_bool(r, row, 7);
    c->current = db_i64(r, row, 8);
}

enum db_rc store_dist_candidates(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                                 struct dist_candidate **out, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, kind);
    return db_list(db, a, &stmt_dist_candidates, &p, sizeof **out, fill_candidate, (void **)out, count);
}

enum db_rc store_dist_cursor_save(struct db *db, int64_t account_id, const char *kind,
                                  const struct dist_candidate *c, const bool *changed, int count)
{
    struct arena a = {0};
    int64_t *ids = arena_alloc(&a, sizeof *ids * ((size_t)count + 1));
    int64_t *cur = arena_alloc(&a, sizeof *cur * ((size_t)count + 1));
    enum db_rc rc = DB_ERROR;
    if (ids != NULL && cur != NULL) {
        int n = 0;
        for (int i = 0; i < count; i++) {
            if (!changed[i]) continue;
            ids[n] = c[i].manager_id;
            cur[n++] = c[i].current;
        }
        struct db_params p = {0};
        dbp_int(&p, account_id);
        dbp_str(&p, kind);
        dbp_str(&p, db_id_array(&a, ids, n));
        dbp_str(&p, db_id_array(&a, cur, n));
        rc = db_run(db, &stmt_dist_cursor_save, &p);
    }
    arena_release(&a);
    return rc;
}

enum db_rc store_assignment_insert(struct db *db, int64_t account_id, const struct so_assignment *as,
                                   int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, as->kind);
    dbp_id(&p, as->deal_id);
    dbp_int(&p, as->manager_id);
    dbp_str(&p, as->reason);
    dbp_str(&p, as->strategy);
    dbp_int(&p, as->at);
    return db_returning_id(db, &stmt_assignment_insert, &p, id);
}

static void fill_assignment(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_assignment *x = item;
    x->id = db_i64(r, row, 0);
    x->kind = db_str(a, r, row, 1);
    x->deal_id = db_i64(r, row, 2);
    x->manager_id = db_i64(r, row, 3);
    x->reason = db_str(a, r, row, 4);
    x->strategy = db_str(a, r, row, 5);
    x->at = db_i64(r, row, 6);
}

enum db_rc store_assignment_list(struct db *db, struct arena *a, int64_t account_id,
                                 const struct so_assignment_filter *f, const struct so_page *page,
                                 struct so_assignment **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_str(&p, f->kind);
    dbp_id(&p, f->manager_id);
    dbp_id(&p, f->deal_id);
    return db_list(db, a, &stmt_assignment_list, &p, sizeof **items, fill_assignment, (void **)items, count);
}

enum db_rc store_dist_wait(struct db *db, int64_t account_id, int64_t deal_id, const char *reason,
                           int64_t queued_at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_str(&p, reason);
    dbp_int(&p, queued_at);
    return db_run(db, &stmt_dist_wait, &p);
}

enum db_rc store_dist_waiting_accounts(struct db *db, struct arena *a, int max, int64_t **ids, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, max);
    return db_list(db, a, &stmt_dist_waiting_accounts, &p, sizeof **ids, db_fill_i64, (void **)ids, count);
}

static void fill_waiting(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_dist_waiting *w = item;
    w->deal_id = db_i64(r, row, 0);
    w->reason = db_str(a, r, row, 1);
}

enum db_rc store_dist_waiting_list(struct db *db, struct arena *a, int64_t account_id, int max,
                                   struct so_dist_waiting **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, max);
    return db_list(db, a, &stmt_dist_waiting_list, &p, sizeof **items, fill_waiting, (void **)items, count);
}

enum db_rc store_dist_waiting_done(struct db *db, int64_t account_id, int64_t deal_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    return db_run(db, &stmt_dist_waiting_done, &p);
}

enum db_rc store_dist_waiting_count(struct db *db, int64_t account_id, int64_t *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_dist_waiting_count, &p, &r);
    if (rc != DB_OK) return rc;
    *count = db_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

enum db_rc store_deal_set_creator(struct db *db, int64_t account_id, int64_t deal_id, int64_t manager_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, manager_id);
    return db_run(db, &stmt_deal_set_creator, &p);
}

enum db_rc store_deal_assign_new(struct db *db, int64_t account_id, int64_t deal_id, int64_t manager_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, manager_id);
    return db_run(db, &stmt_deal_assign_new, &p);
}

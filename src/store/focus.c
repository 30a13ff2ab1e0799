/* Focus mode's tables: saved filters, sessions and their queues. */
#include <stdint.h>
#include <string.h>
#include "db_internal.h"

DB_STMT(stmt_focus_filter_put,
        "INSERT INTO focus_filters (account_id, manager_id, pipeline_id, stage_ids, ord, lim, max_minutes,"
        " updated_at) VALUES ($1, $2, $3, $4::int8[], $5, $6, $7, to_timestamp($8))"
        " ON CONFLICT (account_id, manager_id) DO UPDATE SET pipeline_id = EXCLUDED.pipeline_id,"
        " stage_ids = EXCLUDED.stage_ids, ord = EXCLUDED.ord, lim = EXCLUDED.lim,"
        " max_minutes = EXCLUDED.max_minutes, updated_at = EXCLUDED.updated_at");
DB_STMT(stmt_focus_filter_get,
        "SELECT manager_id, pipeline_id, stage_ids::text, ord, coalesce(lim, 0), max_minutes, " EPOCH(
            "updated_at") " FROM focus_filters WHERE account_id = $1 AND manager_id = $2");
/* 'focu' */
DB_STMT(stmt_focus_lock, "SELECT pg_advisory_xact_lock(1718575989, $1::int4)");
DB_STMT(stmt_focus_state,
        "SELECT (SELECT id FROM focus_sessions WHERE account_id = $1 AND manager_id = $2 AND ended_at IS NULL),"
        " (SELECT count(*) FROM focus_sessions WHERE account_id = $1 AND ended_at IS NULL)");
DB_STMT(stmt_focus_session_insert,
        "INSERT INTO focus_sessions (account_id, manager_id, pipeline_id, stage_ids, ord, lim, started_at,"
        " ends_by) VALUES ($1, $2, $3, $4::int8[], $5, $6, to_timestamp($7),"
        " to_timestamp($7) + make_interval(mins => $8::int)) RETURNING id");
/* The queue: the manager's open deals in the filter's pipeline and stages, in the filter's order. */
DB_STMT(stmt_focus_snapshot,
        "WITH q AS ("
        "  SELECT d.id, d.created_at, d.price,"
        "   (SELECT min(t.due_at) FROM tasks t WHERE t.account_id = d.account_id AND t.deal_id = d.id"
        "     AND t.completed_at IS NULL AND t.deleted_at IS NULL AND t.due_at < to_timestamp($8)) AS overdue"
        "  FROM deals d JOIN stages st ON st.account_id = d.account_id AND st.id = d.stage_id"
        "  WHERE d.account_id = $1 AND d.manager_id = $3 AND d.pipeline_id = $4"
        "   AND d.stage_id = ANY ($5::int8[]) AND d.status = 'open' AND d.deleted_at IS NULL"
        "   AND st.kind = 'open'),"
        " o AS ("
        "  SELECT id, row_number() OVER (ORDER BY"
        "   CASE WHEN $6::text = 'price_desc' THEN -price END,"
        "   CASE WHEN $6::text = 'price_desc' THEN id END,"
        "   CASE WHEN $6::text = 'overdue_first' THEN overdue END ASC NULLS LAST,"
        "   created_at, id)::int AS pos FROM q),"
        " ins AS ("
        "  INSERT INTO focus_items (account_id, session_id, deal_id, position)"
        "  SELECT $1, $2, id, pos FROM o WHERE $7::int IS NULL OR pos <= $7::int RETURNING 1)"
        " SELECT count(*) FROM ins");
#define SESSION_COLUMNS                                                                                      \
    "id, manager_id, pipeline_id, stage_ids::text, ord, coalesce(lim, 0), " EPOCH("started_at") ", " EPOCH(  \
        "ends_by") ", " EPOCH("ended_at") ", end_reason"
DB_STMT(stmt_focus_session_get,
        "SELECT " SESSION_COLUMNS " FROM focus_sessions WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_focus_session_get_locked,
        "SELECT " SESSION_COLUMNS " FROM focus_sessions WHERE account_id = $1 AND id = $2 FOR UPDATE");
DB_STMT(stmt_focus_session_list,
        "SELECT " SESSION_COLUMNS " FROM focus_sessions"
        " WHERE account_id = $1 AND id < coalesce(nullif($2::int8, 0), 9223372036854775807)"
        " AND ($4::int8 IS NULL OR manager_id = $4)"
        " AND ($5::date IS NULL OR started_at >="
        "  ($5::date::timestamp AT TIME ZONE (SELECT timezone FROM accounts WHERE id = $1)))"
        " AND ($6::date IS NULL OR started_at <"
        "  (($6::date + 1)::timestamp AT TIME ZONE (SELECT timezone FROM accounts WHERE id = $1)))"
        " ORDER BY id DESC LIMIT $3");
DB_STMT(stmt_focus_items,
        "SELECT session_id, deal_id, " EPOCH("done_at") " FROM focus_items"
        " WHERE account_id = $1 AND session_id = ANY ($2::int8[]) ORDER BY session_id, position");
DB_STMT(stmt_focus_mark_done,
        "UPDATE focus_items SET done_at = coalesce(done_at, to_timestamp($4))"
        " WHERE account_id = $1 AND session_id = $2 AND deal_id = $3 RETURNING 1");
DB_STMT(stmt_focus_activity,
        "UPDATE focus_items i SET done_at = to_timestamp($4) FROM focus_sessions s, deals d"
        " WHERE i.account_id = $1 AND i.deal_id = $2 AND i.done_at IS NULL"
        " AND s.account_id = i.account_id AND s.id = i.session_id AND s.ended_at IS NULL"
        " AND d.account_id = i.account_id AND d.id = i.deal_id"
        " AND s.manager_id = coalesce($3::int8, d.manager_id) AND s.started_at <= to_timestamp($4)"
        " RETURNING i.session_id");
DB_STMT(stmt_focus_deal_left,
        "DELETE FROM focus_items i USING focus_sessions s, deals d"
        " WHERE i.account_id = $1 AND i.deal_id = $2 AND s.account_id = i.account_id AND s.id = i.session_id"
        " AND s.ended_at IS NULL AND d.account_id = i.account_id AND d.id = i.deal_id"
        " AND (d.deleted_at IS NOT NULL OR d.manager_id IS DISTINCT FROM s.manager_id)"
        " RETURNING i.session_id");
DB_STMT(stmt_focus_settle,
        "UPDATE focus_sessions s SET ended_at = greatest(to_timestamp($3), s.started_at),"
        " end_reason = 'queue_done'"
        " WHERE s.account_id = $1 AND s.id = ANY ($2::int8[]) AND s.ended_at IS NULL AND NOT EXISTS ("
        "  SELECT 1 FROM focus_items i WHERE i.account_id = s.account_id AND i.session_id = s.id"
        "  AND i.done_at IS NULL)"
        " RETURNING s.account_id, s.id, s.manager_id, s.end_reason");
DB_STMT(stmt_focus_end,
        "UPDATE focus_sessions SET ended_at = greatest(to_timestamp($4), started_at), end_reason = $3"
        " WHERE account_id = $1 AND id = $2 AND ended_at IS NULL RETURNING id");
DB_STMT(stmt_focus_timeouts,
        "WITH due AS (SELECT account_id, id FROM focus_sessions WHERE ended_at IS NULL AND ends_by <= now()"
        "  ORDER BY ends_by LIMIT $1 FOR UPDATE SKIP LOCKED)"
        " UPDATE focus_sessions s SET ended_at = s.ends_by, end_reason = 'timeout' FROM due"
        " WHERE s.account_id = due.account_id AND s.id = due.id AND s.ended_at IS NULL"
        " RETURNING s.account_id, s.id, s.manager_id, s.end_reason");

static void filter_params(struct db_params *p, struct arena *a, const struct so_focus_filter *f)
{
    dbp_str(p, db_id_array(a, f->stage_ids, f->stage_count));
    dbp_str(p, f->order);
    if (f->limit > 0)
        dbp_int(p, f->limit);
    else
        dbp_str(p, NULL);
}

enum db_rc store_focus_filter_put(struct db *db, int64_t account_id, const struct so_focus_filter *f,
                                  int64_t now)
{
    struct arena a = {0};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, f->manager_id);
    dbp_int(&p, f->pipeline_id);
    filter_params(&p, &a, f);
    dbp_int(&p, f->max_minutes);
    dbp_int(&p, now);
    enum db_rc rc = db_run(db, &stmt_focus_filter_put, &p);
    arena_release(&a);
    return rc;
}

static void fill_filter(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_focus_filter *f = item;
    f->manager_id = db_i64(r, row, 0);
    f->pipeline_id = db_i64(r, row, 1);
    f->stage_count = db_parse_id_array(a, PQgetvalue(r, row, 2), &f->stage_ids);
    f->order = db_str(a, r, row, 3);
    f->limit = db_int(r, row, 4);
    f->max_minutes = db_int(r, row, 5);
    f->updated_at = db_i64(r, row, 6);
}

enum db_rc store_focus_filter_get(struct db *db, struct arena *a, int64_t account_id, int64_t manager_id,
                                  struct so_focus_filter *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, manager_id);
    return db_one(db, a, &stmt_focus_filter_get, &p, fill_filter, out);
}

enum db_rc store_focus_lock(struct db *db, int64_t account_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_run(db, &stmt_focus_lock, &p);
}

enum db_rc store_focus_state(struct db *db, int64_t account_id, int64_t manager_id, int64_t *active_session,
                             int *in_focus)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, manager_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_focus_state, &p, &r);
    if (rc != DB_OK) return rc;
    *active_session = db_i64(r, 0, 0);
    *in_focus = db_int(r, 0, 1);
    PQclear(r);
    return DB_OK;
}

enum db_rc store_focus_start(struct db *db, int64_t account_id, const struct so_focus_filter *f, int64_t now,
                             int64_t *session_id, int *total)
{
    struct arena a = {0};
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, f->manager_id);
    dbp_int(&p, f->pipeline_id);
    filter_params(&p, &a, f);
    dbp_int(&p, now);
    dbp_int(&p, f->max_minutes);
    enum db_rc rc = db_returning_id(db, &stmt_focus_session_insert, &p, session_id);
    if (rc == DB_OK) {
        struct db_params q = {0};
        dbp_int(&q, account_id);
        dbp_int(&q, *session_id);
        dbp_int(&q, f->manager_id);
        dbp_int(&q, f->pipeline_id);
        filter_params(&q, &a, f);
        dbp_int(&q, now);
        PGresult *r;
        rc = db_exec(db, &stmt_focus_snapshot, &q, &r);
        if (rc == DB_OK) {
            *total = db_int(r, 0, 0);
            PQclear(r);
        }
    }
    arena_release(&a);
    return rc;
}

static void fill_session(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_focus_session *s = item;
    s->id = db_i64(r, row, 0);
    s->manager_id = db_i64(r, row, 1);
    s->pipeline_id = db_i64(r, row, 2);
    s->stage_count = db_parse_id_array(a, PQgetvalue(r, row, 3), &s->stage_ids);
    s->order = db_str(a, r, row, 4);
    s->limit = db_int(r, row, 5);
    s->started_at = db_i64(r, row, 6);
    s->ends_by = db_i64(r, row, 7);
    s->ended_at = db_i64(r, row, 8);
    s->end_reason = db_str(a, r, row, 9);
}

/* Reads the items of the sessions in one statement. */
static enum db_rc load_items(struct db *db, struct arena *a, int64_t account_id, struct so_focus_session *s,
                             int count)
{
    if (count == 0) return DB_OK;
    int64_t *ids = arena_alloc(a, sizeof *ids * (size_t)count);
    if (ids == NULL) return DB_ERROR;
    for (int i = 0; i < count; i++)
        ids[i] = s[i].id;
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, db_id_array(a, ids, count));
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_focus_items, &p, &r);
    if (rc == DB_NONE) return DB_OK;
    if (rc != DB_OK) return rc;
    int n = PQntuples(r);
    struct so_focus_item *items = arena_alloc(a, sizeof *items * ((size_t)n + 1));
    if (items == NULL) {
        PQclear(r);
        return DB_ERROR;
    }
    /* rows come grouped by session id; sessions may be in any order */
    for (int row = 0; row < n;) {
        int64_t sid = db_i64(r, row, 0);
        int start = row;
        while (row < n && db_i64(r, row, 0) == sid) {
            items[row].deal_id = db_i64(r, row, 1);
            items[row].done_at = db_i64(r, row, 2);
            row++;
        }
        for (int i = 0; i < count; i++) {
            if (s[i].id != sid) continue;
            s[i].items = &items[start];
            s[i].item_count = row - start;
            for (int k = start; k < row; k++)
                s[i].done += items[k].done_at != 0;
        }
    }
    PQclear(r);
    return DB_OK;
}

enum db_rc store_focus_session_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                   bool for_update, struct so_focus_session *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    memset(out, 0, sizeof *out);
    enum db_rc rc = db_one(db, a, for_update ? &stmt_focus_session_get_locked : &stmt_focus_session_get, &p,
                           fill_session, out);
    return rc == DB_OK ? load_items(db, a, account_id, out, 1) : rc;
}

enum db_rc store_focus_session_list(struct db *db, struct arena *a, int64_t account_id,
                                    const struct so_focus_session_filter *f, const struct so_page *page,
                                    struct so_focus_session **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    dbp_id(&p, f->manager_id);
    dbp_str(&p, f->from_date);
    dbp_str(&p, f->to_date);
    enum db_rc rc = db_list(db, a, &stmt_focus_session_list, &p, sizeof **items, fill_session, (void **)items,
                            count);
    return rc == DB_OK ? load_items(db, a, account_id, *items, *count) : rc;
}

enum db_rc store_focus_mark_done(struct db *db, int64_t account_id, int64_t session_id, int64_t deal_id,
                                 int64_t at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, session_id);
    dbp_int(&p, deal_id);
    dbp_int(&p, at);
    return db_run(db, &stmt_focus_mark_done, &p);
}

static enum db_rc session_ids(struct db *db, struct arena *a, struct db_stmt *stmt, const struct db_params *p,
                              int64_t **sessions, int *count)
{
    return db_list(db, a, stmt, p, sizeof **sessions, db_fill_i64, (void **)sessions, count);
}

enum db_rc store_focus_activity(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                int64_t actor, int64_t at, int64_t **sessions, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    dbp_id(&p, actor);
    dbp_int(&p, at);
    return session_ids(db, a, &stmt_focus_activity, &p, sessions, count);
}

enum db_rc store_focus_deal_left(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                 int64_t **sessions, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, deal_id);
    return session_ids(db, a, &stmt_focus_deal_left, &p, sessions, count);
}

static void fill_end(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_focus_end *e = item;
    e->account_id = db_i64(r, row, 0);
    e->session_id = db_i64(r, row, 1);
    e->manager_id = db_i64(r, row, 2);
    e->reason = db_str(a, r, row, 3);
}

enum db_rc store_focus_settle(struct db *db, struct arena *a, int64_t account_id, const int64_t *sessions,
                              int count, int64_t at, struct so_focus_end **ended, int *ended_count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, db_id_array(a, sessions, count));
    dbp_int(&p, at);
    return db_list(db, a, &stmt_focus_settle, &p, sizeof **ended, fill_end, (void **)ended, ended_count);
}

enum db_rc store_focus_end(struct db *db, int64_t account_id, int64_t session_id, const char *reason,
                           int64_t at)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, session_id);
    dbp_str(&p, reason);
    dbp_int(&p, at);
    return db_run(db, &stmt_focus_end, &p);
}

enum db_rc store_focus_timeouts(struct db *db, struct arena *a, int max, struct so_focus_end **ended,
                                int *count)
{
    struct db_params p = {0};
    dbp_int(&p, max);
    return db_list(db, a, &stmt_focus_timeouts, &p, sizeof **ended, fill_end, (void **)ended, count);
}

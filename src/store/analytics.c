/* Analytics reads: the SQL functions over the rollup of migrations/0013_analytics_rollup.sql. */
#include <stdio.h>
#include <stdlib.h>
#include "db_internal.h"

DB_STMT(stmt_period_bounds,
        "SELECT " EPOCH("($2::date::timestamp AT TIME ZONE a.timezone)") ", " EPOCH(
            "(($3::date + 1)::timestamp AT TIME ZONE a.timezone)") " FROM accounts a WHERE a.id = $1");
DB_STMT(stmt_kpis, "SELECT * FROM salesops_kpis($1, to_timestamp($2), to_timestamp($3), to_timestamp($4))");
/* epoch arrays in, timestamptz arrays (in the same order) to the function */
#define TIMES(n) "(SELECT array_agg(to_timestamp(x) ORDER BY i) FROM unnest($" #n "::int8[]) WITH ORDINALITY u (x, i))"
DB_STMT(stmt_kpis_multi, "SELECT * FROM salesops_kpis_multi($1, " TIMES(2) ", " TIMES(3) ", " TIMES(4) ")");
DB_STMT(stmt_summary, "SELECT * FROM salesops_summary($1, to_timestamp($2), to_timestamp($3))");
DB_STMT(stmt_funnel_stages,
        "SELECT s.id, s.name, s.position, coalesce(sum(c.entered), 0), coalesce(sum(c.advanced), 0),"
        " coalesce(sum(c.lost), 0), coalesce(sum(c.entered - c.advanced - c.lost), 0)"
        " FROM stages s LEFT JOIN salesops_funnel_counts($1, $2, to_timestamp($3), to_timestamp($4),"
        " to_timestamp($5)) c ON c.stage_id = s.id"
        " WHERE s.account_id = $1 AND s.pipeline_id = $2 AND s.kind = 'open' GROUP BY s.id, s.name, s.position"
        " ORDER BY s.position, s.id");
DB_STMT(stmt_funnel_reasons,
        "SELECT c.stage_id, nullif(c.reason, -1), r.name, c.lost FROM salesops_funnel_counts($1, $2,"
        " to_timestamp($3), to_timestamp($4), to_timestamp($5)) c"
        " LEFT JOIN loss_reasons r ON r.account_id = $1 AND r.id = c.reason WHERE c.reason <> 0 AND c.lost > 0"
        " ORDER BY c.stage_id, c.lost DESC, nullif(c.reason, -1) NULLS LAST");
DB_STMT(stmt_funnel_totals,
        "SELECT * FROM salesops_funnel_totals($1, $2, to_timestamp($3), to_timestamp($4), to_timestamp($5))");

enum db_rc store_period_bounds(struct db *db, int64_t account_id, const char *from_date, const char *to_date,
                               int64_t *start, int64_t *end)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, from_date);
    dbp_str(&p, to_date);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_period_bounds, &p, &r);
    if (rc != DB_OK) return rc;
    *start = db_i64(r, 0, 0);
    *end = db_i64(r, 0, 1);
    PQclear(r);
    return DB_OK;
}

/* a manager row from column `col` on */
static void fill_kpi_at(struct arena *a, const PGresult *r, int row, struct so_kpi_row *k, int col)
{
    k->manager_id = db_i64(r, row, col);
    k->name = db_str(a, r, row, col + 1);
    int64_t *fig[] = {&k->talk_time_s,   &k->outgoing_calls, &k->deals_created,       &k->won,
                      &k->won_revenue,   &k->lost,           &k->deals_without_tasks, &k->deals_with_overdue_tasks,
                      &k->tasks_due,     &k->tasks_on_time,  &k->overdue_total_s,     &k->late_tasks};
    for (int i = 0; i < (int)(sizeof fig / sizeof fig[0]); i++)
        *fig[i] = db_i64(r, row, col + 2 + i);
}

static void fill_kpi(struct arena *a, const PGresult *r, int row, void *item)
{
    fill_kpi_at(a, r, row, item, 0);
}

static void fill_kpi_period(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_kpi_row *k = item;
    k->period = db_int(r, row, 0) - 1;
    fill_kpi_at(a, r, row, k, 1);
}

static void period_params(struct db_params *p, int64_t account_id, int64_t start, int64_t end)
{
    dbp_int(p, account_id);
    dbp_int(p, start);
    dbp_int(p, end);
}

enum db_rc store_kpis(struct db *db, struct arena *a, int64_t account_id, int64_t start, int64_t end,
                      int64_t as_of, struct so_kpi_row **rows, int *count)
{
    struct db_params p = {0};
    period_params(&p, account_id, start, end);
    dbp_int(&p, as_of);
    return db_list(db, a, &stmt_kpis, &p, sizeof **rows, fill_kpi, (void **)rows, count);
}

enum db_rc store_kpis_multi(struct db *db, struct arena *a, int64_t account_id, int n, const int64_t *starts,
                            const int64_t *ends, const int64_t *as_ofs, struct so_kpi_row **rows, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, db_id_array(a, starts, n));
    dbp_str(&p, db_id_array(a, ends, n));
    dbp_str(&p, db_id_array(a, as_ofs, n));
    return db_list(db, a, &stmt_kpis_multi, &p, sizeof **rows, fill_kpi_period, (void **)rows, count);
}

static void fill_totals(const PGresult *r, struct so_summary_totals *t, bool summary)
{
    t->created = db_i64(r, 0, 0);
    t->won = db_i64(r, 0, 1);
    t->won_revenue = summary ? db_i64(r, 0, 2) : 0;
    t->lost = db_i64(r, 0, summary ? 3 : 2);
}

enum db_rc store_summary(struct db *db, int64_t account_id, int64_t start, int64_t end,
                         struct so_summary_totals *out)
{
    struct db_params p = {0};
    period_params(&p, account_id, start, end);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_summary, &p, &r);
    if (rc != DB_OK) return rc;
    fill_totals(r, out, true);
    PQclear(r);
    return DB_OK;
}

static void fill_stage(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_funnel_stage *s = item;
    s->stage_id = db_i64(r, row, 0);
    s->name = db_str(a, r, row, 1);
    s->position = db_int(r, row, 2);
    s->entered = db_i64(r, row, 3);
    s->advanced = db_i64(r, row, 4);
    s->lost = db_i64(r, row, 5);
    s->in_stage = db_i64(r, row, 6);
}

static void fill_reason(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_funnel_reason *x = item;
    x->stage_id = db_i64(r, row, 0);
    x->loss_reason_id = db_i64(r, row, 1);
    x->name = db_str(a, r, row, 2);
    x->count = db_i64(r, row, 3);
}

enum db_rc store_funnel(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id, int64_t start,
                        int64_t end, int64_t as_of, struct so_funnel_stage **stages, int *stage_count,
                        struct so_funnel_reason **reasons, int *reason_count, struct so_summary_totals *totals)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    dbp_int(&p, start);
    dbp_int(&p, end);
    dbp_int(&p, as_of);
    enum db_rc rc = db_list(db, a, &stmt_funnel_stages, &p, sizeof **stages, fill_stage, (void **)stages,
                            stage_count);
    if (rc == DB_OK)
        rc = db_list(db, a, &stmt_funnel_reasons, &p, sizeof **reasons, fill_reason, (void **)reasons,
                     reason_count);
    PGresult *r;
    if (rc == DB_OK) rc = db_exec(db, &stmt_funnel_totals, &p, &r);
    if (rc != DB_OK) return rc;
    fill_totals(r, totals, false);
    PQclear(r);
    return DB_OK;
}

DB_STMT(stmt_kpi_compact, "SELECT salesops_kpi_compact($1::int)");

enum db_rc store_kpi_compact(struct db *db, int accounts, int64_t *rows)
{
    struct db_params p = {0};
    dbp_int(&p, accounts);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_kpi_compact, &p, &r);
    if (rc != DB_OK) return rc;
    *rows = db_i64(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

DB_STMT(stmt_analyze_grown, "SELECT salesops_analyze_grown()");

enum db_rc store_analyze_grown(struct db *db, int64_t *tables)
{
    return db_one(db, NULL, &stmt_analyze_grown, NULL, db_fill_i64, tables);
}

DB_STMT(stmt_targets_get,
        "SELECT figure, target::float8, direction, warn_within::float8 FROM analytics_targets WHERE account_id = $1"
        " ORDER BY figure");
DB_STMT(stmt_targets_clear, "DELETE FROM analytics_targets WHERE account_id = $1");
DB_STMT(stmt_target_insert,
        "INSERT INTO analytics_targets (account_id, figure, target, direction, warn_within, updated_at)"
        " VALUES ($1, $2, $3::numeric, $4, $5::numeric, to_timestamp($6))");
DB_STMT(stmt_local_today,
        "SELECT to_char((now() AT TIME ZONE timezone)::date, 'YYYY-MM-DD') FROM accounts WHERE id = $1");

static void fill_target(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_target *t = item;
    t->figure = db_str(a, r, row, 0);
    t->target = strtod(PQgetvalue(r, row, 1), NULL);
    t->direction = db_str(a, r, row, 2);
    t->warn_within = strtod(PQgetvalue(r, row, 3), NULL);
}

enum db_rc store_targets_get(struct db *db, struct arena *a, int64_t account_id, struct so_target **items,
                             int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    return db_list(db, a, &stmt_targets_get, &p, sizeof **items, fill_target, (void **)items, count);
}

enum db_rc store_targets_put(struct db *db, int64_t account_id, const struct so_target *items, int count,
                             int64_t now)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    enum db_rc rc = db_run(db, &stmt_targets_clear, &p);
    for (int i = 0; i < count && rc == DB_OK; i++) {
        struct db_params q = {0};
        char target[40], warn[40];
        snprintf(target, sizeof target, "%.10g", items[i].target);
        snprintf(warn, sizeof warn, "%.10g", items[i].warn_within);
        dbp_int(&q, account_id);
        dbp_str(&q, items[i].figure);
        dbp_str(&q, target);
        dbp_str(&q, items[i].direction);
        dbp_str(&q, warn);
        dbp_int(&q, now);
        rc = db_run(db, &stmt_target_insert, &q);
    }
    return rc;
}

enum db_rc store_local_today(struct db *db, int64_t account_id, char *buf, size_t len)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_local_today, &p, &r);
    if (rc != DB_OK) return rc;
    snprintf(buf, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return DB_OK;
}

/* the insert position: with asynchronous commit a just-committed write may not be written out yet */
DB_STMT(stmt_wal_position, "SELECT pg_current_wal_insert_lsn()::text");
DB_STMT(stmt_replayed, "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, true)");

enum db_rc store_wal_position(struct db *db, char *lsn, size_t len)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_wal_position, NULL, &r);
    if (rc != DB_OK) return rc;
    snprintf(lsn, len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return DB_OK;
}

enum db_rc store_replayed(struct db *db, const char *lsn, bool *done)
{
    struct db_params p = {0};
    dbp_str(&p, lsn);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_replayed, &p, &r);
    if (rc != DB_OK) return rc;
    *done = db_bool(r, 0, 0);
    PQclear(r);
    return DB_OK;
}

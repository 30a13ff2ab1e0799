/* Pipelines with their stages, and loss reasons. */
#include <stdio.h>
#include <string.h>
#include "db_internal.h"

#define STAGE_ORDER   "CASE kind WHEN 'open' THEN 0 WHEN 'won' THEN 1 ELSE 2 END, position, id"
#define STAGE_COLUMNS "id, pipeline_id, external_id, name, kind, position, needs_setup"

DB_STMT(stmt_pipeline_insert,
        "INSERT INTO pipelines (account_id, name, external_id, needs_setup, crm, created_at)"
        " VALUES ($1, $2, $3, $4, $6, to_timestamp($5)) RETURNING id");
DB_STMT(stmt_pipeline_crm, "SELECT coalesce(crm, '') FROM pipelines WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_stage_by_ext, "SELECT " STAGE_COLUMNS " FROM stages WHERE account_id = $1 AND pipeline_id = $2"
                           " AND external_id = $3");
DB_STMT(stmt_stage_last_open, "SELECT coalesce(max(position), 0) FROM stages WHERE account_id = $1"
                              " AND pipeline_id = $2 AND kind = 'open'");
DB_STMT(stmt_stage_shift_closed, "UPDATE stages SET position = position + 1 WHERE account_id = $1"
                                 " AND pipeline_id = $2 AND kind <> 'open'");
DB_STMT(stmt_stage_insert,
        "INSERT INTO stages (account_id, pipeline_id, external_id, name, kind, position, needs_setup)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id");
DB_STMT(stmt_pipeline_get, "SELECT id, external_id, name, needs_setup, " EPOCH(
                               "created_at") " FROM pipelines WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_pipeline_list,
        "SELECT id, external_id, name, needs_setup, " EPOCH(
            "created_at") " FROM pipelines WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3");
DB_STMT(stmt_stages_of_pipelines, "SELECT " STAGE_COLUMNS " FROM stages WHERE account_id = $1"
                                  " AND pipeline_id BETWEEN $2 AND $3 ORDER BY pipeline_id, " STAGE_ORDER);
DB_STMT(stmt_pipeline_update, "UPDATE pipelines SET name = coalesce($3, name),"
                              " external_id = coalesce($4, external_id), needs_setup = false"
                              " WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_stage_update,
        "UPDATE stages SET name = coalesce($4, name), external_id = coalesce($5, external_id),"
        " needs_setup = false WHERE account_id = $1 AND pipeline_id = $2 AND id = $3"
        " RETURNING id");
DB_STMT(stmt_stage_get, "SELECT " STAGE_COLUMNS " FROM stages WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_stage_first, "SELECT " STAGE_COLUMNS " FROM stages WHERE account_id = $1 AND pipeline_id = $2"
                          " AND kind = $3 ORDER BY " STAGE_ORDER " LIMIT 1");

static const char *const stage_kinds[] = {"open", "won", "lost"};

enum db_rc store_pipeline_insert(struct db *db, int64_t account_id, const char *name, const char *external_id,
                                 bool needs_setup, const char *crm, int64_t now, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, name);
    dbp_str(&p, external_id);
    dbp_bool(&p, needs_setup);
    dbp_int(&p, now);
    dbp_str(&p, crm);
    return db_returning_id(db, &stmt_pipeline_insert, &p, id);
}

enum db_rc store_stage_insert(struct db *db, int64_t account_id, const struct so_stage *stage, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, stage->pipeline_id);
    dbp_str(&p, stage->external_id);
    dbp_str(&p, stage->name);
    dbp_str(&p, stage_kinds[stage->kind]);
    dbp_int(&p, stage->position);
    dbp_bool(&p, stage->needs_setup);
    return db_returning_id(db, &stmt_stage_insert, &p, id);
}

static void fill_stage(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_stage *s = item;
    s->id = db_i64(r, row, 0);
    s->pipeline_id = db_i64(r, row, 1);
    s->external_id = db_str(a, r, row, 2);
    s->name = db_str(a, r, row, 3);
    const char *kind = PQgetvalue(r, row, 4);
    s->kind = kind[0] == 'w' ? STAGE_WON : kind[0] == 'l' ? STAGE_LOST : STAGE_OPEN;
    s->position = db_int(r, row, 5);
    s->needs_setup = db_bool(r, row, 6);
}

static void fill_pipeline(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_pipeline *pl = item;
    pl->id = db_i64(r, row, 0);
    pl->external_id = db_str(a, r, row, 1);
    pl->name = db_str(a, r, row, 2);
    pl->needs_setup = db_bool(r, row, 3);
    pl->created_at = db_i64(r, row, 4);
}

/* Attaches the stages of pipelines[0..count) (sorted by id) with one query. */
static enum db_rc attach_stages(struct db *db, struct arena *a, int64_t account_id,
                                struct so_pipeline *pipelines, int count)
{
    if (count == 0) return DB_OK;
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipelines[0].id);
    dbp_int(&p, pipelines[count - 1].id);
    struct so_stage *stages;
    int n;
    enum db_rc rc =
        db_list(db, a, &stmt_stages_of_pipelines, &p, sizeof *stages, fill_stage, (void **)&stages, &n);
    if (rc != DB_OK) return rc;
    int k = 0;
    for (int i = 0; i < count; i++) {
        while (k < n && stages[k].pipeline_id < pipelines[i].id)
            k++;
        pipelines[i].stages = stages + k;
        pipelines[i].stage_count = 0;
        while (k < n && stages[k].pipeline_id == pipelines[i].id) {
            pipelines[i].stage_count++;
            k++;
        }
    }
    return DB_OK;
}

enum db_rc store_pipeline_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                              struct so_pipeline *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    enum db_rc rc = db_one(db, a, &stmt_pipeline_get, &p, fill_pipeline, out);
    if (rc != DB_OK) return rc;
    return attach_stages(db, a, account_id, out, 1);
}

enum db_rc store_pipeline_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                               struct so_pipeline **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    enum db_rc rc =
        db_list(db, a, &stmt_pipeline_list, &p, sizeof **items, fill_pipeline, (void **)items, count);
    if (rc != DB_OK) return rc;
    return attach_stages(db, a, account_id, *items, *count);
}

enum db_rc store_pipeline_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                 const char *external_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, name);
    dbp_str(&p, external_id);
    return db_run(db, &stmt_pipeline_update, &p);
}

enum db_rc store_stage_update(struct db *db, int64_t account_id, int64_t pipeline_id, int64_t stage_id,
                              const char *name, const char *external_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    dbp_int(&p, stage_id);
    dbp_str(&p, name);
    dbp_str(&p, external_id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_stage_update, &p, &r);
    PQclear(r);
    return rc;
}

enum db_rc store_stage_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                           struct so_stage *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, &stmt_stage_get, &p, fill_stage, out);
}

enum db_rc store_stage_first(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id,
                             enum stage_kind kind, struct so_stage *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    dbp_str(&p, stage_kinds[kind]);
    return db_one(db, a, &stmt_stage_first, &p, fill_stage, out);
}

DB_STMT(stmt_loss_reason_insert,
        "INSERT INTO loss_reasons (account_id, name, external_id, needs_setup, created_at)"
        " VALUES ($1, $2, $3, $4, to_timestamp($5)) RETURNING id");
DB_STMT(stmt_loss_reason_get, "SELECT id, external_id, name, needs_setup, " EPOCH(
                                  "created_at") " FROM loss_reasons WHERE account_id = $1 AND id = $2");
DB_STMT(stmt_loss_reason_list,
        "SELECT id, external_id, name, needs_setup, " EPOCH(
            "created_at") " FROM loss_reasons WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3");
DB_STMT(stmt_loss_reason_update, "UPDATE loss_reasons SET name = coalesce($3, name),"
                                 " external_id = coalesce($4, external_id), needs_setup = false"
                                 " WHERE account_id = $1 AND id = $2");

enum db_rc store_loss_reason_insert(struct db *db, int64_t account_id, const char *name,
                                    const char *external_id, bool needs_setup, int64_t now, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_str(&p, name);
    dbp_str(&p, external_id);
    dbp_bool(&p, needs_setup);
    dbp_int(&p, now);
    return db_returning_id(db, &stmt_loss_reason_insert, &p, id);
}

static void fill_loss_reason(struct arena *a, const PGresult *r, int row, void *item)
{
    struct so_loss_reason *l = item;
    l->id = db_i64(r, row, 0);
    l->external_id = db_str(a, r, row, 1);
    l->name = db_str(a, r, row, 2);
    l->needs_setup = db_bool(r, row, 3);
    l->created_at = db_i64(r, row, 4);
}

enum db_rc store_loss_reason_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                 struct so_loss_reason *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    return db_one(db, a, &stmt_loss_reason_get, &p, fill_loss_reason, out);
}

enum db_rc store_loss_reason_list(struct db *db, struct arena *a, int64_t account_id,
                                  const struct so_page *page, struct so_loss_reason **items, int *count)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_page(&p, page);
    return db_list(db, a, &stmt_loss_reason_list, &p, sizeof **items, fill_loss_reason, (void **)items,
                   count);
}

enum db_rc store_loss_reason_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                    const char *external_id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    dbp_str(&p, name);
    dbp_str(&p, external_id);
    return db_run(db, &stmt_loss_reason_update, &p);
}

enum db_rc store_pipeline_crm(struct db *db, int64_t account_id, int64_t id, char *crm, size_t len)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, id);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_pipeline_crm, &p, &r);
    if (rc == DB_OK) {
        snprintf(crm, len, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    return rc;
}

enum db_rc store_stage_by_external(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id,
                                   const char *external_id, struct so_stage *out)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    dbp_str(&p, external_id);
    return db_one(db, a, &stmt_stage_by_ext, &p, fill_stage, out);
}

enum db_rc store_stage_append_open(struct db *db, int64_t account_id, int64_t pipeline_id, const char *name,
                                   const char *external_id, bool needs_setup, int64_t *id)
{
    struct db_params p = {0};
    dbp_int(&p, account_id);
    dbp_int(&p, pipeline_id);
    int64_t last_open = 0;
    enum db_rc rc = db_returning_id(db, &stmt_stage_last_open, &p, &last_open);
    if (rc == DB_OK) rc = db_run(db, &stmt_stage_shift_closed, &p);
    if (rc != DB_OK) return rc;
    struct so_stage s = {.pipeline_id = pipeline_id,
                         .external_id = external_id,
                         .name = name,
                         .kind = STAGE_OPEN,
                         .position = (int)last_open + 1,
                         .needs_setup = needs_setup};
    return store_stage_insert(db, account_id, &s, id);
}

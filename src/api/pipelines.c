#include <stdio.h>
#include "common.h"
#include "handlers.h"

#define MAX_STAGES 100

static const char *const kinds[] = {"open", "won", "lost", NULL};

/* Reads the stages array with the same field checks as a body, naming fields stages[i].x. */
static bool stage_items(struct so_req *req, json_t *array, const struct field_spec *spec, size_t count,
                        struct field_value (*values)[3], int *n)
{
    if (!json_is_array(array) || json_array_size(array) > MAX_STAGES) {
        so_field_error(&req->err, "stages", "must be an array of at most %d stages", MAX_STAGES);
        reply_err(req);
        return false;
    }
    *n = (int)json_array_size(array);
    for (int i = 0; i < *n; i++) {
        struct so_error err = {0};
        if (validate_fields(json_array_get(array, (size_t)i), spec, count, values[i], &err) != SO_OK) {
            for (size_t k = 0; k < json_array_size(err.errors); k++) {
                json_t *e = json_array_get(err.errors, k);
                char field[96];
                snprintf(field, sizeof field, "stages[%d].%s", i,
                         json_string_value(json_object_get(e, "field")));
                so_field_error(&req->err, field, "%s", json_string_value(json_object_get(e, "message")));
            }
            so_error_clear(&err);
        }
    }
    if (req->err.code == ERR_VALIDATION) {
        reply_err(req);
        return false;
    }
    return true;
}

static void reply_pipeline(struct so_req *req, int status, int64_t id)
{
    struct so_pipeline p;
    enum db_rc rc = store_pipeline_get(req->db, req->arena, req->auth.account_id, id, &p);
    if (rc != DB_OK)
        reply_db(req, rc, "pipeline", id);
    else
        reply_json_steal(req, status, render_pipeline(&p));
}

void handle_pipeline_create(struct so_req *req)
{
    enum { NAME, EXTERNAL_ID, STAGES };
    static const struct field_spec spec[] = {
        [NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
        [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
        [STAGES] = {"stages", F_JSON, F_REQUIRED, 0, 0, NULL},
    };
    enum { S_NAME, S_EXTERNAL_ID, S_KIND };
    static const struct field_spec stage_spec[] = {
        [S_NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
        [S_EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
        [S_KIND] = {"kind", F_ENUM, F_REQUIRED, 0, 0, kinds},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct field_value sv[MAX_STAGES][3];
    int n;
    if (!stage_items(req, v[STAGES].j, stage_spec, COUNT_OF(stage_spec), sv, &n)) return;
    struct stage_input stages[MAX_STAGES];
    for (int i = 0; i < n; i++)
        stages[i] =
            (struct stage_input){sv[i][S_NAME].s, sv[i][S_EXTERNAL_ID].s, (enum stage_kind)sv[i][S_KIND].i};
    int64_t id;
    if (domain_pipeline_create(req->db, req->auth.account_id, v[NAME].s, v[EXTERNAL_ID].s, stages, n,
                               req->now, &id, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_pipeline(req, 201, id);
}

static json_t *render_pipeline_item(const void *p)
{
    return render_pipeline(p);
}

void handle_pipeline_list(struct so_req *req)
{
    struct so_page page;
    if (!query_page(req, &page)) return;
    struct so_pipeline *items;
    int count;
    enum db_rc rc = store_pipeline_list(req->db, req->arena, req->auth.account_id, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "pipelines", 0);
    else
        reply_items(req, items, count, sizeof *items, render_pipeline_item, &page);
}

void handle_pipeline_get(struct so_req *req)
{
    int64_t id;
    if (path_id(req, 0, KIND_PIPELINE, &id)) reply_pipeline(req, 200, id);
}

void handle_pipeline_patch(struct so_req *req)
{
    enum { NAME, EXTERNAL_ID, STAGES };
    static const struct field_spec spec[] = {
        [NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
        [EXTERNAL_ID] = {"external_id", F_STRING, 0, 1, EXTERNAL_ID_MAX_CHARS, NULL},
        [STAGES] = {"stages", F_JSON, 0, 0, 0, NULL},
    };
    enum { S_ID, S_NAME, S_EXTERNAL_ID };
    static const struct field_spec stage_spec[] = {
        [S_ID] = {"id", F_ID, F_REQUIRED, 0, 0, NULL},
        [S_NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
        [S_EXTERNAL_ID] = {"external_id", F_STRING, 0, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_PIPELINE, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct field_value sv[MAX_STAGES][3];
    int n = 0;
    if (v[STAGES].present && !stage_items(req, v[STAGES].j, stage_spec, COUNT_OF(stage_spec), sv, &n)) return;
    struct stage_rename renames[MAX_STAGES];
    for (int i = 0; i < n; i++)
        renames[i] = (struct stage_rename){sv[i][S_ID].i, sv[i][S_NAME].s, sv[i][S_EXTERNAL_ID].s};
    struct so_pipeline p;
    enum db_rc rc = store_pipeline_get(req->db, req->arena, req->auth.account_id, id, &p);
    if (rc != DB_OK) {
        reply_db(req, rc, "pipeline", id);
        return;
    }
    if (domain_pipeline_update(req->db, req->auth.account_id, id, v[NAME].s, v[EXTERNAL_ID].s, renames, n,
                               &req->err) != SO_OK)
        reply_err(req);
    else
        reply_pipeline(req, 200, id);
}

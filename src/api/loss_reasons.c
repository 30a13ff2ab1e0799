#include "common.h"
#include "handlers.h"

enum { NAME, EXTERNAL_ID };
static const struct field_spec create_spec[] = {
    [NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
};
static const struct field_spec patch_spec[] = {
    [NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
    [EXTERNAL_ID] = {"external_id", F_STRING, 0, 1, EXTERNAL_ID_MAX_CHARS, NULL},
};

static void reply_loss_reason(struct so_req *req, int status, int64_t id)
{
    struct so_loss_reason l;
    enum db_rc rc = store_loss_reason_get(req->db, req->arena, req->auth.account_id, id, &l);
    if (rc != DB_OK)
        reply_db(req, rc, "loss reason", id);
    else
        reply_json_steal(req, status, render_loss_reason(&l));
}

void handle_loss_reason_create(struct so_req *req)
{
    struct field_value v[COUNT_OF(create_spec)];
    if (!body_fields(req, create_spec, COUNT_OF(create_spec), v)) return;
    int64_t id;
    if (domain_loss_reason_create(req->db, req->auth.account_id, v[NAME].s, v[EXTERNAL_ID].s, req->now, &id,
                                  &req->err) != SO_OK)
        reply_err(req);
    else
        reply_loss_reason(req, 201, id);
}

static json_t *render_loss_reason_item(const void *p)
{
    return render_loss_reason(p);
}

void handle_loss_reason_list(struct so_req *req)
{
    struct so_page page;
    if (!query_page(req, &page)) return;
    struct so_loss_reason *items;
    int count;
    enum db_rc rc = store_loss_reason_list(req->db, req->arena, req->auth.account_id, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "loss reasons", 0);
    else
        reply_items(req, items, count, sizeof *items, render_loss_reason_item, &page);
}

void handle_loss_reason_get(struct so_req *req)
{
    int64_t id;
    if (path_id(req, 0, KIND_LOSS_REASON, &id)) reply_loss_reason(req, 200, id);
}

void handle_loss_reason_patch(struct so_req *req)
{
    int64_t id;
    if (!path_id(req, 0, KIND_LOSS_REASON, &id)) return;
    struct field_value v[COUNT_OF(patch_spec)];
    if (!body_fields(req, patch_spec, COUNT_OF(patch_spec), v)) return;
    struct so_loss_reason l;
    enum db_rc rc = store_loss_reason_get(req->db, req->arena, req->auth.account_id, id, &l);
    if (rc != DB_OK) {
        reply_db(req, rc, "loss reason", id);
        return;
    }
    if (domain_loss_reason_update(req->db, req->auth.account_id, id, v[NAME].s, v[EXTERNAL_ID].s,
                                  &req->err) != SO_OK)
        reply_err(req);
    else
        reply_loss_reason(req, 200, id);
}

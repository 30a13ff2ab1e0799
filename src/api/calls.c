#include "common.h"
#include "handlers.h"

void handle_call_create(struct so_req *req)
{
    enum { MANAGER_ID, DEAL_ID, DIRECTION, STARTED_AT, DURATION_S, ANSWERED, EXTERNAL_ID };
    static const char *const directions[] = {"in", "out", NULL};
    static const struct field_spec spec[] = {
        [MANAGER_ID] = {"manager_id", F_ID, F_REQUIRED, 0, 0, NULL},
        [DEAL_ID] = {"deal_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [DIRECTION] = {"direction", F_ENUM, F_REQUIRED, 0, 0, directions},
        [STARTED_AT] = {"started_at", F_TIME, F_REQUIRED, 0, 0, NULL},
        [DURATION_S] = {"duration_s", F_INT, F_REQUIRED, 0, 86400, NULL},
        [ANSWERED] = {"answered", F_BOOL, F_REQUIRED, 0, 0, NULL},
        [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_call in = {.external_id = v[EXTERNAL_ID].s,
                         .manager_id = v[MANAGER_ID].i,
                         .deal_id = v[DEAL_ID].is_null ? 0 : v[DEAL_ID].i,
                         .direction = v[DIRECTION].s,
                         .started_at = v[STARTED_AT].i,
                         .duration_s = (int)v[DURATION_S].i,
                         .answered = v[ANSWERED].b};
    struct so_call c;
    if (domain_call_create(req->db, req->arena, &req->auth, &in, req->now, &c, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 201, render_call(&c));
}

static json_t *render_call_item(const void *p)
{
    return render_call(p);
}

void handle_call_list(struct so_req *req)
{
    struct so_call_filter f = {0};
    struct so_page page;
    if (!query_page(req, &page) || !query_id(req, "manager_id", &f.manager_id) ||
        !query_id(req, "deal_id", &f.deal_id))
        return;
    if (!scope_to_own(req, &f.manager_id, &page)) return;
    struct so_call *items;
    int count;
    enum db_rc rc = store_call_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "calls", 0);
    else
        reply_items(req, items, count, sizeof *items, render_call_item, &page);
}

void handle_call_get(struct so_req *req)
{
    int64_t id;
    if (!path_id(req, 0, KIND_CALL, &id)) return;
    struct so_call c;
    enum db_rc rc = store_call_get(req->db, req->arena, req->auth.account_id, id, &c);
    if (rc == DB_OK && req->auth.role == ROLE_MANAGER && c.manager_id != req->auth.manager_id) rc = DB_NONE;
    if (rc != DB_OK)
        reply_db(req, rc, "call", id);
    else
        reply_json_steal(req, 200, render_call(&c));
}

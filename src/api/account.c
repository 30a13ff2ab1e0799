#include "common.h"
#include "handlers.h"

static void reply_account(struct so_req *req)
{
    struct so_account a;
    enum db_rc rc = store_account_get(req->db, req->arena, req->auth.account_id, &a);
    if (rc != DB_OK)
        reply_db(req, rc, "account", req->auth.account_id);
    else
        reply_json_steal(req, 200, render_account(&a));
}

void handle_account_get(struct so_req *req)
{
    reply_account(req);
}

void handle_account_patch(struct so_req *req)
{
    enum { NAME, TIMEZONE };
    static const struct field_spec spec[] = {
        [NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
        [TIMEZONE] = {"timezone", F_STRING, 0, 1, 64, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    if (domain_account_update(req->db, req->auth.account_id, v[NAME].s, v[TIMEZONE].s, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    reply_account(req);
}

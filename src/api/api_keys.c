#include "common.h"
#include "handlers.h"

static json_t *render_key_item(const void *p)
{
    return render_api_key(p);
}

void handle_api_key_create(struct so_req *req)
{
    enum { ROLE, MANAGER_ID, NAME };
    static const char *const roles[] = {"admin", "head", "manager", "readonly", NULL};
    static const struct field_spec spec[] = {
        [ROLE] = {"role", F_ENUM, F_REQUIRED, 0, 0, roles},
        [MANAGER_ID] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_api_key key;
    char plain[64];
    if (domain_api_key_create(req->db, req->arena, req->auth.account_id, (enum so_role)v[ROLE].i,
                              v[MANAGER_ID].is_null ? 0 : v[MANAGER_ID].i, v[NAME].s, req->now, &key, plain,
                              &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    /* API.md's order: the key (shown only here) right after the id */
    json_t *rendered = render_api_key(&key);
    json_t *out = json_pack("{s:I, s:s}", "id", (json_int_t)key.id, "key", plain);
    json_object_update(out, rendered);
    json_decref(rendered);
    reply_json_steal(req, 201, out);
}

void handle_api_key_list(struct so_req *req)
{
    struct so_page page;
    if (!query_page(req, &page)) return;
    struct so_api_key *items;
    int count;
    enum db_rc rc = store_api_key_list(req->db, req->arena, req->auth.account_id, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "api keys", 0);
    else
        reply_items(req, items, count, sizeof *items, render_key_item, &page);
}

void handle_api_key_delete(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "API key", &id)) return;
    enum db_rc rc = store_api_key_delete(req->db, req->auth.account_id, id, req->now);
    if (rc != DB_OK)
        reply_db(req, rc, "API key", id);
    else
        reply_text(req, 204, NULL, "", 0);
}

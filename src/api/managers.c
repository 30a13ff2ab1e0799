#include <string.h>
#include "common.h"
#include "handlers.h"

static const char *const roles[] = {"manager", "head", "admin", NULL};

enum { NAME, EMAIL, ROLE, EXTERNAL_ID, ACTIVE, DISTRIBUTION_ENABLED, WEIGHT };
static const struct field_spec create_spec[] = {
    [NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    [EMAIL] = {"email", F_STRING, F_NULLABLE, 3, 254, NULL},
    [ROLE] = {"role", F_ENUM, F_REQUIRED, 0, 0, roles},
    [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    [ACTIVE] = {"active", F_BOOL, 0, 0, 0, NULL},
    [DISTRIBUTION_ENABLED] = {"distribution_enabled", F_BOOL, 0, 0, 0, NULL},
    [WEIGHT] = {"weight", F_INT, 0, 1, 100, NULL},
};
static const struct field_spec patch_spec[] = {
    [NAME] = {"name", F_STRING, 0, 1, NAME_MAX_CHARS, NULL},
    [EMAIL] = {"email", F_STRING, F_NULLABLE, 3, 254, NULL},
    [ROLE] = {"role", F_ENUM, 0, 0, 0, roles},
    [EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    [ACTIVE] = {"active", F_BOOL, 0, 0, 0, NULL},
    [DISTRIBUTION_ENABLED] = {"distribution_enabled", F_BOOL, 0, 0, 0, NULL},
    [WEIGHT] = {"weight", F_INT, 0, 1, 100, NULL},
};

/* Copies the fields present in the body onto m. */
static bool merge(struct so_req *req, const struct field_value *v, struct so_manager *m)
{
    if (v[EMAIL].present && !v[EMAIL].is_null && strchr(v[EMAIL].s, '@') == NULL) {
        so_field_error(&req->err, "email", "must be an e-mail address");
        reply_err(req);
        return false;
    }
    if (v[NAME].present) m->name = v[NAME].s;
    if (v[EMAIL].present) m->email = v[EMAIL].s;
    if (v[ROLE].present) m->role = v[ROLE].s;
    if (v[EXTERNAL_ID].present) m->external_id = v[EXTERNAL_ID].s;
    if (v[ACTIVE].present) m->active = v[ACTIVE].b;
    if (v[DISTRIBUTION_ENABLED].present) m->distribution_enabled = v[DISTRIBUTION_ENABLED].b;
    if (v[WEIGHT].present) m->weight = (int)v[WEIGHT].i;
    return true;
}

static void reply_manager(struct so_req *req, int status, int64_t id)
{
    struct so_manager m;
    enum db_rc rc = store_manager_get(req->db, req->arena, req->auth.account_id, id, &m);
    if (rc != DB_OK)
        reply_db(req, rc, "manager", id);
    else if (domain_managers_eligibility(req->db, req->arena, req->auth.account_id, req->now, &m, 1,
                                         &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, status, render_manager(&m));
}

void handle_manager_create(struct so_req *req)
{
    struct field_value v[COUNT_OF(create_spec)];
    if (!body_fields(req, create_spec, COUNT_OF(create_spec), v)) return;
    struct so_manager m = {.active = true, .distribution_enabled = true, .weight = 1};
    if (!merge(req, v, &m)) return;
    int64_t id;
    if (domain_manager_create(req->db, req->auth.account_id, &m, req->now, &id, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    reply_manager(req, 201, id);
}

static json_t *render_manager_item(const void *p)
{
    return render_manager(p);
}

void handle_manager_list(struct so_req *req)
{
    struct so_page page;
    if (!query_page(req, &page)) return;
    struct so_manager *items;
    int count;
    enum db_rc rc = store_manager_list(req->db, req->arena, req->auth.account_id, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "managers", 0);
    else if (domain_managers_eligibility(req->db, req->arena, req->auth.account_id, req->now, items, count,
                                         &req->err) != SO_OK)
        reply_err(req);
    else
        reply_items(req, items, count, sizeof *items, render_manager_item, &page);
}

void handle_manager_get(struct so_req *req)
{
    int64_t id;
    if (path_id(req, 0, KIND_MANAGER, &id)) reply_manager(req, 200, id);
}

void handle_manager_patch(struct so_req *req)
{
    int64_t id;
    if (!path_id(req, 0, KIND_MANAGER, &id)) return;
    struct field_value v[COUNT_OF(patch_spec)];
    if (!body_fields(req, patch_spec, COUNT_OF(patch_spec), v)) return;
    struct so_manager m;
    enum db_rc rc = store_manager_get(req->db, req->arena, req->auth.account_id, id, &m);
    if (rc != DB_OK) {
        reply_db(req, rc, "manager", id);
        return;
    }
    if (!merge(req, v, &m)) return;
    if (domain_manager_update(req->db, req->auth.account_id, &m, req->now, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    reply_manager(req, 200, id);
}

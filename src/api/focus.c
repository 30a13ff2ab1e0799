/* Focus mode: a manager's saved filter, starting and stopping sessions, marking items done, the history. */
#include <string.h>
#include "common.h"
#include "handlers.h"

#define FOCUS_MAX_STAGES  100
#define FOCUS_MAX_LIMIT   10000
#define FOCUS_MAX_MINUTES 1440
#define FOCUS_DEFAULT_MIN 120

static const char *const orders[] = {"oldest", "price_desc", "overdue_first", NULL};

/* The manager in the path: 404 when there is none; a manager key may name only himself (403). */
static bool path_manager(struct so_req *req, int64_t *id)
{
    if (!path_id(req, 0, KIND_MANAGER, id)) return false;
    if (req->auth.role == ROLE_MANAGER && *id != req->auth.manager_id) {
        reply_error(req, ERR_FORBIDDEN, "a manager key acts only on his own focus");
        return false;
    }
    struct so_manager m;
    enum db_rc rc = store_manager_get(req->db, req->arena, req->auth.account_id, *id, &m);
    if (rc == DB_OK) return true;
    reply_db(req, rc, "manager", *id);
    return false;
}

/* A filter from the body; replies 422 and returns false when it is not valid. */
static bool body_filter(struct so_req *req, int64_t manager_id, struct so_focus_filter *f)
{
    enum { PIPELINE_ID, STAGE_IDS, ORDER, LIMIT, MAX_MINUTES };
    static const struct field_spec spec[] = {
        [PIPELINE_ID] = {"pipeline_id", F_ID, F_REQUIRED, 0, 0, NULL},
        [STAGE_IDS] = {"stage_ids", F_JSON, F_REQUIRED, 0, 0, NULL},
        [ORDER] = {"order", F_ENUM, 0, 0, 0, orders},
        [LIMIT] = {"limit", F_INT, F_NULLABLE, 1, FOCUS_MAX_LIMIT, NULL},
        [MAX_MINUTES] = {"max_minutes", F_INT, 0, 1, FOCUS_MAX_MINUTES, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return false;
    json_t *ids = v[STAGE_IDS].j;
    size_t n = json_is_array(ids) ? json_array_size(ids) : 0;
    if (n < 1 || n > FOCUS_MAX_STAGES) {
        so_field_error(&req->err, "stage_ids", "must be a list of 1 to %d stage ids", FOCUS_MAX_STAGES);
        reply_err(req);
        return false;
    }
    *f = (struct so_focus_filter){.manager_id = manager_id,
                                  .pipeline_id = v[PIPELINE_ID].i,
                                  .stage_ids = arena_alloc(req->arena, sizeof(int64_t) * n),
                                  .order = v[ORDER].present ? v[ORDER].s : "oldest",
                                  .limit = v[LIMIT].present && !v[LIMIT].is_null ? (int)v[LIMIT].i : 0,
                                  .max_minutes = v[MAX_MINUTES].present ? (int)v[MAX_MINUTES].i : FOCUS_DEFAULT_MIN};
    if (f->stage_ids == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(ids, i);
        json_int_t id = json_is_integer(x) ? json_integer_value(x) : 0;
        bool repeated = false;
        for (int k = 0; k < f->stage_count; k++)
            repeated = repeated || f->stage_ids[k] == id;
        if (id < 1 || id > 9007199254740991LL || repeated) {
            so_field_error(&req->err, "stage_ids", "item %zu must be a stage id, given once", i);
            reply_err(req);
            return false;
        }
        f->stage_ids[f->stage_count++] = id;
    }
    return true;
}

static void reply_filter(struct so_req *req, int64_t manager_id)
{
    struct so_focus_filter f;
    enum db_rc rc = store_focus_filter_get(req->db, req->arena, req->auth.account_id, manager_id, &f);
    if (rc == DB_NONE)
        reply_error(req, ERR_NOT_FOUND, "manager %lld has no focus filter", (long long)manager_id);
    else if (rc != DB_OK)
        reply_db(req, rc, "focus filter", manager_id);
    else
        reply_json_steal(req, 200, render_focus_filter(&f));
}

void handle_focus_filter_put(struct so_req *req)
{
    int64_t id;
    struct so_focus_filter f;
    if (!path_manager(req, &id) || !body_filter(req, id, &f)) return;
    if (domain_focus_filter_put(req->db, req->arena, req->auth.account_id, &f, req->now, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_filter(req, id);
}

void handle_focus_filter_get(struct so_req *req)
{
    int64_t id;
    if (path_manager(req, &id)) reply_filter(req, id);
}

static void reply_session(struct so_req *req, int status, enum so_err e, const struct so_focus_session *s)
{
    if (e != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, status, render_focus_session(s));
}

void handle_focus_start(struct so_req *req)
{
    int64_t id;
    if (!path_manager(req, &id)) return;
    bool has_body = req->body != NULL && json_object_size(req->body) > 0;
    struct so_focus_filter f;
    if (has_body && req->auth.role == ROLE_MANAGER) {
        reply_error(req, ERR_FORBIDDEN, "a manager key starts focus with his saved filter: send no body");
        return;
    }
    if (has_body && !body_filter(req, id, &f)) return;
    struct so_focus_session s;
    enum so_err e =
        domain_focus_start(req->db, req->arena, &req->auth, id, has_body ? &f : NULL, req->now, &s, &req->err);
    reply_session(req, 201, e, &s);
}

void handle_focus_active_get(struct so_req *req)
{
    int64_t id, active;
    int in_focus;
    if (!path_manager(req, &id)) return;
    enum db_rc rc = store_focus_state(req->db, req->auth.account_id, id, &active, &in_focus);
    if (rc != DB_OK) {
        reply_db(req, rc, "focus", id);
        return;
    }
    if (active == 0) {
        reply_error(req, ERR_NOT_FOUND, "manager %lld is not in focus", (long long)id);
        return;
    }
    struct so_focus_session s;
    reply_session(req, 200, domain_focus_session_visible(req->db, req->arena, &req->auth, active, &s, &req->err),
                  &s);
}

void handle_focus_session_get(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "focus session", &id)) return;
    struct so_focus_session s;
    reply_session(req, 200, domain_focus_session_visible(req->db, req->arena, &req->auth, id, &s, &req->err), &s);
}

void handle_focus_item_done(struct so_req *req)
{
    int64_t id, deal_id;
    if (!path_plain_id(req, 0, "focus session", &id) || !path_id(req, 1, KIND_DEAL, &deal_id)) return;
    struct so_focus_session s;
    reply_session(req, 200,
                  domain_focus_mark_done(req->db, req->arena, &req->auth, id, deal_id, req->now, &s, &req->err),
                  &s);
}

void handle_focus_stop(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "focus session", &id)) return;
    struct so_focus_session s;
    reply_session(req, 200, domain_focus_stop(req->db, req->arena, &req->auth, id, req->now, &s, &req->err), &s);
}

static json_t *render_session_item(const void *p)
{
    return render_focus_session(p);
}

void handle_focus_session_list(struct so_req *req)
{
    struct so_page page;
    struct so_focus_session_filter f = {0};
    if (!query_page(req, &page) || !query_id(req, "manager_id", &f.manager_id) ||
        !query_period(req, false, &f.from_date, &f.to_date) || !scope_to_own(req, &f.manager_id, &page))
        return;
    struct so_focus_session *items;
    int count;
    enum db_rc rc =
        store_focus_session_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "focus sessions", 0);
    else
        reply_items(req, items, count, sizeof *items, render_session_item, &page);
}

#include <string.h>
#include "common.h"
#include "handlers.h"

/* rejection_control tasks are made only by salesops */
static const char *const writable_types[] = {"call", "meeting", "follow_up", "other", NULL};
static const char *const all_types[] = {"call", "meeting", "follow_up", "other", "rejection_control", NULL};
static const char *const states[] = {"open", "overdue", "done", "deleted", NULL};

void handle_task_create(struct so_req *req)
{
    enum { DEAL_ID, MANAGER_ID, TYPE, TEXT, DUE_AT };
    static const struct field_spec spec[] = {
        [DEAL_ID] = {"deal_id", F_ID, F_REQUIRED, 0, 0, NULL},
        [MANAGER_ID] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [TYPE] = {"type", F_ENUM, F_REQUIRED, 0, 0, writable_types},
        [TEXT] = {"text", F_STRING, F_REQUIRED, 0, TEXT_MAX_CHARS, NULL},
        [DUE_AT] = {"due_at", F_TIME, F_REQUIRED, 0, 0, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct task_create in = {.deal_id = v[DEAL_ID].i,
                             .manager_id = v[MANAGER_ID].is_null ? 0 : v[MANAGER_ID].i,
                             .type = v[TYPE].s,
                             .text = v[TEXT].s,
                             .due_at = v[DUE_AT].i};
    struct so_task t;
    if (domain_task_create(req->db, req->arena, &req->auth, &in, req->now, &t, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 201, render_task(&t, req->now));
}

void handle_task_list(struct so_req *req)
{
    struct so_task_filter f = {.now = req->now};
    struct so_page page;
    if (!query_page(req, &page) || !query_id(req, "manager_id", &f.manager_id) ||
        !query_id(req, "deal_id", &f.deal_id) || !query_enum(req, "type", all_types, &f.type) ||
        !query_enum(req, "state", states, &f.state))
        return;
    if (!scope_to_own(req, &f.manager_id, &page)) return;
    struct so_task *items;
    int count;
    enum db_rc rc = store_task_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK) {
        reply_db(req, rc, "tasks", 0);
        return;
    }
    json_t *list = json_array();
    int shown = count > page.limit ? page.limit : count;
    for (int i = 0; i < shown; i++)
        json_array_append_new(list, render_task(&items[i], req->now));
    reply_page(req, list, count, &page, shown ? items[shown - 1].id : 0, 0);
}

void handle_task_get(struct so_req *req)
{
    int64_t id;
    struct so_task t;
    if (!path_id(req, 0, KIND_TASK, &id)) return;
    if (domain_task_visible(req->db, req->arena, &req->auth, id, &t, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 200, render_task(&t, req->now));
}

void handle_task_patch(struct so_req *req)
{
    enum { MANAGER_ID, TYPE, TEXT, DUE_AT };
    static const struct field_spec spec[] = {
        [MANAGER_ID] = {"manager_id", F_ID, 0, 0, 0, NULL},
        [TYPE] = {"type", F_ENUM, 0, 0, 0, writable_types},
        [TEXT] = {"text", F_STRING, 0, 0, TEXT_MAX_CHARS, NULL},
        [DUE_AT] = {"due_at", F_TIME, 0, 0, 0, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_TASK, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct task_patch in = {.set_manager = v[MANAGER_ID].present,
                            .manager_id = v[MANAGER_ID].i,
                            .set_type = v[TYPE].present,
                            .type = v[TYPE].s,
                            .set_text = v[TEXT].present,
                            .text = v[TEXT].s,
                            .set_due = v[DUE_AT].present,
                            .due_at = v[DUE_AT].i};
    struct so_task t;
    if (domain_task_patch(req->db, req->arena, &req->auth, id, &in, req->now, &t, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 200, render_task(&t, req->now));
}

void handle_task_delete(struct so_req *req)
{
    int64_t id;
    if (!path_id(req, 0, KIND_TASK, &id)) return;
    if (domain_task_delete(req->db, req->arena, &req->auth, id, req->now, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_text(req, 204, NULL, "", 0);
}

void handle_task_complete(struct so_req *req)
{
    enum { RESULT };
    static const struct field_spec spec[] = {
        [RESULT] = {"result", F_STRING, F_NULLABLE, 0, TEXT_MAX_CHARS, NULL},
    };
    int64_t id;
    if (!path_id(req, 0, KIND_TASK, &id)) return;
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_task t;
    if (domain_task_complete(req->db, req->arena, &req->auth, id, v[RESULT].s, req->now, &t, &req->err) !=
        SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 200, render_task(&t, req->now));
}

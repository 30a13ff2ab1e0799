/* Lead distribution: settings, every manager's state, the next manager for a lead or call, the log. */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "handlers.h"
#include "salesops/distribution.h"

static const char *const strategies[] = {"weighted", "round_robin", NULL};
static const char *const kinds[] = {"lead", "call", NULL};

static json_t *render_settings(const struct so_dist_settings *s)
{
    struct working_hours wh;
    working_hours_from_text(s->working_hours, &wh);
    return json_pack("{s:s, s:o, s:o}", "strategy", s->strategy, "working_hours", working_hours_json(&wh),
                     "max_in_focus", s->max_in_focus >= 0 ? json_integer(s->max_in_focus) : json_null());
}

void handle_distribution_get(struct so_req *req)
{
    struct dist_state st;
    if (domain_dist_load(req->db, req->arena, req->auth.account_id, "lead", req->now, &st, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    int64_t waiting;
    enum db_rc rc = store_dist_waiting_count(req->db, req->auth.account_id, &waiting);
    if (rc != DB_OK) {
        reply_db(req, rc, "distribution", 0);
        return;
    }
    json_t *managers = json_array();
    for (int i = 0; i < st.n; i++) {
        const struct dist_candidate *c = &st.c[i];
        json_array_append_new(managers,
                              json_pack("{s:I, s:s, s:s, s:i, s:b, s:o}", "manager_id", (json_int_t)c->manager_id,
                                        "name", c->name, "role", c->role, "weight", c->weight, "eligible",
                                        st.eligible[i], "reason", json_str_or_null(st.reasons[i])));
    }
    json_t *body = render_settings(&st.settings);
    json_object_set_new(body, "awaiting", json_integer((json_int_t)waiting));
    json_object_set_new(body, "managers", managers);
    reply_json_steal(req, 200, body);
}

void handle_distribution_settings_get(struct so_req *req)
{
    struct so_dist_settings s;
    enum db_rc rc = store_dist_settings_get(req->db, req->arena, req->auth.account_id, req->now, &s);
    if (rc != DB_OK)
        reply_db(req, rc, "distribution settings", 0);
    else
        reply_json_steal(req, 200, render_settings(&s));
}

void handle_distribution_settings_put(struct so_req *req)
{
    enum { STRATEGY, WORKING_HOURS, MAX_IN_FOCUS };
    static const struct field_spec spec[] = {
        [STRATEGY] = {"strategy", F_ENUM, 0, 0, 0, strategies},
        [WORKING_HOURS] = {"working_hours", F_JSON, F_NULLABLE, 0, 0, NULL},
        [MAX_IN_FOCUS] = {"max_in_focus", F_INT, F_NULLABLE, 0, 10000, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct working_hours wh;
    if (working_hours_parse(v[WORKING_HOURS].present ? v[WORKING_HOURS].j : NULL, "working_hours", &wh,
                            &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    json_t *hours = working_hours_json(&wh);
    char *text = wh.set ? json_dumps(hours, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(hours);
    struct so_dist_settings s = {
        .strategy = v[STRATEGY].present ? v[STRATEGY].s : "weighted",
        .working_hours = text ? arena_strdup(req->arena, text) : NULL,
        .max_in_focus = v[MAX_IN_FOCUS].present && !v[MAX_IN_FOCUS].is_null ? (int)v[MAX_IN_FOCUS].i : -1};
    free(text);
    if (domain_dist_settings_put(req->db, req->auth.account_id, &s, req->now, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    handle_distribution_settings_get(req);
}

void handle_distribution_next(struct so_req *req)
{
    enum { KIND };
    static const struct field_spec spec[] = {[KIND] = {"kind", F_ENUM, F_REQUIRED, 0, 0, kinds}};
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    int64_t manager_id, assignment_id;
    if (domain_dist_next(req->db, req->arena, req->auth.account_id, v[KIND].s, req->now, &manager_id,
                         &assignment_id, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    reply_json_steal(req, 200,
                     json_pack("{s:I, s:s, s:I}", "manager_id", (json_int_t)manager_id, "kind", v[KIND].s,
                               "assignment_id", (json_int_t)assignment_id));
}

static json_t *render_assignment_item(const void *p)
{
    return render_assignment(p);
}

void handle_assignment_list(struct so_req *req)
{
    struct so_page page;
    struct so_assignment_filter f = {0};
    if (!query_page(req, &page) || !query_enum(req, "kind", kinds, &f.kind) ||
        !query_id(req, "manager_id", &f.manager_id) || !query_id(req, "deal_id", &f.deal_id))
        return;
    struct so_assignment *items;
    int count;
    enum db_rc rc = store_assignment_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "assignments", 0);
    else
        reply_items(req, items, count, sizeof *items, render_assignment_item, &page);
}

/* Rejection control: the rule, the reviews with their decisions, and whether it pays (stats). */
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "handlers.h"

#define MAX_REASONS   200
#define MAX_DUE_HOURS (24 * 30)

static const char *const states[] = {"pending", "returned", "confirmed", NULL};
static const char *const decisions[] = {"return", "confirm", NULL};

/* A share 0..1 with at most 4 decimals, as a JSON number. */
static json_t *json_share(double v)
{
    return json_real((double)domain_ten_thousandths(v) / 10000);
}

static json_t *render_rule(const struct so_rejection_rule *r)
{
    json_t *reasons = r->any_reason ? json_string("any") : json_id_array(r->loss_reason_ids, r->loss_reason_count);
    return json_pack("{s:b, s:o, s:o, s:i, s:o, s:o, s:o}", "enabled", r->enabled, "loss_reason_ids", reasons,
                     "reviewer_id", json_id(r->reviewer_id), "due_hours", r->due_hours, "target_return_share",
                     json_share(r->target_return_share), "sample_share", json_share(r->sample_share),
                     "enabled_since", json_time(r->enabled_since));
}

static void reply_rule(struct so_req *req)
{
    struct so_rejection_rule r;
    enum db_rc rc = store_rejection_rule_get(req->db, req->arena, req->auth.account_id, &r);
    if (rc != DB_OK)
        reply_db(req, rc, "rejection control settings", 0);
    else
        reply_json_steal(req, 200, render_rule(&r));
}

void handle_rejection_settings_get(struct so_req *req)
{
    reply_rule(req);
}

/* A share field: a number from 0 to 1 with at most 4 decimals. */
static bool share_field(struct so_req *req, const struct field_value *v, const char *name, double dflt, double *out)
{
    *out = dflt;
    if (!v->present) return true;
    double x = json_is_number(v->j) ? json_number_value(v->j) : -1;
    double off = x * 10000 - (double)domain_ten_thousandths(x);
    if (x < 0 || x > 1 || off > 1e-6 || off < -1e-6) {
        so_field_error(&req->err, name, "must be a number from 0 to 1 with at most 4 decimals");
        return false;
    }
    *out = x;
    return true;
}

void handle_rejection_settings_put(struct so_req *req)
{
    enum { ENABLED, REASONS, REVIEWER, DUE_HOURS, TARGET, SAMPLE };
    static const struct field_spec spec[] = {
        [ENABLED] = {"enabled", F_BOOL, F_REQUIRED, 0, 0, NULL},
        [REASONS] = {"loss_reason_ids", F_JSON, 0, 0, 0, NULL},
        [REVIEWER] = {"reviewer_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [DUE_HOURS] = {"due_hours", F_INT, 0, 1, MAX_DUE_HOURS, NULL},
        [TARGET] = {"target_return_share", F_JSON, 0, 0, 0, NULL},
        [SAMPLE] = {"sample_share", F_JSON, 0, 0, 0, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct so_rejection_rule r = {.enabled = v[ENABLED].b,
                                  .reviewer_id = v[REVIEWER].present && !v[REVIEWER].is_null ? v[REVIEWER].i : 0,
                                  .due_hours = v[DUE_HOURS].present ? (int)v[DUE_HOURS].i : 24};
    bool ok = share_field(req, &v[TARGET], "target_return_share", 0.1, &r.target_return_share);
    ok = share_field(req, &v[SAMPLE], "sample_share", 1, &r.sample_share) && ok;
    json_t *reasons = v[REASONS].j;
    if (!v[REASONS].present) {
        /* no reasons: nothing qualifies until some are named */
    } else if (json_is_string(reasons) && strcmp(json_string_value(reasons), "any") == 0) {
        r.any_reason = true;
    } else if (json_is_array(reasons) && json_array_size(reasons) <= MAX_REASONS) {
        r.loss_reason_ids = arena_alloc(req->arena, sizeof(int64_t) * (json_array_size(reasons) + 1));
        size_t i;
        json_t *x;
        json_array_foreach(reasons, i, x)
        {
            json_int_t id = json_is_integer(x) ? json_integer_value(x) : 0;
            if (id < 1 || id > 9007199254740991LL) {
                ok = !so_field_error(&req->err, "loss_reason_ids", "item %zu must be a loss reason id", i);
                break;
            }
            r.loss_reason_ids[r.loss_reason_count++] = id;
        }
    } else {
        ok = !so_field_error(&req->err, "loss_reason_ids", "must be \"any\" or a list of at most %d loss reason ids",
                             MAX_REASONS);
    }
    if (!ok || domain_rejection_rule_put(req->db, req->arena, req->auth.account_id, &r, req->now, &req->err) != SO_OK) {
        reply_err(req);
        return;
    }
    reply_rule(req);
}

static json_t *render_review(const struct so_review *v)
{
    return json_pack("{s:I, s:I, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}", "id", (json_int_t)v->id,
                     "deal_id", (json_int_t)v->deal_id, "task_id", json_id(v->task_id), "lost_by_manager_id",
                     json_id(v->lost_by_manager_id), "loss_reason_id", json_id(v->loss_reason_id), "lost_at",
                     json_time(v->lost_at), "state", v->state, "decided_at", json_time(v->decided_at), "note",
                     json_str_or_null(v->note), "returned_to_manager_id", json_id(v->returned_to_id),
                     "follow_up_task_id", json_id(v->follow_up_task_id), "created_at", json_time(v->created_at));
}

static json_t *render_review_item(const void *p)
{
    return render_review(p);
}

void handle_review_list(struct so_req *req)
{
    struct so_page page;
    struct so_review_filter f = {0};
    if (!query_page(req, &page) || !query_enum(req, "state", states, &f.state) ||
        !query_id(req, "manager_id", &f.manager_id) || !query_period(req, false, &f.from_date, &f.to_date))
        return;
    struct so_review *items;
    int count;
    enum db_rc rc = store_review_list(req->db, req->arena, req->auth.account_id, &f, &page, &items, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "reviews", 0);
    else
        reply_items(req, items, count, sizeof *items, render_review_item, &page);
}

void handle_review_get(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "review", &id)) return;
    struct so_review v;
    enum db_rc rc = store_review_get(req->db, req->arena, req->auth.account_id, id, false, &v);
    if (rc != DB_OK)
        reply_db(req, rc, "review", id);
    else
        reply_json_steal(req, 200, render_review(&v));
}

void handle_review_decision(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "review", &id)) return;
    enum { DECISION, NOTE, MANAGER, STAGE, DUE };
    static const struct field_spec spec[] = {
        [DECISION] = {"decision", F_ENUM, F_REQUIRED, 0, 0, decisions},
        [NOTE] = {"note", F_STRING, F_NULLABLE, 1, TEXT_MAX_CHARS, NULL},
        [MANAGER] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [STAGE] = {"stage_id", F_ID, F_NULLABLE, 0, 0, NULL},
        [DUE] = {"follow_up_due_at", F_TIME, F_NULLABLE, 0, 0, NULL},
    };
    struct field_value v[COUNT_OF(spec)];
    if (!body_fields(req, spec, COUNT_OF(spec), v)) return;
    struct review_decision in = {.decision = v[DECISION].s,
                                 .note = v[NOTE].present && !v[NOTE].is_null ? v[NOTE].s : NULL,
                                 .manager_id = v[MANAGER].present && !v[MANAGER].is_null ? v[MANAGER].i : 0,
                                 .stage_id = v[STAGE].present && !v[STAGE].is_null ? v[STAGE].i : 0,
                                 .follow_up_due_at = v[DUE].present && !v[DUE].is_null ? v[DUE].i : 0};
    bool returning = strcmp(in.decision, "return") == 0;
    if (!returning && (in.manager_id || in.stage_id || in.follow_up_due_at)) {
        so_field_error(&req->err, in.manager_id ? "manager_id" : in.stage_id ? "stage_id" : "follow_up_due_at",
                       "only a return takes a manager, a stage or a follow-up time");
        reply_err(req);
        return;
    }
    struct so_review out;
    if (domain_review_decide(req->db, req->arena, &req->auth, id, &in, req->now, &out, &req->err) != SO_OK)
        reply_err(req);
    else
        reply_json_steal(req, 200, render_review(&out));
}

static json_t *json_numeric_text(const char *s)
{
    return s ? json_real(strtod(s, NULL)) : json_null();
}

void handle_rejection_stats(struct so_req *req)
{
    const char *from, *to;
    if (!query_period(req, false, &from, &to)) return;
    struct so_rejection_stats st;
    struct so_rejection_manager_stats *ms;
    int n;
    struct so_rejection_rule rule;
    enum db_rc rc = store_rejection_stats(req->db, req->arena, req->auth.account_id, from, to, &st, &ms, &n);
    if (rc == DB_OK) rc = store_rejection_rule_get(req->db, req->arena, req->auth.account_id, &rule);
    if (rc != DB_OK) {
        reply_db(req, rc, "rejection control stats", 0);
        return;
    }
    json_t *by_manager = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(by_manager, json_pack("{s:o, s:I, s:I, s:I}", "manager_id", json_id(ms[i].manager_id),
                                                    "reviewed", (json_int_t)ms[i].reviewed, "returned",
                                                    (json_int_t)ms[i].returned, "recovered",
                                                    (json_int_t)ms[i].recovered));
    json_t *median = st.median_decision_s ? json_integer(strtoll(st.median_decision_s, NULL, 10)) : json_null();
    reply_json_steal(
        req, 200,
        json_pack("{s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:I, s:o, s:o}", "reviews", (json_int_t)st.reviews, "pending",
                  (json_int_t)st.pending, "decided", (json_int_t)st.decided, "returned", (json_int_t)st.returned,
                  "return_share", json_numeric_text(st.return_share), "target_return_share",
                  json_share(rule.target_return_share), "recovered", (json_int_t)st.recovered, "recovered_revenue",
                  (json_int_t)st.recovered_revenue, "median_decision_s", median, "by_manager", by_manager));
}

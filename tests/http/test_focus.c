/* Focus mode over HTTP: the saved filter and its validation, starting a session (the queue's snapshot, its
 * orders and limit, refusals, the cap, roles), the manager out of distribution while in focus, items done by
 * marking and by the manager's own actions, deals leaving the queue, the three ends (queue done, stopped,
 * timeout with no request in flight), waiting leads coming back, the session list, and other accounts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(focus, .init = setup, .fini = th_server_stop);

#define V1    "/api/v1"
#define LL(x) ((long long)(x))
#define MSK   (3 * 3600) /* Europe/Moscow: UTC+3 all year */

/* ---- helpers ---- */

/* now + offset_s as YYYY-MM-DDTHH:MM:SSZ */
static void iso_at(char out[32], int64_t offset_s)
{
    th_format_time((int64_t)time(NULL) + offset_s, out);
}

static json_t *jget(const struct th_resp *r, const char *field)
{
    return json_object_get(r->json, field);
}

/* A deal created by the admin key in a pipeline and stage for a manager (0: none given), with an optional
 * external id. */
static int64_t create_deal_in(int64_t pipeline_id, int64_t stage_id, int64_t manager_id, int64_t price,
                              const char *ext)
{
    char extra[256] = "";
    size_t n = 0;
    if (stage_id) n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"stage_id\":%lld", LL(stage_id));
    if (manager_id)
        n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"manager_id\":%lld", LL(manager_id));
    if (ext) n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"external_id\":\"%s\"", ext);
    struct th_resp r =
        th_post(w.acct.admin_key, V1 "/deals", "{\"name\":\"Сделка\",\"price\":%lld,\"pipeline_id\":%lld%s}",
                LL(price), LL(pipeline_id), extra);
    cr_assert_eq(r.status, 201, "deal: %s", r.body);
    if (manager_id) cr_assert_eq(th_int(&r, "manager_id"), manager_id, "%s", r.body);
    if (stage_id) cr_assert_eq(th_int(&r, "stage_id"), stage_id, "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

static int64_t create_deal(int64_t stage_id, int64_t manager_id, int64_t price)
{
    return create_deal_in(w.pipeline_id, stage_id, manager_id, price, NULL);
}

/* A lead created by the admin key without a manager; checks the reply's distribution object and returns the
 * deal's manager (0 when none). */
static int64_t new_lead(bool expect_assigned, int64_t *deal_id)
{
    struct th_resp r = th_post(w.acct.admin_key, V1 "/deals",
                               "{\"name\":\"Лид\",\"price\":100,\"pipeline_id\":%lld}", LL(w.pipeline_id));
    cr_assert_eq(r.status, 201, "lead: %s", r.body);
    json_t *dist = jget(&r, "distribution");
    cr_assert(json_is_object(dist), "no distribution in %s", r.body);
    cr_assert(json_is_boolean(json_object_get(dist, "assigned")), "%s", r.body);
    cr_assert_eq(json_is_true(json_object_get(dist, "assigned")), expect_assigned, "assigned: %s", r.body);
    json_t *reason = json_object_get(dist, "reason");
    if (expect_assigned) {
        cr_assert(json_is_null(reason), "reason: %s", r.body);
    } else {
        cr_assert(json_is_string(reason), "reason: %s", r.body);
        cr_assert_str_eq(json_string_value(reason), "no_eligible_manager", "%s", r.body);
    }
    json_t *m = jget(&r, "manager_id");
    int64_t manager = 0;
    if (expect_assigned) {
        cr_assert(json_is_integer(m), "manager_id: %s", r.body);
        manager = json_integer_value(m);
    } else {
        cr_assert(json_is_null(m), "manager_id must be null: %s", r.body);
    }
    if (deal_id) *deal_id = th_int(&r, "id");
    th_resp_free(&r);
    return manager;
}

static int64_t create_task(int64_t deal_id, const char *due)
{
    struct th_resp r = th_post(
        w.acct.admin_key, V1 "/tasks",
        "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Позвонить\",\"due_at\":\"%s\"}", LL(deal_id), due);
    cr_assert_eq(r.status, 201, "task: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

static void put_filter(int64_t manager_id, const char *body)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus-filter", LL(manager_id));
    struct th_resp r = th_put(w.acct.admin_key, path, "%s", body);
    cr_assert_eq(r.status, 200, "filter %s: %s", body, r.body);
    th_resp_free(&r);
}

/* A filter over the given stages of the main pipeline with the given order and extra fields ("" or
 * ",\"limit\":2"...). */
static void put_stages_filter(int64_t manager_id, const int64_t *stages, int n, const char *order,
                              const char *extra)
{
    char body[512];
    size_t k =
        (size_t)snprintf(body, sizeof body, "{\"pipeline_id\":%lld,\"stage_ids\":[", LL(w.pipeline_id));
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(body + k, sizeof body - k, "%s%lld", i ? "," : "", LL(stages[i]));
    snprintf(body + k, sizeof body - k, "],\"order\":\"%s\"%s}", order, extra);
    put_filter(manager_id, body);
}

static struct th_resp start(const char *key, int64_t manager_id)
{
    return th_post_empty(key, V1 "/managers/%lld/focus", LL(manager_id));
}

/* Starts focus for a manager with the admin key and its saved filter; returns the session id. */
static int64_t start_ok(int64_t manager_id, struct th_resp *out)
{
    struct th_resp r = start(w.acct.admin_key, manager_id);
    cr_assert_eq(r.status, 201, "start focus for %lld: %s", LL(manager_id), r.body);
    int64_t id = th_int(&r, "id");
    if (out)
        *out = r;
    else
        th_resp_free(&r);
    return id;
}

static struct th_resp get_session(const char *key, int64_t id)
{
    return th_get(key, V1 "/focus-sessions/%lld", LL(id));
}

static struct th_resp mark_done(const char *key, int64_t session, int64_t deal)
{
    return th_post_empty(key, V1 "/focus-sessions/%lld/items/%lld/done", LL(session), LL(deal));
}

static struct th_resp stop(const char *key, int64_t session)
{
    return th_post_empty(key, V1 "/focus-sessions/%lld/stop", LL(session));
}

/* The session's items are exactly these deals in this order, and total says so. */
static void expect_queue(const struct th_resp *r, const int64_t *deals, size_t n, const char *what)
{
    json_t *items = jget(r, "items");
    cr_assert(json_is_array(items), "%s: no items: %s", what, r->body);
    cr_assert_eq(json_array_size(items), n, "%s: %zu items expected: %s", what, n, r->body);
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(items, i);
        json_t *d = json_object_get(it, "deal_id");
        cr_assert(json_is_integer(d), "%s: item %zu: %s", what, i, r->body);
        cr_assert_eq(json_integer_value(d), deals[i], "%s: item %zu is deal %lld, expected %lld: %s", what, i,
                     LL(json_integer_value(d)), LL(deals[i]), r->body);
    }
    cr_assert_eq(th_int(r, "total"), (int64_t)n, "%s: total: %s", what, r->body);
}

static json_t *item_of(const struct th_resp *r, int64_t deal)
{
    json_t *items = jget(r, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        if (json_integer_value(json_object_get(it, "deal_id")) == deal) return it;
    }
    return NULL;
}

/* The item of deal in the session is done (done_at a time) or not (done_at null). */
static void expect_item(const struct th_resp *r, int64_t deal, bool done, const char *what)
{
    json_t *it = item_of(r, deal);
    cr_assert(it != NULL, "%s: deal %lld is not in the queue: %s", what, LL(deal), r->body);
    json_t *at = json_object_get(it, "done_at");
    cr_assert(at != NULL, "%s: item without done_at: %s", what, r->body);
    if (done) {
        cr_assert(json_is_string(at), "%s: deal %lld should be done: %s", what, LL(deal), r->body);
        th_parse_time(json_string_value(at));
    } else {
        cr_assert(json_is_null(at), "%s: deal %lld should not be done: %s", what, LL(deal), r->body);
    }
}

static void expect_state(const struct th_resp *r, const char *state, const char *end_reason, const char *what)
{
    cr_assert_str_eq(th_str(r, "state") ? th_str(r, "state") : "", state, "%s: state: %s", what, r->body);
    if (end_reason == NULL) {
        cr_assert(th_jnull(r->json, "end_reason"), "%s: end_reason must be null: %s", what, r->body);
        cr_assert(th_jnull(r->json, "ended_at"), "%s: ended_at must be null: %s", what, r->body);
    } else {
        cr_assert_str_eq(th_str(r, "end_reason") ? th_str(r, "end_reason") : "", end_reason,
                         "%s: end_reason: %s", what, r->body);
        int64_t ended = th_parse_time(th_str(r, "ended_at"));
        cr_assert_geq(ended, th_parse_time(th_str(r, "started_at")), "%s: %s", what, r->body);
    }
}

/* GET /managers/{id}: in_focus and eligible. */
static void expect_manager(int64_t id, bool in_focus, bool eligible)
{
    struct th_resp r = th_get(w.acct.admin_key, V1 "/managers/%lld", LL(id));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_is_boolean(jget(&r, "in_focus")), "%s", r.body);
    cr_assert(json_is_boolean(jget(&r, "eligible")), "%s", r.body);
    cr_assert_eq(json_is_true(jget(&r, "in_focus")), in_focus, "manager %lld in_focus: %s", LL(id), r.body);
    cr_assert_eq(json_is_true(jget(&r, "eligible")), eligible, "manager %lld eligible: %s", LL(id), r.body);
    th_resp_free(&r);
}

/* GET /distribution: the manager's eligible flag and reason (NULL: eligible, reason null). */
static void expect_dist_reason(const struct th_resp *r, int64_t manager_id, const char *reason)
{
    json_t *ms = jget(r, "managers");
    for (size_t i = 0; i < json_array_size(ms); i++) {
        json_t *m = json_array_get(ms, i);
        if (json_integer_value(json_object_get(m, "manager_id")) != manager_id) continue;
        json_t *why = json_object_get(m, "reason");
        if (reason == NULL) {
            cr_assert(json_is_true(json_object_get(m, "eligible")), "manager %lld: %s", LL(manager_id),
                      r->body);
            cr_assert(json_is_null(why), "manager %lld: %s", LL(manager_id), r->body);
        } else {
            cr_assert(json_is_false(json_object_get(m, "eligible")), "manager %lld: %s", LL(manager_id),
                      r->body);
            cr_assert(json_is_string(why), "manager %lld: %s", LL(manager_id), r->body);
            cr_assert_str_eq(json_string_value(why), reason, "manager %lld: %s", LL(manager_id), r->body);
        }
        return;
    }
    cr_assert_fail("manager %lld is not in %s", LL(manager_id), r->body);
}

static void post_events(const char *body, int accepted)
{
    struct th_resp r = th_post_events(w.acct.admin_key, body);
    cr_assert_eq(th_int(&r, "accepted"), accepted, "events: %s", r.body);
    th_resp_free(&r);
}

static void give_external_ids(void)
{
    th_patch_manager(w.acct.admin_key, w.manager1, "{\"external_id\":\"fm1\"}");
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"external_id\":\"fm2\"}");
}

/* A second pipeline of the account; returns its first open stage. */
static int64_t second_pipeline(int64_t *pipeline_id)
{
    struct th_resp r = th_post(w.acct.admin_key, V1 "/pipelines",
                               "{\"name\":\"Вторая\",\"stages\":[{\"name\":\"Новая\",\"kind\":\"open\"},"
                               "{\"name\":\"Думает\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    *pipeline_id = th_int(&r, "id");
    json_t *stages = jget(&r, "stages");
    int64_t stage = 0;
    for (size_t i = 0; i < json_array_size(stages) && stage == 0; i++) {
        json_t *s = json_array_get(stages, i);
        if (strcmp(json_string_value(json_object_get(s, "kind")), "open") == 0)
            stage = json_integer_value(json_object_get(s, "id"));
    }
    cr_assert(stage != 0, "%s", r.body);
    th_resp_free(&r);
    return stage;
}

/* ---- 1. the filter ---- */

Test(focus, filter_round_trip_with_defaults_and_replace)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    struct th_resp r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld,%lld]}",
                              LL(w.pipeline_id), LL(w.stages[1]), LL(w.stages[2]));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    cr_assert_eq(th_int(&r, "pipeline_id"), w.pipeline_id, "%s", r.body);
    json_t *ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 2, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[1], "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 1)), w.stages[2], "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "oldest", "%s", r.body);
    cr_assert(th_jnull(r.json, "limit"), "limit defaults to null: %s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 120, "%s", r.body);
    th_parse_time(th_str(&r, "updated_at"));
    char *put_body = strdup(r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "%s", path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, put_body, "GET gives what PUT answered");
    free(put_body);
    th_resp_free(&r);

    r = th_put(w.head_key, path,
               "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"order\":\"price_desc\",\"limit\":5,"
               "\"max_minutes\":30}",
               LL(w.pipeline_id), LL(w.stages[0]));
    cr_assert_eq(r.status, 200, "head may set it: %s", r.body);
    th_resp_free(&r);
    r = th_get(w.readonly_key, "%s", path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[0], "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "price_desc", "%s", r.body);
    cr_assert_eq(th_int(&r, "limit"), 5, "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 30, "%s", r.body);
    th_resp_free(&r);

    /* PUT replaces the whole filter: absent fields are back to their defaults */
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(w.pipeline_id),
               LL(w.stages[2]));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "%s", path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "oldest", "%s", r.body);
    cr_assert(th_jnull(r.json, "limit"), "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 120, "%s", r.body);
    th_resp_free(&r);

    /* the bounds themselves are valid */
    r = th_put(w.acct.admin_key, path,
               "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"limit\":10000,\"max_minutes\":1440}",
               LL(w.pipeline_id), LL(w.stages[2]));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "limit"), 10000, "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 1440, "%s", r.body);
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path,
               "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"limit\":1,\"max_minutes\":1,\"order\":\"overdue_"
               "first\"}",
               LL(w.pipeline_id), LL(w.stages[2]));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "limit"), 1, "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 1, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "overdue_first", "%s", r.body);
    th_resp_free(&r);
}

Test(focus, filter_validation)
{
    int64_t other_pipeline;
    int64_t other_stage = second_pipeline(&other_pipeline);
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    long long p = LL(w.pipeline_id), s = LL(w.stages[1]);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", ",\"limit\":3,\"max_minutes\":60");

    struct th_resp r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld,%lld]}", p,
                              s, LL(other_stage));
    th_expect_field_error(&r, "stage_ids", "a stage of another pipeline");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", p, LL(w.won_stage));
    th_expect_field_error(&r, "stage_ids", "the won stage");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", p, LL(w.lost_stage));
    th_expect_field_error(&r, "stage_ids", "the lost stage");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[]}", p);
    th_expect_field_error(&r, "stage_ids", "empty stage_ids");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld}", p);
    th_expect_field_error(&r, "stage_ids", "no stage_ids");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"stage_ids\":[%lld]}", s);
    th_expect_field_error(&r, "pipeline_id", "no pipeline_id");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"order\":\"newest\"}", p,
               s);
    th_expect_field_error(&r, "order", "unknown order");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"max_minutes\":0}", p, s);
    th_expect_field_error(&r, "max_minutes", "max_minutes 0");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"max_minutes\":1441}", p,
               s);
    th_expect_field_error(&r, "max_minutes", "max_minutes 1441");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"limit\":0}", p, s);
    th_expect_field_error(&r, "limit", "limit 0");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"limit\":10001}", p, s);
    th_expect_field_error(&r, "limit", "limit 10001");
    th_resp_free(&r);

    /* nothing refused was stored */
    r = th_get(w.acct.admin_key, "%s", path);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[1], "%s", r.body);
    cr_assert_eq(th_int(&r, "pipeline_id"), w.pipeline_id, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "oldest", "%s", r.body);
    cr_assert_eq(th_int(&r, "limit"), 3, "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 60, "%s", r.body);
    th_resp_free(&r);

    /* the second pipeline's own open stage is fine with its pipeline */
    r = th_put(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(other_pipeline),
               LL(other_stage));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "pipeline_id"), other_pipeline, "%s", r.body);
    th_resp_free(&r);
}

Test(focus, filter_roles_and_absence)
{
    char path1[96], path2[96];
    snprintf(path1, sizeof path1, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    snprintf(path2, sizeof path2, V1 "/managers/%lld/focus-filter", LL(w.manager2));

    struct th_resp r = th_get(w.acct.admin_key, "%s", path1);
    th_expect_status(&r, 404, "not_found", "no filter yet");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/managers/999999999/focus-filter");
    th_expect_status(&r, 404, "not_found", "no such manager");
    th_resp_free(&r);

    r = th_put(w.manager1_key, path1, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(w.pipeline_id),
               LL(w.stages[1]));
    th_expect_status(&r, 403, "forbidden", "a manager key sets no filter, not even his own");
    th_resp_free(&r);
    r = th_put(w.readonly_key, path1, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(w.pipeline_id),
               LL(w.stages[1]));
    th_expect_status(&r, 403, "forbidden", "a readonly key sets no filter");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "%s", path1);
    th_expect_status(&r, 404, "not_found", "the refused PUTs stored nothing");
    th_resp_free(&r);

    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    put_stages_filter(w.manager2, &w.stages[2], 1, "price_desc", "");

    r = th_get(w.manager1_key, "%s", path1);
    cr_assert_eq(r.status, 200, "his own filter: %s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "%s", path2);
    th_expect_status(&r, 403, "forbidden", "another manager's filter");
    th_resp_free(&r);
    r = th_get(w.manager2_key, "%s", path2);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "price_desc", "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.readonly_key, "%s", path2);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.head_key, "%s", path1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
}

/* ---- 2. starting ---- */

Test(focus, start_refused_without_filter_or_with_an_empty_queue)
{
    create_deal(w.stages[0], w.manager1, 1000); /* his, but outside the filter's stages */
    create_deal(w.stages[1], w.manager2, 1000); /* in the stages, but another manager's */
    struct th_resp r = start(w.acct.admin_key, w.manager1);
    th_expect_status(&r, 422, "validation_failed", "no saved filter");
    th_resp_free(&r);

    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    r = start(w.acct.admin_key, w.manager1);
    th_expect_status(&r, 422, "validation_failed", "an empty queue");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "no session after a refused start");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("focus_sessions", w.acct.id), 0, "a refused start leaves no session");
    cr_assert_eq(th_count_rows("focus_items", w.acct.id), 0);
    expect_manager(w.manager1, false, true);

    r = start(w.acct.admin_key, 999999999);
    th_expect_status(&r, 404, "not_found", "no such manager");
    th_resp_free(&r);
}

Test(focus, start_returns_the_session)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 500);
    int64_t b = create_deal(w.stages[2], w.manager1, 900);
    put_stages_filter(w.manager1, &w.stages[1], 2, "oldest", ",\"max_minutes\":45");
    int64_t before = (int64_t)time(NULL);
    struct th_resp r = start(w.acct.admin_key, w.manager1);
    int64_t after = (int64_t)time(NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert(json_is_integer(jget(&r, "id")), "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    cr_assert_eq(th_int(&r, "pipeline_id"), w.pipeline_id, "%s", r.body);
    json_t *ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 2, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[1], "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 1)), w.stages[2], "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "oldest", "%s", r.body);
    cr_assert(th_jnull(r.json, "limit"), "%s", r.body);
    int64_t started = th_parse_time(th_str(&r, "started_at"));
    cr_assert(started >= before && started <= after, "started_at %lld not in [%lld, %lld]: %s", LL(started),
              LL(before), LL(after), r.body);
    cr_assert_eq(th_parse_time(th_str(&r, "ends_by")), started + 45 * 60, "ends_by = started_at + 45 min: %s",
                 r.body);
    expect_state(&r, "active", NULL, "a new session");
    int64_t queue[] = {a, b};
    expect_queue(&r, queue, 2, "start");
    expect_item(&r, a, false, "start");
    expect_item(&r, b, false, "start");
    cr_assert_eq(th_int(&r, "done"), 0, "%s", r.body);
    char *start_body = strdup(r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, start_body, "the active session is the one started");
    th_resp_free(&r);
    r = get_session(w.readonly_key, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, start_body, "GET /focus-sessions/{id} gives the same session");
    th_resp_free(&r);
    r = get_session(w.manager1_key, id);
    cr_assert_eq(r.status, 200, "his own session: %s", r.body);
    th_resp_free(&r);
    r = get_session(w.manager2_key, id);
    th_expect_status(&r, 404, "not_found", "another manager's session");
    th_resp_free(&r);
    r = th_get(w.manager2_key, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 403, "forbidden", "another manager's focus");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager2));
    th_expect_status(&r, 404, "not_found", "manager2 is not in focus");
    th_resp_free(&r);
    free(start_body);
}

/* One deal.created event (its own batch, so that ids follow the calls' order) for manager1 in stage s2. */
static int64_t deal_by_event(const char *ext, const char *at)
{
    char body[512];
    snprintf(body, sizeof body,
             "[{\"id\":\"ev-%s\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"%s\","
             "\"name\":\"%s\",\"price\":1,\"pipeline\":\"p1\",\"stage\":\"s2\",\"manager\":\"fm1\"}}]",
             ext, at, ext, ext);
    post_events(body, 1);
    return th_sql_int("SELECT id FROM deals WHERE account_id = %lld AND external_id = '%s'", LL(w.acct.id),
                      ext);
}

Test(focus, queue_order_oldest_is_created_at_then_id)
{
    give_external_ids();
    char t4[32], t3[32], t2[32], t1[32];
    iso_at(t4, -4 * 86400);
    iso_at(t3, -3 * 86400);
    iso_at(t2, -2 * 86400);
    iso_at(t1, -1 * 86400);
    int64_t a = deal_by_event("OA", t2);
    int64_t b = deal_by_event("OB", t3);
    int64_t c = deal_by_event("OC", t1);
    int64_t f = deal_by_event("OF", t4);
    int64_t g = deal_by_event("OG", t4);
    cr_assert(a && b && c && f && g && a < b && b < c && c < f && f < g, "ids in creation order");
    int64_t d = create_deal(w.stages[1], w.manager1, 1);
    int64_t e = create_deal(w.stages[1], w.manager1, 1);
    struct th_resp r = th_get(w.acct.admin_key, V1 "/deals/%lld", LL(b));
    cr_assert_str_eq(th_str(&r, "created_at"), t3, "the event's time is the deal's creation: %s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    cr_assert_eq(th_int(&r, "stage_id"), w.stages[1], "%s", r.body);
    th_resp_free(&r);

    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    start_ok(w.manager1, &r);
    int64_t queue[] = {f, g, b, a, c, d, e};
    expect_queue(&r, queue, 7, "oldest");
    th_resp_free(&r);
}

Test(focus, queue_order_price_desc_then_id)
{
    int64_t p100 = create_deal(w.stages[1], w.manager1, 100);
    int64_t p300a = create_deal(w.stages[1], w.manager1, 300);
    int64_t p200 = create_deal(w.stages[1], w.manager1, 200);
    int64_t p300b = create_deal(w.stages[1], w.manager1, 300);
    int64_t p50 = create_deal(w.stages[1], w.manager1, 50);
    int64_t p1000 = create_deal(w.stages[1], w.manager1, 1000);
    put_stages_filter(w.manager1, &w.stages[1], 1, "price_desc", "");
    struct th_resp r;
    start_ok(w.manager1, &r);
    int64_t queue[] = {p1000, p300a, p300b, p200, p100, p50};
    expect_queue(&r, queue, 6, "price_desc");
    cr_assert_str_eq(th_str(&r, "order"), "price_desc", "%s", r.body);
    th_resp_free(&r);
}

Test(focus, queue_order_overdue_first_by_earliest_due_then_the_rest)
{
    char due5[32], due3[32], due2[32], due1[32], due10[32], future[32];
    iso_at(due10, -10 * 3600);
    iso_at(due5, -5 * 3600);
    iso_at(due3, -3 * 3600);
    iso_at(due2, -2 * 3600);
    iso_at(due1, -1 * 3600);
    iso_at(future, 86400);
    int64_t none = create_deal(w.stages[1], w.manager1, 10);      /* no task */
    int64_t over2 = create_deal(w.stages[1], w.manager1, 10);     /* overdue since 2 h */
    int64_t over5 = create_deal(w.stages[1], w.manager1, 10);     /* overdue since 5 h (and 1 h) */
    int64_t later = create_deal(w.stages[1], w.manager1, 10);     /* a task due tomorrow */
    int64_t completed = create_deal(w.stages[1], w.manager1, 10); /* its overdue task is done */
    int64_t deleted = create_deal(w.stages[1], w.manager1, 10);   /* its overdue task is deleted */
    create_task(over2, due2);
    create_task(over5, due1);
    create_task(over5, due5);
    create_task(later, future);
    int64_t t = create_task(completed, due10);
    struct th_resp r = th_post_empty(w.acct.admin_key, V1 "/tasks/%lld/complete", LL(t));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    t = create_task(deleted, due3);
    char path[64];
    snprintf(path, sizeof path, V1 "/tasks/%lld", LL(t));
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 204, "delete task: %s", r.body);
    th_resp_free(&r);

    put_stages_filter(w.manager1, &w.stages[1], 1, "overdue_first", "");
    start_ok(w.manager1, &r);
    int64_t queue[] = {over5, over2, none, later, completed, deleted};
    expect_queue(&r, queue, 6, "overdue_first");
    cr_assert_str_eq(th_str(&r, "order"), "overdue_first", "%s", r.body);
    th_resp_free(&r);
}

Test(focus, queue_is_cut_to_limit)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    int64_t b = create_deal(w.stages[1], w.manager1, 300);
    create_deal(w.stages[1], w.manager1, 200);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", ",\"limit\":2");
    struct th_resp r;
    start_ok(w.manager1, &r);
    int64_t queue[] = {a, b};
    expect_queue(&r, queue, 2, "limit 2");
    cr_assert_eq(th_int(&r, "limit"), 2, "%s", r.body);
    th_resp_free(&r);
}

Test(focus, queue_holds_only_his_open_deals_in_the_filter_stages)
{
    int64_t other_pipeline;
    int64_t other_stage = second_pipeline(&other_pipeline);
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    create_deal(w.stages[0], w.manager1, 100);                          /* a stage outside the filter */
    create_deal(w.stages[1], w.manager2, 100);                          /* another manager's */
    create_deal_in(other_pipeline, other_stage, w.manager1, 100, NULL); /* another pipeline */
    int64_t won = create_deal(w.stages[1], w.manager1, 100);
    int64_t lost = create_deal(w.stages[2], w.manager1, 100);
    int64_t gone = create_deal_in(w.pipeline_id, w.stages[2], w.manager1, 100, "GONE");
    int64_t b = create_deal(w.stages[2], w.manager1, 100);
    struct th_resp r;
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld/close", LL(won));
    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, V1 "/deals/%lld/close", LL(lost));
    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"lost\",\"loss_reason_id\":%lld}", LL(w.loss_reason));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    char now[32], body[512];
    iso_at(now, 0);
    snprintf(body, sizeof body,
             "[{\"id\":\"gone1\",\"type\":\"deal.deleted\",\"at\":\"%s\",\"data\":{\"deal\":\"GONE\"}}]",
             now);
    post_events(body, 1);
    r = th_get(w.acct.admin_key, V1 "/deals/%lld", LL(gone));
    cr_assert_eq(r.status, 404, "deleted: %s", r.body);
    th_resp_free(&r);

    put_stages_filter(w.manager1, &w.stages[1], 2, "oldest", "");
    start_ok(w.manager1, &r);
    int64_t queue[] = {a, b};
    expect_queue(&r, queue, 2, "own open deals only");
    th_resp_free(&r);
}

Test(focus, start_twice_is_focus_active)
{
    create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);
    struct th_resp r = start(w.acct.admin_key, w.manager1);
    th_expect_status(&r, 409, "focus_active", "second start");
    th_resp_free(&r);
    r = start(w.manager1_key, w.manager1);
    th_expect_status(&r, 409, "focus_active", "second start by himself");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("focus_sessions", w.acct.id), 1);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id, "%s", r.body);
    th_resp_free(&r);
}

Test(focus, max_in_focus_caps_managers_in_focus)
{
    create_deal(w.stages[1], w.manager1, 100);
    create_deal(w.stages[1], w.manager2, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    put_stages_filter(w.manager2, &w.stages[1], 1, "oldest", "");

    struct th_resp r = th_put(w.acct.admin_key, V1 "/distribution/settings", "{\"max_in_focus\":0}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = start(w.acct.admin_key, w.manager1);
    th_expect_status(&r, 409, "focus_cap_reached", "cap 0");
    th_resp_free(&r);

    r = th_put(w.acct.admin_key, V1 "/distribution/settings", "{\"max_in_focus\":1}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "max_in_focus"), 1, "%s", r.body);
    th_resp_free(&r);
    int64_t first = start_ok(w.manager1, NULL);
    r = start(w.acct.admin_key, w.manager2);
    th_expect_status(&r, 409, "focus_cap_reached", "a second manager over the cap");
    th_resp_free(&r);
    r = start(w.manager2_key, w.manager2);
    th_expect_status(&r, 409, "focus_cap_reached", "a second manager over the cap, by himself");
    th_resp_free(&r);
    expect_manager(w.manager2, false, true);

    r = stop(w.acct.admin_key, first);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    start_ok(w.manager2, NULL);

    r = th_put(w.acct.admin_key, V1 "/distribution/settings", "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(th_jnull(r.json, "max_in_focus"), "no cap by default: %s", r.body);
    th_resp_free(&r);
    start_ok(w.manager1, NULL);
}

Test(focus, start_body_replaces_the_saved_filter)
{
    create_deal(w.stages[0], w.manager1, 100); /* in the saved filter, not in the body's */
    int64_t s1a = create_deal(w.stages[1], w.manager1, 100);
    int64_t s1b = create_deal(w.stages[1], w.manager1, 700);
    put_stages_filter(w.manager1, &w.stages[0], 1, "oldest", ",\"limit\":7");

    /* an invalid body is refused and changes nothing */
    struct th_resp r;
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus", LL(w.manager1));
    r = th_post(w.acct.admin_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(w.pipeline_id),
                LL(w.won_stage));
    th_expect_field_error(&r, "stage_ids", "start with a won stage in the body");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("focus_sessions", w.acct.id), 0);

    r = th_post(w.acct.admin_key, path,
                "{\"pipeline_id\":%lld,\"stage_ids\":[%lld],\"order\":\"price_desc\",\"max_minutes\":30}",
                LL(w.pipeline_id), LL(w.stages[1]));
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[1], "%s", r.body);
    cr_assert_str_eq(th_str(&r, "order"), "price_desc", "%s", r.body);
    cr_assert(th_jnull(r.json, "limit"), "%s", r.body);
    cr_assert_eq(th_parse_time(th_str(&r, "ends_by")) - th_parse_time(th_str(&r, "started_at")), 30 * 60,
                 "%s", r.body);
    int64_t queue[] = {s1b, s1a};
    expect_queue(&r, queue, 2, "the body's filter");
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    ids = jget(&r, "stage_ids");
    cr_assert_eq(json_array_size(ids), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_array_get(ids, 0)), w.stages[1], "the saved filter is replaced: %s",
                 r.body);
    cr_assert_str_eq(th_str(&r, "order"), "price_desc", "%s", r.body);
    cr_assert(th_jnull(r.json, "limit"), "%s", r.body);
    cr_assert_eq(th_int(&r, "max_minutes"), 30, "%s", r.body);
    th_resp_free(&r);
}

Test(focus, manager_key_starts_only_his_own_with_the_saved_filter)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    create_deal(w.stages[1], w.manager2, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    put_stages_filter(w.manager2, &w.stages[1], 1, "oldest", "");
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus", LL(w.manager1));

    struct th_resp r = th_post(w.manager1_key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}",
                               LL(w.pipeline_id), LL(w.stages[1]));
    th_expect_status(&r, 403, "forbidden", "a manager key with a body");
    th_resp_free(&r);
    r = start(w.manager1_key, w.manager2);
    th_expect_status(&r, 403, "forbidden", "a manager key for another manager");
    th_resp_free(&r);
    r = start(w.readonly_key, w.manager1);
    th_expect_status(&r, 403, "forbidden", "a readonly key");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("focus_sessions", w.acct.id), 0, "the refused starts stored nothing");

    r = start(w.manager1_key, w.manager1);
    cr_assert_eq(r.status, 201, "his own, no body: %s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    int64_t queue[] = {a};
    expect_queue(&r, queue, 1, "manager start");
    th_resp_free(&r);
    expect_manager(w.manager2, false, true);
}

/* ---- 3. out of distribution while in focus ---- */

Test(focus, manager_in_focus_gets_no_leads_or_calls)
{
    create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    expect_manager(w.manager1, false, true);
    start_ok(w.manager1, NULL);

    expect_manager(w.manager1, true, false);
    expect_manager(w.manager2, false, true);
    struct th_resp r = th_get(w.acct.admin_key, V1 "/distribution");
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_dist_reason(&r, w.manager1, "in_focus");
    expect_dist_reason(&r, w.manager2, NULL);
    expect_dist_reason(&r, w.head, "not_a_manager");
    th_resp_free(&r);

    for (int i = 0; i < 4; i++)
        cr_assert_eq(new_lead(true, NULL), w.manager2, "lead %d goes to the manager not in focus", i);
    for (int i = 0; i < 4; i++) {
        r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"call\"}");
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_eq(th_int(&r, "manager_id"), w.manager2, "call %d: %s", i, r.body);
        th_resp_free(&r);
        r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"lead\"}");
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_eq(th_int(&r, "manager_id"), w.manager2, "lead %d: %s", i, r.body);
        th_resp_free(&r);
    }
    r = th_get(w.acct.admin_key, V1 "/distribution/assignments?manager_id=%lld", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(jget(&r, "items")), 0, "nothing went to the manager in focus: %s", r.body);
    th_resp_free(&r);
}

/* ---- 4. items done ---- */

Test(focus, mark_done_again_and_unknown_deals)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    int64_t b = create_deal(w.stages[1], w.manager1, 100);
    int64_t c = create_deal(w.stages[1], w.manager1, 100);
    int64_t outside = create_deal(w.stages[0], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);

    struct th_resp r = mark_done(w.acct.admin_key, id, a);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id, "%s", r.body);
    expect_item(&r, a, true, "marked");
    expect_item(&r, b, false, "marked");
    expect_item(&r, c, false, "marked");
    cr_assert_eq(th_int(&r, "done"), 1, "%s", r.body);
    cr_assert_eq(th_int(&r, "total"), 3, "%s", r.body);
    expect_state(&r, "active", NULL, "one of three done");
    char *first = strdup(r.body);
    th_resp_free(&r);

    th_sleep_ms(1100); /* a second mark must not move done_at */
    r = mark_done(w.acct.admin_key, id, a);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, first, "marking again changes nothing");
    th_resp_free(&r);
    free(first);

    r = mark_done(w.acct.admin_key, id, outside);
    th_expect_status(&r, 404, "not_found", "a deal not in the queue");
    th_resp_free(&r);
    r = mark_done(w.acct.admin_key, id, 999999999);
    th_expect_status(&r, 404, "not_found", "no such deal");
    th_resp_free(&r);
    r = mark_done(w.acct.admin_key, 999999999, a);
    th_expect_status(&r, 404, "not_found", "no such session");
    th_resp_free(&r);
    r = mark_done(w.manager2_key, id, b);
    th_expect_status(&r, 404, "not_found", "another manager's session");
    th_resp_free(&r);
    r = mark_done(w.readonly_key, id, b);
    th_expect_status(&r, 403, "forbidden", "a readonly key");
    th_resp_free(&r);

    r = mark_done(w.manager1_key, id, b);
    cr_assert_eq(r.status, 200, "his own session: %s", r.body);
    expect_item(&r, b, true, "by himself");
    cr_assert_eq(th_int(&r, "done"), 2, "%s", r.body);
    expect_state(&r, "active", NULL, "two of three done");
    th_resp_free(&r);
    r = get_session(w.acct.admin_key, id);
    expect_item(&r, a, true, "read back");
    expect_item(&r, b, true, "read back");
    expect_item(&r, c, false, "read back");
    cr_assert_eq(th_int(&r, "done"), 2, "%s", r.body);
    th_resp_free(&r);
}

static void expect_done_now(int64_t session, int64_t deal, bool done, int64_t done_count, const char *what)
{
    struct th_resp r = get_session(w.acct.admin_key, session);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_item(&r, deal, done, what);
    cr_assert_eq(th_int(&r, "done"), done_count, "%s: done: %s", what, r.body);
    expect_state(&r, "active", NULL, what);
    th_resp_free(&r);
}

Test(focus, his_own_actions_after_start_mark_items_done)
{
    give_external_ids();
    int64_t d_stage = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "AST");
    int64_t d_note = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "ANO");
    int64_t d_call = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "ACA");
    int64_t d_task = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "ATA");
    int64_t d_close = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "ACL");
    int64_t d_event = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "AEV");
    int64_t d_other = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "AOT");
    int64_t d_idle = create_deal_in(w.pipeline_id, w.stages[0], w.manager1, 100, "AID");
    char future[32];
    iso_at(future, 86400);
    int64_t task = create_task(d_task, future);
    put_stages_filter(w.manager1, w.stages, 3, "oldest", "");
    struct th_resp r;
    int64_t id = start_ok(w.manager1, &r);
    int64_t queue[] = {d_stage, d_note, d_call, d_task, d_close, d_event, d_other, d_idle};
    expect_queue(&r, queue, 8, "start");
    cr_assert_eq(th_int(&r, "done"), 0, "%s", r.body);
    th_resp_free(&r);
    char path[128], now[32], body[1024];

    /* not actions that finish an item: a price edit, a new task */
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(d_idle));
    r = th_patch(w.manager1_key, path, "{\"price\":150}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.manager1_key, V1 "/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить\",\"due_at\":\"%s\"}", LL(d_idle),
                future);
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_idle, false, 0, "price edit and new task");

    /* a stage change */
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(d_stage));
    r = th_patch(w.manager1_key, path, "{\"stage_id\":%lld}", LL(w.stages[1]));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_stage, true, 1, "stage change");

    /* a note */
    snprintf(path, sizeof path, V1 "/deals/%lld/notes", LL(d_note));
    r = th_post(w.manager1_key, path, "{\"text\":\"Клиент думает\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_note, true, 2, "note");

    /* a call */
    iso_at(now, 0);
    r = th_post(w.manager1_key, V1 "/calls",
                "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"out\",\"started_at\":\"%s\","
                "\"duration_s\":60,\"answered\":true}",
                LL(w.manager1), LL(d_call), now);
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_call, true, 3, "call");

    /* a completed task */
    r = th_post_empty(w.manager1_key, V1 "/tasks/%lld/complete", LL(task));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_task, true, 4, "completed task");

    /* a close */
    snprintf(path, sizeof path, V1 "/deals/%lld/close", LL(d_close));
    r = th_post(w.manager1_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    expect_done_now(id, d_close, true, 5, "close");

    /* a note by event whose manager is him */
    iso_at(now, 0);
    snprintf(
        body, sizeof body,
        "[{\"id\":\"an1\",\"type\":\"note.added\",\"at\":\"%s\",\"data\":{\"note\":\"AN1\",\"deal\":\"AEV\","
        "\"text\":\"Созвонились\",\"manager\":\"fm1\"}}]",
        now);
    post_events(body, 1);
    expect_done_now(id, d_event, true, 6, "note.added event by him");

    /* a note by event whose manager is someone else does not count */
    snprintf(
        body, sizeof body,
        "[{\"id\":\"an2\",\"type\":\"note.added\",\"at\":\"%s\",\"data\":{\"note\":\"AN2\",\"deal\":\"AOT\","
        "\"text\":\"Чужая заметка\",\"manager\":\"fm2\"}}]",
        now);
    post_events(body, 1);
    expect_done_now(id, d_other, false, 6, "note.added event by another manager");
    r = th_get(w.acct.admin_key, V1 "/deals/%lld/notes", LL(d_other));
    cr_assert_eq(json_array_size(jget(&r, "items")), 1, "the note itself was stored: %s", r.body);
    th_resp_free(&r);

    r = get_session(w.acct.admin_key, id);
    expect_item(&r, d_idle, false, "final");
    expect_item(&r, d_other, false, "final");
    cr_assert_eq(th_int(&r, "total"), 8, "%s", r.body);
    th_resp_free(&r);
}

/* ---- 5. deals that leave the manager ---- */

Test(focus, reassigned_or_deleted_deals_leave_the_queue)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    int64_t b = create_deal_in(w.pipeline_id, w.stages[1], w.manager1, 100, "LB");
    int64_t c = create_deal(w.stages[1], w.manager1, 100);
    int64_t z = create_deal(w.stages[1], w.manager2, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    struct th_resp r;
    int64_t id = start_ok(w.manager1, &r);
    int64_t q3[] = {a, b, c};
    expect_queue(&r, q3, 3, "start");
    th_resp_free(&r);

    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(a));
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", LL(w.manager2));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = get_session(w.acct.admin_key, id);
    int64_t q2[] = {b, c};
    expect_queue(&r, q2, 2, "after reassigning a");
    cr_assert_eq(th_int(&r, "done"), 0, "%s", r.body);
    expect_state(&r, "active", NULL, "after reassigning a");
    th_resp_free(&r);
    r = mark_done(w.acct.admin_key, id, a);
    th_expect_status(&r, 404, "not_found", "a left the queue");
    th_resp_free(&r);

    /* the queue is a snapshot: a deal given to him after the start does not join it */
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(z));
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);

    char now[32], body[512];
    iso_at(now, 0);
    snprintf(body, sizeof body,
             "[{\"id\":\"lb1\",\"type\":\"deal.deleted\",\"at\":\"%s\",\"data\":{\"deal\":\"LB\"}}]", now);
    post_events(body, 1);
    r = get_session(w.acct.admin_key, id);
    int64_t q1[] = {c};
    expect_queue(&r, q1, 1, "after deleting b");
    expect_state(&r, "active", NULL, "after deleting b");
    th_resp_free(&r);

    /* his note on the last deal finishes the queue */
    snprintf(path, sizeof path, V1 "/deals/%lld/notes", LL(c));
    r = th_post(w.manager1_key, path, "{\"text\":\"Готово\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = get_session(w.acct.admin_key, id);
    expect_queue(&r, q1, 1, "done");
    expect_item(&r, c, true, "done");
    cr_assert_eq(th_int(&r, "done"), 1, "%s", r.body);
    expect_state(&r, "ended", "queue_done", "the last item done by a note");
    th_resp_free(&r);
}

/* ---- 6. queue done ---- */

Test(focus, queue_done_ends_the_session_and_he_gets_leads_again)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    int64_t b = create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);
    expect_manager(w.manager1, true, false);

    struct th_resp r = mark_done(w.acct.admin_key, id, a);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_state(&r, "active", NULL, "one of two");
    th_resp_free(&r);
    r = mark_done(w.manager1_key, id, b);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_state(&r, "ended", "queue_done", "the last item");
    cr_assert_eq(th_int(&r, "done"), 2, "%s", r.body);
    cr_assert_eq(th_int(&r, "total"), 2, "%s", r.body);
    char *ended = strdup(r.body);
    th_resp_free(&r);

    r = get_session(w.acct.admin_key, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(r.body, ended, "the ended session reads back the same");
    th_resp_free(&r);
    free(ended);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "no active session after queue_done");
    th_resp_free(&r);
    expect_manager(w.manager1, false, true);
    r = th_get(w.acct.admin_key, V1 "/distribution");
    expect_dist_reason(&r, w.manager1, NULL);
    th_resp_free(&r);

    int64_t d1, d2;
    int64_t m1 = new_lead(true, &d1), m2 = new_lead(true, &d2);
    cr_assert(m1 != m2 && (m1 == w.manager1 || m2 == w.manager1) && (m1 == w.manager2 || m2 == w.manager2),
              "two leads over two equal managers: one each, got %lld and %lld", LL(m1), LL(m2));
    r = th_get(w.acct.admin_key, V1 "/deals/%lld", LL(m1 == w.manager1 ? d1 : d2));
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "%s", r.body);
    th_resp_free(&r);
}

/* ---- 7. stop ---- */

Test(focus, stop_ends_once_and_ended_sessions_refuse_changes)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);

    struct th_resp r = stop(w.manager2_key, id);
    th_expect_status(&r, 404, "not_found", "another manager stops");
    th_resp_free(&r);
    r = stop(w.readonly_key, id);
    th_expect_status(&r, 403, "forbidden", "a readonly key stops");
    th_resp_free(&r);
    r = stop(w.acct.admin_key, 999999999);
    th_expect_status(&r, 404, "not_found", "no such session");
    th_resp_free(&r);
    expect_manager(w.manager1, true, false);

    r = stop(w.manager1_key, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id, "%s", r.body);
    expect_state(&r, "ended", "stopped", "stop");
    expect_item(&r, a, false, "stop");
    cr_assert_eq(th_int(&r, "done"), 0, "%s", r.body);
    char *stopped = strdup(r.body);
    th_resp_free(&r);

    r = stop(w.acct.admin_key, id);
    th_expect_status(&r, 409, "conflict", "stop again");
    th_resp_free(&r);
    r = mark_done(w.acct.admin_key, id, a);
    th_expect_status(&r, 409, "conflict", "done on an ended session");
    th_resp_free(&r);
    r = get_session(w.acct.admin_key, id);
    cr_assert_str_eq(r.body, stopped, "the refused calls changed nothing");
    th_resp_free(&r);
    free(stopped);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "not in focus after stop");
    th_resp_free(&r);
    expect_manager(w.manager1, false, true);

    /* he may start again */
    int64_t again = start_ok(w.manager1, NULL);
    cr_assert(again > id);
}

/* ---- 8. timeout ---- */

Test(focus, timeout_ends_the_session_with_no_request_in_flight)
{
    create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);
    th_sql_int("UPDATE focus_sessions SET ends_by = now() + interval '1 second' WHERE id = %lld", LL(id));
    th_sleep_ms(3500); /* no HTTP request meanwhile: only the scheduler can end it */
    cr_assert_eq(th_sql_int("SELECT count(*) FROM focus_sessions WHERE id = %lld AND ended_at IS NOT NULL"
                            " AND end_reason = 'timeout' AND ended_at = ends_by",
                            LL(id)),
                 1, "the scheduler ended the session by timeout at ends_by");

    struct th_resp r = get_session(w.acct.admin_key, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    expect_state(&r, "ended", "timeout", "timeout");
    cr_assert_str_eq(th_str(&r, "ended_at"), th_str(&r, "ends_by"), "ended at ends_by: %s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "not in focus after timeout");
    th_resp_free(&r);
    expect_manager(w.manager1, false, true);
}

/* ---- 9. waiting leads come back ---- */

Test(focus, waiting_lead_goes_to_the_manager_who_leaves_focus)
{
    create_deal(w.stages[1], w.manager1, 100);
    create_deal(w.stages[1], w.manager2, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    put_stages_filter(w.manager2, &w.stages[1], 1, "oldest", "");
    int64_t s1 = start_ok(w.manager1, NULL);
    start_ok(w.manager2, NULL);

    int64_t deal;
    cr_assert_eq(new_lead(false, &deal), 0);
    struct th_resp r = th_get(w.acct.admin_key, V1 "/distribution");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "awaiting"), 1, "%s", r.body);
    expect_dist_reason(&r, w.manager1, "in_focus");
    expect_dist_reason(&r, w.manager2, "in_focus");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"call\"}");
    th_expect_status(&r, 409, "no_eligible_manager", "a call with everyone in focus");
    th_resp_free(&r);

    r = stop(w.acct.admin_key, s1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    double t0 = th_mono_now(), took = -1;
    while (th_mono_now() - t0 < 3.0) {
        r = th_get(w.acct.admin_key, V1 "/deals/%lld", LL(deal));
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_t *m = jget(&r, "manager_id");
        bool assigned = json_is_integer(m);
        if (assigned) cr_assert_eq(json_integer_value(m), w.manager1, "the waiting deal: %s", r.body);
        th_resp_free(&r);
        if (assigned) {
            took = th_mono_now() - t0;
            break;
        }
        th_sleep_ms(100);
    }
    cr_assert(took >= 0, "the waiting deal was not assigned within 3 s");
    cr_assert(took <= 2.0, "the waiting deal was assigned after %.2f s, more than 2 s", took);

    r = th_get(w.acct.admin_key, V1 "/distribution/assignments?deal_id=%lld", LL(deal));
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *items = jget(&r, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", r.body);
    json_t *row = json_array_get(items, 0);
    cr_assert_str_eq(json_string_value(json_object_get(row, "reason")), "awaited", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(row, "kind")), "lead", "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(row, "manager_id")), w.manager1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(row, "deal_id")), deal, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/distribution");
    cr_assert_eq(th_int(&r, "awaiting"), 0, "%s", r.body);
    th_resp_free(&r);
}

/* ---- 10. the list ---- */

static void expect_list(const char *key, const char *query, const int64_t *ids, size_t n)
{
    struct th_resp r = th_get(key, V1 "/focus-sessions%s", query);
    cr_assert_eq(r.status, 200, "%s: %s", query, r.body);
    json_t *items = jget(&r, "items");
    cr_assert(json_is_array(items), "%s: %s", query, r.body);
    cr_assert_eq(json_array_size(items), n, "%s: %zu sessions expected: %s", query, n, r.body);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, i), "id")), ids[i],
                     "%s: item %zu: %s", query, i, r.body);
    th_resp_free(&r);
}

Test(focus, session_list_newest_first_filtered_and_scoped)
{
    int64_t a1 = create_deal(w.stages[1], w.manager1, 100);
    int64_t a2 = create_deal(w.stages[1], w.manager2, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    put_stages_filter(w.manager2, &w.stages[1], 1, "oldest", "");
    struct th_resp r;
    int64_t s1 = start_ok(w.manager1, &r);
    int64_t first_started = th_parse_time(th_str(&r, "started_at"));
    th_resp_free(&r);
    r = stop(w.acct.admin_key, s1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    int64_t s2 = start_ok(w.manager2, NULL);
    int64_t s3;
    start_ok(w.manager1, &r);
    s3 = th_int(&r, "id");
    int64_t started = th_parse_time(th_str(&r, "started_at"));
    th_resp_free(&r);
    cr_assert(s1 < s2 && s2 < s3);

    int64_t all[] = {s3, s2, s1}, m1[] = {s3, s1}, m2[] = {s2};
    expect_list(w.acct.admin_key, "", all, 3);
    expect_list(w.readonly_key, "", all, 3);
    expect_list(w.head_key, "", all, 3);
    char q[128];
    snprintf(q, sizeof q, "?manager_id=%lld", LL(w.manager1));
    expect_list(w.acct.admin_key, q, m1, 2);
    snprintf(q, sizeof q, "?manager_id=%lld", LL(w.manager2));
    expect_list(w.acct.admin_key, q, m2, 1);
    expect_list(w.manager2_key, "", m2, 1);
    expect_list(w.manager1_key, "", m1, 2);
    snprintf(q, sizeof q, "?manager_id=%lld", LL(w.manager2));
    expect_list(w.manager1_key, q, NULL, 0);

    /* each item is a whole session */
    r = th_get(w.acct.admin_key, V1 "/focus-sessions");
    json_t *first = json_array_get(jget(&r, "items"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "state")), "active", "%s", r.body);
    json_t *items = json_object_get(first, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "deal_id")), a1, "%s", r.body);
    json_t *second = json_array_get(jget(&r, "items"), 1);
    cr_assert_eq(
        json_integer_value(json_object_get(json_array_get(json_object_get(second, "items"), 0), "deal_id")),
        a2, "%s", r.body);
    json_t *third = json_array_get(jget(&r, "items"), 2);
    cr_assert_str_eq(json_string_value(json_object_get(third, "end_reason")), "stopped", "%s", r.body);
    th_resp_free(&r);

    /* pages */
    r = th_get(w.acct.admin_key, V1 "/focus-sessions?limit=2");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(jget(&r, "items")), 2, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(jget(&r, "items"), 0), "id")), s3);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(jget(&r, "items"), 1), "id")), s2);
    const char *cursor = th_str(&r, "next_cursor");
    cr_assert(cursor != NULL, "a next page: %s", r.body);
    snprintf(q, sizeof q, "?limit=2&cursor=%s", cursor);
    th_resp_free(&r);
    int64_t last[] = {s1};
    expect_list(w.acct.admin_key, q, last, 1);

    /* the period (dates in the account's zone, Moscow): each session is judged by its own start's date */
    char today[16], yesterday[16], tomorrow[16], first_day[16], before_first[16];
    th_local_date(today, started, MSK, 0);
    th_local_date(yesterday, started, MSK, -1);
    th_local_date(tomorrow, started, MSK, 1);
    th_local_date(first_day, first_started, MSK, 0);
    th_local_date(before_first, first_started, MSK, -1);
    int64_t only_s3[] = {s3};
    snprintf(q, sizeof q, "?from=%s&to=%s&limit=1", today, today);
    expect_list(w.acct.admin_key, q, only_s3, 1);
    snprintf(q, sizeof q, "?from=%s&to=%s&manager_id=%lld", first_day, today, LL(w.manager1));
    expect_list(w.acct.admin_key, q, m1, 2);
    snprintf(q, sizeof q, "?from=%s", tomorrow);
    expect_list(w.acct.admin_key, q, NULL, 0);
    snprintf(q, sizeof q, "?to=%s", before_first);
    expect_list(w.acct.admin_key, q, NULL, 0);
    snprintf(q, sizeof q, "?from=%s", first_day);
    expect_list(w.acct.admin_key, q, all, 3);

    snprintf(q, sizeof q, V1 "/focus-sessions?from=%s&to=%s", today, yesterday);
    r = th_get(w.acct.admin_key, "%s", q);
    th_expect_field_error(&r, "to", "to before from");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/focus-sessions?from=2024-02-30");
    th_expect_field_error(&r, "from", "a bad date");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/focus-sessions?to=yesterday");
    th_expect_field_error(&r, "to", "a bad date");
    th_resp_free(&r);
}

/* ---- 11. other accounts ---- */

Test(focus, another_account_sees_nothing)
{
    int64_t a = create_deal(w.stages[1], w.manager1, 100);
    put_stages_filter(w.manager1, &w.stages[1], 1, "oldest", "");
    int64_t id = start_ok(w.manager1, NULL);
    struct th_account other;
    th_account_new(&other);
    const char *k = other.admin_key;

    struct th_resp r = get_session(k, id);
    th_expect_status(&r, 404, "not_found", "foreign session");
    th_resp_free(&r);
    r = stop(k, id);
    th_expect_status(&r, 404, "not_found", "foreign stop");
    th_resp_free(&r);
    r = mark_done(k, id, a);
    th_expect_status(&r, 404, "not_found", "foreign done");
    th_resp_free(&r);
    r = th_get(k, V1 "/managers/%lld/focus", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "foreign manager focus");
    th_resp_free(&r);
    r = th_get(k, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    th_expect_status(&r, 404, "not_found", "foreign manager filter");
    th_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus-filter", LL(w.manager1));
    r = th_put(k, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", LL(w.pipeline_id), LL(w.stages[1]));
    th_expect_status(&r, 404, "not_found", "foreign filter PUT");
    th_resp_free(&r);
    r = start(k, w.manager1);
    th_expect_status(&r, 404, "not_found", "foreign start");
    th_resp_free(&r);
    r = th_get(k, V1 "/focus-sessions");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(jget(&r, "items")), 0, "%s", r.body);
    th_resp_free(&r);

    r = get_session(w.acct.admin_key, id);
    expect_state(&r, "active", NULL, "untouched by the other account");
    expect_item(&r, a, false, "untouched by the other account");
    th_resp_free(&r);
}

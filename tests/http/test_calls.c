/* Calls over HTTP: logging with every field read back exactly, what a manager key may log and read, body
 * checks (foreign deals, duration bounds, required fields), list filters and pages. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(calls, .init = setup, .fini = th_server_stop);

static int64_t create_deal(const char *key, int64_t pipeline_id, int64_t manager_id)
{
    struct th_resp r = th_post(
        key, "/api/v1/deals", "{\"name\":\"Кухня\",\"price\":90000,\"pipeline_id\":%lld,\"manager_id\":%lld}",
        (long long)pipeline_id, (long long)manager_id);
    cr_assert_eq(r.status, 201, "deal: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* Logs a call (deal_id 0: none) and returns its id. */
static int64_t create_call(const char *key, int64_t manager_id, int64_t deal_id, const char *direction)
{
    struct th_resp r =
        deal_id ? th_post(key, "/api/v1/calls",
                          "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"%s\",\"started_at\":"
                          "\"2026-03-02T10:00:00Z\",\"duration_s\":60,\"answered\":true}",
                          (long long)manager_id, (long long)deal_id, direction)
                : th_post(key, "/api/v1/calls",
                          "{\"manager_id\":%lld,\"direction\":\"%s\",\"started_at\":\"2026-03-02T10:00:00Z\","
                          "\"duration_s\":60,\"answered\":true}",
                          (long long)manager_id, direction);
    cr_assert_eq(r.status, 201, "call: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

static void assert_ids(const struct th_resp *r, const int64_t *ids, size_t n)
{
    cr_assert_eq(r->status, 200, "%s", r->body);
    json_t *items = json_object_get(r->json, "items");
    cr_assert(json_is_array(items), "%s", r->body);
    cr_assert_eq(json_array_size(items), n, "expected %zu items: %s", n, r->body);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, i), "id")), ids[i],
                     "item %zu: %s", i, r->body);
}

static void assert_field_error(const struct th_resp *r, const char *field)
{
    cr_assert_eq(r->status, 422, "%s", r->body);
    cr_assert_str_eq(th_code(r), "validation_failed");
    json_t *errors = json_object_get(r->json, "errors");
    for (size_t i = 0; i < json_array_size(errors); i++)
        if (strcmp(json_string_value(json_object_get(json_array_get(errors, i), "field")), field) == 0)
            return;
    cr_assert_fail("no error for field %s in %s", field, r->body);
}

/* A second account with a pipeline, a manager and a deal of its own. */
struct other_world {
    struct th_account acct;
    int64_t pipeline_id, manager_id, deal_id;
};

static void other_world_new(struct other_world *o)
{
    th_account_new(&o->acct);
    struct th_resp r = th_post(o->acct.admin_key, "/api/v1/pipelines",
                               "{\"name\":\"Другая\",\"stages\":[{\"name\":\"Новая\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    o->pipeline_id = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(o->acct.admin_key, "/api/v1/managers", "{\"name\":\"Чужой\",\"role\":\"manager\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    o->manager_id = th_int(&r, "id");
    th_resp_free(&r);
    o->deal_id = create_deal(o->acct.admin_key, o->pipeline_id, o->manager_id);
}

Test(calls, create_with_all_fields_and_read_back_exact_values)
{
    int64_t deal = create_deal(w.acct.admin_key, w.pipeline_id, w.manager1);
    int64_t before = (int64_t)time(NULL);
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"out\","
                "\"started_at\":\"2026-03-02T10:15:30+03:00\",\"duration_s\":754,\"answered\":true}",
                (long long)w.manager1, (long long)deal);
    int64_t after = (int64_t)time(NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    cr_assert_eq(th_int(&r, "deal_id"), deal);
    cr_assert_str_eq(th_str(&r, "direction"), "out");
    cr_assert_str_eq(th_str(&r, "started_at"), "2026-03-02T07:15:30Z");
    cr_assert_eq(th_int(&r, "duration_s"), 754);
    cr_assert(json_is_true(json_object_get(r.json, "answered")), "%s", r.body);
    const char *created = th_str(&r, "created_at");
    cr_assert(created != NULL, "%s", r.body);
    struct tm tm = {0};
    cr_assert_eq(sscanf(created, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                        &tm.tm_min, &tm.tm_sec),
                 6, "%s", created);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t created_t = (int64_t)timegm(&tm);
    cr_assert(created_t >= before && created_t <= after, "created_at %s", created);
    json_t *posted = json_incref(r.json);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/calls/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_equal(r.json, posted), "GET differs from the POST reply: %s", r.body);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/calls/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "his own call: %s", r.body);
    cr_assert(json_equal(r.json, posted), "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.readonly_key, "/api/v1/calls/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_decref(posted);
}

Test(calls, create_without_a_deal_unanswered_incoming)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"in\",\"started_at\":\"2026-03-02T23:59:59Z\","
                "\"duration_s\":0,\"answered\":false}",
                (long long)w.manager2);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    cr_assert(json_is_null(json_object_get(r.json, "deal_id")), "%s", r.body);
    cr_assert_str_eq(th_str(&r, "direction"), "in");
    cr_assert_str_eq(th_str(&r, "started_at"), "2026-03-02T23:59:59Z");
    cr_assert_eq(th_int(&r, "duration_s"), 0);
    cr_assert(json_is_false(json_object_get(r.json, "answered")), "%s", r.body);
    th_resp_free(&r);
}

Test(calls, manager_key_logs_only_his_own_calls)
{
    struct th_resp r =
        th_post(w.manager1_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"out\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":30,\"answered\":true}",
                (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);

    r = th_post(w.manager1_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"out\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":30,\"answered\":true}",
                (long long)w.manager2);
    cr_assert_eq(r.status, 403, "another manager's call: %s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 1);

    /* readonly keys log nothing */
    r = th_post(w.readonly_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"out\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":30,\"answered\":true}",
                (long long)w.manager1);
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 1);
}

Test(calls, deal_of_another_manager_or_account_in_the_body_is_422)
{
    struct other_world o;
    other_world_new(&o);
    int64_t theirs = create_deal(w.acct.admin_key, w.pipeline_id, w.manager2);

    struct th_resp r = th_post(w.manager1_key, "/api/v1/calls",
                               "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"out\","
                               "\"started_at\":\"2026-03-02T10:00:00Z\",\"duration_s\":30,\"answered\":true}",
                               (long long)w.manager1, (long long)theirs);
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);

    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"out\","
                "\"started_at\":\"2026-03-02T10:00:00Z\",\"duration_s\":30,\"answered\":true}",
                (long long)w.manager1, (long long)o.deal_id);
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);

    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"deal_id\":999999999,\"direction\":\"out\","
                "\"started_at\":\"2026-03-02T10:00:00Z\",\"duration_s\":30,\"answered\":true}",
                (long long)w.manager1);
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);

    /* a manager of another account is unknown here too */
    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"out\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":30,\"answered\":true}",
                (long long)o.manager_id);
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);

    cr_assert_eq(th_count_rows("calls", w.acct.id), 0);
    cr_assert_eq(th_count_rows("calls", o.acct.id), 0);
}

Test(calls, duration_bounds)
{
    static const char fmt[] =
        "{\"manager_id\":%lld,\"direction\":\"out\",\"started_at\":\"2026-03-02T10:00:00Z\","
        "\"duration_s\":%s,\"answered\":true}";
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "-1");
    assert_field_error(&r, "duration_s");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "86401");
    assert_field_error(&r, "duration_s");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "12.5");
    assert_field_error(&r, "duration_s");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "\"60\"");
    assert_field_error(&r, "duration_s");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 0);

    r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "0");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "duration_s"), 0);
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls", fmt, (long long)w.manager1, "86400");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "duration_s"), 86400);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 2);
}

Test(calls, missing_and_bad_fields_are_422)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/calls", "{}");
    assert_field_error(&r, "manager_id");
    assert_field_error(&r, "direction");
    assert_field_error(&r, "started_at");
    assert_field_error(&r, "duration_s");
    assert_field_error(&r, "answered");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"sideways\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":1,\"answered\":true}",
                (long long)w.manager1);
    assert_field_error(&r, "direction");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"in\",\"started_at\":\"2026-03-02 10:00\","
                "\"duration_s\":1,\"answered\":true}",
                (long long)w.manager1);
    assert_field_error(&r, "started_at");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"in\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":1,\"answered\":\"yes\"}",
                (long long)w.manager1);
    assert_field_error(&r, "answered");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/calls",
                "{\"manager_id\":%lld,\"direction\":\"in\",\"started_at\":\"2026-03-02T10:00:00Z\","
                "\"duration_s\":1,\"answered\":true,\"recording\":\"x\"}",
                (long long)w.manager1);
    assert_field_error(&r, "recording");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 0);
}

Test(calls, list_filters_manager_id_and_deal_id)
{
    int64_t deal1 = create_deal(w.acct.admin_key, w.pipeline_id, w.manager1);
    int64_t deal2 = create_deal(w.acct.admin_key, w.pipeline_id, w.manager2);
    int64_t c1 = create_call(w.acct.admin_key, w.manager1, deal1, "out");
    int64_t c2 = create_call(w.acct.admin_key, w.manager2, deal2, "in");
    int64_t c3 = create_call(w.acct.admin_key, w.manager1, 0, "out");
    int64_t c4 = create_call(w.acct.admin_key, w.manager2, deal1, "out");

    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/calls");
    assert_ids(&r, (int64_t[]){c1, c2, c3, c4}, 4);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?manager_id=%lld", (long long)w.manager1);
    assert_ids(&r, (int64_t[]){c1, c3}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?manager_id=%lld", (long long)w.manager2);
    assert_ids(&r, (int64_t[]){c2, c4}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?deal_id=%lld", (long long)deal1);
    assert_ids(&r, (int64_t[]){c1, c4}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?deal_id=%lld", (long long)deal2);
    assert_ids(&r, (int64_t[]){c2}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?manager_id=%lld&deal_id=%lld", (long long)w.manager2,
               (long long)deal1);
    assert_ids(&r, (int64_t[]){c4}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?manager_id=%lld", (long long)w.head);
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?manager_id=0");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);

    /* a manager key lists only his own calls */
    r = th_get(w.manager1_key, "/api/v1/calls");
    assert_ids(&r, (int64_t[]){c1, c3}, 2);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/calls?manager_id=%lld", (long long)w.manager2);
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/calls?deal_id=%lld", (long long)deal1);
    assert_ids(&r, (int64_t[]){c1}, 1);
    th_resp_free(&r);
}

Test(calls, get_another_managers_call_with_a_manager_key_is_404)
{
    int64_t theirs = create_call(w.acct.admin_key, w.manager2, 0, "out");
    struct th_resp r = th_get(w.manager1_key, "/api/v1/calls/%lld", (long long)theirs);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
    r = th_get(w.manager2_key, "/api/v1/calls/%lld", (long long)theirs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls/999999999");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
}

Test(calls, another_accounts_call_answers_404)
{
    struct other_world o;
    other_world_new(&o);
    int64_t call = create_call(o.acct.admin_key, o.manager_id, o.deal_id, "out");
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/calls/%lld", (long long)call);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls");
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?deal_id=%lld", (long long)o.deal_id);
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
}

Test(calls, list_pages_with_cursor)
{
    int64_t ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = create_call(w.acct.admin_key, w.manager1, 0, "out");
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/calls?limit=2");
    assert_ids(&r, ids, 2);
    cr_assert(th_str(&r, "next_cursor") != NULL, "%s", r.body);
    char cursor[128];
    snprintf(cursor, sizeof cursor, "%s", th_str(&r, "next_cursor"));
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls?limit=2&cursor=%s", cursor);
    assert_ids(&r, ids + 2, 1);
    cr_assert(json_is_null(json_object_get(r.json, "next_cursor")), "%s", r.body);
    th_resp_free(&r);
}

Test(calls, calls_are_not_changed_or_deleted_405)
{
    int64_t call = create_call(w.acct.admin_key, w.manager1, 0, "out");
    char path[128];
    snprintf(path, sizeof path, "/api/v1/calls/%lld", (long long)call);
    struct th_resp r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 405, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "method_not_allowed");
    cr_assert_str_eq(r.allow, "GET");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, path, "{\"duration_s\":5}");
    cr_assert_eq(r.status, 405, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/calls/%lld", (long long)call);
    cr_assert_eq(th_int(&r, "duration_s"), 60);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("calls", w.acct.id), 1);
}

/* Tasks over HTTP: creation and its default manager, the states open / overdue / done / deleted, the task
 * history of responsible and due time (checked in the database), completion, soft deletion, what a manager
 * key may see and do, list filters and pages. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
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

TestSuite(tasks, .init = setup, .fini = th_server_stop);

#define DUE1       "2030-01-15T09:00:00Z"
#define DUE1_EPOCH 1894698000LL
#define DUE2       "2030-02-20T14:30:00Z"
#define DUE2_EPOCH 1897828200LL

static int64_t parse_time(const char *s)
{
    cr_assert(s != NULL, "a time is null");
    struct tm tm = {0};
    cr_assert(sscanf(s, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                     &tm.tm_sec) == 6,
              "not a time: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

static int64_t create_deal(const char *key, int64_t manager_id)
{
    struct th_resp r = th_post(
        key, "/api/v1/deals", "{\"name\":\"Окна\",\"price\":120000,\"pipeline_id\":%lld,\"manager_id\":%lld}",
        (long long)w.pipeline_id, (long long)manager_id);
    cr_assert_eq(r.status, 201, "deal: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* A task on deal_id (manager_id 0: the default), due at due; returns its id. */
static int64_t create_task(const char *key, int64_t deal_id, int64_t manager_id, const char *type,
                           const char *due)
{
    struct th_resp r =
        manager_id ? th_post(key, "/api/v1/tasks",
                             "{\"deal_id\":%lld,\"manager_id\":%lld,\"type\":\"%s\",\"text\":\"Позвонить\","
                             "\"due_at\":\"%s\"}",
                             (long long)deal_id, (long long)manager_id, type, due)
                   : th_post(key, "/api/v1/tasks",
                             "{\"deal_id\":%lld,\"type\":\"%s\",\"text\":\"Позвонить\",\"due_at\":\"%s\"}",
                             (long long)deal_id, type, due);
    cr_assert_eq(r.status, 201, "task: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* The ids of a list reply must be exactly ids[0..n). */
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

static const char *state_of(const char *key, int64_t task_id)
{
    static char state[32];
    struct th_resp r = th_get(key, "/api/v1/tasks/%lld", (long long)task_id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    snprintf(state, sizeof state, "%s", th_str(&r, "state"));
    th_resp_free(&r);
    return state;
}

/* task_history rows of a task, ordered by (at, id). */
struct hist_row {
    int64_t at, manager_id, due_at;
};

static int task_history(int64_t task_id, struct hist_row *rows, int max)
{
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    char acct[32], task[32];
    snprintf(acct, sizeof acct, "%lld", (long long)w.acct.id);
    snprintf(task, sizeof task, "%lld", (long long)task_id);
    const char *params[] = {acct, task};
    PGresult *r = PQexecParams(c,
                               "SELECT extract(epoch FROM at)::bigint, coalesce(manager_id, 0),"
                               " extract(epoch FROM due_at)::bigint FROM task_history"
                               " WHERE account_id = $1 AND task_id = $2 ORDER BY at, id",
                               2, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    int n = PQntuples(r);
    for (int i = 0; i < n && i < max; i++) {
        rows[i].at = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        rows[i].manager_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        rows[i].due_at = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
    return n;
}

Test(tasks, create_defaults_to_the_deals_manager_and_reads_back)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t before = (int64_t)time(NULL);
    struct th_resp r = th_post(
        w.acct.admin_key, "/api/v1/tasks",
        "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить клиенту\",\"due_at\":\"" DUE1 "\"}",
        (long long)deal);
    int64_t after = (int64_t)time(NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_eq(th_int(&r, "deal_id"), deal);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1, "default manager is the deal's: %s", r.body);
    cr_assert_str_eq(th_str(&r, "type"), "call");
    cr_assert_str_eq(th_str(&r, "text"), "Перезвонить клиенту");
    cr_assert_str_eq(th_str(&r, "due_at"), DUE1);
    cr_assert_str_eq(th_str(&r, "state"), "open");
    cr_assert(json_is_null(json_object_get(r.json, "completed_at")), "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "result")), "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "external_id")), "%s", r.body);
    int64_t created = parse_time(th_str(&r, "created_at"));
    cr_assert(created >= before && created <= after, "created_at %s", th_str(&r, "created_at"));
    json_t *created_obj = json_incref(r.json);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_equal(r.json, created_obj), "GET differs from the POST reply: %s", r.body);
    json_decref(created_obj);
    th_resp_free(&r);
}

Test(tasks, create_with_an_explicit_manager)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"manager_id\":%lld,\"type\":\"meeting\",\"text\":\"Встреча\","
                "\"due_at\":\"" DUE1 "\"}",
                (long long)deal, (long long)w.manager2);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    cr_assert_str_eq(th_str(&r, "type"), "meeting");
    th_resp_free(&r);
}

Test(tasks, due_at_with_an_offset_is_returned_in_utc)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/tasks",
                               "{\"deal_id\":%lld,\"type\":\"follow_up\",\"text\":\"\",\"due_at\":"
                               "\"2030-01-15T14:00:00+05:00\"}",
                               (long long)deal);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "due_at"), DUE1);
    cr_assert_str_eq(th_str(&r, "text"), "");
    th_resp_free(&r);
}

Test(tasks, unknown_deal_or_manager_in_the_body_is_422)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":999999999,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"" DUE1 "\"}");
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    r = th_post(
        w.acct.admin_key, "/api/v1/tasks",
        "{\"deal_id\":%lld,\"manager_id\":999999999,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"" DUE1
        "\"}",
        (long long)deal);
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"tomorrow\"}",
                (long long)deal);
    assert_field_error(&r, "due_at");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 0);
    cr_assert_eq(th_count_rows("task_history", w.acct.id), 0);
}

Test(tasks, manager_key_creates_tasks_only_on_his_own_deal)
{
    int64_t mine = create_deal(w.acct.admin_key, w.manager1);
    int64_t theirs = create_deal(w.acct.admin_key, w.manager2);

    struct th_resp r =
        th_post(w.manager1_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Мой звонок\",\"due_at\":\"" DUE1 "\"}",
                (long long)mine);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);

    /* another manager's deal in the body: 422 */
    r = th_post(w.manager1_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Чужой\",\"due_at\":\"" DUE1 "\"}",
                (long long)theirs);
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);

    /* giving a task to someone else: 403 */
    r = th_post(
        w.manager1_key, "/api/v1/tasks",
        "{\"deal_id\":%lld,\"manager_id\":%lld,\"type\":\"call\",\"text\":\"Чужой\",\"due_at\":\"" DUE1 "\"}",
        (long long)mine, (long long)w.manager2);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);

    /* naming himself explicitly is fine */
    r = th_post(w.manager1_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"manager_id\":%lld,\"type\":\"other\",\"text\":\"Сам\",\"due_at\":\"" DUE1
                "\"}",
                (long long)mine, (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);

    cr_assert_eq(th_count_rows("tasks", w.acct.id), 2);
}

Test(tasks, manager_key_cannot_give_his_task_away)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.manager1_key, deal, 0, "call", DUE1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)task);
    struct th_resp r = th_patch(w.manager1_key, path, "{\"manager_id\":%lld}", (long long)w.manager2);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);
    struct hist_row rows[4];
    cr_assert_eq(task_history(task, rows, 4), 1);
}

Test(tasks, rejection_control_type_is_refused_in_post)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"manager_id\":%lld,\"type\":\"rejection_control\",\"text\":\"x\","
                "\"due_at\":\"" DUE1 "\"}",
                (long long)deal, (long long)w.head);
    assert_field_error(&r, "type");
    th_resp_free(&r);
    r = th_post(w.head_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"rejection_control\",\"text\":\"x\",\"due_at\":\"" DUE1 "\"}",
                (long long)deal);
    assert_field_error(&r, "type");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 0);

    /* nor can PATCH turn a task into one */
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)task);
    r = th_patch(w.acct.admin_key, path, "{\"type\":\"rejection_control\"}");
    assert_field_error(&r, "type");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_str_eq(th_str(&r, "type"), "call");
    th_resp_free(&r);
}

Test(tasks, states_open_overdue_done_deleted_and_their_lists)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    char future[32], past[32];
    th_format_time((int64_t)time(NULL) + 86400, future);
    th_format_time((int64_t)time(NULL) - 3600, past);
    int64_t open = create_task(w.acct.admin_key, deal, 0, "call", future);
    int64_t overdue = create_task(w.acct.admin_key, deal, 0, "call", past);
    int64_t done = create_task(w.acct.admin_key, deal, 0, "call", past);
    int64_t deleted = create_task(w.acct.admin_key, deal, 0, "call", future);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)done);
    struct th_resp r = th_post(w.acct.admin_key, path, "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)deleted);
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 204, "%s", r.body);
    th_resp_free(&r);

    cr_assert_str_eq(state_of(w.acct.admin_key, open), "open");
    cr_assert_str_eq(state_of(w.acct.admin_key, overdue), "overdue");
    cr_assert_str_eq(state_of(w.acct.admin_key, done), "done");
    cr_assert_str_eq(state_of(w.acct.admin_key, deleted), "deleted");

    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=open");
    assert_ids(&r, (int64_t[]){open, overdue}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=overdue");
    assert_ids(&r, (int64_t[]){overdue}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=done");
    assert_ids(&r, (int64_t[]){done}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=deleted");
    assert_ids(&r, (int64_t[]){deleted}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks");
    assert_ids(&r, (int64_t[]){open, overdue, done, deleted}, 4);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=late");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
}

Test(tasks, patch_due_and_manager_write_history_rows)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Позвонить\",\"due_at\":\"" DUE1 "\"}",
                (long long)deal);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t task = th_int(&r, "id");
    int64_t created = parse_time(th_str(&r, "created_at"));
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)task);
    int64_t before = (int64_t)time(NULL);
    r = th_patch(w.acct.admin_key, path, "{\"due_at\":\"" DUE2 "\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "due_at"), DUE2);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", (long long)w.manager2);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    cr_assert_str_eq(th_str(&r, "due_at"), DUE2);
    th_resp_free(&r);
    int64_t after = (int64_t)time(NULL);

    struct hist_row rows[8];
    int n = task_history(task, rows, 8);
    cr_assert_eq(n, 3, "created row + one per change, got %d", n);
    cr_assert_eq(rows[0].at, created);
    cr_assert_eq(rows[0].manager_id, w.manager1);
    cr_assert_eq(rows[0].due_at, DUE1_EPOCH);
    cr_assert_eq(rows[1].manager_id, w.manager1);
    cr_assert_eq(rows[1].due_at, DUE2_EPOCH);
    cr_assert(rows[1].at >= before && rows[1].at <= after);
    cr_assert_eq(rows[2].manager_id, w.manager2);
    cr_assert_eq(rows[2].due_at, DUE2_EPOCH);
    cr_assert(rows[2].at >= rows[1].at && rows[2].at <= after);

    /* both in one request: one more row */
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld,\"due_at\":\"" DUE1 "\"}",
                 (long long)w.manager1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    n = task_history(task, rows, 8);
    cr_assert_eq(n, 4);
    cr_assert_eq(rows[3].manager_id, w.manager1);
    cr_assert_eq(rows[3].due_at, DUE1_EPOCH);

    /* the same values again change nothing: no row */
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld,\"due_at\":\"2030-01-15T12:00:00+03:00\"}",
                 (long long)w.manager1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "due_at"), DUE1);
    th_resp_free(&r);
    cr_assert_eq(task_history(task, rows, 8), 4);
}

Test(tasks, patch_text_only_writes_no_history_row)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)task);
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"text\":\"Обсудить скидку\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "text"), "Обсудить скидку");
    cr_assert_str_eq(th_str(&r, "due_at"), DUE1);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_str_eq(th_str(&r, "text"), "Обсудить скидку");
    th_resp_free(&r);
    struct hist_row rows[4];
    int n = task_history(task, rows, 4);
    cr_assert_eq(n, 1, "a text change is not a history change, got %d rows", n);
    cr_assert_eq(rows[0].manager_id, w.manager1);
    cr_assert_eq(rows[0].due_at, DUE1_EPOCH);
}

Test(tasks, complete_sets_completed_at_and_result_and_a_second_complete_is_409)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)task);
    int64_t before = (int64_t)time(NULL);
    struct th_resp r = th_post(w.manager1_key, path, "{\"result\":\"Договорились о встрече\"}");
    int64_t after = (int64_t)time(NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), task);
    cr_assert_str_eq(th_str(&r, "state"), "done");
    cr_assert_str_eq(th_str(&r, "result"), "Договорились о встрече");
    int64_t completed = parse_time(th_str(&r, "completed_at"));
    cr_assert(completed >= before && completed <= after, "completed_at %s", th_str(&r, "completed_at"));
    char completed_text[32];
    snprintf(completed_text, sizeof completed_text, "%s", th_str(&r, "completed_at"));
    th_resp_free(&r);

    r = th_post(w.manager1_key, path, "{\"result\":\"Ещё раз\"}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "conflict");
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_str_eq(th_str(&r, "state"), "done");
    cr_assert_str_eq(th_str(&r, "result"), "Договорились о встрече");
    cr_assert_str_eq(th_str(&r, "completed_at"), completed_text);
    th_resp_free(&r);
}

Test(tasks, complete_without_a_body_leaves_result_null)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)task);
    struct th_resp r = th_request("POST", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "state"), "done");
    cr_assert(json_is_null(json_object_get(r.json, "result")), "%s", r.body);
    cr_assert(th_str(&r, "completed_at") != NULL, "%s", r.body);
    th_resp_free(&r);
}

Test(tasks, delete_is_soft)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t keep = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "meeting", DUE2);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)task);
    struct th_resp r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 204, "%s", r.body);
    cr_assert_str_eq(r.body, "");
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_eq(r.status, 200, "a deleted task is still readable: %s", r.body);
    cr_assert_str_eq(th_str(&r, "state"), "deleted");
    cr_assert_str_eq(th_str(&r, "type"), "meeting");
    cr_assert_str_eq(th_str(&r, "due_at"), DUE2);
    cr_assert(json_is_null(json_object_get(r.json, "completed_at")), "%s", r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=deleted");
    assert_ids(&r, (int64_t[]){task}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?state=open");
    assert_ids(&r, (int64_t[]){keep}, 1);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 2, "the row stays");

    /* a deleted task cannot be completed */
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)task);
    r = th_post(w.acct.admin_key, path, "{}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_str_eq(th_str(&r, "state"), "deleted");
    th_resp_free(&r);
}

Test(tasks, another_managers_tasks_are_invisible_to_a_manager_key)
{
    int64_t deal1 = create_deal(w.acct.admin_key, w.manager1);
    int64_t deal2 = create_deal(w.acct.admin_key, w.manager2);
    int64_t mine = create_task(w.acct.admin_key, deal1, 0, "call", DUE1);
    int64_t theirs = create_task(w.acct.admin_key, deal2, 0, "call", DUE1);

    struct th_resp r = th_get(w.manager1_key, "/api/v1/tasks/%lld", (long long)theirs);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld", (long long)theirs);
    r = th_patch(w.manager1_key, path, "{\"text\":\"моё\"}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_request("DELETE", path, w.manager1_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)theirs);
    r = th_post(w.manager1_key, path, "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    r = th_get(w.manager1_key, "/api/v1/tasks");
    assert_ids(&r, (int64_t[]){mine}, 1);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/tasks?manager_id=%lld", (long long)w.manager2);
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/tasks?deal_id=%lld", (long long)deal2);
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);

    /* the other manager's task is untouched, and he sees it */
    r = th_get(w.manager2_key, "/api/v1/tasks/%lld", (long long)theirs);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "text"), "Позвонить");
    cr_assert_str_eq(th_str(&r, "state"), "open");
    th_resp_free(&r);
    r = th_get(w.manager2_key, "/api/v1/tasks");
    assert_ids(&r, (int64_t[]){theirs}, 1);
    th_resp_free(&r);
}

Test(tasks, readonly_key_reads_but_does_not_write)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    struct th_resp r = th_get(w.readonly_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.readonly_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"" DUE1 "\"}",
                (long long)deal);
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 1);
}

Test(tasks, list_filters_deal_id_type_and_manager_id)
{
    int64_t deal1 = create_deal(w.acct.admin_key, w.manager1);
    int64_t deal2 = create_deal(w.acct.admin_key, w.manager2);
    int64_t t1 = create_task(w.acct.admin_key, deal1, 0, "call", DUE1);               /* m1, deal1, call */
    int64_t t2 = create_task(w.acct.admin_key, deal1, w.manager2, "meeting", DUE1);   /* m2, deal1, meeting */
    int64_t t3 = create_task(w.acct.admin_key, deal2, 0, "call", DUE1);               /* m2, deal2, call */
    int64_t t4 = create_task(w.acct.admin_key, deal2, w.manager1, "follow_up", DUE1); /* m1, deal2 */

    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/tasks?deal_id=%lld", (long long)deal1);
    assert_ids(&r, (int64_t[]){t1, t2}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?deal_id=%lld", (long long)deal2);
    assert_ids(&r, (int64_t[]){t3, t4}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?type=call");
    assert_ids(&r, (int64_t[]){t1, t3}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?type=follow_up");
    assert_ids(&r, (int64_t[]){t4}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?type=other");
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?manager_id=%lld", (long long)w.manager1);
    assert_ids(&r, (int64_t[]){t1, t4}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?manager_id=%lld", (long long)w.manager2);
    assert_ids(&r, (int64_t[]){t2, t3}, 2);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?manager_id=%lld&deal_id=%lld&type=call",
               (long long)w.manager2, (long long)deal2);
    assert_ids(&r, (int64_t[]){t3}, 1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?type=sms");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?deal_id=abc");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);

    /* a manager key: his own tasks, whichever deal they are on */
    r = th_get(w.manager1_key, "/api/v1/tasks");
    assert_ids(&r, (int64_t[]){t1, t4}, 2);
    th_resp_free(&r);
}

Test(tasks, list_pages_with_cursor)
{
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = create_task(w.acct.admin_key, deal, 0, "call", DUE1);

    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=2");
    assert_ids(&r, ids, 2);
    cr_assert(th_str(&r, "next_cursor") != NULL, "%s", r.body);
    char cursor[128];
    snprintf(cursor, sizeof cursor, "%s", th_str(&r, "next_cursor"));
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=2&cursor=%s", cursor);
    assert_ids(&r, ids + 2, 2);
    cr_assert(th_str(&r, "next_cursor") != NULL, "%s", r.body);
    snprintf(cursor, sizeof cursor, "%s", th_str(&r, "next_cursor"));
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=2&cursor=%s", cursor);
    assert_ids(&r, ids + 4, 1);
    cr_assert(json_is_null(json_object_get(r.json, "next_cursor")), "%s", r.body);
    th_resp_free(&r);

    /* exactly a page: no next cursor */
    r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=5");
    assert_ids(&r, ids, 5);
    cr_assert(json_is_null(json_object_get(r.json, "next_cursor")), "%s", r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=0");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?limit=501");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/tasks?cursor=not-a-cursor!");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
}

Test(tasks, another_accounts_task_answers_404)
{
    struct th_account other;
    th_account_new(&other);
    int64_t deal = create_deal(w.acct.admin_key, w.manager1);
    int64_t task = create_task(w.acct.admin_key, deal, 0, "call", DUE1);
    struct th_resp r = th_get(other.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)task);
    r = th_post(other.admin_key, path, "{}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_get(other.admin_key, "/api/v1/tasks");
    assert_ids(&r, NULL, 0);
    th_resp_free(&r);
    /* and our deal cannot carry the other account's task */
    r = th_post(other.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"" DUE1 "\"}",
                (long long)deal);
    assert_field_error(&r, "deal_id");
    th_resp_free(&r);
    cr_assert_str_eq(state_of(w.acct.admin_key, task), "open");
}

/* The amoCRM API client (amocrm_client.h) against the fake amoCRM: the exact requests each function sends,
 * what it reads from the answers, and how every kind of failure comes out. */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "fake_amocrm.h"
#include "salesops/amocrm_client.h"

#define BEARER "Bearer " FAKE_AMO_TOKEN

static struct fake_amo *fa;
static struct amo_conn conn;

static void setup(void)
{
    cr_assert_eq(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    fa = fake_amo_start();
    cr_assert_not_null(fa, "the fake amoCRM did not start");
    conn =
        (struct amo_conn){.base_url = fake_amo_url(fa), .access_token = FAKE_AMO_TOKEN, .timeout_ms = 5000};
}

static void teardown(void)
{
    fake_amo_stop(fa);
    fa = NULL;
    curl_global_cleanup();
}

TestSuite(amocrm_client, .init = setup, .fini = teardown, .timeout = 30);

/* ---- fixtures written from FORMAT.md ----------------------------------------------------------------- */

static const char pipelines_json[] =
    "[{\"id\":6101001,\"name\":\"Продажи\",\"sort\":1,\"is_main\":true,\"is_unsorted_on\":true,"
    "\"is_archive\":false,\"account_id\":31000001,\"_links\":{\"self\":{\"href\":\"/api/v4/leads/pipelines/"
    "6101001\"}},"
    "\"_embedded\":{\"statuses\":["
    "{\"id\":55012001,\"name\":\"Неразобранное\",\"sort\":10,\"is_editable\":false,\"pipeline_id\":6101001,"
    "\"color\":\"#c1c1c1\",\"type\":1,\"account_id\":31000001},"
    "{\"id\":55012002,\"name\":\"Взят в работу\",\"sort\":20,\"pipeline_id\":6101001,\"type\":0},"
    "{\"id\":55012003,\"name\":\"Квалификация\",\"sort\":30,\"pipeline_id\":6101001,\"type\":0},"
    "{\"id\":55012004,\"name\":\"Выслано КП\",\"sort\":40,\"pipeline_id\":6101001,\"type\":0},"
    "{\"id\":55012005,\"name\":\"Дожим\",\"sort\":50,\"pipeline_id\":6101001,\"type\":0},"
    "{\"id\":142,\"name\":\"Успешно реализовано\",\"sort\":10000,\"pipeline_id\":6101001,\"type\":0},"
    "{\"id\":143,\"name\":\"Закрыто и не реализовано\",\"sort\":11000,\"pipeline_id\":6101001,\"type\":0}]}},"
    "{\"id\":6101002,\"name\":\"Партнёры\",\"sort\":2,\"is_main\":false,\"_embedded\":{\"statuses\":["
    "{\"id\":55013001,\"name\":\"Новый партнёр\",\"sort\":10,\"pipeline_id\":6101002,\"type\":0},"
    "{\"id\":142,\"name\":\"Успешно реализовано\",\"sort\":10000,\"pipeline_id\":6101002,\"type\":0},"
    "{\"id\":143,\"name\":\"Закрыто и не "
    "реализовано\",\"sort\":11000,\"pipeline_id\":6101002,\"type\":0}]}}]";

static const char loss_reasons_json[] =
    "[{\"id\":7700001,\"name\":\"Дорого\",\"sort\":10,\"created_at\":1732000000,\"updated_at\":1732000000},"
    "{\"id\":7700002,\"name\":\"Выбрали "
    "конкурента\",\"sort\":20,\"created_at\":1732000000,\"updated_at\":1732000000},"
    "{\"id\":7700003,\"name\":\"Нет "
    "бюджета\",\"sort\":30,\"created_at\":1732000000,\"updated_at\":1732000000}]";

static const char users_json[] =
    "[{\"id\":8800001,\"name\":\"Анна Менеджер\",\"email\":\"anna@example.com\",\"lang\":\"ru\","
    "\"rights\":{\"leads\":{\"view\":\"A\"},\"is_admin\":false,\"is_free\":false,\"is_active\":true,"
    "\"group_id\":null,\"role_id\":null}},"
    "{\"id\":8800002,\"name\":\"Борис Менеджер\",\"email\":null,"
    "\"rights\":{\"is_admin\":false,\"is_free\":false,\"is_active\":false}},"
    "{\"id\":8800010,\"name\":\"Вера РОП\",\"email\":\"vera@example.com\","
    "\"rights\":{\"is_admin\":true,\"is_free\":false,\"is_active\":true}}]";

/* ---- assertions ------------------------------------------------------------------------------------- */

static const struct fake_amo_request *only_request(void)
{
    cr_assert_eq(fake_amo_request_count(fa), 1, "expected one request, the fake got %zu",
                 fake_amo_request_count(fa));
    return fake_amo_request(fa, 0);
}

static void assert_request(const struct fake_amo_request *req, const char *method, const char *path,
                           const char *query)
{
    cr_assert_not_null(req);
    cr_assert_str_eq(req->method, method);
    cr_assert_str_eq(req->path, path);
    cr_assert_str_eq(req->query, query);
    cr_assert_str_eq(req->authorization, BEARER);
}

static void assert_no_body(const struct fake_amo_request *req)
{
    cr_assert_eq(req->body_len, 0, "a %s sent a body: %s", req->method, req->body);
    cr_assert_str_empty(req->content_type);
}

static void assert_json_body(const struct fake_amo_request *req, const char *expected_text)
{
    cr_assert_str_eq(req->content_type, "application/json");
    json_t *expected = json_loads(expected_text, 0, NULL);
    cr_assert_not_null(expected, "bad expectation %s", expected_text);
    json_t *got = fake_amo_request_json(req);
    cr_assert_not_null(got, "the body is not JSON: %s", req->body);
    cr_assert(json_equal(expected, got), "body %s, expected %s", req->body, expected_text);
    json_decref(expected);
    json_decref(got);
}

static void assert_outcome(const struct amo_result *res, enum amo_outcome outcome, long status)
{
    cr_assert_eq(res->outcome, outcome, "outcome %s, expected %s (%s)", amo_outcome_name(res->outcome),
                 amo_outcome_name(outcome), res->error);
    cr_assert_eq(res->status, status, "status %ld, expected %ld (%s)", res->status, status, res->error);
    if (outcome == AMO_OK)
        cr_assert_str_empty(res->error);
    else
        cr_assert_str_not_empty(res->error);
    cr_assert_null(strstr(res->error, conn.access_token), "the token is in the error: %s", res->error);
}

static const char *status_name(const struct amo_pipeline *p, size_t i)
{
    cr_assert_lt(i, p->status_count);
    return p->statuses[i].name;
}

/* ---- pipelines ---------------------------------------------------------------------------------------- */

Test(amocrm_client, pipelines_are_read_with_their_statuses_in_order)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    struct amo_pipeline *pipelines = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_OK, "%s", res.error);
    assert_outcome(&res, AMO_OK, 200);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "GET", "/api/v4/leads/pipelines", "");
    assert_no_body(req);

    cr_assert_eq(count, 2);
    cr_assert_eq(pipelines[0].id, 6101001);
    cr_assert_str_eq(pipelines[0].name, "Продажи");
    cr_assert_eq(pipelines[0].sort, 1);
    cr_assert_eq(pipelines[0].status_count, 7);
    cr_assert_eq(pipelines[0].statuses[0].id, 55012001);
    cr_assert_str_eq(status_name(&pipelines[0], 0), "Неразобранное");
    cr_assert_eq(pipelines[0].statuses[0].sort, 10);
    cr_assert_eq(pipelines[0].statuses[0].type, 1);
    cr_assert_str_eq(status_name(&pipelines[0], 3), "Выслано КП");
    cr_assert_eq(pipelines[0].statuses[3].sort, 40);
    cr_assert_eq(pipelines[0].statuses[3].type, 0);
    cr_assert_eq(pipelines[0].statuses[6].id, 143);
    cr_assert_eq(pipelines[1].id, 6101002);
    cr_assert_str_eq(pipelines[1].name, "Партнёры");
    cr_assert_eq(pipelines[1].status_count, 3);
    cr_assert_str_eq(status_name(&pipelines[1], 0), "Новый партнёр");
    amo_pipelines_free(pipelines, count);
}

Test(amocrm_client, pipelines_follow_next_pages)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    fake_amo_set_page_size(fa, 1);
    struct amo_pipeline *pipelines = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_OK, "%s", res.error);
    cr_assert_eq(fake_amo_request_count(fa), 2);
    assert_request(fake_amo_request(fa, 0), "GET", "/api/v4/leads/pipelines", "");
    assert_request(fake_amo_request(fa, 1), "GET", "/api/v4/leads/pipelines", "page=2&limit=50");
    cr_assert_eq(count, 2);
    cr_assert_eq(pipelines[1].id, 6101002);
    cr_assert_eq(pipelines[1].status_count, 3);
    amo_pipelines_free(pipelines, count);
}

Test(amocrm_client, a_next_link_to_another_host_is_still_asked_of_base_url)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    fake_amo_set_page_size(fa, 1);
    fake_amo_set_links_base(fa, "https://elsewhere.example.com");
    struct amo_pipeline *pipelines = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_OK, "%s", res.error);
    cr_assert_eq(fake_amo_request_count(fa), 2, "the second page was not asked of the fake");
    assert_request(fake_amo_request(fa, 1), "GET", "/api/v4/leads/pipelines", "page=2&limit=50");
    cr_assert_eq(count, 2);
    amo_pipelines_free(pipelines, count);
}

Test(amocrm_client, a_next_link_to_another_list_is_bad)
{
    fake_amo_garbage_next(fa, 1,
                          "{\"_links\":{\"next\":{\"href\":\"https://x.amocrm.ru/api/v4/leads?page=2\"}},"
                          "\"_embedded\":{\"pipelines\":[]}}");
    struct amo_pipeline untouched;
    struct amo_pipeline *pipelines = &untouched; /* must come back NULL */
    size_t count = 99;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 200);
    cr_assert_not_null(strstr(res.error, "_links.next"), "%s", res.error);
    cr_assert_null(pipelines);
    cr_assert_eq(count, 0);
    cr_assert_eq(fake_amo_request_count(fa), 1);
}

Test(amocrm_client, a_status_without_type_is_bad_and_names_the_place)
{
    cr_assert(fake_amo_set_pipelines_json(
        fa, "[{\"id\":1,\"name\":\"P\",\"sort\":1,\"_embedded\":{\"statuses\":["
            "{\"id\":10,\"name\":\"A\",\"sort\":10,\"type\":0},{\"id\":11,\"name\":\"B\",\"sort\":20}]}}]"));
    struct amo_pipeline *pipelines = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 200);
    cr_assert_not_null(strstr(res.error, "pipelines[0]._embedded.statuses[1].type is missing"), "%s",
                       res.error);
    cr_assert_null(pipelines);
    cr_assert_eq(count, 0);
}

Test(amocrm_client, an_answer_without_the_list_is_bad)
{
    fake_amo_garbage_next(fa, 1, "{\"_embedded\":{\"leads\":[]}}");
    struct amo_pipeline *pipelines = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_pipelines(&conn, &pipelines, &count, &res), AMO_BAD);
    cr_assert_not_null(strstr(res.error, "_embedded.pipelines"), "%s", res.error);
}

/* ---- loss reasons ------------------------------------------------------------------------------------ */

Test(amocrm_client, loss_reasons_are_read)
{
    cr_assert(fake_amo_set_loss_reasons_json(fa, loss_reasons_json));
    struct amo_loss_reason *reasons = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_loss_reasons(&conn, &reasons, &count, &res), AMO_OK, "%s", res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "GET", "/api/v4/leads/loss_reasons", "");
    assert_no_body(req);
    cr_assert_eq(count, 3);
    cr_assert_eq(reasons[0].id, 7700001);
    cr_assert_str_eq(reasons[0].name, "Дорого");
    cr_assert_eq(reasons[0].sort, 10);
    cr_assert_eq(reasons[2].id, 7700003);
    cr_assert_str_eq(reasons[2].name, "Нет бюджета");
    cr_assert_eq(reasons[2].sort, 30);
    amo_loss_reasons_free(reasons, count);
}

Test(amocrm_client, no_loss_reasons_is_an_empty_list)
{
    struct amo_loss_reason *reasons = NULL;
    size_t count = 5;
    struct amo_result res;
    cr_assert_eq(amo_get_loss_reasons(&conn, &reasons, &count, &res), AMO_OK, "%s", res.error);
    assert_outcome(&res, AMO_OK, 204);
    cr_assert_eq(count, 0);
    cr_assert_null(reasons);
    amo_loss_reasons_free(reasons, count);
}

/* ---- users ------------------------------------------------------------------------------------------- */

Test(amocrm_client, users_are_read_with_their_rights)
{
    cr_assert(fake_amo_set_users_json(fa, users_json));
    struct amo_user *users = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_users(&conn, &users, &count, &res), AMO_OK, "%s", res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "GET", "/api/v4/users", "limit=250");
    assert_no_body(req);
    cr_assert_eq(count, 3);
    cr_assert_eq(users[0].id, 8800001);
    cr_assert_str_eq(users[0].name, "Анна Менеджер");
    cr_assert_str_eq(users[0].email, "anna@example.com");
    cr_assert(users[0].is_active);
    cr_assert_not(users[0].is_admin);
    cr_assert_eq(users[1].id, 8800002);
    cr_assert_str_eq(users[1].email, "");
    cr_assert_not(users[1].is_active);
    cr_assert_eq(users[2].id, 8800010);
    cr_assert(users[2].is_admin);
    cr_assert(users[2].is_active);
    amo_users_free(users, count);
}

Test(amocrm_client, users_are_read_across_pages)
{
    cr_assert(fake_amo_set_users_json(fa, users_json));
    fake_amo_set_page_size(fa, 2);
    struct amo_user *users = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_users(&conn, &users, &count, &res), AMO_OK, "%s", res.error);
    cr_assert_eq(fake_amo_request_count(fa), 2);
    assert_request(fake_amo_request(fa, 0), "GET", "/api/v4/users", "limit=250");
    assert_request(fake_amo_request(fa, 1), "GET", "/api/v4/users", "page=2&limit=250");
    cr_assert_eq(count, 3);
    cr_assert_eq(users[2].id, 8800010);
    amo_users_free(users, count);
}

Test(amocrm_client, a_user_without_rights_is_bad)
{
    cr_assert(fake_amo_set_users_json(fa, "[{\"id\":1,\"name\":\"A\",\"email\":\"a@example.com\"}]"));
    struct amo_user *users = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_users(&conn, &users, &count, &res), AMO_BAD);
    cr_assert_not_null(strstr(res.error, "users[0].rights.is_active"), "%s", res.error);
    cr_assert_null(users);
    cr_assert_eq(count, 0);
}

Test(amocrm_client, a_failure_on_a_later_page_gives_nothing)
{
    fake_amo_set_page_size(fa, 2);
    cr_assert(fake_amo_set_users_json(
        fa,
        "[{\"id\":1,\"name\":\"A\",\"email\":\"\",\"rights\":{\"is_active\":true,\"is_admin\":false}},"
        "{\"id\":2,\"name\":\"B\",\"email\":\"\",\"rights\":{\"is_active\":true,\"is_admin\":false}},"
        "{\"id\":3,\"name\":\"C\",\"email\":\"\",\"rights\":{\"is_active\":\"yes\",\"is_admin\":false}}]"));
    struct amo_user *users = NULL;
    size_t count = 0;
    struct amo_result res;
    cr_assert_eq(amo_get_users(&conn, &users, &count, &res), AMO_BAD);
    cr_assert_not_null(strstr(res.error, "users[2].rights.is_active is of the wrong type"), "%s", res.error);
    cr_assert_null(users);
    cr_assert_eq(count, 0);
}

/* ---- a lead's loss reason ---------------------------------------------------------------------------- */

Test(amocrm_client, a_lead_loss_reason_is_read_with_its_name)
{
    cr_assert(fake_amo_set_loss_reasons_json(fa, loss_reasons_json));
    fake_amo_set_lead_loss_reason(fa, 40310001, 7700002);
    int64_t reason = -1;
    char name[64];
    struct amo_result res;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, name, sizeof name, &res), AMO_OK, "%s",
                 res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "GET", "/api/v4/leads/40310001", "with=loss_reason");
    assert_no_body(req);
    cr_assert_eq(reason, 7700002);
    cr_assert_str_eq(name, "Выбрали конкурента");
}

Test(amocrm_client, a_lead_without_loss_reason_gives_zero)
{
    fake_amo_set_lead(fa, 40310001, 6101001, 55012004, 8800002);
    int64_t reason = -1;
    char name[64] = "left over";
    struct amo_result res;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, name, sizeof name, &res), AMO_OK, "%s",
                 res.error);
    cr_assert_eq(reason, 0);
    cr_assert_str_eq(name, "");
}

Test(amocrm_client, a_long_loss_reason_name_is_cut_between_characters)
{
    cr_assert(fake_amo_set_loss_reasons_json(fa, loss_reasons_json));
    fake_amo_set_lead_loss_reason(fa, 40310001, 7700002);
    int64_t reason = 0;
    char name[6]; /* "Выбрали" is 2 bytes a letter: 5 bytes of room hold two letters */
    struct amo_result res;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, name, sizeof name, &res), AMO_OK, "%s",
                 res.error);
    cr_assert_str_eq(name, "Вы");
    cr_assert_eq(reason, 7700002);
    /* no buffer at all is allowed */
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, NULL, 0, &res), AMO_OK, "%s", res.error);
}

Test(amocrm_client, an_unknown_lead_is_not_found)
{
    int64_t reason = -1;
    char name[16];
    struct amo_result res;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40319999, &reason, name, sizeof name, &res), AMO_NOT_FOUND);
    assert_outcome(&res, AMO_NOT_FOUND, 404);
    cr_assert_eq(reason, 0);
}

Test(amocrm_client, a_204_for_a_lead_is_not_found)
{
    fake_amo_fail_next(fa, 1, 204, NULL);
    int64_t reason = -1;
    char name[16];
    struct amo_result res;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, name, sizeof name, &res), AMO_NOT_FOUND);
    assert_outcome(&res, AMO_NOT_FOUND, 204);
}

/* ---- writes to a lead -------------------------------------------------------------------------------- */

Test(amocrm_client, patch_lead_sends_only_the_fields_that_change)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    fake_amo_set_lead(fa, 40310001, 6101001, 55012002, 8800002);
    struct amo_result res;
    cr_assert_eq(amo_patch_lead(&conn, 40310001, 55012004, 6101001, 0, &res), AMO_OK, "%s", res.error);
    assert_outcome(&res, AMO_OK, 200);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "PATCH", "/api/v4/leads/40310001", "");
    assert_json_body(req, "{\"status_id\":55012004,\"pipeline_id\":6101001}");

    json_t *lead = fake_amo_lead_copy(fa, 40310001);
    cr_assert_eq(json_integer_value(json_object_get(lead, "status_id")), 55012004);
    cr_assert_eq(json_integer_value(json_object_get(lead, "responsible_user_id")), 8800002);
    json_decref(lead);
}

Test(amocrm_client, patch_lead_can_change_only_the_responsible)
{
    fake_amo_set_lead(fa, 40310001, 6101001, 55012002, 8800001);
    struct amo_result res;
    cr_assert_eq(amo_patch_lead(&conn, 40310001, 0, 0, 8800002, &res), AMO_OK, "%s", res.error);
    assert_json_body(only_request(), "{\"responsible_user_id\":8800002}");
}

Test(amocrm_client, patch_lead_with_nothing_to_change_sends_nothing)
{
    struct amo_result res;
    cr_assert_eq(amo_patch_lead(&conn, 40310001, 0, 0, 0, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 0);
    cr_assert_eq(amo_patch_lead(&conn, 0, 142, 0, 0, &res), AMO_BAD);
    cr_assert_eq(amo_patch_lead(&conn, 40310001, -5, 0, 0, &res), AMO_BAD);
    cr_assert_eq(fake_amo_request_count(fa), 0);
}

Test(amocrm_client, a_status_amocrm_rejects_is_bad_with_its_reason)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    fake_amo_set_lead(fa, 40310001, 6101001, 55012002, 8800002);
    struct amo_result res;
    cr_assert_eq(amo_patch_lead(&conn, 40310001, 55013001, 0, 0, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 400);
    cr_assert_not_null(strstr(res.error, "status_id: The value you selected is not a valid choice."), "%s",
                       res.error);
}

Test(amocrm_client, patching_an_unknown_lead_is_not_found)
{
    struct amo_result res;
    cr_assert_eq(amo_patch_lead(&conn, 40319999, 142, 0, 0, &res), AMO_NOT_FOUND);
    assert_outcome(&res, AMO_NOT_FOUND, 404);
}

/* ---- tasks ------------------------------------------------------------------------------------------- */

Test(amocrm_client, add_task_posts_one_task_on_the_lead_and_returns_its_id)
{
    int64_t task_id = 0;
    struct amo_result res;
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, "Позвонить клиенту", 1764144000, &task_id, &res),
                 AMO_OK, "%s", res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "POST", "/api/v4/tasks", "");
    assert_json_body(req,
                     "[{\"text\":\"Позвонить клиенту\",\"complete_till\":1764144000,\"entity_id\":40310001,"
                     "\"entity_type\":\"leads\",\"responsible_user_id\":8800002,\"task_type_id\":1}]");
    cr_assert_eq(task_id, FAKE_AMO_FIRST_TASK_ID);
    json_t *task = fake_amo_task_copy(fa, task_id);
    cr_assert_not_null(task);
    cr_assert_str_eq(json_string_value(json_object_get(task, "text")), "Позвонить клиенту");
    json_decref(task);
}

Test(amocrm_client, add_task_leaves_out_zero_responsible_and_type)
{
    int64_t task_id = 0;
    struct amo_result res;
    cr_assert_eq(amo_add_task(&conn, 40310001, 0, 0, "Встреча", 1764144000, &task_id, &res), AMO_OK, "%s",
                 res.error);
    assert_json_body(only_request(),
                     "[{\"text\":\"Встреча\",\"complete_till\":1764144000,\"entity_id\":40310001,"
                     "\"entity_type\":\"leads\"}]");
}

Test(amocrm_client, add_task_without_text_or_due_time_sends_nothing)
{
    int64_t task_id = 5;
    struct amo_result res;
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, "", 1764144000, &task_id, &res), AMO_BAD);
    cr_assert_eq(task_id, 0);
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, NULL, 1764144000, &task_id, &res), AMO_BAD);
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, "Позвонить", 0, &task_id, &res), AMO_BAD);
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, "\xff\xfe", 1764144000, &task_id, &res), AMO_BAD);
    cr_assert_not_null(strstr(res.error, "UTF-8"), "%s", res.error);
    cr_assert_eq(fake_amo_request_count(fa), 0);
}

Test(amocrm_client, an_add_answer_without_an_id_is_bad)
{
    fake_amo_garbage_next(fa, 1, "{\"_embedded\":{\"tasks\":[]}}");
    int64_t task_id = 5;
    struct amo_result res;
    cr_assert_eq(amo_add_task(&conn, 40310001, 8800002, 1, "Позвонить", 1764144000, &task_id, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 200);
    cr_assert_not_null(strstr(res.error, "_embedded.tasks[0].id"), "%s", res.error);
    cr_assert_eq(task_id, 0);
}

Test(amocrm_client, complete_task_patches_it_with_the_result)
{
    fake_amo_set_task(fa, 70001234, 40310001, "Позвонить клиенту");
    struct amo_result res;
    cr_assert_eq(amo_complete_task(&conn, 70001234, "Дозвонились, выслали КП", &res), AMO_OK, "%s",
                 res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "PATCH", "/api/v4/tasks/70001234", "");
    assert_json_body(req, "{\"is_completed\":true,\"result\":{\"text\":\"Дозвонились, выслали КП\"}}");
    json_t *task = fake_amo_task_copy(fa, 70001234);
    cr_assert(json_is_true(json_object_get(task, "is_completed")));
    json_decref(task);
}

Test(amocrm_client, complete_task_without_a_result_sends_no_result)
{
    fake_amo_set_task(fa, 70001234, 40310001, "Позвонить клиенту");
    struct amo_result res;
    cr_assert_eq(amo_complete_task(&conn, 70001234, NULL, &res), AMO_OK, "%s", res.error);
    assert_json_body(only_request(), "{\"is_completed\":true}");
}

Test(amocrm_client, completing_an_unknown_task_is_not_found)
{
    struct amo_result res;
    cr_assert_eq(amo_complete_task(&conn, 70009999, "x", &res), AMO_NOT_FOUND);
    assert_outcome(&res, AMO_NOT_FOUND, 404);
}

/* ---- notes ------------------------------------------------------------------------------------------- */

Test(amocrm_client, add_note_posts_a_common_note_and_returns_its_id)
{
    int64_t note_id = 0;
    struct amo_result res;
    cr_assert_eq(amo_add_note(&conn, 40310001, "Клиент просит скидку", &note_id, &res), AMO_OK, "%s",
                 res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "POST", "/api/v4/leads/40310001/notes", "");
    assert_json_body(req, "[{\"note_type\":\"common\",\"params\":{\"text\":\"Клиент просит скидку\"}}]");
    cr_assert_eq(note_id, FAKE_AMO_FIRST_NOTE_ID);
    json_t *note = fake_amo_note_copy(fa, note_id);
    cr_assert_eq(json_integer_value(json_object_get(note, "entity_id")), 40310001);
    json_decref(note);
}

Test(amocrm_client, add_note_without_text_sends_nothing)
{
    int64_t note_id = 0;
    struct amo_result res;
    cr_assert_eq(amo_add_note(&conn, 40310001, "", &note_id, &res), AMO_BAD);
    cr_assert_eq(amo_add_note(&conn, -1, "x", &note_id, &res), AMO_BAD);
    cr_assert_eq(fake_amo_request_count(fa), 0);
}

Test(amocrm_client, an_answered_call_note_gives_duration_and_answered)
{
    fake_amo_set_call_note(fa, 40310001, 91000001, "call_out", 95, 4);
    long duration = -1;
    bool answered = false;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000001, &duration, &answered, &res), AMO_OK, "%s",
                 res.error);
    const struct fake_amo_request *req = only_request();
    assert_request(req, "GET", "/api/v4/leads/40310001/notes/91000001", "");
    assert_no_body(req);
    cr_assert_eq(duration, 95);
    cr_assert(answered);
}

Test(amocrm_client, a_call_that_did_not_connect_is_unanswered)
{
    fake_amo_set_call_note(fa, 40310001, 91000002, "call_in", 0, 6);
    long duration = -1;
    bool answered = true;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000002, &duration, &answered, &res), AMO_OK, "%s",
                 res.error);
    cr_assert_eq(duration, 0);
    cr_assert_not(answered);
}

Test(amocrm_client, call_params_given_as_strings_are_read)
{
    cr_assert(fake_amo_set_note_json(
        fa, 40310001, 91000003,
        "{\"note_type\":\"call_in\",\"params\":{\"duration\":\"42\",\"call_status\":\"4\","
        "\"uniq\":\"abc\",\"phone\":\"+79990000000\"}}"));
    long duration = -1;
    bool answered = false;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000003, &duration, &answered, &res), AMO_OK, "%s",
                 res.error);
    cr_assert_eq(duration, 42);
    cr_assert(answered);
}

Test(amocrm_client, a_call_note_without_params_is_zero_and_unanswered)
{
    cr_assert(fake_amo_set_note_json(fa, 40310001, 91000004, "{\"note_type\":\"call_out\"}"));
    long duration = -1;
    bool answered = true;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000004, &duration, &answered, &res), AMO_OK, "%s",
                 res.error);
    cr_assert_eq(duration, 0);
    cr_assert_not(answered);
}

Test(amocrm_client, a_note_that_is_not_a_call_is_bad)
{
    cr_assert(fake_amo_set_note_json(fa, 40310001, 91000005,
                                     "{\"note_type\":\"common\",\"params\":{\"text\":\"hello\"}}"));
    long duration = -1;
    bool answered = true;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000005, &duration, &answered, &res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 200);
    cr_assert_not_null(strstr(res.error, "\"common\", not a call"), "%s", res.error);
    cr_assert_eq(duration, 0);
    cr_assert_not(answered);
}

Test(amocrm_client, a_note_of_another_lead_is_not_found)
{
    fake_amo_set_call_note(fa, 40310002, 91000006, "call_in", 30, 4);
    long duration = -1;
    bool answered = true;
    struct amo_result res;
    cr_assert_eq(amo_get_call_note(&conn, 40310001, 91000006, &duration, &answered, &res), AMO_NOT_FOUND);
    assert_outcome(&res, AMO_NOT_FOUND, 404);
}

/* ---- failures, for every function ------------------------------------------------------------------ */

/* Each caller makes one call of one function against state where it would succeed. */
typedef enum amo_outcome (*caller_fn)(struct amo_result *res);

static enum amo_outcome call_pipelines(struct amo_result *res)
{
    struct amo_pipeline *p = NULL;
    size_t n = 7;
    enum amo_outcome o = amo_get_pipelines(&conn, &p, &n, res);
    if (o != AMO_OK) cr_assert(p == NULL && n == 0, "a failed call left results");
    amo_pipelines_free(p, n);
    return o;
}

static enum amo_outcome call_loss_reasons(struct amo_result *res)
{
    struct amo_loss_reason *r = NULL;
    size_t n = 7;
    enum amo_outcome o = amo_get_loss_reasons(&conn, &r, &n, res);
    if (o != AMO_OK) cr_assert(r == NULL && n == 0, "a failed call left results");
    amo_loss_reasons_free(r, n);
    return o;
}

static enum amo_outcome call_users(struct amo_result *res)
{
    struct amo_user *u = NULL;
    size_t n = 7;
    enum amo_outcome o = amo_get_users(&conn, &u, &n, res);
    if (o != AMO_OK) cr_assert(u == NULL && n == 0, "a failed call left results");
    amo_users_free(u, n);
    return o;
}

static enum amo_outcome call_lead_loss_reason(struct amo_result *res)
{
    int64_t id = 0;
    char name[32];
    return amo_get_lead_loss_reason(&conn, 40310001, &id, name, sizeof name, res);
}

static enum amo_outcome call_patch_lead(struct amo_result *res)
{
    return amo_patch_lead(&conn, 40310001, 55012004, 6101001, 8800002, res);
}

static enum amo_outcome call_add_task(struct amo_result *res)
{
    int64_t id = 0;
    return amo_add_task(&conn, 40310001, 8800002, 1, "Позвонить", 1764144000, &id, res);
}

static enum amo_outcome call_complete_task(struct amo_result *res)
{
    return amo_complete_task(&conn, 70001234, "Готово", res);
}

static enum amo_outcome call_add_note(struct amo_result *res)
{
    int64_t id = 0;
    return amo_add_note(&conn, 40310001, "Заметка", &id, res);
}

static enum amo_outcome call_call_note(struct amo_result *res)
{
    long duration = 0;
    bool answered = false;
    return amo_get_call_note(&conn, 40310001, 91000001, &duration, &answered, res);
}

static const struct {
    const char *name;
    caller_fn call;
} callers[] = {
    {"amo_get_pipelines", call_pipelines},
    {"amo_get_loss_reasons", call_loss_reasons},
    {"amo_get_users", call_users},
    {"amo_get_lead_loss_reason", call_lead_loss_reason},
    {"amo_patch_lead", call_patch_lead},
    {"amo_add_task", call_add_task},
    {"amo_complete_task", call_complete_task},
    {"amo_add_note", call_add_note},
    {"amo_get_call_note", call_call_note},
};
#define CALLER_COUNT (sizeof callers / sizeof callers[0])

/* State under which every caller succeeds. */
static void everything_exists(void)
{
    cr_assert(fake_amo_set_pipelines_json(fa, pipelines_json));
    cr_assert(fake_amo_set_loss_reasons_json(fa, loss_reasons_json));
    cr_assert(fake_amo_set_users_json(fa, users_json));
    fake_amo_set_lead(fa, 40310001, 6101001, 55012002, 8800001);
    fake_amo_set_task(fa, 70001234, 40310001, "Позвонить");
    fake_amo_set_call_note(fa, 40310001, 91000001, "call_in", 60, 4);
}

Test(amocrm_client, every_function_succeeds_on_good_state)
{
    everything_exists();
    for (size_t i = 0; i < CALLER_COUNT; i++) {
        struct amo_result res;
        cr_assert_eq(callers[i].call(&res), AMO_OK, "%s: %s", callers[i].name, res.error);
        assert_outcome(&res, AMO_OK, 200);
    }
    cr_assert_eq(fake_amo_request_count(fa), CALLER_COUNT);
    for (size_t i = 0; i < CALLER_COUNT; i++)
        cr_assert_str_eq(fake_amo_request(fa, i)->authorization, BEARER, "%s", callers[i].name);
}

/* Makes the next request of each function fail as `arrange` says and checks what comes out. */
static void each_function(void (*arrange)(void), enum amo_outcome outcome, long status, double retry_after_s)
{
    everything_exists();
    for (size_t i = 0; i < CALLER_COUNT; i++) {
        arrange();
        struct amo_result res;
        enum amo_outcome got = callers[i].call(&res);
        cr_assert_eq(got, outcome, "%s: %s, expected %s (%s)", callers[i].name, amo_outcome_name(got),
                     amo_outcome_name(outcome), res.error);
        cr_assert_eq(res.outcome, got, "%s", callers[i].name);
        cr_assert_eq(res.status, status, "%s: status %ld (%s)", callers[i].name, res.status, res.error);
        cr_assert_float_eq(res.retry_after_s, retry_after_s, 2.0, "%s: retry_after_s %g", callers[i].name,
                           res.retry_after_s);
        cr_assert_str_not_empty(res.error, "%s", callers[i].name);
        cr_assert_null(strstr(res.error, FAKE_AMO_TOKEN), "%s: the token is in the error: %s",
                       callers[i].name, res.error);
    }
}

static void arrange_429(void)
{
    fake_amo_fail_next(fa, 1, 429, "7");
}

Test(amocrm_client, a_429_is_retry_with_retry_after)
{
    each_function(arrange_429, AMO_RETRY, 429, 7);
    struct amo_result res;
    arrange_429();
    call_users(&res);
    cr_assert_eq(res.retry_after_s, 7.0);
    cr_assert_not_null(strstr(res.error, "HTTP 429"), "%s", res.error);
}

static void arrange_429_with_a_date(void)
{
    char date[64];
    time_t when = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    fake_amo_fail_next(fa, 1, 429, date);
}

Test(amocrm_client, a_retry_after_date_becomes_seconds)
{
    each_function(arrange_429_with_a_date, AMO_RETRY, 429, 29);
}

static void arrange_500(void)
{
    fake_amo_fail_next(fa, 1, 500, NULL);
}

Test(amocrm_client, a_500_is_retry)
{
    each_function(arrange_500, AMO_RETRY, 500, 0);
}

static void arrange_503(void)
{
    fake_amo_fail_next(fa, 1, 503, "3");
}

Test(amocrm_client, a_503_is_retry_with_retry_after)
{
    each_function(arrange_503, AMO_RETRY, 503, 3);
}

static void arrange_401(void)
{
    fake_amo_fail_next(fa, 1, 401, NULL);
}

Test(amocrm_client, a_401_is_auth)
{
    each_function(arrange_401, AMO_AUTH, 401, 0);
}

static void arrange_403(void)
{
    fake_amo_fail_next(fa, 1, 403, NULL);
}

Test(amocrm_client, a_403_is_auth)
{
    each_function(arrange_403, AMO_AUTH, 403, 0);
}

static void arrange_404(void)
{
    fake_amo_fail_next(fa, 1, 404, NULL);
}

Test(amocrm_client, a_404_is_not_found)
{
    each_function(arrange_404, AMO_NOT_FOUND, 404, 0);
}

static void arrange_400(void)
{
    fake_amo_fail_next(fa, 1, 400, NULL);
}

Test(amocrm_client, another_4xx_is_bad)
{
    each_function(arrange_400, AMO_BAD, 400, 0);
}

static void arrange_redirect(void)
{
    fake_amo_answer_next(fa, 1, 302, "");
}

Test(amocrm_client, a_redirect_is_bad_and_not_followed)
{
    each_function(arrange_redirect, AMO_BAD, 302, 0);
    cr_assert_eq(fake_amo_request_count(fa), CALLER_COUNT);
}

static void arrange_html(void)
{
    fake_amo_garbage_next(fa, 1, NULL);
}

Test(amocrm_client, an_html_answer_is_bad)
{
    each_function(arrange_html, AMO_BAD, 200, 0);
    struct amo_result res;
    arrange_html();
    call_pipelines(&res);
    cr_assert_not_null(strstr(res.error, "GET /api/v4/leads/pipelines: HTTP 200 answer is not JSON"), "%s",
                       res.error);
}

static void arrange_cut_json(void)
{
    fake_amo_garbage_next(fa, 1, "{\"_embedded\":{\"pipel");
}

Test(amocrm_client, a_cut_json_answer_is_bad)
{
    each_function(arrange_cut_json, AMO_BAD, 200, 0);
}

static void arrange_json_of_another_shape(void)
{
    fake_amo_garbage_next(fa, 1, "[1,2,3]");
}

Test(amocrm_client, json_of_another_shape_is_bad)
{
    each_function(arrange_json_of_another_shape, AMO_BAD, 200, 0);
}

Test(amocrm_client, a_slow_answer_times_out_as_retry)
{
    everything_exists();
    conn.timeout_ms = 300;
    for (size_t i = 0; i < CALLER_COUNT; i++) {
        fake_amo_delay_next(fa, 1, 3000);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct amo_result res;
        enum amo_outcome got = callers[i].call(&res);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        cr_assert_eq(got, AMO_RETRY, "%s: %s (%s)", callers[i].name, amo_outcome_name(got), res.error);
        cr_assert_eq(res.status, 0);
        cr_assert_lt(elapsed, 2.0, "%s took %.2f s", callers[i].name, elapsed);
        /* curl says "timed out", or "... with timeout" when a loaded machine spent the 300 ms resolving */
        cr_assert(strstr(res.error, "timed out") != NULL || strstr(res.error, "timeout") != NULL, "%s", res.error);
    }
}

Test(amocrm_client, a_refused_connection_is_retry)
{
    /* a port that was just free: bound, then closed */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
    conn.base_url = url;
    for (size_t i = 0; i < CALLER_COUNT; i++) {
        struct amo_result res;
        cr_assert_eq(callers[i].call(&res), AMO_RETRY, "%s: %s", callers[i].name, res.error);
        cr_assert_eq(res.status, 0);
    }
}

Test(amocrm_client, a_wrong_token_is_auth_and_never_in_the_error)
{
    everything_exists();
    conn.access_token = "wrong-token-5f1d2c";
    for (size_t i = 0; i < CALLER_COUNT; i++) {
        struct amo_result res;
        cr_assert_eq(callers[i].call(&res), AMO_AUTH, "%s: %s", callers[i].name, res.error);
        assert_outcome(&res, AMO_AUTH, 401);
        cr_assert_str_eq(fake_amo_last_request(fa)->authorization, "Bearer wrong-token-5f1d2c");
    }
}

Test(amocrm_client, a_token_the_server_echoes_is_cut_from_the_error)
{
    fake_amo_answer_next(fa, 1, 400,
                         "{\"title\":\"Bad Request\",\"detail\":\"token " FAKE_AMO_TOKEN
                         " is not allowed here\"}");
    struct amo_result res;
    cr_assert_eq(call_pipelines(&res), AMO_BAD);
    cr_assert_null(strstr(res.error, FAKE_AMO_TOKEN), "%s", res.error);
    cr_assert_not_null(strstr(res.error, "Bad Request: token [token] is not allowed here"), "%s", res.error);
}

Test(amocrm_client, a_missing_base_url_or_token_sends_nothing)
{
    struct amo_result res;
    conn.base_url = "";
    cr_assert_eq(call_users(&res), AMO_BAD);
    conn.base_url = "ftp://example.amocrm.ru";
    cr_assert_eq(call_users(&res), AMO_BAD);
    conn.base_url = fake_amo_url(fa);
    conn.access_token = NULL;
    cr_assert_eq(call_users(&res), AMO_AUTH);
    conn.access_token = "";
    cr_assert_eq(call_add_task(&res), AMO_AUTH);
    conn.access_token = "abc\r\nX-Injected: 1";
    cr_assert_eq(call_add_note(&res), AMO_AUTH);
    cr_assert_null(strstr(res.error, "X-Injected"), "%s", res.error);
    cr_assert_eq(amo_get_users(NULL, &(struct amo_user *){NULL}, &(size_t){0}, &res), AMO_BAD);
    cr_assert_eq(fake_amo_request_count(fa), 0);
}

Test(amocrm_client, a_base_url_with_a_trailing_slash_works)
{
    everything_exists();
    char url[80];
    snprintf(url, sizeof url, "%s/", fake_amo_url(fa));
    conn.base_url = url;
    struct amo_result res;
    cr_assert_eq(call_lead_loss_reason(&res), AMO_OK, "%s", res.error);
    assert_request(only_request(), "GET", "/api/v4/leads/40310001", "with=loss_reason");
}

Test(amocrm_client, a_failure_clears_on_the_next_call)
{
    everything_exists();
    fake_amo_fail_next(fa, 1, 429, "5");
    struct amo_result res;
    cr_assert_eq(call_users(&res), AMO_RETRY);
    cr_assert_eq(call_users(&res), AMO_OK, "%s", res.error);
    assert_outcome(&res, AMO_OK, 200);
    cr_assert_eq(res.retry_after_s, 0);
}

Test(amocrm_client, the_fake_rate_limit_comes_out_as_retry)
{
    everything_exists();
    fake_amo_set_rate_limit(fa, 7);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    enum amo_outcome outcomes[8];
    struct amo_result last;
    for (int i = 0; i < 8; i++)
        outcomes[i] = call_loss_reasons(&last);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (elapsed >= 0.9)
        cr_skip_test("eight requests took %.2f s, too slow to check a per-second limit", elapsed);
    for (int i = 0; i < 7; i++)
        cr_assert_eq(outcomes[i], AMO_OK, "request %d: %s", i + 1, amo_outcome_name(outcomes[i]));
    cr_assert_eq(outcomes[7], AMO_RETRY);
    cr_assert_eq(last.status, 429);
    cr_assert_eq(last.retry_after_s, 1.0);
    usleep(1100 * 1000);
    cr_assert_eq(call_loss_reasons(&last), AMO_OK, "%s", last.error);
}

Test(amocrm_client, requests_with_no_result_struct_still_work)
{
    everything_exists();
    int64_t reason = -1;
    cr_assert_eq(amo_get_lead_loss_reason(&conn, 40310001, &reason, NULL, 0, NULL), AMO_OK);
    cr_assert_eq(amo_patch_lead(&conn, 40310001, 0, 0, 8800002, NULL), AMO_OK);
    fake_amo_fail_next(fa, 1, 500, NULL);
    cr_assert_eq(amo_complete_task(&conn, 70001234, NULL, NULL), AMO_RETRY);
}

Test(amocrm_client, a_retry_after_that_is_neither_seconds_nor_a_date_is_ignored)
{
    fake_amo_fail_next(fa, 1, 429, "soon");
    struct amo_result res;
    cr_assert_eq(call_pipelines(&res), AMO_RETRY);
    assert_outcome(&res, AMO_RETRY, 429);
    cr_assert_eq(res.retry_after_s, 0);
}

Test(amocrm_client, what_the_server_says_goes_into_the_error_on_one_line)
{
    fake_amo_answer_next(fa, 1, 422, "{\"title\":\"Unprocessable\",\"detail\":\"first\\nsecond\"}");
    struct amo_result res;
    cr_assert_eq(call_add_note(&res), AMO_BAD);
    assert_outcome(&res, AMO_BAD, 422);
    cr_assert_str_eq(res.error, "POST /api/v4/leads/40310001/notes: HTTP 422 (Unprocessable: first second)");
}

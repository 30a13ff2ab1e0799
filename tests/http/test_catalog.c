/* The account's set-up over HTTP: managers (defaults, eligibility, checks, external ids), pipelines and their
 * stages, loss reasons, the account itself, API keys, and the wall between accounts. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(catalog, .init = setup, .fini = th_server_stop);

/* th_world_new makes 3 managers, 1 pipeline, 1 loss reason and 5 API keys (admin + 4). */
#define WORLD_MANAGERS     3
#define WORLD_PIPELINES    1
#define WORLD_LOSS_REASONS 1
#define WORLD_API_KEYS     5

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

static bool flag(const struct th_resp *r, const char *field)
{
    json_t *v = json_object_get(r->json, field);
    cr_assert(json_is_boolean(v), "%s is not a boolean in %s", field, r->body);
    return json_is_true(v);
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

static json_t *stage_at(const struct th_resp *r, size_t i)
{
    json_t *stages = json_object_get(r->json, "stages");
    cr_assert(json_is_array(stages), "%s", r->body);
    json_t *s = json_array_get(stages, i);
    cr_assert(s != NULL, "no stage %zu in %s", i, r->body);
    return s;
}

static void assert_stage(const struct th_resp *r, size_t i, const char *name, const char *kind, int position)
{
    json_t *s = stage_at(r, i);
    if (name != NULL)
        cr_assert_str_eq(json_string_value(json_object_get(s, "name")), name, "stage %zu: %s", i, r->body);
    cr_assert_str_eq(json_string_value(json_object_get(s, "kind")), kind, "stage %zu: %s", i, r->body);
    cr_assert_eq(json_integer_value(json_object_get(s, "position")), position, "stage %zu: %s", i, r->body);
    cr_assert(json_is_false(json_object_get(s, "needs_setup")), "stage %zu: %s", i, r->body);
}

static int64_t stage_id(const struct th_resp *r, size_t i)
{
    return json_integer_value(json_object_get(stage_at(r, i), "id"));
}

/* ---- managers ---- */

Test(catalog, manager_post_defaults)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/managers",
                "{\"name\":\"Козлов Илья\",\"role\":\"manager\",\"email\":\"kozlov@example.ru\","
                "\"external_id\":\"u100\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_str_eq(th_str(&r, "name"), "Козлов Илья");
    cr_assert_str_eq(th_str(&r, "email"), "kozlov@example.ru");
    cr_assert_str_eq(th_str(&r, "role"), "manager");
    cr_assert_str_eq(th_str(&r, "external_id"), "u100");
    cr_assert(flag(&r, "active"), "%s", r.body);
    cr_assert(flag(&r, "distribution_enabled"), "%s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 1);
    cr_assert(!flag(&r, "needs_setup"), "%s", r.body);
    cr_assert(!flag(&r, "in_focus"), "%s", r.body);
    cr_assert(flag(&r, "eligible"), "an active manager in distribution is eligible: %s", r.body);
    cr_assert(th_str(&r, "created_at") != NULL, "%s", r.body);
    json_t *posted = json_incref(r.json);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/managers/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_equal(r.json, posted), "GET differs from POST: %s", r.body);
    json_decref(posted);
    th_resp_free(&r);

    /* a head is never eligible; no email or external id: null */
    r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"Главная\",\"role\":\"head\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "role"), "head");
    cr_assert(flag(&r, "active"), "%s", r.body);
    cr_assert(flag(&r, "distribution_enabled"), "%s", r.body);
    cr_assert(!flag(&r, "in_focus"), "%s", r.body);
    cr_assert(!flag(&r, "eligible"), "a head is not eligible: %s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "email")), "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "external_id")), "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"Интегратор\",\"role\":\"admin\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert(!flag(&r, "in_focus"), "%s", r.body);
    cr_assert(!flag(&r, "eligible"), "an admin is not eligible: %s", r.body);
    th_resp_free(&r);

    /* the world's managers as listed */
    r = th_get(w.acct.admin_key, "/api/v1/managers");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), WORLD_MANAGERS + 3, "%s", r.body);
    json_t *m1 = json_array_get(items, 0);
    cr_assert_eq(json_integer_value(json_object_get(m1, "id")), w.manager1);
    cr_assert(json_is_true(json_object_get(m1, "eligible")), "%s", r.body);
    cr_assert(json_is_false(json_object_get(m1, "in_focus")), "%s", r.body);
    json_t *head = json_array_get(items, 2);
    cr_assert_eq(json_integer_value(json_object_get(head, "id")), w.head);
    cr_assert(json_is_false(json_object_get(head, "eligible")), "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, manager_patch_weight_and_active_recomputes_eligible)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)w.manager1);
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"weight\":50}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 50);
    cr_assert(flag(&r, "active"), "%s", r.body);
    cr_assert(flag(&r, "eligible"), "%s", r.body);
    cr_assert(!flag(&r, "in_focus"), "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Иванова Анна");
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, path, "{\"active\":false}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(!flag(&r, "active"), "%s", r.body);
    cr_assert(!flag(&r, "eligible"), "an inactive manager is not eligible: %s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 50, "weight kept: %s", r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/managers/%lld", (long long)w.manager1);
    cr_assert(!flag(&r, "active"), "%s", r.body);
    cr_assert(!flag(&r, "eligible"), "%s", r.body);
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, path, "{\"active\":true,\"distribution_enabled\":false}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(flag(&r, "active"), "%s", r.body);
    cr_assert(!flag(&r, "distribution_enabled"), "%s", r.body);
    cr_assert(!flag(&r, "eligible"), "out of distribution: %s", r.body);
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, path, "{\"distribution_enabled\":true}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(flag(&r, "eligible"), "%s", r.body);
    th_resp_free(&r);

    /* a manager made head is no longer eligible */
    r = th_patch(w.acct.admin_key, path, "{\"role\":\"head\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "role"), "head");
    cr_assert(!flag(&r, "eligible"), "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, manager_weight_out_of_range_is_422)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"manager\",\"weight\":0}");
    assert_field_error(&r, "weight");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"manager\",\"weight\":101}");
    assert_field_error(&r, "weight");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("managers", w.acct.id), WORLD_MANAGERS);

    r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"manager\",\"weight\":100}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 100);
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)w.manager2);
    r = th_patch(w.acct.admin_key, path, "{\"weight\":0}");
    assert_field_error(&r, "weight");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, path, "{\"weight\":101}");
    assert_field_error(&r, "weight");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/managers/%lld", (long long)w.manager2);
    cr_assert_eq(th_int(&r, "weight"), 1);
    th_resp_free(&r);
}

Test(catalog, manager_email_without_at_is_422)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/managers",
                               "{\"name\":\"A\",\"role\":\"manager\",\"email\":\"kozlov.example.ru\"}");
    assert_field_error(&r, "email");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("managers", w.acct.id), WORLD_MANAGERS);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)w.manager1);
    r = th_patch(w.acct.admin_key, path, "{\"email\":\"no-at-sign\"}");
    assert_field_error(&r, "email");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, path, "{\"email\":\"anna@example.ru\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "email"), "anna@example.ru");
    th_resp_free(&r);
}

Test(catalog, manager_bad_role_and_missing_name_are_422)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"boss\"}");
    assert_field_error(&r, "role");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers", "{\"role\":\"manager\"}");
    assert_field_error(&r, "name");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers",
                "{\"name\":\"A\",\"role\":\"manager\",\"in_focus\":true}");
    assert_field_error(&r, "in_focus");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("managers", w.acct.id), WORLD_MANAGERS);
}

Test(catalog, manager_duplicate_external_id_is_409)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/managers",
                               "{\"name\":\"A\",\"role\":\"manager\",\"external_id\":\"u7\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers",
                "{\"name\":\"B\",\"role\":\"manager\",\"external_id\":\"u7\"}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "conflict");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("managers", w.acct.id), WORLD_MANAGERS + 1);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)w.manager2);
    r = th_patch(w.acct.admin_key, path, "{\"external_id\":\"u7\"}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "conflict");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/managers/%lld", (long long)w.manager2);
    cr_assert(json_is_null(json_object_get(r.json, "external_id")), "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, manager_by_external_id)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/managers",
                               "{\"name\":\"Сидоров\",\"role\":\"manager\",\"external_id\":\"8812345\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/managers/ext:8812345");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id);
    cr_assert_str_eq(th_str(&r, "name"), "Сидоров");
    cr_assert_str_eq(th_str(&r, "external_id"), "8812345");
    th_resp_free(&r);
    r = th_get(w.manager1_key, "/api/v1/managers/ext:8812345");
    cr_assert_eq(r.status, 200, "a manager key reads all managers: %s", r.body);
    cr_assert_eq(th_int(&r, "id"), id);
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, "/api/v1/managers/ext:8812345", "{\"weight\":7}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id);
    cr_assert_eq(th_int(&r, "weight"), 7);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/managers/ext:nobody");
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/managers/999999999");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, manager_key_reads_managers_but_does_not_write_them)
{
    struct th_resp r = th_get(w.manager1_key, "/api/v1/managers");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), WORLD_MANAGERS, "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.manager1_key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"manager\"}");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)w.manager1);
    r = th_patch(w.manager1_key, path, "{\"weight\":100}");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
}

/* ---- pipelines ---- */

Test(catalog, pipeline_stages_in_funnel_order_with_won_and_lost_added)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"Опт\",\"stages\":[{\"name\":\"Заявка\",\"kind\":\"open\"},"
                "{\"name\":\"Счёт\",\"kind\":\"open\"},{\"name\":\"Оплата\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_str_eq(th_str(&r, "name"), "Опт");
    cr_assert(json_is_null(json_object_get(r.json, "external_id")), "%s", r.body);
    cr_assert(!flag(&r, "needs_setup"), "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 5, "%s", r.body);
    assert_stage(&r, 0, "Заявка", "open", 1);
    assert_stage(&r, 1, "Счёт", "open", 2);
    assert_stage(&r, 2, "Оплата", "open", 3);
    assert_stage(&r, 3, NULL, "won", 4);
    assert_stage(&r, 4, NULL, "lost", 5);
    json_t *posted = json_incref(r.json);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert(json_equal(r.json, posted), "GET differs from POST: %s", r.body);
    json_decref(posted);
    th_resp_free(&r);

    r = th_get(w.manager1_key, "/api/v1/pipelines");
    assert_ids(&r, (int64_t[]){w.pipeline_id, id}, 2);
    th_resp_free(&r);
}

Test(catalog, pipeline_keeps_given_won_and_lost_stages)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                               "{\"name\":\"Розница\",\"external_id\":\"7001\",\"stages\":["
                               "{\"name\":\"Первичный контакт\",\"external_id\":\"11\",\"kind\":\"open\"},"
                               "{\"name\":\"Переговоры\",\"external_id\":\"12\",\"kind\":\"open\"},"
                               "{\"name\":\"Продано\",\"external_id\":\"142\",\"kind\":\"won\"},"
                               "{\"name\":\"Отказ\",\"external_id\":\"143\",\"kind\":\"lost\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "external_id"), "7001");
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 4, "no stage is added: %s", r.body);
    assert_stage(&r, 0, "Первичный контакт", "open", 1);
    assert_stage(&r, 1, "Переговоры", "open", 2);
    assert_stage(&r, 2, "Продано", "won", 3);
    assert_stage(&r, 3, "Отказ", "lost", 4);
    cr_assert_str_eq(json_string_value(json_object_get(stage_at(&r, 0), "external_id")), "11");
    cr_assert_str_eq(json_string_value(json_object_get(stage_at(&r, 2), "external_id")), "142");
    cr_assert_str_eq(json_string_value(json_object_get(stage_at(&r, 3), "external_id")), "143");
    th_resp_free(&r);

    /* only a won stage given: the lost one is added, the won one kept */
    r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"Сервис\",\"stages\":[{\"name\":\"Заявка\",\"kind\":\"open\"},"
                "{\"name\":\"Готово\",\"kind\":\"won\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 3, "%s", r.body);
    assert_stage(&r, 0, "Заявка", "open", 1);
    assert_stage(&r, 1, "Готово", "won", 2);
    assert_stage(&r, 2, NULL, "lost", 3);
    th_resp_free(&r);

    /* the stage external ids 142/143 repeat in every pipeline */
    r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"Ещё\",\"stages\":[{\"name\":\"A\",\"kind\":\"open\"},"
                "{\"name\":\"W\",\"external_id\":\"142\",\"kind\":\"won\"},"
                "{\"name\":\"L\",\"external_id\":\"143\",\"kind\":\"lost\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, pipeline_with_two_won_stages_or_no_open_stage_is_422)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                               "{\"name\":\"X\",\"stages\":[{\"name\":\"A\",\"kind\":\"open\"},"
                               "{\"name\":\"W1\",\"kind\":\"won\"},{\"name\":\"W2\",\"kind\":\"won\"}]}");
    assert_field_error(&r, "stages");
    th_resp_free(&r);
    r = th_post(
        w.acct.admin_key, "/api/v1/pipelines",
        "{\"name\":\"X\",\"stages\":[{\"name\":\"W\",\"kind\":\"won\"},{\"name\":\"L\",\"kind\":\"lost\"}]}");
    assert_field_error(&r, "stages");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/pipelines", "{\"name\":\"X\",\"stages\":[]}");
    assert_field_error(&r, "stages");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"X\",\"stages\":[{\"name\":\"A\",\"kind\":\"closed\"}]}");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("pipelines", w.acct.id), WORLD_PIPELINES);
    cr_assert_eq(th_count_rows("stages", w.acct.id), 5);
}

Test(catalog, pipeline_patch_renames_a_stage)
{
    char path[128];
    snprintf(path, sizeof path, "/api/v1/pipelines/%lld", (long long)w.pipeline_id);
    struct th_resp r =
        th_patch(w.acct.admin_key, path,
                 "{\"name\":\"Продажи B2B\",\"stages\":[{\"id\":%lld,\"name\":\"КП отправлено\"}]}",
                 (long long)w.stages[1]);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), w.pipeline_id);
    cr_assert_str_eq(th_str(&r, "name"), "Продажи B2B");
    cr_assert_str_eq(th_str(&r, "external_id"), "p1");
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 5, "%s", r.body);
    assert_stage(&r, 0, "Взят в работу", "open", 1);
    assert_stage(&r, 1, "КП отправлено", "open", 2);
    assert_stage(&r, 2, "Дожим", "open", 3);
    assert_stage(&r, 3, NULL, "won", 4);
    assert_stage(&r, 4, NULL, "lost", 5);
    cr_assert_eq(stage_id(&r, 1), w.stages[1]);
    cr_assert_str_eq(json_string_value(json_object_get(stage_at(&r, 1), "external_id")), "s2", "kept: %s",
                     r.body);
    json_t *patched = json_incref(r.json);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)w.pipeline_id);
    cr_assert(json_equal(r.json, patched), "GET differs from PATCH: %s", r.body);
    json_decref(patched);
    th_resp_free(&r);
}

Test(catalog, pipeline_patch_with_a_stage_of_another_pipeline_is_422)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/pipelines",
                               "{\"name\":\"Другая\",\"stages\":[{\"name\":\"Новая\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t other_stage = stage_id(&r, 0);
    int64_t other_pipeline = th_int(&r, "id");
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/pipelines/%lld", (long long)w.pipeline_id);
    r = th_patch(w.acct.admin_key, path,
                 "{\"name\":\"Переименована\",\"stages\":[{\"id\":%lld,\"name\":\"Чужая\"}]}",
                 (long long)other_stage);
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "validation_failed");
    th_resp_free(&r);

    /* nothing changed, in either pipeline */
    r = th_get(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)w.pipeline_id);
    cr_assert_str_eq(th_str(&r, "name"), "Продажи");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)other_pipeline);
    assert_stage(&r, 0, "Новая", "open", 1);
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, path, "{\"stages\":[{\"id\":999999999,\"name\":\"Нет\"}]}");
    cr_assert_eq(r.status, 422, "%s", r.body);
    th_resp_free(&r);
}

/* ---- loss reasons ---- */

Test(catalog, loss_reasons_crud)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/loss-reasons",
                               "{\"name\":\"Нет бюджета\",\"external_id\":\"r2\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_str_eq(th_str(&r, "name"), "Нет бюджета");
    cr_assert_str_eq(th_str(&r, "external_id"), "r2");
    cr_assert(!flag(&r, "needs_setup"), "%s", r.body);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/loss-reasons/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Нет бюджета");
    th_resp_free(&r);

    r = th_get(w.manager1_key, "/api/v1/loss-reasons");
    assert_ids(&r, (int64_t[]){w.loss_reason, id}, 2);
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/loss-reasons/%lld", (long long)id);
    r = th_patch(w.head_key, path, "{\"name\":\"Нет денег\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Нет денег");
    cr_assert_str_eq(th_str(&r, "external_id"), "r2");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/loss-reasons/%lld", (long long)id);
    cr_assert_str_eq(th_str(&r, "name"), "Нет денег");
    th_resp_free(&r);

    r = th_post(w.acct.admin_key, "/api/v1/loss-reasons", "{\"name\":\"\"}");
    assert_field_error(&r, "name");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/loss-reasons", "{\"name\":\"Дубль\",\"external_id\":\"r2\"}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "conflict");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, path, "{\"name\":\"\"}");
    assert_field_error(&r, "name");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("loss_reasons", w.acct.id), WORLD_LOSS_REASONS + 1);

    r = th_post(w.manager1_key, "/api/v1/loss-reasons", "{\"name\":\"Моя причина\"}");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/loss-reasons/999999999");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
}

/* ---- account ---- */

Test(catalog, account_get_and_patch)
{
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/account");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Test account");
    cr_assert_str_eq(th_str(&r, "timezone"), "Europe/Moscow");
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, "/api/v1/account", "{\"timezone\":\"Mars/Olympus\"}");
    assert_field_error(&r, "timezone");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, "/api/v1/account",
                 "{\"name\":\"Окна Урала\",\"timezone\":\"Mars/Olympus\"}");
    assert_field_error(&r, "timezone");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/account");
    cr_assert_str_eq(th_str(&r, "name"), "Test account", "a failed PATCH changes nothing: %s", r.body);
    cr_assert_str_eq(th_str(&r, "timezone"), "Europe/Moscow");
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, "/api/v1/account", "{\"timezone\":\"Asia/Yekaterinburg\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "timezone"), "Asia/Yekaterinburg");
    cr_assert_str_eq(th_str(&r, "name"), "Test account");
    th_resp_free(&r);
    r = th_patch(w.acct.admin_key, "/api/v1/account", "{\"name\":\"Окна Урала\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Окна Урала");
    cr_assert_str_eq(th_str(&r, "timezone"), "Asia/Yekaterinburg");
    th_resp_free(&r);
    r = th_get(w.readonly_key, "/api/v1/account");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Окна Урала");
    cr_assert_str_eq(th_str(&r, "timezone"), "Asia/Yekaterinburg");
    th_resp_free(&r);

    r = th_patch(w.acct.admin_key, "/api/v1/account", "{\"name\":\"\"}");
    assert_field_error(&r, "name");
    th_resp_free(&r);
    r = th_patch(w.head_key, "/api/v1/account", "{\"name\":\"Голова\"}");
    cr_assert_eq(r.status, 403, "a head may not PATCH /account: %s", r.body);
    th_resp_free(&r);
}

/* ---- API keys ---- */

static bool body_has_key_field(const struct th_resp *r)
{
    json_t *items = json_object_get(r->json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        if (json_object_get(json_array_get(items, i), "key") != NULL) return true;
    return false;
}

Test(catalog, api_key_is_shown_once_and_works)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/api-keys", "{\"role\":\"readonly\",\"name\":\"Дашборд\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_str_eq(th_str(&r, "role"), "readonly");
    cr_assert(json_is_null(json_object_get(r.json, "manager_id")), "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Дашборд");
    cr_assert(th_str(&r, "created_at") != NULL, "%s", r.body);
    const char *k = th_str(&r, "key");
    cr_assert(k != NULL && strlen(k) >= 20, "the key is shown on creation: %s", r.body);
    char key[128];
    snprintf(key, sizeof key, "%s", k);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/api-keys");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), WORLD_API_KEYS + 1, "%s", r.body);
    json_t *last = json_array_get(items, WORLD_API_KEYS);
    cr_assert_eq(json_integer_value(json_object_get(last, "id")), id);
    cr_assert_str_eq(json_string_value(json_object_get(last, "role")), "readonly");
    cr_assert_str_eq(json_string_value(json_object_get(last, "name")), "Дашборд");
    cr_assert(!body_has_key_field(&r), "the list never shows a key: %s", r.body);
    cr_assert(strstr(r.body, key) == NULL, "the secret leaked into the list");
    cr_assert(strstr(r.body, w.acct.admin_key) == NULL, "the admin secret leaked into the list");
    th_resp_free(&r);

    r = th_get(key, "/api/v1/account");
    cr_assert_eq(r.status, 200, "the new key works: %s", r.body);
    th_resp_free(&r);
    r = th_post(key, "/api/v1/managers", "{\"name\":\"A\",\"role\":\"manager\"}");
    cr_assert_eq(r.status, 403, "a readonly key does not write: %s", r.body);
    th_resp_free(&r);

    /* a manager key is bound to its manager */
    r = th_post(w.acct.admin_key, "/api/v1/api-keys",
                "{\"role\":\"manager\",\"manager_id\":%lld,\"name\":\"Анна\"}", (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "role"), "manager");
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    snprintf(key, sizeof key, "%s", th_str(&r, "key"));
    th_resp_free(&r);
    r = th_post(key, "/api/v1/deals", "{\"name\":\"Своя\",\"price\":1,\"pipeline_id\":%lld}",
                (long long)w.pipeline_id);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);

    /* only admins manage keys */
    r = th_get(w.head_key, "/api/v1/api-keys");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
}

Test(catalog, api_key_role_and_manager_id_must_agree)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/api-keys", "{\"role\":\"manager\",\"name\":\"k\"}");
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/api-keys",
                "{\"role\":\"readonly\",\"manager_id\":%lld,\"name\":\"k\"}", (long long)w.manager1);
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/api-keys",
                "{\"role\":\"manager\",\"manager_id\":999999999,\"name\":\"k\"}");
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/api-keys", "{\"role\":\"root\",\"name\":\"k\"}");
    assert_field_error(&r, "role");
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("api_keys", w.acct.id), WORLD_API_KEYS);
}

Test(catalog, deleted_api_key_stops_working_within_one_second)
{
    struct th_resp r =
        th_post(w.acct.admin_key, "/api/v1/api-keys", "{\"role\":\"head\",\"name\":\"временный\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    char key[128];
    snprintf(key, sizeof key, "%s", th_str(&r, "key"));
    th_resp_free(&r);
    /* use it on several connections, so that every server thread may have it cached */
    for (int i = 0; i < 8; i++) {
        r = th_get(key, "/api/v1/managers");
        cr_assert_eq(r.status, 200, "%s", r.body);
        th_resp_free(&r);
    }

    char path[128];
    snprintf(path, sizeof path, "/api/v1/api-keys/%lld", (long long)id);
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 204, "%s", r.body);
    cr_assert_str_eq(r.body, "");
    th_resp_free(&r);

    usleep(1100 * 1000);
    for (int i = 0; i < 8; i++) {
        r = th_get(key, "/api/v1/managers");
        cr_assert_eq(r.status, 401, "a deleted key still works after 1 s: %s", r.body);
        cr_assert_str_eq(th_code(&r), "unauthorized");
        th_resp_free(&r);
    }

    r = th_get(w.acct.admin_key, "/api/v1/api-keys");
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        cr_assert_neq(json_integer_value(json_object_get(json_array_get(items, i), "id")), id,
                      "a deleted key is listed: %s", r.body);
    th_resp_free(&r);

    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "deleting twice: %s", r.body);
    th_resp_free(&r);
    r = th_request("DELETE", "/api/v1/api-keys/999999999", w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
}

/* ---- accounts are walled off ---- */

Test(catalog, another_accounts_objects_answer_404_by_id_and_by_ext)
{
    struct th_account other;
    th_account_new(&other);
    /* the other account has a manager with an external id that this account does not have, and one that both
     * have */
    struct th_resp r = th_post(other.admin_key, "/api/v1/managers",
                               "{\"name\":\"Чужой\",\"role\":\"manager\",\"external_id\":\"only-there\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t other_manager = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(other.admin_key, "/api/v1/managers",
                "{\"name\":\"Тёзка там\",\"role\":\"manager\",\"external_id\":\"both\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.acct.admin_key, "/api/v1/managers",
                "{\"name\":\"Тёзка здесь\",\"role\":\"manager\",\"external_id\":\"both\"}");
    cr_assert_eq(r.status, 201, "external ids are unique per account only: %s", r.body);
    int64_t mine = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(
        other.admin_key, "/api/v1/pipelines",
        "{\"name\":\"Чужая\",\"external_id\":\"p-there\",\"stages\":[{\"name\":\"A\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t other_pipeline = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(other.admin_key, "/api/v1/loss-reasons", "{\"name\":\"Чужая причина\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t other_reason = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(other.admin_key, "/api/v1/api-keys", "{\"role\":\"readonly\",\"name\":\"там\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t other_key_id = th_int(&r, "id");
    char other_key[128];
    snprintf(other_key, sizeof other_key, "%s", th_str(&r, "key"));
    th_resp_free(&r);

    const char *key = w.acct.admin_key;
    r = th_get(key, "/api/v1/managers/%lld", (long long)other_manager);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
    r = th_get(key, "/api/v1/managers/ext:only-there");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_get(key, "/api/v1/managers/ext:both");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), mine);
    cr_assert_str_eq(th_str(&r, "name"), "Тёзка здесь");
    th_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)other_manager);
    r = th_patch(key, path, "{\"weight\":9}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_patch(key, "/api/v1/managers/ext:only-there", "{\"weight\":9}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    r = th_get(key, "/api/v1/pipelines/%lld", (long long)other_pipeline);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/pipelines/%lld", (long long)other_pipeline);
    r = th_patch(key, path, "{\"name\":\"Моя\"}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    r = th_get(key, "/api/v1/loss-reasons/%lld", (long long)other_reason);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/loss-reasons/%lld", (long long)other_reason);
    r = th_patch(key, path, "{\"name\":\"Моя\"}");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/api-keys/%lld", (long long)other_key_id);
    r = th_request("DELETE", path, key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    /* a manager of the other account cannot be bound to a key here */
    r = th_post(key, "/api/v1/api-keys", "{\"role\":\"manager\",\"manager_id\":%lld,\"name\":\"k\"}",
                (long long)other_manager);
    assert_field_error(&r, "manager_id");
    th_resp_free(&r);

    /* lists show only this account's objects */
    r = th_get(key, "/api/v1/pipelines");
    assert_ids(&r, (int64_t[]){w.pipeline_id}, 1);
    th_resp_free(&r);
    r = th_get(key, "/api/v1/loss-reasons");
    assert_ids(&r, (int64_t[]){w.loss_reason}, 1);
    th_resp_free(&r);
    r = th_get(key, "/api/v1/managers");
    assert_ids(&r, (int64_t[]){w.manager1, w.manager2, w.head, mine}, 4);
    th_resp_free(&r);

    /* the other account's objects are untouched, and its key still works */
    r = th_get(other_key, "/api/v1/managers/%lld", (long long)other_manager);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 1);
    th_resp_free(&r);
    r = th_get(other_key, "/api/v1/pipelines/%lld", (long long)other_pipeline);
    cr_assert_str_eq(th_str(&r, "name"), "Чужая");
    th_resp_free(&r);
    r = th_get(other_key, "/api/v1/account");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
}

/* Idempotency-Key on POSTs: replays of the stored status and body, conflicts on another body, and the scope
 * (API key, method, path) of a key. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(idempotency, .init = setup, .fini = th_server_stop);

static struct th_resp post_with_key(const char *api_key, const char *path, const char *body, const char *idem)
{
    char header[256];
    snprintf(header, sizeof header, "Idempotency-Key: %s", idem);
    return th_request("POST", path, api_key, body, NULL, header);
}

static void deal_body(char *out, size_t len, const char *name, int64_t price)
{
    snprintf(out, len, "{\"name\":\"%s\",\"price\":%lld,\"pipeline_id\":%lld,\"manager_id\":%lld}", name,
             (long long)price, (long long)w.pipeline_id, (long long)w.manager1);
}

Test(idempotency, same_key_and_body_replays_the_same_status_and_body_and_creates_one_deal)
{
    char body[256];
    deal_body(body, sizeof body, "Окна", 120000);
    struct th_resp first = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "create-deal-1");
    cr_assert_eq(first.status, 201, "%s", first.body);
    int64_t id = th_int(&first, "id");
    cr_assert_str_eq(th_str(&first, "name"), "Окна");

    struct th_resp second = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "create-deal-1");
    cr_assert_eq(second.status, 201, "replayed status: %s", second.body);
    cr_assert_str_eq(second.body, first.body, "the replay is the stored body");
    cr_assert_eq(th_int(&second, "id"), id);
    cr_assert_str_eq(second.content_type, first.content_type);
    th_resp_free(&second);

    second = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "create-deal-1");
    cr_assert_eq(second.status, 201, "%s", second.body);
    cr_assert_str_eq(second.body, first.body);
    th_resp_free(&second);

    cr_assert_eq(th_count_rows("deals", w.acct.id), 1);
    cr_assert_eq(th_count_rows("deal_history", w.acct.id), 1);
    th_resp_free(&first);

    /* without a key, the same body creates another deal */
    struct th_resp r = th_request("POST", "/api/v1/deals", w.acct.admin_key, body, NULL, NULL);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_neq(th_int(&r, "id"), id);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 2);
}

Test(idempotency, same_key_and_another_body_is_409_idempotency_conflict)
{
    char body[256], other[256];
    deal_body(body, sizeof body, "Окна", 120000);
    deal_body(other, sizeof other, "Окна", 130000);
    struct th_resp r = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "k-conflict");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);

    r = post_with_key(w.acct.admin_key, "/api/v1/deals", other, "k-conflict");
    cr_assert_eq(r.status, 409, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "idempotency_conflict");
    cr_assert(strncmp(r.content_type, "application/problem+json", 24) == 0, "%s", r.content_type);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 1);

    /* the stored reply is intact: the original body still replays */
    r = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "k-conflict");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id);
    cr_assert_eq(th_int(&r, "price"), 120000);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 1);
}

Test(idempotency, the_same_key_on_another_path_is_independent)
{
    char body[256];
    deal_body(body, sizeof body, "Окна", 120000);
    struct th_resp deal = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "shared-key");
    cr_assert_eq(deal.status, 201, "%s", deal.body);
    int64_t deal_id = th_int(&deal, "id");

    struct th_resp r =
        post_with_key(w.acct.admin_key, "/api/v1/loss-reasons", "{\"name\":\"Нет бюджета\"}", "shared-key");
    cr_assert_eq(r.status, 201, "another path runs: %s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Нет бюджета");
    cr_assert(json_object_get(r.json, "price") == NULL, "not the deal's reply: %s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("loss_reasons", w.acct.id), 2);

    /* the same body on a third path, and on a path with another id */
    char path[128], task_body[256];
    snprintf(
        task_body, sizeof task_body,
        "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Позвонить\",\"due_at\":\"2030-01-15T09:00:00Z\"}",
        (long long)deal_id);
    r = post_with_key(w.acct.admin_key, "/api/v1/tasks", task_body, "shared-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/deals/%lld/notes", (long long)deal_id);
    r = post_with_key(w.acct.admin_key, path, "{\"text\":\"Первая\"}", "shared-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 1);
    cr_assert_eq(th_count_rows("notes", w.acct.id), 1);

    /* and the deal still replays */
    r = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "shared-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_str_eq(r.body, deal.body);
    th_resp_free(&r);
    th_resp_free(&deal);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 1);
}

Test(idempotency, keys_are_scoped_per_api_key)
{
    char body[256];
    deal_body(body, sizeof body, "Окна", 120000);
    struct th_resp a = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "per-key");
    cr_assert_eq(a.status, 201, "%s", a.body);
    struct th_resp b = post_with_key(w.head_key, "/api/v1/deals", body, "per-key");
    cr_assert_eq(b.status, 201, "another API key with the same Idempotency-Key creates a deal: %s", b.body);
    cr_assert_neq(th_int(&a, "id"), th_int(&b, "id"));
    cr_assert_eq(th_count_rows("deals", w.acct.id), 2);

    /* each key replays its own */
    struct th_resp r = post_with_key(w.head_key, "/api/v1/deals", body, "per-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), th_int(&b, "id"));
    th_resp_free(&r);
    r = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "per-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), th_int(&a, "id"));
    th_resp_free(&r);
    th_resp_free(&a);
    th_resp_free(&b);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 2);

    /* another account with the same Idempotency-Key is independent too */
    struct th_account other;
    th_account_new(&other);
    r = post_with_key(other.admin_key, "/api/v1/loss-reasons", "{\"name\":\"Дорого\"}", "per-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("loss_reasons", other.id), 1);
}

Test(idempotency, a_failed_request_replays_its_422)
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"Окна\",\"price\":-5,\"pipeline_id\":%lld,\"manager_id\":%lld}",
             (long long)w.pipeline_id, (long long)w.manager1);
    struct th_resp first = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "bad-deal");
    cr_assert_eq(first.status, 422, "%s", first.body);
    cr_assert_str_eq(th_code(&first), "validation_failed");
    struct th_resp second = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "bad-deal");
    cr_assert_eq(second.status, 422, "%s", second.body);
    cr_assert_str_eq(second.body, first.body);
    cr_assert(strncmp(second.content_type, "application/problem+json", 24) == 0, "%s", second.content_type);
    th_resp_free(&first);
    th_resp_free(&second);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 0);
}

Test(idempotency, a_replayed_422_does_not_run_again_after_the_cause_is_gone)
{
    /* manager1 may not put a task on manager2's deal (422) ... */
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/deals",
                               "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":%lld,\"manager_id\":%lld}",
                               (long long)w.pipeline_id, (long long)w.manager2);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t deal = th_int(&r, "id");
    th_resp_free(&r);
    char body[256];
    snprintf(
        body, sizeof body,
        "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Позвонить\",\"due_at\":\"2030-01-15T09:00:00Z\"}",
        (long long)deal);
    struct th_resp first = post_with_key(w.manager1_key, "/api/v1/tasks", body, "task-1");
    cr_assert_eq(first.status, 422, "%s", first.body);

    /* ... until the deal is his; the same key still replays the stored 422 */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)deal);
    r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", (long long)w.manager1);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = post_with_key(w.manager1_key, "/api/v1/tasks", body, "task-1");
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert_str_eq(r.body, first.body);
    th_resp_free(&r);
    th_resp_free(&first);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 0);

    /* a new key runs the request */
    r = post_with_key(w.manager1_key, "/api/v1/tasks", body, "task-2");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), 1);
}

Test(idempotency, an_action_replays_its_200_instead_of_a_409)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/deals",
                               "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":%lld,\"manager_id\":%lld}",
                               (long long)w.pipeline_id, (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t deal = th_int(&r, "id");
    th_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld/close", (long long)deal);
    struct th_resp first = post_with_key(w.acct.admin_key, path, "{\"outcome\":\"won\"}", "close-1");
    cr_assert_eq(first.status, 200, "%s", first.body);
    cr_assert_str_eq(th_str(&first, "status"), "won");
    struct th_resp second = post_with_key(w.acct.admin_key, path, "{\"outcome\":\"won\"}", "close-1");
    cr_assert_eq(second.status, 200, "a retried close replays its 200: %s", second.body);
    cr_assert_str_eq(second.body, first.body);
    th_resp_free(&first);
    th_resp_free(&second);
    /* without the key, closing again is a conflict */
    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("deal_history", w.acct.id), 2, "created + won, once");
}

/* Concurrent retries of one request: each gets the stored reply or 409 (still in progress); one deal. */
struct racer {
    const char *body;
    long status;
    int64_t id;
    char code[64];
};

static void *race(void *p)
{
    struct racer *r = p;
    struct th_resp resp = post_with_key(w.acct.admin_key, "/api/v1/deals", r->body, "raced-key");
    r->status = resp.status;
    json_t *id = json_object_get(resp.json, "id");
    r->id = json_is_integer(id) ? json_integer_value(id) : 0;
    snprintf(r->code, sizeof r->code, "%s", th_code(&resp));
    th_resp_free(&resp);
    return NULL;
}

Test(idempotency, concurrent_retries_create_one_deal)
{
    char body[256];
    deal_body(body, sizeof body, "Окна", 120000);
    enum { RACERS = 8 };
    pthread_t threads[RACERS];
    struct racer racers[RACERS];
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (struct racer){.body = body};
        cr_assert_eq(pthread_create(&threads[i], NULL, race, &racers[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(threads[i], NULL);
    int64_t id = 0;
    int created = 0;
    for (int i = 0; i < RACERS; i++) {
        if (racers[i].status == 409) {
            cr_assert_str_eq(racers[i].code, "idempotency_conflict");
            continue;
        }
        cr_assert_eq(racers[i].status, 201, "racer %d: %ld", i, racers[i].status);
        if (id == 0) id = racers[i].id;
        cr_assert_eq(racers[i].id, id, "every 201 is the same deal");
        created++;
    }
    cr_assert_geq(created, 1);
    cr_assert_eq(th_count_rows("deals", w.acct.id), 1);
    struct th_resp r = post_with_key(w.acct.admin_key, "/api/v1/deals", body, "raced-key");
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), id);
    th_resp_free(&r);
}

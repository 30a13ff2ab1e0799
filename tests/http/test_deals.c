/* Deals over HTTP: creation, stage changes, close and reopen, and the stage history they leave. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(deals, .init = setup, .fini = th_server_stop);

static int64_t create_deal(const char *key, int64_t manager_id)
{
    struct th_resp r =
        manager_id
            ? th_post(key, "/api/v1/deals",
                      "{\"name\":\"Окна\",\"price\":120000,\"pipeline_id\":%lld,\"manager_id\":%lld}",
                      (long long)w.pipeline_id, (long long)manager_id)
            : th_post(key, "/api/v1/deals", "{\"name\":\"Окна\",\"price\":120000,\"pipeline_id\":%lld}",
                      (long long)w.pipeline_id);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

Test(deals, created_in_first_open_stage_with_one_history_row)
{
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/deals",
                               "{\"name\":\"Окна\",\"price\":120000,\"pipeline_id\":%lld,\"manager_id\":%lld,"
                               "\"external_id\":\"D1\"}",
                               (long long)w.pipeline_id, (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    cr_assert_eq(th_int(&r, "stage_id"), w.stages[0]);
    cr_assert_str_eq(th_str(&r, "status"), "open");
    cr_assert_eq(th_int(&r, "price"), 120000);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    cr_assert(json_is_null(json_object_get(r.json, "closed_at")));
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/deals/ext:D1");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(th_int(&r, "id"), id);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/deals/%lld/history", (long long)id);
    cr_assert_eq(r.status, 200);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 1);
    json_t *row = json_array_get(items, 0);
    cr_assert(json_is_null(json_object_get(row, "from_stage_id")));
    cr_assert_eq(json_integer_value(json_object_get(row, "to_stage_id")), w.stages[0]);
    cr_assert_eq(json_integer_value(json_object_get(row, "manager_id")), w.manager1);
    cr_assert_eq(json_integer_value(json_object_get(row, "price")), 120000);
    th_resp_free(&r);
}

Test(deals, stage_change_close_and_reopen_write_history_rows)
{
    int64_t id = create_deal(w.acct.admin_key, w.manager1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)id);
    struct th_resp r =
        th_patch(w.acct.admin_key, path, "{\"stage_id\":%lld,\"price\":150000}", (long long)w.stages[1]);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "stage_id"), w.stages[1]);
    th_resp_free(&r);

    snprintf(path, sizeof path, "/api/v1/deals/%lld/close", (long long)id);
    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"lost\",\"loss_reason_id\":%lld}",
                (long long)w.loss_reason);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "status"), "lost");
    cr_assert_eq(th_int(&r, "stage_id"), w.lost_stage);
    cr_assert_eq(th_int(&r, "loss_reason_id"), w.loss_reason);
    cr_assert(th_str(&r, "closed_at") != NULL);
    th_resp_free(&r);

    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 409, "closing a closed deal: %s", r.body);
    cr_assert_str_eq(th_code(&r), "conflict");
    th_resp_free(&r);

    snprintf(path, sizeof path, "/api/v1/deals/%lld/reopen", (long long)id);
    r = th_post(w.acct.admin_key, path, "{\"stage_id\":%lld,\"manager_id\":%lld}", (long long)w.stages[2],
                (long long)w.manager2);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "status"), "open");
    cr_assert(json_is_null(json_object_get(r.json, "closed_at")));
    cr_assert(json_is_null(json_object_get(r.json, "loss_reason_id")));
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    th_resp_free(&r);

    r = th_get(w.acct.admin_key, "/api/v1/deals/%lld/history", (long long)id);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 4, "%s", r.body);
    json_t *lost = json_array_get(items, 2);
    cr_assert_str_eq(json_string_value(json_object_get(lost, "status")), "lost");
    cr_assert_eq(json_integer_value(json_object_get(lost, "from_stage_id")), w.stages[1]);
    cr_assert_eq(json_integer_value(json_object_get(lost, "loss_reason_id")), w.loss_reason);
    cr_assert_eq(json_integer_value(json_object_get(lost, "price")), 150000);
    cr_assert_eq(json_integer_value(json_object_get(lost, "manager_id")), w.manager1);
    json_t *reopened = json_array_get(items, 3);
    cr_assert_eq(json_integer_value(json_object_get(reopened, "from_stage_id")), w.lost_stage);
    cr_assert_eq(json_integer_value(json_object_get(reopened, "to_stage_id")), w.stages[2]);
    cr_assert_eq(json_integer_value(json_object_get(reopened, "manager_id")), w.manager2);
    th_resp_free(&r);
}

Test(deals, responsible_only_change_keeps_the_stage_in_history)
{
    int64_t id = create_deal(w.acct.admin_key, w.manager1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)id);
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", (long long)w.manager2);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/deals/%lld/history", (long long)id);
    json_t *row = json_array_get(json_object_get(r.json, "items"), 1);
    cr_assert_eq(json_integer_value(json_object_get(row, "from_stage_id")), w.stages[0]);
    cr_assert_eq(json_integer_value(json_object_get(row, "to_stage_id")), w.stages[0]);
    cr_assert_eq(json_integer_value(json_object_get(row, "manager_id")), w.manager2);
    th_resp_free(&r);
}

Test(deals, patch_to_won_stage_is_refused_and_closed_deal_stage_is_conflict)
{
    int64_t id = create_deal(w.acct.admin_key, w.manager1);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)id);
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"stage_id\":%lld}", (long long)w.won_stage);
    cr_assert_eq(r.status, 422, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "validation_failed");
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/deals/%lld/close", (long long)id);
    r = th_post(w.acct.admin_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)id);
    r = th_patch(w.acct.admin_key, path, "{\"stage_id\":%lld}", (long long)w.stages[1]);
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_resp_free(&r);
}

Test(deals, manager_key_creates_his_own_and_cannot_see_others)
{
    int64_t mine = create_deal(w.manager1_key, 0);
    struct th_resp r = th_get(w.manager1_key, "/api/v1/deals/%lld", (long long)mine);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);

    int64_t theirs = create_deal(w.acct.admin_key, w.manager2);
    r = th_get(w.manager1_key, "/api/v1/deals/%lld", (long long)theirs);
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    r = th_get(w.manager1_key, "/api/v1/deals");
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "id")), mine);
    th_resp_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)mine);
    r = th_patch(w.manager1_key, path, "{\"manager_id\":%lld}", (long long)w.manager2);
    cr_assert_eq(r.status, 403, "giving a deal away: %s", r.body);
    th_resp_free(&r);
}

Test(deals, list_pages_with_cursor)
{
    int64_t ids[5];
    for (int i = 0; i < 5; i++)
        ids[i] = create_deal(w.acct.admin_key, w.manager1);
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/deals?limit=2");
    cr_assert_eq(r.status, 200);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 2);
    char cursor[128];
    snprintf(cursor, sizeof cursor, "%s", th_str(&r, "next_cursor"));
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/deals?limit=2&cursor=%s", cursor);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "id")), ids[2]);
    snprintf(cursor, sizeof cursor, "%s", th_str(&r, "next_cursor"));
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/deals?limit=2&cursor=%s", cursor);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 1);
    cr_assert(json_is_null(json_object_get(r.json, "next_cursor")));
    th_resp_free(&r);
}

/* ---- GET /deals/{id} through the batched deal readers ---- */

#define READ_DEALS   12
#define READ_THREADS 8
#define READ_EACH    150

struct read_case {
    const char *key;
    int64_t id;
    int status;       /* what the key must get */
    const char *name; /* the deal's name when 200 */
};

struct read_world {
    struct read_case cases[2 * 4 * READ_DEALS]; /* two accounts, four keys */
    int count;
};

struct read_thread {
    const struct read_world *rw;
    unsigned seed;
    int wrong; /* answers that were not the case's */
    char first_wrong[256];
};

static void *read_many(void *p)
{
    struct read_thread *t = p;
    for (int i = 0; i < READ_EACH; i++) {
        const struct read_case *c = &t->rw->cases[rand_r(&t->seed) % (unsigned)t->rw->count];
        struct th_resp r = th_get(c->key, "/api/v1/deals/%lld", (long long)c->id);
        bool ok = r.status == c->status;
        if (ok && c->status == 200)
            ok = th_int(&r, "id") == c->id && th_str(&r, "name") != NULL && strcmp(th_str(&r, "name"), c->name) == 0;
        if (!ok && t->wrong++ == 0)
            snprintf(t->first_wrong, sizeof t->first_wrong, "deal %lld wanted %d %s, got %ld %s", (long long)c->id,
                     c->status, c->name ? c->name : "", r.status, r.body);
        th_resp_free(&r);
    }
    return NULL;
}

static int64_t metric(const char *name)
{
    struct th_resp r = th_request("GET", "/metrics", NULL, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200);
    char line[128];
    snprintf(line, sizeof line, "\n%s ", name); /* the sample, not its # HELP line */
    const char *at = strstr(r.body, line);
    cr_assert(at != NULL, "no %s in /metrics", name);
    int64_t v = strtoll(at + strlen(line), NULL, 10);
    th_resp_free(&r);
    return v;
}

Test(deals, concurrent_reads_of_two_accounts_each_get_their_own_deal_or_404)
{
    /* The readers read the deals asked for together in one statement, whatever their accounts: each answer
     * must be the deal of its own request, and a key never sees another account's deal or, for a manager key,
     * another manager's. */
    struct th_world other;
    th_world_new(&other);
    static char names[2][READ_DEALS][32];
    struct read_world rw = {0};
    for (int a = 0; a < 2; a++) {
        const struct th_world *wd = a == 0 ? &w : &other;
        for (int i = 0; i < READ_DEALS; i++) {
            snprintf(names[a][i], sizeof names[a][i], "Сделка %c%d", a == 0 ? 'A' : 'B', i);
            int64_t manager = i % 2 ? wd->manager2 : wd->manager1;
            struct th_resp r = th_post(wd->acct.admin_key, "/api/v1/deals",
                                       "{\"name\":\"%s\",\"price\":%d,\"pipeline_id\":%lld,\"manager_id\":%lld}",
                                       names[a][i], 100 + i, (long long)wd->pipeline_id, (long long)manager);
            cr_assert_eq(r.status, 201, "%s", r.body);
            int64_t id = th_int(&r, "id");
            th_resp_free(&r);
            const struct th_world *stranger = a == 0 ? &other : &w;
            rw.cases[rw.count++] = (struct read_case){wd->acct.admin_key, id, 200, names[a][i]};
            rw.cases[rw.count++] = (struct read_case){stranger->acct.admin_key, id, 404, NULL};
            rw.cases[rw.count++] = (struct read_case){wd->manager1_key, id, i % 2 ? 404 : 200, names[a][i]};
            rw.cases[rw.count++] = (struct read_case){wd->readonly_key, id, 200, names[a][i]};
        }
    }
    int64_t batches0 = metric("salesops_deal_read_batches_total"), reads0 = metric("salesops_deal_reads_total");
    pthread_t threads[READ_THREADS];
    struct read_thread t[READ_THREADS];
    for (int i = 0; i < READ_THREADS; i++) {
        t[i] = (struct read_thread){.rw = &rw, .seed = (unsigned)(i + 1) * 7919u};
        cr_assert_eq(pthread_create(&threads[i], NULL, read_many, &t[i]), 0);
    }
    int wrong = 0;
    for (int i = 0; i < READ_THREADS; i++) {
        pthread_join(threads[i], NULL);
        cr_expect_eq(t[i].wrong, 0, "thread %d: %d wrong answers; first: %s", i, t[i].wrong, t[i].first_wrong);
        wrong += t[i].wrong;
    }
    cr_assert_eq(wrong, 0);
    int64_t batches = metric("salesops_deal_read_batches_total") - batches0;
    int64_t reads = metric("salesops_deal_reads_total") - reads0;
    cr_assert_eq(reads, READ_THREADS * READ_EACH, "every GET is one read (%lld)", (long long)reads);
    cr_assert_lt(batches, reads, "some statements read several deals at once (%lld statements for %lld reads)",
                 (long long)batches, (long long)reads);
}

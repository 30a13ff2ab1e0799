/* The amoCRM connector over HTTP, against the fake amoCRM API: PUT/GET /integrations/amocrm and the sync of
 * pipelines, loss reasons and users it starts; the loss reason read after a lead is lost in amoCRM (webhook);
 * the outbox of REST changes written back to amoCRM (lead responsible and stage, tasks, notes), its retries,
 * dead letters and skipped rows; and nothing at all for an account without an integration. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "fake_amocrm.h"
#include "harness.h"
#include "salesops/timeutil.h"
#include "amocrm_samples.h"

/* the sample bodies by their story names */
#define LEADS_ADD         leads_add
#define LEADS_STATUS_LOST leads_status_lost

static struct th_account tacct;
static struct fake_amo *fa;

/* ---- the amoCRM account the fake serves (the ids of the amoCRM FORMAT.md samples) ---- */

#define PIPELINE_EXT "6101001"

/* Statuses deliberately not in `sort` order: salesops must order them itself. */
static const char PIPELINES[] =
    "[{\"id\":6101001,\"name\":\"Продажи\",\"sort\":1,\"is_main\":true,\"is_unsorted_on\":true,"
    "\"is_archive\":false,\"account_id\":31000001,\"_links\":{},\"_embedded\":{\"statuses\":["
    "{\"id\":143,\"name\":\"Закрыто и не реализовано\",\"sort\":11000,\"is_editable\":false,"
    "\"pipeline_id\":6101001,\"color\":\"#d5d8db\",\"type\":0,\"account_id\":31000001},"
    "{\"id\":55012003,\"name\":\"Квалификация\",\"sort\":30,\"is_editable\":true,\"pipeline_id\":6101001,"
    "\"color\":\"#99ccff\",\"type\":0,\"account_id\":31000001},"
    "{\"id\":142,\"name\":\"Успешно реализовано\",\"sort\":10000,\"is_editable\":false,"
    "\"pipeline_id\":6101001,\"color\":\"#CCFF66\",\"type\":0,\"account_id\":31000001},"
    "{\"id\":55012005,\"name\":\"Дожим\",\"sort\":50,\"is_editable\":true,\"pipeline_id\":6101001,"
    "\"color\":\"#ffcc66\",\"type\":0,\"account_id\":31000001},"
    "{\"id\":55012001,\"name\":\"Неразобранное\",\"sort\":10,\"is_editable\":false,\"pipeline_id\":6101001,"
    "\"color\":\"#c1c1c1\",\"type\":1,\"account_id\":31000001},"
    "{\"id\":55012004,\"name\":\"Выслано КП\",\"sort\":40,\"is_editable\":true,\"pipeline_id\":6101001,"
    "\"color\":\"#ffff99\",\"type\":0,\"account_id\":31000001},"
    "{\"id\":55012002,\"name\":\"Взят в работу\",\"sort\":20,\"is_editable\":true,\"pipeline_id\":6101001,"
    "\"color\":\"#99ccff\",\"type\":0,\"account_id\":31000001}]}}]";

/* The funnel order salesops must show: open statuses by sort, then won (142), then lost (143). */
static const char *const STAGE_ORDER[] = {"55012001", "55012002", "55012003", "55012004",
                                          "55012005", "142",      "143"};
static const char *const STAGE_NAMES[] = {
    "Неразобранное",       "Взят в работу",           "Квалификация", "Выслано КП", "Дожим",
    "Успешно реализовано", "Закрыто и не реализовано"};
static const char *const STAGE_KINDS[] = {"open", "open", "open", "open", "open", "won", "lost"};

static const char LOSS_REASONS[] =
    "[{\"id\":9001,\"name\":\"Дорого\",\"sort\":1,\"created_at\":1650000000,\"updated_at\":1650000000,"
    "\"_links\":{}},"
    "{\"id\":9002,\"name\":\"Выбрали конкурента\",\"sort\":2,\"created_at\":1650000000,"
    "\"updated_at\":1650000000,\"_links\":{}}]";

static const char *user_json(char *buf, size_t len, long long id, const char *name, const char *email,
                             bool admin, bool active)
{
    snprintf(buf, len,
             "{\"id\":%lld,\"name\":\"%s\",\"email\":\"%s\",\"lang\":\"ru\",\"rights\":{\"leads\":{\"view\":"
             "\"A\"},"
             "\"is_admin\":%s,\"is_free\":false,\"is_active\":%s,\"group_id\":null,\"role_id\":null},"
             "\"_links\":{}}",
             id, name, email, admin ? "true" : "false", active ? "true" : "false");
    return buf;
}

/* The users: two managers, a head of sales who is an amoCRM admin, a dismissed user, and the lead pool. */
static void set_users(const char *name_2, const char *email_2, bool admin_2, bool active_2)
{
    char u1[512], u2[512], u10[512], u20[512], u99[512], all[3000];
    snprintf(all, sizeof all, "[%s,%s,%s,%s,%s]",
             user_json(u1, sizeof u1, 8800001, "Иванова Анна", "anna@acme.example", false, true),
             user_json(u2, sizeof u2, 8800002, name_2, email_2, admin_2, active_2),
             user_json(u10, sizeof u10, 8800010, "Смирнова Ольга", "olga@acme.example", true, true),
             user_json(u20, sizeof u20, 8800020, "Кузнецов Олег", "oleg@acme.example", false, false),
             user_json(u99, sizeof u99, 8800099, "Пул заявок", "pool@acme.example", false, true));
    cr_assert(fake_amo_set_users_json(fa, all));
}

static void setup(void)
{
    th_server_start(TEST_SUITE);
    th_account_new(&tacct);
    fa = fake_amo_start();
    cr_assert(fa != NULL, "the fake amoCRM API did not start");
    cr_assert(fake_amo_set_pipelines_json(fa, PIPELINES));
    cr_assert(fake_amo_set_loss_reasons_json(fa, LOSS_REASONS));
    set_users("Петров Сергей", "sergey@acme.example", false, true);
}

static void teardown(void)
{
    th_server_stop();
    fake_amo_stop(fa);
    fa = NULL;
}

TestSuite(connector, .init = setup, .fini = teardown);

/* ---- the samples (copied from the amoCRM FORMAT.md samples, URL-encoded exactly as sent) ---- */

/* ---- helpers ---- */

#define INTEGRATION "/api/v1/integrations/amocrm"
#define DEADLINE_S  10.0
#define BEARER      "Bearer " FAKE_AMO_TOKEN

/* Polls cond every 100 ms until it holds; fails the test after DEADLINE_S seconds. */
#define WAIT_FOR(cond, ...)                                                                                  \
    do {                                                                                                     \
        double wait_end_ = th_mono_now() + DEADLINE_S;                                                       \
        while (!(cond)) {                                                                                    \
            if (th_mono_now() > wait_end_) cr_assert_fail(__VA_ARGS__);                                      \
            th_sleep_ms(100);                                                                                \
        }                                                                                                    \
    } while (0)

/* The fake's recorded requests, one a line, for failure messages. */
static const char *requests_text(void)
{
    static char out[16384];
    size_t used = 0;
    out[0] = '\0';
    size_t n = fake_amo_request_count(fa);
    for (size_t i = 0; i < n && used < sizeof out - 1; i++) {
        const struct fake_amo_request *q = fake_amo_request(fa, i);
        used += (size_t)snprintf(out + used, sizeof out - used, "\n  %s %s%s%s %.300s", q->method, q->path,
                                 q->query[0] ? "?" : "", q->query, q->body);
    }
    return n ? out : " (none)";
}

static size_t count_requests(const char *method, const char *path)
{
    size_t n = fake_amo_request_count(fa), count = 0;
    for (size_t i = 0; i < n; i++) {
        const struct fake_amo_request *q = fake_amo_request(fa, i);
        if (strcmp(q->method, method) == 0 && strcmp(q->path, path) == 0) count++;
    }
    return count;
}

static const struct fake_amo_request *find_request(const char *method, const char *path)
{
    size_t n = fake_amo_request_count(fa);
    for (size_t i = 0; i < n; i++) {
        const struct fake_amo_request *q = fake_amo_request(fa, i);
        if (strcmp(q->method, method) == 0 && strcmp(q->path, path) == 0) return q;
    }
    return NULL;
}

/* The item a write request carries (the object, or the first element of an array): a new reference to the
 * first request to method+path whose item has `key`, or NULL. */
static json_t *find_item_with(const char *method, const char *path, const char *key)
{
    size_t n = fake_amo_request_count(fa);
    for (size_t i = 0; i < n; i++) {
        const struct fake_amo_request *q = fake_amo_request(fa, i);
        if (strcmp(q->method, method) != 0 || strcmp(q->path, path) != 0) continue;
        json_t *body = fake_amo_request_json(q);
        json_t *item = json_is_array(body) ? json_array_get(body, 0) : body;
        if (json_is_object(item) && json_object_get(item, key) != NULL) {
            json_incref(item);
            json_decref(body);
            return item;
        }
        json_decref(body);
    }
    return NULL;
}

static json_int_t jint(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

static struct th_resp put_integration(const char *key, const char *body)
{
    return th_request("PUT", INTEGRATION, key, body, NULL, NULL);
}

static void assert_no_token(const struct th_resp *r, const char *what)
{
    cr_assert(strstr(r->body, FAKE_AMO_TOKEN) == NULL, "%s shows the access token: %s", what, r->body);
    cr_assert(json_object_get(r->json, "access_token") == NULL, "%s has an access_token field: %s", what,
              r->body);
}

/* GET /integrations/amocrm (checked for the token every time). */
static struct th_resp integration(void)
{
    struct th_resp r = th_get(tacct.admin_key, INTEGRATION);
    cr_assert_eq(r.status, 200, "GET integration: %s", r.body);
    assert_no_token(&r, "GET /integrations/amocrm");
    return r;
}

static json_int_t outbox_count(const char *which)
{
    struct th_resp r = integration();
    json_t *v = json_object_get(json_object_get(r.json, "outbox"), which);
    cr_assert(json_is_integer(v), "outbox.%s: %s", which, r.body);
    json_int_t n = json_integer_value(v);
    th_resp_free(&r);
    return n;
}

static bool synced(void)
{
    struct th_resp r = integration();
    bool done = json_is_string(json_object_get(r.json, "last_sync_at"));
    th_resp_free(&r);
    return done;
}

static char connect_body[1024];

static const char *connect_json(void)
{
    snprintf(
        connect_body, sizeof connect_body,
        "{\"subdomain\":\"acme\",\"base_url\":\"%s\",\"access_token\":\"%s\",\"pool_user_ids\":[8800099]}",
        fake_amo_url(fa), FAKE_AMO_TOKEN);
    return connect_body;
}

/* Connects the account to the fake and waits for the first sync. */
static void connect_and_sync(void)
{
    struct th_resp r = put_integration(tacct.admin_key, connect_json());
    cr_assert_eq(r.status, 200, "PUT integration: %s", r.body);
    assert_no_token(&r, "PUT /integrations/amocrm");
    th_resp_free(&r);
    WAIT_FOR(synced(), "no sync within %.0f s; the fake got:%s", DEADLINE_S, requests_text());
}

/* GET /managers/ext:<ext> */
static struct th_resp manager_ext(const char *ext)
{
    struct th_resp r = th_get(tacct.admin_key, "/api/v1/managers/ext:%s", ext);
    cr_assert_eq(r.status, 200, "manager ext:%s: %s", ext, r.body);
    return r;
}

static int64_t manager_id(const char *ext)
{
    struct th_resp r = manager_ext(ext);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* An item of a list reply with the given external_id (borrowed from r), or NULL. */
static json_t *item_by_ext(const struct th_resp *r, const char *ext)
{
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(r->json, "items"), i, item)
    {
        const char *e = json_string_value(json_object_get(item, "external_id"));
        if (e != NULL && strcmp(e, ext) == 0) return item;
    }
    return NULL;
}

static int64_t loss_reason_id(const char *ext)
{
    struct th_resp r = th_get(tacct.admin_key, "/api/v1/loss-reasons?limit=500");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *item = item_by_ext(&r, ext);
    cr_assert(item != NULL, "no loss reason with external id %s: %s", ext, r.body);
    int64_t id = jint(item, "id");
    th_resp_free(&r);
    return id;
}

/* The synced pipeline (a new reference). */
static json_t *pipeline_ext(const char *ext)
{
    struct th_resp r = th_get(tacct.admin_key, "/api/v1/pipelines?limit=500");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *item = item_by_ext(&r, ext);
    cr_assert(item != NULL, "no pipeline with external id %s: %s", ext, r.body);
    json_incref(item);
    th_resp_free(&r);
    return item;
}

static int64_t stage_id(json_t *pipeline, const char *ext)
{
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(pipeline, "stages"), i, st)
    {
        const char *e = json_string_value(json_object_get(st, "external_id"));
        if (e != NULL && strcmp(e, ext) == 0) return jint(st, "id");
    }
    cr_assert_fail("no stage with external id %s", ext);
    return 0;
}

static struct th_resp post_webhook(const char *token, const char *body)
{
    return th_post_webhook(token, body, NULL);
}

/* Posts a webhook body that must be taken (200). */
static void post_webhook_ok(const char *token, const char *body)
{
    th_post_webhook_ok(token, body);
}

/* A copy of body with every `from` replaced by `to` (free it). */
static char *replace_all(const char *body, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), n = 0;
    for (const char *p = body; (p = strstr(p, from)) != NULL; p += fl)
        n++;
    char *out = malloc(strlen(body) + n * (tl > fl ? tl - fl : 0) + 1);
    cr_assert(out != NULL);
    char *w = out;
    const char *p = body;
    for (const char *hit; (hit = strstr(p, from)) != NULL; p = hit + fl) {
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, to, tl);
        w += tl;
    }
    strcpy(w, p);
    return out;
}

/* Counts outbox rows of this account directly in the database. */
static int64_t outbox_rows(const char *where_sql)
{
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    char sql[512], id[32];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox WHERE account_id = $1 AND %s", where_sql);
    snprintf(id, sizeof id, "%lld", (long long)tacct.id);
    const char *params[] = {id};
    PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

#define LEAD_EXT  "40319999"
#define LEAD_PATH "/api/v4/leads/" LEAD_EXT

/* The lead 40319999 in stage 55012002 for user 8800001, in the fake and (through POST /events) in salesops;
 * returns the deal's id. */
static int64_t deal_from_events(void)
{
    fake_amo_set_lead(fa, 40319999, 6101001, 55012002, 8800001);
    struct th_resp r = th_request(
        "POST", "/api/v1/events", tacct.admin_key,
        "[{\"id\":\"amo-lead-40319999\",\"type\":\"deal.created\",\"at\":\"2025-03-03T10:00:00Z\",\"data\":{"
        "\"deal\":\"" LEAD_EXT "\",\"name\":\"Окна в офис\",\"price\":90000,\"pipeline\":\"" PIPELINE_EXT
        "\","
        "\"stage\":\"55012002\",\"manager\":\"8800001\"}}]",
        "application/json", NULL);
    cr_assert_eq(r.status, 200, "events: %s", r.body);
    cr_assert_eq(th_int(&r, "accepted"), 1, "events: %s", r.body);
    th_resp_free(&r);
    r = th_get(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), manager_id("8800001"), "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* ---- 1. connect and sync ---- */

Test(connector, connect_syncs_pipelines_loss_reasons_and_users)
{
    struct th_resp r = integration();
    cr_assert(json_is_false(json_object_get(r.json, "connected")), "before PUT: %s", r.body);
    th_resp_free(&r);

    r = put_integration(tacct.admin_key, connect_json());
    cr_assert_eq(r.status, 200, "PUT: %s", r.body);
    assert_no_token(&r, "the PUT reply");
    cr_assert_str_eq(th_str(&r, "subdomain"), "acme", "%s", r.body);
    cr_assert_str_eq(th_str(&r, "base_url"), fake_amo_url(fa), "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(synced(), "no sync within %.0f s; the fake got:%s", DEADLINE_S, requests_text());

    /* the three reads, with the token */
    static const char *const reads[] = {"/api/v4/leads/pipelines", "/api/v4/leads/loss_reasons",
                                        "/api/v4/users"};
    for (size_t i = 0; i < 3; i++) {
        const struct fake_amo_request *q = find_request("GET", reads[i]);
        cr_assert(q != NULL, "no GET %s; the fake got:%s", reads[i], requests_text());
        cr_assert_str_eq(q->authorization, BEARER, "GET %s", reads[i]);
    }

    r = integration();
    cr_assert(json_is_true(json_object_get(r.json, "connected")), "%s", r.body);
    cr_assert_str_eq(th_str(&r, "subdomain"), "acme", "%s", r.body);
    cr_assert_str_eq(th_str(&r, "base_url"), fake_amo_url(fa), "%s", r.body);
    json_t *pool = json_object_get(r.json, "pool_user_ids");
    cr_assert(json_is_array(pool) && json_array_size(pool) == 1 &&
                  json_integer_value(json_array_get(pool, 0)) == 8800099,
              "pool_user_ids: %s", r.body);
    cr_assert(json_is_string(json_object_get(r.json, "last_sync_at")), "%s", r.body);
    json_t *outbox = json_object_get(r.json, "outbox");
    cr_assert_eq(jint(outbox, "pending"), 0, "%s", r.body);
    cr_assert_eq(jint(outbox, "dead"), 0, "%s", r.body);
    th_resp_free(&r);

    /* the pipeline: stages in funnel order, 142 won, 143 lost, external ids = amoCRM ids */
    json_t *pl = pipeline_ext(PIPELINE_EXT);
    cr_assert_str_eq(json_string_value(json_object_get(pl, "name")), "Продажи");
    cr_assert(json_is_false(json_object_get(pl, "needs_setup")));
    json_t *stages = json_object_get(pl, "stages");
    cr_assert_eq(json_array_size(stages), 7, "stages: %zu", json_array_size(stages));
    int last_position = -1000000;
    for (size_t i = 0; i < 7; i++) {
        json_t *st = json_array_get(stages, i);
        cr_assert_str_eq(json_string_value(json_object_get(st, "external_id")), STAGE_ORDER[i], "stage %zu",
                         i);
        cr_assert_str_eq(json_string_value(json_object_get(st, "name")), STAGE_NAMES[i], "stage %zu", i);
        cr_assert_str_eq(json_string_value(json_object_get(st, "kind")), STAGE_KINDS[i], "stage %zu", i);
        cr_assert(json_is_false(json_object_get(st, "needs_setup")), "stage %zu", i);
        int position = (int)jint(st, "position");
        cr_assert_gt(position, last_position, "stage %zu position", i);
        last_position = position;
    }
    json_decref(pl);

    /* loss reasons */
    r = th_get(tacct.admin_key, "/api/v1/loss-reasons?limit=500");
    cr_assert_eq(r.status, 200);
    json_t *lr = item_by_ext(&r, "9001");
    cr_assert(lr != NULL, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(lr, "name")), "Дорого");
    lr = item_by_ext(&r, "9002");
    cr_assert(lr != NULL, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_object_get(lr, "name")), "Выбрали конкурента");
    th_resp_free(&r);

    /* users */
    static const struct {
        const char *ext, *name, *email, *role;
        bool active;
    } users[] = {
        {"8800001", "Иванова Анна", "anna@acme.example", "manager", true},
        {"8800002", "Петров Сергей", "sergey@acme.example", "manager", true},
        {"8800010", "Смирнова Ольга", "olga@acme.example", "admin", true},
        {"8800020", "Кузнецов Олег", "oleg@acme.example", "manager", false},
        {"8800099", "Пул заявок", "pool@acme.example", "manager", true},
    };
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++) {
        r = manager_ext(users[i].ext);
        cr_assert_str_eq(th_str(&r, "name"), users[i].name, "%s", r.body);
        cr_assert_str_eq(th_str(&r, "email"), users[i].email, "%s", r.body);
        cr_assert_str_eq(th_str(&r, "role"), users[i].role, "%s", r.body);
        cr_assert_eq(json_is_true(json_object_get(r.json, "active")), users[i].active, "%s", r.body);
        cr_assert(json_is_false(json_object_get(r.json, "distribution_enabled")), "%s", r.body);
        cr_assert(json_is_false(json_object_get(r.json, "needs_setup")), "%s", r.body);
        cr_assert(json_is_false(json_object_get(r.json, "eligible")), "%s", r.body);
        th_resp_free(&r);
    }

    /* the pool user stays out of distribution even when it is enabled; an ordinary manager does not */
    int64_t pool_id = manager_id("8800099"), anna = manager_id("8800001");
    r = th_patch(tacct.admin_key, "/api/v1/managers/ext:8800099", "{\"distribution_enabled\":true}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), pool_id);
    cr_assert(json_is_false(json_object_get(r.json, "eligible")), "pool user: %s", r.body);
    th_resp_free(&r);
    r = th_patch(tacct.admin_key, "/api/v1/managers/ext:8800001",
                 "{\"distribution_enabled\":true,\"weight\":7}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), anna);
    cr_assert(json_is_true(json_object_get(r.json, "eligible")), "an ordinary manager: %s", r.body);
    th_resp_free(&r);

    /* a second sync changes only name, email and active: never a role or setting made in salesops */
    int64_t sergey = manager_id("8800002");
    r = th_patch(tacct.admin_key, "/api/v1/managers/ext:8800002", "{\"role\":\"head\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "role"), "head");
    th_resp_free(&r);
    set_users("Петров Сергей Иванович", "petrov@acme.example", true, false);
    /* and in amoCRM a stage is renamed and "Квалификация" moves after "Выслано КП" */
    json_t *pl_before = pipeline_ext(PIPELINE_EXT);
    int64_t qualification = stage_id(pl_before, "55012003"), proposal = stage_id(pl_before, "55012004");
    json_decref(pl_before);
    char *renamed_pipelines = replace_all(PIPELINES, "\"name\":\"Дожим\"", "\"name\":\"Дожим клиента\"");
    char *moved_pipelines = replace_all(renamed_pipelines, "\"sort\":30,", "\"sort\":45,");
    cr_assert(fake_amo_set_pipelines_json(fa, moved_pipelines));
    free(renamed_pipelines);
    free(moved_pipelines);
    fake_amo_clear_requests(fa);
    r = put_integration(tacct.admin_key, connect_json());
    cr_assert_eq(r.status, 200, "second PUT: %s", r.body);
    assert_no_token(&r, "the second PUT reply");
    th_resp_free(&r);
    bool renamed = false;
    double end = th_mono_now() + DEADLINE_S;
    while (!renamed && th_mono_now() < end) {
        r = manager_ext("8800002");
        renamed = strcmp(th_str(&r, "name"), "Петров Сергей Иванович") == 0;
        th_resp_free(&r);
        if (!renamed) th_sleep_ms(100);
    }
    cr_assert(renamed, "the second sync did not rename user 8800002; the fake got:%s", requests_text());
    cr_assert(find_request("GET", "/api/v4/users") != NULL);
    r = manager_ext("8800002");
    cr_assert_str_eq(th_str(&r, "role"), "head", "the sync changed a role set in salesops: %s", r.body);
    cr_assert_str_eq(th_str(&r, "email"), "petrov@acme.example", "%s", r.body);
    cr_assert(json_is_false(json_object_get(r.json, "active")), "%s", r.body);
    th_resp_free(&r);
    r = manager_ext("8800001");
    cr_assert(json_is_true(json_object_get(r.json, "distribution_enabled")), "setting lost: %s", r.body);
    cr_assert_eq(th_int(&r, "weight"), 7, "setting lost: %s", r.body);
    cr_assert_str_eq(th_str(&r, "role"), "manager", "%s", r.body);
    th_resp_free(&r);
    r = manager_ext("8800099");
    cr_assert(json_is_true(json_object_get(r.json, "distribution_enabled")), "setting lost: %s", r.body);
    cr_assert(json_is_false(json_object_get(r.json, "eligible")), "pool user: %s", r.body);
    th_resp_free(&r);
    cr_assert_eq(manager_id("8800002"), sergey, "the second sync made another manager");
    pl = pipeline_ext(PIPELINE_EXT);
    stages = json_object_get(pl, "stages");
    static const char *const resynced[] = {"55012001", "55012002", "55012004", "55012003",
                                           "55012005", "142",      "143"};
    cr_assert_eq(json_array_size(stages), 7, "stages after the second sync: %zu", json_array_size(stages));
    for (size_t i = 0; i < 7; i++)
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(stages, i), "external_id")),
                         resynced[i], "funnel order after the second sync, stage %zu", i);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(stages, 4), "name")), "Дожим клиента");
    cr_assert_eq(stage_id(pl, "55012003"), qualification, "a synced stage got a new id");
    cr_assert_eq(stage_id(pl, "55012004"), proposal, "a synced stage got a new id");
    json_decref(pl);

    r = integration();
    cr_assert(json_is_true(json_object_get(r.json, "connected")), "%s", r.body);
    cr_assert(json_is_string(json_object_get(r.json, "last_sync_at")), "%s", r.body);
    th_resp_free(&r);
}

/* ---- 2. bad input ---- */

static void assert_422(const char *body, const char *field)
{
    struct th_resp r = put_integration(tacct.admin_key, body);
    cr_assert_eq(r.status, 422, "%s -> %ld %s", body, r.status, r.body);
    cr_assert_str_eq(th_code(&r), "validation_failed", "%s", r.body);
    assert_no_token(&r, "a 422 reply");
    json_t *errors = json_object_get(r.json, "errors");
    bool named = false;
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        if (f != NULL && strncmp(f, field, strlen(field)) == 0) named = true;
    }
    cr_assert(named, "%s: no error for field %s: %s", body, field, r.body);
    th_resp_free(&r);
}

Test(connector, bad_input_and_roles)
{
    char head_key[64], readonly_key[64];
    th_key_new(&tacct, "head", 0, head_key);
    th_key_new(&tacct, "readonly", 0, readonly_key);

    struct th_resp r = put_integration(head_key, connect_json());
    cr_assert_eq(r.status, 403, "head PUT: %s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    r = th_get(head_key, INTEGRATION);
    cr_assert_eq(r.status, 403, "head GET: %s", r.body);
    th_resp_free(&r);
    r = th_get(readonly_key, INTEGRATION);
    cr_assert_eq(r.status, 403, "readonly GET: %s", r.body);
    th_resp_free(&r);

    char body[1024];
    const char *url = fake_amo_url(fa);
    snprintf(
        body, sizeof body,
        "{\"subdomain\":\"Acme\",\"base_url\":\"%s\",\"access_token\":\"%s\",\"pool_user_ids\":[8800099]}",
        url, FAKE_AMO_TOKEN);
    assert_422(body, "subdomain");
    snprintf(
        body, sizeof body,
        "{\"subdomain\":\"ac me\",\"base_url\":\"%s\",\"access_token\":\"%s\",\"pool_user_ids\":[8800099]}",
        url, FAKE_AMO_TOKEN);
    assert_422(body, "subdomain");
    snprintf(
        body, sizeof body,
        "{\"subdomain\":\"acme\",\"base_url\":\"ftp://x\",\"access_token\":\"%s\",\"pool_user_ids\":[1]}",
        FAKE_AMO_TOKEN);
    assert_422(body, "base_url");
    snprintf(body, sizeof body,
             "{\"subdomain\":\"acme\",\"base_url\":\"%s\",\"access_token\":\"%s\",\"pool_user_ids\":[\"a\"]}",
             url, FAKE_AMO_TOKEN);
    assert_422(body, "pool_user_ids");
    snprintf(body, sizeof body, "{\"subdomain\":\"acme\",\"base_url\":\"%s\",\"pool_user_ids\":[8800099]}",
             url);
    assert_422(body, "access_token");

    /* nothing was stored and nothing was asked of amoCRM */
    th_sleep_ms(1000);
    r = integration();
    cr_assert(json_is_false(json_object_get(r.json, "connected")), "after refused PUTs: %s", r.body);
    th_resp_free(&r);
    cr_assert_eq(fake_amo_request_count(fa), 0, "the fake got:%s", requests_text());
}

/* ---- 3. the loss reason of a lead lost in amoCRM ---- */

Test(connector, loss_reason_is_read_for_a_lead_lost_by_webhook)
{
    connect_and_sync();
    fake_amo_set_lead(fa, 40310001, 6101001, 143, 8800002);
    fake_amo_set_lead_loss_reason(fa, 40310001, 9001);
    fake_amo_clear_requests(fa);

    /* a body from another amoCRM account is refused and not stored */
    int64_t inbox_before = th_count_rows("inbox", tacct.id);
    char *other = replace_all(LEADS_ADD, "account%5Bsubdomain%5D=acme", "account%5Bsubdomain%5D=other");
    struct th_resp r = post_webhook(tacct.webhook_token, other);
    free(other);
    cr_assert_eq(r.status, 403, "subdomain other: %s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("inbox", tacct.id), inbox_before, "a refused body was stored");

    r = post_webhook(tacct.webhook_token, LEADS_ADD);
    cr_assert_eq(r.status, 200, "leads_add: %s", r.body);
    th_resp_free(&r);
    /* the add first: the loss applies to the deal it made */
    bool created = false;
    double end = th_mono_now() + DEADLINE_S;
    while (!created && th_mono_now() < end) {
        r = th_get(tacct.admin_key, "/api/v1/deals/ext:40310001");
        created = r.status == 200;
        th_resp_free(&r);
        if (!created) th_sleep_ms(100);
    }
    cr_assert(created, "leads_add was not applied within %.0f s", DEADLINE_S);
    r = post_webhook(tacct.webhook_token, LEADS_STATUS_LOST);
    cr_assert_eq(r.status, 200, "leads_status_lost: %s", r.body);
    th_resp_free(&r);

    int64_t reason = loss_reason_id("9001");
    json_t *pl = pipeline_ext(PIPELINE_EXT);
    int64_t lost_stage = stage_id(pl, "143");
    json_decref(pl);
    bool done = false;
    end = th_mono_now() + DEADLINE_S;
    while (!done && th_mono_now() < end) {
        r = th_get(tacct.admin_key, "/api/v1/deals/ext:40310001");
        json_t *lr = json_object_get(r.json, "loss_reason_id");
        done = r.status == 200 && th_str(&r, "status") && strcmp(th_str(&r, "status"), "lost") == 0 &&
               json_is_integer(lr);
        th_resp_free(&r);
        if (!done) th_sleep_ms(100);
    }
    r = th_get(tacct.admin_key, "/api/v1/deals/ext:40310001");
    cr_assert(done, "deal not lost with a reason within %.0f s: %s; the fake got:%s", DEADLINE_S, r.body,
              requests_text());
    cr_assert_str_eq(th_str(&r, "status"), "lost", "%s", r.body);
    cr_assert_eq(th_int(&r, "stage_id"), lost_stage, "%s", r.body);
    cr_assert_eq(th_int(&r, "loss_reason_id"), reason, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), manager_id("8800001"),
                 "a status webhook changes only the stage: %s", r.body);
    int64_t deal = th_int(&r, "id");
    th_resp_free(&r);

    /* the loss's history row carries the reason */
    r = th_get(tacct.admin_key, "/api/v1/deals/%lld/history", (long long)deal);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *items = json_object_get(r.json, "items");
    json_t *last = json_array_get(items, json_array_size(items) - 1);
    cr_assert_str_eq(json_string_value(json_object_get(last, "status")), "lost", "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(last, "loss_reason_id")), reason, "history: %s", r.body);
    th_resp_free(&r);

    const struct fake_amo_request *q = find_request("GET", "/api/v4/leads/40310001");
    cr_assert(q != NULL, "no GET of the lead; the fake got:%s", requests_text());
    cr_assert_str_eq(q->query, "with=loss_reason");
    cr_assert_str_eq(q->authorization, BEARER);
    /* what came from amoCRM is not written back to it */
    cr_assert_eq(count_requests("PATCH", "/api/v4/leads/40310001"), 0, "the fake got:%s", requests_text());
    cr_assert_eq(outbox_rows("true"), 0, "webhook changes were queued for amoCRM");
}

/* A loss from amoCRM is judged by rejection control once its reason has been read: the review's task for the
 * head of sales is then written to amoCRM on the lead. */
Test(connector, a_webhook_loss_is_reviewed_once_its_reason_is_read)
{
    connect_and_sync();
    fake_amo_set_lead(fa, 40310001, 6101001, 143, 8800002);
    fake_amo_set_lead_loss_reason(fa, 40310001, 9001);
    int64_t head = manager_id("8800010"), reason = loss_reason_id("9001");
    struct th_resp r = th_patch(tacct.admin_key, "/api/v1/managers/ext:8800010", "{\"role\":\"head\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    /* only the reason amoCRM gives qualifies: the webhook itself carries none */
    r = th_put(tacct.admin_key, "/api/v1/rejection-control/settings",
               "{\"enabled\":true,\"loss_reason_ids\":[%lld],\"reviewer_id\":%lld,\"due_hours\":48}",
               (long long)reason, (long long)head);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    post_webhook_ok(tacct.webhook_token, LEADS_ADD);
    WAIT_FOR(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id = '40310001'",
                        (long long)tacct.id) == 1,
             "leads_add was not applied");
    fake_amo_clear_requests(fa);
    /* a loss now: the rule reviews only losses since it was switched on */
    char now_text[32];
    snprintf(now_text, sizeof now_text, "%lld", (long long)time(NULL));
    char *lost_now = replace_all(LEADS_STATUS_LOST, "1662184800", now_text); /* updated_at and last_modified */
    post_webhook_ok(tacct.webhook_token, lost_now);
    WAIT_FOR(th_count_rows("rejection_reviews", tacct.id) == 1, "no review after the reason was read; the fake got:%s",
             requests_text());
    r = th_get(tacct.admin_key, "/api/v1/rejection-control/reviews");
    json_t *review = json_array_get(json_object_get(r.json, "items"), 0);
    cr_assert_eq(json_integer_value(json_object_get(review, "loss_reason_id")), reason, "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(review, "lost_by_manager_id")), manager_id("8800001"), "%s",
                 r.body);
    int64_t task = json_integer_value(json_object_get(review, "task_id"));
    const char *lost_at = json_string_value(json_object_get(review, "lost_at"));
    int64_t lost;
    cr_assert(so_parse_time(lost_at, &lost), "%s", r.body);
    th_resp_free(&r);
    r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert_str_eq(th_str(&r, "type"), "rejection_control", "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), head, "%s", r.body);
    th_resp_free(&r);
    json_t *item;
    WAIT_FOR((item = find_item_with("POST", "/api/v4/tasks", "entity_id")) != NULL,
             "the review's task was not written to amoCRM; the fake got:%s", requests_text());
    cr_assert_eq(jint(item, "entity_id"), 40310001);
    cr_assert_eq(jint(item, "responsible_user_id"), 8800010, "the task is the head's");
    cr_assert_eq(jint(item, "complete_till"), lost + 48 * 3600, "due 48 hours after the loss");
    cr_assert(strncmp(json_string_value(json_object_get(item, "text")), "Контроль отказа", strlen("Контроль отказа")) ==
                  0,
              "text: %s", json_string_value(json_object_get(item, "text")));
    json_decref(item);
    /* the same webhook again (after the duplicate window) judges nothing anew */
    th_sql_int("DELETE FROM webhook_seen WHERE account_id = %lld", (long long)tacct.id);
    r = post_webhook(tacct.webhook_token, lost_now);
    free(lost_now);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND source = 'amocrm' AND state = "
                        "'pending'",
                        (long long)tacct.id) == 0,
             "the repeated body was not applied");
    th_sleep_ms(1500);
    cr_assert_eq(th_count_rows("rejection_reviews", tacct.id), 1, "a second review for the same loss");
}

/* ---- 4. the outbox: REST changes written back ---- */

Test(connector, rest_changes_are_written_back_to_amocrm)
{
    connect_and_sync();
    int64_t deal = deal_from_events();
    int64_t sergey = manager_id("8800002");
    json_t *pl = pipeline_ext(PIPELINE_EXT);
    int64_t qualification = stage_id(pl, "55012003");
    json_decref(pl);
    WAIT_FOR(outbox_count("pending") == 0, "pending rows after the events");
    fake_amo_clear_requests(fa);

    /* responsible */
    struct th_resp r =
        th_patch(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT, "{\"manager_id\":%lld}", (long long)sergey);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_t *item = NULL;
    WAIT_FOR((item = find_item_with("PATCH", LEAD_PATH, "responsible_user_id")) != NULL,
             "no PATCH %s with responsible_user_id; the fake got:%s", LEAD_PATH, requests_text());
    cr_assert_eq(jint(item, "responsible_user_id"), 8800002);
    json_decref(item);
    cr_assert_str_eq(find_request("PATCH", LEAD_PATH)->authorization, BEARER);

    /* stage */
    r = th_patch(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT, "{\"stage_id\":%lld}",
                 (long long)qualification);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR((item = find_item_with("PATCH", LEAD_PATH, "status_id")) != NULL,
             "no PATCH %s with status_id; the fake got:%s", LEAD_PATH, requests_text());
    cr_assert_eq(jint(item, "status_id"), 55012003);
    cr_assert_eq(jint(item, "pipeline_id"), 6101001);
    json_decref(item);
    json_t *lead = fake_amo_lead_copy(fa, 40319999);
    cr_assert_eq(jint(lead, "responsible_user_id"), 8800002);
    cr_assert_eq(jint(lead, "status_id"), 55012003);
    cr_assert_eq(jint(lead, "pipeline_id"), 6101001);
    json_decref(lead);

    /* a task: created in amoCRM, its amoCRM id kept */
    r = th_post(tacct.admin_key, "/api/v1/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить клиенту\","
                "\"due_at\":\"2030-01-02T09:00:00Z\"}",
                (long long)deal);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t task = th_int(&r, "id");
    th_resp_free(&r);
    WAIT_FOR((item = find_item_with("POST", "/api/v4/tasks", "entity_id")) != NULL,
             "no POST /api/v4/tasks; the fake got:%s", requests_text());
    cr_assert_eq(jint(item, "entity_id"), 40319999);
    cr_assert_str_eq(json_string_value(json_object_get(item, "entity_type")), "leads");
    cr_assert_str_eq(json_string_value(json_object_get(item, "text")), "Перезвонить клиенту");
    cr_assert_eq(jint(item, "complete_till"), 1893574800);
    cr_assert_eq(jint(item, "responsible_user_id"), 8800002, "the task's manager is the deal's");
    json_decref(item);
    bool linked = false;
    double end = th_mono_now() + DEADLINE_S;
    while (!linked && th_mono_now() < end) {
        r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
        const char *ext = th_str(&r, "external_id");
        linked = ext != NULL && strcmp(ext, "70000001") == 0;
        th_resp_free(&r);
        if (!linked) th_sleep_ms(100);
    }
    r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    cr_assert(linked, "the task's external_id is not amoCRM's task id 70000001: %s", r.body);
    th_resp_free(&r);

    /* completing it */
    r = th_post(tacct.admin_key, "/api/v1/tasks/ext:70000001/complete", "{\"result\":\"Клиент ждёт КП\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), task, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR((item = find_item_with("PATCH", "/api/v4/tasks/70000001", "is_completed")) != NULL,
             "no PATCH /api/v4/tasks/70000001; the fake got:%s", requests_text());
    cr_assert(json_is_true(json_object_get(item, "is_completed")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(item, "result"), "text")),
                     "Клиент ждёт КП");
    json_decref(item);

    /* a note */
    char path[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld/notes", (long long)deal);
    r = th_post(tacct.admin_key, path, "{\"text\":\"Договорились о встрече\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR((item = find_item_with("POST", LEAD_PATH "/notes", "note_type")) != NULL,
             "no POST %s/notes; the fake got:%s", LEAD_PATH, requests_text());
    cr_assert_str_eq(json_string_value(json_object_get(item, "note_type")), "common");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(item, "params"), "text")),
                     "Договорились о встрече");
    json_decref(item);

    WAIT_FOR(outbox_count("pending") == 0, "outbox.pending does not return to 0");
    cr_assert_eq(outbox_count("dead"), 0);
    /* each change written once */
    cr_assert_eq(count_requests("PATCH", LEAD_PATH), 2, "the fake got:%s", requests_text());
    cr_assert_eq(count_requests("POST", "/api/v4/tasks"), 1, "the fake got:%s", requests_text());
    cr_assert_eq(count_requests("PATCH", "/api/v4/tasks/70000001"), 1, "the fake got:%s", requests_text());
    cr_assert_eq(count_requests("POST", LEAD_PATH "/notes"), 1, "the fake got:%s", requests_text());
}

/* ---- 5. retries, dead letters, skipped rows ---- */

Test(connector, retries_dead_letters_and_skipped_writes)
{
    /* everything logged meanwhile is kept, to look for the token */
    fflush(stderr);
    int saved_stderr = dup(2);
    FILE *log = tmpfile();
    cr_assert(saved_stderr >= 0 && log != NULL);
    dup2(fileno(log), 2);

    connect_and_sync();
    deal_from_events();
    int64_t sergey = manager_id("8800002"), anna = manager_id("8800001");
    json_t *pl = pipeline_ext(PIPELINE_EXT);
    int64_t pipeline = jint(pl, "id");
    int64_t s2 = stage_id(pl, "55012002"), s3 = stage_id(pl, "55012003"), s4 = stage_id(pl, "55012004");
    json_decref(pl);
    fake_amo_clear_requests(fa);

    /* 429 with Retry-After: 1, then delivered */
    fake_amo_fail_next(fa, 1, 429, "1");
    struct th_resp r =
        th_patch(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT, "{\"manager_id\":%lld}", (long long)sergey);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(count_requests("PATCH", LEAD_PATH) >= 1, "no PATCH; the fake got:%s", requests_text());
    double first = th_mono_now();
    WAIT_FOR(count_requests("PATCH", LEAD_PATH) >= 2, "no retry after the 429; the fake got:%s",
             requests_text());
    double second = th_mono_now();
    cr_assert_geq(second - first, 0.8, "retried %.2f s after a 429 with Retry-After: 1", second - first);
    WAIT_FOR(outbox_count("pending") == 0, "still pending after the retry");
    cr_assert_eq(outbox_count("dead"), 0);
    cr_assert_eq(count_requests("PATCH", LEAD_PATH), 2, "the fake got:%s", requests_text());
    for (size_t i = 0; i < 2; i++) {
        json_t *body = fake_amo_request_json(fake_amo_request(fa, i));
        cr_assert_eq(jint(body, "responsible_user_id"), 8800002, "request %zu", i);
        json_decref(body);
    }
    json_t *lead = fake_amo_lead_copy(fa, 40319999);
    cr_assert_eq(jint(lead, "responsible_user_id"), 8800002);
    json_decref(lead);

    /* 401: dead at once, never retried */
    fake_amo_clear_requests(fa);
    fake_amo_fail_next(fa, 20, 401, NULL);
    r = th_patch(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT, "{\"stage_id\":%lld}", (long long)s3);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(outbox_count("dead") == 1, "the row refused with 401 is not dead; the fake got:%s",
             requests_text());
    cr_assert_eq(outbox_count("pending"), 0);
    th_sleep_ms(2500);
    cr_assert_eq(count_requests("PATCH", LEAD_PATH), 1, "a 401 was retried; the fake got:%s",
                 requests_text());
    cr_assert_eq(outbox_count("dead"), 1);

    /* 400: dead at once too */
    fake_amo_fail_next(fa, 0, 0, NULL);
    fake_amo_clear_requests(fa);
    fake_amo_fail_next(fa, 1, 400, NULL);
    r = th_patch(tacct.admin_key, "/api/v1/deals/ext:" LEAD_EXT, "{\"stage_id\":%lld}", (long long)s4);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(outbox_count("dead") == 2, "the row refused with 400 is not dead; the fake got:%s",
             requests_text());
    cr_assert_eq(outbox_count("pending"), 0);
    th_sleep_ms(2500);
    cr_assert_eq(count_requests("PATCH", LEAD_PATH), 1, "a 400 was retried; the fake got:%s",
                 requests_text());

    /* a deal without an amoCRM id: skipped, never sent, not dead */
    fake_amo_clear_requests(fa);
    r = th_post(
        tacct.admin_key, "/api/v1/deals",
        "{\"name\":\"Без amoCRM\",\"price\":1000,\"pipeline_id\":%lld,\"stage_id\":%lld,\"manager_id\":%lld}",
        (long long)pipeline, (long long)s2, (long long)anna);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t local = th_int(&r, "id");
    th_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)local);
    r = th_patch(tacct.admin_key, path, "{\"manager_id\":%lld,\"stage_id\":%lld}", (long long)sergey,
                 (long long)s3);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    char where[128];
    snprintf(where, sizeof where, "object_id = %lld AND kind LIKE 'lead_%%' AND state = 'skipped'",
             (long long)local);
    cr_assert_eq(outbox_rows(where), 2, "the two writes of a deal without an amoCRM id are not skipped");
    th_sleep_ms(2000);
    cr_assert_eq(fake_amo_request_count(fa), 0, "the fake got:%s", requests_text());
    cr_assert_eq(outbox_count("pending"), 0);
    cr_assert_eq(outbox_count("dead"), 2);

    /* the token is in no log line */
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    rewind(log);
    static char logged[1 << 16];
    size_t n = fread(logged, 1, sizeof logged - 1, log);
    logged[n] = '\0';
    fclose(log);
    fputs(logged, stderr);
    cr_assert(strstr(logged, FAKE_AMO_TOKEN) == NULL, "the access token was logged");
}

/* ---- 6. no integration, no writes ---- */

Test(connector, an_account_without_integration_sends_nothing)
{
    const char *key = tacct.admin_key;
    struct th_resp r =
        th_post(key, "/api/v1/pipelines",
                "{\"name\":\"Продажи\",\"external_id\":\"" PIPELINE_EXT "\",\"stages\":["
                "{\"name\":\"Взят в работу\",\"external_id\":\"55012002\",\"kind\":\"open\"},"
                "{\"name\":\"Квалификация\",\"external_id\":\"55012003\",\"kind\":\"open\"},"
                "{\"name\":\"Успешно реализовано\",\"external_id\":\"142\",\"kind\":\"won\"},"
                "{\"name\":\"Закрыто и не реализовано\",\"external_id\":\"143\",\"kind\":\"lost\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t pipeline = th_int(&r, "id");
    int64_t s2 =
        json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), 0), "id"));
    int64_t s3 =
        json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), 1), "id"));
    th_resp_free(&r);
    r = th_post(key, "/api/v1/managers",
                "{\"name\":\"Иванова Анна\",\"role\":\"manager\",\"external_id\":\"8800001\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t anna = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(key, "/api/v1/managers",
                "{\"name\":\"Петров Сергей\",\"role\":\"manager\",\"external_id\":\"8800002\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t sergey = th_int(&r, "id");
    th_resp_free(&r);
    r = th_post(
        key, "/api/v1/deals",
        "{\"name\":\"Окна\",\"price\":5000,\"pipeline_id\":%lld,\"stage_id\":%lld,\"manager_id\":%lld,"
        "\"external_id\":\"" LEAD_EXT "\"}",
        (long long)pipeline, (long long)s2, (long long)anna);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t deal = th_int(&r, "id");
    th_resp_free(&r);

    char path[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld", (long long)deal);
    r = th_patch(key, path, "{\"manager_id\":%lld,\"stage_id\":%lld}", (long long)sergey, (long long)s3);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_post(
        key, "/api/v1/tasks",
        "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить\",\"due_at\":\"2030-01-02T09:00:00Z\"}",
        (long long)deal);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t task = th_int(&r, "id");
    th_resp_free(&r);
    char tpath[96];
    snprintf(tpath, sizeof tpath, "/api/v1/tasks/%lld/complete", (long long)task);
    r = th_post(key, tpath, "{}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/deals/%lld/notes", (long long)deal);
    r = th_post(key, path, "{\"text\":\"Заметка\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, "/api/v1/deals/%lld/close", (long long)deal);
    r = th_post(key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);

    th_sleep_ms(2000);
    cr_assert_eq(fake_amo_request_count(fa), 0, "the fake got:%s", requests_text());
    cr_assert_eq(th_count_rows("outbox", tacct.id), 0, "writes were queued without an integration");
    r = integration();
    cr_assert(json_is_false(json_object_get(r.json, "connected")), "%s", r.body);
    cr_assert_eq(jint(json_object_get(r.json, "outbox"), "pending"), 0, "%s", r.body);
    th_resp_free(&r);
}

/* ---- 7. webhooks about the tasks and notes salesops created in amoCRM ---- */

struct form {
    char text[4096];
    size_t len;
};

static void form_encode(struct form *f, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p && f->len + 4 < sizeof f->text; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '_' || *p == '.' || *p == '~') {
            f->text[f->len++] = (char)*p;
        } else if (*p == ' ') {
            f->text[f->len++] = '+';
        } else {
            f->text[f->len++] = '%';
            f->text[f->len++] = hex[*p >> 4];
            f->text[f->len++] = hex[*p & 15];
        }
    }
    f->text[f->len] = '\0';
}

static void form_add(struct form *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void form_add(struct form *f, const char *key, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    if (f->len && f->len + 1 < sizeof f->text) f->text[f->len++] = '&';
    form_encode(f, key);
    if (f->len + 1 < sizeof f->text) f->text[f->len++] = '=';
    form_encode(f, value);
}

static void form_account(struct form *f)
{
    form_add(f, "account[subdomain]", "acme");
    form_add(f, "account[id]", "29085511");
}

/* task[add] for a task of lead 40319999, as amoCRM sends it after the task was made through the API. */
static void task_add_webhook_typed(struct form *f, long long task_id, const char *task_type, const char *text)
{
    long long now = (long long)time(NULL);
    memset(f, 0, sizeof *f);
    form_add(f, "task[add][0][id]", "%lld", task_id);
    form_add(f, "task[add][0][element_id]", "40319999");
    form_add(f, "task[add][0][element_type]", "2");
    form_add(f, "task[add][0][task_type]", "%s", task_type);
    form_add(f, "task[add][0][text]", "%s", text);
    form_add(f, "task[add][0][status]", "0");
    form_add(f, "task[add][0][account_id]", "29085511");
    form_add(f, "task[add][0][created_user_id]", "8800002");
    form_add(f, "task[add][0][responsible_user_id]", "8800002");
    form_add(f, "task[add][0][complete_before]", "1893574800");
    form_add(f, "task[add][0][created_at]", "%lld", now);
    form_add(f, "task[add][0][updated_at]", "%lld", now);
    form_account(f);
}

static void task_add_webhook(struct form *f, long long task_id, const char *text)
{
    task_add_webhook_typed(f, task_id, "1", text);
}

static void note_webhook(struct form *f, long long note_id, const char *text)
{
    long long now = (long long)time(NULL);
    memset(f, 0, sizeof *f);
    form_add(f, "leads[note][0][note][id]", "%lld", note_id);
    form_add(f, "leads[note][0][note][element_id]", "40319999");
    form_add(f, "leads[note][0][note][element_type]", "2");
    form_add(f, "leads[note][0][note][note_type]", "4");
    form_add(f, "leads[note][0][note][text]", "%s", text);
    form_add(f, "leads[note][0][note][created_by]", "8800002");
    form_add(f, "leads[note][0][note][created_at]", "%lld", now);
    form_add(f, "leads[note][0][note][account_id]", "29085511");
    form_account(f);
}

static bool inbox_settled(void)
{
    static const char *const states[] = {"pending", "waiting"};
    for (size_t i = 0; i < 2; i++) {
        struct th_resp r = th_get(tacct.admin_key, "/api/v1/webhooks/inbox?state=%s", states[i]);
        cr_assert_eq(r.status, 200, "%s", r.body);
        size_t n = json_array_size(json_object_get(r.json, "items"));
        th_resp_free(&r);
        if (n) return false;
    }
    return true;
}

static size_t list_size(const char *path_fmt, long long id)
{
    struct th_resp r = th_get(tacct.admin_key, path_fmt, id);
    cr_assert_eq(r.status, 200, "%s", r.body);
    size_t n = json_array_size(json_object_get(r.json, "items"));
    th_resp_free(&r);
    return n;
}

static bool task_linked(int64_t task, const char *ext)
{
    struct th_resp r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    const char *e = th_str(&r, "external_id");
    bool linked = e != NULL && strcmp(e, ext) == 0;
    th_resp_free(&r);
    return linked;
}

Test(connector, webhooks_for_objects_salesops_created_update_them)
{
    connect_and_sync();
    int64_t deal = deal_from_events();
    WAIT_FOR(outbox_count("pending") == 0, "pending rows after the events");

    struct th_resp r = th_post(tacct.admin_key, "/api/v1/tasks",
                               "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить клиенту\","
                               "\"due_at\":\"2030-01-02T09:00:00Z\"}",
                               (long long)deal);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t task = th_int(&r, "id");
    th_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld/notes", (long long)deal);
    r = th_post(tacct.admin_key, path, "{\"text\":\"Договорились о встрече\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    WAIT_FOR(task_linked(task, "70000001"), "the task did not get amoCRM's id; the fake got:%s",
             requests_text());
    WAIT_FOR(outbox_count("pending") == 0, "outbox.pending does not return to 0");
    cr_assert_eq(count_requests("POST", LEAD_PATH "/notes"), 1, "the fake got:%s", requests_text());

    /* amoCRM tells about them: no second task, no second note */
    struct form f;
    task_add_webhook(&f, 70000001, "Перезвонить клиенту");
    post_webhook_ok(tacct.webhook_token, f.text);
    note_webhook(&f, 90000001, "Договорились о встрече");
    post_webhook_ok(tacct.webhook_token, f.text);
    WAIT_FOR(inbox_settled(), "the webhooks were not applied");
    cr_assert_eq(list_size("/api/v1/tasks?deal_id=%lld", (long long)deal), 1, "a second task was made");
    cr_assert_eq(list_size("/api/v1/deals/%lld/notes", (long long)deal), 1, "a second note was made");
    cr_assert(task_linked(task, "70000001"));
}

/* A connected account with a deal (its id in *deal) and a call task made through REST whose first delivery is
 * refused (429, Retry-After: 3): the task's amoCRM id is not known for a while. Returns the task's id. */
static int64_t task_in_delivery(const char *text, int64_t *deal)
{
    connect_and_sync();
    *deal = deal_from_events();
    WAIT_FOR(outbox_count("pending") == 0, "pending rows after the events");
    fake_amo_clear_requests(fa);
    fake_amo_fail_next(fa, 1, 429, "3");
    struct th_resp r = th_post(tacct.admin_key, "/api/v1/tasks",
                               "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"%s\","
                               "\"due_at\":\"2030-01-02T09:00:00Z\"}",
                               (long long)*deal, text);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t task = th_int(&r, "id");
    th_resp_free(&r);
    WAIT_FOR(count_requests("POST", "/api/v4/tasks") == 1, "no POST /api/v4/tasks; the fake got:%s",
             requests_text());
    return task;
}

Test(connector, task_webhook_during_delivery_matches_the_task_in_flight)
{
    int64_t deal;
    int64_t task = task_in_delivery("Выслать КП", &deal);
    struct th_resp r;

    /* meanwhile a meeting with the same text is made in amoCRM: another type, so a task of its own */
    struct form f;
    task_add_webhook_typed(&f, 70000500, "2", "Выслать КП");
    post_webhook_ok(tacct.webhook_token, f.text);
    WAIT_FOR(inbox_settled(), "the webhook was not applied");
    bool took_over = task_linked(task, "70000500");
    cr_assert(!took_over, "a meeting webhook took over the call task in flight (types differ)");

    /* and amoCRM's webhook for that same task (same lead, type and text) arrives */
    task_add_webhook(&f, 70000001, "Выслать КП");
    post_webhook_ok(tacct.webhook_token, f.text);
    WAIT_FOR(inbox_settled(), "the webhook was not applied");
    cr_assert_eq(count_requests("POST", "/api/v4/tasks"), 1,
                 "the retry came before the webhook was applied: the test proves nothing");

    WAIT_FOR(outbox_count("pending") == 0, "outbox.pending does not return to 0; the fake got:%s",
             requests_text());
    cr_assert_eq(count_requests("POST", "/api/v4/tasks"), 2, "the fake got:%s", requests_text());
    /* (the replies are copied and freed before asserting, so a failure leaves no leak report behind) */
    static char listed[4096];
    r = th_get(tacct.admin_key, "/api/v1/tasks?deal_id=%lld", (long long)deal);
    size_t tasks = json_array_size(json_object_get(r.json, "items"));
    snprintf(listed, sizeof listed, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(tasks, 2, "want the REST task and the meeting: %s", listed);
    r = th_get(tacct.admin_key, "/api/v1/tasks/ext:70000500");
    bool meeting = r.status == 200 && th_str(&r, "type") != NULL &&
                   strcmp(th_str(&r, "type"), "meeting") == 0 && th_int(&r, "id") != task;
    snprintf(listed, sizeof listed, "%s", r.body);
    th_resp_free(&r);
    cr_assert(meeting, "the meeting is not a task of its own: %s", listed);
    bool linked = task_linked(task, "70000001");
    r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    snprintf(listed, sizeof listed, "%s", r.body);
    th_resp_free(&r);
    cr_assert(linked, "the task in flight does not carry amoCRM's id: %s", listed);
}

/* task[update] closing amoCRM task task_id of lead 40319999 (status 1: completed). */
static void task_done_webhook(struct form *f, long long task_id, const char *text)
{
    long long now = (long long)time(NULL);
    memset(f, 0, sizeof *f);
    form_add(f, "task[update][0][id]", "%lld", task_id);
    form_add(f, "task[update][0][element_id]", "40319999");
    form_add(f, "task[update][0][element_type]", "2");
    form_add(f, "task[update][0][task_type]", "1");
    form_add(f, "task[update][0][text]", "%s", text);
    form_add(f, "task[update][0][status]", "1");
    form_add(f, "task[update][0][account_id]", "29085511");
    form_add(f, "task[update][0][responsible_user_id]", "8800002");
    form_add(f, "task[update][0][complete_before]", "1893574800");
    form_add(f, "task[update][0][created_at]", "%lld", now - 60);
    form_add(f, "task[update][0][updated_at]", "%lld", now);
    form_account(f);
}

static bool task_in_state(int64_t task, const char *state)
{
    struct th_resp r = th_get(tacct.admin_key, "/api/v1/tasks/%lld", (long long)task);
    const char *s = th_str(&r, "state");
    bool in = r.status == 200 && s != NULL && strcmp(s, state) == 0;
    th_resp_free(&r);
    return in;
}

Test(connector, a_webhook_that_waited_for_a_task_in_delivery_applies_once_its_id_is_stored)
{
    /* the delivery is refused once: the task's amoCRM id is stored only after the retry */
    int64_t deal;
    int64_t task = task_in_delivery("Уточнить бюджет", &deal);

    /* the manager closes it in amoCRM at once: the webhook names an amoCRM id salesops does not hold yet */
    struct form f;
    task_done_webhook(&f, 70000001, "Уточнить бюджет");
    post_webhook_ok(tacct.webhook_token, f.text);
    WAIT_FOR(list_size("/api/v1/webhooks/inbox?state=waiting", 0) > 0, "the completion does not wait");
    cr_assert(!task_linked(task, "70000001"), "the id was stored before the webhook: the test proves nothing");
    cr_assert(task_in_state(task, "open"));

    /* the retry stores amoCRM's id; no event creates the task, yet the waiting completion is applied */
    WAIT_FOR(task_linked(task, "70000001"), "the task did not get amoCRM's id; the fake got:%s", requests_text());
    WAIT_FOR(task_in_state(task, "done"), "the completion that waited for task 70000001 was not applied");
    WAIT_FOR(inbox_settled(), "events still wait");
    cr_assert_eq(list_size("/api/v1/tasks?deal_id=%lld", (long long)deal), 1, "a second task was made");
}

/* ---- 8. amoCRM's rate limit ---- */

Test(connector, writes_keep_to_seven_requests_a_second)
{
    connect_and_sync();
    int64_t deal = deal_from_events();
    WAIT_FOR(outbox_count("pending") == 0, "pending rows after the events");
    fake_amo_clear_requests(fa);
    fake_amo_set_rate_limit(fa, 7);

    char path[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld/notes", (long long)deal);
    for (int i = 0; i < 15; i++) {
        struct th_resp r = th_post(tacct.admin_key, path, "{\"text\":\"Заметка %d\"}", i + 1);
        cr_assert_eq(r.status, 201, "%s", r.body);
        th_resp_free(&r);
    }
    double start = th_mono_now();
    WAIT_FOR(outbox_count("pending") == 0, "the notes were not all written; the fake got:%s",
             requests_text());
    double took = th_mono_now() - start;
    cr_assert_eq(outbox_count("dead"), 0);
    for (int64_t id = FAKE_AMO_FIRST_NOTE_ID; id < FAKE_AMO_FIRST_NOTE_ID + 15; id++) {
        json_t *note = fake_amo_note_copy(fa, id);
        cr_assert(note != NULL, "note %lld was not made", (long long)id);
        json_decref(note);
    }
    cr_assert(fake_amo_note_copy(fa, FAKE_AMO_FIRST_NOTE_ID + 15) == NULL, "a note was written twice");
    size_t sent = count_requests("POST", LEAD_PATH "/notes");
    /* without a limit of its own the service would be refused about 8 times in the first second alone; a
     * refusal or two may come from timing jitter at the edge of the window */
    cr_assert_leq(sent, 17, "%zu requests for 15 notes: amoCRM refused %zu", sent, sent - 15);
    cr_assert_geq(took, 1.5, "15 writes in %.2f s", took);
}

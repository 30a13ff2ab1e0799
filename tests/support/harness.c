#include "harness.h"
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "salesops/api.h"
#include "salesops/auth.h"
#include "salesops/domain.h"
#include "salesops/http.h"
#include "salesops/log.h"
#include "salesops/sched.h"
#include "salesops/store.h"
#include "salesops/timeutil.h"

static char conninfo[1024];
static struct so_config cfg;
static struct so_server *server;
static struct so_sched *sched;
static char base_url[64];

static PGconn *admin_connect(const char *dbname)
{
    const char *url = getenv("SALESOPS_TEST_DATABASE_URL");
    cr_assert(url != NULL, "SALESOPS_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh");
    const char *keys[] = {"dbname", "dbname", NULL};
    const char *values[] = {url, dbname, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    cr_assert(PQstatus(c) == CONNECTION_OK, "cannot connect: %s", PQerrorMessage(c));
    return c;
}

/* A conninfo string naming dbname, with the rest of the admin connection's settings. */
static void conninfo_for(const char *dbname, char *out, size_t outlen)
{
    PGconn *c = admin_connect(dbname);
    PQconninfoOption *opts = PQconninfo(c);
    size_t used = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL || !*o->val || !strcmp(o->keyword, "password")) continue;
        used += (size_t)snprintf(out + used, outlen - used, "%s='%s' ", o->keyword, o->val);
    }
    PQconninfoFree(opts);
    PQfinish(c);
}

static void admin_exec(const char *sql, const char *ok_state1, const char *ok_state2)
{
    PGconn *admin = admin_connect("postgres");
    PGresult *r = PQexec(admin, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        cr_assert(state &&
                      ((ok_state1 && !strcmp(state, ok_state1)) || (ok_state2 && !strcmp(state, ok_state2))),
                  "%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
    PQfinish(admin);
}

const char *th_database(const char *suite)
{
    if (conninfo[0]) return conninfo;
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE so_test_%s", suite);
    /* parallel test processes race to create it: "already exists" (or its unique index) is success */
    admin_exec(sql, "42P04", "23505");
    snprintf(sql, sizeof sql, "so_test_%s", suite);
    conninfo_for(sql, conninfo, sizeof conninfo);
    char err[512] = "";
    struct db *db = db_open(conninfo, err, sizeof err);
    cr_assert(db != NULL, "db_open: %s", err);
    int applied;
    cr_assert(store_migrate(db, &applied, err, sizeof err) == DB_OK, "migrate: %s", err);
    db_close(db);
    return conninfo;
}

const char *th_scratch_database(const char *name)
{
    static char scratch[1024];
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS so_scratch_%s WITH (FORCE)", name);
    admin_exec(sql, NULL, NULL);
    snprintf(sql, sizeof sql, "CREATE DATABASE so_scratch_%s", name);
    admin_exec(sql, NULL, NULL);
    snprintf(sql, sizeof sql, "so_scratch_%s", name);
    conninfo_for(sql, scratch, sizeof scratch);
    return scratch;
}

const struct so_config *th_config(void)
{
    return &cfg;
}

const char *th_server_start(const char *suite)
{
    return th_server_start_on(th_database(suite));
}

const char *th_server_start_on(const char *database)
{
    int argc = 1;
    char *argv[] = {"test", NULL};
    char err[256];
    setenv("SALESOPS_LISTEN", "127.0.0.1:0", 1);
    setenv("SALESOPS_THREADS", "4", 1);
    /* tests/meson.build runs the suites at info, so that the secrets check of scripts/test.sh reads every log
     * line a server writes; warn otherwise */
    setenv("SALESOPS_LOG_LEVEL", "warn", 0);
    cr_assert(config_load(&cfg, &argc, argv, err, sizeof err) == 0, "%s", err);
    enum log_level level = LOG_WARN;
    log_parse_level(cfg.log_level, &level);
    log_set_level(level);
    snprintf(cfg.database_url, sizeof cfg.database_url, "%s", database);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    server = server_start(&cfg, so_api_routes, so_api_route_count, err, sizeof err);
    cr_assert(server != NULL, "server_start: %s", err);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d", server_port(server));
    sched = sched_start(&cfg, 1, err, sizeof err);
    cr_assert(sched != NULL, "sched_start: %s", err);
    return base_url;
}

void th_server_stop(void)
{
    server_stop(server);
    server = NULL;
    sched_stop(sched);
    sched = NULL;
    db_thread_release();
    curl_global_cleanup();
}

struct th_resp th_post_webhook(const char *token, const char *body, const char *content_type)
{
    char path[256];
    snprintf(path, sizeof path, "/api/v1/webhooks/amocrm/%s", token);
    return th_request("POST", path, NULL, body, content_type ? content_type : "application/x-www-form-urlencoded",
                      NULL);
}

double th_post_webhook_ok(const char *token, const char *body)
{
    double start = th_mono_now();
    struct th_resp r = th_post_webhook(token, body, NULL);
    double took = th_mono_now() - start;
    cr_assert_eq(r.status, 200, "webhook: %ld %s", r.status, r.body);
    cr_assert_lt(took, 2.0, "amoCRM wants the answer within 2 s; took %.3f s", took);
    th_resp_free(&r);
    return took;
}

void th_lead_add_body(char *out, size_t len, int lead, int pipeline, int user, int64_t t)
{
    snprintf(out, len,
             "leads%%5Badd%%5D%%5B0%%5D%%5Bid%%5D=%d&leads%%5Badd%%5D%%5B0%%5D%%5Bname%%5D=Lead+%d"
             "&leads%%5Badd%%5D%%5B0%%5D%%5Bstatus_id%%5D=55012001&leads%%5Badd%%5D%%5B0%%5D%%5Bprice%%5D=1000"
             "&leads%%5Badd%%5D%%5B0%%5D%%5Bresponsible_user_id%%5D=%d"
             "&leads%%5Badd%%5D%%5B0%%5D%%5Bpipeline_id%%5D=%d"
             "&leads%%5Badd%%5D%%5B0%%5D%%5Bcreated_at%%5D=%lld&leads%%5Badd%%5D%%5B0%%5D%%5Bupdated_at%%5D=%lld"
             "&account%%5Bsubdomain%%5D=acme",
             lead, lead, user, pipeline, (long long)t, (long long)t);
}

PGconn *th_hold_ingest(int64_t account_id)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    char sql[128];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(1936682867, %lld::int4)", (long long)account_id);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
    PQclear(r);
    return c;
}

void th_release_ingest(PGconn *held)
{
    PGresult *r = PQexec(held, "COMMIT");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(held));
    PQclear(r);
    PQfinish(held);
}

void th_account_new(struct th_account *out)
{
    char err_text[256];
    struct db *db = db_open(conninfo, err_text, sizeof err_text);
    cr_assert(db != NULL, "%s", err_text);
    struct account_created created;
    struct so_error err = {0};
    cr_assert(domain_account_create(db, "Test account", "Europe/Moscow", so_now(), &created, &err) == SO_OK,
              "%s", err.detail);
    db_close(db);
    out->id = created.account_id;
    snprintf(out->admin_key, sizeof out->admin_key, "%s", created.api_key);
    snprintf(out->webhook_token, sizeof out->webhook_token, "%s", created.webhook_token);
}

struct buffer {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *userdata)
{
    struct buffer *b = userdata;
    size_t add = size * n;
    char *grown = realloc(b->data, b->len + add + 1);
    cr_assert(grown != NULL);
    b->data = grown;
    memcpy(b->data + b->len, ptr, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0) return;
    const char *v = line + n;
    size_t vlen = len - n;
    while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n'))
        vlen--;
    if (vlen >= outlen) vlen = outlen - 1;
    memcpy(out, v, vlen);
    out[vlen] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *userdata)
{
    struct th_resp *r = userdata;
    size_t len = size * n;
    header_value(line, len, "Content-Type: ", r->content_type, sizeof r->content_type);
    header_value(line, len, "X-Request-Id: ", r->request_id, sizeof r->request_id);
    header_value(line, len, "Allow: ", r->allow, sizeof r->allow);
    return len;
}

struct th_resp th_request(const char *method, const char *path, const char *key, const char *body,
                          const char *content_type, const char *extra_header)
{
    struct th_resp r = {0};
    struct buffer b = {0};
    CURL *c = curl_easy_init();
    cr_assert(c != NULL);
    char url[2048];
    snprintf(url, sizeof url, "%s%s", base_url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    struct curl_slist *headers = NULL;
    char line[256];
    if (key != NULL) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", key);
        headers = curl_slist_append(headers, line);
    }
    if (body != NULL) {
        snprintf(line, sizeof line, "Content-Type: %s", content_type ? content_type : "application/json");
        headers = curl_slist_append(headers, line);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    headers = curl_slist_append(headers, "Expect:");
    if (extra_header != NULL) headers = curl_slist_append(headers, extra_header);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(c);
    cr_assert(rc == CURLE_OK, "%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    r.body = b.data ? b.data : calloc(1, 1);
    json_error_t e;
    r.json = b.len ? json_loads(r.body, 0, &e) : NULL;
    return r;
}

static struct th_resp vrequest(const char *method, const char *key, const char *path, const char *fmt,
                               va_list ap)
{
    char *body = NULL;
    if (fmt != NULL) {
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(NULL, 0, fmt, aq);
        va_end(aq);
        body = malloc((size_t)n + 1);
        vsnprintf(body, (size_t)n + 1, fmt, ap);
    }
    struct th_resp r = th_request(method, path, key, body, NULL, NULL);
    free(body);
    return r;
}

struct th_resp th_get(const char *key, const char *path_fmt, ...)
{
    char path[1024];
    TH_VFORMAT(path, path_fmt);
    return th_request("GET", path, key, NULL, NULL, NULL);
}

/* th_post, th_patch and th_put: one request of method with a printf-formatted body. */
#define BODY_REQUEST(name, method)                                                                           \
    struct th_resp name(const char *key, const char *path, const char *body_fmt, ...)                        \
    {                                                                                                        \
        va_list ap;                                                                                          \
        va_start(ap, body_fmt);                                                                              \
        struct th_resp r = vrequest(method, key, path, body_fmt, ap);                                        \
        va_end(ap);                                                                                          \
        return r;                                                                                            \
    }
BODY_REQUEST(th_post, "POST")
BODY_REQUEST(th_patch, "PATCH")
BODY_REQUEST(th_put, "PUT")

void th_resp_free(struct th_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

int64_t th_int(const struct th_resp *r, const char *field)
{
    json_t *v = json_object_get(r->json, field);
    cr_assert(json_is_integer(v), "field %s is not an integer in %s", field, r->body);
    return json_integer_value(v);
}

const char *th_str(const struct th_resp *r, const char *field)
{
    json_t *v = json_object_get(r->json, field);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *th_code(const struct th_resp *r)
{
    const char *code = th_str(r, "code");
    return code ? code : "";
}

int64_t th_count_rows(const char *table, int64_t account_id)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert(PQstatus(c) == CONNECTION_OK);
    char sql[256], id[32];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE account_id = $1", table);
    snprintf(id, sizeof id, "%lld", (long long)account_id);
    const char *params[] = {id};
    PGresult *r = PQexecParams(c, sql, 1, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

/* The first column of the first row of sql as an integer (0 when none). */
static int64_t sql_int(const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    cr_assert(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    cr_assert(st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    int64_t n = st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                    ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                    : 0;
    PQclear(r);
    PQfinish(c);
    return n;
}

int64_t th_sql_int(const char *sql_fmt, ...)
{
    char sql[1024];
    TH_VFORMAT(sql, sql_fmt);
    return sql_int(sql);
}

void th_key_new(const struct th_account *acct, const char *role, int64_t manager_id, char out[64])
{
    struct th_resp r =
        manager_id
            ? th_post(acct->admin_key, "/api/v1/api-keys",
                      "{\"role\":\"%s\",\"manager_id\":%lld,\"name\":\"k\"}", role, (long long)manager_id)
            : th_post(acct->admin_key, "/api/v1/api-keys", "{\"role\":\"%s\",\"name\":\"k\"}", role);
    cr_assert_eq(r.status, 201, "api key: %s", r.body);
    snprintf(out, 64, "%s", th_str(&r, "key"));
    th_resp_free(&r);
}

int64_t th_manager_new(const char *key, const char *name, const char *role)
{
    struct th_resp r = th_post(key, "/api/v1/managers", "{\"name\":\"%s\",\"role\":\"%s\"}", name, role);
    cr_assert_eq(r.status, 201, "manager: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

int64_t th_loss_reason_new(const char *key, const char *name, const char *ext)
{
    struct th_resp r =
        ext ? th_post(key, "/api/v1/loss-reasons", "{\"name\":\"%s\",\"external_id\":\"%s\"}", name, ext)
            : th_post(key, "/api/v1/loss-reasons", "{\"name\":\"%s\"}", name);
    cr_assert_eq(r.status, 201, "loss reason: %s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

void th_world_new(struct th_world *w)
{
    memset(w, 0, sizeof *w);
    th_account_new(&w->acct);
    const char *key = w->acct.admin_key;
    struct th_resp r = th_post(key, "/api/v1/pipelines",
                               "{\"name\":\"Продажи\",\"external_id\":\"p1\",\"stages\":["
                               "{\"name\":\"Взят в работу\",\"external_id\":\"s1\",\"kind\":\"open\"},"
                               "{\"name\":\"Выслано КП\",\"external_id\":\"s2\",\"kind\":\"open\"},"
                               "{\"name\":\"Дожим\",\"external_id\":\"s3\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    w->pipeline_id = th_int(&r, "id");
    json_t *stages = json_object_get(r.json, "stages");
    cr_assert_eq(json_array_size(stages), 5);
    for (int i = 0; i < 3; i++)
        w->stages[i] = json_integer_value(json_object_get(json_array_get(stages, (size_t)i), "id"));
    w->won_stage = json_integer_value(json_object_get(json_array_get(stages, 3), "id"));
    w->lost_stage = json_integer_value(json_object_get(json_array_get(stages, 4), "id"));
    th_resp_free(&r);
    w->manager1 = th_manager_new(key, "Иванова Анна", "manager");
    w->manager2 = th_manager_new(key, "Петров Сергей", "manager");
    w->head = th_manager_new(key, "Смирнова Ольга", "head");
    w->loss_reason = th_loss_reason_new(key, "Дорого", "r1");
    th_key_new(&w->acct, "manager", w->manager1, w->manager1_key);
    th_key_new(&w->acct, "manager", w->manager2, w->manager2_key);
    th_key_new(&w->acct, "head", 0, w->head_key);
    th_key_new(&w->acct, "readonly", 0, w->readonly_key);
}

void th_world_start(const char *suite, struct th_world *w)
{
    th_server_start(suite);
    th_world_new(w);
}

void th_patch_manager(const char *key, int64_t id, const char *body)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)id);
    struct th_resp r = th_patch(key, path, "%s", body);
    cr_assert_eq(r.status, 200, "patch manager %lld %s: %s", (long long)id, body, r.body);
    th_resp_free(&r);
}

/* ---- time ---- */

void th_format_time(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t th_parse_time(const char *s)
{
    cr_assert(s != NULL, "a time is missing");
    struct tm tm = {0};
    char z = 0;
    cr_assert(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &tm.tm_sec, &z) == 7 &&
                  z == 'Z' && strlen(s) == 20,
              "not a YYYY-MM-DDTHH:MM:SSZ time: %s", s);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

void th_local_date(char out[16], int64_t at, int offset_s, int days)
{
    time_t t = (time_t)(at + offset_s + (int64_t)days * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y-%m-%d", &tm);
}

void th_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

double th_mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- JSON ---- */

const char *th_dump(json_t *j)
{
    static char text[16384];
    char *s = json_dumps(j, JSON_COMPACT);
    snprintf(text, sizeof text, "%s", s ? s : "(null)");
    free(s);
    return text;
}

int64_t th_jint(json_t *o, const char *field)
{
    json_t *v = json_object_get(o, field);
    cr_assert(json_is_integer(v), "%s is not an integer in %s", field, th_dump(o));
    return json_integer_value(v);
}

const char *th_jstr(json_t *o, const char *field)
{
    return json_string_value(json_object_get(o, field));
}

bool th_jnull(json_t *o, const char *field)
{
    json_t *v = json_object_get(o, field);
    return v != NULL && json_is_null(v);
}

/* ---- requests ---- */

json_t *th_get_json(const char *key, const char *path_fmt, ...)
{
    char path[512];
    TH_VFORMAT(path, path_fmt);
    struct th_resp r = th_request("GET", path, key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %s", path, r.body);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    return j;
}

int64_t th_id_by_ext(const char *key, const char *kind, const char *ext)
{
    struct th_resp r = th_get(key, "/api/v1/%s/ext:%s", kind, ext);
    cr_assert_eq(r.status, 200, "%s ext:%s: %s", kind, ext, r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

struct th_resp th_post_empty(const char *key, const char *path_fmt, ...)
{
    char path[512];
    TH_VFORMAT(path, path_fmt);
    return th_request("POST", path, key, NULL, NULL, NULL);
}

void th_expect_status(const struct th_resp *r, long status, const char *code, const char *what)
{
    cr_assert_eq(r->status, status, "%s: expected %ld, got %ld: %s", what, status, r->status, r->body);
    if (code != NULL) cr_assert_str_eq(th_code(r), code, "%s: code: %s", what, r->body);
}

void th_expect_field_error(const struct th_resp *r, const char *field, const char *what)
{
    th_expect_status(r, 422, "validation_failed", what);
    json_t *errors = json_object_get(r->json, "errors");
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const char *f = json_string_value(json_object_get(json_array_get(errors, i), "field"));
        if (f != NULL && strcmp(f, field) == 0) return;
    }
    cr_assert_fail("%s: no error for field %s in %s", what, field, r->body);
}

struct th_resp th_post_events(const char *key, const char *json)
{
    struct th_resp r = th_request("POST", "/api/v1/events", key, json, "application/json", NULL);
    cr_assert_eq(r.status, 200, "events: %s\nbody: %s", r.body, json);
    cr_assert_eq(json_array_size(json_object_get(r.json, "rejected")), 0, "events rejected: %s", r.body);
    return r;
}

int64_t th_inbox_count(const char *key, const char *state)
{
    json_t *j = th_get_json(key, "/api/v1/webhooks/inbox?state=%s&limit=500", state);
    int64_t n = (int64_t)json_array_size(json_object_get(j, "items"));
    json_decref(j);
    return n;
}

void th_wait_applied(const char *key, int timeout_ms)
{
    double deadline = th_mono_now() + timeout_ms / 1000.0;
    while (th_inbox_count(key, "pending") + th_inbox_count(key, "waiting") > 0) {
        cr_assert(th_mono_now() < deadline, "the inbox was not applied within %d ms", timeout_ms);
        th_sleep_ms(50);
    }
}

int64_t th_wait_sql_int(int64_t expected, int timeout_ms, const char *sql_fmt, ...)
{
    char sql[1024];
    TH_VFORMAT(sql, sql_fmt);
    double deadline = th_mono_now() + timeout_ms / 1000.0;
    for (;;) {
        int64_t v = sql_int(sql);
        if (v == expected || th_mono_now() >= deadline) return v;
        th_sleep_ms(50);
    }
}

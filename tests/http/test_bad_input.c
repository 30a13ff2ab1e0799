/* Bad input (issue "Bad input"): every malformed, invalid, foreign or forbidden request answers the right 4xx
 * as application/problem+json with a `code` from API.md's list and a `detail` (or `errors[].field`) that
 * names what is wrong, and it stores nothing: every table of the account keeps its row count and the object
 * the request aimed at reads the same before and after.
 *
 * Most cases are rows of parameterized tables run by one runner (run_case). Paths and bodies are templates:
 * <NAME> is replaced by the id of a fixture (see fixtures()), <Rn:s> by the string s repeated n times. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(bad_input, .init = setup, .fini = th_server_stop);

/* ---------------------------------------------------------------------------------------------------------
 * Template variables and fixtures */

struct var {
    char name[16];
    int64_t value;
};
static struct var vars[48];
static int var_count;
static struct th_account foreign; /* a second account; id 0 until created */

static void var_set(const char *name, int64_t value)
{
    for (int i = 0; i < var_count; i++)
        if (strcmp(vars[i].name, name) == 0) {
            vars[i].value = value;
            return;
        }
    cr_assert(var_count < (int)(sizeof vars / sizeof vars[0]));
    snprintf(vars[var_count].name, sizeof vars[var_count].name, "%s", name);
    vars[var_count++].value = value;
}

static int64_t var_getn(const char *name, size_t len)
{
    for (int i = 0; i < var_count; i++)
        if (strlen(vars[i].name) == len && strncmp(vars[i].name, name, len) == 0) return vars[i].value;
    cr_assert_fail("template names an unknown fixture <%.*s>", (int)len, name);
    return 0;
}

static int64_t var(const char *name)
{
    return var_getn(name, strlen(name));
}

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        cr_assert(b->s != NULL);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

/* Expands a template (malloc'd result). */
static char *expand(const char *tpl)
{
    struct sbuf b = {0};
    sb_add(&b, "", 0);
    for (const char *p = tpl; *p;) {
        const char *end = p[0] == '<' ? strchr(p, '>') : NULL;
        if (end == NULL) {
            sb_add(&b, p, 1);
            p++;
            continue;
        }
        if (p[1] == 'R' && p[2] >= '0' && p[2] <= '9') {
            char *colon;
            long n = strtol(p + 2, &colon, 10);
            cr_assert(*colon == ':', "bad repeat in template %s", tpl);
            for (long i = 0; i < n; i++)
                sb_add(&b, colon + 1, (size_t)(end - colon - 1));
        } else {
            char num[32];
            int len = snprintf(num, sizeof num, "%lld", (long long)var_getn(p + 1, (size_t)(end - p - 1)));
            sb_add(&b, num, (size_t)len);
        }
        p = end + 1;
    }
    return b.s;
}

static int64_t created_id(struct th_resp *r, const char *what)
{
    cr_assert_eq(r->status, 201, "creating %s: %ld %s", what, r->status, r->body);
    int64_t id = th_int(r, "id");
    th_resp_free(r);
    return id;
}

static int64_t make_deal(const char *key, int64_t pipeline_id, int64_t manager_id, const char *ext)
{
    struct th_resp r =
        th_post(key, "/api/v1/deals",
                "{\"name\":\"Окна ПВХ\",\"price\":120000,\"pipeline_id\":%lld,\"manager_id\":%lld,"
                "\"external_id\":\"%s\"}",
                (long long)pipeline_id, (long long)manager_id, ext);
    return created_id(&r, "deal");
}

static int64_t make_task(const char *key, int64_t deal_id)
{
    struct th_resp r = th_post(key, "/api/v1/tasks",
                               "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"Перезвонить\","
                               "\"due_at\":\"2030-01-01T10:00:00Z\"}",
                               (long long)deal_id);
    return created_id(&r, "task");
}

static int64_t make_call(const char *key, int64_t manager_id, int64_t deal_id, const char *ext)
{
    struct th_resp r = th_post(key, "/api/v1/calls",
                               "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"out\","
                               "\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_s\":60,\"answered\":true,"
                               "\"external_id\":\"%s\"}",
                               (long long)manager_id, (long long)deal_id, ext);
    return created_id(&r, "call");
}

static void post_ok(const char *key, const char *path, const char *body)
{
    struct th_resp r = th_request("POST", path, key, body, NULL, NULL);
    cr_assert_eq(r.status, 200, "POST %s %s: %ld %s", path, body, r.status, r.body);
    th_resp_free(&r);
}

static int64_t make_key(const char *admin_key, const char *role)
{
    struct th_resp r = th_post(admin_key, "/api/v1/api-keys", "{\"role\":\"%s\",\"name\":\"spare\"}", role);
    return created_id(&r, "api key");
}

static bool uses_foreign(const char *s)
{
    return s != NULL && strstr(s, "<B") != NULL;
}

/* The foreign account: a pipeline, manager, loss reason, deal, task, call and key of its own. */
static void foreign_fixtures(void)
{
    th_account_new(&foreign);
    const char *key = foreign.admin_key;
    struct th_resp r = th_post(key, "/api/v1/pipelines",
                               "{\"name\":\"Чужая воронка\",\"external_id\":\"p1\",\"stages\":["
                               "{\"name\":\"Новый\",\"external_id\":\"s1\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    var_set("BPIPE", th_int(&r, "id"));
    var_set("BSTAGE",
            json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), 0), "id")));
    th_resp_free(&r);
    r = th_post(key, "/api/v1/managers",
                "{\"name\":\"Чужой менеджер\",\"role\":\"manager\",\"external_id\":\"BM1\"}");
    var_set("BM", created_id(&r, "foreign manager"));
    r = th_post(key, "/api/v1/loss-reasons", "{\"name\":\"Чужая причина\",\"external_id\":\"r1\"}");
    var_set("BLR", created_id(&r, "foreign loss reason"));
    var_set("BDEAL", make_deal(key, var("BPIPE"), var("BM"), "BD1"));
    var_set("BTASK", make_task(key, var("BDEAL")));
    var_set("BCALL", make_call(key, var("BM"), var("BDEAL"), "BC1"));
    var_set("BKEY", make_key(key, "readonly"));
}

/* Objects of the world's account every case may name, plus the foreign account when asked. */
static void fixtures(bool with_foreign)
{
    const char *key = w.acct.admin_key;
    var_count = 0;
    var_set("PIPE", w.pipeline_id);
    var_set("S0", w.stages[0]);
    var_set("S1", w.stages[1]);
    var_set("WON", w.won_stage);
    var_set("LOST", w.lost_stage);
    var_set("M1", w.manager1);
    var_set("M2", w.manager2);
    var_set("HEAD", w.head);
    var_set("LR", w.loss_reason);
    var_set("NONE", 999999999); /* an id no table holds */
    int64_t deal = make_deal(key, w.pipeline_id, w.manager1, "D1");
    var_set("DEAL", deal);
    int64_t closed = make_deal(key, w.pipeline_id, w.manager1, "D2");
    char path[96], body[96];
    snprintf(path, sizeof path, "/api/v1/deals/%lld/close", (long long)closed);
    snprintf(body, sizeof body, "{\"outcome\":\"lost\",\"loss_reason_id\":%lld}", (long long)w.loss_reason);
    post_ok(key, path, body);
    var_set("CLOSED", closed);
    int64_t m2deal = make_deal(key, w.pipeline_id, w.manager2, "M2D");
    var_set("M2DEAL", m2deal);
    var_set("TASK", make_task(key, deal));
    int64_t done = make_task(key, deal);
    snprintf(path, sizeof path, "/api/v1/tasks/%lld/complete", (long long)done);
    post_ok(key, path, "{\"result\":\"Дозвонились\"}");
    var_set("DONE", done);
    var_set("M2TASK", make_task(key, m2deal));
    var_set("CALL", make_call(key, w.manager1, deal, "C1"));
    var_set("M2CALL", make_call(key, w.manager2, m2deal, "C2"));
    struct th_resp r = th_post(key, "/api/v1/pipelines",
                               "{\"name\":\"Повторные продажи\",\"stages\":["
                               "{\"name\":\"Первичный контакт\",\"kind\":\"open\"},"
                               "{\"name\":\"Переговоры\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    var_set("P2", th_int(&r, "id"));
    var_set("P2S0",
            json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), 0), "id")));
    th_resp_free(&r);
    var_set("KEY", make_key(key, "readonly"));
    foreign.id = 0;
    if (with_foreign) foreign_fixtures();
}

/* ---------------------------------------------------------------------------------------------------------
 * "Nothing was stored": row counts of every table of an account */

static const char *const tables[] = {"managers",     "api_keys",     "pipelines",    "stages",
                                     "loss_reasons", "deals",        "deal_history", "notes",
                                     "tasks",        "task_history", "calls"};
#define TABLE_COUNT (sizeof tables / sizeof tables[0])

struct snap {
    int64_t account_id;
    int64_t rows[TABLE_COUNT];
};

static struct snap snap_take(int64_t account_id)
{
    struct snap s = {.account_id = account_id};
    for (size_t i = 0; i < TABLE_COUNT; i++)
        s.rows[i] = th_count_rows(tables[i], account_id);
    return s;
}

static void snap_same(const struct snap *before, const char *what)
{
    for (size_t i = 0; i < TABLE_COUNT; i++) {
        int64_t now = th_count_rows(tables[i], before->account_id);
        cr_assert_eq(now, before->rows[i], "%s stored something: %s had %lld rows, now %lld", what, tables[i],
                     (long long)before->rows[i], (long long)now);
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Problem checks */

static void expect_problem(const struct th_resp *r, long status, const char *code, const char *what)
{
    cr_assert_eq(r->status, status, "%s: expected %ld %s, got %ld: %s", what, status, code, r->status,
                 r->body);
    cr_assert(strncmp(r->content_type, "application/problem+json", strlen("application/problem+json")) == 0,
              "%s: Content-Type is '%s', not application/problem+json", what, r->content_type);
    cr_assert(json_is_object(r->json), "%s: the body is not a JSON object: %s", what, r->body);
    cr_assert_str_eq(th_code(r), code, "%s: code: %s", what, r->body);
    json_t *st = json_object_get(r->json, "status");
    cr_assert(json_is_integer(st) && json_integer_value(st) == status, "%s: problem status: %s", what,
              r->body);
    cr_assert(th_str(r, "type") != NULL && th_str(r, "title") != NULL, "%s: type/title missing: %s", what,
              r->body);
    const char *detail = th_str(r, "detail");
    cr_assert(detail != NULL && detail[0] != '\0', "%s: no detail: %s", what, r->body);
    cr_assert(r->request_id[0] != '\0', "%s: no X-Request-Id on the error reply", what);
}

static void expect_detail_has(const struct th_resp *r, const char *needle, const char *what)
{
    const char *detail = th_str(r, "detail");
    cr_assert(detail != NULL && strcasestr(detail, needle) != NULL, "%s: detail should mention '%s': %s",
              what, needle, r->body);
}

/* "stages" matches "stages", "stages[0].kind", ... */
static bool field_matches(const char *actual, const char *expected)
{
    size_t n = strlen(expected);
    return strncmp(actual, expected, n) == 0 && (actual[n] == '\0' || actual[n] == '[' || actual[n] == '.');
}

/* errors[] names every field of the comma-separated list, and nothing else. */
static void expect_fields(const struct th_resp *r, const char *list, const char *what)
{
    json_t *errors = json_object_get(r->json, "errors");
    cr_assert(json_is_array(errors) && json_array_size(errors) > 0, "%s: no errors[]: %s", what, r->body);
    char copy[128];
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        bool found = false;
        for (size_t i = 0; i < json_array_size(errors); i++) {
            json_t *e = json_array_get(errors, i);
            const char *field = json_string_value(json_object_get(e, "field"));
            const char *message = json_string_value(json_object_get(e, "message"));
            cr_assert(field != NULL && message != NULL && message[0], "%s: error without field/message: %s",
                      what, r->body);
            found |= field_matches(field, f);
        }
        cr_assert(found, "%s: errors[] should name '%s': %s", what, f, r->body);
    }
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const char *field = json_string_value(json_object_get(json_array_get(errors, i), "field"));
        bool listed = false;
        snprintf(copy, sizeof copy, "%s", list);
        for (char *save = NULL, *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save))
            listed |= field_matches(field, f);
        cr_assert(listed, "%s: errors[] names '%s', which is not wrong (expected %s): %s", what, field, list,
                  r->body);
    }
    /* the detail says something about the first wrong field too */
    expect_detail_has(r, json_string_value(json_object_get(json_array_get(errors, 0), "field")), what);
}

/* ---------------------------------------------------------------------------------------------------------
 * The table runner */

struct bad_case {
    char method[8];
    char path[112]; /* template */
    char body[400]; /* template; "" sends no body */
    char ctype[48]; /* "" = application/json */
    char key[8];    /* admin head m1 ro B none wrong basic empty */
    int status;
    char code[32];
    char what[64]; /* 422: the fields errors[] must name; 405: the Allow methods; else a word of detail */
    char unchanged[96]; /* template of a GET path that must read the same after; "" none */
};

#define CASE(method, path, body, ctype, key, status, code, what, unchanged)                                  \
    {                                                                                                        \
        method, path, body, ctype, key, status, code, what, unchanged                                        \
    }
#define V1 "/api/v1"

static const char *key_for(const char *name, const char **extra_header)
{
    *extra_header = NULL;
    if (!strcmp(name, "admin")) return w.acct.admin_key;
    if (!strcmp(name, "head")) return w.head_key;
    if (!strcmp(name, "m1")) return w.manager1_key;
    if (!strcmp(name, "m2")) return w.manager2_key;
    if (!strcmp(name, "ro")) return w.readonly_key;
    if (!strcmp(name, "B")) return foreign.admin_key;
    if (!strcmp(name, "wrong")) return "sok_thisKeyWasNeverIssuedByTheService0000000";
    if (!strcmp(name, "basic")) *extra_header = "Authorization: Basic YWRtaW46c2VjcmV0"; /* admin:secret */
    if (!strcmp(name, "empty")) *extra_header = "Authorization: Bearer ";
    if (!strcmp(name, "none") || *extra_header != NULL) return NULL;
    cr_assert_fail("unknown key name %s", name);
    return NULL;
}

static struct th_resp get_json(const char *key, const char *path)
{
    struct th_resp r = th_request("GET", path, key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    return r;
}

/* Every token of Allow is in the list and every method of the list is in Allow. */
static void expect_allow(const struct th_resp *r, const char *list, const char *what)
{
    char copy[64];
    int listed = 0, given = 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save), listed++) {
        char allow[64];
        bool found = false;
        snprintf(allow, sizeof allow, "%s", r->allow);
        for (char *s2 = NULL, *a = strtok_r(allow, ", ", &s2); a; a = strtok_r(NULL, ", ", &s2))
            found |= strcmp(a, m) == 0;
        cr_assert(found, "%s: Allow '%s' lacks %s", what, r->allow, m);
    }
    char allow[64];
    snprintf(allow, sizeof allow, "%s", r->allow);
    for (char *s2 = NULL, *a = strtok_r(allow, ", ", &s2); a; a = strtok_r(NULL, ", ", &s2))
        given++;
    cr_assert_eq(given, listed, "%s: Allow '%s' should be exactly %s", what, r->allow, list);
}

static void run_case(const struct bad_case *c)
{
    bool with_foreign =
        uses_foreign(c->path) || uses_foreign(c->body) || uses_foreign(c->unchanged) || !strcmp(c->key, "B");
    fixtures(with_foreign);
    char *path = expand(c->path);
    char *body = c->body[0] ? expand(c->body) : NULL;
    char *check = c->unchanged[0] ? expand(c->unchanged) : NULL;
    char what[640];
    snprintf(what, sizeof what, "%s %s %.300s (key %s)", c->method, path, body ? body : "", c->key);

    struct snap mine = snap_take(w.acct.id), theirs = {0};
    if (with_foreign) theirs = snap_take(foreign.id);
    const char *check_key = uses_foreign(c->unchanged) ? foreign.admin_key : w.acct.admin_key;
    struct th_resp before = {0};
    if (check) before = get_json(check_key, check);

    const char *extra;
    const char *key = key_for(c->key, &extra);
    struct th_resp r = th_request(c->method, path, key, body, c->ctype[0] ? c->ctype : NULL, extra);
    expect_problem(&r, c->status, c->code, what);
    if (c->status == 422 && c->what[0])
        expect_fields(&r, c->what, what);
    else if (c->status == 422)
        cr_assert(json_array_size(json_object_get(r.json, "errors")) > 0, "%s: no errors[]: %s", what,
                  r.body);
    else if (c->status == 405)
        expect_allow(&r, c->what, what);
    else if (c->what[0])
        expect_detail_has(&r, c->what, what);

    snap_same(&mine, what);
    if (with_foreign) snap_same(&theirs, what);
    if (check) {
        struct th_resp after = get_json(check_key, check);
        cr_assert(json_equal(before.json, after.json), "%s changed %s:\nbefore %s\nafter  %s", what, check,
                  before.body, after.body);
        th_resp_free(&after);
        th_resp_free(&before);
    }
    th_resp_free(&r);
    free(path);
    free(body);
    free(check);
}

#define DEAL_BODY(extra) "{\"name\":\"Окна\",\"price\":1000,\"pipeline_id\":<PIPE>" extra "}"
#define TASK_BODY(extra)                                                                                     \
    "{\"deal_id\":<DEAL>,\"type\":\"call\",\"text\":\"Позвонить\",\"due_at\":\"2030-01-01T10:00:00Z\"" extra \
    "}"
#define CALL_BODY(extra)                                                                                     \
    "{\"manager_id\":<M1>,\"direction\":\"out\",\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_s\":60,"  \
    "\"answered\":true" extra "}"

#define PARAMS(name, ...)                                                                                    \
    ParameterizedTestParameters(bad_input, name)                                                             \
    {                                                                                                        \
        static struct bad_case cases[] = {__VA_ARGS__};                                                      \
        return cr_make_param_array(struct bad_case, cases, sizeof cases / sizeof cases[0]);                  \
    }                                                                                                        \
    ParameterizedTest(struct bad_case *c, bad_input, name)                                                   \
    {                                                                                                        \
        run_case(c);                                                                                         \
    }

/* ---------------------------------------------------------------------------------------------------------
 * 400: unreadable bodies */

PARAMS(malformed_json,
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1", "", "admin", 400, "malformed_request",
            "JSON", ""),
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,}", "", "admin", 400, "malformed_request",
            "JSON", ""),
       CASE("POST", V1 "/deals", "name=Окна&price=1", "", "admin", 400, "malformed_request", "JSON", ""),
       CASE("POST", V1 "/deals", "{'name':'Окна'}", "", "admin", 400, "malformed_request", "JSON", ""),
       CASE("POST", V1 "/deals", DEAL_BODY("") " {}", "", "admin", 400, "malformed_request", "JSON", ""),
       CASE("POST", V1 "/deals", "{\"name\":\"\xff\xfe\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin",
            400, "malformed_request", "JSON", ""),
       CASE("POST", V1 "/deals", "{\"name\":\"a\tb\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 400,
            "malformed_request", "JSON", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":", "", "admin", 400, "malformed_request", "JSON",
            V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":won}", "", "admin", 400, "malformed_request",
            "JSON", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/tasks", "{\"deal_id\":<DEAL>,,}", "", "admin", 400, "malformed_request", "JSON", ""),
       CASE("POST", V1 "/managers", "[{\"name\":\"x\"}", "", "admin", 400, "malformed_request", "JSON", ""),
       CASE("PATCH", V1 "/account", "{\"name\":\"x\"", "", "admin", 400, "malformed_request", "JSON",
            V1 "/account"))

PARAMS(duplicate_keys,
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"name\":\"Двери\",\"price\":1,\"pipeline_id\":<PIPE>}",
            "", "admin", 400, "malformed_request", "duplicate", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"price\":1,\"price\":2}", "", "admin", 400, "malformed_request",
            "duplicate", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/pipelines",
            "{\"name\":\"x\",\"stages\":[{\"name\":\"a\",\"kind\":\"open\",\"kind\":\"won\"}]}", "", "admin",
            400, "malformed_request", "duplicate", ""),
       CASE("POST", V1 "/tasks", TASK_BODY(",\"deal_id\":<DEAL>"), "", "admin", 400, "malformed_request",
            "duplicate", ""))

/* The depth limit is 32 levels: the body object is level 1. */
static char *nested_body(int depth)
{
    struct sbuf b = {0};
    sb_add(&b, "{\"deep\":", strlen("{\"deep\":"));
    for (int i = 1; i < depth; i++)
        sb_add(&b, "[", 1);
    for (int i = 1; i < depth; i++)
        sb_add(&b, "]", 1);
    sb_add(&b, "}", 1);
    return b.s;
}

Test(bad_input, nesting_deeper_than_32_levels)
{
    struct snap s = snap_take(w.acct.id);
    char *deep = nested_body(33);
    struct th_resp r = th_request("POST", V1 "/deals", w.acct.admin_key, deep, NULL, NULL);
    expect_problem(&r, 400, "malformed_request", "33 levels");
    expect_detail_has(&r, "32", "33 levels");
    th_resp_free(&r);
    free(deep);

    /* much deeper, on another route */
    struct sbuf b = {0};
    sb_add(&b, "{\"name\":", 8);
    for (int i = 0; i < 5000; i++)
        sb_add(&b, "{\"a\":", 5);
    sb_add(&b, "1", 1);
    for (int i = 0; i < 5000; i++)
        sb_add(&b, "}", 1);
    sb_add(&b, "}", 1);
    r = th_request("POST", V1 "/managers", w.acct.admin_key, b.s, NULL, NULL);
    expect_problem(&r, 400, "malformed_request", "5001 levels");
    th_resp_free(&r);
    free(b.s);
    snap_same(&s, "nesting");

    /* exactly 32 levels is readable: the unknown field is what is wrong then */
    deep = nested_body(32);
    r = th_request("POST", V1 "/deals", w.acct.admin_key, deep, NULL, NULL);
    expect_problem(&r, 422, "validation_failed", "32 levels");
    expect_fields(&r, "deep,name,price,pipeline_id", "32 levels");
    th_resp_free(&r);
    free(deep);
    snap_same(&s, "nesting");

    /* brackets inside strings are not nesting */
    r = th_post(
        w.acct.admin_key, V1 "/deals",
        "{\"name\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{\",\"price\":1,\"pipeline_id\":%lld}",
        (long long)w.pipeline_id);
    cr_assert_eq(r.status, 201, "brackets in a string: %s", r.body);
    th_resp_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------
 * 422: wrong types, missing and unknown fields, limits, unknown ids */

PARAMS(
    wrong_types,
    CASE("POST", V1 "/deals", "{\"name\":123,\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":null,\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":\"100\",\"pipeline_id\":<PIPE>}", "", "admin",
         422, "validation_failed", "price", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1.5,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "price", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1e3,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "price", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":true,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "price", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":\"<PIPE>\"}", "", "admin", 422,
         "validation_failed", "pipeline_id", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":0}", "", "admin", 422,
         "validation_failed", "pipeline_id", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":-5}", "", "admin", 422,
         "validation_failed", "pipeline_id", ""),
    CASE("POST", V1 "/deals", DEAL_BODY(",\"stage_id\":[<S0>]"), "", "admin", 422, "validation_failed",
         "stage_id", ""),
    CASE("POST", V1 "/deals", DEAL_BODY(",\"manager_id\":{\"id\":<M1>}"), "", "admin", 422,
         "validation_failed", "manager_id", ""),
    CASE("POST", V1 "/deals", DEAL_BODY(",\"external_id\":42"), "", "admin", 422, "validation_failed",
         "external_id", ""),
    CASE("POST", V1 "/deals", "{\"name\":[],\"price\":\"1\",\"pipeline_id\":true}", "", "admin", 422,
         "validation_failed", "name,price,pipeline_id", ""),
    CASE("PATCH", V1 "/deals/<DEAL>", "{\"price\":\"5\"}", "", "admin", 422, "validation_failed", "price",
         V1 "/deals/<DEAL>"),
    CASE("PATCH", V1 "/deals/<DEAL>", "{\"stage_id\":\"<S1>\"}", "", "admin", 422, "validation_failed",
         "stage_id", V1 "/deals/<DEAL>"),
    CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":7}", "", "admin", 422, "validation_failed", "name",
         V1 "/deals/<DEAL>"),
    CASE("PATCH", V1 "/deals/<DEAL>", "{\"manager_id\":null}", "", "admin", 422, "validation_failed",
         "manager_id", V1 "/deals/<DEAL>"),
    CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"maybe\"}", "", "admin", 422, "validation_failed",
         "outcome", V1 "/deals/<DEAL>"),
    CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":1}", "", "admin", 422, "validation_failed",
         "outcome", V1 "/deals/<DEAL>"),
    CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"lost\",\"loss_reason_id\":\"r1\"}", "", "admin",
         422, "validation_failed", "loss_reason_id", V1 "/deals/<DEAL>"),
    CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"won\",\"loss_reason_id\":<LR>}", "", "admin", 422,
         "validation_failed", "loss_reason_id", V1 "/deals/<DEAL>"),
    /* valid JSON whose number is out of range is a value out of range (422), not an unreadable body (400) */
    CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":99999999999999999999,\"pipeline_id\":<PIPE>}", "",
         "admin", 422, "validation_failed", "price", ""),
    CASE("POST", V1 "/tasks",
         "{\"deal_id\":<DEAL>,\"type\":\"lunch\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:00Z\"}", "",
         "admin", 422, "validation_failed", "type", ""),
    CASE("POST", V1 "/tasks",
         "{\"deal_id\":<DEAL>,\"type\":\"rejection_control\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:"
         "00Z\"}",
         "", "admin", 422, "validation_failed", "type", ""),
    CASE("POST", V1 "/tasks", "{\"deal_id\":<DEAL>,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"tomorrow\"}",
         "", "admin", 422, "validation_failed", "due_at", ""),
    CASE("POST", V1 "/tasks", "{\"deal_id\":<DEAL>,\"type\":\"call\",\"text\":\"x\",\"due_at\":1893492000}",
         "", "admin", 422, "validation_failed", "due_at", ""),
    CASE("POST", V1 "/tasks",
         "{\"deal_id\":\"<DEAL>\",\"type\":\"call\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:00Z\"}", "",
         "admin", 422, "validation_failed", "deal_id", ""),
    CASE("POST", V1 "/tasks",
         "{\"deal_id\":<DEAL>,\"type\":\"call\",\"text\":5,\"due_at\":\"2030-01-01T10:00:00Z\"}", "", "admin",
         422, "validation_failed", "text", ""),
    CASE("PATCH", V1 "/tasks/<TASK>", "{\"due_at\":\"2026-13-45T00:00:00Z\"}", "", "admin", 422,
         "validation_failed", "due_at", V1 "/tasks/<TASK>"),
    CASE("POST", V1 "/tasks/<TASK>/complete", "{\"result\":42}", "", "admin", 422, "validation_failed",
         "result", V1 "/tasks/<TASK>"),
    CASE("POST", V1 "/calls",
         "{\"manager_id\":<M1>,\"direction\":\"out\",\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_s\":"
         "60,"
         "\"answered\":\"yes\"}",
         "", "admin", 422, "validation_failed", "answered", ""),
    CASE("POST", V1 "/calls",
         "{\"manager_id\":<M1>,\"direction\":\"out\",\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_s\":-"
         "1,"
         "\"answered\":true}",
         "", "admin", 422, "validation_failed", "duration_s", ""),
    CASE("POST", V1 "/calls",
         "{\"manager_id\":<M1>,\"direction\":\"sideways\",\"started_at\":\"2026-01-10T10:00:00Z\","
         "\"duration_s\":60,\"answered\":true}",
         "", "admin", 422, "validation_failed", "direction", ""),
    CASE("POST", V1 "/calls",
         "{\"manager_id\":<M1>,\"direction\":\"in\",\"started_at\":\"yesterday\",\"duration_s\":60,"
         "\"answered\":true}",
         "", "admin", 422, "validation_failed", "started_at", ""),
    CASE("POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"manager\",\"weight\":0}", "", "admin", 422,
         "validation_failed", "weight", ""),
    CASE("POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"manager\",\"weight\":101}", "", "admin", 422,
         "validation_failed", "weight", ""),
    CASE("POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"boss\"}", "", "admin", 422,
         "validation_failed", "role", ""),
    CASE("POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"manager\",\"active\":\"true\"}", "", "admin",
         422, "validation_failed", "active", ""),
    CASE("POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"manager\",\"email\":\"not-an-email\"}", "",
         "admin", 422, "validation_failed", "email", ""),
    CASE("PATCH", V1 "/managers/<M1>", "{\"distribution_enabled\":1}", "", "admin", 422, "validation_failed",
         "distribution_enabled", V1 "/managers/<M1>"),
    CASE("POST", V1 "/pipelines", "{\"name\":\"x\",\"stages\":\"open\"}", "", "admin", 422,
         "validation_failed", "stages", ""),
    CASE("POST", V1 "/pipelines", "{\"name\":\"x\",\"stages\":[{\"name\":\"a\",\"kind\":\"middle\"}]}", "",
         "admin", 422, "validation_failed", "stages[0].kind", ""),
    CASE("POST", V1 "/api-keys", "{\"role\":\"root\",\"name\":\"k\"}", "", "admin", 422, "validation_failed",
         "role", ""),
    CASE("PATCH", V1 "/account", "{\"timezone\":\"Mars/Olympus_Mons\"}", "", "admin", 422,
         "validation_failed", "timezone", V1 "/account"),
    CASE("PATCH", V1 "/account", "{\"name\":false}", "", "admin", 422, "validation_failed", "name",
         V1 "/account"),
    CASE("POST", V1 "/deals", "[]", "", "admin", 422, "validation_failed", "", ""),
    CASE("POST", V1 "/deals", "[" DEAL_BODY("") "]", "", "admin", 422, "validation_failed", "", ""))

PARAMS(missing_required_fields,
       CASE("POST", V1 "/deals", "{}", "", "admin", 422, "validation_failed", "name,price,pipeline_id", ""),
       CASE("POST", V1 "/deals", "{\"price\":1}", "", "admin", 422, "validation_failed", "name,pipeline_id",
            ""),
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"pipeline_id\":<PIPE>}", "", "admin", 422,
            "validation_failed", "price", ""),
       CASE("POST", V1 "/deals", "{}", "", "m1", 422, "validation_failed", "name,price,pipeline_id", ""),
       CASE("POST", V1 "/tasks", "{}", "", "admin", 422, "validation_failed", "deal_id,type,text,due_at", ""),
       CASE("POST", V1 "/tasks", "{\"deal_id\":<DEAL>,\"type\":\"call\"}", "", "admin", 422,
            "validation_failed", "text,due_at", ""),
       CASE("POST", V1 "/calls", "{}", "", "admin", 422, "validation_failed",
            "manager_id,direction,started_at,duration_s,answered", ""),
       CASE("POST", V1 "/managers", "{}", "", "admin", 422, "validation_failed", "name,role", ""),
       CASE("POST", V1 "/pipelines", "{}", "", "admin", 422, "validation_failed", "name,stages", ""),
       CASE("POST", V1 "/pipelines", "{\"name\":\"x\",\"stages\":[{\"kind\":\"open\"},{\"name\":\"b\"}]}", "",
            "admin", 422, "validation_failed", "stages[0].name,stages[1].kind", ""),
       CASE("POST", V1 "/loss-reasons", "{}", "", "admin", 422, "validation_failed", "name", ""),
       CASE("POST", V1 "/api-keys", "{}", "", "admin", 422, "validation_failed", "role,name", ""),
       CASE("POST", V1 "/api-keys", "{\"role\":\"manager\",\"name\":\"k\"}", "", "admin", 422,
            "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/deals/<DEAL>/close", "{}", "", "admin", 422, "validation_failed", "outcome",
            V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{}", "", "admin", 422, "validation_failed", "stage_id",
            V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<DEAL>/notes", "{}", "", "admin", 422, "validation_failed", "text", ""))

PARAMS(unknown_fields,
       CASE("POST", V1 "/deals", DEAL_BODY(",\"colour\":\"red\""), "", "admin", 422, "validation_failed",
            "colour", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"status\":\"won\""), "", "admin", 422, "validation_failed",
            "status", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"id\":5"), "", "admin", 422, "validation_failed", "id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"Name\":\"x\""), "", "admin", 422, "validation_failed", "Name",
            ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"nme\":\"Двери\"}", "", "admin", 422, "validation_failed", "nme",
            V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":\"Двери\",\"closed_at\":null}", "", "admin", 422,
            "validation_failed", "closed_at", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"won\",\"reason\":\"x\"}", "", "admin", 422,
            "validation_failed", "reason", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/tasks", TASK_BODY(",\"priority\":1"), "", "admin", 422, "validation_failed",
            "priority", ""),
       CASE("PATCH", V1 "/tasks/<TASK>", "{\"state\":\"done\"}", "", "admin", 422, "validation_failed",
            "state", V1 "/tasks/<TASK>"),
       CASE("POST", V1 "/calls", CALL_BODY(",\"recording\":\"x.mp3\""), "", "admin", 422, "validation_failed",
            "recording", ""),
       CASE("PATCH", V1 "/managers/<M1>", "{\"in_focus\":true}", "", "admin", 422, "validation_failed",
            "in_focus", V1 "/managers/<M1>"),
       CASE("POST", V1 "/pipelines",
            "{\"name\":\"x\",\"stages\":[{\"name\":\"a\",\"kind\":\"open\",\"colour\":\"red\"}]}", "",
            "admin", 422, "validation_failed", "stages[0].colour", ""),
       CASE("POST", V1 "/loss-reasons", "{\"name\":\"x\",\"weight\":1}", "", "admin", 422,
            "validation_failed", "weight", ""),
       CASE("PATCH", V1 "/account", "{\"currency\":\"RUB\"}", "", "admin", 422, "validation_failed",
            "currency", V1 "/account"),
       CASE("POST", V1 "/api-keys", "{\"role\":\"readonly\",\"name\":\"k\",\"key\":\"mine\"}", "", "admin",
            422, "validation_failed", "key", ""))

/* Limits count characters, not bytes: 256 Cyrillic letters are 512 bytes, 256 emoji 1024. */
PARAMS(
    strings_over_their_limits,
    CASE("POST", V1 "/deals", "{\"name\":\"<R256:a>\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"<R256:я>\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"<R256:😀>\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"<R256:\\u0436>\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin",
         422, "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", "{\"name\":\"\",\"price\":1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("POST", V1 "/deals", DEAL_BODY(",\"external_id\":\"<R129:ж>\""), "", "admin", 422,
         "validation_failed", "external_id", ""),
    CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":\"<R256:ш>\"}", "", "admin", 422, "validation_failed",
         "name", V1 "/deals/<DEAL>"),
    CASE("POST", V1 "/managers", "{\"name\":\"<R256:Щ>\",\"role\":\"manager\"}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("PATCH", V1 "/managers/<M1>", "{\"name\":\"<R256:Щ>\"}", "", "admin", 422, "validation_failed",
         "name", V1 "/managers/<M1>"),
    CASE("POST", V1 "/pipelines", "{\"name\":\"<R256:П>\",\"stages\":[{\"name\":\"a\",\"kind\":\"open\"}]}",
         "", "admin", 422, "validation_failed", "name", ""),
    CASE("POST", V1 "/pipelines", "{\"name\":\"П\",\"stages\":[{\"name\":\"<R256:э>\",\"kind\":\"open\"}]}",
         "", "admin", 422, "validation_failed", "stages[0].name", ""),
    CASE("POST", V1 "/loss-reasons", "{\"name\":\"<R256:Д>\"}", "", "admin", 422, "validation_failed", "name",
         ""),
    CASE("POST", V1 "/tasks",
         "{\"deal_id\":<DEAL>,\"type\":\"call\",\"text\":\"<R10001:т>\",\"due_at\":\"2030-01-01T10:00:00Z\"}",
         "", "admin", 422, "validation_failed", "text", ""),
    CASE("POST", V1 "/deals/<DEAL>/notes", "{\"text\":\"<R10001:з>\"}", "", "admin", 422, "validation_failed",
         "text", ""),
    CASE("POST", V1 "/api-keys", "{\"role\":\"readonly\",\"name\":\"<R256:к>\"}", "", "admin", 422,
         "validation_failed", "name", ""),
    CASE("PATCH", V1 "/account", "{\"name\":\"<R256:ё>\"}", "", "admin", 422, "validation_failed", "name",
         V1 "/account"))

Test(bad_input, strings_at_their_limits_are_accepted_whatever_their_byte_length)
{
    static const char *const letters[] = {"a", "я", "😀"};
    for (size_t i = 0; i < sizeof letters / sizeof letters[0]; i++) {
        struct sbuf name = {0};
        sb_add(&name, "", 0);
        for (int k = 0; k < 255; k++)
            sb_add(&name, letters[i], strlen(letters[i]));
        struct th_resp r =
            th_post(w.acct.admin_key, V1 "/deals", "{\"name\":\"%s\",\"price\":1,\"pipeline_id\":%lld}",
                    name.s, (long long)w.pipeline_id);
        cr_assert_eq(r.status, 201, "255 x '%s' (%zu bytes): %s", letters[i], name.len, r.body);
        cr_assert_str_eq(th_str(&r, "name"), name.s);
        th_resp_free(&r);
        free(name.s);
    }
}

PARAMS(negative_prices,
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":-1,\"pipeline_id\":<PIPE>}", "", "admin", 422,
            "validation_failed", "price", ""),
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":-9223372036854775808,\"pipeline_id\":<PIPE>}",
            "", "admin", 422, "validation_failed", "price", ""),
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":-1,\"pipeline_id\":<PIPE>}", "", "m1", 422,
            "validation_failed", "price", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"price\":-100}", "", "admin", 422, "validation_failed", "price",
            V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"price\":-1,\"name\":\"Двери\",\"stage_id\":<S1>}", "", "admin",
            422, "validation_failed", "price", V1 "/deals/<DEAL>"))

PARAMS(unknown_ids_in_the_body,
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":<NONE>}", "", "admin", 422,
            "validation_failed", "pipeline_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"manager_id\":<NONE>"), "", "admin", 422, "validation_failed",
            "manager_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"stage_id\":<NONE>"), "", "admin", 422, "validation_failed",
            "stage_id", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"stage_id\":<NONE>}", "", "admin", 422, "validation_failed",
            "stage_id", V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"manager_id\":<NONE>,\"name\":\"Двери\"}", "", "admin", 422,
            "validation_failed", "manager_id", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"lost\",\"loss_reason_id\":<NONE>}", "", "admin",
            422, "validation_failed", "loss_reason_id", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{\"stage_id\":<NONE>}", "", "admin", 422,
            "validation_failed", "stage_id", V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{\"stage_id\":<S0>,\"manager_id\":<NONE>}", "", "admin",
            422, "validation_failed", "manager_id", V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<DEAL>/notes", "{\"text\":\"x\",\"manager_id\":<NONE>}", "", "admin", 422,
            "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/tasks",
            "{\"deal_id\":<NONE>,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:00Z\"}", "",
            "admin", 422, "validation_failed", "deal_id", ""),
       CASE("POST", V1 "/tasks", TASK_BODY(",\"manager_id\":<NONE>"), "", "admin", 422, "validation_failed",
            "manager_id", ""),
       CASE("PATCH", V1 "/tasks/<TASK>", "{\"manager_id\":<NONE>}", "", "admin", 422, "validation_failed",
            "manager_id", V1 "/tasks/<TASK>"),
       CASE("POST", V1 "/calls",
            "{\"manager_id\":<NONE>,\"direction\":\"out\",\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_"
            "s\":60,"
            "\"answered\":true}",
            "", "admin", 422, "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/calls", CALL_BODY(",\"deal_id\":<NONE>"), "", "admin", 422, "validation_failed",
            "deal_id", ""),
       CASE("POST", V1 "/api-keys", "{\"role\":\"manager\",\"manager_id\":<NONE>,\"name\":\"k\"}", "",
            "admin", 422, "validation_failed", "manager_id", ""),
       CASE("PATCH", V1 "/pipelines/<PIPE>",
            "{\"name\":\"Новое имя\",\"stages\":[{\"id\":<NONE>,\"name\":\"x\"}]}", "", "admin", 422,
            "validation_failed", "stages", V1 "/pipelines/<PIPE>"))

/* ---------------------------------------------------------------------------------------------------------
 * Another account's ids: 422 in a body, 404 in a path (ext: lookups too); the other account is untouched */

PARAMS(foreign_ids_in_the_body,
       CASE("POST", V1 "/deals", "{\"name\":\"Окна\",\"price\":1,\"pipeline_id\":<BPIPE>}", "", "admin", 422,
            "validation_failed", "pipeline_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"manager_id\":<BM>"), "", "admin", 422, "validation_failed",
            "manager_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"stage_id\":<BSTAGE>"), "", "admin", 422, "validation_failed",
            "stage_id", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"stage_id\":<BSTAGE>}", "", "admin", 422, "validation_failed",
            "stage_id", V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"manager_id\":<BM>}", "", "admin", 422, "validation_failed",
            "manager_id", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"lost\",\"loss_reason_id\":<BLR>}", "", "admin",
            422, "validation_failed", "loss_reason_id", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{\"stage_id\":<BSTAGE>}", "", "admin", 422,
            "validation_failed", "stage_id", V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<DEAL>/notes", "{\"text\":\"x\",\"manager_id\":<BM>}", "", "admin", 422,
            "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/tasks",
            "{\"deal_id\":<BDEAL>,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:00Z\"}", "",
            "admin", 422, "validation_failed", "deal_id", V1 "/deals/<BDEAL>"),
       CASE("POST", V1 "/tasks", TASK_BODY(",\"manager_id\":<BM>"), "", "admin", 422, "validation_failed",
            "manager_id", ""),
       CASE("PATCH", V1 "/tasks/<TASK>", "{\"manager_id\":<BM>}", "", "admin", 422, "validation_failed",
            "manager_id", V1 "/tasks/<TASK>"),
       CASE("POST", V1 "/calls",
            "{\"manager_id\":<BM>,\"direction\":\"out\",\"started_at\":\"2026-01-10T10:00:00Z\",\"duration_"
            "s\":60,"
            "\"answered\":true}",
            "", "admin", 422, "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/calls", CALL_BODY(",\"deal_id\":<BDEAL>"), "", "admin", 422, "validation_failed",
            "deal_id", ""),
       CASE("POST", V1 "/api-keys", "{\"role\":\"manager\",\"manager_id\":<BM>,\"name\":\"k\"}", "", "admin",
            422, "validation_failed", "manager_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"manager_id\":<BM>"), "", "head", 422, "validation_failed",
            "manager_id", ""))

PARAMS(foreign_ids_in_the_path, CASE("GET", V1 "/deals/<BDEAL>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:BD1", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<BDEAL>/history", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<BDEAL>/notes", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:BD1/history", "", "", "ro", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/deals/<BDEAL>", "{\"name\":\"Чужое\"}", "", "admin", 404, "not_found", "",
            V1 "/deals/<BDEAL>"),
       CASE("PATCH", V1 "/deals/ext:BD1", "{\"price\":1}", "", "admin", 404, "not_found", "",
            V1 "/deals/<BDEAL>"),
       CASE("POST", V1 "/deals/<BDEAL>/close", "{\"outcome\":\"won\"}", "", "admin", 404, "not_found", "",
            V1 "/deals/<BDEAL>"),
       CASE("POST", V1 "/deals/ext:BD1/close", "{\"outcome\":\"won\"}", "", "head", 404, "not_found", "",
            V1 "/deals/<BDEAL>"),
       CASE("POST", V1 "/deals/<BDEAL>/reopen", "{\"stage_id\":<S0>}", "", "admin", 404, "not_found", "",
            V1 "/deals/<BDEAL>"),
       CASE("POST", V1 "/deals/<BDEAL>/notes", "{\"text\":\"x\"}", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/tasks/<BTASK>", "", "", "admin", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/tasks/<BTASK>", "{\"text\":\"x\"}", "", "admin", 404, "not_found", "",
            V1 "/tasks/<BTASK>"),
       CASE("POST", V1 "/tasks/<BTASK>/complete", "{}", "", "admin", 404, "not_found", "",
            V1 "/tasks/<BTASK>"),
       CASE("DELETE", V1 "/tasks/<BTASK>", "", "", "admin", 404, "not_found", "", V1 "/tasks/<BTASK>"),
       CASE("GET", V1 "/calls/<BCALL>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/calls/ext:BC1", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/managers/<BM>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/managers/ext:BM1", "", "", "m1", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/managers/<BM>", "{\"name\":\"x\"}", "", "admin", 404, "not_found", "",
            V1 "/managers/<BM>"),
       CASE("PATCH", V1 "/managers/ext:BM1", "{\"weight\":5}", "", "admin", 404, "not_found", "",
            V1 "/managers/<BM>"),
       CASE("GET", V1 "/pipelines/<BPIPE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/pipelines/<BPIPE>", "{\"name\":\"x\"}", "", "admin", 404, "not_found", "",
            V1 "/pipelines/<BPIPE>"),
       CASE("GET", V1 "/loss-reasons/<BLR>", "", "", "admin", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/loss-reasons/<BLR>", "{\"name\":\"x\"}", "", "admin", 404, "not_found", "",
            V1 "/loss-reasons/<BLR>"),
       CASE("DELETE", V1 "/api-keys/<BKEY>", "", "", "admin", 404, "not_found", "", ""))

Test(bad_input, foreign_key_cannot_be_deleted_and_keeps_working)
{
    fixtures(true);
    /* a key of the other account whose secret the test holds: A's admin tries to delete it */
    char key[64];
    th_key_new(&foreign, "readonly", 0, key);
    struct th_resp r = th_get(foreign.admin_key, V1 "/api-keys?limit=500");
    json_t *items = json_object_get(r.json, "items");
    int64_t id = json_integer_value(json_object_get(json_array_get(items, json_array_size(items) - 1), "id"));
    th_resp_free(&r);
    char path[64];
    snprintf(path, sizeof path, V1 "/api-keys/%lld", (long long)id);
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    expect_problem(&r, 404, "not_found", "deleting another account's key");
    th_resp_free(&r);
    r = th_get(key, V1 "/account");
    cr_assert_eq(r.status, 200, "the foreign key must still work: %s", r.body);
    cr_assert_eq(th_int(&r, "id"), foreign.id);
    th_resp_free(&r);
}

Test(bad_input, same_external_id_in_two_accounts_resolves_to_the_own_object)
{
    fixtures(true);
    /* the same external_id in both accounts: B has deal BD1, give A one too; each key sees its own */
    int64_t mine = make_deal(w.acct.admin_key, w.pipeline_id, w.manager1, "BD1");
    struct th_resp r = th_get(w.acct.admin_key, V1 "/deals/ext:BD1");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), mine);
    th_resp_free(&r);
    r = th_get(foreign.admin_key, V1 "/deals/ext:BD1");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "id"), var("BDEAL"));
    th_resp_free(&r);
    r = th_get(foreign.admin_key, V1 "/deals/ext:D1");
    expect_problem(&r, 404, "not_found", "A's ext id with B's key");
    th_resp_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------
 * 415, empty body, 413 */

PARAMS(wrong_content_type,
       CASE("POST", V1 "/deals", DEAL_BODY(""), "text/plain", "admin", 415, "unsupported_media_type",
            "application/json", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "application/x-www-form-urlencoded", "admin", 415,
            "unsupported_media_type", "application/json", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "application/jsonp", "admin", 415, "unsupported_media_type",
            "application/json", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "application/xml", "admin", 415, "unsupported_media_type",
            "application/json", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":\"Двери\"}", "text/plain", "admin", 415,
            "unsupported_media_type", "application/json", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"won\"}", "multipart/form-data; boundary=x",
            "admin", 415, "unsupported_media_type", "application/json", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/tasks", TASK_BODY(""), "application/x-ndjson", "admin", 415,
            "unsupported_media_type", "application/json", ""),
       CASE("POST", V1 "/managers", "{\"name\":\"x\",\"role\":\"manager\"}", "text/json", "admin", 415,
            "unsupported_media_type", "application/json", ""))

Test(bad_input, empty_body_lists_the_required_fields)
{
    struct snap s = snap_take(w.acct.id);
    struct th_resp r = th_request("POST", V1 "/deals", w.acct.admin_key, "", NULL, NULL);
    expect_problem(&r, 422, "validation_failed", "empty body");
    expect_fields(&r, "name,price,pipeline_id", "empty POST /deals");
    th_resp_free(&r);
    r = th_request("POST", V1 "/deals", w.acct.admin_key, NULL, NULL, NULL);
    expect_problem(&r, 422, "validation_failed", "no body");
    expect_fields(&r, "name,price,pipeline_id", "POST /deals without a body");
    th_resp_free(&r);
    r = th_request("POST", V1 "/tasks", w.manager1_key, "", NULL, NULL);
    expect_problem(&r, 422, "validation_failed", "empty body");
    expect_fields(&r, "deal_id,type,text,due_at", "empty POST /tasks");
    th_resp_free(&r);
    snap_same(&s, "empty bodies");
}

static char *deal_body_of_size(size_t total, int64_t pipeline_id)
{
    char tail[96];
    int tail_len =
        snprintf(tail, sizeof tail, "\",\"price\":1,\"pipeline_id\":%lld}", (long long)pipeline_id);
    const char head[] = "{\"name\":\"";
    size_t fill = total - (sizeof head - 1) - (size_t)tail_len;
    char *b = malloc(total + 1);
    cr_assert(b != NULL);
    memcpy(b, head, sizeof head - 1);
    memset(b + sizeof head - 1, 'a', fill);
    memcpy(b + sizeof head - 1 + fill, tail, (size_t)tail_len + 1);
    cr_assert_eq(strlen(b), total);
    return b;
}

Test(bad_input, body_over_1_mib_is_413)
{
    fixtures(false);
    struct snap s = snap_take(w.acct.id);
    char *big = deal_body_of_size(1048577, w.pipeline_id);
    struct th_resp r = th_request("POST", V1 "/deals", w.acct.admin_key, big, NULL, NULL);
    expect_problem(&r, 413, "payload_too_large", "1 MiB + 1 byte");
    expect_detail_has(&r, "large", "1 MiB + 1 byte");
    th_resp_free(&r);
    free(big);

    big = deal_body_of_size(3 * 1048576, w.pipeline_id);
    char path[64];
    snprintf(path, sizeof path, V1 "/deals/%lld", (long long)var("DEAL"));
    struct th_resp before = get_json(w.acct.admin_key, path);
    r = th_request("PATCH", path, w.acct.admin_key, big, NULL, NULL);
    expect_problem(&r, 413, "payload_too_large", "3 MiB PATCH");
    th_resp_free(&r);
    struct th_resp after = get_json(w.acct.admin_key, path);
    cr_assert(json_equal(before.json, after.json), "a 413 PATCH changed the deal: %s", after.body);
    th_resp_free(&before);
    th_resp_free(&after);
    free(big);

    /* without a Content-Length: the server counts the bytes it reads */
    big = deal_body_of_size(2 * 1048576, w.pipeline_id);
    r = th_request("POST", V1 "/deals", w.acct.admin_key, big, NULL, "Transfer-Encoding: chunked");
    expect_problem(&r, 413, "payload_too_large", "2 MiB chunked");
    th_resp_free(&r);
    free(big);

    /* a body of exactly 1 MiB is read: its over-long name is what is wrong */
    big = deal_body_of_size(1048576, w.pipeline_id);
    r = th_request("POST", V1 "/deals", w.acct.admin_key, big, NULL, NULL);
    expect_problem(&r, 422, "validation_failed", "exactly 1 MiB");
    expect_fields(&r, "name", "exactly 1 MiB");
    th_resp_free(&r);
    free(big);
    snap_same(&s, "bodies over the limit");
}

/* ---------------------------------------------------------------------------------------------------------
 * State: a stage of another pipeline, closing a closed deal, completing a completed task */

PARAMS(stage_of_another_pipeline,
       CASE("POST", V1 "/deals", DEAL_BODY(",\"stage_id\":<P2S0>"), "", "admin", 422, "validation_failed",
            "stage_id", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"stage_id\":<P2S0>"), "", "m1", 422, "validation_failed",
            "stage_id", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"stage_id\":<P2S0>}", "", "admin", 422, "validation_failed",
            "stage_id", V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"stage_id\":<P2S0>,\"price\":5}", "", "m1", 422,
            "validation_failed", "stage_id", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{\"stage_id\":<P2S0>}", "", "admin", 422,
            "validation_failed", "stage_id", V1 "/deals/<CLOSED>"),
       CASE("PATCH", V1 "/pipelines/<PIPE>",
            "{\"name\":\"Новое имя\",\"stages\":[{\"id\":<P2S0>,\"name\":\"x\"}]}", "", "admin", 422,
            "validation_failed", "stages", V1 "/pipelines/<PIPE>"),
       CASE("PATCH", V1 "/pipelines/<P2>", "{\"stages\":[{\"id\":<S0>,\"name\":\"x\"}]}", "", "admin", 422,
            "validation_failed", "stages", V1 "/pipelines/<P2>"))

PARAMS(conflicting_state,
       CASE("POST", V1 "/deals/<CLOSED>/close", "{\"outcome\":\"won\"}", "", "admin", 409, "conflict", "lost",
            V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<CLOSED>/close", "{\"outcome\":\"lost\",\"loss_reason_id\":<LR>}", "", "m1",
            409, "conflict", "lost", V1 "/deals/<CLOSED>"),
       CASE("PATCH", V1 "/deals/<CLOSED>", "{\"stage_id\":<S1>}", "", "admin", 409, "conflict", "reopen",
            V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/deals/<DEAL>/reopen", "{\"stage_id\":<S1>}", "", "admin", 409, "conflict", "open",
            V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/tasks/<DONE>/complete", "{}", "", "admin", 409, "conflict", "done",
            V1 "/tasks/<DONE>"),
       CASE("POST", V1 "/tasks/<DONE>/complete", "{\"result\":\"Снова\"}", "", "m1", 409, "conflict", "done",
            V1 "/tasks/<DONE>"))

Test(bad_input, closing_a_closed_deal_keeps_its_history)
{
    fixtures(false);
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld/history", (long long)var("CLOSED"));
    struct th_resp before = get_json(w.acct.admin_key, path);
    snprintf(path, sizeof path, V1 "/deals/%lld/close", (long long)var("CLOSED"));
    for (int i = 0; i < 2; i++) {
        struct th_resp r = th_post(w.acct.admin_key, path, "{\"outcome\":\"%s\"}", i ? "lost" : "won");
        expect_problem(&r, 409, "conflict", "closing a closed deal");
        th_resp_free(&r);
    }
    snprintf(path, sizeof path, V1 "/deals/%lld/history", (long long)var("CLOSED"));
    struct th_resp after = get_json(w.acct.admin_key, path);
    cr_assert(json_equal(before.json, after.json), "history changed: %s", after.body);
    th_resp_free(&before);
    th_resp_free(&after);
}

/* ---------------------------------------------------------------------------------------------------------
 * 401: missing or wrong key */

PARAMS(missing_or_wrong_key, CASE("GET", V1 "/deals", "", "", "none", 401, "unauthorized", "Bearer", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "", "none", 401, "unauthorized", "Bearer", ""),
       CASE("GET", V1 "/deals/<DEAL>", "", "", "wrong", 401, "unauthorized", "key", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "", "wrong", 401, "unauthorized", "key", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":\"Двери\"}", "", "wrong", 401, "unauthorized", "key",
            V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals/<DEAL>/close", "{\"outcome\":\"won\"}", "", "none", 401, "unauthorized",
            "Bearer", V1 "/deals/<DEAL>"),
       CASE("GET", V1 "/account", "", "", "basic", 401, "unauthorized", "Bearer", ""),
       CASE("POST", V1 "/api-keys", "{\"role\":\"admin\",\"name\":\"k\"}", "", "basic", 401, "unauthorized",
            "Bearer", ""),
       CASE("GET", V1 "/managers", "", "", "empty", 401, "unauthorized", "Bearer", ""),
       CASE("POST", V1 "/tasks", TASK_BODY(""), "", "wrong", 401, "unauthorized", "key", ""),
       CASE("DELETE", V1 "/api-keys/<KEY>", "", "", "none", 401, "unauthorized", "Bearer", ""),
       /* authentication comes before reading the body */
       CASE("POST", V1 "/deals", "{\"name\":", "", "none", 401, "unauthorized", "", ""),
       CASE("POST", V1 "/deals", DEAL_BODY(""), "text/plain", "wrong", 401, "unauthorized", "", ""))

Test(bad_input, key_is_not_accepted_in_other_places)
{
    /* the key in the query string, in a custom header, or without the Bearer scheme */
    char path[160], header[128];
    snprintf(path, sizeof path, V1 "/deals?api_key=%s", w.acct.admin_key);
    struct th_resp r = th_request("GET", path, NULL, NULL, NULL, NULL);
    expect_problem(&r, 401, "unauthorized", "key in the query");
    th_resp_free(&r);
    snprintf(header, sizeof header, "X-Api-Key: %s", w.acct.admin_key);
    r = th_request("GET", V1 "/deals", NULL, NULL, NULL, header);
    expect_problem(&r, 401, "unauthorized", "key in X-Api-Key");
    th_resp_free(&r);
    snprintf(header, sizeof header, "Authorization: %s", w.acct.admin_key);
    r = th_request("GET", V1 "/deals", NULL, NULL, NULL, header);
    expect_problem(&r, 401, "unauthorized", "key without a scheme");
    th_resp_free(&r);
    /* a key with one character changed */
    char key[64];
    snprintf(key, sizeof key, "%s", w.acct.admin_key);
    key[strlen(key) - 1] = key[strlen(key) - 1] == 'A' ? 'B' : 'A';
    r = th_get(key, V1 "/deals");
    expect_problem(&r, 401, "unauthorized", "altered key");
    th_resp_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------
 * A manager key and another manager's deal, task or call: 404 in a path, 422 in a body, 403 to give away */

PARAMS(manager_key_and_another_managers_objects,
       CASE("GET", V1 "/deals/<M2DEAL>", "", "", "m1", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:M2D", "", "", "m1", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<M2DEAL>/history", "", "", "m1", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<M2DEAL>/notes", "", "", "m1", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/deals/<M2DEAL>", "{\"name\":\"Моя\"}", "", "m1", 404, "not_found", "",
            V1 "/deals/<M2DEAL>"),
       CASE("PATCH", V1 "/deals/<M2DEAL>", "{\"manager_id\":<M1>}", "", "m1", 404, "not_found", "",
            V1 "/deals/<M2DEAL>"),
       CASE("POST", V1 "/deals/<M2DEAL>/close", "{\"outcome\":\"won\"}", "", "m1", 404, "not_found", "",
            V1 "/deals/<M2DEAL>"),
       CASE("POST", V1 "/deals/ext:M2D/close", "{\"outcome\":\"lost\"}", "", "m1", 404, "not_found", "",
            V1 "/deals/<M2DEAL>"),
       CASE("POST", V1 "/deals/<M2DEAL>/reopen", "{\"stage_id\":<S0>}", "", "m1", 404, "not_found", "",
            V1 "/deals/<M2DEAL>"),
       CASE("POST", V1 "/deals/<M2DEAL>/notes", "{\"text\":\"Моя заметка\"}", "", "m1", 404, "not_found", "",
            ""),
       CASE("GET", V1 "/tasks/<M2TASK>", "", "", "m1", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/tasks/<M2TASK>", "{\"text\":\"x\"}", "", "m1", 404, "not_found", "",
            V1 "/tasks/<M2TASK>"),
       CASE("POST", V1 "/tasks/<M2TASK>/complete", "{}", "", "m1", 404, "not_found", "",
            V1 "/tasks/<M2TASK>"),
       CASE("DELETE", V1 "/tasks/<M2TASK>", "", "", "m1", 404, "not_found", "", V1 "/tasks/<M2TASK>"),
       CASE("GET", V1 "/calls/<M2CALL>", "", "", "m1", 404, "not_found", "", ""),
       CASE("GET", V1 "/calls/ext:C2", "", "", "m1", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"manager_id\":<M2>}", "", "m1", 403, "forbidden", "",
            V1 "/deals/<DEAL>"),
       CASE("PATCH", V1 "/deals/<DEAL>", "{\"name\":\"Двери\",\"manager_id\":<HEAD>}", "", "m1", 403,
            "forbidden", "", V1 "/deals/<DEAL>"),
       CASE("POST", V1 "/deals", DEAL_BODY(",\"manager_id\":<M2>"), "", "m1", 403, "forbidden", "", ""),
       CASE("POST", V1 "/deals/<CLOSED>/reopen", "{\"stage_id\":<S0>,\"manager_id\":<M2>}", "", "m1", 403,
            "forbidden", "", V1 "/deals/<CLOSED>"),
       CASE("POST", V1 "/tasks",
            "{\"deal_id\":<M2DEAL>,\"type\":\"call\",\"text\":\"x\",\"due_at\":\"2030-01-01T10:00:00Z\"}", "",
            "m1", 422, "validation_failed", "deal_id", ""),
       CASE("POST", V1 "/tasks", TASK_BODY(",\"manager_id\":<M2>"), "", "m1", 403, "forbidden", "", ""),
       CASE("PATCH", V1 "/tasks/<TASK>", "{\"manager_id\":<M2>}", "", "m1", 403, "forbidden", "",
            V1 "/tasks/<TASK>"),
       CASE("POST", V1 "/calls", CALL_BODY(",\"deal_id\":<M2DEAL>"), "", "m1", 422, "validation_failed",
            "deal_id", ""))

Test(bad_input, manager_lists_show_only_his_own)
{
    fixtures(false);
    static const char *const lists[] = {V1 "/deals", V1 "/tasks", V1 "/calls"};
    for (size_t i = 0; i < 3; i++) {
        for (int filtered = 0; filtered < 2; filtered++) {
            struct th_resp r =
                filtered ? th_get(w.manager1_key, "%s?manager_id=%lld", lists[i], (long long)w.manager2)
                         : th_get(w.manager1_key, "%s", lists[i]);
            cr_assert_eq(r.status, 200, "%s: %s", lists[i], r.body);
            json_t *items = json_object_get(r.json, "items");
            if (filtered)
                cr_assert_eq(json_array_size(items), 0, "%s?manager_id=other: %s", lists[i], r.body);
            else
                cr_assert(json_array_size(items) > 0, "%s: %s", lists[i], r.body);
            for (size_t k = 0; k < json_array_size(items); k++)
                cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, k), "manager_id")),
                             w.manager1, "%s shows another manager's item: %s", lists[i], r.body);
            th_resp_free(&r);
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------
 * Query parameters, unknown paths, wrong methods */

PARAMS(bad_query_parameters,
       CASE("GET", V1 "/deals?limit=0", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=501", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=-1", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=abc", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=2.5", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals?limit=99999999999999999999", "", "", "admin", 422, "validation_failed", "limit",
            ""),
       CASE("GET", V1 "/deals?cursor=not-a-cursor!", "", "", "admin", 422, "validation_failed", "cursor", ""),
       CASE("GET", V1 "/deals?cursor=AAAA", "", "", "admin", 422, "validation_failed", "cursor", ""),
       CASE("GET", V1 "/deals?cursor=MA", "", "", "admin", 422, "validation_failed", "cursor", ""),
       CASE("GET", V1 "/tasks?limit=501", "", "", "m1", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/tasks?cursor=%25%25%25", "", "", "admin", 422, "validation_failed", "cursor", ""),
       CASE("GET", V1 "/calls?limit=0", "", "", "ro", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/managers?limit=0", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/pipelines?cursor=zz", "", "", "admin", 422, "validation_failed", "cursor", ""),
       CASE("GET", V1 "/loss-reasons?limit=1000", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/api-keys?limit=0", "", "", "admin", 422, "validation_failed", "limit", ""),
       CASE("GET", V1 "/deals/<DEAL>/history?limit=0", "", "", "admin", 422, "validation_failed", "limit",
            ""),
       CASE("GET", V1 "/deals/<DEAL>/notes?limit=501", "", "", "admin", 422, "validation_failed", "limit",
            ""),
       CASE("GET", V1 "/deals?status=closed", "", "", "admin", 422, "validation_failed", "status", ""),
       CASE("GET", V1 "/deals?manager_id=abc", "", "", "admin", 422, "validation_failed", "manager_id", ""),
       CASE("GET", V1 "/deals?pipeline_id=-1", "", "", "admin", 422, "validation_failed", "pipeline_id", ""),
       CASE("GET", V1 "/deals?updated_since=yesterday", "", "", "admin", 422, "validation_failed",
            "updated_since", ""),
       CASE("GET", V1 "/tasks?state=late", "", "", "admin", 422, "validation_failed", "state", ""),
       CASE("GET", V1 "/tasks?type=lunch", "", "", "admin", 422, "validation_failed", "type", ""))

PARAMS(unknown_paths, CASE("GET", V1 "/nope", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<DEAL>/nope", "", "", "admin", 404, "not_found", "", ""),
       CASE("POST", V1 "/deals/<DEAL>/win", "{}", "", "admin", 404, "not_found", "", ""),
       CASE("GET", "/api/v2/deals", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/Deals", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/nope", "", "", "none", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/abc", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/0", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/-1", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/1.5", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/99999999999999999999", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:no-such-deal", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/deals/ext:<R2000:x>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/managers/<R40:9>", "", "", "admin", 404, "not_found", "", ""),
       CASE("PATCH", V1 "/deals/<NONE>", "{\"name\":\"x\"}", "", "admin", 404, "not_found", "", ""),
       CASE("POST", V1 "/deals/<NONE>/close", "{\"outcome\":\"won\"}", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/tasks/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("POST", V1 "/tasks/<NONE>/complete", "{}", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/calls/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/managers/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/pipelines/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("GET", V1 "/loss-reasons/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("DELETE", V1 "/api-keys/<NONE>", "", "", "admin", 404, "not_found", "", ""),
       CASE("DELETE", V1 "/api-keys/abc", "", "", "admin", 404, "not_found", "", ""))

PARAMS(wrong_method, CASE("DELETE", V1 "/deals", "", "", "admin", 405, "method_not_allowed", "GET,POST", ""),
       CASE("PUT", V1 "/deals", DEAL_BODY(""), "", "admin", 405, "method_not_allowed", "GET,POST", ""),
       CASE("PUT", V1 "/deals/<DEAL>", "{\"name\":\"x\"}", "", "admin", 405, "method_not_allowed",
            "GET,PATCH", V1 "/deals/<DEAL>"),
       CASE("DELETE", V1 "/deals/<DEAL>", "", "", "admin", 405, "method_not_allowed", "GET,PATCH",
            V1 "/deals/<DEAL>"),
       CASE("GET", V1 "/deals/<DEAL>/close", "", "", "admin", 405, "method_not_allowed", "POST", ""),
       CASE("GET", V1 "/deals/<DEAL>/reopen", "", "", "admin", 405, "method_not_allowed", "POST", ""),
       CASE("PATCH", V1 "/deals/<DEAL>/notes", "{}", "", "admin", 405, "method_not_allowed", "GET,POST", ""),
       CASE("POST", V1 "/deals/<DEAL>/history", "{}", "", "admin", 405, "method_not_allowed", "GET", ""),
       CASE("POST", V1 "/tasks/<TASK>", "{}", "", "admin", 405, "method_not_allowed", "GET,PATCH,DELETE",
            V1 "/tasks/<TASK>"),
       CASE("POST", V1 "/calls/<CALL>", "{}", "", "admin", 405, "method_not_allowed", "GET", ""),
       CASE("DELETE", V1 "/account", "", "", "admin", 405, "method_not_allowed", "GET,PATCH", ""),
       CASE("PATCH", V1 "/api-keys", "{}", "", "admin", 405, "method_not_allowed", "GET,POST", ""),
       CASE("GET", V1 "/api-keys/<KEY>", "", "", "admin", 405, "method_not_allowed", "DELETE", ""),
       CASE("DELETE", V1 "/managers/<M1>", "", "", "admin", 405, "method_not_allowed", "GET,PATCH",
            V1 "/managers/<M1>"),
       CASE("POST", "/healthz", "{}", "", "none", 405, "method_not_allowed", "GET", ""),
       /* the router answers before authentication */
       CASE("DELETE", V1 "/deals", "", "", "none", 405, "method_not_allowed", "GET,POST", ""))

/* Roles: a role-by-route matrix generated from the route table (so_api_routes), the same routes without a key
 * and with another account's key, API.md's role table checked against the route table and by hand, and a
 * deleted key that stops working within a second. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "salesops/api.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(roles, .init = setup, .fini = th_server_stop);

#define V1 "/api/v1"

/* Objects of the world's account the matrix fills path parameters with. */
struct ids {
    int64_t deal, task, call, key, inbox, focus_session, review;
};

static int64_t created_id(struct th_resp *r, const char *what)
{
    cr_assert_eq(r->status, 201, "creating %s: %ld %s", what, r->status, r->body);
    int64_t id = th_int(r, "id");
    th_resp_free(r);
    return id;
}

/* A deal of manager1 (with a marker name the foreign-key check looks for), a task on it, a call, a spare API
 * key (the admin's DELETE may remove it), manager1 in focus on that deal, and a rejection review of another
 * deal's loss. */
static struct ids make_ids(void)
{
    struct ids ids;
    const char *key = w.acct.admin_key;
    struct th_resp r =
        th_post(key, V1 "/deals",
                "{\"name\":\"leak-probe-deal\",\"price\":5000,\"pipeline_id\":%lld,\"manager_id\":%lld,"
                "\"external_id\":\"leak-probe-ext\"}",
                (long long)w.pipeline_id, (long long)w.manager1);
    ids.deal = created_id(&r, "deal");
    r = th_post(key, V1 "/tasks",
                "{\"deal_id\":%lld,\"type\":\"call\",\"text\":\"leak-probe-task\",\"due_at\":\"2030-01-01T10:"
                "00:00Z\"}",
                (long long)ids.deal);
    ids.task = created_id(&r, "task");
    r = th_post(
        key, V1 "/calls",
        "{\"manager_id\":%lld,\"deal_id\":%lld,\"direction\":\"in\",\"started_at\":\"2026-01-10T10:00:00Z\","
        "\"duration_s\":30,\"answered\":true,\"external_id\":\"leak-probe-call\"}",
        (long long)w.manager1, (long long)ids.deal);
    ids.call = created_id(&r, "call");
    r = th_post(key, V1 "/api-keys", "{\"role\":\"readonly\",\"name\":\"spare\"}");
    ids.key = created_id(&r, "api key");
    /* an inbox row: an event that waits for a task that never comes */
    r = th_post(key, V1 "/events",
                "[{\"id\":\"probe-1\",\"type\":\"task.updated\",\"at\":\"2030-01-01T10:00:00Z\","
                "\"data\":{\"task\":\"no-such-task\",\"text\":\"x\"}}]");
    cr_assert_eq(r.status, 200, "events: %s", r.body);
    th_resp_free(&r);
    r = th_get(key, V1 "/webhooks/inbox?state=waiting");
    cr_assert_eq(r.status, 200, "inbox: %s", r.body);
    ids.inbox =
        json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    cr_assert(ids.inbox > 0, "no waiting inbox row: %s", r.body);
    th_resp_free(&r);
    char path[96];
    snprintf(path, sizeof path, V1 "/managers/%lld/focus-filter", (long long)w.manager1);
    r = th_put(key, path, "{\"pipeline_id\":%lld,\"stage_ids\":[%lld]}", (long long)w.pipeline_id,
               (long long)w.stages[0]);
    cr_assert_eq(r.status, 200, "focus filter: %s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, V1 "/managers/%lld/focus", (long long)w.manager1);
    r = th_post(key, path, "%s", "");
    ids.focus_session = created_id(&r, "focus session");
    r = th_put(key, V1 "/rejection-control/settings", "{\"enabled\":true,\"loss_reason_ids\":\"any\","
               "\"reviewer_id\":%lld}", (long long)w.head);
    cr_assert_eq(r.status, 200, "rejection control: %s", r.body);
    th_resp_free(&r);
    r = th_post(key, V1 "/deals", "{\"name\":\"leak-probe-lost\",\"price\":1,\"pipeline_id\":%lld,"
                "\"manager_id\":%lld}", (long long)w.pipeline_id, (long long)w.manager2);
    int64_t lost = created_id(&r, "deal to lose");
    snprintf(path, sizeof path, V1 "/deals/%lld/close", (long long)lost);
    r = th_post(key, path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "close: %s", r.body);
    th_resp_free(&r);
    r = th_get(key, V1 "/rejection-control/reviews?state=pending");
    ids.review = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "items"), 0), "id"));
    cr_assert(ids.review > 0, "no review: %s", r.body);
    th_resp_free(&r);
    return ids;
}

/* The id for a path parameter: by the collection segment before it, or by the parameter's own name. A route
 * whose parameter the matrix cannot fill fails the test: extend this when a route is added. */
static int64_t id_for(const char *collection, size_t clen, const char *param, size_t plen,
                      const struct ids *ids)
{
#define IS(s, n, lit) ((n) == sizeof(lit) - 1 && strncmp((s), (lit), (n)) == 0)
    if (IS(param, plen, "deal_id")) return ids->deal;
    if (IS(param, plen, "manager_id")) return w.manager1;
    if (IS(collection, clen, "deals")) return ids->deal;
    if (IS(collection, clen, "tasks")) return ids->task;
    if (IS(collection, clen, "calls")) return ids->call;
    if (IS(collection, clen, "managers")) return w.manager1;
    if (IS(collection, clen, "pipelines")) return w.pipeline_id;
    if (IS(collection, clen, "loss-reasons")) return w.loss_reason;
    if (IS(collection, clen, "api-keys")) return ids->key;
    if (IS(collection, clen, "inbox")) return ids->inbox;
    if (IS(collection, clen, "focus-sessions")) return ids->focus_session;
    if (IS(collection, clen, "reviews")) return ids->review;
    if (IS(collection, clen, "assets")) return 1; /* the page's files: keyless, "1" is a 404 (never a 401) */
#undef IS
    cr_assert_fail("no id for path parameter {%.*s} after /%.*s: extend id_for()", (int)plen, param,
                   (int)clen, collection);
    return 0;
}

/* The route's pattern with every {param} replaced by an existing id. Returns the number of parameters. */
static int fill_path(const char *pattern, const struct ids *ids, char *out, size_t outlen)
{
    size_t o = 0;
    int params = 0;
    const char *prev = "", *seg = pattern;
    size_t prev_len = 0;
    out[0] = '\0';
    while (*seg == '/') {
        const char *start = seg + 1;
        const char *end = strchr(start, '/');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (len > 1 && start[0] == '{') {
            int64_t id = id_for(prev, prev_len, start + 1, len - 2, ids);
            o += (size_t)snprintf(out + o, outlen - o, "/%lld", (long long)id);
            params++;
        } else {
            o += (size_t)snprintf(out + o, outlen - o, "/%.*s", (int)len, start);
        }
        cr_assert(o < outlen, "path too long for %s", pattern);
        prev = start;
        prev_len = len;
        seg = start + len;
    }
    return params;
}

/* The route's pattern with every {param} replaced by an id that exists in no account. */
static void fill_missing(const char *pattern, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = pattern; *p && o + 1 < outlen;) {
        if (*p == '{') {
            o += (size_t)snprintf(out + o, outlen - o, "999999999");
            p = strchr(p, '}') + 1;
        } else {
            out[o++] = *p++;
        }
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

static bool same_json(json_t *a, json_t *b)
{
    return (a == NULL && b == NULL) || json_equal(a, b);
}

static bool has_body(const char *method)
{
    return !strcmp(method, "POST") || !strcmp(method, "PATCH") || !strcmp(method, "PUT");
}

static struct th_resp call_route(const struct so_route *rt, const char *path, const char *key)
{
    return th_request(rt->method, path, key, has_body(rt->method) ? "{}" : NULL, NULL, NULL);
}

static bool is_problem(const struct th_resp *r)
{
    return strncmp(r->content_type, "application/problem+json", strlen("application/problem+json")) == 0;
}

struct role_key {
    enum so_role role;
    const char *name;
    const char *key;
};

/* Least privileged first, so that the admin's deletes come last. */
static void role_keys(struct role_key out[ROLE_COUNT])
{
    out[0] = (struct role_key){ROLE_READONLY, "readonly", w.readonly_key};
    out[1] = (struct role_key){ROLE_MANAGER, "manager", w.manager1_key};
    out[2] = (struct role_key){ROLE_HEAD, "head", w.head_key};
    out[3] = (struct role_key){ROLE_ADMIN, "admin", w.acct.admin_key};
}

/* ---------------------------------------------------------------------------------------------------------
 * The matrix */

Test(roles, every_route_by_every_role_follows_the_route_table)
{
    struct ids ids = make_ids();
    struct role_key keys[ROLE_COUNT];
    role_keys(keys);
    int checked = 0;
    for (size_t i = 0; i < so_api_route_count; i++) {
        const struct so_route *rt = &so_api_routes[i];
        if (rt->roles == ROUTE_PUBLIC) continue;
        char path[256];
        fill_path(rt->pattern, &ids, path, sizeof path);
        for (int k = 0; k < ROLE_COUNT; k++) {
            struct th_resp r = call_route(rt, path, keys[k].key);
            bool allowed = (rt->roles & ROLE_BIT(keys[k].role)) != 0;
            if (!allowed) {
                cr_expect(r.status == 403 && !strcmp(th_code(&r), "forbidden") && is_problem(&r),
                          "%s %s as %s: the route table forbids it, expected 403 forbidden, got %ld: %s",
                          rt->method, path, keys[k].name, r.status, r.body);
            } else {
                cr_expect(r.status != 401 && r.status != 403,
                          "%s %s as %s: the route table allows it, got %ld: %s", rt->method, path,
                          keys[k].name, r.status, r.body);
                /* the ids exist and the method is served: no 404/405, and never a server error */
                cr_expect(r.status != 404 && r.status != 405 && r.status < 500, "%s %s as %s: got %ld: %s",
                          rt->method, path, keys[k].name, r.status, r.body);
            }
            th_resp_free(&r);
            checked++;
        }
    }
    cr_assert(checked >= 4 * 30, "only %d route x role pairs checked", checked);
}

Test(roles, forbidden_comes_before_existence_and_before_the_body)
{
    /* a forbidden route is 403 even for a missing id, a malformed body or a wrong Content-Type */
    struct role_key keys[ROLE_COUNT];
    role_keys(keys);
    struct {
        const char *method, *path, *body, *ctype;
    } cases[] = {
        {"PATCH", V1 "/deals/999999999", "{\"name\":\"x\"}", NULL},
        {"DELETE", V1 "/api-keys/999999999", NULL, NULL},
        {"PATCH", V1 "/managers/999999999", "{\"name\":", NULL},
        {"POST", V1 "/pipelines", "<xml/>", "application/xml"},
        {"PATCH", V1 "/account", "{\"name\":\"x\",\"name\":\"y\"}", NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const struct so_route *rt = NULL;
        for (size_t i = 0; i < so_api_route_count && rt == NULL; i++) {
            const char *p = so_api_routes[i].pattern;
            size_t stem = strcspn(p, "{");
            if (!strcmp(so_api_routes[i].method, cases[c].method) && !strncmp(p, cases[c].path, stem) &&
                (p[stem] != '\0' || !strcmp(p, cases[c].path)))
                rt = &so_api_routes[i];
        }
        cr_assert(rt != NULL, "no route %s %s", cases[c].method, cases[c].path);
        for (int k = 0; k < ROLE_COUNT; k++) {
            if (rt->roles & ROLE_BIT(keys[k].role)) continue;
            struct th_resp r =
                th_request(cases[c].method, cases[c].path, keys[k].key, cases[c].body, cases[c].ctype, NULL);
            cr_expect(r.status == 403 && !strcmp(th_code(&r), "forbidden"),
                      "%s %s as %s: expected 403, got %ld: %s", cases[c].method, cases[c].path, keys[k].name,
                      r.status, r.body);
            th_resp_free(&r);
        }
    }
}

Test(roles, every_keyed_route_without_a_key_is_401)
{
    struct ids ids = make_ids();
    const char *bad[] = {NULL, "sok_notAKeyOfThisService", NULL};
    const char *headers[] = {NULL, NULL, "Authorization: Basic YWRtaW46YWRtaW4="};
    int64_t deals = th_count_rows("deals", w.acct.id), tasks = th_count_rows("tasks", w.acct.id);
    for (size_t i = 0; i < so_api_route_count; i++) {
        const struct so_route *rt = &so_api_routes[i];
        if (strstr(rt->pattern, "{webhook_token}") != NULL)
            continue; /* keyless, its secret is the token in the path: tests/http/test_webhooks.c */
        char path[256];
        fill_path(rt->pattern, &ids, path, sizeof path);
        for (int b = 0; b < 3; b++) {
            struct th_resp r =
                th_request(rt->method, path, bad[b], has_body(rt->method) ? "{}" : NULL, NULL, headers[b]);
            if (rt->roles == ROUTE_PUBLIC)
                cr_expect(r.status != 401 && r.status != 403, "public %s %s answered %ld", rt->method, path,
                          r.status);
            else
                cr_expect(r.status == 401 && !strcmp(th_code(&r), "unauthorized") && is_problem(&r),
                          "%s %s with %s: expected 401 unauthorized, got %ld: %s", rt->method, path,
                          b == 0   ? "no key"
                          : b == 1 ? "a wrong key"
                                   : "Basic auth",
                          r.status, r.body);
            th_resp_free(&r);
        }
    }
    cr_assert_eq(th_count_rows("deals", w.acct.id), deals);
    cr_assert_eq(th_count_rows("tasks", w.acct.id), tasks);
    /* and the objects are intact */
    struct th_resp r = th_get(w.acct.admin_key, V1 "/tasks/%lld", (long long)ids.task);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(th_str(&r, "state"), "open");
    th_resp_free(&r);
}

/* Strings of the world's account that must never appear in a reply to another account's key. */
static const char *const markers[] = {"leak-probe", "Иванова Анна",  "Петров Сергей", "Смирнова Ольга",
                                      "Продажи",    "Взят в работу", "Дорого"};

Test(roles, another_accounts_key_sees_nothing_of_this_account)
{
    struct ids ids = make_ids();
    struct th_account other;
    th_account_new(&other);
    char other_keys[3][64];
    snprintf(other_keys[0], 64, "%s", other.admin_key);
    th_key_new(&other, "head", 0, other_keys[1]);
    th_key_new(&other, "readonly", 0, other_keys[2]);
    struct th_resp before = th_get(w.acct.admin_key, V1 "/deals/%lld", (long long)ids.deal);
    cr_assert_eq(before.status, 200);
    for (size_t i = 0; i < so_api_route_count; i++) {
        const struct so_route *rt = &so_api_routes[i];
        if (rt->roles == ROUTE_PUBLIC) continue;
        char path[256];
        int params = fill_path(rt->pattern, &ids, path, sizeof path);
        for (int k = 0; k < 3; k++) {
            struct th_resp r = call_route(rt, path, other_keys[k]);
            if (r.status == 403) {
                /* a role the route forbids: fine, nothing shown */
            } else if (params > 0 && !has_body(rt->method)) {
                cr_expect(r.status == 404 && !strcmp(th_code(&r), "not_found") && is_problem(&r),
                          "%s %s with another account's key: expected 404, got %ld: %s", rt->method, path,
                          r.status, r.body);
            } else if (params > 0) {
                /* with the minimal body a 422 for the body may come first: the foreign id must then answer
                 * exactly as an id that exists nowhere */
                char missing_path[256];
                fill_missing(rt->pattern, missing_path, sizeof missing_path);
                struct th_resp m = call_route(rt, missing_path, other_keys[k]);
                cr_expect((r.status == 404 || r.status == 422) && is_problem(&r),
                          "%s %s with another account's key: expected 404 (or the body's 422), got %ld: %s",
                          rt->method, path, r.status, r.body);
                cr_expect(r.status == m.status && !strcmp(th_code(&r), th_code(&m)) &&
                              same_json(json_object_get(r.json, "errors"), json_object_get(m.json, "errors")),
                          "%s %s with another account's key answers unlike a missing id:\n%s\n%s", rt->method,
                          path, r.body, m.body);
                th_resp_free(&m);
            } else {
                cr_expect(r.status != 401, "%s %s with another account's key: %ld", rt->method, path,
                          r.status);
            }
            for (size_t m = 0; m < sizeof markers / sizeof markers[0]; m++)
                cr_expect(strstr(r.body, markers[m]) == NULL,
                          "%s %s with another account's key shows '%s': %s", rt->method, path, markers[m],
                          r.body);
            th_resp_free(&r);
        }
    }
    /* ext: lookups do not cross accounts either */
    static const char *const ext_paths[] = {V1 "/deals/ext:leak-probe-ext", V1 "/calls/ext:leak-probe-call",
                                            V1 "/pipelines/ext:p1", V1 "/loss-reasons/ext:r1"};
    for (size_t i = 0; i < sizeof ext_paths / sizeof ext_paths[0]; i++) {
        struct th_resp r = th_get(other.admin_key, "%s", ext_paths[i]);
        cr_expect(r.status == 404 && !strcmp(th_code(&r), "not_found"),
                  "%s with another account's key: %ld %s", ext_paths[i], r.status, r.body);
        th_resp_free(&r);
    }
    /* nothing of this account changed, and its keys still work */
    struct th_resp after = th_get(w.acct.admin_key, V1 "/deals/%lld", (long long)ids.deal);
    cr_assert_eq(after.status, 200);
    cr_assert(json_equal(before.json, after.json), "the deal changed:\n%s\n%s", before.body, after.body);
    th_resp_free(&before);
    th_resp_free(&after);
    struct th_resp r = th_get(w.readonly_key, V1 "/api-keys");
    cr_assert_eq(r.status, 403);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/api-keys?limit=500");
    cr_assert_eq(r.status, 200);
    bool spare = false;
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        spare |= json_integer_value(json_object_get(json_array_get(items, i), "id")) == ids.key;
    cr_assert(spare, "another account's DELETE removed this account's key: %s", r.body);
    th_resp_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------
 * API.md's role table, independently of the route table */

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* What API.md allows a role on a route: 1 allowed, 0 forbidden, -1 the table does not say (not checked). */
static int api_md_allows(enum so_role role, const char *method, const char *pattern)
{
    bool get = !strcmp(method, "GET");
    bool keys = starts(pattern, V1 "/api-keys"), amo = starts(pattern, V1 "/integrations/amocrm");
    switch (role) {
    case ROLE_ADMIN:
        return 1;
    case ROLE_HEAD:
        return !(keys || amo || (!strcmp(method, "PATCH") && !strcmp(pattern, V1 "/account")));
    case ROLE_READONLY:
        return get && !keys && !amo && !starts(pattern, V1 "/webhooks/inbox");
    case ROLE_MANAGER:
        if (starts(pattern, V1 "/pipelines") || starts(pattern, V1 "/loss-reasons")) return get;
        if (starts(pattern, V1 "/managers") && strstr(pattern, "focus") == NULL) return get;
        if (starts(pattern, V1 "/deals") || starts(pattern, V1 "/tasks") || starts(pattern, V1 "/calls"))
            return 1;
        if (keys || amo || starts(pattern, V1 "/account") || starts(pattern, V1 "/analytics") ||
            starts(pattern, V1 "/events") || starts(pattern, V1 "/distribution") ||
            starts(pattern, V1 "/webhooks/inbox") || strstr(pattern, "/settings") != NULL ||
            strstr(pattern, "/decision") != NULL)
            return 0;
        return -1;
    case ROLE_COUNT:
        break;
    }
    return -1;
}

/* A manager key on another manager's objects, for every route a manager key may use that names an object in
 * its path: his deals, tasks, calls and focus sessions answer exactly as an id that exists nowhere (404, or
 * the body's 422 first); another manager's focus routes are 403; managers, pipelines and loss reasons are
 * readable by all.
 * Nothing of manager1's changes. */
Test(roles, a_manager_key_on_another_managers_objects)
{
    struct ids ids = make_ids();
    struct th_resp before = th_get(w.acct.admin_key, V1 "/deals/%lld", (long long)ids.deal);
    cr_assert_eq(before.status, 200);
    int checked = 0;
    for (size_t i = 0; i < so_api_route_count; i++) {
        const struct so_route *rt = &so_api_routes[i];
        if (!(rt->roles & ROLE_BIT(ROLE_MANAGER)) || strchr(rt->pattern, '{') == NULL) continue;
        char path[256], missing[256];
        fill_path(rt->pattern, &ids, path, sizeof path);
        fill_missing(rt->pattern, missing, sizeof missing);
        struct th_resp r = call_route(rt, path, w.manager2_key);
        if (strncmp(rt->pattern, V1 "/managers/{id}/focus", strlen(V1 "/managers/{id}/focus")) == 0) {
            cr_expect(r.status == 403 && !strcmp(th_code(&r), "forbidden"),
                      "%s %s with manager2's key: another manager's focus is 403, got %ld: %s", rt->method, path,
                      r.status, r.body);
        } else if (!strcmp(rt->pattern, V1 "/managers/{id}") || !strncmp(rt->pattern, V1 "/pipelines/", 17) ||
                   !strncmp(rt->pattern, V1 "/loss-reasons/", 20)) {
            cr_expect_eq(r.status, 200, "%s %s: the account's catalogue is readable by a manager key: %s", rt->method,
                         path, r.body);
        } else {
            struct th_resp m = call_route(rt, missing, w.manager2_key);
            cr_expect((r.status == 404 || r.status == 422) && is_problem(&r),
                      "%s %s with manager2's key on manager1's object: expected 404 (or the body's 422), got %ld: %s",
                      rt->method, path, r.status, r.body);
            cr_expect(r.status == m.status && !strcmp(th_code(&r), th_code(&m)) &&
                          same_json(json_object_get(r.json, "errors"), json_object_get(m.json, "errors")),
                      "%s %s: manager1's object answers unlike a missing id:\n%s\n%s", rt->method, path, r.body,
                      m.body);
            cr_expect(strstr(r.body, "leak-probe") == NULL, "%s %s shows manager1's data: %s", rt->method, path,
                      r.body);
            th_resp_free(&m);
        }
        th_resp_free(&r);
        checked++;
    }
    cr_assert(checked >= 15, "only %d routes checked", checked);
    struct th_resp after = th_get(w.acct.admin_key, V1 "/deals/%lld", (long long)ids.deal);
    cr_assert_str_eq(after.body, before.body, "manager1's deal changed");
    th_resp_free(&before);
    th_resp_free(&after);
}

Test(roles, route_table_matches_the_role_table_of_api_md)
{
    static const char *const names[] = {"admin", "head", "manager", "readonly"};
    for (size_t i = 0; i < so_api_route_count; i++) {
        const struct so_route *rt = &so_api_routes[i];
        if (rt->roles == ROUTE_PUBLIC) continue;
        for (int role = 0; role < ROLE_COUNT; role++) {
            int want = api_md_allows((enum so_role)role, rt->method, rt->pattern);
            if (want < 0) continue;
            bool has = (rt->roles & ROLE_BIT(role)) != 0;
            cr_expect(has == (want == 1), "%s %s: API.md says %s %s, the route table says %s", rt->method,
                      rt->pattern, names[role], want ? "may" : "may not", has ? "may" : "may not");
        }
    }
}

static void expect_status(const char *key, const char *method, const char *path, const char *body,
                          long status, const char *who)
{
    struct th_resp r = th_request(method, path, key, body, NULL, NULL);
    cr_expect_eq(r.status, status, "%s %s as %s: expected %ld, got %ld: %s", method, path, who, status,
                 r.status, r.body);
    if (status == 403)
        cr_expect(!strcmp(th_code(&r), "forbidden") && is_problem(&r), "%s %s as %s: %s", method, path, who,
                  r.body);
    th_resp_free(&r);
}

Test(roles, api_md_exceptions_by_hand)
{
    struct ids ids = make_ids();
    char key_path[64];
    snprintf(key_path, sizeof key_path, V1 "/api-keys/%lld", (long long)ids.key);

    /* head: everything except /api-keys and PATCH /account */
    expect_status(w.head_key, "GET", V1 "/api-keys", NULL, 403, "head");
    expect_status(w.head_key, "POST", V1 "/api-keys", "{\"role\":\"admin\",\"name\":\"mine\"}", 403, "head");
    expect_status(w.head_key, "DELETE", key_path, NULL, 403, "head");
    expect_status(w.head_key, "PATCH", V1 "/account", "{\"name\":\"Переименовано\"}", 403, "head");
    expect_status(w.head_key, "GET", V1 "/account", NULL, 200, "head");
    expect_status(w.head_key, "POST", V1 "/managers", "{\"name\":\"Новый\",\"role\":\"manager\"}", 201,
                  "head");
    expect_status(w.head_key, "POST", V1 "/loss-reasons", "{\"name\":\"Нет бюджета\"}", 201, "head");

    /* readonly: every GET except /api-keys; no writes */
    expect_status(w.readonly_key, "GET", V1 "/api-keys", NULL, 403, "readonly");
    expect_status(w.readonly_key, "DELETE", key_path, NULL, 403, "readonly");
    expect_status(w.readonly_key, "GET", V1 "/account", NULL, 200, "readonly");
    expect_status(w.readonly_key, "GET", V1 "/deals", NULL, 200, "readonly");
    expect_status(w.readonly_key, "POST", V1 "/deals", "{\"name\":\"x\",\"price\":1,\"pipeline_id\":1}", 403,
                  "readonly");
    expect_status(w.readonly_key, "PATCH", V1 "/account", "{\"name\":\"x\"}", 403, "readonly");

    /* manager: no GET /account, read-only catalog, his own deals */
    expect_status(w.manager1_key, "GET", V1 "/account", NULL, 403, "manager");
    expect_status(w.manager1_key, "PATCH", V1 "/account", "{\"name\":\"x\"}", 403, "manager");
    expect_status(w.manager1_key, "GET", V1 "/api-keys", NULL, 403, "manager");
    expect_status(w.manager1_key, "POST", V1 "/managers", "{\"name\":\"x\",\"role\":\"manager\"}", 403,
                  "manager");
    expect_status(w.manager1_key, "POST", V1 "/pipelines", "{\"name\":\"x\",\"stages\":[]}", 403, "manager");
    expect_status(w.manager1_key, "POST", V1 "/loss-reasons", "{\"name\":\"x\"}", 403, "manager");
    char path[96];
    snprintf(path, sizeof path, V1 "/pipelines/%lld", (long long)w.pipeline_id);
    expect_status(w.manager1_key, "PATCH", path, "{\"name\":\"x\"}", 403, "manager");
    snprintf(path, sizeof path, V1 "/managers/%lld", (long long)w.manager1);
    expect_status(w.manager1_key, "PATCH", path, "{\"weight\":100}", 403, "manager");
    expect_status(w.manager1_key, "GET", V1 "/pipelines", NULL, 200, "manager");
    expect_status(w.manager1_key, "GET", V1 "/loss-reasons", NULL, 200, "manager");
    snprintf(path, sizeof path, V1 "/deals/%lld", (long long)ids.deal);
    expect_status(w.manager1_key, "GET", path, NULL, 200, "manager");

    /* the manager sees all managers */
    struct th_resp r = th_get(w.manager1_key, V1 "/managers");
    cr_assert_eq(r.status, 200, "%s", r.body);
    int seen = 0;
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++) {
        int64_t id = json_integer_value(json_object_get(json_array_get(items, i), "id"));
        seen += id == w.manager1 || id == w.manager2 || id == w.head;
    }
    cr_assert_eq(seen, 3, "a manager key lists all managers: %s", r.body);
    th_resp_free(&r);

    /* nothing the forbidden calls asked for happened */
    r = th_get(w.acct.admin_key, V1 "/account");
    cr_assert_str_neq(th_str(&r, "name"), "Переименовано");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "%s", V1 "/api-keys?limit=500");
    bool spare = false;
    items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        spare |= json_integer_value(json_object_get(json_array_get(items, i), "id")) == ids.key;
    cr_assert(spare, "a forbidden DELETE removed the key: %s", r.body);
    th_resp_free(&r);
}

/* ---------------------------------------------------------------------------------------------------------
 * A deleted key stops working within 1 second */

Test(roles, deleted_key_stops_working_within_one_second)
{
    struct th_resp r =
        th_post(w.acct.admin_key, V1 "/api-keys", "{\"role\":\"head\",\"name\":\"to delete\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    char key[64];
    snprintf(key, sizeof key, "%s", th_str(&r, "key"));
    th_resp_free(&r);
    /* use it on every worker thread so that each may have it cached */
    for (int i = 0; i < 16; i++) {
        r = th_get(key, V1 "/account");
        cr_assert_eq(r.status, 200, "%s", r.body);
        th_resp_free(&r);
    }
    char path[64];
    snprintf(path, sizeof path, V1 "/api-keys/%lld", (long long)id);
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 204, "%s", r.body);
    th_resp_free(&r);
    struct timespec pause = {1, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 16; i++) {
        r = th_get(key, V1 "/account");
        cr_assert_eq(r.status, 401, "a deleted key still works 1.1 s later (request %d): %ld %s", i, r.status,
                     r.body);
        cr_assert_str_eq(th_code(&r), "unauthorized");
        th_resp_free(&r);
    }
    /* gone from the list, and deleting it again is 404 */
    r = th_get(w.acct.admin_key, V1 "/api-keys?limit=500");
    json_t *items = json_object_get(r.json, "items");
    for (size_t i = 0; i < json_array_size(items); i++)
        cr_assert_neq(json_integer_value(json_object_get(json_array_get(items, i), "id")), id, "%s", r.body);
    th_resp_free(&r);
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
}

Test(roles, new_key_shows_its_secret_only_once)
{
    struct th_resp r =
        th_post(w.acct.admin_key, V1 "/api-keys",
                "{\"role\":\"manager\",\"manager_id\":%lld,\"name\":\"Анна\"}", (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    char key[64];
    snprintf(key, sizeof key, "%s", th_str(&r, "key"));
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/api-keys?limit=500");
    cr_assert_eq(r.status, 200);
    cr_assert(strstr(r.body, key) == NULL, "GET /api-keys shows a secret");
    cr_assert(strstr(r.body, "\"key\"") == NULL, "GET /api-keys has a key field: %s", r.body);
    th_resp_free(&r);
    /* and the new manager key is bound to its manager */
    r = th_get(key, V1 "/deals");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_get(key, V1 "/account");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
}

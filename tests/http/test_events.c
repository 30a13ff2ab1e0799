/* POST /events over HTTP: the JSON array and NDJSON doors, the reply's counts, strict parsing (a rejected
 * event is not stored and its id stays free), duplicates, limits and roles; placeholders for unknown objects;
 * events that arrive out of order give the same state and history as in order; events that wait for their
 * deal or task; tasks, calls, notes, deletion and restoration through events. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "salesops/buf.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(events, .init = setup, .fini = th_server_stop);

#define EVENTS "/api/v1/events"

/* ---- helpers ---- */

static struct th_resp post_array(const char *key, const char *body)
{
    return th_request("POST", EVENTS, key, body, "application/json", NULL);
}

static struct th_resp post_ndjson(const char *key, const char *body)
{
    return th_request("POST", EVENTS, key, body, "application/x-ndjson", NULL);
}

/* A body built with printf. */
static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap, aq;
    va_start(ap, f);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, f, aq);
    va_end(aq);
    char *s = malloc((size_t)n + 1);
    cr_assert(s != NULL);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static void assert_counts(const struct th_resp *r, int accepted, int duplicates, size_t rejected)
{
    cr_assert_eq(r->status, 200, "events: %s", r->body);
    cr_assert(json_is_object(r->json), "not a JSON object: %s", r->body);
    cr_assert_eq(th_int(r, "accepted"), accepted, "accepted: %s", r->body);
    cr_assert_eq(th_int(r, "duplicates"), duplicates, "duplicates: %s", r->body);
    json_t *rej = json_object_get(r->json, "rejected");
    cr_assert(json_is_array(rej), "rejected is not an array: %s", r->body);
    cr_assert_eq(json_array_size(rej), rejected, "rejected: %s", r->body);
}

/* Posts a JSON array that must be taken whole: every event accepted, none duplicate or rejected. */
static void send_ok(const char *body, int accepted)
{
    struct th_resp r = post_array(w.acct.admin_key, body);
    assert_counts(&r, accepted, 0, 0);
    th_resp_free(&r);
}

/* true when msg names field as a whole word (letters, digits, '_' and '.' do not delimit). */
static bool names_field(const char *msg, const char *field)
{
    size_t n = strlen(field);
    for (const char *p = msg; p && (p = strstr(p, field)) != NULL; p++) {
        bool left = p == msg || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '.');
        bool right = !(isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.');
        if (left && right) return true;
    }
    return false;
}

/* rejected[i] is {index, id, error {code, message naming field}}; id NULL means null, field NULL: unchecked.
 */
static void assert_rejected(const struct th_resp *r, size_t i, int index, const char *id, const char *code,
                            const char *field)
{
    json_t *e = json_array_get(json_object_get(r->json, "rejected"), i);
    cr_assert(json_is_object(e), "rejected[%zu] missing: %s", i, r->body);
    cr_assert_eq(json_integer_value(json_object_get(e, "index")), index, "rejected[%zu].index: %s", i,
                 r->body);
    json_t *jid = json_object_get(e, "id");
    if (id == NULL)
        cr_assert(json_is_null(jid), "rejected[%zu].id should be null: %s", i, r->body);
    else
        cr_assert_str_eq(json_string_value(jid), id, "rejected[%zu].id: %s", i, r->body);
    json_t *err = json_object_get(e, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), code, "rejected[%zu] code: %s", i,
                     r->body);
    const char *msg = json_string_value(json_object_get(err, "message"));
    cr_assert(msg != NULL && *msg, "rejected[%zu] has no message: %s", i, r->body);
    if (field != NULL)
        cr_assert(names_field(msg, field), "rejected[%zu] should name %s: %s", i, field, r->body);
}

/* The item of a list with external_id ext (NULL if none); borrowed from list. */
static json_t *item_by_ext(json_t *list, const char *ext)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        const char *e = json_string_value(json_object_get(it, "external_id"));
        if (e != NULL && strcmp(e, ext) == 0) return it;
    }
    return NULL;
}

static json_t *item_by_id(json_t *list, int64_t id)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        if (json_integer_value(json_object_get(it, "id")) == id) return it;
    }
    return NULL;
}

static bool jbool(json_t *o, const char *field)
{
    json_t *v = json_object_get(o, field);
    cr_assert(json_is_boolean(v), "%s is not a boolean", field);
    return json_is_true(v);
}

/* The inbox rows of a state (NULL: all), up to 500; the caller decrefs. */
static json_t *inbox(const char *state)
{
    return state ? th_get_json(w.acct.admin_key, "/api/v1/webhooks/inbox?state=%s&limit=500", state)
                 : th_get_json(w.acct.admin_key, "/api/v1/webhooks/inbox?limit=500");
}

static json_t *inbox_row(json_t *list, const char *event_id)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        const char *e = th_jstr(it, "event_id");
        if (e != NULL && strcmp(e, event_id) == 0) return it;
    }
    return NULL;
}

static int64_t inbox_count(void)
{
    return th_count_rows("inbox", w.acct.id);
}

/* A deal's fields that must not depend on the order events came in (all but id and external_id). */
static json_t *deal_state(int64_t id)
{
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld", (long long)id);
    json_object_del(d, "id");
    json_object_del(d, "external_id");
    return d;
}

/* A deal's history rows without their own ids. */
static json_t *deal_history(int64_t id)
{
    json_t *h = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld/history", (long long)id);
    json_t *rows = json_incref(json_object_get(h, "items"));
    json_decref(h);
    cr_assert(json_is_array(rows));
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_object_del(row, "id");
        json_object_del(row, "deal_id");
    }
    return rows;
}

static void assert_history_row(json_t *rows, size_t i, int64_t from, int64_t to, const char *status,
                               const char *at, int64_t manager, int64_t loss_reason, int64_t price)
{
    json_t *row = json_array_get(rows, i);
    char *dump = json_dumps(rows, JSON_INDENT(1));
    cr_assert(row != NULL, "no history row %zu: %s", i, dump);
    json_t *f = json_object_get(row, "from_stage_id");
    if (from == 0)
        cr_assert(json_is_null(f), "row %zu from_stage_id should be null: %s", i, dump);
    else
        cr_assert_eq(json_integer_value(f), from, "row %zu from_stage_id: %s", i, dump);
    cr_assert_eq(th_jint(row, "to_stage_id"), to, "row %zu to_stage_id: %s", i, dump);
    cr_assert_str_eq(th_jstr(row, "status"), status, "row %zu status: %s", i, dump);
    cr_assert_str_eq(th_jstr(row, "at"), at, "row %zu at: %s", i, dump);
    json_t *m = json_object_get(row, "manager_id");
    if (manager == 0)
        cr_assert(json_is_null(m), "row %zu manager_id should be null: %s", i, dump);
    else
        cr_assert_eq(json_integer_value(m), manager, "row %zu manager_id: %s", i, dump);
    json_t *lr = json_object_get(row, "loss_reason_id");
    if (loss_reason == 0)
        cr_assert(json_is_null(lr), "row %zu loss_reason_id should be null: %s", i, dump);
    else
        cr_assert_eq(json_integer_value(lr), loss_reason, "row %zu loss_reason_id: %s", i, dump);
    cr_assert_eq(th_jint(row, "price"), price, "row %zu price: %s", i, dump);
    free(dump);
}

static void assert_null(json_t *o, const char *field)
{
    char *dump = json_dumps(o, JSON_COMPACT);
    cr_assert(json_is_null(json_object_get(o, field)), "%s should be null: %s", field, dump);
    free(dump);
}

/* ---- the doors: JSON array and NDJSON ---- */

Test(events, json_array_is_stored_and_applied_before_the_reply)
{
    struct th_resp r = post_array(
        w.acct.admin_key,
        "[{\"id\":\"a1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T08:00:00Z\","
        "\"data\":{\"manager\":\"m10\",\"name\":\"Кузнецова Мария\",\"role\":\"manager\",\"active\":true}},"
        "{\"id\":\"a2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T12:00:00+03:00\","
        "\"data\":{\"deal\":\"D1\",\"name\":\"Окна\",\"price\":99000,\"pipeline\":\"p1\",\"stage\":\"s2\","
        "\"manager\":\"m10\"}}]");
    assert_counts(&r, 2, 0, 0);
    th_resp_free(&r);

    int64_t m10 = th_id_by_ext(w.acct.admin_key, "managers", "m10");
    json_t *m = th_get_json(w.acct.admin_key, "/api/v1/managers/%lld", (long long)m10);
    cr_assert_str_eq(th_jstr(m, "name"), "Кузнецова Мария");
    cr_assert_str_eq(th_jstr(m, "role"), "manager");
    cr_assert(jbool(m, "active"));
    cr_assert(!jbool(m, "needs_setup"));
    json_decref(m);

    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:D1");
    cr_assert_str_eq(th_jstr(d, "external_id"), "D1");
    cr_assert_str_eq(th_jstr(d, "name"), "Окна");
    cr_assert_eq(th_jint(d, "price"), 99000);
    cr_assert_eq(th_jint(d, "pipeline_id"), w.pipeline_id);
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[1]);
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    cr_assert_eq(th_jint(d, "manager_id"), m10);
    assert_null(d, "loss_reason_id");
    assert_null(d, "closed_at");
    cr_assert_str_eq(th_jstr(d, "created_at"), "2024-03-01T09:00:00Z", "any RFC 3339 in, UTC out");
    json_decref(d);

    /* both rows are applied */
    json_t *rows = inbox("applied");
    cr_assert(inbox_row(rows, "a1") != NULL);
    cr_assert(inbox_row(rows, "a2") != NULL);
    cr_assert_str_eq(th_jstr(inbox_row(rows, "a2"), "state"), "applied");
    json_decref(rows);
    cr_assert_eq(inbox_count(), 2);
}

Test(events, ndjson_skips_blank_lines_and_rejects_a_bad_line_alone)
{
    const char *body = "{\"id\":\"n1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T08:00:00Z\","
                       "\"data\":{\"manager\":\"nm1\",\"name\":\"Анна\"}}\n"
                       "\n"
                       "{\"id\":\"n-bad\",\"type\":\n"
                       "   \n"
                       "{\"id\":\"n2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                       "\"data\":{\"deal\":\"ND1\",\"name\":\"Двери\",\"price\":5000,\"pipeline\":\"p1\","
                       "\"manager\":\"nm1\"}}\r\n"
                       "{\"id\":\"n3\",\"type\":\"deal.exploded\",\"at\":\"2024-03-01T09:30:00Z\",\"data\":{"
                       "\"deal\":\"ND1\"}}\n"
                       "\n"
                       "{\"id\":\"n4\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T10:00:00Z\","
                       "\"data\":{\"deal\":\"ND1\",\"price\":6000}}";
    struct th_resp r = post_ndjson(w.acct.admin_key, body);
    assert_counts(&r, 3, 0, 2);
    /* indexes count events (non-blank lines): n1 0, bad 1, n2 2, n3 3, n4 4 */
    assert_rejected(&r, 0, 1, NULL, "malformed_request", NULL);
    assert_rejected(&r, 1, 3, "n3", "validation_failed", "type");
    th_resp_free(&r);

    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:ND1");
    cr_assert_eq(th_jint(d, "price"), 6000);
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[0], "no stage: the first open stage");
    cr_assert_eq(th_jint(d, "manager_id"), th_id_by_ext(w.acct.admin_key, "managers", "nm1"));
    json_decref(d);
    cr_assert_eq(inbox_count(), 3, "the rejected lines are not stored");

    /* a body of blank lines only is an empty batch */
    r = post_ndjson(w.acct.admin_key, "\n\n  \n");
    assert_counts(&r, 0, 0, 0);
    th_resp_free(&r);
    /* NDJSON with a charset parameter is still NDJSON */
    r = th_request("POST", EVENTS, w.acct.admin_key,
                   "{\"id\":\"n5\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T11:00:00Z\","
                   "\"data\":{\"deal\":\"ND1\",\"name\":\"Двери межкомнатные\"}}\n",
                   "application/x-ndjson; charset=utf-8", NULL);
    assert_counts(&r, 1, 0, 0);
    th_resp_free(&r);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:ND1");
    cr_assert_str_eq(th_jstr(d, "name"), "Двери межкомнатные");
    json_decref(d);
}

Test(events, a_rejected_event_is_not_stored_and_its_id_stays_free)
{
    int64_t before = inbox_count();
    struct th_resp r = post_array(
        w.acct.admin_key, "[{\"id\":\"r1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                          "\"data\":{\"deal\":\"RD1\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"p1\"}},"
                          "{\"id\":\"r2\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T10:00:00Z\","
                          "\"data\":{\"deal\":\"RD1\",\"price\":\"двести\"}}]");
    assert_counts(&r, 1, 0, 1);
    assert_rejected(&r, 0, 1, "r2", "validation_failed", "data.price");
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), before + 1, "only the accepted event is stored");
    json_t *rows = inbox(NULL);
    cr_assert(inbox_row(rows, "r1") != NULL);
    cr_assert(inbox_row(rows, "r2") == NULL, "the rejected event is not in the inbox");
    json_decref(rows);
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:RD1");
    cr_assert_eq(th_jint(d, "price"), 100);
    json_decref(d);

    /* the same id, fixed: accepted, not a duplicate */
    r = post_array(w.acct.admin_key,
                   "[{\"id\":\"r2\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T10:00:00Z\","
                   "\"data\":{\"deal\":\"RD1\",\"price\":200}}]");
    assert_counts(&r, 1, 0, 0);
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), before + 2);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:RD1");
    cr_assert_eq(th_jint(d, "price"), 200);
    json_decref(d);
}

Test(events, the_same_id_in_one_request_and_across_requests_is_a_duplicate)
{
    struct th_resp r =
        post_array(w.acct.admin_key,
                   "[{\"id\":\"d1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                   "\"data\":{\"deal\":\"DU1\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"p1\"}},"
                   "{\"id\":\"d1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                   "\"data\":{\"deal\":\"DU2\",\"name\":\"Окна\",\"price\":999,\"pipeline\":\"p1\"}}]");
    assert_counts(&r, 1, 1, 0);
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), 1);
    r = th_get(w.acct.admin_key, "/api/v1/deals/ext:DU2");
    cr_assert_eq(r.status, 404, "the duplicate is not applied: %s", r.body);
    th_resp_free(&r);

    r = post_array(w.acct.admin_key,
                   "[{\"id\":\"d1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                   "\"data\":{\"deal\":\"DU1\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"p1\"}},"
                   "{\"id\":\"d2\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T10:00:00Z\","
                   "\"data\":{\"deal\":\"DU1\",\"price\":300}}]");
    assert_counts(&r, 1, 1, 0);
    th_resp_free(&r);
    r = post_ndjson(w.acct.admin_key,
                    "{\"id\":\"d2\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T11:00:00Z\","
                    "\"data\":{\"deal\":\"DU1\",\"price\":700}}\n");
    assert_counts(&r, 0, 1, 0);
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), 2);
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:DU1");
    cr_assert_eq(th_jint(d, "price"), 300, "a duplicate changes nothing");
    json_decref(d);

    /* an id is per account: another account may use d1 */
    struct th_account other;
    th_account_new(&other);
    r = th_request("POST", EVENTS, other.admin_key,
                   "[{\"id\":\"d1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T09:00:00Z\","
                   "\"data\":{\"manager\":\"x1\",\"name\":\"Икс\"}}]",
                   "application/json", NULL);
    assert_counts(&r, 1, 0, 0);
    th_resp_free(&r);
}

Test(events, types_fields_and_enums_are_strict)
{
    int64_t before = inbox_count();
    const char *body =
        "["
        /* 0 unknown type */
        "{\"id\":\"s0\",\"type\":\"deal.exploded\",\"at\":\"2024-03-01T09:00:00Z\",\"data\":{\"deal\":\"X\"}}"
        ","
        /* 1 missing field */
        "{\"id\":\"s1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X\",\"price\":1,\"pipeline\":\"p1\"}},"
        /* 2 unknown field in data */
        "{\"id\":\"s2\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X\",\"colour\":\"red\"}},"
        /* 3 wrong enum: task type */
        "{\"id\":\"s3\",\"type\":\"task.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"task\":\"T\",\"deal\":\"X\",\"type\":\"visit\",\"due_at\":\"2030-01-01T00:00:00Z\"}},"
        /* 4 wrong enum: direction */
        "{\"id\":\"s4\",\"type\":\"call.logged\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"call\":\"C\",\"manager\":\"m\",\"direction\":\"sideways\",\"duration_s\":1,"
        "\"answered\":true}},"
        /* 5 wrong enum: role */
        "{\"id\":\"s5\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"manager\":\"m\",\"name\":\"M\",\"role\":\"boss\"}},"
        /* 6 missing at */
        "{\"id\":\"s6\",\"type\":\"deal.deleted\",\"data\":{\"deal\":\"X\"}},"
        /* 7 wrong type: price as a string */
        "{\"id\":\"s7\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X\",\"price\":\"100\"}},"
        /* 8 at is not a time */
        "{\"id\":\"s8\",\"type\":\"deal.deleted\",\"at\":\"yesterday\",\"data\":{\"deal\":\"X\"}},"
        /* 9 data is not an object */
        "{\"id\":\"s9\",\"type\":\"deal.deleted\",\"at\":\"2024-03-01T09:00:00Z\",\"data\":[\"X\"]},"
        /* 10 an internal field of mapped amoCRM events is unknown here */
        "{\"id\":\"s10\",\"type\":\"deal.updated\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X\",\"price\":5,\"if_changed\":true}},"
        /* 11 a field of another type */
        "{\"id\":\"s11\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X\",\"manager\":\"m\",\"price\":5}},"
        /* 12 wrong type: answered as a string */
        "{\"id\":\"s12\",\"type\":\"call.logged\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"call\":\"C\",\"manager\":\"m\",\"direction\":\"in\",\"duration_s\":1,"
        "\"answered\":\"yes\"}},"
        /* 13 missing id */
        "{\"type\":\"deal.deleted\",\"at\":\"2024-03-01T09:00:00Z\",\"data\":{\"deal\":\"X\"}},"
        /* 14 not an object */
        "42,"
        /* 15 negative duration */
        "{\"id\":\"s15\",\"type\":\"call.logged\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"call\":\"C\",\"manager\":\"m\",\"direction\":\"in\",\"duration_s\":-1,"
        "\"answered\":false}}"
        "]";
    struct th_resp r = post_array(w.acct.admin_key, body);
    assert_counts(&r, 0, 0, 16);
    assert_rejected(&r, 0, 0, "s0", "validation_failed", "type");
    assert_rejected(&r, 1, 1, "s1", "validation_failed", "data.name");
    assert_rejected(&r, 2, 2, "s2", "validation_failed", "data.colour");
    assert_rejected(&r, 3, 3, "s3", "validation_failed", "data.type");
    assert_rejected(&r, 4, 4, "s4", "validation_failed", "data.direction");
    assert_rejected(&r, 5, 5, "s5", "validation_failed", "data.role");
    assert_rejected(&r, 6, 6, "s6", "validation_failed", "at");
    assert_rejected(&r, 7, 7, "s7", "validation_failed", "data.price");
    assert_rejected(&r, 8, 8, "s8", "validation_failed", "at");
    assert_rejected(&r, 9, 9, "s9", "validation_failed", "data");
    assert_rejected(&r, 10, 10, "s10", "validation_failed", "data.if_changed");
    assert_rejected(&r, 11, 11, "s11", "validation_failed", "data.price");
    assert_rejected(&r, 12, 12, "s12", "validation_failed", "data.answered");
    assert_rejected(&r, 13, 13, NULL, "validation_failed", "id");
    assert_rejected(&r, 14, 14, NULL, "validation_failed", NULL);
    assert_rejected(&r, 15, 15, "s15", "validation_failed", "data.duration_s");
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), before, "nothing stored");
    r = th_get(w.acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 0, "%s", r.body);
    th_resp_free(&r);
}

Test(events, a_body_that_is_not_an_array_of_events_is_400)
{
    int64_t before = inbox_count();
    struct th_resp r = post_array(w.acct.admin_key, "[{\"id\":\"x\",");
    cr_assert_eq(r.status, 400, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "malformed_request");
    th_resp_free(&r);
    r = post_array(
        w.acct.admin_key,
        "{\"id\":\"x\",\"type\":\"deal.deleted\",\"at\":\"2024-03-01T09:00:00Z\",\"data\":{\"deal\":\"X\"}}");
    cr_assert_eq(r.status, 400, "a single object is not an array: %s", r.body);
    cr_assert_str_eq(th_code(&r), "malformed_request");
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), before);
}

Test(events, text_plain_is_415)
{
    int64_t before = inbox_count();
    struct th_resp r =
        th_request("POST", EVENTS, w.acct.admin_key,
                   "[{\"id\":\"t1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T09:00:00Z\","
                   "\"data\":{\"manager\":\"tm\",\"name\":\"T\"}}]",
                   "text/plain", NULL);
    cr_assert_eq(r.status, 415, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "unsupported_media_type");
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), before);
    r = th_get(w.acct.admin_key, "/api/v1/managers/ext:tm");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
}

/* n events "id<i>" (all with the same id when same_id) as a JSON array or NDJSON. */
static char *many_events(int n, bool ndjson, bool same_id)
{
    static const char one[] = "{\"id\":\"e%d\",\"type\":\"deal.deleted\",\"at\":\"2024-03-01T09:00:00Z\","
                              "\"data\":{\"deal\":\"nope\"}}";
    size_t cap = (size_t)n * (sizeof one + 16) + 16, len = 0;
    char *s = malloc(cap);
    cr_assert(s != NULL);
    if (!ndjson) s[len++] = '[';
    for (int i = 0; i < n; i++) {
        if (i > 0 && !ndjson) s[len++] = ',';
        len += (size_t)snprintf(s + len, cap - len, one, same_id ? 0 : i);
        if (ndjson) s[len++] = '\n';
    }
    if (!ndjson) s[len++] = ']';
    s[len] = '\0';
    return s;
}

Test(events, more_than_10000_events_is_413_and_nothing_is_stored, .timeout = 300)
{
    int64_t before = inbox_count();
    char *body = many_events(10001, false, false);
    struct th_resp r = post_array(w.acct.admin_key, body);
    cr_assert_eq(r.status, 413, "%.300s", r.body);
    cr_assert_str_eq(th_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(body);
    body = many_events(10001, true, false);
    r = post_ndjson(w.acct.admin_key, body);
    cr_assert_eq(r.status, 413, "%.300s", r.body);
    cr_assert_str_eq(th_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(body);
    cr_assert_eq(inbox_count(), before, "nothing stored");

    /* exactly 10,000 is taken (one id, so one stored event and 9,999 duplicates) */
    body = many_events(10000, false, true);
    r = post_array(w.acct.admin_key, body);
    assert_counts(&r, 1, 9999, 0);
    th_resp_free(&r);
    free(body);
    cr_assert_eq(inbox_count(), before + 1);
}

Test(events, a_body_over_16_mib_is_413_even_with_fewer_events, .timeout = 300)
{
    /* 2,100 notes of 8,000 characters: about 17 MB in far fewer than 10,000 events */
    enum { N = 2100, TEXT = 8000 };
    size_t cap = (size_t)N * (TEXT + 160) + 16, len = 0;
    char *body = malloc(cap), *text = malloc(TEXT + 1);
    cr_assert(body != NULL && text != NULL);
    memset(text, 'a', TEXT);
    text[TEXT] = '\0';
    body[len++] = '[';
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{\"id\":\"big%d\",\"type\":\"note.added\",\"at\":\"2024-03-01T09:00:00Z\","
                                "\"data\":{\"note\":\"N%d\",\"deal\":\"nope\",\"text\":\"%s\"}}",
                                i ? "," : "", i, i, text);
    body[len++] = ']';
    body[len] = '\0';
    free(text);
    cr_assert_gt(len, (size_t)16 * 1024 * 1024);
    struct th_resp r = post_array(w.acct.admin_key, body);
    cr_assert_eq(r.status, 413, "%.300s", r.body);
    cr_assert_str_eq(th_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(body);
    cr_assert_eq(inbox_count(), 0, "nothing stored");
}

Test(events, manager_and_readonly_keys_are_403_head_may_post)
{
    const char *body = "[{\"id\":\"k1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T09:00:00Z\","
                       "\"data\":{\"manager\":\"km\",\"name\":\"K\"}}]";
    struct th_resp r = post_array(w.manager1_key, body);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    r = post_array(w.readonly_key, body);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    cr_assert_eq(inbox_count(), 0);
    r = th_get(w.manager1_key, "/api/v1/webhooks/inbox");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    r = th_get(w.readonly_key, "/api/v1/webhooks/inbox");
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    r = th_request("POST", "/api/v1/webhooks/inbox/1/retry", w.readonly_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    r = th_request("POST", EVENTS, NULL, body, "application/json", NULL);
    cr_assert_eq(r.status, 401, "%s", r.body);
    th_resp_free(&r);
    r = post_array(w.head_key, body);
    assert_counts(&r, 1, 0, 0);
    th_resp_free(&r);
    r = th_get(w.head_key, "/api/v1/webhooks/inbox");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
}

/* ---- placeholders ---- */

Test(events, unknown_manager_pipeline_stage_and_loss_reason_become_placeholders)
{
    send_ok(
        "[{\"id\":\"p1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"PD1\",\"name\":\"Склад\",\"price\":500000,\"pipeline\":\"P9\",\"stage\":\"S9\","
        "\"manager\":\"M9\"}},"
        "{\"id\":\"p2\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-02T09:00:00Z\","
        "\"data\":{\"deal\":\"PD1\",\"stage\":\"S10\"}},"
        "{\"id\":\"p3\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-03T09:00:00Z\","
        "\"data\":{\"deal\":\"PD1\",\"stage\":\"lost\",\"loss_reason\":\"LR9\"}}]",
        3);

    json_t *managers = th_get_json(w.acct.admin_key, "/api/v1/managers?limit=500");
    json_t *m = item_by_ext(managers, "M9");
    cr_assert(m != NULL, "no placeholder manager");
    cr_assert_str_eq(th_jstr(m, "name"), "M9");
    cr_assert(jbool(m, "needs_setup"));
    cr_assert_str_eq(th_jstr(m, "role"), "manager");
    cr_assert(jbool(m, "active"));
    cr_assert(!jbool(m, "distribution_enabled"), "a placeholder is out of distribution");
    int64_t m9 = th_jint(m, "id");
    json_decref(managers);

    json_t *pipelines = th_get_json(w.acct.admin_key, "/api/v1/pipelines?limit=500");
    json_t *p = item_by_ext(pipelines, "P9");
    cr_assert(p != NULL, "no placeholder pipeline");
    cr_assert_str_eq(th_jstr(p, "name"), "P9");
    cr_assert(jbool(p, "needs_setup"));
    int64_t p9 = th_jint(p, "id");
    json_t *stages = json_object_get(p, "stages");
    cr_assert_eq(json_array_size(stages), 4, "S9, S10, won, lost");
    const char *ext[] = {"S9", "S10"};
    int last_position = -1;
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(stages, i);
        int position = (int)th_jint(s, "position");
        cr_assert_gt(position, last_position, "stages in funnel order");
        last_position = position;
        if (i < 2) {
            cr_assert_str_eq(th_jstr(s, "external_id"), ext[i]);
            cr_assert_str_eq(th_jstr(s, "name"), ext[i]);
            cr_assert_str_eq(th_jstr(s, "kind"), "open");
            cr_assert(jbool(s, "needs_setup"));
        }
    }
    cr_assert_str_eq(th_jstr(json_array_get(stages, 2), "kind"), "won");
    cr_assert_str_eq(th_jstr(json_array_get(stages, 3), "kind"), "lost");
    int64_t s9 = th_jint(json_array_get(stages, 0), "id"), s10 = th_jint(json_array_get(stages, 1), "id");
    int64_t lost = th_jint(json_array_get(stages, 3), "id");
    json_decref(pipelines);

    json_t *reasons = th_get_json(w.acct.admin_key, "/api/v1/loss-reasons?limit=500");
    json_t *lr = item_by_ext(reasons, "LR9");
    cr_assert(lr != NULL, "no placeholder loss reason");
    cr_assert_str_eq(th_jstr(lr, "name"), "LR9");
    cr_assert(jbool(lr, "needs_setup"));
    int64_t lr9 = th_jint(lr, "id");
    json_decref(reasons);

    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:PD1");
    cr_assert_eq(th_jint(d, "pipeline_id"), p9);
    cr_assert_eq(th_jint(d, "stage_id"), lost);
    cr_assert_str_eq(th_jstr(d, "status"), "lost");
    cr_assert_eq(th_jint(d, "manager_id"), m9);
    cr_assert_eq(th_jint(d, "loss_reason_id"), lr9);
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2024-03-03T09:00:00Z");
    int64_t id = th_jint(d, "id");
    json_decref(d);
    json_t *h = deal_history(id);
    cr_assert_eq(json_array_size(h), 3);
    assert_history_row(h, 0, 0, s9, "open", "2024-03-01T09:00:00Z", m9, 0, 500000);
    assert_history_row(h, 1, s9, s10, "open", "2024-03-02T09:00:00Z", m9, 0, 500000);
    assert_history_row(h, 2, s10, lost, "lost", "2024-03-03T09:00:00Z", m9, lr9, 500000);
    json_decref(h);

    /* the placeholders are reused, not created again */
    send_ok(
        "[{\"id\":\"p4\",\"type\":\"deal.created\",\"at\":\"2024-03-04T09:00:00Z\","
        "\"data\":{\"deal\":\"PD2\",\"name\":\"Склад 2\",\"price\":1,\"pipeline\":\"P9\",\"stage\":\"S10\","
        "\"manager\":\"M9\"}}]",
        1);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:PD2");
    cr_assert_eq(th_jint(d, "pipeline_id"), p9);
    cr_assert_eq(th_jint(d, "stage_id"), s10);
    cr_assert_eq(th_jint(d, "manager_id"), m9);
    json_decref(d);
    pipelines = th_get_json(w.acct.admin_key, "/api/v1/pipelines?limit=500");
    cr_assert_eq(json_array_size(json_object_get(pipelines, "items")), 2);
    cr_assert_eq(json_array_size(json_object_get(item_by_ext(pipelines, "P9"), "stages")), 4);
    json_decref(pipelines);
}

/* How many of the events with the given ids (an SQL list) are in state. */
static int64_t events_in_state(const char *ids, const char *state)
{
    return th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND event_id IN (%s) AND state = '%s'",
                      (long long)w.acct.id, ids, state);
}

/* From now on the database refuses to insert a deal with the given name, with the given SQLSTATE (a trigger of
 * this test, one per name). */
static void refuse_deals_named(const char *name, const char *sqlstate)
{
    th_sql_int("CREATE OR REPLACE FUNCTION test_refuse_%s() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
               " IF NEW.name = '%s' THEN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '%s'; END IF;"
               " RETURN NEW; END $f$;"
               " DROP TRIGGER IF EXISTS test_refuse_%s ON deals;"
               " CREATE TRIGGER test_refuse_%s BEFORE INSERT ON deals FOR EACH ROW"
               " EXECUTE FUNCTION test_refuse_%s()",
               name, name, sqlstate, name, name, name);
}

static void refuse_deals_named_boom(void)
{
    refuse_deals_named("boom", "P0001"); /* raise_exception, as a plain RAISE gives */
}

/* An event that fails after it made placeholders takes them back with it (its savepoint); the next event of the
 * same batch that names them makes them again rather than using what was taken back. The failure is a
 * database error raised by a trigger of this test. */
Test(events, a_failed_event_takes_back_its_placeholders_and_the_next_one_makes_them_again)
{
    refuse_deals_named_boom();
    send_ok("[{\"id\":\"fb1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
            "\"data\":{\"deal\":\"FD1\",\"name\":\"boom\",\"price\":1,\"pipeline\":\"FP\",\"stage\":\"FS\","
            "\"manager\":\"FM\"}},"
            "{\"id\":\"fb2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
            "\"data\":{\"deal\":\"FD2\",\"name\":\"fine\",\"price\":2,\"pipeline\":\"FP\",\"stage\":\"FS\","
            "\"manager\":\"FM\"}}]",
            2);
    long long id = (long long)w.acct.id;
    cr_assert_eq(events_in_state("'fb1'", "failed"), 1);
    cr_assert_eq(events_in_state("'fb2'", "applied"), 1, "the second event applies");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals d JOIN managers m ON m.account_id = d.account_id"
                            " AND m.id = d.manager_id JOIN pipelines p ON p.account_id = d.account_id"
                            " AND p.id = d.pipeline_id JOIN stages s ON s.account_id = d.account_id"
                            " AND s.id = d.stage_id WHERE d.account_id = %lld AND d.external_id = 'FD2'"
                            " AND m.external_id = 'FM' AND p.external_id = 'FP' AND s.external_id = 'FS'", id), 1);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM managers WHERE account_id = %lld AND external_id = 'FM'", id), 1);
}

/* Held creations are inserted at the end of the batch, in one statement; when the database refuses one of them as
 * a duplicate (a unique violation raised by a trigger of this test, as a deal given the same external id
 * meanwhile would), the batch runs again event by event and only that creation fails. */
Test(events, a_held_creation_refused_as_a_duplicate_fails_alone)
{
    refuse_deals_named("dupe", "23505"); /* unique_violation */
    send_ok("[{\"id\":\"ud1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
            "\"data\":{\"deal\":\"UD1\",\"name\":\"one\",\"price\":1,\"pipeline\":\"p1\"}},"
            "{\"id\":\"ud2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
            "\"data\":{\"deal\":\"UD2\",\"name\":\"dupe\",\"price\":2,\"pipeline\":\"p1\"}},"
            "{\"id\":\"ud3\",\"type\":\"deal.created\",\"at\":\"2024-03-01T11:00:00Z\","
            "\"data\":{\"deal\":\"UD3\",\"name\":\"three\",\"price\":3,\"pipeline\":\"p1\"}}]",
            3);
    long long id = (long long)w.acct.id;
    cr_assert_eq(events_in_state("'ud2'", "failed"), 1);
    cr_assert_eq(events_in_state("'ud1', 'ud3'", "applied"), 2, "the creations around it apply");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id IN ('UD1', 'UD3')",
                            id), 2);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id = 'UD2'", id), 0);
}

/* A batch is first applied without a savepoint for each event; an event that fails in the middle makes the
 * whole batch run again, event by event. The events before and after it are then applied once each. */
Test(events, an_event_failing_between_others_fails_alone_and_the_others_apply_once)
{
    refuse_deals_named_boom();
    send_ok("[{\"id\":\"mb1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
            "\"data\":{\"deal\":\"MD1\",\"name\":\"first\",\"price\":1,\"pipeline\":\"MP\"}},"
            "{\"id\":\"mb2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
            "\"data\":{\"deal\":\"MD2\",\"name\":\"boom\",\"price\":2,\"pipeline\":\"MP\"}},"
            "{\"id\":\"mb3\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-01T11:00:00Z\","
            "\"data\":{\"deal\":\"MD1\",\"pipeline\":\"MP\",\"stage\":\"won\"}}]",
            3);
    long long id = (long long)w.acct.id;
    cr_assert_eq(events_in_state("'mb2'", "failed"), 1);
    cr_assert_eq(events_in_state("'mb1', 'mb3'", "applied"), 2, "the events around it apply");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id = 'MD2'", id), 0);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deal_history h JOIN deals d ON d.account_id = h.account_id"
                            " AND d.id = h.deal_id WHERE d.account_id = %lld AND d.external_id = 'MD1'", id),
                 2, "the creation and the move, once each");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id = 'MD1'"
                            " AND status = 'won'", id), 1);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM pipelines WHERE account_id = %lld AND external_id = 'MP'", id),
                 1);
}

Test(events, a_placeholder_stage_goes_after_the_last_open_stage)
{
    send_ok(
        "[{\"id\":\"q1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"QD1\",\"name\":\"Окна\",\"price\":1000,\"pipeline\":\"p1\",\"stage\":\"s9\"}},"
        "{\"id\":\"q2\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-02T09:00:00Z\","
        "\"data\":{\"deal\":\"QD1\",\"pipeline\":\"p1\",\"stage\":\"s10\"}}]",
        2);
    json_t *p = th_get_json(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)w.pipeline_id);
    cr_assert(!jbool(p, "needs_setup"), "a known pipeline stays set up");
    json_t *stages = json_object_get(p, "stages");
    cr_assert_eq(json_array_size(stages), 7);
    const char *exts[] = {"s1", "s2", "s3", "s9", "s10"};
    int last = -1;
    for (size_t i = 0; i < 7; i++) {
        json_t *s = json_array_get(stages, i);
        cr_assert_gt((int)th_jint(s, "position"), last);
        last = (int)th_jint(s, "position");
        if (i < 5) {
            cr_assert_str_eq(th_jstr(s, "external_id"), exts[i]);
            cr_assert_str_eq(th_jstr(s, "kind"), "open");
            cr_assert_eq(jbool(s, "needs_setup"), i >= 3, "stage %zu needs_setup", i);
        }
    }
    cr_assert_eq(th_jint(json_array_get(stages, 5), "id"), w.won_stage, "won keeps its place at the end");
    cr_assert_eq(th_jint(json_array_get(stages, 6), "id"), w.lost_stage, "lost keeps its place at the end");
    cr_assert_str_eq(th_jstr(json_array_get(stages, 3), "name"), "s9");
    int64_t s10 = th_jint(json_array_get(stages, 4), "id");
    json_decref(p);
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:QD1");
    cr_assert_eq(th_jint(d, "stage_id"), s10);
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    json_decref(d);
}

/* A deal created without a stage starts in its pipeline's first open stage; in one batch, over two pipelines
 * (one a new placeholder, which gets a "new" stage), each deal gets its own pipeline's. */
Test(events, a_deal_without_a_stage_starts_in_its_own_pipelines_first_open_stage)
{
    send_ok("[{\"id\":\"f1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
            "\"data\":{\"deal\":\"FD1\",\"name\":\"A\",\"price\":1,\"pipeline\":\"p1\"}},"
            "{\"id\":\"f2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:01:00Z\","
            "\"data\":{\"deal\":\"FD2\",\"name\":\"B\",\"price\":1,\"pipeline\":\"fp9\"}},"
            "{\"id\":\"f3\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:02:00Z\","
            "\"data\":{\"deal\":\"FD3\",\"name\":\"C\",\"price\":1,\"pipeline\":\"p1\"}},"
            "{\"id\":\"f4\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:03:00Z\","
            "\"data\":{\"deal\":\"FD4\",\"name\":\"D\",\"price\":1,\"pipeline\":\"fp9\"}}]",
            4);
    int64_t fp9 = th_id_by_ext(w.acct.admin_key, "pipelines", "fp9");
    int64_t fresh = th_sql_int("SELECT id FROM stages WHERE account_id = %lld AND pipeline_id = %lld AND "
                               "external_id = 'new' AND kind = 'open'",
                               (long long)w.acct.id, (long long)fp9);
    const char *exts[] = {"FD1", "FD2", "FD3", "FD4"};
    for (int i = 0; i < 4; i++) {
        json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:%s", exts[i]);
        cr_assert_eq(th_jint(d, "pipeline_id"), i % 2 ? fp9 : w.pipeline_id, "%s", exts[i]);
        cr_assert_eq(th_jint(d, "stage_id"), i % 2 ? fresh : w.stages[0], "%s starts in its pipeline's first "
                     "open stage", exts[i]);
        json_decref(d);
    }
}

/* Plain creations of one batch are inserted together (held until another kind of event or the end of the
 * batch, at most 64 at a time): 130 creations, a second creation of one of them under another event id, and two
 * moves at the end. Every deal gets its ids in the order of its event, one creation change and its history;
 * the second creation is ignored and the moves find their deals. */
Test(events, creations_of_one_batch_are_inserted_together_in_event_order)
{
    enum { N = 130 };
    struct so_buf b = {0};
    so_buf_printf(&b, "%s", "[");
    for (int i = 0; i < N; i++) {
        so_buf_printf(&b, "%s{\"id\":\"hc%d\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:%02d:%02dZ\","
                      "\"data\":{\"deal\":\"HD%03d\",\"name\":\"held %d\",\"price\":%d,\"pipeline\":\"p1\","
                      "\"stage\":\"s1\"}}", i ? "," : "", i, i / 60, i % 60, i, i, i * 10);
        if (i == 99) /* the deal of event 5 again, under another id */
            so_buf_printf(&b, "%s", ",{\"id\":\"hc-again\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:01:40Z\","
                            "\"data\":{\"deal\":\"HD005\",\"name\":\"again\",\"price\":1,\"pipeline\":\"p1\"}}");
    }
    so_buf_printf(&b, "%s", ",{\"id\":\"hm0\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-01T10:00:00Z\","
                    "\"data\":{\"deal\":\"HD000\",\"pipeline\":\"p1\",\"stage\":\"s2\"}}"
                    ",{\"id\":\"hm70\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-01T10:00:01Z\","
                    "\"data\":{\"deal\":\"HD070\",\"pipeline\":\"p1\",\"stage\":\"won\"}}]");
    cr_assert(!b.failed);
    send_ok(b.data, N + 3);
    so_buf_free(&b);
    long long id = (long long)w.acct.id;
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id LIKE 'HD%%'", id), N);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM (SELECT id, row_number() OVER (ORDER BY id) AS by_id,"
                            " row_number() OVER (ORDER BY external_id) AS by_event FROM deals"
                            " WHERE account_id = %lld AND external_id LIKE 'HD%%') x WHERE by_id <> by_event", id),
                 0, "the deals' ids follow the order of their events");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id LIKE 'HD%%'"
                            " AND name = 'held ' || substr(external_id, 3)::int"
                            " AND price = 10 * substr(external_id, 3)::int", id), N, "each deal has its own fields");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deal_changes c JOIN deals d ON d.account_id = c.account_id"
                            " AND d.id = c.deal_id WHERE d.account_id = %lld AND d.external_id LIKE 'HD%%'"
                            " AND c.creation AND c.at = d.created_at", id), N, "one creation change a deal");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deal_history h JOIN deals d ON d.account_id = h.account_id"
                            " AND d.id = h.deal_id WHERE d.account_id = %lld AND d.external_id LIKE 'HD%%'", id),
                 N + 2, "a creation row a deal, and the two moves");
    cr_assert_eq(events_in_state("'hc-again'", "ignored"), 1, "a second creation of a deal is ignored");
    cr_assert_eq(events_in_state("'hm0', 'hm70', 'hc0', 'hc64', 'hc129'", "applied"), 5);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals d JOIN stages s ON s.account_id = d.account_id"
                            " AND s.id = d.stage_id WHERE d.account_id = %lld AND ((d.external_id = 'HD000'"
                            " AND s.external_id = 's2') OR (d.external_id = 'HD070' AND d.status = 'won'))", id),
                 2, "the moves found their deals");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id = 'HD005'"
                            " AND name = 'held 5'", id), 1);
}

Test(events, won_and_lost_name_the_pipelines_closing_stages)
{
    send_ok(
        "[{\"id\":\"w1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"WL1\",\"name\":\"Окна\",\"price\":1000,\"pipeline\":\"p1\",\"stage\":\"lost\","
        "\"manager\":\"wm\"}},"
        "{\"id\":\"w2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"deal\":\"WL2\",\"name\":\"Двери\",\"price\":2000,\"pipeline\":\"p1\",\"stage\":\"won\"}}"
        ","
        "{\"id\":\"w3\",\"type\":\"deal.created\",\"at\":\"2024-03-01T11:00:00Z\","
        "\"data\":{\"deal\":\"WL3\",\"name\":\"Полы\",\"price\":3000,\"pipeline\":\"p1\",\"stage\":\"s2\"}},"
        "{\"id\":\"w4\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-02T11:00:00Z\","
        "\"data\":{\"deal\":\"WL3\",\"stage\":\"lost\",\"loss_reason\":\"r1\"}}]",
        4);
    int64_t wm = th_id_by_ext(w.acct.admin_key, "managers", "wm");

    /* created in lost: a closed deal, created and closed at the same time */
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL1");
    cr_assert_eq(th_jint(d, "stage_id"), w.lost_stage);
    cr_assert_str_eq(th_jstr(d, "status"), "lost");
    cr_assert_str_eq(th_jstr(d, "created_at"), "2024-03-01T09:00:00Z");
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2024-03-01T09:00:00Z");
    assert_null(d, "loss_reason_id");
    int64_t wl1 = th_jint(d, "id");
    json_decref(d);
    json_t *h = deal_history(wl1);
    cr_assert_eq(json_array_size(h), 1);
    assert_history_row(h, 0, 0, w.lost_stage, "lost", "2024-03-01T09:00:00Z", wm, 0, 1000);
    json_decref(h);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals?status=lost&pipeline_id=%lld", (long long)w.pipeline_id);
    cr_assert(item_by_id(d, wl1) != NULL, "a deal created lost is listed as lost");
    json_decref(d);

    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL2");
    cr_assert_eq(th_jint(d, "stage_id"), w.won_stage);
    cr_assert_str_eq(th_jstr(d, "status"), "won");
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2024-03-01T10:00:00Z");
    json_decref(d);

    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL3");
    cr_assert_eq(th_jint(d, "stage_id"), w.lost_stage);
    cr_assert_str_eq(th_jstr(d, "status"), "lost");
    cr_assert_eq(th_jint(d, "loss_reason_id"), w.loss_reason, "r1 names the existing loss reason");
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2024-03-02T11:00:00Z");
    json_decref(d);

    /* out of lost into an open stage reopens; into won closes as won */
    send_ok("[{\"id\":\"w5\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-03T11:00:00Z\","
            "\"data\":{\"deal\":\"WL3\",\"stage\":\"s3\"}}]",
            1);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL3");
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[2]);
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    assert_null(d, "closed_at");
    assert_null(d, "loss_reason_id");
    json_decref(d);
    send_ok("[{\"id\":\"w6\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-04T11:00:00Z\","
            "\"data\":{\"deal\":\"WL3\",\"stage\":\"won\"}}]",
            1);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL3");
    cr_assert_eq(th_jint(d, "stage_id"), w.won_stage);
    cr_assert_str_eq(th_jstr(d, "status"), "won");
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2024-03-04T11:00:00Z");
    json_decref(d);

    /* "143" names the lost stage only in pipelines that came from amoCRM: here it is an ordinary stage */
    send_ok(
        "[{\"id\":\"w7\",\"type\":\"deal.created\",\"at\":\"2024-03-05T09:00:00Z\","
        "\"data\":{\"deal\":\"WL4\",\"name\":\"Крыша\",\"price\":1,\"pipeline\":\"p1\",\"stage\":\"143\"}}]",
        1);
    d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WL4");
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    cr_assert_neq(th_jint(d, "stage_id"), w.lost_stage);
    json_decref(d);
}

Test(events, patch_or_upsert_of_a_placeholder_clears_needs_setup)
{
    send_ok(
        "[{\"id\":\"c1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"CD1\",\"name\":\"Окна\",\"price\":1000,\"pipeline\":\"PX\",\"stage\":\"SX\","
        "\"manager\":\"MX\"}},"
        "{\"id\":\"c2\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"deal\":\"CD1\",\"manager\":\"MY\"}},"
        "{\"id\":\"c3\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-02T09:00:00Z\","
        "\"data\":{\"deal\":\"CD1\",\"stage\":\"lost\",\"loss_reason\":\"LX\"}}]",
        3);
    int64_t mx = th_id_by_ext(w.acct.admin_key, "managers", "MX");
    char path[128];
    snprintf(path, sizeof path, "/api/v1/managers/%lld", (long long)mx);
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"name\":\"Сидоров Иван\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "name"), "Сидоров Иван");
    cr_assert(json_is_false(json_object_get(r.json, "needs_setup")), "%s", r.body);
    th_resp_free(&r);
    json_t *m = th_get_json(w.acct.admin_key, "/api/v1/managers/%lld", (long long)mx);
    cr_assert(!jbool(m, "needs_setup"));
    json_decref(m);

    /* manager.upserted clears it too */
    m = th_get_json(w.acct.admin_key, "/api/v1/managers/ext:MY");
    cr_assert(jbool(m, "needs_setup"));
    json_decref(m);
    send_ok("[{\"id\":\"c4\",\"type\":\"manager.upserted\",\"at\":\"2024-03-03T09:00:00Z\","
            "\"data\":{\"manager\":\"MY\",\"name\":\"Орлова Дарья\"}}]",
            1);
    m = th_get_json(w.acct.admin_key, "/api/v1/managers/ext:MY");
    cr_assert(!jbool(m, "needs_setup"));
    cr_assert_str_eq(th_jstr(m, "name"), "Орлова Дарья");
    json_decref(m);

    json_t *pipelines = th_get_json(w.acct.admin_key, "/api/v1/pipelines?limit=500");
    json_t *p = item_by_ext(pipelines, "PX");
    cr_assert(p != NULL);
    int64_t px = th_jint(p, "id");
    int64_t sx = th_jint(json_array_get(json_object_get(p, "stages"), 0), "id");
    json_decref(pipelines);
    snprintf(path, sizeof path, "/api/v1/pipelines/%lld", (long long)px);
    r = th_patch(w.acct.admin_key, path, "{\"name\":\"Опт\",\"stages\":[{\"id\":%lld,\"name\":\"Новая\"}]}",
                 (long long)sx);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    p = th_get_json(w.acct.admin_key, "/api/v1/pipelines/%lld", (long long)px);
    cr_assert_str_eq(th_jstr(p, "name"), "Опт");
    cr_assert(!jbool(p, "needs_setup"));
    json_t *s = json_array_get(json_object_get(p, "stages"), 0);
    cr_assert_eq(th_jint(s, "id"), sx);
    cr_assert_str_eq(th_jstr(s, "name"), "Новая");
    cr_assert(!jbool(s, "needs_setup"), "the patched stage is set up");
    json_decref(p);

    json_t *reasons = th_get_json(w.acct.admin_key, "/api/v1/loss-reasons?limit=500");
    int64_t lx = th_jint(item_by_ext(reasons, "LX"), "id");
    json_decref(reasons);
    snprintf(path, sizeof path, "/api/v1/loss-reasons/%lld", (long long)lx);
    r = th_patch(w.acct.admin_key, path, "{\"name\":\"Нет бюджета\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_t *lr = th_get_json(w.acct.admin_key, "/api/v1/loss-reasons/%lld", (long long)lx);
    cr_assert(!jbool(lr, "needs_setup"));
    cr_assert_str_eq(th_jstr(lr, "name"), "Нет бюджета");
    cr_assert_str_eq(th_jstr(lr, "external_id"), "LX");
    json_decref(lr);
}

/* ---- out of order ---- */

/* The events of one deal, with ids prefixed by p; i picks one (0..6). */
static char *order_event(const char *p, const char *deal, int i)
{
    switch (i) {
    case 0:
        return fmt(
            "{\"id\":\"%s0\",\"type\":\"deal.created\",\"at\":\"2024-04-01T09:00:00Z\",\"data\":{\"deal\":"
            "\"%s\",\"name\":\"Окна\",\"price\":100000,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":"
            "\"oa\"}}",
            p, deal);
    case 1:
        return fmt("{\"id\":\"%s1\",\"type\":\"deal.stage_changed\",\"at\":\"2024-04-01T10:00:00Z\","
                   "\"data\":{\"deal\":\"%s\",\"stage\":\"s2\"}}",
                   p, deal);
    case 2: /* sent last in the shuffled order: the late price change */
        return fmt("{\"id\":\"%s2\",\"type\":\"deal.updated\",\"at\":\"2024-04-01T11:00:00Z\","
                   "\"data\":{\"deal\":\"%s\",\"name\":\"Окна ПВХ\",\"price\":120000}}",
                   p, deal);
    case 3:
        return fmt("{\"id\":\"%s3\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-04-01T12:00:00Z\","
                   "\"data\":{\"deal\":\"%s\",\"manager\":\"ob\"}}",
                   p, deal);
    case 4: /* the late stage change between two existing ones */
        return fmt("{\"id\":\"%s4\",\"type\":\"deal.stage_changed\",\"at\":\"2024-04-01T13:00:00+00:00\","
                   "\"data\":{\"deal\":\"%s\",\"pipeline\":\"p1\",\"stage\":\"s3\"}}",
                   p, deal);
    case 5:
        return fmt("{\"id\":\"%s5\",\"type\":\"deal.updated\",\"at\":\"2024-04-01T14:00:00Z\","
                   "\"data\":{\"deal\":\"%s\",\"price\":130000}}",
                   p, deal);
    default:
        return fmt("{\"id\":\"%s6\",\"type\":\"deal.stage_changed\",\"at\":\"2024-04-01T15:00:00Z\","
                   "\"data\":{\"deal\":\"%s\",\"stage\":\"lost\",\"loss_reason\":\"r1\"}}",
                   p, deal);
    }
}

/* Posts the events picks[0..n) of a deal in one JSON array. */
static void send_picks(const char *p, const char *deal, const int *picks, int n)
{
    size_t cap = 16, len;
    char *body = malloc(cap);
    strcpy(body, "[");
    for (int i = 0; i < n; i++) {
        char *ev = order_event(p, deal, picks[i]);
        len = strlen(body);
        cap = len + strlen(ev) + 4;
        body = realloc(body, cap);
        snprintf(body + len, cap - len, "%s%s", i ? "," : "", ev);
        free(ev);
    }
    len = strlen(body);
    body = realloc(body, len + 2);
    strcpy(body + len, "]");
    send_ok(body, n);
    free(body);
}

Test(events, out_of_order_gives_the_same_state_and_history_as_in_order)
{
    send_ok("[{\"id\":\"mo1\",\"type\":\"manager.upserted\",\"at\":\"2024-01-01T00:00:00Z\","
            "\"data\":{\"manager\":\"oa\",\"name\":\"Алексеев\"}},"
            "{\"id\":\"mo2\",\"type\":\"manager.upserted\",\"at\":\"2024-01-01T00:00:00Z\","
            "\"data\":{\"manager\":\"ob\",\"name\":\"Борисова\"}}]",
            2);
    int64_t oa = th_id_by_ext(w.acct.admin_key, "managers", "oa"),
            ob = th_id_by_ext(w.acct.admin_key, "managers", "ob");

    /* deal A: one event a request, in time order */
    for (int i = 0; i < 7; i++)
        send_picks("a-", "OA", (int[]){i}, 1);
    /* deal B: the same changes in a shuffled order, several requests */
    send_picks("b-", "OB", (int[]){5, 0}, 2);
    send_picks("b-", "OB", (int[]){6, 3}, 2);
    send_picks("b-", "OB", (int[]){1}, 1);
    send_picks("b-", "OB", (int[]){4}, 1);
    send_picks("b-", "OB", (int[]){2}, 1);

    int64_t a = th_id_by_ext(w.acct.admin_key, "deals", "OA"),
            b = th_id_by_ext(w.acct.admin_key, "deals", "OB");

    /* A is exactly what happened */
    json_t *da = deal_state(a);
    cr_assert_str_eq(th_jstr(da, "name"), "Окна ПВХ");
    cr_assert_eq(th_jint(da, "price"), 130000);
    cr_assert_eq(th_jint(da, "pipeline_id"), w.pipeline_id);
    cr_assert_eq(th_jint(da, "stage_id"), w.lost_stage);
    cr_assert_str_eq(th_jstr(da, "status"), "lost");
    cr_assert_eq(th_jint(da, "manager_id"), ob);
    cr_assert_eq(th_jint(da, "loss_reason_id"), w.loss_reason);
    cr_assert_str_eq(th_jstr(da, "created_at"), "2024-04-01T09:00:00Z");
    cr_assert_str_eq(th_jstr(da, "closed_at"), "2024-04-01T15:00:00Z");
    cr_assert_str_eq(th_jstr(da, "updated_at"), "2024-04-01T15:00:00Z");
    json_t *ha = deal_history(a);
    cr_assert_eq(json_array_size(ha), 5, "created, s2, responsible, s3, lost");
    assert_history_row(ha, 0, 0, w.stages[0], "open", "2024-04-01T09:00:00Z", oa, 0, 100000);
    assert_history_row(ha, 1, w.stages[0], w.stages[1], "open", "2024-04-01T10:00:00Z", oa, 0, 100000);
    assert_history_row(ha, 2, w.stages[1], w.stages[1], "open", "2024-04-01T12:00:00Z", ob, 0, 120000);
    assert_history_row(ha, 3, w.stages[1], w.stages[2], "open", "2024-04-01T13:00:00Z", ob, 0, 120000);
    assert_history_row(ha, 4, w.stages[2], w.lost_stage, "lost", "2024-04-01T15:00:00Z", ob, w.loss_reason,
                       130000);

    /* B came out the same */
    json_t *db = deal_state(b);
    char *sa = json_dumps(da, JSON_SORT_KEYS), *sb = json_dumps(db, JSON_SORT_KEYS);
    cr_assert(json_equal(da, db), "deal differs:\n in order: %s\n shuffled: %s", sa, sb);
    free(sa);
    free(sb);
    json_t *hb = deal_history(b);
    sa = json_dumps(ha, JSON_SORT_KEYS | JSON_INDENT(1));
    sb = json_dumps(hb, JSON_SORT_KEYS | JSON_INDENT(1));
    cr_assert(json_equal(ha, hb), "history differs:\n in order: %s\n shuffled: %s", sa, sb);
    free(sa);
    free(sb);
    json_decref(da);
    json_decref(db);
    json_decref(ha);
    json_decref(hb);
}

Test(events, a_late_event_does_not_override_a_later_one)
{
    send_ok(
        "[{\"id\":\"l1\",\"type\":\"deal.created\",\"at\":\"2024-04-01T09:00:00Z\","
        "\"data\":{\"deal\":\"LD1\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"p1\",\"manager\":\"la\"}},"
        "{\"id\":\"l2\",\"type\":\"deal.updated\",\"at\":\"2024-04-03T09:00:00Z\","
        "\"data\":{\"deal\":\"LD1\",\"name\":\"Новое имя\",\"price\":300}},"
        "{\"id\":\"l3\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-04-03T09:00:00Z\","
        "\"data\":{\"deal\":\"LD1\",\"manager\":\"lb\"}},"
        "{\"id\":\"l4\",\"type\":\"deal.stage_changed\",\"at\":\"2024-04-03T09:00:00Z\","
        "\"data\":{\"deal\":\"LD1\",\"stage\":\"s3\"}}]",
        4);
    /* late: each sets a field a later event set already */
    send_ok("[{\"id\":\"l5\",\"type\":\"deal.updated\",\"at\":\"2024-04-02T09:00:00Z\","
            "\"data\":{\"deal\":\"LD1\",\"name\":\"Старое имя\",\"price\":200}},"
            "{\"id\":\"l6\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-04-02T09:00:00Z\","
            "\"data\":{\"deal\":\"LD1\",\"manager\":\"lc\"}},"
            "{\"id\":\"l7\",\"type\":\"deal.stage_changed\",\"at\":\"2024-04-02T09:00:00Z\","
            "\"data\":{\"deal\":\"LD1\",\"stage\":\"s2\"}}]",
            3);
    int64_t la = th_id_by_ext(w.acct.admin_key, "managers", "la"),
            lb = th_id_by_ext(w.acct.admin_key, "managers", "lb"),
            lc = th_id_by_ext(w.acct.admin_key, "managers", "lc");
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:LD1");
    cr_assert_str_eq(th_jstr(d, "name"), "Новое имя");
    cr_assert_eq(th_jint(d, "price"), 300);
    cr_assert_eq(th_jint(d, "manager_id"), lb);
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[2]);
    cr_assert_str_eq(th_jstr(d, "updated_at"), "2024-04-03T09:00:00Z");
    int64_t id = th_jint(d, "id");
    json_decref(d);
    json_t *h = deal_history(id);
    cr_assert_eq(json_array_size(h), 5, "one row per change of stage or responsible");
    assert_history_row(h, 0, 0, w.stages[0], "open", "2024-04-01T09:00:00Z", la, 0, 100);
    assert_history_row(h, 1, w.stages[0], w.stages[0], "open", "2024-04-02T09:00:00Z", lc, 0, 200);
    assert_history_row(h, 2, w.stages[0], w.stages[1], "open", "2024-04-02T09:00:00Z", lc, 0, 200);
    assert_history_row(h, 3, w.stages[1], w.stages[1], "open", "2024-04-03T09:00:00Z", lb, 0, 300);
    assert_history_row(h, 4, w.stages[1], w.stages[2], "open", "2024-04-03T09:00:00Z", lb, 0, 300);
    json_decref(h);
}

/* ---- waiting ---- */

Test(events, an_event_about_a_deal_that_does_not_exist_yet_waits_then_applies)
{
    struct th_resp r = post_array(
        w.acct.admin_key, "[{\"id\":\"wt2\",\"type\":\"deal.stage_changed\",\"at\":\"2024-05-01T10:00:00Z\","
                          "\"data\":{\"deal\":\"WD1\",\"stage\":\"s2\"}},"
                          "{\"id\":\"wt3\",\"type\":\"note.added\",\"at\":\"2024-05-01T11:00:00Z\","
                          "\"data\":{\"note\":\"WN1\",\"deal\":\"WD1\",\"text\":\"Ждёт\"}}]");
    assert_counts(&r, 2, 0, 0); /* waiting still counts as accepted */
    th_resp_free(&r);
    json_t *waiting = inbox("waiting");
    cr_assert_eq(json_array_size(json_object_get(waiting, "items")), 2);
    json_t *row = inbox_row(waiting, "wt2");
    cr_assert(row != NULL);
    cr_assert_str_eq(th_jstr(row, "state"), "waiting");
    cr_assert_str_eq(th_jstr(row, "event_type"), "deal.stage_changed");
    json_decref(waiting);
    r = th_get(w.acct.admin_key, "/api/v1/deals/ext:WD1");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    send_ok("[{\"id\":\"wt1\",\"type\":\"deal.created\",\"at\":\"2024-05-01T09:00:00Z\","
            "\"data\":{\"deal\":\"WD1\",\"name\":\"Окна\",\"price\":700,\"pipeline\":\"p1\","
            "\"manager\":\"wdm\"}}]",
            1);
    waiting = inbox("waiting");
    cr_assert_eq(json_array_size(json_object_get(waiting, "items")), 0, "nothing waits any more");
    json_decref(waiting);
    json_t *pending = inbox("pending");
    cr_assert_eq(json_array_size(json_object_get(pending, "items")), 0);
    json_decref(pending);
    json_t *applied = inbox("applied");
    cr_assert(inbox_row(applied, "wt2") != NULL, "the waiting event is applied");
    cr_assert(inbox_row(applied, "wt3") != NULL);
    json_decref(applied);

    int64_t wdm = th_id_by_ext(w.acct.admin_key, "managers", "wdm");
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/ext:WD1");
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[1]);
    int64_t id = th_jint(d, "id");
    json_decref(d);
    json_t *h = deal_history(id);
    cr_assert_eq(json_array_size(h), 2);
    assert_history_row(h, 0, 0, w.stages[0], "open", "2024-05-01T09:00:00Z", wdm, 0, 700);
    assert_history_row(h, 1, w.stages[0], w.stages[1], "open", "2024-05-01T10:00:00Z", wdm, 0, 700);
    json_decref(h);
    json_t *notes = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld/notes", (long long)id);
    cr_assert_eq(json_array_size(json_object_get(notes, "items")), 1);
    cr_assert_str_eq(th_jstr(json_array_get(json_object_get(notes, "items"), 0), "text"), "Ждёт");
    json_decref(notes);
}

Test(events, task_events_wait_for_their_task_and_deal)
{
    /* completion before the task, the task before its deal */
    send_ok("[{\"id\":\"tw3\",\"type\":\"task.completed\",\"at\":\"2024-05-02T12:00:00Z\","
            "\"data\":{\"task\":\"WT1\",\"result\":\"Дозвонились\"}}]",
            1);
    send_ok("[{\"id\":\"tw2\",\"type\":\"task.created\",\"at\":\"2024-05-02T10:00:00Z\","
            "\"data\":{\"task\":\"WT1\",\"deal\":\"WD2\",\"type\":\"call\",\"text\":\"Позвонить\","
            "\"due_at\":\"2030-01-01T09:00:00Z\"}}]",
            1);
    json_t *waiting = inbox("waiting");
    cr_assert_eq(json_array_size(json_object_get(waiting, "items")), 2);
    cr_assert(inbox_row(waiting, "tw3") != NULL);
    cr_assert(inbox_row(waiting, "tw2") != NULL);
    json_decref(waiting);
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/tasks/ext:WT1");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);

    send_ok(
        "[{\"id\":\"tw1\",\"type\":\"deal.created\",\"at\":\"2024-05-02T09:00:00Z\","
        "\"data\":{\"deal\":\"WD2\",\"name\":\"Окна\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"twm\"}}]",
        1);
    waiting = inbox("waiting");
    cr_assert_eq(json_array_size(json_object_get(waiting, "items")), 0);
    json_decref(waiting);
    json_t *applied = inbox("applied");
    cr_assert(inbox_row(applied, "tw2") != NULL);
    cr_assert(inbox_row(applied, "tw3") != NULL);
    json_decref(applied);

    json_t *t = th_get_json(w.acct.admin_key, "/api/v1/tasks/ext:WT1");
    cr_assert_eq(th_jint(t, "deal_id"), th_id_by_ext(w.acct.admin_key, "deals", "WD2"));
    cr_assert_eq(th_jint(t, "manager_id"), th_id_by_ext(w.acct.admin_key, "managers", "twm"),
                 "the deal's manager");
    cr_assert_str_eq(th_jstr(t, "state"), "done");
    cr_assert_str_eq(th_jstr(t, "result"), "Дозвонились");
    cr_assert_str_eq(th_jstr(t, "completed_at"), "2024-05-02T12:00:00Z");
    cr_assert_str_eq(th_jstr(t, "created_at"), "2024-05-02T10:00:00Z");
    json_decref(t);
}

/* ---- tasks, calls, notes, deletion ---- */

Test(events, task_created_updated_completed_deleted)
{
    send_ok(
        "[{\"id\":\"t1\",\"type\":\"deal.created\",\"at\":\"2024-06-01T09:00:00Z\","
        "\"data\":{\"deal\":\"TD1\",\"name\":\"Окна\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"tm1\"}},"
        "{\"id\":\"t2\",\"type\":\"task.created\",\"at\":\"2024-06-01T10:00:00Z\","
        "\"data\":{\"task\":\"T1\",\"deal\":\"TD1\",\"type\":\"call\",\"text\":\"Позвонить\","
        "\"due_at\":\"2030-01-10T12:00:00+03:00\"}},"
        "{\"id\":\"t3\",\"type\":\"task.created\",\"at\":\"2024-06-01T10:30:00Z\","
        "\"data\":{\"task\":\"T2\",\"deal\":\"TD1\",\"manager\":\"tm2\",\"type\":\"meeting\","
        "\"due_at\":\"2020-01-01T00:00:00Z\"}}]",
        3);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "TD1"),
            tm1 = th_id_by_ext(w.acct.admin_key, "managers", "tm1");
    int64_t tm2 = th_id_by_ext(w.acct.admin_key, "managers", "tm2");

    json_t *t = th_get_json(w.acct.admin_key, "/api/v1/tasks/ext:T1");
    cr_assert_str_eq(th_jstr(t, "external_id"), "T1");
    cr_assert_eq(th_jint(t, "deal_id"), deal);
    cr_assert_eq(th_jint(t, "manager_id"), tm1, "default: the deal's manager");
    cr_assert_str_eq(th_jstr(t, "type"), "call");
    cr_assert_str_eq(th_jstr(t, "text"), "Позвонить");
    cr_assert_str_eq(th_jstr(t, "due_at"), "2030-01-10T09:00:00Z");
    cr_assert_str_eq(th_jstr(t, "state"), "open");
    assert_null(t, "completed_at");
    assert_null(t, "result");
    cr_assert_str_eq(th_jstr(t, "created_at"), "2024-06-01T10:00:00Z");
    int64_t t1 = th_jint(t, "id");
    json_decref(t);

    t = th_get_json(w.acct.admin_key, "/api/v1/tasks/ext:T2");
    cr_assert_eq(th_jint(t, "manager_id"), tm2);
    cr_assert_str_eq(th_jstr(t, "type"), "meeting");
    cr_assert_str_eq(th_jstr(t, "text"), "");
    cr_assert_str_eq(th_jstr(t, "state"), "overdue");
    json_decref(t);

    send_ok("[{\"id\":\"t4\",\"type\":\"task.updated\",\"at\":\"2024-06-02T10:00:00Z\","
            "\"data\":{\"task\":\"T1\",\"manager\":\"tm2\",\"due_at\":\"2030-01-11T09:00:00Z\","
            "\"text\":\"Перезвонить\"}}]",
            1);
    t = th_get_json(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)t1);
    cr_assert_eq(th_jint(t, "manager_id"), tm2);
    cr_assert_str_eq(th_jstr(t, "due_at"), "2030-01-11T09:00:00Z");
    cr_assert_str_eq(th_jstr(t, "text"), "Перезвонить");
    cr_assert_str_eq(th_jstr(t, "state"), "open");
    cr_assert_str_eq(th_jstr(t, "created_at"), "2024-06-01T10:00:00Z", "only creation sets created_at");
    json_decref(t);

    /* an update of only the text keeps responsible and due time */
    send_ok("[{\"id\":\"t5\",\"type\":\"task.updated\",\"at\":\"2024-06-02T11:00:00Z\","
            "\"data\":{\"task\":\"T1\",\"text\":\"Перезвонить утром\"}}]",
            1);
    t = th_get_json(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)t1);
    cr_assert_eq(th_jint(t, "manager_id"), tm2);
    cr_assert_str_eq(th_jstr(t, "due_at"), "2030-01-11T09:00:00Z");
    cr_assert_str_eq(th_jstr(t, "text"), "Перезвонить утром");
    json_decref(t);

    send_ok("[{\"id\":\"t6\",\"type\":\"task.completed\",\"at\":\"2024-06-03T10:00:00Z\","
            "\"data\":{\"task\":\"T1\",\"result\":\"Договорились о встрече\"}}]",
            1);
    t = th_get_json(w.acct.admin_key, "/api/v1/tasks/%lld", (long long)t1);
    cr_assert_str_eq(th_jstr(t, "state"), "done");
    cr_assert_str_eq(th_jstr(t, "completed_at"), "2024-06-03T10:00:00Z");
    cr_assert_str_eq(th_jstr(t, "result"), "Договорились о встрече");
    cr_assert_eq(th_jint(t, "manager_id"), tm2);
    json_decref(t);

    send_ok("[{\"id\":\"t7\",\"type\":\"task.deleted\",\"at\":\"2024-06-03T11:00:00Z\","
            "\"data\":{\"task\":\"T2\"}}]",
            1);
    t = th_get_json(w.acct.admin_key, "/api/v1/tasks/ext:T2");
    cr_assert_str_eq(th_jstr(t, "state"), "deleted");
    int64_t t2 = th_jint(t, "id");
    json_decref(t);
    json_t *list = th_get_json(w.acct.admin_key, "/api/v1/tasks?deal_id=%lld&state=deleted", (long long)deal);
    cr_assert(item_by_id(list, t2) != NULL);
    cr_assert(item_by_id(list, t1) == NULL);
    json_decref(list);
    list = th_get_json(w.acct.admin_key, "/api/v1/tasks?deal_id=%lld&state=done", (long long)deal);
    cr_assert(item_by_id(list, t1) != NULL);
    cr_assert(item_by_id(list, t2) == NULL);
    json_decref(list);
}

Test(events, call_logged_and_note_added)
{
    send_ok(
        "[{\"id\":\"k1\",\"type\":\"deal.created\",\"at\":\"2024-06-01T09:00:00Z\","
        "\"data\":{\"deal\":\"KD1\",\"name\":\"Окна\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"km1\"}},"
        "{\"id\":\"k2\",\"type\":\"call.logged\",\"at\":\"2024-06-01T10:15:30Z\","
        "\"data\":{\"call\":\"C1\",\"manager\":\"km1\",\"deal\":\"KD1\",\"direction\":\"out\","
        "\"duration_s\":125,\"answered\":true}},"
        "{\"id\":\"k3\",\"type\":\"call.logged\",\"at\":\"2024-06-01T11:00:00Z\","
        "\"data\":{\"call\":\"C2\",\"manager\":\"km2\",\"direction\":\"in\",\"duration_s\":0,"
        "\"answered\":false}},"
        "{\"id\":\"k4\",\"type\":\"note.added\",\"at\":\"2024-06-01T12:00:00Z\","
        "\"data\":{\"note\":\"N1\",\"deal\":\"KD1\",\"text\":\"Клиент просит скидку\",\"manager\":\"km1\"}}]",
        4);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "KD1"),
            km1 = th_id_by_ext(w.acct.admin_key, "managers", "km1");
    int64_t km2 = th_id_by_ext(w.acct.admin_key, "managers", "km2");

    json_t *c = th_get_json(w.acct.admin_key, "/api/v1/calls/ext:C1");
    cr_assert_str_eq(th_jstr(c, "external_id"), "C1");
    cr_assert_eq(th_jint(c, "manager_id"), km1);
    cr_assert_eq(th_jint(c, "deal_id"), deal);
    cr_assert_str_eq(th_jstr(c, "direction"), "out");
    cr_assert_str_eq(th_jstr(c, "started_at"), "2024-06-01T10:15:30Z");
    cr_assert_eq(th_jint(c, "duration_s"), 125);
    cr_assert(jbool(c, "answered"));
    json_decref(c);
    c = th_get_json(w.acct.admin_key, "/api/v1/calls/ext:C2");
    cr_assert_eq(th_jint(c, "manager_id"), km2);
    assert_null(c, "deal_id");
    cr_assert_str_eq(th_jstr(c, "direction"), "in");
    cr_assert_eq(th_jint(c, "duration_s"), 0);
    cr_assert(!jbool(c, "answered"));
    json_decref(c);
    json_t *list = th_get_json(w.acct.admin_key, "/api/v1/calls?deal_id=%lld", (long long)deal);
    cr_assert_eq(json_array_size(json_object_get(list, "items")), 1);
    json_decref(list);

    json_t *notes = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld/notes", (long long)deal);
    json_t *items = json_object_get(notes, "items");
    cr_assert_eq(json_array_size(items), 1);
    json_t *n = json_array_get(items, 0);
    cr_assert_str_eq(th_jstr(n, "text"), "Клиент просит скидку");
    cr_assert_eq(th_jint(n, "manager_id"), km1);
    cr_assert_str_eq(th_jstr(n, "created_at"), "2024-06-01T12:00:00Z");
    json_decref(notes);
}

Test(events, deal_deleted_hides_the_deal_and_restored_brings_it_back)
{
    send_ok("[{\"id\":\"x1\",\"type\":\"deal.created\",\"at\":\"2024-06-01T09:00:00Z\","
            "\"data\":{\"deal\":\"XD1\",\"name\":\"Окна\",\"price\":10,\"pipeline\":\"p1\"}},"
            "{\"id\":\"x2\",\"type\":\"deal.created\",\"at\":\"2024-06-01T09:00:00Z\","
            "\"data\":{\"deal\":\"XD2\",\"name\":\"Двери\",\"price\":20,\"pipeline\":\"p1\"}}]",
            2);
    int64_t id = th_id_by_ext(w.acct.admin_key, "deals", "XD1"),
            other = th_id_by_ext(w.acct.admin_key, "deals", "XD2");
    send_ok("[{\"id\":\"x3\",\"type\":\"deal.deleted\",\"at\":\"2024-06-02T09:00:00Z\","
            "\"data\":{\"deal\":\"XD1\"}}]",
            1);
    struct th_resp r = th_get(w.acct.admin_key, "/api/v1/deals/%lld", (long long)id);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/deals/ext:XD1");
    cr_assert_eq(r.status, 404, "%s", r.body);
    th_resp_free(&r);
    json_t *list = th_get_json(w.acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert(item_by_id(list, id) == NULL, "a deleted deal is gone from lists");
    cr_assert(item_by_id(list, other) != NULL);
    json_decref(list);
    list =
        th_get_json(w.acct.admin_key, "/api/v1/deals?pipeline_id=%lld&status=open", (long long)w.pipeline_id);
    cr_assert(item_by_id(list, id) == NULL);
    json_decref(list);

    send_ok("[{\"id\":\"x4\",\"type\":\"deal.restored\",\"at\":\"2024-06-03T09:00:00Z\","
            "\"data\":{\"deal\":\"XD1\"}}]",
            1);
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld", (long long)id);
    cr_assert_str_eq(th_jstr(d, "name"), "Окна");
    cr_assert_eq(th_jint(d, "price"), 10);
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    json_decref(d);
    list = th_get_json(w.acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert(item_by_id(list, id) != NULL, "a restored deal is listed again");
    json_decref(list);

    /* a late delete (before the restore) does not hide it again */
    send_ok("[{\"id\":\"x5\",\"type\":\"deal.deleted\",\"at\":\"2024-06-02T12:00:00Z\","
            "\"data\":{\"deal\":\"XD1\"}}]",
            1);
    r = th_get(w.acct.admin_key, "/api/v1/deals/%lld", (long long)id);
    cr_assert_eq(r.status, 200, "the restore is later: %s", r.body);
    th_resp_free(&r);
}

Test(events, inbox_retry_of_an_applied_row_is_409_and_unknown_is_404)
{
    send_ok("[{\"id\":\"y1\",\"type\":\"manager.upserted\",\"at\":\"2024-06-01T09:00:00Z\","
            "\"data\":{\"manager\":\"ym\",\"name\":\"Y\"}}]",
            1);
    json_t *rows = inbox("applied");
    json_t *row = inbox_row(rows, "y1");
    cr_assert(row != NULL);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/webhooks/inbox/%lld/retry", (long long)th_jint(row, "id"));
    json_decref(rows);
    struct th_resp r = th_request("POST", path, w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 409, "%s", r.body);
    th_resp_free(&r);
    r = th_request("POST", "/api/v1/webhooks/inbox/999999999/retry", w.acct.admin_key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 404, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "not_found");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, "/api/v1/webhooks/inbox?state=done");
    cr_assert_eq(r.status, 422, "unknown state: %s", r.body);
    th_resp_free(&r);
}

/* An inbox row's state, polled until it is `state` or timeout_s passes; true if it got there. */
static bool inbox_row_becomes(const char *event_id, const char *state, double timeout_s)
{
    double until = th_mono_now() + timeout_s;
    for (;;) {
        json_t *list = inbox(state);
        bool there = inbox_row(list, event_id) != NULL;
        json_decref(list);
        if (there) return true;
        if (th_mono_now() > until) return false;
        th_sleep_ms(200);
    }
}

Test(events, an_event_waiting_for_a_deal_made_through_rest_applies_without_another_event)
{
    /* the deal appears through POST /deals with its external id: no event creates it, so none wakes the
     * waiting one at once; the scheduler finds it within seconds */
    char at[32];
    th_format_time(time(NULL) + 600, at); /* after the deal's creation, which is now */
    char *body = fmt("[{\"id\":\"rw1\",\"type\":\"deal.stage_changed\",\"at\":\"%s\","
                     "\"data\":{\"deal\":\"RD1\",\"stage\":\"s3\"}}]",
                     at);
    send_ok(body, 1);
    free(body);
    cr_assert(inbox_row_becomes("rw1", "waiting", 0));
    struct th_resp r = th_post(w.acct.admin_key, "/api/v1/deals",
                               "{\"name\":\"Через REST\",\"price\":300,\"pipeline_id\":%lld,\"manager_id\":%lld,"
                               "\"external_id\":\"RD1\"}",
                               (long long)w.pipeline_id, (long long)w.manager1);
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t id = th_int(&r, "id");
    cr_assert_eq(th_int(&r, "stage_id"), w.stages[0]);
    th_resp_free(&r);

    cr_assert(inbox_row_becomes("rw1", "applied", 30), "the waiting event is applied once its deal exists");
    json_t *d = th_get_json(w.acct.admin_key, "/api/v1/deals/%lld", (long long)id);
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[2], "%s", th_dump(d));
    json_decref(d);
    json_t *h = deal_history(id);
    cr_assert_eq(json_array_size(h), 2, "%s", th_dump(h));
    json_decref(h);
    json_t *waiting = inbox("waiting");
    cr_assert_eq(json_array_size(json_object_get(waiting, "items")), 0);
    json_decref(waiting);
}

/* salesops import: the set-based apply (domain_import -> salesops_import_apply) must leave exactly the state,
 * histories, placeholders and inbox rows that per-event apply (POST /events) leaves for the same NDJSON text.
 * One generated file (fixed seed, every event type, placeholders, waits, duplicates, events out of time
 * order) goes to account A through the import and to account B through POST /events in the same database; the
 * two accounts are then compared row by row with their ids replaced by external ids and names. Also:
 * importing a file twice changes nothing, bad lines are counted and not stored, events that waited are
 * applied when the import creates what they waited for, and the import never writes to the CRM. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "salesops/import.h"
#include "salesops/store.h"

static const char *conninfo;
static PGconn *pg;     /* the comparisons */
static struct db *idb; /* the import's own connection, as `salesops import` has */

static void setup(void)
{
    th_server_start(TEST_SUITE);
    conninfo = th_database(TEST_SUITE);
    pg = PQconnectdb(conninfo);
    cr_assert(PQstatus(pg) == CONNECTION_OK, "%s", PQerrorMessage(pg));
    PQclear(PQexec(pg, "SET TimeZone = 'UTC'"));
    char err[512] = "";
    idb = db_open(conninfo, err, sizeof err);
    cr_assert(idb != NULL, "db_open: %s", err);
}

static void teardown(void)
{
    db_close(idb);
    PQfinish(pg);
    th_server_stop();
}

TestSuite(import, .init = setup, .fini = teardown, .timeout = 580);

/* ---- small helpers ---- */

struct text {
    char *data;
    size_t len, cap;
};

static void text_add(struct text *t, const char *s)
{
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->data = realloc(t->data, t->cap);
        cr_assert(t->data != NULL);
    }
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

static void text_addf(struct text *t, const char *f, ...) __attribute__((format(printf, 2, 3)));
static void text_addf(struct text *t, const char *f, ...)
{
    char buf[4096];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    text_add(t, buf);
}

static struct import_stats import_text(int64_t account_id, const char *text)
{
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    cr_assert(in != NULL);
    struct import_stats stats;
    struct so_error err = {0};
    enum so_err e = domain_import(idb, account_id, in, &stats, &err);
    fclose(in);
    cr_assert_eq(e, SO_OK, "import failed: %s", err.detail ? err.detail : "?");
    so_error_clear(&err);
    return stats;
}

static struct th_resp post_ndjson(const char *key, const char *body)
{
    return th_request("POST", "/api/v1/events", key, body, "application/x-ndjson", NULL);
}

/* One value of a query with at most two bigint parameters (NULL when no row). */
static char *sql_value(const char *sql, int64_t p1, int64_t p2)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)p1);
    snprintf(b, sizeof b, "%lld", (long long)p2);
    const char *params[] = {a, b};
    int n = strstr(sql, "$2") ? 2 : strstr(sql, "$1") ? 1 : 0;
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    char *v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static int64_t sql_int(const char *sql, int64_t p1, int64_t p2)
{
    char *v = sql_value(sql, p1, p2);
    int64_t n = v ? strtoll(v, NULL, 10) : -1;
    free(v);
    return n;
}

/* The same catalogue in every account: two pipelines with their open stages (won and lost are added by the
 * service) and one loss reason, all named by external ids that the events use. */
static void seed(const char *key)
{
    struct th_resp r = th_post(key, "/api/v1/pipelines",
                               "{\"name\":\"Продажи\",\"external_id\":\"P1\",\"stages\":["
                               "{\"name\":\"Первичный контакт\",\"external_id\":\"s1\",\"kind\":\"open\"},"
                               "{\"name\":\"Переговоры\",\"external_id\":\"s2\",\"kind\":\"open\"},"
                               "{\"name\":\"Счёт\",\"external_id\":\"s3\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    th_resp_free(&r);
    r = th_post(key, "/api/v1/pipelines",
                "{\"name\":\"Опт\",\"external_id\":\"P2\",\"stages\":["
                "{\"name\":\"Заявка\",\"external_id\":\"a1\",\"kind\":\"open\"},"
                "{\"name\":\"Отгрузка\",\"external_id\":\"a2\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    th_resp_free(&r);
    r = th_post(key, "/api/v1/loss-reasons", "{\"name\":\"Дорого\",\"external_id\":\"r1\"}");
    cr_assert_eq(r.status, 201, "loss reason: %s", r.body);
    th_resp_free(&r);
}

/* ---- the generated file ---- */

#define BASE_AT  1709251200LL /* 2024-03-01T00:00:00Z */
#define MINUTE   60LL
#define DAY      86400LL
#define MANAGERS 14
#define DEALS    240

struct gen {
    uint64_t s;
    char **lines;
    int n, cap;
    int next_event;
    int notes, calls, tasks;
};

static uint64_t gen_next(struct gen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

static int pick(struct gen *g, int n)
{
    return (int)(gen_next(g) % (uint64_t)n);
}

static bool chance(struct gen *g, int percent)
{
    return pick(g, 100) < percent;
}

static void gen_line(struct gen *g, char *line)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 1024;
        g->lines = realloc(g->lines, sizeof *g->lines * (size_t)g->cap);
        cr_assert(g->lines != NULL);
    }
    g->lines[g->n++] = line;
}

/* RFC 3339: mostly UTC, sometimes with a +03:00 offset (the same instant). */
static void fmt_time(struct gen *g, int64_t t, char out[40])
{
    bool offset = chance(g, 10);
    time_t tt = (time_t)(t + (offset ? 3 * 3600 : 0));
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 40, offset ? "%Y-%m-%dT%H:%M:%S+03:00" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void emit_id(struct gen *g, const char *id, const char *type, int64_t at, json_t *data)
{
    char when[40];
    fmt_time(g, at, when);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "type", type, "at", when, "data", data);
    cr_assert(ev != NULL);
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(ev);
    gen_line(g, s);
}

static void emit(struct gen *g, const char *type, int64_t at, json_t *data)
{
    char id[32];
    snprintf(id, sizeof id, "ev%05d", g->next_event++);
    emit_id(g, id, type, at, data);
}

static void set_str(json_t *o, const char *k, const char *v)
{
    json_object_set_new(o, k, json_string(v));
}

static void set_time(struct gen *g, json_t *o, const char *k, int64_t t)
{
    char when[40];
    fmt_time(g, t, when);
    set_str(o, k, when);
}

static void manager_ext(int i, char out[16])
{
    snprintf(out, 16, "m%02d", (i + 1) % 100);
}

/* A manager field: some name one of the managers, some are null, some absent. */
static void maybe_manager(struct gen *g, json_t *o, int present_pct, int null_pct)
{
    int r = pick(g, 100);
    if (r < present_pct) {
        char m[16];
        manager_ext(pick(g, MANAGERS), m);
        set_str(o, "manager", m);
    } else if (r < present_pct + null_pct) {
        json_object_set_new(o, "manager", json_null());
    }
}

static const char *const pipelines[] = {"P1", "P2", "PX1", "PX2", "PX3"};
/* open stages known before the import, and names that are new (placeholders) */
static const char *const known_open[][3] = {{"s1", "s2", "s3"}, {"a1", "a2", NULL}, {NULL}, {NULL}, {NULL}};
static const char *const unknown_open[][2] = {
    {"s4", "s5"}, {"a3", NULL}, {"x1", "x2"}, {"x1", "y1"}, {"z1", NULL}};

static int pick_pipeline(struct gen *g)
{
    int r = pick(g, 100);
    return r < 55 ? 0 : r < 75 ? 1 : 2 + pick(g, 3);
}

static const char *pick_stage_name(struct gen *g, int pipeline)
{
    int known = 0, unknown = 0;
    while (known < 3 && known_open[pipeline][known])
        known++;
    while (unknown < 2 && unknown_open[pipeline][unknown])
        unknown++;
    if (known > 0 && chance(g, 75)) return known_open[pipeline][pick(g, known)];
    return unknown_open[pipeline][pick(g, unknown)];
}

static const char *pick_loss_reason(struct gen *g)
{
    static const char *const reasons[] = {"r1", "r2", "r3", "r4"};
    return reasons[pick(g, 4)];
}

/* A time after t (minutes to days later), before it, or at the same second. */
static int64_t around(struct gen *g, int64_t t)
{
    int r = pick(g, 100);
    if (r < 8) return t - (1 + pick(g, 3000)) * MINUTE;
    if (r < 16) return t;
    return t + (1 + pick(g, 10 * 24 * 60)) * MINUTE + (chance(g, 20) ? pick(g, 60) : 0);
}

static void gen_note(struct gen *g, const char *deal, int64_t at)
{
    json_t *d = json_object();
    char id[16];
    snprintf(id, sizeof id, "N%04d", g->notes > 0 && chance(g, 6) ? 1 + pick(g, g->notes) : ++g->notes);
    set_str(d, "note", id);
    set_str(d, "deal", deal);
    json_object_set_new(d, "text", json_sprintf("Заметка %d", pick(g, 1000)));
    maybe_manager(g, d, 50, 10);
    emit(g, "note.added", at, d);
}

static void gen_call(struct gen *g, const char *deal, int64_t at)
{
    json_t *d = json_object();
    char id[16], m[16];
    snprintf(id, sizeof id, "C%04d", g->calls > 0 && chance(g, 6) ? 1 + pick(g, g->calls) : ++g->calls);
    set_str(d, "call", id);
    manager_ext(pick(g, MANAGERS), m);
    set_str(d, "manager", m);
    if (deal) set_str(d, "deal", deal);
    set_str(d, "direction", chance(g, 50) ? "in" : "out");
    json_object_set_new(d, "duration_s", json_integer(pick(g, 900)));
    json_object_set_new(d, "answered", json_boolean(chance(g, 70)));
    emit(g, "call.logged", at, d);
}

static void gen_deal_change(struct gen *g, const char *deal, int pipeline, int64_t at)
{
    json_t *d = json_object();
    set_str(d, "deal", deal);
    int r = pick(g, 100);
    if (r < 18) {
        if (chance(g, 50)) json_object_set_new(d, "name", json_sprintf("Сделка %s v%d", deal, pick(g, 100)));
        if (chance(g, 55)) json_object_set_new(d, "price", json_integer(pick(g, 50) * 10000));
        emit(g, "deal.updated", at, d);
    } else if (r < 45) {
        int target = pipeline;
        if (chance(g, 25)) {
            if (chance(g, 50)) target = pick_pipeline(g);
            set_str(d, "pipeline", pipelines[target]);
        }
        int s = pick(g, 100);
        if (s < 15) {
            set_str(d, "stage", "won");
        } else if (s < 32) {
            set_str(d, "stage", "lost");
            if (chance(g, 80)) set_str(d, "loss_reason", pick_loss_reason(g));
        } else {
            set_str(d, "stage", pick_stage_name(g, target));
            if (chance(g, 10)) set_str(d, "loss_reason", pick_loss_reason(g)); /* ignored: not a loss */
        }
        emit(g, "deal.stage_changed", at, d);
    } else if (r < 60) {
        maybe_manager(g, d, 100, 0);
        emit(g, "deal.responsible_changed", at, d);
    } else if (r < 66) {
        emit(g, "deal.deleted", at, d);
    } else if (r < 71) {
        emit(g, "deal.restored", at, d);
    } else if (r < 85) {
        json_decref(d);
        gen_note(g, deal, at);
    } else {
        json_decref(d);
        gen_call(g, deal, at);
    }
}

static void gen_task_change(struct gen *g, const char *task, int64_t at)
{
    json_t *d = json_object();
    set_str(d, "task", task);
    int r = pick(g, 100);
    if (r < 55) {
        if (chance(g, 40)) maybe_manager(g, d, 90, 10);
        if (chance(g, 50)) set_time(g, d, "due_at", at + (1 + pick(g, 7 * 24)) * 3600);
        if (chance(g, 40)) {
            if (chance(g, 10))
                json_object_set_new(d, "text", json_null());
            else
                json_object_set_new(d, "text", json_sprintf("Текст %d", pick(g, 1000)));
        }
        emit(g, "task.updated", at, d);
    } else if (r < 85) {
        int x = pick(g, 100);
        if (x < 50)
            json_object_set_new(d, "result", json_sprintf("Итог %d", pick(g, 1000)));
        else if (x < 60)
            json_object_set_new(d, "result", json_null());
        emit(g, "task.completed", at, d);
    } else {
        emit(g, "task.deleted", at, d);
    }
}

static void gen_task(struct gen *g, const char *deal, int64_t deal_at)
{
    static const char *const types[] = {"call", "meeting", "follow_up", "other"};
    char task[16];
    snprintf(task, sizeof task, "T%04d", ++g->tasks);
    int64_t at = around(g, deal_at);
    json_t *d = json_object();
    set_str(d, "task", task);
    set_str(d, "deal", deal);
    maybe_manager(g, d, 45, 5);
    set_str(d, "type", types[pick(g, 4)]);
    int x = pick(g, 100);
    if (x < 70)
        json_object_set_new(d, "text", json_sprintf("Задача %s", task));
    else if (x < 75)
        json_object_set_new(d, "text", json_null());
    set_time(g, d, "due_at", at + (1 + pick(g, 5 * 24)) * 3600);
    emit(g, "task.created", at, d);
    /* the deal's responsible changes in the same second as the task is created */
    if (chance(g, 10)) {
        json_t *c = json_object();
        set_str(c, "deal", deal);
        maybe_manager(g, c, 100, 0);
        emit(g, "deal.responsible_changed", at, c);
    }
    if (chance(g, 4)) { /* created again under another event id: ignored */
        json_t *again = json_object();
        set_str(again, "task", task);
        set_str(again, "deal", deal);
        set_str(again, "type", "other");
        json_object_set_new(again, "text", json_string("Дубль"));
        set_time(g, again, "due_at", at + DAY);
        emit(g, "task.created", at + (1 + pick(g, 600)) * MINUTE, again);
    }
    for (int k = pick(g, 5); k > 0; k--)
        gen_task_change(g, task, around(g, at));
}

static void gen_managers(struct gen *g)
{
    static const char *const roles[] = {"manager", "head", "admin"};
    for (int i = 0; i < MANAGERS; i++) {
        if (i >= 11) continue; /* m12..m14: only named, they stay placeholders */
        char m[16];
        manager_ext(i, m);
        /* m01..m05 before anything names them; m06..m11 after they were named (placeholders first) */
        int64_t at = i < 5 ? BASE_AT - DAY + i * MINUTE : BASE_AT + (8 + i) * DAY;
        int times = i == 3 || i == 7 ? 3 : i == 9 ? 2 : 1;
        for (int k = 0; k < times; k++) {
            json_t *d = json_object();
            set_str(d, "manager", m);
            json_object_set_new(d, "name", json_sprintf("Менеджер %d.%d", i + 1, k));
            if (chance(g, 45)) set_str(d, "role", roles[pick(g, 3)]);
            if (chance(g, 45)) json_object_set_new(d, "active", json_boolean(chance(g, 50)));
            /* m10's two upserts share one second: arrival decides */
            emit(g, "manager.upserted", i == 9 ? at : at + k * 3 * DAY, d);
        }
    }
}

static void gen_deal(struct gen *g, int i)
{
    char deal[16];
    snprintf(deal, sizeof deal, "D%03d", i + 1);
    int64_t at = BASE_AT + pick(g, 20 * 24 * 60) * MINUTE + (chance(g, 30) ? pick(g, 60) : 0);
    int pipeline = pick_pipeline(g);
    json_t *d = json_object();
    set_str(d, "deal", deal);
    json_object_set_new(d, "name", json_sprintf("Сделка %s", deal));
    json_object_set_new(d, "price", json_integer(pick(g, 60) * 5000));
    set_str(d, "pipeline", pipelines[pipeline]);
    int s = pick(g, 100);
    if (s < 15)
        ; /* no stage: the first open one */
    else if (s < 75)
        set_str(d, "stage", pick_stage_name(g, pipeline));
    else if (s < 84)
        set_str(d, "stage", "won");
    else if (s < 93)
        set_str(d, "stage", "lost");
    else
        set_str(d, "stage", pipeline >= 2 && chance(g, 40) ? "142" : pick_stage_name(g, pipeline));
    maybe_manager(g, d, 70, 10);
    emit(g, "deal.created", at, d);
    if (chance(g, 5)) { /* created again under another event id: ignored */
        json_t *again = json_object();
        set_str(again, "deal", deal);
        json_object_set_new(again, "name", json_sprintf("Дубль %s", deal));
        json_object_set_new(again, "price", json_integer(1));
        set_str(again, "pipeline", pipelines[pick_pipeline(g)]);
        emit(g, "deal.created", at + (chance(g, 50) ? 1 : -1) * (1 + pick(g, 600)) * MINUTE, again);
    }
    for (int k = pick(g, 8); k > 0; k--)
        gen_deal_change(g, deal, pipeline, around(g, at));
    for (int k = pick(g, 3); k > 0; k--)
        gen_task(g, deal, at);
}

/* Events about deals and tasks that never exist: they wait. */
static void gen_ghosts(struct gen *g)
{
    for (int i = 1; i <= 15; i++) {
        char deal[16];
        snprintf(deal, sizeof deal, "G%02d", i);
        int64_t at = BASE_AT + pick(g, 20 * 24 * 60) * MINUTE;
        for (int k = 1 + pick(g, 3); k > 0; k--)
            gen_deal_change(g, deal, pick_pipeline(g), around(g, at));
        if (i % 3 == 0) { /* a task on a deal that never comes, and a change of it */
            char task[16];
            snprintf(task, sizeof task, "GT%02d", i);
            json_t *d = json_object();
            set_str(d, "task", task);
            set_str(d, "deal", deal);
            set_str(d, "type", "call");
            set_time(g, d, "due_at", at + DAY);
            emit(g, "task.created", at, d);
            gen_task_change(g, task, at + MINUTE);
        }
    }
    for (int i = 1; i <= 15; i++) {
        char task[16];
        snprintf(task, sizeof task, "X%02d", i);
        gen_task_change(g, task, BASE_AT + pick(g, 20 * 24 * 60) * MINUTE);
    }
}

/* Placeholder pipelines named first by a deal without a stage (it gets a placeholder stage "new"), or first
 * by a deal in a stage "142" (an open placeholder stage there: the pipeline is not from amoCRM) and then by
 * one without a stage (the first open stage). */
static void gen_placeholder_pipelines(struct gen *g)
{
    static const struct {
        const char *deal, *pipeline, *stage;
        int minute;
    } deals[] = {
        {"Q1", "PX4", NULL, 10},  {"Q2", "PX4", "q1", 20}, {"Q3", "PX4", NULL, 30},
        {"Q4", "PX5", "142", 10}, {"Q5", "PX5", NULL, 20}, {"Q6", "PX5", "143", 30},
    };
    for (size_t i = 0; i < sizeof deals / sizeof deals[0]; i++) {
        json_t *d = json_object();
        set_str(d, "deal", deals[i].deal);
        json_object_set_new(d, "name", json_sprintf("Сделка %s", deals[i].deal));
        json_object_set_new(d, "price", json_integer(1000));
        set_str(d, "pipeline", deals[i].pipeline);
        if (deals[i].stage) set_str(d, "stage", deals[i].stage);
        emit(g, "deal.created", BASE_AT + 2 * DAY + deals[i].minute * MINUTE, d);
    }
}

/* The whole file: ~2,000 events, duplicated lines, shuffled. */
static char *generate(uint64_t seed, int *events)
{
    struct gen g = {.s = seed};
    gen_managers(&g);
    for (int i = 0; i < DEALS; i++)
        gen_deal(&g, i);
    gen_placeholder_pipelines(&g);
    gen_ghosts(&g);
    for (int i = 0; i < 50; i++) /* calls without a deal */
        gen_call(&g, NULL, BASE_AT + pick(&g, 20 * 24 * 60) * MINUTE);
    /* the same event sent again (same id, same body) */
    int original = g.n;
    for (int i = 0; i < 40; i++)
        gen_line(&g, strdup(g.lines[pick(&g, original)]));
    /* an id used again for another event: whichever comes first in the file is the event, the other a
     * duplicate */
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "ev%05d", pick(&g, original));
        json_t *d = json_object();
        char deal[16];
        snprintf(deal, sizeof deal, "D%03d", 1 + pick(&g, DEALS));
        set_str(d, "deal", deal);
        json_object_set_new(d, "price", json_integer(123456));
        emit_id(&g, id, "deal.updated", BASE_AT + pick(&g, 20 * 24 * 60) * MINUTE, d);
    }
    /* shuffled: the file is in no particular time order */
    for (int i = g.n - 1; i > 0; i--) {
        int j = pick(&g, i + 1);
        char *t = g.lines[i];
        g.lines[i] = g.lines[j];
        g.lines[j] = t;
    }
    struct text out = {0};
    for (int i = 0; i < g.n; i++) {
        text_add(&out, g.lines[i]);
        text_add(&out, i % 500 == 250 ? "\n\n" : "\n"); /* a few blank lines, skipped */
        free(g.lines[i]);
    }
    free(g.lines);
    *events = g.n;
    return out.data;
}

/* ---- the comparison ---- */

/* The account's data with every id replaced by what names it across accounts (external ids, kinds);
 * $A is the account. One text row per object. */
#define MGR(x)  "(SELECT m.external_id FROM managers m WHERE m.account_id = $A AND m.id = " x ")"
#define PIPE(x) "(SELECT p.external_id FROM pipelines p WHERE p.account_id = $A AND p.id = " x ")"
#define STAGE(x)                                                                                             \
    "(SELECT p.external_id || '/' || coalesce(s.external_id, s.kind) FROM stages s JOIN pipelines p"         \
    " ON p.account_id = s.account_id AND p.id = s.pipeline_id WHERE s.account_id = $A AND s.id = " x ")"
#define LR(x)   "(SELECT l.external_id FROM loss_reasons l WHERE l.account_id = $A AND l.id = " x ")"
#define DEAL(x) "(SELECT d.external_id FROM deals d WHERE d.account_id = $A AND d.id = " x ")"
#define TASK(x) "(SELECT t.external_id FROM tasks t WHERE t.account_id = $A AND t.id = " x ")"

struct section {
    const char *name;
    const char *sql;
};

static const struct section sections[] = {
    {"managers",
     "SELECT ROW(external_id, name, email, role, active, distribution_enabled, weight, needs_setup,"
     " pool_user, created_at)::text AS r FROM managers WHERE account_id = $A"},
    /* the seeded pipelines and loss reason were made through the API at slightly different moments */
    {"pipelines",
     "SELECT ROW(external_id, name, needs_setup, crm, CASE WHEN needs_setup THEN created_at END)::text"
     " AS r FROM pipelines WHERE account_id = $A"},
    {"stages",
     "SELECT ROW(" PIPE("s.pipeline_id") ", s.external_id, s.name, s.kind, s.position,"
                                         " s.needs_setup)::text AS r FROM stages s WHERE s.account_id = $A"},
    {"loss_reasons",
     "SELECT ROW(external_id, name, needs_setup, CASE WHEN needs_setup THEN created_at END)::text"
     " AS r FROM loss_reasons WHERE account_id = $A"},
    {"deals", "SELECT ROW(d.external_id, d.name, d.price, " PIPE("d.pipeline_id") ", " STAGE(
                  "d.stage_id") ","
                                " d.status, " MGR("d.manager_id") ", " MGR("d.creator_manager_id") ", " LR(
                                    "d.loss_reason_id") ","
                                                        " d.created_at, d.closed_at, d.updated_at, "
                                                        "d.deleted_at IS NULL, d.deleted_at)::text AS r"
                                                        " FROM deals d WHERE d.account_id = $A"},
    {"deal_history",
     "SELECT ROW(" DEAL(
         "h.deal_id") ", row_number() OVER (PARTITION BY h.deal_id ORDER BY h.at,"
                      " h.id), " STAGE("h.from_stage_id") ", " STAGE(
                          "h.to_stage_id") ", h.status, h.at, " MGR("h.manager_id") ", " LR("h.loss_reason_"
                                                                                            "id") ", "
                                                                                                  "h.price)::"
                                                                                                  "text AS r"
                                                                                                  " FROM "
                                                                                                  "deal_"
                                                                                                  "history h "
                                                                                                  "WHERE "
                                                                                                  "h.account_"
                                                                                                  "id = $A"},
    {"tasks", "SELECT ROW(t.external_id, " DEAL("t.deal_id") ", " MGR(
                  "t.manager_id") ", t.type, t.text,"
                                  " t.due_at, t.completed_at, t.deleted_at, t.result, t.created_at, "
                                  "t.updated_at)::text AS r"
                                  " FROM tasks t WHERE t.account_id = $A"},
    {"task_history", "SELECT ROW(" TASK("h.task_id") ", h.at, h.creation, h.set_manager, " MGR(
                         "h.manager_id") ","
                                         " h.due_at)::text AS r FROM task_history h WHERE h.account_id = $A"},
    {"calls",
     "SELECT ROW(c.external_id, " MGR("c.manager_id") ", " DEAL(
         "c.deal_id") ", c.direction,"
                      " c.started_at, c.duration_s, c.answered, c.created_at)::text AS r FROM calls c"
                      " WHERE c.account_id = $A"},
    {"notes", "SELECT ROW(n.external_id, " DEAL("n.deal_id") ", n.text, " MGR(
                  "n.manager_id") ","
                                  " n.created_at)::text AS r FROM notes n WHERE n.account_id = $A"},
    {"inbox", "SELECT ROW(i.event_id, i.event_type, i.event_at, i.state, i.waits_for_kind, i.waits_for_ext,"
              " i.body)::text AS r FROM inbox i WHERE i.account_id = $A"},
};
#define SECTION_COUNT (sizeof sections / sizeof sections[0])

/* sql with $A replaced by the given placeholder ("$1", "$2"). */
static void with_param(struct text *out, const char *sql, const char *param)
{
    for (const char *p = sql; *p;) {
        const char *hit = strstr(p, "$A");
        if (hit == NULL) {
            text_add(out, p);
            break;
        }
        text_addf(out, "%.*s%s", (int)(hit - p), p, param);
        p = hit + 2;
    }
}

/* Rows of one section that only one of the two accounts has (a multiset difference both ways), appended to
 * report (at most `show` of them); returns how many there are. */
static int diff_section(const struct section *s, int64_t import_acct, int64_t events_acct,
                        struct text *report, int show)
{
    struct text q = {0};
    text_add(&q, "WITH a AS (");
    with_param(&q, s->sql, "$1");
    text_add(&q, "), b AS (");
    with_param(&q, s->sql, "$2");
    text_add(&q, ") SELECT side, r FROM ("
                 " SELECT 'import   ' AS side, r FROM (SELECT r FROM a EXCEPT ALL SELECT r FROM b) x"
                 " UNION ALL"
                 " SELECT 'per-event' AS side, r FROM (SELECT r FROM b EXCEPT ALL SELECT r FROM a) y) z"
                 " ORDER BY r, side");
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)import_acct);
    snprintf(b, sizeof b, "%lld", (long long)events_acct);
    const char *params[] = {a, b};
    PGresult *r = PQexecParams(pg, q.data, 2, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", s->name, PQresultErrorMessage(r));
    int n = PQntuples(r);
    if (n > 0) text_addf(report, "\n== %s: %d rows differ (import vs per-event) ==\n", s->name, n);
    for (int i = 0; i < n && i < show; i++)
        text_addf(report, "  %s %.400s\n", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
    PQclear(r);
    free(q.data);
    return n;
}

/* All rows of all sections of one account, sorted: a snapshot to compare before and after. */
static char *snapshot(int64_t account_id)
{
    struct text all = {0};
    for (size_t i = 0; i < SECTION_COUNT; i++) {
        struct text q = {0};
        text_add(&q, "SELECT coalesce(string_agg(r, E'\\n' ORDER BY r), '') FROM (");
        with_param(&q, sections[i].sql, "$1");
        text_add(&q, ") x");
        char *v = sql_value(q.data, account_id, 0);
        text_addf(&all, "== %s\n", sections[i].name);
        text_add(&all, v ? v : "");
        text_add(&all, "\n");
        free(v);
        free(q.data);
    }
    return all.data;
}

/* The first line where two snapshots differ. */
static void first_difference(const char *x, const char *y, char *out, size_t len)
{
    const char *lx = x, *ly = y;
    while (*lx && *ly) {
        const char *ex = strchr(lx, '\n'), *ey = strchr(ly, '\n');
        size_t nx = ex ? (size_t)(ex - lx) : strlen(lx), ny = ey ? (size_t)(ey - ly) : strlen(ly);
        if (nx != ny || memcmp(lx, ly, nx) != 0) {
            snprintf(out, len, "before: %.*s\nafter:  %.*s", (int)(nx > 400 ? 400 : nx), lx,
                     (int)(ny > 400 ? 400 : ny), ly);
            return;
        }
        lx += nx + (ex ? 1 : 0);
        ly += ny + (ey ? 1 : 0);
    }
    snprintf(out, len, "one snapshot is longer: before %.200s | after %.200s", lx, ly);
}

/* ---- tests ---- */

Test(import, import_equals_per_event_apply)
{
    int events = 0;
    char *file = generate(0x5a1e5095eedULL, &events);
    cr_assert(events >= 1800 && events <= 10000, "generated %d events", events);

    struct th_account imported, posted;
    th_account_new(&imported);
    th_account_new(&posted);
    seed(imported.admin_key);
    seed(posted.admin_key);

    struct import_stats st = import_text(imported.id, file);
    struct th_resp r = post_ndjson(posted.admin_key, file);
    cr_assert_eq(r.status, 200, "POST /events: %.2000s", r.body);
    int64_t accepted = th_int(&r, "accepted"), duplicates = th_int(&r, "duplicates");
    cr_assert_eq(json_array_size(json_object_get(r.json, "rejected")), 0, "rejected: %.2000s", r.body);
    th_resp_free(&r);
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.valid, events);
    cr_assert_eq(accepted + duplicates, events);
    cr_assert_eq(st.accepted, accepted, "import accepted %lld, POST /events %lld", (long long)st.accepted,
                 (long long)accepted);
    cr_assert_eq(st.duplicates, duplicates, "import duplicates %lld, POST /events %lld",
                 (long long)st.duplicates, (long long)duplicates);
    /* the file does what it is meant to: placeholders, waits, closed deals, history */
    cr_assert_gt(sql_int("SELECT count(*) FROM managers WHERE account_id = $1 AND needs_setup", posted.id, 0),
                 0);
    cr_assert_gt(
        sql_int("SELECT count(*) FROM pipelines WHERE account_id = $1 AND needs_setup", posted.id, 0), 0);
    cr_assert_gt(sql_int("SELECT count(*) FROM stages WHERE account_id = $1 AND needs_setup", posted.id, 0),
                 0);
    cr_assert_gt(
        sql_int("SELECT count(*) FROM loss_reasons WHERE account_id = $1 AND needs_setup", posted.id, 0), 0);
    cr_assert_gt(
        sql_int("SELECT count(*) FROM inbox WHERE account_id = $1 AND state = 'waiting'", posted.id, 0), 0);
    cr_assert_gt(
        sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND status = 'lost'", posted.id, 0), 0);
    cr_assert_gt(
        sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND deleted_at IS NOT NULL", posted.id, 0),
        0);

    struct text report = {0};
    text_add(&report, "");
    int total = 0;
    for (size_t i = 0; i < SECTION_COUNT; i++)
        total += diff_section(&sections[i], imported.id, posted.id, &report, 12);
    if (total > 0) {
        /* the whole list, for whoever fixes it */
        struct text full = {0};
        text_add(&full, "");
        for (size_t i = 0; i < SECTION_COUNT; i++)
            diff_section(&sections[i], imported.id, posted.id, &full, 1000000);
        fprintf(stderr, "import vs per-event apply: %d rows differ%s\n", total, full.data);
        free(full.data);
    }
    static char message[12288];
    snprintf(message, sizeof message, "%s", report.data);
    free(report.data);
    free(file);
    cr_assert_eq(total, 0, "import and per-event apply differ in %d rows:%s", total, message);
}

Test(import, import_twice_changes_nothing)
{
    int events = 0;
    char *file = generate(0xc0ffee1234ULL, &events);
    struct th_account acct;
    th_account_new(&acct);
    seed(acct.admin_key);
    struct import_stats first = import_text(acct.id, file);
    cr_assert_gt(first.accepted, 0);
    cr_assert_eq(first.accepted + first.duplicates, events);
    char *before = snapshot(acct.id);
    int64_t inbox_before = th_count_rows("inbox", acct.id);

    struct import_stats second = import_text(acct.id, file);
    cr_assert_eq(second.rejected, 0);
    cr_assert_eq(second.valid, events);
    cr_assert_eq(second.accepted, 0, "the second import accepted %lld events", (long long)second.accepted);
    cr_assert_eq(second.duplicates, events);
    cr_assert_eq(second.woken, 0);
    cr_assert_eq(th_count_rows("inbox", acct.id), inbox_before);
    char *after = snapshot(acct.id);
    char where[1024];
    if (strcmp(before, after) != 0) first_difference(before, after, where, sizeof where);
    cr_assert(strcmp(before, after) == 0, "the second import changed the account:\n%s", where);
    free(before);
    free(after);
    free(file);
}

Test(import, import_reports_rejected_lines)
{
    struct th_account acct;
    th_account_new(&acct);
    const char *file =
        "{\"id\":\"ok1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"manager\":\"mm1\",\"name\":\"Анна\"}}\n"
        "\n"
        "{\"id\":\"bad1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T10:00:00Z\",\"data\":{"
        "\"manager\":\n"
        "this is not json\n"
        "\r\n"
        "{\"id\":\"bad2\",\"type\":\"deal.exploded\",\"at\":\"2024-03-01T10:00:00Z\",\"data\":{}}\n"
        "{\"id\":\"bad3\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"deal\":\"B1\",\"name\":\"x\",\"pipeline\":\"P\"}}\n"
        "{\"id\":\"bad4\",\"type\":\"deal.created\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"deal\":\"B1\",\"name\":\"x\",\"price\":-5,\"pipeline\":\"P\"}}\n"
        "{\"id\":\"bad5\",\"type\":\"manager.upserted\",\"at\":\"yesterday\","
        "\"data\":{\"manager\":\"mm2\",\"name\":\"Пётр\"}}\n"
        "{\"id\":\"bad6\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"manager\":\"mm2\",\"name\":\"Пётр\",\"colour\":\"red\"}}\n"
        "{\"id\":\"bad7\",\"id\":\"bad7\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T10:00:00Z\","
        "\"data\":{\"manager\":\"mm2\",\"name\":\"Пётр\"}}\n"
        "[1,2,3]\n"
        "{\"id\":\"ok2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T11:00:00Z\","
        "\"data\":{\"deal\":\"B2\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"P\",\"manager\":\"mm1\"}}\n"
        "\n";
    struct import_stats st = import_text(acct.id, file);
    cr_assert_eq(st.rejected, 9, "rejected %lld", (long long)st.rejected);
    cr_assert_eq(st.valid, 2);
    cr_assert_eq(st.accepted, 2);
    cr_assert_eq(st.duplicates, 0);
    cr_assert_eq(th_count_rows("inbox", acct.id), 2);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM inbox WHERE account_id = $1 AND event_id LIKE 'bad%'", acct.id, 0), 0);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM inbox WHERE account_id = $1 AND state = 'applied'", acct.id, 0), 2);
    /* nothing of the rejected lines was applied */
    cr_assert_eq(
        sql_int("SELECT count(*) FROM managers WHERE account_id = $1 AND external_id = 'mm2'", acct.id, 0),
        0);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND external_id = 'B1'", acct.id, 0), 0);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND external_id = 'B2'", acct.id, 0), 1);
    /* a rejected event's id stays free */
    st =
        import_text(acct.id, "{\"id\":\"bad1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T12:00:00Z\","
                             "\"data\":{\"manager\":\"mm2\",\"name\":\"Пётр\"}}\n");
    cr_assert_eq(st.rejected, 0);
    cr_assert_eq(st.accepted, 1);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM managers WHERE account_id = $1 AND external_id = 'mm2'", acct.id, 0),
        1);
}

Test(import, import_wakes_events_that_waited)
{
    struct th_account acct;
    th_account_new(&acct);
    seed(acct.admin_key);
    /* a price change and a task completion about a deal and a task that do not exist yet: they wait */
    struct th_resp r = post_ndjson(
        acct.admin_key, "{\"id\":\"w1\",\"type\":\"deal.updated\",\"at\":\"2024-03-05T10:00:00Z\","
                        "\"data\":{\"deal\":\"X1\",\"price\":777}}\n"
                        "{\"id\":\"w2\",\"type\":\"task.completed\",\"at\":\"2024-03-05T11:00:00Z\","
                        "\"data\":{\"task\":\"XT1\",\"result\":\"Дозвонились\"}}\n");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "accepted"), 2, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(
        sql_int("SELECT count(*) FROM inbox WHERE account_id = $1 AND state = 'waiting'", acct.id, 0), 2);

    struct import_stats st = import_text(
        acct.id,
        "{\"id\":\"i1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"X1\",\"name\":\"Склад\",\"price\":100,\"pipeline\":\"P1\",\"stage\":\"s2\"}}\n"
        "{\"id\":\"i2\",\"type\":\"task.created\",\"at\":\"2024-03-02T09:00:00Z\","
        "\"data\":{\"task\":\"XT1\",\"deal\":\"X1\",\"type\":\"call\",\"due_at\":\"2024-03-06T09:00:00Z\"}}"
        "\n");
    cr_assert_eq(st.accepted, 2);
    cr_assert_eq(st.woken, 2, "woken %lld", (long long)st.woken);
    char *state = sql_value("SELECT string_agg(event_id || '=' || state, ',' ORDER BY event_id) FROM inbox"
                            " WHERE account_id = $1",
                            acct.id, 0);
    cr_assert_str_eq(state, "i1=applied,i2=applied,w1=applied,w2=applied");
    free(state);

    r = th_get(acct.admin_key, "/api/v1/deals/ext:X1");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "price"), 777);
    th_resp_free(&r);
    r = th_get(acct.admin_key, "/api/v1/tasks/ext:XT1");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "state"), "done");
    cr_assert_str_eq(th_str(&r, "result"), "Дозвонились");
    cr_assert_str_eq(th_str(&r, "completed_at"), "2024-03-05T11:00:00Z");
    th_resp_free(&r);
}

Test(import, import_never_writes_to_the_crm)
{
    struct th_account acct;
    th_account_new(&acct);
    seed(acct.admin_key);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)acct.id);
    const char *params[] = {id};
    PGresult *pr =
        PQexecParams(pg,
                     "INSERT INTO amocrm_integrations (account_id, subdomain, base_url, access_token)"
                     " VALUES ($1, 'acme', 'http://127.0.0.1:1', 'x')",
                     1, NULL, params, NULL, NULL, 0);
    cr_assert_eq(PQresultStatus(pr), PGRES_COMMAND_OK, "%s", PQresultErrorMessage(pr));
    PQclear(pr);
    const char *file =
        "{\"id\":\"c1\",\"type\":\"manager.upserted\",\"at\":\"2024-03-01T08:00:00Z\","
        "\"data\":{\"manager\":\"501\",\"name\":\"Анна\"}}\n"
        "{\"id\":\"c2\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
        "\"data\":{\"deal\":\"9001\",\"name\":\"Окна\",\"price\":100,\"pipeline\":\"P1\",\"stage\":\"s1\","
        "\"manager\":\"501\"}}\n"
        "{\"id\":\"c3\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:30:00Z\","
        "\"data\":{\"deal\":\"9002\",\"name\":\"Двери\",\"price\":200,\"pipeline\":\"P1\"}}\n"
        "{\"id\":\"c4\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-02T09:00:00Z\","
        "\"data\":{\"deal\":\"9001\",\"stage\":\"s2\"}}\n"
        "{\"id\":\"c5\",\"type\":\"deal.responsible_changed\",\"at\":\"2024-03-02T10:00:00Z\","
        "\"data\":{\"deal\":\"9001\",\"manager\":\"502\"}}\n"
        "{\"id\":\"c6\",\"type\":\"deal.stage_changed\",\"at\":\"2024-03-03T09:00:00Z\","
        "\"data\":{\"deal\":\"9001\",\"stage\":\"lost\",\"loss_reason\":\"r1\"}}\n"
        "{\"id\":\"c7\",\"type\":\"task.created\",\"at\":\"2024-03-02T11:00:00Z\","
        "\"data\":{\"task\":\"7001\",\"deal\":\"9001\",\"type\":\"call\",\"text\":\"Позвонить\","
        "\"due_at\":\"2024-03-04T09:00:00Z\"}}\n"
        "{\"id\":\"c8\",\"type\":\"task.completed\",\"at\":\"2024-03-02T12:00:00Z\","
        "\"data\":{\"task\":\"7001\",\"result\":\"ok\"}}\n"
        "{\"id\":\"c9\",\"type\":\"note.added\",\"at\":\"2024-03-02T13:00:00Z\","
        "\"data\":{\"note\":\"8001\",\"deal\":\"9001\",\"text\":\"Перезвонить\"}}\n"
        "{\"id\":\"c10\",\"type\":\"deal.updated\",\"at\":\"2024-03-02T14:00:00Z\","
        "\"data\":{\"deal\":\"9002\",\"price\":300}}\n";
    struct import_stats st = import_text(acct.id, file);
    cr_assert_eq(st.accepted, 10);
    cr_assert_eq(th_count_rows("outbox", acct.id), 0);
    /* and nothing was distributed: the deal created without a manager still has none */
    cr_assert_eq(sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND external_id = '9002'"
                         " AND manager_id IS NULL",
                         acct.id, 0),
                 1);
    cr_assert_eq(sql_int("SELECT count(*) FROM deals WHERE account_id = $1 AND external_id = '9001'"
                         " AND status = 'lost'",
                         acct.id, 0),
                 1);
}

/* Rejection control: an import judges its moves into lost as per-event apply does. A loss before the rule was
 * switched on is not reviewed; a loss after it is, once; a deal lost, returned to a stage and lost again in
 * the file gets two reviews, each with its rejection_control task for the head. */
static void enable_rejection_control(const struct th_account *acct)
{
    struct th_resp r = th_post(acct->admin_key, "/api/v1/managers", "{\"name\":\"Head\",\"role\":\"head\"}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t head = th_int(&r, "id");
    th_resp_free(&r);
    r = th_put(acct->admin_key, "/api/v1/rejection-control/settings",
               "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}", (long long)head);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
}

Test(import, losses_are_reviewed_as_per_event_apply_would)
{
    struct th_account imported, posted;
    th_account_new(&imported);
    th_account_new(&posted);
    seed(imported.admin_key);
    seed(posted.admin_key);
    enable_rejection_control(&imported);
    enable_rejection_control(&posted);
    time_t now = time(NULL);
    char at[8][32];
    const long offsets[8] = {-10 * 86400, -9 * 86400, 2, 3, 2, 3, 4, 5}; /* after the rule: a few s ahead */
    for (int i = 0; i < 8; i++) {
        time_t t = now + offsets[i];
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(at[i], sizeof at[i], "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    struct text file = {0};
    text_addf(&file,
              "{\"id\":\"r1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"OLD\",\"name\":\"Old\","
              "\"price\":1,\"pipeline\":\"P1\",\"stage\":\"s1\",\"manager\":\"m1\"}}\n"
              "{\"id\":\"r2\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"OLD\",\"stage\":"
              "\"lost\"}}\n"
              "{\"id\":\"r3\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"NEW\",\"name\":\"New\","
              "\"price\":1,\"pipeline\":\"P1\",\"stage\":\"s1\",\"manager\":\"m1\"}}\n"
              "{\"id\":\"r4\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"NEW\",\"stage\":"
              "\"lost\"}}\n"
              "{\"id\":\"r5\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"TWICE\",\"name\":\"T\","
              "\"price\":1,\"pipeline\":\"P1\",\"stage\":\"s1\",\"manager\":\"m2\"}}\n"
              "{\"id\":\"r6\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"TWICE\",\"stage\":"
              "\"lost\"}}\n"
              "{\"id\":\"r7\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"TWICE\",\"stage\":"
              "\"s2\"}}\n"
              "{\"id\":\"r8\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"TWICE\",\"stage\":"
              "\"lost\"}}\n",
              at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7]);
    struct import_stats st = import_text(imported.id, file.data);
    cr_assert_eq(st.accepted, 8);
    struct th_resp r = post_ndjson(posted.admin_key, file.data);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "accepted"), 8, "%s", r.body);
    th_resp_free(&r);
    free(file.data);
    const struct th_account *both[] = {&imported, &posted};
    for (int k = 0; k < 2; k++) {
        int64_t id = both[k]->id;
        const char *which = k == 0 ? "import" : "POST /events";
        const char *per_deal = "SELECT count(*) FROM rejection_reviews v JOIN deals d ON d.account_id = v.account_id"
                               " AND d.id = v.deal_id WHERE v.account_id = $1 AND d.external_id = ";
        char sql[512];
        snprintf(sql, sizeof sql, "%s'OLD'", per_deal);
        cr_assert_eq(sql_int(sql, id, 0), 0, "%s: a loss before the rule was switched on is reviewed", which);
        snprintf(sql, sizeof sql, "%s'NEW'", per_deal);
        cr_assert_eq(sql_int(sql, id, 0), 1, "%s: the loss after the switch", which);
        snprintf(sql, sizeof sql, "%s'TWICE'", per_deal);
        cr_assert_eq(sql_int(sql, id, 0), 2, "%s: lost, back, lost again", which);
        cr_assert_eq(sql_int("SELECT count(*) FROM tasks WHERE account_id = $1 AND type = 'rejection_control'", id, 0),
                     3, "%s: one task per review", which);
        cr_assert_eq(sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = $1", id, 0), 4,
                     "%s: every move into lost is judged once", which);
    }
}

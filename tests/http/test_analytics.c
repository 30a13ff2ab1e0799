/* Analytics over HTTP: GET /analytics/managers, /analytics/summary and /analytics/funnel on one small fixture
 * account built from POST /events, with every figure computed by hand from the binding definitions
 * (shared/design/PRODUCT.md "Definitions": Time, Numbers, Who is who, Manager KPIs, Summary, Funnel).
 *
 * The account's zone is Asia/Yekaterinburg (UTC+5 all year, no DST), so local midnight is 19:00Z the day
 * before: the local day 2026-10-05 is [2026-10-04T19:00:00Z, 2026-10-05T19:00:00Z) and its as_of is
 * 2026-10-05T18:59:59Z; the local month October 2026 is [2026-09-30T19:00:00Z, 2026-10-31T19:00:00Z) with
 * as_of 2026-10-31T18:59:59Z. All events are dated in the past (Sept/Oct 2026), so none is "live" and no deal
 * is distributed; every deal.created names its manager.
 *
 * The fixture (times UTC; "L" = local time):
 *   managers (created in this order, so ids ascend): A "Андреева Анна" (manager), B "Борисов Борис"
 *   (manager), C "Васильева Вера" (manager, made inactive on 10-25: still a row), H "Главная Галина" (head:
 *   not a row), P "Пул amoCRM" (manager, amoCRM pool user: not a row), X "mX" (a placeholder manager created
 *   by D10's deal.created: a row). Report rows: A, B, C, X.
 *   pipeline p1 "Продажи": open stages s1 "Взят в работу", s2 "Выслано КП", s3 "Дожим", then won, lost;
 *   pipeline p2 "Сервис": open stages q1 "Заявка", q2 "Замер", q3 "Договор", q4 "Монтаж", won, lost.
 *   loss reasons r1 "Дорого" < r2 "Нет бюджета" (by id).
 *
 *   D1  A  created 10-02T10:00 s1 price 1000; ->s2 10-03T10:00; ->lost r1 10-04T19:30 (L Oct 5 00:30, A
 *          responsible); reopened ->s2 10-05T08:00; responsible ->B 10-05T08:30; price ->1500 10-05T09:00;
 *          ->won 10-05T10:00 (B responsible, price 1500). Lost AND won on Oct 5.
 *   D2  A  created 10-02T11:00 s1 2000; ->s3 10-03T12:00 (skips s2); ->lost r2 10-04T18:30 (L Oct 4 23:30).
 *   D3  B  created 10-01T09:00 s1 3000; ->s2 10-05T12:00; ->won 10-05T14:00 (sent in one batch, the won
 *          first); then, late, price ->3500 dated 10-05T11:00 (before the move to s2): won at 3500.
 *   D4  C  created 10-03T09:00 s1 400; ->lost (no reason) 10-05T06:00.
 *   D5  B  created 10-02T09:00 s1 500; ->s2 10-05T01:00 (L Oct 5 06:00); ->lost r1 10-05T15:00.
 *   D6  A  created 10-05T05:00 in s2 600; ->s1 10-05T07:00 (moved back); stays open.
 *   D7  A  created 10-05T04:00 s1 9999; ->won 10-05T05:00; deleted 10-05T16:00: left out of everything.
 *   D8  P  created 10-03T08:00 s1 700; ->s3 10-05T11:00 (skips s2); ->won 10-05T13:00 (pool deal).
 *   D9  H  created 10-04T20:00 (L Oct 5 01:00) s1 800; ->lost r2 10-05T09:30 (head's deal).
 *   D10 X  created 10-05T03:00 s1 100 (manager "mX" unknown: placeholder); stays open, no task.
 *   D11 C  pipeline p2: created 10-05T02:00 q1 5000; ->won 10-05T16:00; price ->6000 10-07T10:00 (after
 *          the win: won_revenue stays 5000).
 *   D12 B  created 09-20T10:00 (before October) in s2 1200; responsible ->A 10-20T09:00; stays open.
 *   D13 C  created 10-05T02:00 s1 300; ->lost r2 10-06T10:00 (after the Oct 5 period).
 *   D14 B  created 10-10T10:00 s1 1400; ->s2 10-11T10:00; ->lost r2 10-12T10:00.
 *   D15 A  created 10-15T10:00 directly in s3 1500; ->lost r1 10-16T10:00.
 *   D16 P  created 10-20T10:00 s1 160; ->lost r1 10-21T10:00 (pool deal).
 *
 *   tasks:
 *   T1 D6 A  created 10-05T05:10, due 10-05T12:00, completed 10-05T12:00:00 exactly (on time).
 *   T2 D6 A  created 10-05T07:10, due 10-05T09:00, completed 10-05T10:30 (late 5400 s).
 *   T5 D6 A  created 10-05T05:20, due 10-05T11:00, deleted 10-05T11:30.
 *   T9 D6 A  created 10-05T06:00, due 10-05T13:00, deleted 10-06T10:00 (after the Oct 5 period).
 *   T3 D12 B created 10-01T10:00, due 10-03T10:00, never completed.
 *   T6 D12 B created 10-02T10:00, due 10-05T10:00, moved (task.updated 10-04T10:00) to due 10-07T10:00,
 *            completed 10-07T09:00 (on time).
 *   T8 D12 B created 10-02T10:00, due 10-10T10:00, reassigned to C 10-12T10:00 (after its due), never
 *            completed.
 *   T4 D13 C created 10-05T02:30, due 10-05T16:00; moved (task.updated 10-06T08:00, after the Oct 5 period)
 *            to due 10-06T12:00; completed 10-06T09:00 (after the Oct 5 period; before its new due).
 *
 *   calls: C1 A out answered 120 s 10-05T05:30; C2 A in answered 60 s 10-04T19:10 (L Oct 5 00:10);
 *   C3 A out unanswered 15 s 10-05T10:00; C4 B out answered 300 s 10-04T18:50 (L Oct 4 23:50); C5 B in
 *   unanswered 20 s 10-05T12:00; C6 C out answered 45 s 10-20T10:00; C7 H out answered 100 s 10-05T09:00.
 *
 * A second, separate part lives in the local week 2026-09-07 (Mon) .. 2026-09-13 = [2026-09-06T19:00:00Z,
 * 2026-09-13T19:00:00Z): its deals are all closed within the week and its tasks all due within it, so that it
 * touches no October figure:
 *   E1 A  created 09-07T05:00 s1 100; ->won 09-08T05:00 (A); reopened ->s2 09-09T05:00; responsible ->B
 *          09-09T06:00; price ->250 09-09T07:00; ->won again 09-10T05:00 (B): one won deal, B's, 250.
 *   E2 A  created 09-07T06:00 s1 200; ->s2 09-08T06:00; ->s3 09-09T06:00; back ->s2 09-10T06:00; ->lost r1
 *          09-11T06:00.
 *   E3 B  created 09-08T07:00 directly in won, 300 (created and closed).
 *   E4 C  created 09-08T08:00 in s2 400; back ->s1 09-09T08:00; ->lost (no reason) 09-10T08:00.
 *   E5 A  created 09-09T09:00 s1 500; deleted 09-09T10:00; restored 09-09T11:00; ->won 09-10T09:00.
 *   E6 A  created 09-08T10:00 s1 600; ->won 09-09T12:00; then, late, responsible ->B dated 09-09T11:00: the
 *          win is B's (the creator stays A).
 *   U3 E1 A due 09-12T10:00, completed 09-07T07:00 (early: on time).
 *   U5 E2 A due 09-20T10:00, moved 09-08T10:00 to 09-11T05:00, completed 09-11T06:00 (late 3600 s).
 *   U2 E4 C due 09-09T09:00, given to B 09-09T08:00 (before its due), completed 09-09T09:30 (late 1800 s).
 *   U1 E2 A created only on 11-02T10:00 with due 09-10T10:00 (did not exist at the week's as_of).
 *   calls: W1 A out answered 30 s 09-10T10:00; W2 P out answered 40 s; W3 A out answered 1000 s at
 *   09-06T18:59:59 (L Sep 6 23:59:59: outside); W4 A in answered 7 s at 09-06T19:00:00 (L Sep 7 00:00:00:
 *   inside); W5 A out unanswered 5 s at 09-13T18:59:59 (the week's last second: inside); W6 B out answered
 *   11 s at 09-13T19:00:00 (outside).
 *
 * A third part, in the local week 2026-09-21 .. 2026-09-27, pipeline p2 only, all P's (pool user) and all
 * lost within the week: F1 created in q1, lost r1; F2 in q2, lost r2; F3 in q2, lost without a reason; F4 in
 * q3, lost r2; F5 in q4, lost r1.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"

#define V1    "/api/v1"
#define LL(x) ((long long)(x))
#define NUL   (-1.0) /* an expected ratio that must be null */
#define NULI  (-1)   /* an expected nullable integer that must be null */

static void setup(void)
{
    th_server_start(TEST_SUITE);
}

static void teardown(void)
{
    th_server_stop();
}

TestSuite(analytics, .init = setup, .fini = teardown);

/* ---- the fixture ---- */

static struct fixture {
    struct th_account acct;
    int64_t p1, p2;
    int64_t s[3]; /* p1's open stages s1, s2, s3 */
    int64_t q[4]; /* p2's open stages q1..q4 */
    int64_t r1, r2;
    int64_t mA, mB, mC, mH, mP, mX;
    char readonly_key[64], head_key[64], manager_key[64];
} f;

/* A growing JSON array of events with ids "e<n>" unique in the account. */
static struct {
    char *buf;
    size_t len, cap;
    int count;
    int next_id;
} batch;

static void ev(const char *type, const char *at, const char *data_fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ev(const char *type, const char *at, const char *data_fmt, ...)
{
    char data[1024];
    TH_VFORMAT(data, data_fmt);
    char one[1400];
    int n = snprintf(one, sizeof one, "%s{\"id\":\"e%d\",\"type\":\"%s\",\"at\":\"%s\",\"data\":{%s}}",
                     batch.count ? "," : "", ++batch.next_id, type, at, data);
    cr_assert(n > 0 && (size_t)n < sizeof one);
    if (batch.len + (size_t)n + 4 > batch.cap) {
        batch.cap = (batch.cap + (size_t)n + 4) * 2;
        batch.buf = realloc(batch.buf, batch.cap);
        cr_assert(batch.buf != NULL);
    }
    if (batch.len == 0) batch.buf[batch.len++] = '[';
    memcpy(batch.buf + batch.len, one, (size_t)n);
    batch.len += (size_t)n;
    batch.buf[batch.len] = '\0';
    batch.count++;
}

/* Posts the batch; every event must be accepted. */
static void send_batch(void)
{
    cr_assert(batch.count > 0);
    batch.buf[batch.len++] = ']';
    batch.buf[batch.len] = '\0';
    struct th_resp r = th_post_events(f.acct.admin_key, batch.buf);
    cr_assert_eq(th_int(&r, "accepted"), batch.count, "events: %s\nbody: %s", r.body, batch.buf);
    th_resp_free(&r);
    batch.len = 0;
    batch.count = 0;
}

/* Waits until everything received has been applied, and none of it failed. */
static void wait_applied(void)
{
    th_wait_applied(f.acct.admin_key, 10000);
    cr_assert_eq(th_inbox_count(f.acct.admin_key, "failed"), 0, "events failed");
}

static void build_fixture(void)
{
    memset(&f, 0, sizeof f);
    th_account_new(&f.acct);
    const char *key = f.acct.admin_key;
    struct th_resp r = th_patch(key, V1 "/account", "{\"timezone\":\"Asia/Yekaterinburg\"}");
    cr_assert_eq(r.status, 200, "account: %s", r.body);
    cr_assert_str_eq(th_str(&r, "timezone"), "Asia/Yekaterinburg", "%s", r.body);
    th_resp_free(&r);

    r = th_post(key, V1 "/pipelines",
                "{\"name\":\"Продажи\",\"external_id\":\"p1\",\"stages\":["
                "{\"name\":\"Взят в работу\",\"external_id\":\"s1\",\"kind\":\"open\"},"
                "{\"name\":\"Выслано КП\",\"external_id\":\"s2\",\"kind\":\"open\"},"
                "{\"name\":\"Дожим\",\"external_id\":\"s3\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    f.p1 = th_int(&r, "id");
    json_t *stages = json_object_get(r.json, "stages");
    cr_assert_eq(json_array_size(stages), 5, "%s", r.body);
    for (size_t i = 0; i < 3; i++)
        f.s[i] = json_integer_value(json_object_get(json_array_get(stages, i), "id"));
    th_resp_free(&r);
    r = th_post(key, V1 "/pipelines",
                "{\"name\":\"Сервис\",\"external_id\":\"p2\",\"stages\":["
                "{\"name\":\"Заявка\",\"external_id\":\"q1\",\"kind\":\"open\"},"
                "{\"name\":\"Замер\",\"external_id\":\"q2\",\"kind\":\"open\"},"
                "{\"name\":\"Договор\",\"external_id\":\"q3\",\"kind\":\"open\"},"
                "{\"name\":\"Монтаж\",\"external_id\":\"q4\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "pipeline: %s", r.body);
    f.p2 = th_int(&r, "id");
    cr_assert_eq(json_array_size(json_object_get(r.json, "stages")), 6, "%s", r.body);
    for (size_t i = 0; i < 4; i++)
        f.q[i] =
            json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), i), "id"));
    th_resp_free(&r);
    f.r1 = th_loss_reason_new(key, "Дорого", "r1");
    f.r2 = th_loss_reason_new(key, "Нет бюджета", "r2");
    cr_assert_lt(f.r1, f.r2);

    /* managers, one request each so that ids ascend A < B < C < H < P */
    static const char *const mgr[][3] = {{"mA", "Андреева Анна", "manager"},
                                         {"mB", "Борисов Борис", "manager"},
                                         {"mC", "Васильева Вера", "manager"},
                                         {"mH", "Главная Галина", "head"},
                                         {"mP", "Пул amoCRM", "manager"}};
    for (int i = 0; i < 5; i++) {
        char at[32];
        snprintf(at, sizeof at, "2026-09-01T00:00:0%dZ", i + 1);
        ev("manager.upserted", at, "\"manager\":\"%s\",\"name\":\"%s\",\"role\":\"%s\",\"active\":true",
           mgr[i][0], mgr[i][1], mgr[i][2]);
        send_batch();
    }
    wait_applied();
    f.mA = th_id_by_ext(f.acct.admin_key, "managers", "mA");
    f.mB = th_id_by_ext(f.acct.admin_key, "managers", "mB");
    f.mC = th_id_by_ext(f.acct.admin_key, "managers", "mC");
    f.mH = th_id_by_ext(f.acct.admin_key, "managers", "mH");
    f.mP = th_id_by_ext(f.acct.admin_key, "managers", "mP");
    cr_assert(f.mA < f.mB && f.mB < f.mC && f.mC < f.mH && f.mH < f.mP);
    th_sql_int("UPDATE managers SET pool_user = true WHERE account_id = %lld AND external_id = 'mP'",
               LL(f.acct.id));

    /* deals created (each with its manager) */
#define DEAL(d, at, stage, price, m)                                                                         \
    ev("deal.created", at,                                                                                   \
       "\"deal\":\"" d "\",\"name\":\"" d "\",\"price\":" #price ",\"pipeline\":\"p1\",\"stage\":\"" stage   \
       "\",\"manager\":\"" m "\"")
    DEAL("D12", "2026-09-20T10:00:00Z", "s2", 1200, "mB");
    DEAL("D3", "2026-10-01T09:00:00Z", "s1", 3000, "mB");
    DEAL("D5", "2026-10-02T09:00:00Z", "s1", 500, "mB");
    DEAL("D1", "2026-10-02T10:00:00Z", "s1", 1000, "mA");
    DEAL("D2", "2026-10-02T11:00:00Z", "s1", 2000, "mA");
    DEAL("D8", "2026-10-03T08:00:00Z", "s1", 700, "mP");
    DEAL("D4", "2026-10-03T09:00:00Z", "s1", 400, "mC");
    DEAL("D9", "2026-10-04T20:00:00Z", "s1", 800, "mH");
    ev("deal.created", "2026-10-05T02:00:00Z",
       "\"deal\":\"D11\",\"name\":\"D11\",\"price\":5000,\"pipeline\":\"p2\",\"stage\":\"q1\",\"manager\":"
       "\"mC\"");
    DEAL("D13", "2026-10-05T02:00:00Z", "s1", 300, "mC");
    DEAL("D10", "2026-10-05T03:00:00Z", "s1", 100, "mX");
    DEAL("D7", "2026-10-05T04:00:00Z", "s1", 9999, "mA");
    DEAL("D6", "2026-10-05T05:00:00Z", "s2", 600, "mA");
    DEAL("D14", "2026-10-10T10:00:00Z", "s1", 1400, "mB");
    DEAL("D15", "2026-10-15T10:00:00Z", "s3", 1500, "mA");
    DEAL("D16", "2026-10-20T10:00:00Z", "s1", 160, "mP");
#undef DEAL
    send_batch();
    wait_applied();
    f.mX = th_id_by_ext(f.acct.admin_key, "managers", "mX");
    cr_assert_gt(f.mX, f.mP);

    /* stage moves, responsible and price changes, deletion, C made inactive */
#define MOVE(d, at, stage) ev("deal.stage_changed", at, "\"deal\":\"" d "\",\"stage\":\"" stage "\"")
#define LOSE(d, at, reason)                                                                                  \
    ev("deal.stage_changed", at, "\"deal\":\"" d "\",\"stage\":\"lost\",\"loss_reason\":\"" reason "\"")
    MOVE("D1", "2026-10-03T10:00:00Z", "s2");
    MOVE("D2", "2026-10-03T12:00:00Z", "s3");
    LOSE("D2", "2026-10-04T18:30:00Z", "r2");
    LOSE("D1", "2026-10-04T19:30:00Z", "r1");
    MOVE("D5", "2026-10-05T01:00:00Z", "s2");
    MOVE("D7", "2026-10-05T05:00:00Z", "won");
    MOVE("D4", "2026-10-05T06:00:00Z", "lost");
    MOVE("D6", "2026-10-05T07:00:00Z", "s1");
    MOVE("D1", "2026-10-05T08:00:00Z", "s2");
    ev("deal.responsible_changed", "2026-10-05T08:30:00Z", "\"deal\":\"D1\",\"manager\":\"mB\"");
    ev("deal.updated", "2026-10-05T09:00:00Z", "\"deal\":\"D1\",\"price\":1500");
    LOSE("D9", "2026-10-05T09:30:00Z", "r2");
    MOVE("D1", "2026-10-05T10:00:00Z", "won");
    MOVE("D8", "2026-10-05T11:00:00Z", "s3");
    MOVE("D8", "2026-10-05T13:00:00Z", "won");
    LOSE("D5", "2026-10-05T15:00:00Z", "r1");
    ev("deal.deleted", "2026-10-05T16:00:00Z", "\"deal\":\"D7\"");
    MOVE("D11", "2026-10-05T16:00:00Z", "won");
    LOSE("D13", "2026-10-06T10:00:00Z", "r2");
    ev("deal.updated", "2026-10-07T10:00:00Z", "\"deal\":\"D11\",\"price\":6000");
    MOVE("D14", "2026-10-11T10:00:00Z", "s2");
    LOSE("D14", "2026-10-12T10:00:00Z", "r2");
    LOSE("D15", "2026-10-16T10:00:00Z", "r1");
    ev("deal.responsible_changed", "2026-10-20T09:00:00Z", "\"deal\":\"D12\",\"manager\":\"mA\"");
    LOSE("D16", "2026-10-21T10:00:00Z", "r1");
    ev("manager.upserted", "2026-10-25T00:00:00Z",
       "\"manager\":\"mC\",\"name\":\"Васильева Вера\",\"role\":\"manager\",\"active\":false");
    send_batch();
    wait_applied();

    /* out of order: D3's win comes first in the batch, its move to s2 (two hours earlier) second */
    MOVE("D3", "2026-10-05T14:00:00Z", "won");
    MOVE("D3", "2026-10-05T12:00:00Z", "s2");
    send_batch();
    wait_applied();
    /* late: a price change dated before D3's move to s2 arrives after the win */
    ev("deal.updated", "2026-10-05T11:00:00Z", "\"deal\":\"D3\",\"price\":3500");
    send_batch();
    wait_applied();
#undef MOVE
#undef LOSE

    /* tasks */
#define TASK(t, at, d, m, due)                                                                               \
    ev("task.created", at,                                                                                   \
       "\"task\":\"" t "\",\"deal\":\"" d "\",\"manager\":\"" m "\",\"type\":\"call\",\"text\":\"" t         \
       "\",\"due_at\":\"" due "\"")
    TASK("T3", "2026-10-01T10:00:00Z", "D12", "mB", "2026-10-03T10:00:00Z");
    TASK("T6", "2026-10-02T10:00:00Z", "D12", "mB", "2026-10-05T10:00:00Z");
    TASK("T8", "2026-10-02T10:00:00Z", "D12", "mB", "2026-10-10T10:00:00Z");
    ev("task.updated", "2026-10-04T10:00:00Z", "\"task\":\"T6\",\"due_at\":\"2026-10-07T10:00:00Z\"");
    TASK("T4", "2026-10-05T02:30:00Z", "D13", "mC", "2026-10-05T16:00:00Z");
    TASK("T1", "2026-10-05T05:10:00Z", "D6", "mA", "2026-10-05T12:00:00Z");
    TASK("T5", "2026-10-05T05:20:00Z", "D6", "mA", "2026-10-05T11:00:00Z");
    TASK("T2", "2026-10-05T07:10:00Z", "D6", "mA", "2026-10-05T09:00:00Z");
    TASK("T9", "2026-10-05T06:00:00Z", "D6", "mA", "2026-10-05T13:00:00Z");
    ev("task.deleted", "2026-10-06T10:00:00Z", "\"task\":\"T9\"");
    ev("task.completed", "2026-10-05T10:30:00Z", "\"task\":\"T2\"");
    ev("task.deleted", "2026-10-05T11:30:00Z", "\"task\":\"T5\"");
    ev("task.completed", "2026-10-05T12:00:00Z", "\"task\":\"T1\",\"result\":\"done\"");
    ev("task.updated", "2026-10-06T08:00:00Z", "\"task\":\"T4\",\"due_at\":\"2026-10-06T12:00:00Z\"");
    ev("task.completed", "2026-10-06T09:00:00Z", "\"task\":\"T4\"");
    ev("task.completed", "2026-10-07T09:00:00Z", "\"task\":\"T6\"");
    ev("task.updated", "2026-10-12T10:00:00Z", "\"task\":\"T8\",\"manager\":\"mC\"");
#undef TASK
    send_batch();

    /* calls */
#define CALL(c, at, m, dir, dur, ans)                                                                        \
    ev("call.logged", at,                                                                                    \
       "\"call\":\"" c "\",\"manager\":\"" m "\",\"direction\":\"" dir "\",\"duration_s\":" #dur             \
       ",\"answered\":" #ans)
    CALL("C1", "2026-10-05T05:30:00Z", "mA", "out", 120, true);
    CALL("C2", "2026-10-04T19:10:00Z", "mA", "in", 60, true);
    CALL("C3", "2026-10-05T10:00:00Z", "mA", "out", 15, false);
    CALL("C4", "2026-10-04T18:50:00Z", "mB", "out", 300, true);
    CALL("C5", "2026-10-05T12:00:00Z", "mB", "in", 20, false);
    CALL("C6", "2026-10-20T10:00:00Z", "mC", "out", 45, true);
    CALL("C7", "2026-10-05T09:00:00Z", "mH", "out", 100, true);
    /* the week of 2026-09-07 (local) = [2026-09-06T19:00:00Z, 2026-09-13T19:00:00Z), on its boundaries */
    CALL("W1", "2026-09-10T10:00:00Z", "mA", "out", 30, true);
    CALL("W2", "2026-09-10T11:00:00Z", "mP", "out", 40, true);
    CALL("W3", "2026-09-06T18:59:59Z", "mA", "out", 1000, true);
    CALL("W4", "2026-09-06T19:00:00Z", "mA", "in", 7, true);
    CALL("W5", "2026-09-13T18:59:59Z", "mA", "out", 5, false);
    CALL("W6", "2026-09-13T19:00:00Z", "mB", "out", 11, true);
#undef CALL
    send_batch();
    wait_applied();

    /* the week of 2026-09-07: deals all closed within the week, tasks all due within it (so October is not
     * touched) */
    ev("deal.created", "2026-09-07T05:00:00Z",
       "\"deal\":\"E1\",\"name\":\"E1\",\"price\":100,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":"
       "\"mA\"");
    ev("deal.created", "2026-09-07T06:00:00Z",
       "\"deal\":\"E2\",\"name\":\"E2\",\"price\":200,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":"
       "\"mA\"");
    ev("deal.created", "2026-09-08T07:00:00Z",
       "\"deal\":\"E3\",\"name\":\"E3\",\"price\":300,\"pipeline\":\"p1\",\"stage\":\"won\",\"manager\":"
       "\"mB\"");
    ev("deal.created", "2026-09-08T08:00:00Z",
       "\"deal\":\"E4\",\"name\":\"E4\",\"price\":400,\"pipeline\":\"p1\",\"stage\":\"s2\",\"manager\":"
       "\"mC\"");
    ev("deal.created", "2026-09-09T09:00:00Z",
       "\"deal\":\"E5\",\"name\":\"E5\",\"price\":500,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":"
       "\"mA\"");
    ev("deal.created", "2026-09-08T10:00:00Z",
       "\"deal\":\"E6\",\"name\":\"E6\",\"price\":600,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":"
       "\"mA\"");
#define MOVE(d, at, stage) ev("deal.stage_changed", at, "\"deal\":\"" d "\",\"stage\":\"" stage "\"")
    /* E1: won, reopened into s2, given to B, price 250, won again */
    MOVE("E1", "2026-09-08T05:00:00Z", "won");
    MOVE("E1", "2026-09-09T05:00:00Z", "s2");
    ev("deal.responsible_changed", "2026-09-09T06:00:00Z", "\"deal\":\"E1\",\"manager\":\"mB\"");
    ev("deal.updated", "2026-09-09T07:00:00Z", "\"deal\":\"E1\",\"price\":250");
    MOVE("E1", "2026-09-10T05:00:00Z", "won");
    /* E2: s1 -> s2 -> s3 -> back to s2 -> lost r1 */
    MOVE("E2", "2026-09-08T06:00:00Z", "s2");
    MOVE("E2", "2026-09-09T06:00:00Z", "s3");
    MOVE("E2", "2026-09-10T06:00:00Z", "s2");
    ev("deal.stage_changed", "2026-09-11T06:00:00Z",
       "\"deal\":\"E2\",\"stage\":\"lost\",\"loss_reason\":\"r1\"");
    /* E4: created in s2, back to s1, lost there without a reason */
    MOVE("E4", "2026-09-09T08:00:00Z", "s1");
    MOVE("E4", "2026-09-10T08:00:00Z", "lost");
    /* E5: deleted, restored, won */
    ev("deal.deleted", "2026-09-09T10:00:00Z", "\"deal\":\"E5\"");
    ev("deal.restored", "2026-09-09T11:00:00Z", "\"deal\":\"E5\"");
    MOVE("E5", "2026-09-10T09:00:00Z", "won");
    MOVE("E6", "2026-09-09T12:00:00Z", "won");
#undef MOVE
    /* U3 A on E1: due 09-12T10:00, completed early. U5 A on E2: due 09-20 (outside the week), moved on 09-08
     * to 09-11T05:00, completed 09-11T06:00. U2 on E4: C's, due 09-09T09:00, given to B at 08:00 before its
     * due, completed 09:30. U1 on E2: created only on 11-02 with a due of 09-10T10:00. */
    ev("task.created", "2026-09-07T06:00:00Z",
       "\"task\":\"U3\",\"deal\":\"E1\",\"manager\":\"mA\",\"type\":\"meeting\",\"due_at\":\"2026-09-12T10:"
       "00:00Z\"");
    ev("task.completed", "2026-09-07T07:00:00Z", "\"task\":\"U3\"");
    ev("task.created", "2026-09-07T07:00:00Z",
       "\"task\":\"U5\",\"deal\":\"E2\",\"manager\":\"mA\",\"type\":\"other\",\"due_at\":\"2026-09-20T10:00:"
       "00Z\"");
    ev("task.updated", "2026-09-08T10:00:00Z", "\"task\":\"U5\",\"due_at\":\"2026-09-11T05:00:00Z\"");
    ev("task.completed", "2026-09-11T06:00:00Z", "\"task\":\"U5\"");
    ev("task.created", "2026-09-08T09:00:00Z",
       "\"task\":\"U2\",\"deal\":\"E4\",\"manager\":\"mC\",\"type\":\"follow_up\",\"due_at\":\"2026-09-09T09:"
       "00:00Z\"");
    ev("task.updated", "2026-09-09T08:00:00Z", "\"task\":\"U2\",\"manager\":\"mB\"");
    ev("task.completed", "2026-09-09T09:30:00Z", "\"task\":\"U2\"");
    ev("task.created", "2026-11-02T10:00:00Z",
       "\"task\":\"U1\",\"deal\":\"E2\",\"manager\":\"mA\",\"type\":\"call\",\"due_at\":\"2026-09-10T10:00:"
       "00Z\"");
    send_batch();
    wait_applied();
    /* late: E6 was given to B an hour before its win (the win is then B's) */
    ev("deal.responsible_changed", "2026-09-09T11:00:00Z", "\"deal\":\"E6\",\"manager\":\"mB\"");
    send_batch();
    wait_applied();

    /* the week of 2026-09-21 (local), pipeline p2 only: one deal created in each open stage and lost there
     * (two in q2); all pool user P's, all closed within the week */
#define FDEAL(d, at, stage, lost_at, reason)                                                                 \
    ev("deal.created", at,                                                                                   \
       "\"deal\":\"" d "\",\"name\":\"" d "\",\"price\":10,\"pipeline\":\"p2\",\"stage\":\"" stage           \
       "\",\"manager\":\"mP\"");                                                                             \
    ev("deal.stage_changed", lost_at, "\"deal\":\"" d "\",\"stage\":\"lost\"" reason)
    FDEAL("F1", "2026-09-22T10:00:00Z", "q1", "2026-09-23T10:00:00Z", ",\"loss_reason\":\"r1\"");
    FDEAL("F2", "2026-09-22T11:00:00Z", "q2", "2026-09-23T11:00:00Z", ",\"loss_reason\":\"r2\"");
    FDEAL("F3", "2026-09-22T12:00:00Z", "q2", "2026-09-23T12:00:00Z", "");
    FDEAL("F4", "2026-09-22T13:00:00Z", "q3", "2026-09-23T13:00:00Z", ",\"loss_reason\":\"r2\"");
    FDEAL("F5", "2026-09-22T14:00:00Z", "q4", "2026-09-23T14:00:00Z", ",\"loss_reason\":\"r1\"");
#undef FDEAL
    send_batch();
    wait_applied();

    th_key_new(&f.acct, "readonly", 0, f.readonly_key);
    th_key_new(&f.acct, "head", 0, f.head_key);
    th_key_new(&f.acct, "manager", f.mA, f.manager_key);
}

/* ---- JSON checks ---- */

/* Ratios go out with at most 4 decimals, and no number has an exponent (checked on the body as sent). */
static void expect_short_numbers(const char *path, const char *body)
{
    bool in_string = false;
    for (const char *p = body; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == '"')
                in_string = false;
            continue;
        }
        if (*p == '"') {
            in_string = true;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            const char *start = p;
            while (*p == '-' || (*p >= '0' && *p <= '9'))
                p++;
            int decimals = 0;
            if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++)
                    decimals++;
            cr_expect(decimals <= 4 && *p != 'e' && *p != 'E',
                      "GET %s: the number at \"%.24s\" has more than 4 decimals or an exponent", path, start);
            p--;
        }
    }
}

static json_t *get_ok(const char *key, const char *path_fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *get_ok(const char *key, const char *path_fmt, ...)
{
    char path[512];
    TH_VFORMAT(path, path_fmt);
    struct th_resp r = th_request("GET", path, key, NULL, NULL, NULL);
    cr_assert_eq(r.status, 200, "GET %s: %ld %s", path, r.status, r.body);
    cr_assert(json_is_object(r.json), "GET %s: not a JSON object: %s", path, r.body);
    if (strstr(path, "/analytics/") != NULL) expect_short_numbers(path, r.body);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    return j;
}

static void expect_int(json_t *o, const char *field, int64_t want, const char *ctx, json_t *whole)
{
    json_t *v = json_object_get(o, field);
    cr_assert(json_is_integer(v), "%s: %s should be the integer %lld: %s", ctx, field, LL(want),
              th_dump(whole));
    cr_expect_eq(json_integer_value(v), want, "%s: %s = %lld, expected %lld\n  reply: %s", ctx, field,
                 LL(json_integer_value(v)), LL(want), th_dump(whole));
}

/* want NULI: null */
static void expect_int_or_null(json_t *o, const char *field, int64_t want, const char *ctx, json_t *whole)
{
    if (want == NULI) {
        json_t *v = json_object_get(o, field);
        cr_expect(json_is_null(v), "%s: %s should be null, is %s\n  reply: %s", ctx, field,
                  v ? (json_is_integer(v) ? "a number" : "not null") : "missing", th_dump(whole));
        if (json_is_integer(v))
            cr_expect(false, "%s: %s = %lld, expected null", ctx, field, LL(json_integer_value(v)));
    } else {
        expect_int(o, field, want, ctx, whole);
    }
}

/* want NUL: null; else the number, exactly as rounded to 4 decimals */
static void expect_ratio(json_t *o, const char *field, double want, const char *ctx, json_t *whole)
{
    json_t *v = json_object_get(o, field);
    if (want < 0) {
        cr_expect(json_is_null(v), "%s: %s should be null, is %g\n  reply: %s", ctx, field,
                  json_is_number(v) ? json_number_value(v) : -999.0, th_dump(whole));
        return;
    }
    cr_assert(json_is_number(v), "%s: %s should be the number %.4f: %s", ctx, field, want, th_dump(whole));
    cr_expect(fabs(json_number_value(v) - want) < 1e-9, "%s: %s = %.10g, expected %.4f\n  reply: %s", ctx,
              field, json_number_value(v), want, th_dump(whole));
}

static void expect_str(json_t *o, const char *field, const char *want, const char *ctx, json_t *whole)
{
    const char *s = json_string_value(json_object_get(o, field));
    cr_assert(s != NULL, "%s: %s should be the string \"%s\": %s", ctx, field, want, th_dump(whole));
    cr_expect_str_eq(s, want, "%s: %s = \"%s\", expected \"%s\"", ctx, field, s, want);
}

static void expect_period(json_t *j, const char *from, const char *to, const char *as_of)
{
    expect_str(j, "from", from, "period", j);
    expect_str(j, "to", to, "period", j);
    expect_str(j, "as_of", as_of, "period", j);
}

/* One row of /analytics/managers (or the team row). */
struct kpi {
    int64_t talk_time_s, outgoing_calls, deals_created, won, won_revenue, lost;
    double conversion, close_rate;
    int64_t deals_without_tasks, deals_with_overdue_tasks, missed_deals, tasks_due, tasks_on_time;
    double on_time_share;
    int64_t overdue_total_s, overdue_avg_s;
};

static void expect_kpi(json_t *row, const struct kpi *k, const char *ctx, json_t *whole)
{
    cr_assert(json_is_object(row), "%s: no such row: %s", ctx, th_dump(whole));
    expect_int(row, "talk_time_s", k->talk_time_s, ctx, whole);
    expect_int(row, "outgoing_calls", k->outgoing_calls, ctx, whole);
    expect_int(row, "deals_created", k->deals_created, ctx, whole);
    expect_int(row, "won", k->won, ctx, whole);
    expect_int(row, "won_revenue", k->won_revenue, ctx, whole);
    expect_int(row, "lost", k->lost, ctx, whole);
    expect_ratio(row, "conversion", k->conversion, ctx, whole);
    expect_ratio(row, "close_rate", k->close_rate, ctx, whole);
    expect_int(row, "deals_without_tasks", k->deals_without_tasks, ctx, whole);
    expect_int(row, "deals_with_overdue_tasks", k->deals_with_overdue_tasks, ctx, whole);
    expect_int(row, "missed_deals", k->missed_deals, ctx, whole);
    expect_int(row, "tasks_due", k->tasks_due, ctx, whole);
    expect_int(row, "tasks_on_time", k->tasks_on_time, ctx, whole);
    expect_ratio(row, "on_time_share", k->on_time_share, ctx, whole);
    expect_int(row, "overdue_total_s", k->overdue_total_s, ctx, whole);
    expect_int_or_null(row, "overdue_avg_s", k->overdue_avg_s, ctx, whole);
}

static const char *const row_label[4] = {"A", "B", "C", "X"};
static const char *const row_name[4] = {"Андреева Анна", "Борисов Борис", "Васильева Вера", "mX"};

static int64_t row_id(int i)
{
    const int64_t ids[4] = {f.mA, f.mB, f.mC, f.mX};
    return ids[i];
}

/* GET /analytics/managers for a period: exactly the rows A, B, C, X (in id order) and the team row. */
static void expect_managers(const char *from, const char *to, const char *as_of, const struct kpi rows[4],
                            const struct kpi *team)
{
    json_t *j = get_ok(f.acct.admin_key, V1 "/analytics/managers?from=%s&to=%s", from, to);
    expect_period(j, from, to, as_of);
    json_t *ms = json_object_get(j, "managers");
    cr_assert(json_is_array(ms), "managers is not an array: %s", th_dump(j));
    /* H (head) and P (pool user) are not rows; C (inactive) and X (placeholder) are */
    cr_assert_eq(json_array_size(ms), 4, "%s..%s: rows should be A, B, C, X only: %s", from, to, th_dump(j));
    for (int i = 0; i < 4; i++) {
        json_t *row = json_array_get(ms, (size_t)i);
        char ctx[96];
        snprintf(ctx, sizeof ctx, "managers %s..%s row %d (%s)", from, to, i, row_label[i]);
        expect_int(row, "manager_id", row_id(i), ctx, j);
        expect_str(row, "name", row_name[i], ctx, j);
        expect_kpi(row, &rows[i], ctx, j);
    }
    json_t *t = json_object_get(j, "team");
    char ctx[96];
    snprintf(ctx, sizeof ctx, "managers %s..%s team", from, to);
    expect_kpi(t, team, ctx, j);
    cr_expect(json_object_get(t, "manager_id") == NULL, "%s: the team row has no manager_id: %s", ctx,
              th_dump(j));
    json_decref(j);
}

struct sum {
    int64_t created, won, won_revenue, lost;
    double conversion, close_rate;
};

static void expect_sum(json_t *o, const struct sum *s, bool by_manager, const char *ctx, json_t *whole)
{
    expect_int(o, by_manager ? "deals_created" : "created", s->created, ctx, whole);
    expect_int(o, "won", s->won, ctx, whole);
    expect_int(o, "won_revenue", s->won_revenue, ctx, whole);
    expect_int(o, "lost", s->lost, ctx, whole);
    expect_ratio(o, "conversion", s->conversion, ctx, whole);
    expect_ratio(o, "close_rate", s->close_rate, ctx, whole);
}

static void expect_summary(const char *from, const char *to, const char *as_of, const struct sum *account,
                           const struct sum rows[4])
{
    json_t *j = get_ok(f.acct.admin_key, V1 "/analytics/summary?from=%s&to=%s", from, to);
    expect_period(j, from, to, as_of);
    char ctx[96];
    snprintf(ctx, sizeof ctx, "summary %s..%s", from, to);
    expect_sum(j, account, false, ctx, j);
    json_t *bm = json_object_get(j, "by_manager");
    cr_assert(json_is_array(bm), "%s: by_manager is not an array: %s", ctx, th_dump(j));
    cr_assert_eq(json_array_size(bm), 4, "%s: by_manager should be A, B, C, X: %s", ctx, th_dump(j));
    for (int i = 0; i < 4; i++) {
        json_t *row = json_array_get(bm, (size_t)i);
        snprintf(ctx, sizeof ctx, "summary %s..%s by_manager %d (%s)", from, to, i, row_label[i]);
        expect_int(row, "manager_id", row_id(i), ctx, j);
        expect_str(row, "name", row_name[i], ctx, j);
        expect_sum(row, &rows[i], true, ctx, j);
    }
    json_decref(j);
}

struct reason_count {
    int64_t id; /* 0: the unknown (null) reason */
    int64_t count;
};

struct stage_exp {
    int64_t entered, advanced, lost, in_stage;
    double conversion, loss_share;
    int n_reasons;
    struct reason_count reasons[4];
};

struct worst_exp {
    int stage; /* index into the stages checked */
    int64_t lost;
    double loss_share;
};

static const char *const stage_name[3] = {"Взят в работу", "Выслано КП", "Дожим"};

static const char *reason_name(int64_t id)
{
    return id == f.r1 ? "Дорого" : id == f.r2 ? "Нет бюджета" : "?";
}

/* GET /analytics/funnel of a pipeline whose open stages are ids[0..n) named names[0..n); worst[k].stage
 * indexes them. */
static void expect_funnel_of(int64_t pipeline, const int64_t *ids, const char *const *names, int n,
                             const char *from, const char *to, const char *as_of, int64_t created,
                             int64_t won, int64_t lost, double conversion, const struct stage_exp *st,
                             int n_worst, const struct worst_exp *worst)
{
    json_t *j = get_ok(f.acct.admin_key, V1 "/analytics/funnel?pipeline_id=%lld&from=%s&to=%s", LL(pipeline),
                       from, to);
    expect_period(j, from, to, as_of);
    char ctx[128];
    snprintf(ctx, sizeof ctx, "funnel %s..%s", from, to);
    expect_int(j, "pipeline_id", pipeline, ctx, j);
    expect_int(j, "created", created, ctx, j);
    expect_int(j, "won", won, ctx, j);
    expect_int(j, "lost", lost, ctx, j);
    expect_ratio(j, "conversion", conversion, ctx, j);
    json_t *stages = json_object_get(j, "stages");
    cr_assert(json_is_array(stages), "%s: stages: %s", ctx, th_dump(j));
    /* the open stages only (won and lost are terminal), in position order */
    cr_assert_eq(json_array_size(stages), (size_t)n, "%s: %d open stages expected: %s", ctx, n, th_dump(j));
    for (int i = 0; i < n; i++) {
        json_t *s = json_array_get(stages, (size_t)i);
        snprintf(ctx, sizeof ctx, "funnel %s..%s stage %s", from, to, names[i]);
        expect_int(s, "stage_id", ids[i], ctx, j);
        expect_str(s, "name", names[i], ctx, j);
        expect_int(s, "entered", st[i].entered, ctx, j);
        expect_int(s, "advanced", st[i].advanced, ctx, j);
        expect_int(s, "lost", st[i].lost, ctx, j);
        expect_int(s, "in_stage", st[i].in_stage, ctx, j);
        expect_ratio(s, "conversion", st[i].conversion, ctx, j);
        expect_ratio(s, "loss_share", st[i].loss_share, ctx, j);
        json_t *lr = json_object_get(s, "loss_reasons");
        cr_assert(json_is_array(lr), "%s: loss_reasons: %s", ctx, th_dump(j));
        cr_expect_eq(json_array_size(lr), (size_t)st[i].n_reasons, "%s: %d loss reasons expected: %s", ctx,
                     st[i].n_reasons, th_dump(j));
        for (int k = 0; k < st[i].n_reasons && (size_t)k < json_array_size(lr); k++) {
            json_t *x = json_array_get(lr, (size_t)k);
            char c2[160];
            snprintf(c2, sizeof c2, "%s loss_reasons[%d]", ctx, k);
            if (st[i].reasons[k].id == 0) {
                cr_expect(json_is_null(json_object_get(x, "loss_reason_id")),
                          "%s: the unknown reason (null) expected here: %s", c2, th_dump(j));
            } else {
                expect_int(x, "loss_reason_id", st[i].reasons[k].id, c2, j);
                expect_str(x, "name", reason_name(st[i].reasons[k].id), c2, j);
            }
            expect_int(x, "count", st[i].reasons[k].count, c2, j);
        }
    }
    json_t *w = json_object_get(j, "worst_stages");
    snprintf(ctx, sizeof ctx, "funnel %s..%s worst_stages", from, to);
    cr_assert(json_is_array(w), "%s: %s", ctx, th_dump(j));
    cr_expect_eq(json_array_size(w), (size_t)n_worst, "%s: %d expected: %s", ctx, n_worst, th_dump(j));
    for (int k = 0; k < n_worst && (size_t)k < json_array_size(w); k++) {
        json_t *x = json_array_get(w, (size_t)k);
        char c2[160];
        snprintf(c2, sizeof c2, "%s[%d]", ctx, k);
        expect_int(x, "stage_id", ids[worst[k].stage], c2, j);
        expect_str(x, "name", names[worst[k].stage], c2, j);
        expect_int(x, "lost", worst[k].lost, c2, j);
        expect_ratio(x, "loss_share", worst[k].loss_share, c2, j);
    }
    json_decref(j);
}

/* The same for p1 (stages s1, s2, s3). */
static void expect_funnel(const char *from, const char *to, const char *as_of, int64_t created, int64_t won,
                          int64_t lost, double conversion, const struct stage_exp st[3], int n_worst,
                          const struct worst_exp *worst)
{
    expect_funnel_of(f.p1, f.s, stage_name, 3, from, to, as_of, created, won, lost, conversion, st, n_worst,
                     worst);
}

/* ---- the fixture is what the comments say (so that a failure below is about analytics, not ingest) ---- */

static json_t *deal(const char *ext)
{
    return get_ok(f.acct.admin_key, V1 "/deals/ext:%s", ext);
}

Test(analytics, the_fixture_is_as_designed)
{
    build_fixture();
    json_t *d = deal("D1");
    cr_assert_str_eq(json_string_value(json_object_get(d, "status")), "won", "%s", th_dump(d));
    cr_assert_eq(json_integer_value(json_object_get(d, "manager_id")), f.mB, "%s", th_dump(d));
    cr_assert_eq(json_integer_value(json_object_get(d, "price")), 1500, "%s", th_dump(d));
    json_decref(d);
    d = deal("D3");
    cr_assert_str_eq(json_string_value(json_object_get(d, "status")), "won", "%s", th_dump(d));
    cr_assert_eq(json_integer_value(json_object_get(d, "price")), 3500, "%s", th_dump(d));
    int64_t d3 = json_integer_value(json_object_get(d, "id"));
    json_decref(d);
    /* D3's history: created in s1 at 3000, s2 at 12:00 and won at 14:00 both at the late price 3500 */
    json_t *h = get_ok(f.acct.admin_key, V1 "/deals/%lld/history", LL(d3));
    json_t *items = json_object_get(h, "items");
    cr_assert_eq(json_array_size(items), 3, "%s", th_dump(h));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 0), "price")), 3000, "%s",
                 th_dump(h));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 1), "to_stage_id")), f.s[1], "%s",
                 th_dump(h));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 1), "price")), 3500, "%s",
                 th_dump(h));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(items, 2), "status")), "won", "%s",
                     th_dump(h));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 2), "price")), 3500, "%s",
                 th_dump(h));
    json_decref(h);
    d = deal("D11");
    cr_assert_eq(json_integer_value(json_object_get(d, "pipeline_id")), f.p2, "%s", th_dump(d));
    cr_assert_str_eq(json_string_value(json_object_get(d, "status")), "won", "%s", th_dump(d));
    json_decref(d);
    d = deal("E6");
    cr_assert_eq(json_integer_value(json_object_get(d, "manager_id")), f.mB, "%s", th_dump(d));
    json_decref(d);
    d = deal("D12");
    cr_assert_eq(json_integer_value(json_object_get(d, "manager_id")), f.mA, "%s", th_dump(d));
    json_decref(d);
    struct th_resp r = th_get(f.acct.admin_key, V1 "/deals/ext:D7");
    cr_assert_eq(r.status, 404, "D7 is deleted: %s", r.body);
    th_resp_free(&r);
    json_t *m = get_ok(f.acct.admin_key, V1 "/managers/%lld", LL(f.mX));
    cr_assert(json_is_true(json_object_get(m, "needs_setup")), "mX is a placeholder: %s", th_dump(m));
    cr_assert_str_eq(json_string_value(json_object_get(m, "role")), "manager", "%s", th_dump(m));
    json_decref(m);
    m = get_ok(f.acct.admin_key, V1 "/managers/%lld", LL(f.mC));
    cr_assert(json_is_false(json_object_get(m, "active")), "C is inactive: %s", th_dump(m));
    json_decref(m);
    cr_assert_eq(
        th_sql_int("SELECT count(*) FROM managers WHERE account_id = %lld AND pool_user", LL(f.acct.id)), 1);
    /* every deal but D7 is there: 15 deals D*, 6 deals E* (E5 deleted and restored), 5 deals F* */
    r = th_get(f.acct.admin_key, V1 "/deals?limit=500");
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 26, "%s", r.body);
    th_resp_free(&r);
    /* T4's due as now set, T8's responsible now */
    json_t *t = get_ok(f.acct.admin_key, V1 "/tasks/ext:T4");
    cr_assert_str_eq(json_string_value(json_object_get(t, "due_at")), "2026-10-06T12:00:00Z", "%s",
                     th_dump(t));
    cr_assert_str_eq(json_string_value(json_object_get(t, "completed_at")), "2026-10-06T09:00:00Z", "%s",
                     th_dump(t));
    json_decref(t);
    t = get_ok(f.acct.admin_key, V1 "/tasks/ext:T8");
    cr_assert_eq(json_integer_value(json_object_get(t, "manager_id")), f.mC, "%s", th_dump(t));
    json_decref(t);
    t = get_ok(f.acct.admin_key, V1 "/tasks/ext:T5");
    cr_assert_str_eq(json_string_value(json_object_get(t, "state")), "deleted", "%s", th_dump(t));
    json_decref(t);
}

/* ---- GET /analytics/managers ---- */

/* The local day 2026-10-05 = [2026-10-04T19:00:00Z, 2026-10-05T19:00:00Z), as_of 2026-10-05T18:59:59Z.
 *
 * Calls in the day: C1 (A out ans 120), C2 (A in ans 60, 19:10Z = L 00:10 Oct 5), C3 (A out unans 15),
 * C5 (B in unans 20), C7 (H: not a row). C4 (B out ans 300 at 18:50Z = L Oct 4 23:50) is NOT in the day.
 *   A: talk 120 + 60 = 180 (C3 unanswered does not count); outgoing C1 + C3 = 2.
 *   B: talk 0 (C5 unanswered); outgoing 0 (C5 is incoming). C, X: 0, 0.
 * Deals created in the day (creator): D6 A (05:00), D7 A (deleted: out), D9 H (20:00Z Oct 4 = L Oct 5 01:00:
 * not a row), D10 X, D11 C, D13 C.  -> A 1, B 0, C 2, X 1.
 * Moves into won in the day: D1 10:00 (responsible B since 08:30; price 1500 after the 09:00 update),
 *   D3 14:00 (B; price 3500 from the late update dated 11:00), D7 (deleted: out), D8 (P: not a row), D11
 *   16:00 (C; price 5000 at the win, the 6000 comes on 10-07).
 *   -> B won 2, revenue 1500 + 3500 = 5000; C won 1, 5000.
 * Moves into lost in the day: D1 19:30Z Oct 4 = L Oct 5 00:30 (responsible A then), D4 06:00 (C), D5
 *   15:00 (B), D9 (H). D2's loss at 18:30Z Oct 4 = L Oct 4 23:30 is NOT in the day.
 *   -> A lost 1 (D1: it counts as lost AND, for B, as won), B lost 1, C lost 1.
 * Deals open at as_of 18:59:59Z: D6 (A), D10 (X), D12 (B until 10-20), D13 (C; lost only on 10-06).
 *   D6: T1 completed 12:00, T2 completed 10:30, T5 deleted 11:30, but T9 is open at as_of (deleted only on
 *       10-06) and due 13:00 < as_of -> A with overdue 1 (not without).
 *   D10: no task -> X without 1.
 *   D12: T3 open, due 10-03 < as_of -> B with overdue 1 (not without: T6 and T8 are open too).
 *   D13: T4 open at as_of (completed only on 10-06), due as set at as_of 16:00 < as_of -> C with overdue 1.
 * Tasks due in the day (due as last set at or before as_of; responsible at min(due, as_of)):
 *   T1 A due 12:00 completed 12:00:00 exactly -> on time.
 *   T2 A due 09:00 completed 10:30 -> late 5400 s.
 *   T5 deleted at 11:30 <= as_of -> not counted.
 *   T9 A due 13:00, not deleted at as_of, open -> late 18:59:59 - 13:00:00 = 21599 s.
 *   T4 C due 16:00 (moved only on 10-06, after as_of), open at as_of -> late 18:59:59 - 16:00:00 = 10799 s.
 *   T6: due moved on 10-04 (before as_of) from 10-05T10:00 to 10-07 -> not in the day.
 *   T3 (due 10-03), T8 (due 10-10): not in the day.
 *   -> A due 3, on time 1, share 1/3 = 0.3333, overdue 5400 + 21599 = 26999, avg 26999 / 2 = 13499.5 -> 13500
 *      (half up); C due 1, on time 0, share 0, overdue 10799, avg 10799; B, X due 0: share null, overdue 0,
 *      avg null.
 * Team = A + B + C + X: talk 180, outgoing 2, created 4, won 3, revenue 10000, lost 3, conversion 3/4 = 0.75,
 * close_rate 3/6 = 0.5, without 1, overdue 3, missed 4, due 4, on time 1, share 1/4 = 0.25, overdue total
 * 26999 + 10799 = 37798 over 3 late tasks (T2, T9, T4) = 12599.33 -> 12599. */
Test(analytics, managers_one_local_day)
{
    build_fixture();
    const struct kpi rows[4] = {
        /* A: conversion 0/1 = 0; close_rate 0/(0+1) = 0; missed 0 + 1 */
        {180, 2, 1, 0, 0, 1, 0.0, 0.0, 0, 1, 1, 3, 1, 0.3333, 26999, 13500},
        /* B: conversion 2/0 = null; close_rate 2/(2+1) = 0.6667; missed 0 + 1 */
        {0, 0, 0, 2, 5000, 1, NUL, 0.6667, 0, 1, 1, 0, 0, NUL, 0, NULI},
        /* C: conversion 1/2 = 0.5; close_rate 1/(1+1) = 0.5; missed 0 + 1 */
        {0, 0, 2, 1, 5000, 1, 0.5, 0.5, 0, 1, 1, 1, 0, 0.0, 10799, 10799},
        /* X: conversion 0/1 = 0; close_rate 0/0 = null; missed 1 + 0 */
        {0, 0, 1, 0, 0, 0, 0.0, NUL, 1, 0, 1, 0, 0, NUL, 0, NULI},
    };
    const struct kpi team = {180, 2, 4, 3, 10000, 3, 0.75, 0.5, 1, 3, 4, 4, 1, 0.25, 37798, 12599};
    expect_managers("2026-10-05", "2026-10-05", "2026-10-05T18:59:59Z", rows, &team);
}

/* The local month October 2026 = [2026-09-30T19:00:00Z, 2026-10-31T19:00:00Z), as_of 2026-10-31T18:59:59Z.
 *
 * Calls: A C1 120 + C2 60 (C3 unanswered) = 180, outgoing C1 + C3 = 2; B C4 300 (C5 unanswered, in) = 300,
 * outgoing C4 = 1; C C6 45, outgoing 1; X 0, 0.
 * Created in October (creator): D1 A, D2 A, D6 A, D15 A; D3 B, D5 B, D14 B; D4 C, D11 C, D13 C; D10 X; (D8,
 * D16 P; D9 H; D7 deleted; D12 in September).  -> A 4, B 3, C 3, X 1.
 * Won in October: D1 (B at the win, 1500), D3 (B, 3500), D11 (C, 5000: the later 6000 does not count),
 *   D8 (P), D7 (deleted).  -> B 2 / 5000, C 1 / 5000.
 * Lost in October (responsible at the loss): D1 A, D2 A, D15 A; D5 B, D14 B; D4 C, D13 C; (D9 H, D16 P).
 *   -> A 3, B 2, C 2.
 * Deals open at as_of: D6 (A), D10 (X), D12 (A since 10-20). D13 lost 10-06; D14, D15, D16 lost.
 *   D6: no open task (T9 deleted on 10-06) -> A without 1.  D10 -> X without 1.
 *   D12: T3 (B) and T8 (C since 10-12) open and overdue: any task of the deal counts -> A with overdue 1.
 * Tasks due in October:
 *   T1 A on time; T2 A late 5400; T5 and T9 deleted at as_of.
 *   T3 B due 10-03T10:00, open: late 10-31T18:59:59 - 10-03T10:00:00 = 28 d + 8:59:59 = 2419200 + 32399
 *      = 2451599 s.
 *   T6 B due 10-07T10:00 (as moved), completed 09:00 -> on time.
 *   T8 due 10-10T10:00, responsible at min(due, as_of) = at its due = B (it went to C only on 10-12), open:
 *      late 21 d + 8:59:59 = 1814400 + 32399 = 1846799 s.
 *   T4 C: due as last set at or before as_of = 10-06T12:00, completed 10-06T09:00 -> on time (not late).
 *   -> A due 2, on time 1, share 0.5, overdue 5400, avg 5400.
 *      B due 3, on time 1, share 1/3 = 0.3333, overdue 2451599 + 1846799 = 4298398, avg /2 = 2149199.
 *      C due 1, on time 1, share 1, overdue 0, avg null.  X: 0, 0, null, 0, null.
 * Team: talk 525, outgoing 4, created 11, won 3, revenue 10000, lost 7, conversion 3/11 = 0.2727, close_rate
 * 3/10 = 0.3, without 2, overdue 1, missed 3, due 6, on time 3, share 0.5, overdue total 4303798 over 3 late
 * tasks (T2, T3, T8) = 1434599.33 -> 1434599. */
Test(analytics, managers_one_local_month)
{
    build_fixture();
    const struct kpi rows[4] = {
        /* A: conversion 0/4 = 0; close_rate 0/(0+3) = 0; missed 1 + 1 */
        {180, 2, 4, 0, 0, 3, 0.0, 0.0, 1, 1, 2, 2, 1, 0.5, 5400, 5400},
        /* B: conversion 2/3 = 0.6667; close_rate 2/(2+2) = 0.5; no open deal at as_of (D12 went to A) */
        {300, 1, 3, 2, 5000, 2, 0.6667, 0.5, 0, 0, 0, 3, 1, 0.3333, 4298398, 2149199},
        /* C (inactive since 10-25, still a row): conversion 1/3; close_rate 1/(1+2) */
        {45, 1, 3, 1, 5000, 2, 0.3333, 0.3333, 0, 0, 0, 1, 1, 1.0, 0, NULI},
        /* X: conversion 0/1 = 0; close_rate null */
        {0, 0, 1, 0, 0, 0, 0.0, NUL, 1, 0, 1, 0, 0, NUL, 0, NULI},
    };
    const struct kpi team = {525, 4, 11, 3, 10000, 7, 0.2727, 0.3, 2, 1, 3, 6, 3, 0.5, 4303798, 1434599};
    expect_managers("2026-10-01", "2026-10-31", "2026-10-31T18:59:59Z", rows, &team);
}

/* August 2026: before every deal, task and call (D12, the oldest deal, is from 09-20). Every row is there
 * (A, B, C, X), all counts 0, ratios null, overdue_avg_s null. */
Test(analytics, managers_period_without_activity)
{
    build_fixture();
    const struct kpi zero = {0, 0, 0, 0, 0, 0, NUL, NUL, 0, 0, 0, 0, 0, NUL, 0, NULI};
    const struct kpi rows[4] = {zero, zero, zero, zero};
    expect_managers("2026-08-01", "2026-08-31", "2026-08-31T18:59:59Z", rows, &zero);
}

/* The local week 2026-09-07 .. 2026-09-13 = [2026-09-06T19:00:00Z, 2026-09-13T19:00:00Z), as_of
 * 2026-09-13T18:59:59Z. Only the E deals, U tasks and W calls are in it (D12, the first D deal, is created
 * on 09-20; T3, the first D task, on 10-01).
 * Calls: A W1 30 + W4 7 (19:00:00Z = L 00:00:00, inside) = 37; W3 (18:59:59Z Sep 6 = L Sep 6) is outside;
 *   outgoing A: W1 + W5 (18:59:59Z Sep 13, the last second, unanswered) = 2. B: W6 at 19:00:00Z Sep 13 is
 *   outside: 0, 0. W2 is P's (pool user, not a row).
 * Created (creator): E1 A, E2 A, E5 A (deleted and restored: it counts), E6 A (the late responsible change
 *   is dated after its creation), E3 B, E4 C -> A 4, B 1, C 1.
 * Won: E1 (two moves into won in the week: one deal, attributed to the responsible at the last one = B,
 *   at its price then = 250), E3 (B, created in won: 300), E5 (A, 500), E6 (B: responsible at the win
 *   after the late change, 600) -> A 1 / 500, B 3 / 250 + 300 + 600 = 1150.
 * Lost: E2 (A), E4 (C) -> A 1, C 1.
 *   A: conversion 1/4 = 0.25, close_rate 1/2 = 0.5. B: conversion 3/1 = 3 (a ratio may exceed 1),
 *   close_rate 3/3 = 1. C: conversion 0/1 = 0, close_rate 0/1 = 0. X: null, null.
 * Open deals at as_of: none (E1, E3, E5, E6 won; E2, E4 lost; the D deals do not exist yet) -> all 0.
 * Tasks due in the week:
 *   U3 (A, completed before its due): on time.
 *   U5 (A, due as moved on 09-08 = 09-11T05:00, completed 06:00): late 3600.
 *   U2 (due 09-09T09:00, responsible at its due = B since 08:00, completed 09:30): late 1800.
 *   U1 did not exist at as_of (created 11-02): not counted.
 *   -> A: due 2, on time 1, share 0.5, overdue 3600, avg 3600. B: due 1, on time 0, share 0, overdue
 *      1800, avg 1800. C: nothing (U2 left C before its due).
 * Team: talk 37, outgoing 2, created 6, won 4, revenue 1650, lost 2, conversion 4/6 = 0.6667, close_rate
 *   4/6 = 0.6667, missed 0, due 3, on time 1, share 0.3333, overdue 5400 over 2 late tasks = 2700.
 * Summary: every week deal has a report row's manager, so the account figures equal the team's.
 * Funnel p1: entries E1 s1 (created), s2 (reopened 09-09); E2 s1, s2 (09-08), s3 (09-09), s2 again
 *   (09-10); E3 none (created in won); E4 s2 (created), s1 (09-09); E5 s1; E6 s1 (a responsible change is
 *   no entry).
 *   s1: entered E1, E2, E4, E5, E6 = 5; advanced E1 (won), E2 (->s2), E5 (won), E6 (won) = 4; lost E4
 *       (lost from s1, null reason) = 1; in_stage 0. conversion 0.8, loss_share 0.2, reasons [null 1].
 *   s2: entered E1, E2, E4 = 3; advanced E1 (won), E2 (classified by its FIRST entry on 09-08: it then
 *       moved to s3, so advanced, although it came back to s2 and was lost from there) = 2; lost 0;
 *       in_stage E4 (moved back and lost elsewhere) = 1. conversion 0.6667, loss_share 0, reasons [].
 *   s3: entered E2 = 1; not advanced; lost at as_of but its last open stage before the loss was s2, not
 *       s3: in_stage 1. conversion 0, loss_share 0.
 *   E2's loss is thus in no stage's lost. Totals: created 6, won E1, E3, E5, E6 = 4, lost E2, E4 = 2,
 *   conversion 4/6 = 0.6667. worst_stages: s1 only. */
Test(analytics, one_local_week_wins_twice_first_entry_created_won_restored)
{
    build_fixture();
    const struct kpi rows[4] = {
        {37, 2, 4, 1, 500, 1, 0.25, 0.5, 0, 0, 0, 2, 1, 0.5, 3600, 3600},
        {0, 0, 1, 3, 1150, 0, 3.0, 1.0, 0, 0, 0, 1, 0, 0.0, 1800, 1800},
        {0, 0, 1, 0, 0, 1, 0.0, 0.0, 0, 0, 0, 0, 0, NUL, 0, NULI},
        {0, 0, 0, 0, 0, 0, NUL, NUL, 0, 0, 0, 0, 0, NUL, 0, NULI},
    };
    const struct kpi team = {37, 2, 6, 4, 1650, 2, 0.6667, 0.6667, 0, 0, 0, 3, 1, 0.3333, 5400, 2700};
    expect_managers("2026-09-07", "2026-09-13", "2026-09-13T18:59:59Z", rows, &team);

    const struct sum account = {6, 4, 1650, 2, 0.6667, 0.6667};
    const struct sum by_manager[4] = {
        {4, 1, 500, 1, 0.25, 0.5},
        {1, 3, 1150, 0, 3.0, 1.0},
        {1, 0, 0, 1, 0.0, 0.0},
        {0, 0, 0, 0, NUL, NUL},
    };
    expect_summary("2026-09-07", "2026-09-13", "2026-09-13T18:59:59Z", &account, by_manager);

    const struct stage_exp st[3] = {
        {5, 4, 1, 0, 0.8, 0.2, 1, {{0, 1}}},
        {3, 2, 0, 1, 0.6667, 0.0, 0, {{0, 0}}},
        {1, 0, 0, 1, 0.0, 0.0, 0, {{0, 0}}},
    };
    const struct worst_exp worst[] = {{0, 1, 0.2}};
    expect_funnel("2026-09-07", "2026-09-13", "2026-09-13T18:59:59Z", 6, 4, 2, 0.6667, st, 1, worst);
}

static const char *const q_name[4] = {"Заявка", "Замер", "Договор", "Монтаж"};

/* p2 in the local week 2026-09-21 .. 2026-09-27 ([09-20T19:00Z, 09-27T19:00Z)): each F deal entered only the
 * stage it was created in and was lost from there.
 *   q1: F1: entered 1, lost 1 (r1): share 1. q2: F2, F3: entered 2, lost 2 (r2 1, null 1): share 1.
 *   q3: F4: entered 1, lost 1 (r2). q4: F5: entered 1, lost 1 (r1). No stage advanced: conversions 0.
 *   Totals: created 5, won 0, lost 5, conversion 0.
 *   worst_stages: q2 (lost 2) first; q1, q3 and q4 tie on lost 1 and exact share 1/1: by position q1, q3; q4
 *   is the fourth stage with a loss and is left out (at most 3). */
Test(analytics, funnel_worst_stages_are_at_most_three)
{
    build_fixture();
    const struct stage_exp st[4] = {
        {1, 0, 1, 0, 0.0, 1.0, 1, {{f.r1, 1}}},
        {2, 0, 2, 0, 0.0, 1.0, 2, {{f.r2, 1}, {0, 1}}},
        {1, 0, 1, 0, 0.0, 1.0, 1, {{f.r2, 1}}},
        {1, 0, 1, 0, 0.0, 1.0, 1, {{f.r1, 1}}},
    };
    const struct worst_exp worst[] = {{1, 2, 1.0}, {0, 1, 1.0}, {2, 1, 1.0}};
    expect_funnel_of(f.p2, f.q, q_name, 4, "2026-09-21", "2026-09-27", "2026-09-27T18:59:59Z", 5, 0, 5, 0.0,
                     st, 3, worst);
}

/* A local midnight that does not exist maps to the first valid instant after it. Asia/Beirut moves from
 * UTC+2 to UTC+3 at 00:00 on the last Sunday of March: 2026-03-29 00:00 local does not exist, so the day
 * 2026-03-29 starts at 00:00 +02 = 01:00 +03 = 2026-03-28T22:00:00Z and ends at 2026-03-30 00:00 +03 =
 * 2026-03-29T21:00:00Z (23 hours; as_of 20:59:59Z). The day 2026-03-28 is [03-27T22:00:00Z, 03-28T22:00:00Z).
 * Calls of one manager (all outgoing and answered):
 *   1 s at 03-28T21:59:59Z (Mar 28 23:59:59 +02), 10 s at 22:00:00Z (Mar 29 01:00:00 +03),
 *   100 s at 03-29T20:59:59Z (Mar 29 23:59:59 +03), 1000 s at 21:00:00Z (Mar 30).
 * Deals created: one at 03-28T21:30Z (Mar 28), one at 03-28T22:30Z (Mar 29).
 *   -> Mar 28: talk 1, outgoing 1, created 1. Mar 29: talk 10 + 100 = 110, outgoing 2, created 1. */
Test(analytics, a_local_midnight_that_does_not_exist)
{
    memset(&f, 0, sizeof f);
    th_account_new(&f.acct);
    struct th_resp r = th_patch(f.acct.admin_key, V1 "/account", "{\"timezone\":\"Asia/Beirut\"}");
    cr_assert_eq(r.status, 200, "account: %s", r.body);
    th_resp_free(&r);
    ev("manager.upserted", "2026-03-01T00:00:00Z", "\"manager\":\"m1\",\"name\":\"Ли\",\"role\":\"manager\"");
    ev("call.logged", "2026-03-28T21:59:59Z",
       "\"call\":\"k1\",\"manager\":\"m1\",\"direction\":\"out\",\"duration_s\":1,\"answered\":true");
    ev("call.logged", "2026-03-28T22:00:00Z",
       "\"call\":\"k2\",\"manager\":\"m1\",\"direction\":\"out\",\"duration_s\":10,\"answered\":true");
    ev("call.logged", "2026-03-29T20:59:59Z",
       "\"call\":\"k3\",\"manager\":\"m1\",\"direction\":\"out\",\"duration_s\":100,\"answered\":true");
    ev("call.logged", "2026-03-29T21:00:00Z",
       "\"call\":\"k4\",\"manager\":\"m1\",\"direction\":\"out\",\"duration_s\":1000,\"answered\":true");
    ev("deal.created", "2026-03-28T21:30:00Z",
       "\"deal\":\"b1\",\"name\":\"b1\",\"price\":1,\"pipeline\":\"bp\",\"manager\":\"m1\"");
    ev("deal.created", "2026-03-28T22:30:00Z",
       "\"deal\":\"b2\",\"name\":\"b2\",\"price\":1,\"pipeline\":\"bp\",\"manager\":\"m1\"");
    send_batch();
    wait_applied();
    static const struct {
        const char *day, *as_of;
        int64_t talk, outgoing, created;
    } want[] = {{"2026-03-28", "2026-03-28T21:59:59Z", 1, 1, 1},
                {"2026-03-29", "2026-03-29T20:59:59Z", 110, 2, 1}};
    for (int i = 0; i < 2; i++) {
        json_t *j =
            get_ok(f.acct.admin_key, V1 "/analytics/managers?from=%s&to=%s", want[i].day, want[i].day);
        expect_period(j, want[i].day, want[i].day, want[i].as_of);
        json_t *ms = json_object_get(j, "managers");
        cr_assert_eq(json_array_size(ms), 1, "%s", th_dump(j));
        char ctx[64];
        snprintf(ctx, sizeof ctx, "managers %s", want[i].day);
        expect_int(json_array_get(ms, 0), "talk_time_s", want[i].talk, ctx, j);
        expect_int(json_array_get(ms, 0), "outgoing_calls", want[i].outgoing, ctx, j);
        expect_int(json_array_get(ms, 0), "deals_created", want[i].created, ctx, j);
        expect_int(json_object_get(j, "team"), "talk_time_s", want[i].talk, ctx, j);
        json_decref(j);
        j = get_ok(f.acct.admin_key, V1 "/analytics/summary?from=%s&to=%s", want[i].day, want[i].day);
        expect_period(j, want[i].day, want[i].day, want[i].as_of);
        expect_int(j, "created", want[i].created, ctx, j);
        json_decref(j);
    }
}

/* ---- GET /analytics/summary ---- */

/* Account-wide: every deal, whoever is responsible (pool P, head H, placeholder X). */
Test(analytics, summary_day_month_and_the_day_before)
{
    build_fixture();
    /* Oct 5 (local): created D6, D9 (H), D10, D11, D13 = 5 (D7 deleted); won D1 1500, D3 3500, D8 700 (P),
     * D11 5000 = 4 / 10700; lost D1, D4, D5, D9 = 4; conversion 4/5 = 0.8; close_rate 4/8 = 0.5. */
    const struct sum day = {5, 4, 10700, 4, 0.8, 0.5};
    const struct sum day_rows[4] = {
        {1, 0, 0, 1, 0.0, 0.0},       /* A: created D6; lost D1 */
        {0, 2, 5000, 1, NUL, 0.6667}, /* B: won D1 + D3; lost D5 */
        {2, 1, 5000, 1, 0.5, 0.5},    /* C: created D11, D13; won D11; lost D4 */
        {1, 0, 0, 0, 0.0, NUL},       /* X: created D10 */
    };
    expect_summary("2026-10-05", "2026-10-05", "2026-10-05T18:59:59Z", &day, day_rows);

    /* October: created D1, D2, D3, D4, D5, D6, D8, D9, D10, D11, D13, D14, D15, D16 = 14; won D1, D3, D8, D11
     * = 4 / 10700; lost D1, D2, D4, D5, D9, D13, D14, D15, D16 = 9; conversion 4/14 = 0.2857; close_rate 4/13
     * = 0.3077. */
    const struct sum month = {14, 4, 10700, 9, 0.2857, 0.3077};
    const struct sum month_rows[4] = {
        {4, 0, 0, 3, 0.0, 0.0},
        {3, 2, 5000, 2, 0.6667, 0.5},
        {3, 1, 5000, 2, 0.3333, 0.3333},
        {1, 0, 0, 0, 0.0, NUL},
    };
    expect_summary("2026-10-01", "2026-10-31", "2026-10-31T18:59:59Z", &month, month_rows);

    /* Oct 4 (local) = [2026-10-03T19:00Z, 2026-10-04T19:00Z): nothing created (D9 at 20:00Z is Oct 5),
     * nothing won; lost: D2 at 18:30Z (L 23:30, A); D1's loss at 19:30Z belongs to Oct 5. conversion 0/0 =
     * null; close_rate 0/(0+1) = 0. */
    const struct sum oct4 = {0, 0, 0, 1, NUL, 0.0};
    const struct sum oct4_rows[4] = {
        {0, 0, 0, 1, NUL, 0.0},
        {0, 0, 0, 0, NUL, NUL},
        {0, 0, 0, 0, NUL, NUL},
        {0, 0, 0, 0, NUL, NUL},
    };
    expect_summary("2026-10-04", "2026-10-04", "2026-10-04T18:59:59Z", &oct4, oct4_rows);

    const struct sum zero = {0, 0, 0, 0, NUL, NUL};
    const struct sum zero_rows[4] = {zero, zero, zero, zero};
    expect_summary("2026-08-01", "2026-08-31", "2026-08-31T18:59:59Z", &zero, zero_rows);
}

/* ---- GET /analytics/funnel ---- */

/* Oct 5 (local), pipeline p1 (D11 is in p2: not here; D7 deleted: not here).
 * Entries into open stages in the day:
 *   D1 reopened into s2 at 08:00 (its loss at 19:30Z Oct 4 is not an entry); D3 into s2 at 12:00; D5 into s2
 *   at 01:00Z (L 06:00); D6 created in s2 at 05:00, then into s1 at 07:00; D8 into s3 at 11:00; D9 created in
 *   s1 at 20:00Z Oct 4 (L Oct 5 01:00); D10 created in s1; D13 created in s1.
 * s1: entered D6, D9, D10, D13 = 4. advanced: none. lost: D9 (lost at as_of, s1 its last open stage, r2) = 1.
 *     in_stage: D6 (still in s1), D10, D13 (open at as_of: its loss is on 10-06) = 3.
 *     conversion 0/4 = 0; loss_share 1/4 = 0.25; reasons [r2 1].
 * s2: entered D1, D3, D5, D6 = 4. advanced: D1 (won 10:00), D3 (won 14:00) = 2. lost: D5 (lost 15:00 from s2,
 *     r1) = 1. in_stage: D6 (moved back to s1) = 1. conversion 0.5; loss_share 0.25; reasons [r1 1].
 * s3: entered D8 = 1; advanced (won) 1. conversion 1; loss_share 0.
 * Totals: created in the day in p1: D6, D9, D10, D13 = 4; won at as_of: none; lost at as_of: D9 = 1;
 *     conversion 0/4 = 0.
 * worst_stages: s1 (lost 1, exactly 1/4) and s2 (lost 1, exactly 1/4) tie: by position, s1 then s2. */
Test(analytics, funnel_one_local_day)
{
    build_fixture();
    const struct stage_exp st[3] = {
        {4, 0, 1, 3, 0.0, 0.25, 1, {{f.r2, 1}}},
        {4, 2, 1, 1, 0.5, 0.25, 1, {{f.r1, 1}}},
        {1, 1, 0, 0, 1.0, 0.0, 0, {{0, 0}}},
    };
    const struct worst_exp worst[] = {{0, 1, 0.25}, {1, 1, 0.25}};
    expect_funnel("2026-10-05", "2026-10-05", "2026-10-05T18:59:59Z", 4, 0, 1, 0.0, st, 2, worst);
}

/* October (local), pipeline p1.
 * s1: entered (first entry in October): D1, D2, D3, D4, D5, D8, D9, D10, D13, D14, D16 (created there) and D6
 *     (moved back there on 10-05) = 12. D15 was created in s3, D12 was never in s1.
 *     advanced: D1 (->s2), D2 (->s3, skipping s2), D3 (->s2), D5 (->s2), D8 (->s3), D14 (->s2) = 6.
 *     lost (lost at as_of with s1 the last open stage): D4 (null), D9 (r2), D13 (r2), D16 (r1) = 4.
 *     in_stage: D6, D10 = 2.  conversion 6/12 = 0.5; loss_share 4/12 = 0.3333.
 *     reasons: r2 2, then r1 1 (count first, though r1's id is lower), then the null reason last.
 * s2: entered D1 (10-03; its reopening on 10-05 is a later entry), D3, D5, D6 (created there), D14 = 5 (D12
 *     sits there since September; its responsible change on 10-20 is no entry).
 *     advanced: D1 (lost from s2, reopened, then won: "or was won"), D3 (won) = 2.
 *     lost: D5 (r1), D14 (r2) = 2. in_stage: D6 (moved back) = 1.  conversion 0.4; loss_share 0.4.
 *     reasons: r1 1, r2 1 (equal counts: by id).
 * s3: entered D2, D8, D15 (created there) = 3. advanced: D8 (won) = 1. lost: D2 (r2), D15 (r1) = 2.
 *     in_stage 0. conversion 1/3 = 0.3333; loss_share 2/3 = 0.6667. reasons: r1 1, r2 1.
 * Totals: created in October in p1: D1, D2, D3, D4, D5, D6, D8, D9, D10, D13, D14, D15, D16 = 13; won at
 * as_of: D1, D3, D8 = 3; lost at as_of: D2, D4, D5, D9, D13, D14, D15, D16 = 8; conversion 3/13 = 0.2308.
 * worst_stages: s1 (lost 4); then s2 and s3 both lost 2: s3 (2/3) before s2 (2/5) by loss share, though s2
 *     comes first in position. */
Test(analytics, funnel_one_local_month)
{
    build_fixture();
    const struct stage_exp st[3] = {
        {12, 6, 4, 2, 0.5, 0.3333, 3, {{f.r2, 2}, {f.r1, 1}, {0, 1}}},
        {5, 2, 2, 1, 0.4, 0.4, 2, {{f.r1, 1}, {f.r2, 1}}},
        {3, 1, 2, 0, 0.3333, 0.6667, 2, {{f.r1, 1}, {f.r2, 1}}},
    };
    const struct worst_exp worst[] = {{0, 4, 0.3333}, {2, 2, 0.6667}, {1, 2, 0.4}};
    expect_funnel("2026-10-01", "2026-10-31", "2026-10-31T18:59:59Z", 13, 3, 8, 0.2308, st, 3, worst);
}

/* August: no entries, no creations: every count 0, every ratio null, no reasons, no worst stages. */
Test(analytics, funnel_period_without_activity)
{
    build_fixture();
    const struct stage_exp z = {0, 0, 0, 0, NUL, NUL, 0, {{0, 0}}};
    const struct stage_exp st[3] = {z, z, z};
    expect_funnel("2026-08-01", "2026-08-31", "2026-08-31T18:59:59Z", 0, 0, 0, NUL, st, 0, NULL);
}

/* ---- as_of of a period that is not over ---- */

Test(analytics, as_of_is_now_when_the_period_ends_in_the_future)
{
    build_fixture();
    char from[16], to[16];
    th_local_date(from, (int64_t)time(NULL), 0, -2);
    th_local_date(to, (int64_t)time(NULL), 0, 2);
    const char *routes[] = {"managers", "summary", "funnel"};
    for (int i = 0; i < 3; i++) {
        int64_t before = (int64_t)time(NULL);
        json_t *j = i == 2 ? get_ok(f.readonly_key, V1 "/analytics/funnel?pipeline_id=%lld&from=%s&to=%s",
                                    LL(f.p1), from, to)
                           : get_ok(f.readonly_key, V1 "/analytics/%s?from=%s&to=%s", routes[i], from, to);
        int64_t after = (int64_t)time(NULL);
        int64_t as_of = th_parse_time(json_string_value(json_object_get(j, "as_of")));
        cr_expect(as_of >= before - 1 && as_of <= after + 1, "%s: as_of should be now: %s", routes[i],
                  th_dump(j));
        json_decref(j);
    }
}

/* ---- validation ---- */

static bool names_field(const struct th_resp *r, const char *field)
{
    json_t *errors = json_object_get(r->json, "errors");
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e)
    {
        const char *fld = json_string_value(json_object_get(e, "field"));
        if (fld != NULL && strcmp(fld, field) == 0) return true;
    }
    return false;
}

/* GET path must be 422 validation_failed naming field (field2 as an alternative, may be NULL). */
static void expect_422(const char *path, const char *field, const char *field2)
{
    struct th_resp r = th_get(f.acct.admin_key, "%s", path);
    cr_expect_eq(r.status, 422, "GET %s: %ld %s", path, r.status, r.body);
    if (r.status == 422) {
        cr_expect_str_eq(th_code(&r), "validation_failed", "GET %s: %s", path, r.body);
        cr_expect(names_field(&r, field) || (field2 && names_field(&r, field2)),
                  "GET %s should name %s%s%s: %s", path, field, field2 ? " or " : "", field2 ? field2 : "",
                  r.body);
    }
    th_resp_free(&r);
}

Test(analytics, periods_are_validated)
{
    build_fixture();
    char base[3][96];
    snprintf(base[0], sizeof base[0], V1 "/analytics/managers?");
    snprintf(base[1], sizeof base[1], V1 "/analytics/summary?");
    snprintf(base[2], sizeof base[2], V1 "/analytics/funnel?pipeline_id=%lld&", LL(f.p1));
    for (int i = 0; i < 3; i++) {
        char p[512];
        /* both missing, one missing */
        snprintf(p, sizeof p, "%s", base[i]);
        expect_422(p, "from", "to");
        snprintf(p, sizeof p, "%sto=2026-10-05", base[i]);
        expect_422(p, "from", NULL);
        snprintf(p, sizeof p, "%sfrom=2026-10-05", base[i]);
        expect_422(p, "to", NULL);
        snprintf(p, sizeof p, "%sfrom=&to=2026-10-05", base[i]);
        expect_422(p, "from", NULL);
        /* to < from */
        snprintf(p, sizeof p, "%sfrom=2026-10-05&to=2026-10-04", base[i]);
        expect_422(p, "from", "to");
        /* 401 days: 2025-01-01 .. 2026-02-05 (365 + 36 days) */
        snprintf(p, sizeof p, "%sfrom=2025-01-01&to=2026-02-05", base[i]);
        expect_422(p, "from", "to");
        /* bad dates */
        const char *bad[] = {"2026-02-30",           "2026-13-01", "2026-10-5",  "20261005",
                             "2026-10-05T00:00:00Z", "yesterday",  "2026-00-10", "2025-02-29"};
        for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
            snprintf(p, sizeof p, "%sfrom=%s&to=2026-10-05", base[i], bad[k]);
            expect_422(p, "from", NULL);
            snprintf(p, sizeof p, "%sfrom=2024-10-05&to=%s", base[i], bad[k]);
            expect_422(p, "to", NULL);
        }
        /* exactly 400 days: 2025-01-01 .. 2026-02-04; and one day (from = to) */
        snprintf(p, sizeof p, "%sfrom=2025-01-01&to=2026-02-04", base[i]);
        struct th_resp r = th_get(f.acct.admin_key, "%s", p);
        cr_expect_eq(r.status, 200, "400 days is allowed: GET %s: %s", p, r.body);
        th_resp_free(&r);
        /* a leap day is a date */
        snprintf(p, sizeof p, "%sfrom=2024-02-29&to=2024-02-29", base[i]);
        r = th_get(f.acct.admin_key, "%s", p);
        cr_expect_eq(r.status, 200, "GET %s: %s", p, r.body);
        th_resp_free(&r);
    }
}

Test(analytics, funnel_needs_a_pipeline_of_the_account)
{
    build_fixture();
    struct th_account other;
    th_account_new(&other);
    struct th_resp r = th_post(other.admin_key, V1 "/pipelines",
                               "{\"name\":\"Чужая\",\"stages\":[{\"name\":\"a\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t foreign = th_int(&r, "id");
    th_resp_free(&r);
    char p[256];
    expect_422(V1 "/analytics/funnel?from=2026-10-01&to=2026-10-31", "pipeline_id", NULL);
    snprintf(p, sizeof p, V1 "/analytics/funnel?pipeline_id=%lld&from=2026-10-01&to=2026-10-31", LL(foreign));
    expect_422(p, "pipeline_id", NULL);
    expect_422(V1 "/analytics/funnel?pipeline_id=999999999&from=2026-10-01&to=2026-10-31", "pipeline_id",
               NULL);
    expect_422(V1 "/analytics/funnel?pipeline_id=abc&from=2026-10-01&to=2026-10-31", "pipeline_id", NULL);
    expect_422(V1 "/analytics/funnel?pipeline_id=&from=2026-10-01&to=2026-10-31", "pipeline_id", NULL);
    /* the other account sees its own pipeline, empty */
    r = th_get(other.admin_key, V1 "/analytics/funnel?pipeline_id=%lld&from=2026-10-01&to=2026-10-31",
               LL(foreign));
    cr_expect_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    /* and p2 of this account is a valid pipeline: on Oct 5, D11 was created in q1 and won there (entered 1,
     * advanced 1); q2..q4 saw nothing (ratios null); created 1, won 1, lost 0, conversion 1 */
    const struct stage_exp z = {0, 0, 0, 0, NUL, NUL, 0, {{0, 0}}};
    const struct stage_exp st[4] = {{1, 1, 0, 0, 1.0, 0.0, 0, {{0, 0}}}, z, z, z};
    expect_funnel_of(f.p2, f.q, q_name, 4, "2026-10-05", "2026-10-05", "2026-10-05T18:59:59Z", 1, 1, 0, 1.0,
                     st, 0, NULL);
}

/* ---- roles ---- */

Test(analytics, roles_manager_403_readonly_and_head_200)
{
    build_fixture();
    char paths[3][160];
    snprintf(paths[0], sizeof paths[0], V1 "/analytics/managers?from=2026-10-05&to=2026-10-05");
    snprintf(paths[1], sizeof paths[1], V1 "/analytics/summary?from=2026-10-05&to=2026-10-05");
    snprintf(paths[2], sizeof paths[2], V1 "/analytics/funnel?pipeline_id=%lld&from=2026-10-05&to=2026-10-05",
             LL(f.p1));
    for (int i = 0; i < 3; i++) {
        struct th_resp r = th_get(f.manager_key, "%s", paths[i]);
        cr_expect_eq(r.status, 403, "manager key, GET %s: %ld %s", paths[i], r.status, r.body);
        cr_expect_str_eq(th_code(&r), "forbidden", "%s", r.body);
        th_resp_free(&r);
        r = th_request("GET", paths[i], NULL, NULL, NULL, NULL);
        cr_expect_eq(r.status, 401, "no key, GET %s: %ld %s", paths[i], r.status, r.body);
        th_resp_free(&r);
        r = th_get(f.readonly_key, "%s", paths[i]);
        cr_expect_eq(r.status, 200, "readonly key, GET %s: %ld %s", paths[i], r.status, r.body);
        th_resp_free(&r);
        r = th_get(f.head_key, "%s", paths[i]);
        cr_expect_eq(r.status, 200, "head key, GET %s: %ld %s", paths[i], r.status, r.body);
        th_resp_free(&r);
    }
    /* a manager key is refused even with a bad period (roles are checked first) */
    struct th_resp r = th_get(f.manager_key, V1 "/analytics/managers");
    cr_expect_eq(r.status, 403, "%s", r.body);
    th_resp_free(&r);
    /* the readonly key sees the same figures as the admin key */
    json_t *a = get_ok(f.acct.admin_key, "%s", paths[0]);
    json_t *b = get_ok(f.readonly_key, "%s", paths[0]);
    cr_expect(json_equal(a, b), "readonly: %s", th_dump(b));
    json_decref(a);
    json_decref(b);
}

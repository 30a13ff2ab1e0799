/* The analytics rollup (migrations/0013_analytics_rollup.sql) against the reference: salesops_kpis and
 * salesops_summary read the rollup, salesops_kpis_raw and salesops_summary_raw compute the same figures from the
 * raw histories (the functions the hand-computed fixture of test_analytics.c was first checked with). A seeded
 * random account is built through POST /events, shuffled and sent in batches so that most events arrive out of
 * order: deals created, moved back and forth, won, lost and reopened, reassigned, repriced, deleted and
 * restored; tasks created, given to others, their due times moved, completed (early, exactly at the due time,
 * late), deleted, and some turned into rejection-control tasks; calls with and without a deal, several at one second. Then every
 * period of 1, 7 and 31 local days over six weeks is compared, as of its last second and as of instants within
 * and around it (the "now" of a running period), in a zone with a half-hour offset and then, after the
 * account moves to a zone with a DST change in the range, again; then after more late events, and after the
 * scheduler's compaction; and nine consecutive weeks read at once, as the checklist reads them. One differing
 * figure fails the test and names the period. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"

static struct th_account acct;

static void setup(void)
{
    th_server_start(TEST_SUITE);
    th_account_new(&acct);
}

/* ---- a deterministic generator ---- */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

#define MAX_EVENTS 4000
static char *events[MAX_EVENTS];
static int nevents;
static int next_id;

static void add_event(const char *type, int64_t at, const char *data_fmt, ...) __attribute__((format(printf, 3, 4)));
static void add_event(const char *type, int64_t at, const char *data_fmt, ...)
{
    char data[512], when[32], ev[768];
    TH_VFORMAT(data, data_fmt);
    th_format_time(at, when);
    snprintf(ev, sizeof ev, "{\"id\":\"r%d\",\"type\":\"%s\",\"at\":\"%s\",\"data\":%s}", next_id++, type, when,
             data);
    cr_assert_lt(nevents, MAX_EVENTS);
    events[nevents++] = strdup(ev);
}

/* Half the instants fall on a half-hour grid or one second before it: the local midnights of both zones are on
 * it, and so are the instants the comparison takes as "now", so that changes exactly at as_of are common. */
static int64_t snap(int64_t t)
{
    return pick(2) ? t : t - t % 1800 - pick(2);
}

/* a step forward: usually hours, sometimes the same second, sometimes days */
static int64_t step(int64_t t)
{
    switch (pick(6)) {
    case 0: return t;
    case 1: return t + 1 + pick(600);
    case 2: return snap(t + 86400 * (1 + pick(4)) + pick(3600));
    default: return snap(t + 1800 + pick(8 * 3600));
    }
}

static void generate(int deals, int64_t from, int first_deal)
{
    static const char *stages[] = {"s1", "s2", "s3", "won", "lost"};
    static const char *stages2[] = {"q1", "q2", "won", "lost"};
    static const char *types[] = {"call", "meeting", "follow_up", "other"};
    /* most deals are created open; some are created won or lost */
    static const char *created_in[] = {"s1", "s2", "s1", "s2", "s1", "s2", "s1", "s2", "won", "lost"};
    int task_no = first_deal * 10, call_no = first_deal * 10;
    for (int d = first_deal; d < first_deal + deals; d++) {
        int64_t t = snap(from + pick(40 * 86400));
        add_event("deal.created", t, "{\"deal\":\"d%d\",\"name\":\"D%d\",\"price\":%d,\"pipeline\":\"p1\","
                  "\"stage\":\"%s\",\"manager\":\"m%d\"}", d, d, 100 * (1 + pick(50)), created_in[pick(10)], 1 + pick(4));
        int ops = 2 + pick(12);
        bool deleted = false;
        for (int k = 0; k < ops; k++) {
            t = step(t);
            int op = pick(20);
            if (deleted) op = 19;
            if (op < 5) {
                /* mostly within p1, sometimes into the other pipeline (its q1, q2, won or lost) */
                bool other = pick(5) == 0;
                const char *s = other ? stages2[pick(4)] : stages[pick(5)];
                if (strcmp(s, "lost") == 0 && pick(2))
                    add_event("deal.stage_changed", t, "{\"deal\":\"d%d\",\"pipeline\":\"%s\",\"stage\":\"lost\","
                              "\"loss_reason\":\"r%d\"}", d, other ? "p2" : "p1", 1 + pick(3));
                else
                    add_event("deal.stage_changed", t, "{\"deal\":\"d%d\",\"pipeline\":\"%s\",\"stage\":\"%s\"}", d,
                              other ? "p2" : "p1", s);
            } else if (op < 7) {
                add_event("deal.responsible_changed", t, "{\"deal\":\"d%d\",\"manager\":\"m%d\"}", d, 1 + pick(4));
            } else if (op == 7) {
                add_event("deal.updated", t, "{\"deal\":\"d%d\",\"price\":%d}", d, 100 * (1 + pick(50)));
            } else if (op < 13) {
                int task = task_no++;
                int64_t due = snap(t + (pick(5) == 0 ? -3600 * pick(30) : 600 + pick(4 * 86400)));
                char when[32];
                th_format_time(due, when);
                add_event("task.created", t, "{\"task\":\"t%d\",\"deal\":\"d%d\",\"manager\":\"m%d\",\"type\":\"%s\","
                          "\"due_at\":\"%s\"}", task, d, 1 + pick(4), types[pick(4)], when);
                int64_t tt = t;
                for (int j = pick(3); j > 0; j--) {
                    tt = step(tt);
                    char moved[32];
                    th_format_time(due = snap(tt + pick(3 * 86400) - 86400), moved);
                    if (pick(2))
                        add_event("task.updated", tt, "{\"task\":\"t%d\",\"due_at\":\"%s\"}", task, moved);
                    else
                        add_event("task.updated", tt, "{\"task\":\"t%d\",\"manager\":\"m%d\"}", task, 1 + pick(4));
                }
                switch (pick(5)) {
                case 0: break; /* stays open */
                case 1: add_event("task.completed", due, "{\"task\":\"t%d\"}", task); break; /* exactly on time */
                case 2: add_event("task.deleted", step(tt), "{\"task\":\"t%d\"}", task); break;
                default: add_event("task.completed", step(tt), "{\"task\":\"t%d\"}", task); break;
                }
            } else if (op < 17) {
                add_event("call.logged", t, "{\"call\":\"c%d\",\"manager\":\"m%d\",%s\"direction\":\"%s\","
                          "\"duration_s\":%d,\"answered\":%s}", call_no, 1 + pick(4),
                          pick(5) == 0 ? "" : "\"deal\":\"x\",", pick(2) ? "in" : "out", pick(900),
                          pick(3) ? "true" : "false");
                /* the deal's external id goes in place of "x" */
                char *e = events[nevents - 1], *x = strstr(e, "\"deal\":\"x\"");
                if (x != NULL) {
                    char buf[768];
                    snprintf(buf, sizeof buf, "%.*s\"deal\":\"d%d\"%s", (int)(x - e), e, d, x + strlen("\"deal\":\"x\""));
                    free(e);
                    events[nevents - 1] = strdup(buf);
                }
                call_no++;
            } else if (op == 18) {
                /* forward, back, then lost from the earlier stage (lost there after having advanced) */
                add_event("deal.stage_changed", t, "{\"deal\":\"d%d\",\"pipeline\":\"p1\",\"stage\":\"s3\"}", d);
                t = step(t);
                add_event("deal.stage_changed", t, "{\"deal\":\"d%d\",\"pipeline\":\"p1\",\"stage\":\"s%d\"}", d,
                          1 + pick(2));
                t = step(t);
                add_event("deal.stage_changed", t, "{\"deal\":\"d%d\",\"pipeline\":\"p1\",\"stage\":\"lost\"}", d);
            } else if (op == 17 && pick(4) == 0) {
                add_event("deal.deleted", t, "{\"deal\":\"d%d\"}", d);
                deleted = true;
            } else if (op == 19 && deleted) {
                if (pick(2)) {
                    add_event("deal.restored", t, "{\"deal\":\"d%d\"}", d);
                    deleted = false;
                } else {
                    break; /* stays deleted */
                }
            }
        }
    }
}

/* shuffles and sends the events in batches of 40; every one must be applied */
static void send_all(void)
{
    for (int i = nevents - 1; i > 0; i--) {
        int j = pick(i + 1);
        char *x = events[i];
        events[i] = events[j];
        events[j] = x;
    }
    for (int i = 0; i < nevents; i += 40) {
        size_t cap = 64;
        for (int j = i; j < nevents && j < i + 40; j++)
            cap += strlen(events[j]) + 1;
        char *body = malloc(cap), *p = body;
        *p++ = '[';
        for (int j = i; j < nevents && j < i + 40; j++) {
            if (j > i) *p++ = ',';
            size_t n = strlen(events[j]);
            memcpy(p, events[j], n);
            p += n;
        }
        *p++ = ']';
        *p = '\0';
        struct th_resp r = th_post_events(acct.admin_key, body);
        th_resp_free(&r);
        free(body);
    }
    for (int i = 0; i < nevents; i++)
        free(events[i]);
    nevents = 0;
}

/* ---- the comparison ---- */

static char *sql_text(const char *sql)
{
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    char *out = strdup(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    PQfinish(c);
    return out;
}

/* Every period of 1, 7 and 31 local days starting on each day of [first, first + days), as of its last second and
 * as of instants from before its start to after its end; the number of periods compared and the first that
 * differs ("" when none). */
static void compare(const char *first, int days, const char *what)
{
    char sql[8192];
    long long id = (long long)acct.id;
    snprintf(sql, sizeof sql,
             "WITH z AS (SELECT timezone AS tz FROM accounts WHERE id = %lld),"
             " p AS (SELECT (('%s'::date + i)::timestamp AT TIME ZONE z.tz) AS s,"
             "              (('%s'::date + i + n)::timestamp AT TIME ZONE z.tz) AS e"
             "       FROM z, generate_series(0, %d) AS i, unnest(ARRAY[1, 7, 31]) n),"
             " c AS (SELECT s, e, e - interval '1 second' AS asof FROM p"
             "       UNION ALL SELECT s, e, s + k * interval '37 hours 30 minutes' - interval '1 day'"
             "                              - (k %% 2) * interval '1 second'"
             "       FROM p, generate_series(0, 5) AS k),"
             " pl AS (SELECT id FROM pipelines WHERE account_id = %lld),"
             " f AS (SELECT pl.id AS pid, c.* FROM c, pl),"
             " fe AS (SELECT f.pid, f.s, f.e, f.asof, x.* FROM f,"
             "        LATERAL salesops_funnel_entries(%lld, f.pid, f.s, f.e, f.asof) x),"
             " fraw AS (SELECT pid, s, e, asof, array_agg((y.stage_id, y.reason, y.entered, y.advanced, y.lost)"
             "                 ORDER BY y.stage_id, y.reason)::text AS want FROM ("
             "          SELECT pid, s, e, asof, stage_id, 0::bigint AS reason, count(*) AS entered,"
             "                 count(*) FILTER (WHERE class = 'advanced') AS advanced, 0::bigint AS lost"
             "          FROM fe GROUP BY 1, 2, 3, 4, 5"
             "          UNION ALL SELECT pid, s, e, asof, stage_id, coalesce(loss_reason_id, -1), 0, 0, count(*)"
             "          FROM fe WHERE class = 'lost' GROUP BY 1, 2, 3, 4, 5, 6) y (pid, s, e, asof, stage_id, reason,"
             "          entered, advanced, lost) GROUP BY 1, 2, 3, 4),"
             " fcmp AS (SELECT f.*, (SELECT array_agg((x.stage_id, x.reason, x.entered, x.advanced, x.lost)"
             "                  ORDER BY x.stage_id, x.reason)::text"
             "                  FROM salesops_funnel_counts(%lld, f.pid, f.s, f.e, f.asof) x"
             "                  WHERE (x.entered, x.advanced, x.lost) <> (0, 0, 0)) AS got, fraw.want,"
             "          (SELECT array_agg(x)::text FROM salesops_funnel_totals(%lld, f.pid, f.s, f.e, f.asof) x) AS tgot,"
             "          (SELECT array_agg(x)::text FROM salesops_funnel_totals_raw(%lld, f.pid, f.s, f.e, f.asof) x)"
             "            AS twant"
             "          FROM f LEFT JOIN fraw USING (pid, s, e, asof)),"
             " cmp AS (SELECT c.*,"
             "   (SELECT array_agg(x ORDER BY x.manager_id)::text FROM salesops_kpis(%lld, s, e, asof) x) AS got,"
             "   (SELECT array_agg(x ORDER BY x.manager_id)::text FROM salesops_kpis_raw(%lld, s, e, asof) x) AS want,"
             "   (SELECT array_agg(x)::text FROM salesops_summary(%lld, s, e) x) AS sgot,"
             "   (SELECT array_agg(x)::text FROM salesops_summary_raw(%lld, s, e) x) AS swant FROM c)"
             " SELECT (SELECT count(*) FROM cmp) || ' ' || (SELECT count(*) FROM fcmp) || ' ' || (SELECT count(*) FROM fe)"
             "   || '|' || coalesce((SELECT min(s || ' .. ' || e || ' as of ' || asof || E'\\n rollup ' || got"
             "   || E'\\n raw    ' || want || E'\\n summary ' || sgot || ' / ' || swant) FROM cmp"
             "   WHERE got IS DISTINCT FROM want OR sgot IS DISTINCT FROM swant), '')"
             "   || coalesce((SELECT min('funnel of pipeline ' || pid || ', ' || s || ' .. ' || e || ' as of ' || asof"
             "   || E'\\n rollup ' || coalesce(got, '') || E'\\n raw    ' || coalesce(want, '') || E'\\n totals '"
             "   || tgot || ' / ' || twant) FROM fcmp"
             "   WHERE coalesce(got, '') <> coalesce(want, '') OR tgot IS DISTINCT FROM twant), '')",
             id, first, first, days - 1, id, id, id, id, id, id, id, id, id);
    char *res = sql_text(sql);
    char *bar = strchr(res, '|');
    cr_assert_not_null(bar);
    long periods = 0, funnels = 0, entries = 0;
    cr_assert_eq(sscanf(res, "%ld %ld %ld", &periods, &funnels, &entries), 3);
    cr_assert_eq(periods, days * 3 * 7, "%s: %ld periods compared", what, periods);
    cr_assert_eq(funnels, 2 * periods, "%s: %ld funnels compared", what, funnels);
    cr_assert_gt(entries, 1000, "%s: only %ld stage entries in the compared funnels", what, entries);
    cr_assert_str_empty(bar + 1, "%s: the rollup differs from the raw figures:\n%s", what, bar + 1);
    free(res);
}

/* The checklist reads nine weeks in one call (salesops_kpis_multi): weeks starting on each of several days,
 * the last one as of an instant within it, against the raw figures of each week. */
static void compare_weeks(const char *first, const char *what)
{
    char sql[4096];
    long long id = (long long)acct.id;
    snprintf(sql, sizeof sql,
             "WITH z AS (SELECT timezone AS tz FROM accounts WHERE id = %lld),"
             " w AS (SELECT d, k, (('%s'::date + d + 7 * k)::timestamp AT TIME ZONE z.tz) AS s,"
             "              (('%s'::date + d + 7 * k + 7)::timestamp AT TIME ZONE z.tz) AS e"
             "       FROM z, generate_series(0, 20) AS d, generate_series(0, 8) AS k),"
             " c AS (SELECT d, k, s, e, CASE WHEN k = 8 THEN s + interval '3 days 7 hours 30 minutes' - (d %% 2)"
             "              * interval '1 second' ELSE e - interval '1 second' END AS asof FROM w),"
             " got AS (SELECT c0.d, (SELECT array_agg(x ORDER BY x.period, x.manager_id)::text"
             "                FROM salesops_kpis_multi(%lld, array_agg(c0.s ORDER BY c0.k), array_agg(c0.e ORDER BY c0.k),"
             "                                         array_agg(c0.asof ORDER BY c0.k)) x) AS got"
             "         FROM c c0 GROUP BY c0.d),"
             " want AS (SELECT c.d, array_agg(r ORDER BY c.k + 1, r.manager_id)::text AS want"
             "          FROM c, LATERAL (SELECT c.k + 1 AS period, x.* FROM salesops_kpis_raw(%lld, c.s, c.e, c.asof) x) r"
             "          GROUP BY c.d)"
             " SELECT count(*) || '|' || coalesce(min(CASE WHEN got IS DISTINCT FROM want THEN"
             "   'weeks from ' || d || E':\\n rollup ' || got || E'\\n raw    ' || want END), '')"
             " FROM got JOIN want USING (d)",
             id, first, first, id, id);
    char *res = sql_text(sql);
    char *bar = strchr(res, '|');
    cr_assert_not_null(bar);
    cr_assert_eq(strtol(res, NULL, 10), 21, "%s: %s", what, res);
    cr_assert_str_empty(bar + 1, "%s: nine weeks at once differ from the raw figures:\n%s", what, bar + 1);
    free(res);
}

/* The deals' current fields and history rows as every write path left them equal what a rebuild from the
 * change log derives (a new deal is written whole, without a rebuild; every later change rebuilds). */
static void check_rebuild_unchanged(const char *what)
{
    char sql[2048];
    long long id = (long long)acct.id;
    snprintf(sql, sizeof sql,
             "CREATE TEMP TABLE h0 AS SELECT deal_id, from_stage_id, to_stage_id, status, at, manager_id,"
             " loss_reason_id, price FROM deal_history WHERE account_id = %lld;"
             "CREATE TEMP TABLE d0 AS SELECT * FROM deals WHERE account_id = %lld;"
             "SELECT salesops_rebuild_deals(%lld, (SELECT array_agg(id) FROM deals WHERE account_id = %lld),"
             " '-infinity');"
             "WITH h AS (SELECT deal_id, from_stage_id, to_stage_id, status, at, manager_id, loss_reason_id, price"
             " FROM deal_history WHERE account_id = %lld), d AS (SELECT * FROM deals WHERE account_id = %lld),"
             " diff AS ((SELECT 'history before', h0::text FROM (SELECT * FROM h0 EXCEPT ALL SELECT * FROM h) h0)"
             " UNION ALL (SELECT 'history rebuilt', h::text FROM (SELECT * FROM h EXCEPT ALL SELECT * FROM h0) h)"
             " UNION ALL (SELECT 'deal before', d0::text FROM (SELECT * FROM d0 EXCEPT SELECT * FROM d) d0)"
             " UNION ALL (SELECT 'deal rebuilt', d::text FROM (SELECT * FROM d EXCEPT SELECT * FROM d0) d))"
             " SELECT (SELECT count(*) FROM h0) || ' ' || coalesce(string_agg(x.c || ': ' || x.r, E'\\n'), '')"
             " FROM (SELECT * FROM diff LIMIT 6) x (c, r)",
             id, id, id, id, id, id);
    char *res = sql_text(sql);
    char *bar = strchr(res, ' ');
    cr_assert_not_null(bar);
    cr_assert_gt(strtol(res, NULL, 10), 100, "%s: history rows", what);
    cr_assert_str_empty(bar + 1, "%s: a rebuild changes the deals:\n%s", what, bar + 1);
    free(res);
}

static void check_account(uint64_t seed)
{
    rng_state = seed;
    struct th_resp r = th_patch(acct.admin_key, "/api/v1/account", "{\"timezone\":\"Asia/Kolkata\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_post(acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"P\",\"external_id\":\"p1\",\"stages\":[{\"name\":\"1\",\"external_id\":\"s1\","
                "\"kind\":\"open\"},{\"name\":\"2\",\"external_id\":\"s2\",\"kind\":\"open\"},{\"name\":\"3\","
                "\"external_id\":\"s3\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);
    r = th_post(acct.admin_key, "/api/v1/pipelines",
                "{\"name\":\"Q\",\"external_id\":\"p2\",\"stages\":[{\"name\":\"1\",\"external_id\":\"q1\","
                "\"kind\":\"open\"},{\"name\":\"2\",\"external_id\":\"q2\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    th_resp_free(&r);

    int64_t from = th_parse_time("2026-09-20T00:00:00Z");
    generate(70, from, 0);
    send_all();
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND state <> 'applied'",
                            (long long)acct.id), 0, "every event is applied");
    cr_assert_gt(th_sql_int("SELECT count(*) FROM kpi_contrib WHERE account_id = %lld", (long long)acct.id), 300);
    /* rejection-control tasks (made by the review flow, not by events) count for nothing: some tasks become
     * such, through an UPDATE the triggers see like any other write */
    cr_assert_gt(th_sql_int("WITH u AS (UPDATE tasks SET type = 'rejection_control' WHERE account_id = %lld"
                            " AND id %% 6 = 0 RETURNING 1) SELECT count(*) FROM u", (long long)acct.id), 5);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM kpi_dirty"), 0, "the dirty list is emptied at commit");
    check_rebuild_unchanged("first events");
    compare("2026-09-18", 45, "Asia/Kolkata");
    compare_weeks("2026-08-20", "Asia/Kolkata");

    /* a zone with a DST change (2026-11-01) in the range: the whole rollup is rebuilt */
    r = th_patch(acct.admin_key, "/api/v1/account", "{\"timezone\":\"America/New_York\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    compare("2026-09-25", 45, "America/New_York");

    /* late events about the same deals and new ones, then the compaction */
    generate(25, from + 10 * 86400, 100);
    send_all();
    check_rebuild_unchanged("late events");
    compare("2026-09-25", 45, "after late events");

    /* one statement that touches between 65 and 1,000 entities (every deal, and 100 new calls without a deal):
     * the refresh at commit goes in chunks of 64, the deals first, then the calls */
    int64_t deals = th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld", (long long)acct.id);
    cr_assert(deals > 64 && deals + 100 <= 1000, "%lld deals", (long long)deals);
    cr_assert_eq(th_sql_int("WITH m AS (SELECT array_agg(id ORDER BY id) AS ids FROM managers WHERE account_id = %lld),"
                            " c AS (INSERT INTO calls (account_id, external_id, manager_id, direction, started_at,"
                            "  duration_s, answered, created_at)"
                            "  SELECT %lld, 'chunked' || g, m.ids[1 + g %% cardinality(m.ids)], 'out',"
                            "  timestamptz '2026-09-26 09:00:00+00' + (g * 7919 %% (40 * 86400)) * interval '1 second',"
                            "  g %% 300, g %% 4 <> 0, now() FROM m, generate_series(1, 100) g RETURNING 1),"
                            " d AS (UPDATE deals SET name = name WHERE account_id = %lld RETURNING 1)"
                            " SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM d)",
                            (long long)acct.id, (long long)acct.id, (long long)acct.id),
                 100 + deals);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM kpi_dirty"), 0, "the dirty list is emptied at commit");
    check_rebuild_unchanged("a refresh in chunks");
    compare("2026-09-25", 45, "after a refresh in chunks");

    /* one statement that touches over 1,000 entities: the refresh at commit takes the bulk path (the account's
     * lock and hash joins, as an import does), recomputing every deal and 1,200 new calls without a deal,
     * some of them exactly at a period's edge */
    cr_assert_eq(th_sql_int("WITH m AS (SELECT array_agg(id ORDER BY id) AS ids FROM managers WHERE account_id = %lld),"
                            " c AS (INSERT INTO calls (account_id, external_id, manager_id, direction, started_at,"
                            "  duration_s, answered, created_at)"
                            "  SELECT %lld, 'bulk' || g, m.ids[1 + g %% cardinality(m.ids)],"
                            "  CASE WHEN g %% 3 = 0 THEN 'in' ELSE 'out' END,"
                            "  timestamptz '2026-09-25 18:30:00+00' + (g * 2357 %% (50 * 86400)) * interval '1 second'"
                            "   - CASE WHEN g %% 7 = 0 THEN (g * 2357 %% (50 * 86400)) %% 1800 * interval '1 second'"
                            "     ELSE interval '0' END,"
                            "  g %% 600, g %% 5 <> 0, now() FROM m, generate_series(1, 1200) g RETURNING 1),"
                            " d AS (UPDATE deals SET name = name WHERE account_id = %lld RETURNING 1)"
                            " SELECT (SELECT count(*) FROM c) + (SELECT count(*) FROM d)",
                            (long long)acct.id, (long long)acct.id, (long long)acct.id),
                 1200 + th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld", (long long)acct.id));
    compare("2026-09-25", 45, "after a bulk refresh");
    th_sql_int("SELECT salesops_kpi_compact(1000)");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM kpi_roll WHERE account_id = %lld AND NOT compact",
                            (long long)acct.id), 0);
    compare("2026-09-25", 45, "after compaction");
    compare_weeks("2026-08-27", "after compaction");
}

TestSuite(rollup, .init = setup, .fini = th_server_stop, .timeout = 300);

Test(rollup, seed_1) { check_account(1); }
Test(rollup, seed_2) { check_account(0x5eed2); }

/* POST /webhooks/amocrm/{webhook_token} over HTTP: amoCRM's own sample bodies (copied below from the amoCRM
 * FORMAT.md samples, URL-encoded exactly as sent) posted in their story order and applied in the background;
 * token, media type, size, subdomain and duplicate checks; malformed and unused bodies in the inbox. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"
#include "salesops/sched.h"

static struct th_account acct;

static void setup(void)
{
    /* several batches of a few dozen bodies are applied at once by the tests below: 25 bodies a transaction */
    setenv("SALESOPS_APPLY_BATCH", "25", 1);
    th_server_start(TEST_SUITE);
    th_account_new(&acct);
}

static void teardown(void)
{
    th_server_stop();
}

TestSuite(webhooks, .init = setup, .fini = teardown);

#include "amocrm_samples.h"

/* the sample bodies by their story names */
#define LEADS_ADD                leads_add
#define LEADS_RESPONSIBLE        leads_responsible
#define TASK_ADD                 task_add
#define TASK_COMPLETE            task_complete
#define LEADS_STATUS_TO_PROPOSAL leads_status_to_proposal
#define LEADS_STATUS_LOST        leads_status_lost
#define TWO_LEADS_TWO_ACTIONS    two_leads_two_actions

static const char FORM[] = "application/x-www-form-urlencoded";
#define MIB (1024 * 1024)

/* ---- helpers ---- */

static struct th_resp post_to(const char *token, const char *body, const char *content_type)
{
    return th_post_webhook(token, body, content_type);
}

/* Posts a body as amoCRM does and asserts the 200 within 2 s. */
static void post_ok(const char *body)
{
    th_post_webhook_ok(acct.webhook_token, body);
}

static size_t items_size(json_t *list)
{
    return json_array_size(json_object_get(list, "items"));
}

static void assert_null(json_t *o, const char *field)
{
    char *dump = json_dumps(o, JSON_COMPACT);
    cr_assert(json_is_null(json_object_get(o, field)), "%s should be null: %s", field, dump);
    free(dump);
}

/* Polls until nothing received is left to apply (inbox ?state=pending and ?state=waiting both empty), up to
 * 10 s: NULL, or what is left (the caller frees). */
static char *not_applied(void)
{
    double deadline = th_mono_now() + 10.0;
    for (;;) {
        json_t *pending = th_get_json(acct.admin_key, "/api/v1/webhooks/inbox?state=pending&limit=500");
        json_t *waiting = th_get_json(acct.admin_key, "/api/v1/webhooks/inbox?state=waiting&limit=500");
        bool idle = items_size(pending) == 0 && items_size(waiting) == 0;
        char *left = NULL;
        if (!idle && th_mono_now() > deadline) {
            char *p = json_dumps(pending, JSON_INDENT(1)), *w = json_dumps(waiting, JSON_INDENT(1));
            size_t len = strlen(p) + strlen(w) + 64;
            left = malloc(len);
            snprintf(left, len, "pending %s\nwaiting %s", p, w);
            free(p);
            free(w);
        }
        json_decref(pending);
        json_decref(waiting);
        if (idle || left != NULL) return left;
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    }
}

static void wait_applied(void)
{
    char *left = not_applied();
    if (left != NULL) {
        char text[16384];
        snprintf(text, sizeof text, "%s", left);
        free(left);
        cr_assert_fail("not applied within 10 s:\n%s", text);
    }
}

/* The raw webhook bodies in the inbox (source amocrm); the caller decrefs. */
static json_t *webhook_rows(const char *state)
{
    json_t *all = state ? th_get_json(acct.admin_key, "/api/v1/webhooks/inbox?state=%s&limit=500", state)
                        : th_get_json(acct.admin_key, "/api/v1/webhooks/inbox?limit=500");
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(all, "items"), i, row)
    {
        const char *source = th_jstr(row, "source");
        if (source != NULL && strcmp(source, "amocrm") == 0) json_array_append(out, row);
    }
    json_decref(all);
    return out;
}

static size_t webhook_count(const char *state)
{
    json_t *rows = webhook_rows(state);
    size_t n = json_array_size(rows);
    json_decref(rows);
    return n;
}

static long status_of(const char *path_fmt, ...) __attribute__((format(printf, 1, 2)));
static long status_of(const char *path_fmt, ...)
{
    char path[512];
    va_list ap;
    va_start(ap, path_fmt);
    vsnprintf(path, sizeof path, path_fmt, ap);
    va_end(ap);
    struct th_resp r = th_request("GET", path, acct.admin_key, NULL, NULL, NULL);
    long status = r.status;
    th_resp_free(&r);
    return status;
}

/* The pipeline with external_id ext (the caller decrefs). */
static json_t *pipeline_by_ext(const char *ext)
{
    json_t *list = th_get_json(acct.admin_key, "/api/v1/pipelines?limit=500");
    size_t i;
    json_t *p, *found = NULL;
    json_array_foreach(json_object_get(list, "items"), i, p)
    {
        const char *e = th_jstr(p, "external_id");
        if (e != NULL && strcmp(e, ext) == 0) found = json_incref(p);
    }
    json_decref(list);
    cr_assert(found != NULL, "no pipeline %s", ext);
    return found;
}

static int64_t stage_by_ext(json_t *pipeline, const char *ext)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(pipeline, "stages"), i, s)
    {
        const char *e = th_jstr(s, "external_id");
        if (e != NULL && strcmp(e, ext) == 0) return th_jint(s, "id");
    }
    cr_assert_fail("no stage %s", ext);
    return 0;
}

static int64_t stage_of_kind(json_t *pipeline, const char *kind)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(pipeline, "stages"), i, s)
    {
        if (strcmp(th_jstr(s, "kind"), kind) == 0) return th_jint(s, "id");
    }
    cr_assert_fail("no %s stage", kind);
    return 0;
}

static void assert_history_row(json_t *rows, size_t i, int64_t from, int64_t to, const char *status,
                               const char *at, int64_t manager, int64_t price)
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
    cr_assert_eq(json_integer_value(json_object_get(row, "manager_id")), manager, "row %zu manager_id: %s", i,
                 dump);
    cr_assert(json_is_null(json_object_get(row, "loss_reason_id")), "row %zu loss_reason_id: %s", i, dump);
    cr_assert_eq(th_jint(row, "price"), price, "row %zu price: %s", i, dump);
    free(dump);
}

/* The story's end state (FORMAT.md), whatever order the bodies came in. */
static void assert_story(void)
{
    int64_t u1 = th_id_by_ext(acct.admin_key, "managers", "8800001"),
            u2 = th_id_by_ext(acct.admin_key, "managers", "8800002");
    json_t *m = th_get_json(acct.admin_key, "/api/v1/managers/%lld", (long long)u2);
    cr_assert_str_eq(th_jstr(m, "name"), "8800002", "a placeholder is named by its external id");
    cr_assert(json_is_true(json_object_get(m, "needs_setup")));
    cr_assert_str_eq(th_jstr(m, "role"), "manager");
    json_decref(m);

    json_t *p = pipeline_by_ext("6101001");
    cr_assert(json_is_true(json_object_get(p, "needs_setup")));
    int64_t s1 = stage_by_ext(p, "55012001"), s4 = stage_by_ext(p, "55012004");
    int64_t lost = stage_of_kind(p, "lost");
    int64_t pipeline_id = th_jint(p, "id");
    json_decref(p);

    json_t *d = th_get_json(acct.admin_key, "/api/v1/deals/ext:40310001");
    cr_assert_str_eq(th_jstr(d, "external_id"), "40310001");
    cr_assert_str_eq(th_jstr(d, "name"), "Заявка с сайта");
    cr_assert_eq(th_jint(d, "price"), 150000);
    cr_assert_eq(th_jint(d, "pipeline_id"), pipeline_id);
    cr_assert_eq(th_jint(d, "stage_id"), lost);
    cr_assert_str_eq(th_jstr(d, "status"), "lost");
    cr_assert_eq(th_jint(d, "manager_id"), u2);
    assert_null(d, "loss_reason_id"); /* not in any webhook, and no connector to read it */
    cr_assert_str_eq(th_jstr(d, "created_at"), "2022-09-01T06:00:00Z");
    cr_assert_str_eq(th_jstr(d, "closed_at"), "2022-09-03T06:00:00Z");
    int64_t deal = th_jint(d, "id");
    json_decref(d);

    json_t *h = th_get_json(acct.admin_key, "/api/v1/deals/%lld/history", (long long)deal);
    json_t *rows = json_object_get(h, "items");
    cr_assert_eq(json_array_size(rows), 4, "created, responsible, 55012004, lost");
    assert_history_row(rows, 0, 0, s1, "open", "2022-09-01T06:00:00Z", u1, 150000);    /* 1662012000 */
    assert_history_row(rows, 1, s1, s1, "open", "2022-09-01T16:33:20Z", u2, 150000);   /* 1662050000 */
    assert_history_row(rows, 2, s1, s4, "open", "2022-09-02T06:00:00Z", u2, 150000);   /* 1662098400 */
    assert_history_row(rows, 3, s4, lost, "lost", "2022-09-03T06:00:00Z", u2, 150000); /* 1662184800 */
    json_decref(h);

    json_t *t = th_get_json(acct.admin_key, "/api/v1/tasks/ext:7700001");
    cr_assert_eq(th_jint(t, "deal_id"), deal);
    cr_assert_eq(th_jint(t, "manager_id"), u2);
    cr_assert_str_eq(th_jstr(t, "type"), "call");
    cr_assert_str_eq(th_jstr(t, "text"), "Перезвонить клиенту");
    cr_assert_str_eq(th_jstr(t, "state"), "done");
    cr_assert_str_eq(th_jstr(t, "result"), "Клиент ждёт КП");
    cr_assert_str_eq(th_jstr(t, "completed_at"), "2022-09-02T03:00:00Z"); /* its updated_at 1662087600 */
    cr_assert_str_eq(th_jstr(t, "due_at"), "2022-09-02T06:00:00Z");       /* complete_before 1662098400 */
    cr_assert_str_eq(th_jstr(t, "created_at"), "2022-09-01T19:20:00Z");   /* created_at 1662060000 */
    json_decref(t);
}

/* ---- the story ---- */

Test(webhooks, the_sample_story_in_order)
{
    const char *story[] = {LEADS_ADD,     LEADS_RESPONSIBLE,        TASK_ADD,
                           TASK_COMPLETE, LEADS_STATUS_TO_PROPOSAL, LEADS_STATUS_LOST};
    for (size_t i = 0; i < sizeof story / sizeof story[0]; i++)
        post_ok(story[i]);
    wait_applied();
    assert_story();
    cr_assert_eq(webhook_count(NULL), 6);
    cr_assert_eq(webhook_count("applied"), 6, "every body applied");
    cr_assert_eq(webhook_count("failed"), 0);
}

Test(webhooks, the_sample_story_in_reverse_order_ends_the_same)
{
    const char *story[] = {LEADS_STATUS_LOST, LEADS_STATUS_TO_PROPOSAL, TASK_COMPLETE,
                           TASK_ADD,          LEADS_RESPONSIBLE,        LEADS_ADD};
    for (size_t i = 0; i < sizeof story / sizeof story[0]; i++)
        post_ok(story[i]);
    wait_applied();
    assert_story();
    cr_assert_eq(webhook_count("failed"), 0);
}

Test(webhooks, two_leads_added_and_one_updated_in_one_body)
{
    post_ok(TWO_LEADS_TWO_ACTIONS);
    wait_applied();
    json_t *p = pipeline_by_ext("6101001");
    int64_t s1 = stage_by_ext(p, "55012001");
    json_decref(p);
    int64_t u1 = th_id_by_ext(acct.admin_key, "managers", "8800001");

    json_t *d = th_get_json(acct.admin_key, "/api/v1/deals/ext:40310002");
    cr_assert_str_eq(th_jstr(d, "name"), "Звонок");
    cr_assert_eq(th_jint(d, "price"), 175000, "the update in the same body applies after the add");
    cr_assert_eq(th_jint(d, "stage_id"), s1);
    cr_assert_eq(th_jint(d, "manager_id"), u1);
    cr_assert_str_eq(th_jstr(d, "status"), "open");
    cr_assert_str_eq(th_jstr(d, "created_at"), "2022-09-01T06:16:40Z");
    int64_t id = th_jint(d, "id");
    json_decref(d);
    json_t *h = th_get_json(acct.admin_key, "/api/v1/deals/%lld/history", (long long)id);
    cr_assert_eq(items_size(h), 1, "an update with the same stage and responsible is no history row");
    assert_history_row(json_object_get(h, "items"), 0, 0, s1, "open", "2022-09-01T06:16:40Z", u1, 150000);
    json_decref(h);

    d = th_get_json(acct.admin_key, "/api/v1/deals/ext:40310003");
    cr_assert_str_eq(th_jstr(d, "name"), "Чат");
    cr_assert_eq(th_jint(d, "price"), 150000);
    cr_assert_eq(th_jint(d, "stage_id"), s1);
    cr_assert_str_eq(th_jstr(d, "created_at"), "2022-09-01T06:33:20Z");
    json_decref(d);
    cr_assert_eq(webhook_count("applied"), 1);
}

/* ---- several appliers ----
 * Scheduler threads default to 2 and instances may be many ("safe with any number of instances"), so the
 * bodies of one account are applied concurrently. The result must not depend on that. */

/* A leads[add] body: lead in pipeline, stage 55012001, responsible user, at t. */
static void lead_add_body(char *out, size_t len, int lead, int pipeline, int user, int t)
{
    th_lead_add_body(out, len, lead, pipeline, user, t);
}

/* A leads[status] body: lead moves to 55012002 at t. */
static void lead_status_body(char *out, size_t len, int lead, int t)
{
    snprintf(
        out, len,
        "leads%%5Bstatus%%5D%%5B0%%5D%%5Bid%%5D=%d&leads%%5Bstatus%%5D%%5B0%%5D%%5Bstatus_id%%5D=55012002"
        "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bpipeline_id%%5D=6101001"
        "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bold_status_id%%5D=55012001"
        "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bupdated_at%%5D=%d&account%%5Bsubdomain%%5D=acme",
        lead, t);
}

/* The leads of [first, first + n) that do not exist, as text ("" when all do). */
static void missing_leads(int first, int n, char *out, size_t len)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++)
        if (status_of("/api/v1/deals/ext:%d", first + i) != 200)
            snprintf(out + strlen(out), len - strlen(out), " %d", first + i);
}

/* The failed rows' errors, as text ("" when none). */
static void failed_rows(char *out, size_t len)
{
    json_t *rows = th_get_json(acct.admin_key, "/api/v1/webhooks/inbox?state=failed&limit=500");
    size_t i;
    json_t *row;
    out[0] = '\0';
    json_array_foreach(json_object_get(rows, "items"), i, row)
    {
        snprintf(out + strlen(out), len - strlen(out), "\n %s %s: %s",
                 th_jstr(row, "event_id") ? th_jstr(row, "event_id") : "(body)",
                 th_jstr(row, "event_type") ? th_jstr(row, "event_type") : "",
                 th_jstr(row, "error") ? th_jstr(row, "error") : "");
    }
    json_decref(rows);
}

/* Three more scheduler threads beside the server's own (the caller stops them). */
static struct so_sched *more_appliers(void)
{
    char err[256];
    struct so_sched *more = sched_start(th_config(), 3, err, sizeof err);
    cr_assert(more != NULL, "%s", err);
    return more;
}

/* Fails with what not_applied() left, if anything (and frees it). */
static void assert_none_left(char *left)
{
    if (left == NULL) return;
    char text[16384];
    snprintf(text, sizeof text, "%s", left);
    free(left);
    cr_assert_fail("events still waiting although what they wait for exists:\n%s", text);
}

static PGconn *hold_ingest(void)
{
    return th_hold_ingest(acct.id);
}

/* Waits until the appliers that will claim the bodies posted (25 at most each) wait for the lock with their
 * batches (or 5 s), then lets them all go at once. */
static void release_ingest(PGconn *c, int bodies)
{
    int batches = (bodies + 24) / 25;
    th_wait_sql_int(batches, 5000,
                    "SELECT least(count(*), %d) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = 1936682867 AND objid = %lld",
                    batches, (long long)acct.id);
    th_sleep_ms(200); /* any other applier claims the rest */
    th_release_ingest(c);
}

/* From now on the database refuses to insert this account's deals with the given external ids (an SQL list),
 * by a trigger of this test; its name carries the account, so that tests running beside it are not touched. */
static void refuse_leads(const char *ids)
{
    long long id = (long long)acct.id;
    th_sql_int("CREATE OR REPLACE FUNCTION test_refuse_%lld() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
               " IF NEW.account_id = %lld AND NEW.external_id IN (%s) THEN RAISE EXCEPTION 'refused by the test';"
               " END IF; RETURN NEW; END $f$;"
               " CREATE TRIGGER test_refuse_%lld BEFORE INSERT ON deals FOR EACH ROW"
               " EXECUTE FUNCTION test_refuse_%lld()",
               id, id, ids, id, id);
}

static void refuse_no_leads(void)
{
    th_sql_int("DROP TRIGGER test_refuse_%lld ON deals", (long long)acct.id);
}

/* Each round names a new pipeline and a new user; the rounds' bodies are posted in turn, so that every batch an
 * applier claims names every new pipeline and user, and the batches are applied at once. With refused, one lead
 * in each batch of 25 is refused by the database (a test trigger): every batch then fails its first attempt and
 * makes its placeholders again event by event, each in a savepoint, where a second batch making the same one
 * fails its event instead of retrying. */
static void placeholders_at_once(bool refused)
{
    if (refused) refuse_leads("'40330001', '40330005', '40330009'");
    struct so_sched *more = more_appliers();
    enum { ROUNDS = 6, PER_ROUND = 12 };
    PGconn *held = hold_ingest();
    for (int i = 0; i < PER_ROUND; i++) {
        for (int r = 0; r < ROUNDS; r++) {
            char body[1024];
            lead_add_body(body, sizeof body, 40330000 + r * 100 + i, 6102000 + r, 8810000 + r,
                          1662012000 + i);
            post_ok(body);
        }
    }
    release_ingest(held, ROUNDS * PER_ROUND);
    char *left = not_applied();
    sched_stop(more);
    free(left);
    if (refused) refuse_no_leads();
    char missing[1024] = "", failed[4096];
    for (int r = 0; r < ROUNDS; r++)
        missing_leads(40330000 + r * 100, PER_ROUND, missing + strlen(missing),
                      sizeof missing - strlen(missing));
    failed_rows(failed, sizeof failed);
    if (refused) {
        cr_assert_str_eq(missing, " 40330001 40330005 40330009", "leads never created:%s\nfailed inbox rows:%s",
                         missing, failed);
        cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND state = 'failed'",
                                (long long)acct.id),
                     3, "only the refused leads' events fail:%s", failed);
    } else {
        cr_assert_str_empty(missing, "leads never created:%s\nfailed inbox rows:%s", missing, failed);
        cr_assert_str_empty(failed, "failed inbox rows:%s", failed);
    }
    json_t *pipelines = th_get_json(acct.admin_key, "/api/v1/pipelines?limit=500");
    cr_assert_eq(items_size(pipelines), ROUNDS, "one placeholder pipeline per round");
    json_decref(pipelines);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM managers WHERE account_id = %lld AND needs_setup",
                            (long long)acct.id),
                 ROUNDS, "one placeholder user per round");
}

Test(webhooks, bodies_applied_at_once_that_need_the_same_placeholder_all_apply, .timeout = 120)
{
    placeholders_at_once(false);
}

Test(webhooks, batches_applied_event_by_event_at_once_make_each_placeholder_once)
{
    placeholders_at_once(true);
}

Test(webhooks, several_appliers_never_leave_an_event_waiting_for_a_deal_that_exists, .timeout = 120)
{
    /* the placeholders exist first: here only the waiting is at stake */
    char add[1024], status[1024];
    lead_add_body(add, sizeof add, 40320999, 6101001, 8800001, 1662011000);
    lead_status_body(status, sizeof status, 40320999, 1662011500);
    post_ok(add);
    post_ok(status);
    wait_applied();

    struct so_sched *more = more_appliers();
    /* every lead's move is posted before its creation: the moves fill two batches, the creations two more, and
     * the four are applied at once. Whichever batch takes a lead first, a move must not be left waiting: the
     * creations' batches have no waiting event of their own. Three rounds, since the order is chance. */
    enum { ROUNDS = 3, LEADS = 50 };
    char *left = NULL;
    for (int r = 0; r < ROUNDS && left == NULL; r++) {
        int first = 40320000 + r * 100;
        PGconn *held = hold_ingest();
        for (int i = 0; i < LEADS; i++) {
            lead_status_body(status, sizeof status, first + i, 1662020000 + i);
            post_ok(status);
        }
        for (int i = 0; i < LEADS; i++) {
            lead_add_body(add, sizeof add, first + i, 6101001, 8800001, 1662012000 + i);
            post_ok(add);
        }
        release_ingest(held, 2 * LEADS);
        left = not_applied();
    }
    sched_stop(more);
    char missing[1024] = "", failed[4096];
    for (int r = 0; r < ROUNDS; r++)
        missing_leads(40320000 + r * 100, LEADS, missing + strlen(missing), sizeof missing - strlen(missing));
    failed_rows(failed, sizeof failed);
    if (missing[0] || failed[0]) free(left);
    cr_assert_str_empty(missing, "leads never created:%s\nfailed inbox rows:%s", missing, failed);
    cr_assert_str_empty(failed, "failed inbox rows:%s", failed);
    assert_none_left(left);
    json_t *p = pipeline_by_ext("6101001");
    int64_t s2 = stage_by_ext(p, "55012002");
    json_decref(p);
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < LEADS; i++) {
            json_t *d = th_get_json(acct.admin_key, "/api/v1/deals/ext:%d", 40320000 + r * 100 + i);
            cr_assert_eq(th_jint(d, "stage_id"), s2, "lead %d", 40320000 + r * 100 + i);
            json_decref(d);
        }
}

/* A task[add] (status 0) or task[update] (status 1: completed) body: task of lead, for 8800002, at t. */
static void task_body(char *out, size_t len, const char *action, int task, int lead, int status, int t)
{
    snprintf(out, len,
             "task%%5B%s%%5D%%5B0%%5D%%5Bid%%5D=%d&task%%5B%s%%5D%%5B0%%5D%%5Belement_id%%5D=%d"
             "&task%%5B%s%%5D%%5B0%%5D%%5Belement_type%%5D=2&task%%5B%s%%5D%%5B0%%5D%%5Btask_type%%5D=1"
             "&task%%5B%s%%5D%%5B0%%5D%%5Btext%%5D=call&task%%5B%s%%5D%%5B0%%5D%%5Bstatus%%5D=%d"
             "&task%%5B%s%%5D%%5B0%%5D%%5Bresponsible_user_id%%5D=8800002"
             "&task%%5B%s%%5D%%5B0%%5D%%5Bcomplete_before%%5D=%d&task%%5B%s%%5D%%5B0%%5D%%5Bcreated_at%%5D=%d"
             "&task%%5B%s%%5D%%5B0%%5D%%5Bupdated_at%%5D=%d&account%%5Bsubdomain%%5D=acme",
             action, task, action, lead, action, action, action, action, status, action, action, t + 86400,
             action, t, action, t + (status ? 3600 : 0));
}

/* A task added before its lead waits for the lead; the lead's creation wakes it and so creates the task, whose
 * key its transaction did not take first. Meanwhile another batch completes that task. The creation takes the
 * task's key before it makes the task, so the completion is either seen waiting or sees the task. Three
 * rounds, since the order is chance. */
Test(webhooks, a_task_made_by_a_woken_event_is_not_missed_by_a_batch_about_it)
{
    /* the placeholders exist first (their catalog lock would order the two batches) */
    char add[1024], task[1024];
    lead_add_body(add, sizeof add, 40350999, 6101001, 8800001, 1662011000);
    post_ok(add);
    lead_add_body(add, sizeof add, 40350998, 6101001, 8800002, 1662011000);
    post_ok(add);
    wait_applied();
    struct so_sched *more = more_appliers();
    enum { ROUNDS = 3, FILLERS = 24 };
    char *left = NULL;
    for (int r = 0; r < ROUNDS && left == NULL; r++) {
        int lead = 40360000 + r, task_id = 7760000 + r;
        task_body(task, sizeof task, "add", task_id, lead, 0, 1662050000);
        post_ok(task);
        cr_assert_eq(th_wait_sql_int(1, 10000,
                                     "SELECT count(*) FROM inbox WHERE account_id = %lld AND state = 'waiting'",
                                     (long long)acct.id),
                     1, "the task waits for its lead");
        /* the completion opens the first batch, the lead is alone in the next */
        PGconn *held = hold_ingest();
        task_body(task, sizeof task, "update", task_id, lead, 1, 1662050000);
        post_ok(task);
        for (int i = 0; i < FILLERS; i++) {
            lead_add_body(add, sizeof add, 40350000 + r * 100 + i, 6101001, 8800001, 1662012000 + i);
            post_ok(add);
        }
        lead_add_body(add, sizeof add, lead, 6101001, 8800001, 1662040000);
        post_ok(add);
        release_ingest(held, FILLERS + 2);
        left = not_applied();
    }
    sched_stop(more);
    assert_none_left(left);
    for (int r = 0; r < ROUNDS; r++) {
        json_t *t = th_get_json(acct.admin_key, "/api/v1/tasks/ext:%d", 7760000 + r);
        cr_assert_str_eq(th_jstr(t, "state"), "done", "%s", th_dump(t));
        json_decref(t);
    }
}

struct retry_call {
    int64_t id;
    long status;
    char code[64];
};

static void *retry_in_thread(void *p)
{
    struct retry_call *call = p;
    struct th_resp r = th_post_empty(acct.admin_key, "/api/v1/webhooks/inbox/%lld/retry", (long long)call->id);
    call->status = r.status;
    snprintf(call->code, sizeof call->code, "%s", th_code(&r) ? th_code(&r) : "");
    th_resp_free(&r);
    return NULL;
}

/* A retry reads the row, then waits for the account's ingest lock; a batch that wakes the row meanwhile applies
 * it first. The retry must then see it applied and refuse (it applied it a second time). */
Test(webhooks, a_retry_of_an_event_applied_meanwhile_is_a_conflict_and_applies_nothing)
{
    char status[1024];
    lead_status_body(status, sizeof status, 40370001, 1662011500);
    post_ok(status);
    long long account = (long long)acct.id;
    cr_assert_eq(th_wait_sql_int(1, 10000, "SELECT count(*) FROM inbox WHERE account_id = %lld AND state = 'waiting'",
                                 account),
                 1, "the move waits for its lead");
    struct retry_call call = {
        .id = th_sql_int("SELECT id FROM inbox WHERE account_id = %lld AND state = 'waiting'", account)};
    PGconn *held = hold_ingest();
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, retry_in_thread, &call), 0);
    th_wait_sql_int(1, 5000,
                    "SELECT least(count(*), 1) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND classid = 1936682867 AND objid = %lld",
                    account);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE inbox SET state = 'applied', applied_at = now() WHERE account_id = %lld"
             " AND id = %lld; COMMIT", account, (long long)call.id);
    PGresult *r = PQexec(held, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(held));
    PQclear(r);
    PQfinish(held);
    pthread_join(t, NULL);
    cr_assert_eq(call.status, 409, "retry answered %ld %s", call.status, call.code);
    cr_assert_str_eq(call.code, "conflict");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND id = %lld AND state = 'applied'",
                            account, (long long)call.id),
                 1, "the row stays as the batch left it");
}

/* The applier applies a batch of bodies without a savepoint for each event first; an event that fails makes
 * the batch run again, event by event: that event fails alone, the others apply once. */
Test(webhooks, an_event_failing_in_a_batch_fails_alone_and_the_others_apply_once)
{
    refuse_leads("'40340002'");
    enum { LEADS = 5 };
    PGconn *held = hold_ingest();
    for (int i = 0; i < LEADS; i++) {
        char add[1024];
        lead_add_body(add, sizeof add, 40340000 + i, 6101001, 8800001, 1662030000 + i);
        post_ok(add);
    }
    release_ingest(held, LEADS);
    wait_applied();
    long long id = (long long)acct.id;
    cr_assert_eq(webhook_count("applied"), LEADS, "each body's events were applied or parked");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND source = 'amocrm_event'"
                            " AND state = 'failed' AND event_type = 'deal.created'", id), 1,
                 "the refused lead's event");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND external_id LIKE '4034000_'",
                            id), LEADS - 1);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deal_history h JOIN deals d ON d.account_id = h.account_id"
                            " AND d.id = h.deal_id WHERE d.account_id = %lld AND d.external_id LIKE '4034000_'",
                            id), LEADS - 1, "one creation row each");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND source = 'amocrm_event'"
                            " AND event_id LIKE 'amo:%%'", id), LEADS, "each body's event stored once");
    refuse_no_leads();
}

/* ---- what is refused, and stores nothing ---- */

/* Webhook bodies are stored durably at receipt (the answer waits for that); their apply commits without waiting
 * for its WAL to be flushed, since a crash that loses it leaves the bodies pending, to be applied again.
 * POST /events answers after applying: it keeps the database's setting. A trigger of this test records
 * synchronous_commit, and where its value comes from, in the transactions that make this account's inbox rows
 * applied (the test cluster may run with it off for all: the applier's own setting shows as set by the session). */
Test(webhooks, the_applier_commits_without_waiting_for_the_flush_and_events_keep_the_setting)
{
    long long id = (long long)acct.id;
    th_sql_int("CREATE TABLE IF NOT EXISTS test_commit_mode (account_id bigint, source text, mode text, set_by text);"
               " CREATE OR REPLACE FUNCTION test_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN"
               " INSERT INTO test_commit_mode SELECT NEW.account_id, NEW.source, setting, source FROM pg_settings"
               " WHERE name = 'synchronous_commit'; RETURN NULL; END $f$;"
               " CREATE TRIGGER test_commit_mode_%lld AFTER INSERT OR UPDATE OF state ON inbox FOR EACH ROW"
               " WHEN (NEW.state = 'applied' AND NEW.account_id = %lld) EXECUTE FUNCTION test_commit_mode()",
               id, id);
    post_ok(LEADS_ADD);
    wait_applied();
    struct th_resp r = th_post(acct.admin_key, "/api/v1/events",
                               "[{\"id\":\"cm1\",\"type\":\"deal.created\",\"at\":\"2024-03-01T09:00:00Z\","
                               "\"data\":{\"deal\":\"CM1\",\"name\":\"n\",\"price\":1,\"pipeline\":\"cp\"}}]");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_sql_int("DROP TRIGGER test_commit_mode_%lld ON inbox; SELECT 1", id);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM test_commit_mode WHERE account_id = %lld AND source = 'amocrm'"
                            " AND mode = 'off' AND set_by = 'session'", id), 1, "the body, applied");
    cr_assert_gt(th_sql_int("SELECT count(*) FROM test_commit_mode WHERE account_id = %lld"
                            " AND source = 'amocrm_event' AND mode = 'off' AND set_by = 'session'", id), 0,
                 "its events, applied");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM test_commit_mode WHERE account_id = %lld AND source = 'events'"
                            " AND set_by <> 'session'", id), 1, "the event posted");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM test_commit_mode WHERE account_id = %lld AND"
                            " (mode = 'off' AND set_by = 'session') <> (source <> 'events')", id), 0);
}

Test(webhooks, unknown_token_is_401_and_nothing_is_stored)
{
    struct th_resp r = post_to("no-such-token", LEADS_ADD, FORM);
    cr_assert_eq(r.status, 401, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "unauthorized");
    th_resp_free(&r);
    /* the account's admin key is not a webhook token either */
    r = post_to(acct.admin_key, LEADS_ADD, FORM);
    cr_assert_eq(r.status, 401, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("inbox", acct.id), 0);
    cr_assert_eq(status_of("/api/v1/deals/ext:40310001"), 404);
}

Test(webhooks, other_content_types_are_415_and_nothing_is_stored)
{
    const char *types[] = {"text/plain", "application/json", "multipart/form-data; boundary=x"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct th_resp r = post_to(acct.webhook_token, LEADS_ADD, types[i]);
        cr_assert_eq(r.status, 415, "%s: %s", types[i], r.body);
        cr_assert_str_eq(th_code(&r), "unsupported_media_type");
        th_resp_free(&r);
    }
    cr_assert_eq(th_count_rows("inbox", acct.id), 0);
    /* with a charset parameter it is form-urlencoded */
    struct th_resp r =
        post_to(acct.webhook_token, LEADS_ADD, "application/x-www-form-urlencoded; charset=UTF-8");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    wait_applied();
    cr_assert_eq(status_of("/api/v1/deals/ext:40310001"), 200);
}

/* A body of exactly len bytes: the sample lead add, then padding in an unused field. */
static char *padded(size_t len)
{
    char *s = malloc(len + 1);
    cr_assert(s != NULL);
    size_t n = strlen(LEADS_ADD);
    cr_assert(len > n + 8);
    memcpy(s, LEADS_ADD, n);
    memcpy(s + n, "&pad=", 5);
    memset(s + n + 5, 'a', len - n - 5);
    s[len] = '\0';
    return s;
}

Test(webhooks, a_body_over_1_mib_is_413_and_nothing_is_stored)
{
    char *body = padded(MIB + 1);
    struct th_resp r = post_to(acct.webhook_token, body, FORM);
    cr_assert_eq(r.status, 413, "%.300s", r.body);
    cr_assert_str_eq(th_code(&r), "payload_too_large");
    th_resp_free(&r);
    free(body);
    cr_assert_eq(th_count_rows("inbox", acct.id), 0);

    body = padded(MIB);
    r = post_to(acct.webhook_token, body, FORM);
    cr_assert_eq(r.status, 200, "exactly 1 MiB is taken: %.300s", r.body);
    th_resp_free(&r);
    free(body);
    wait_applied();
    cr_assert_eq(webhook_count(NULL), 1);
}

Test(webhooks, the_same_body_twice_within_10_minutes_is_acknowledged_and_stored_once)
{
    post_ok(LEADS_ADD);
    post_ok(LEADS_ADD);
    wait_applied();
    post_ok(LEADS_ADD); /* also after it was applied */
    wait_applied();
    cr_assert_eq(webhook_count(NULL), 1, "one body stored");
    json_t *deals = th_get_json(acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert_eq(items_size(deals), 1);
    json_decref(deals);

    /* another body is not a duplicate */
    post_ok(LEADS_RESPONSIBLE);
    wait_applied();
    cr_assert_eq(webhook_count(NULL), 2);
    json_t *d = th_get_json(acct.admin_key, "/api/v1/deals/ext:40310001");
    cr_assert_eq(th_jint(d, "manager_id"), th_id_by_ext(acct.admin_key, "managers", "8800002"));
    json_decref(d);

    /* the same body sent to another account is that account's own */
    struct th_account other;
    th_account_new(&other);
    struct th_resp r = post_to(other.webhook_token, LEADS_ADD, FORM);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    cr_assert_gt(th_count_rows("inbox", other.id), 0, "stored for the other account");
}

Test(webhooks, a_malformed_body_is_200_and_fails_in_the_inbox)
{
    const char *bad[] = {
        "leads%5Badd%5D%5B0%5D%5Bid%5D=%ZZ40310009&account%5Bsubdomain%5D=acme",
        "leads%5Badd%5D%5B0%5D%5Bname%5D=%D0%97%D0&account%5Bsubdomain%5D=acme%4",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        post_ok(bad[i]);
    wait_applied();
    json_t *failed = webhook_rows("failed");
    cr_assert_eq(json_array_size(failed), 2);
    size_t i;
    json_t *row;
    json_array_foreach(failed, i, row)
    {
        const char *error = th_jstr(row, "error");
        cr_assert(error != NULL && *error, "a failed row says why");
    }
    json_decref(failed);
    json_t *deals = th_get_json(acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert_eq(items_size(deals), 0);
    json_decref(deals);
}

/* An applier applies at most SALESOPS_APPLY_BATCH bodies (25 in this suite) of an account in one transaction: the
 * bodies a transaction marks applied share its xmin. 60 bodies appear at once. */
Test(webhooks, an_applier_applies_at_most_the_configured_batch_of_bodies_in_one_transaction, .timeout = 60)
{
    /* stored in the transaction that holds the account's ingest lock: every claim sees all 60 (posted one by one,
     * appliers of the suite's other servers could claim the first few before the rest arrive) */
    PGconn *held = hold_ingest();
    static char insert[80000];
    int used = snprintf(insert, sizeof insert, "INSERT INTO inbox (account_id, source, body, body_hash, state) SELECT %lld,"
                        " 'amocrm', b, sha256(convert_to(b, 'UTF8')), 'pending' FROM unnest(ARRAY[",
                        (long long)acct.id);
    for (int i = 0; i < 60; i++) {
        char body[1024];
        lead_add_body(body, sizeof body, 40340000 + i, 6103001, 8820001, 1662013000 + i);
        used += snprintf(insert + used, sizeof insert - (size_t)used, "%s'%s'", i ? ", " : "", body);
    }
    snprintf(insert + used, sizeof insert - (size_t)used, "]) WITH ORDINALITY AS t(b, n) ORDER BY n");
    PGresult *r = PQexec(held, insert);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(held));
    PQclear(r);
    th_release_ingest(held);
    wait_applied();
    const char *per_tx = "SELECT %s FROM (SELECT count(*) AS n FROM inbox WHERE account_id = %lld AND source = 'amocrm'"
                         " AND state = 'applied' GROUP BY xmin::text) t";
    char sql[512];
    snprintf(sql, sizeof sql, per_tx, "coalesce(sum(n), 0)", (long long)acct.id);
    cr_assert_eq(th_sql_int("%s", sql), 60);
    snprintf(sql, sizeof sql, per_tx, "coalesce(max(n), 0)", (long long)acct.id);
    cr_assert_eq(th_sql_int("%s", sql), 25, "the largest transaction applied %lld bodies", th_sql_int("%s", sql));
}

/* Bodies that end differently, applied together (the applier takes up to 25 of an account in one transaction):
 * each gets its own state, and the applied ones their time. */
Test(webhooks, good_malformed_and_unused_bodies_applied_together_each_end_in_their_own_state)
{
    post_ok(LEADS_ADD);
    post_ok("leads%5Badd%5D%5B0%5D%5Bid%5D=%ZZ40310009&account%5Bsubdomain%5D=acme");
    post_ok("contacts%5Badd%5D%5B0%5D%5Bid%5D=5500001&account%5Bsubdomain%5D=acme");
    post_ok(TWO_LEADS_TWO_ACTIONS);
    wait_applied();
    cr_assert_eq(webhook_count("applied"), 2);
    cr_assert_eq(webhook_count("failed"), 1);
    cr_assert_eq(webhook_count("ignored"), 1);
    cr_assert_eq(webhook_count(NULL), 4);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND source = 'amocrm'"
                            " AND state = 'applied' AND applied_at IS NOT NULL", (long long)acct.id), 2);
    json_t *deals = th_get_json(acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert_geq(items_size(deals), 2, "the two good bodies' leads");
    json_decref(deals);
}

Test(webhooks, bodies_of_unused_entities_are_ignored)
{
    const char *unused[] = {
        /* contacts only */
        "contacts%5Badd%5D%5B0%5D%5Bid%5D=5500001&contacts%5Badd%5D%5B0%5D%5Bname%5D=%D0%98%D0%B2%D0%B0%D0%BD"
        "&contacts%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=8800001&contacts%5Badd%5D%5B0%5D%5Blast_modified%"
        "5D="
        "1662012000&account%5Bsubdomain%5D=acme&account%5Bid%5D=29085511",
        /* a company (under contacts) */
        "contacts%5Bupdate%5D%5B0%5D%5Bid%5D=5500002&contacts%5Bupdate%5D%5B0%5D%5Btype%5D=company"
        "&contacts%5Bupdate%5D%5B0%5D%5Bname%5D=ACME&account%5Bsubdomain%5D=acme",
        /* a task on a contact */
        "task%5Badd%5D%5B0%5D%5Bid%5D=7700009&task%5Badd%5D%5B0%5D%5Belement_id%5D=5500001"
        "&task%5Badd%5D%5B0%5D%5Belement_type%5D=1&task%5Badd%5D%5B0%5D%5Btask_type%5D=1"
        "&task%5Badd%5D%5B0%5D%5Btext%5D=x&task%5Badd%5D%5B0%5D%5Bstatus%5D=0"
        "&task%5Badd%5D%5B0%5D%5Bresponsible_user_id%5D=8800002&task%5Badd%5D%5B0%5D%5Bcomplete_before%5D="
        "1662098400&task%5Badd%5D%5B0%5D%5Bcreated_at%5D=1662060000&account%5Bsubdomain%5D=acme",
        /* unsorted */
        "unsorted%5Badd%5D%5B0%5D%5Buid%5D=abc&unsorted%5Badd%5D%5B0%5D%5Bcategory%5D=forms"
        "&account%5Bsubdomain%5D=acme",
    };
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++)
        post_ok(unused[i]);
    wait_applied();
    cr_assert_eq(webhook_count("ignored"), 4);
    cr_assert_eq(webhook_count(NULL), 4);
    json_t *tasks = th_get_json(acct.admin_key, "/api/v1/tasks?limit=500");
    cr_assert_eq(items_size(tasks), 0);
    json_decref(tasks);
    json_t *deals = th_get_json(acct.admin_key, "/api/v1/deals?limit=500");
    cr_assert_eq(items_size(deals), 0);
    json_decref(deals);
}

/* Connects an amoCRM integration for subdomain (there is no API for it yet: a row in the database). */
static void connect_integration(int64_t account_id, const char *subdomain)
{
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)account_id);
    const char *params[] = {id, subdomain};
    PGresult *r =
        PQexecParams(c,
                     "INSERT INTO amocrm_integrations (account_id, subdomain, base_url, access_token)"
                     " VALUES ($1, $2, 'http://127.0.0.1:1', 'x')",
                     2, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* body with "account[subdomain]=acme" replaced by sub (the caller frees). */
static char *with_subdomain(const char *body, const char *sub)
{
    static const char key[] = "account%5Bsubdomain%5D=acme";
    const char *at = strstr(body, key);
    cr_assert(at != NULL);
    size_t head = (size_t)(at - body) + sizeof key - 1 - 4;
    const char *tail = at + sizeof key - 1;
    size_t len = head + strlen(sub) + strlen(tail);
    char *s = malloc(len + 1);
    memcpy(s, body, head);
    strcpy(s + head, sub);
    strcat(s, tail);
    return s;
}

Test(webhooks, another_subdomain_than_the_connected_one_is_403_and_nothing_is_stored)
{
    connect_integration(acct.id, "acme");
    char *other = with_subdomain(LEADS_ADD, "other");
    struct th_resp r = post_to(acct.webhook_token, other, FORM);
    cr_assert_eq(r.status, 403, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "forbidden");
    th_resp_free(&r);
    free(other);
    cr_assert_eq(th_count_rows("inbox", acct.id), 0, "nothing stored");

    post_ok(LEADS_ADD); /* acme */
    wait_applied();
    cr_assert_eq(webhook_count(NULL), 1);
    cr_assert_eq(status_of("/api/v1/deals/ext:40310001"), 200);

    /* a body without account[subdomain] (a digital-pipeline webhook may carry only account[id]) passes */
    post_ok("leads%5Bstatus%5D%5B0%5D%5Bid%5D=40310001&leads%5Bstatus%5D%5B0%5D%5Bstatus_id%5D=55012002"
            "&leads%5Bstatus%5D%5B0%5D%5Bpipeline_id%5D=6101001&leads%5Bstatus%5D%5B0%5D%5Bold_status_id%5D="
            "55012001&account%5Bid%5D=29085511");
    wait_applied();
    cr_assert_eq(webhook_count(NULL), 2);

    /* an account without an integration takes any subdomain */
    struct th_account free_acct;
    th_account_new(&free_acct);
    other = with_subdomain(LEADS_ADD, "other");
    r = post_to(free_acct.webhook_token, other, FORM);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    free(other);
}

/* Eight copies of one body arriving at the same moment: amoCRM retries, or two deliveries crossing. */
static void *post_concurrently(void *body)
{
    struct th_resp r = post_to(acct.webhook_token, body, FORM);
    long status = r.status;
    th_resp_free(&r);
    return (void *)(intptr_t)status;
}

Test(webhooks, identical_bodies_arriving_together_are_stored_once)
{
    pthread_t threads[8];
    for (int i = 0; i < 8; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, post_concurrently, (void *)LEADS_RESPONSIBLE), 0);
    for (int i = 0; i < 8; i++) {
        void *status;
        pthread_join(threads[i], &status);
        cr_assert_eq((intptr_t)status, 200, "every copy is answered 200");
    }
    cr_assert_eq(webhook_count(NULL), 1, "one copy is stored, the others are answered as duplicates");
}

/* Many bodies at once are stored in batches (src/store/receipt.c): each must still get its own answer and
 * its own row. Pairs of threads post the same 30 bodies (each body twice, at about the same moment) among
 * posts with an unknown token and posts that are not forms; the bodies carry '"' and '\', which the batch's
 * array literal must escape. */
#define BATCH_PAIRS  6
#define BATCH_BODIES 30

struct batch_poster {
    int pair;
    const char *token, *content_type;
    long status[BATCH_BODIES];
    char answer[BATCH_BODIES][32]; /* "accepted", "duplicate" or the error code */
    int64_t inbox_id[BATCH_BODIES];
};

static void batch_body(char *out, size_t size, int pair, int i)
{
    snprintf(out, size, "contacts%%5Badd%%5D%%5B0%%5D%%5Bid%%5D=%d&q=\"quoted\\%d\"\\\\", pair * 1000 + i, i);
}

static void *post_batch_bodies(void *arg)
{
    struct batch_poster *p = arg;
    for (int i = 0; i < BATCH_BODIES; i++) {
        char body[256];
        batch_body(body, sizeof body, p->pair, i);
        struct th_resp r = post_to(p->token, body, p->content_type);
        p->status[i] = r.status;
        const char *answer = r.status == 200 ? th_str(&r, "status") : th_code(&r);
        snprintf(p->answer[i], sizeof p->answer[i], "%s", answer ? answer : "?");
        p->inbox_id[i] = r.status == 200 && answer && strcmp(answer, "accepted") == 0 ? th_int(&r, "inbox_id") : 0;
        th_resp_free(&r);
    }
    return NULL;
}

Test(webhooks, bodies_stored_together_each_get_their_own_answer_and_row, .timeout = 120)
{
    enum { POSTERS = 2 * BATCH_PAIRS + 2 };
    struct batch_poster posters[POSTERS] = {0};
    pthread_t threads[POSTERS];
    for (int t = 0; t < POSTERS; t++) {
        posters[t].pair = t / 2;
        posters[t].token = t == 2 * BATCH_PAIRS ? "no-such-token-of-any-account" : acct.webhook_token;
        posters[t].content_type = t == 2 * BATCH_PAIRS + 1 ? "text/plain" : FORM;
        cr_assert_eq(pthread_create(&threads[t], NULL, post_batch_bodies, &posters[t]), 0);
    }
    for (int t = 0; t < POSTERS; t++)
        pthread_join(threads[t], NULL);

    for (int pair = 0; pair < BATCH_PAIRS; pair++)
        for (int i = 0; i < BATCH_BODIES; i++) {
            struct batch_poster *a = &posters[2 * pair], *b = &posters[2 * pair + 1];
            cr_assert(a->status[i] == 200 && b->status[i] == 200, "pair %d body %d: %ld %ld", pair, i, a->status[i],
                      b->status[i]);
            bool a_won = strcmp(a->answer[i], "accepted") == 0;
            struct batch_poster *won = a_won ? a : b, *lost = a_won ? b : a;
            cr_assert_str_eq(won->answer[i], "accepted", "pair %d body %d: neither copy accepted", pair, i);
            cr_assert_str_eq(lost->answer[i], "duplicate", "pair %d body %d: both copies accepted", pair, i);
            char body[256];
            batch_body(body, sizeof body, pair, i);
            cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE id = %lld AND account_id = %lld AND body = $b$%s$b$"
                                    " AND body_hash = sha256(convert_to($b$%s$b$, 'UTF8'))",
                                    (long long)won->inbox_id[i], (long long)acct.id, body, body),
                         1, "inbox row %lld is not pair %d body %d: %s", (long long)won->inbox_id[i], pair, i, body);
        }
    for (int i = 0; i < BATCH_BODIES; i++) {
        cr_assert_eq(posters[2 * BATCH_PAIRS].status[i], 401, "unknown token: %s",
                     posters[2 * BATCH_PAIRS].answer[i]);
        cr_assert_eq(posters[2 * BATCH_PAIRS + 1].status[i], 415, "not a form: %s",
                     posters[2 * BATCH_PAIRS + 1].answer[i]);
    }
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE account_id = %lld AND source = 'amocrm'",
                            (long long)acct.id),
                 BATCH_PAIRS * BATCH_BODIES, "one row per distinct body");
}

/* amoCRM percent-encodes everything but ASCII; a body with raw bytes that are not UTF-8 is still stored and
 * answered 200 (API.md: even a malformed body), with those bytes percent-encoded, and fails in the inbox. */
Test(webhooks, a_body_that_is_not_utf8_is_stored_escaped_and_fails_in_the_inbox)
{
    static const char bad[] = "leads%5Badd%5D%5B0%5D%5Bid%5D=1&leads%5Badd%5D%5B0%5D%5Bname%5D=\xff\xfe\xc3\x28\xd0\x97";
    struct th_resp r = post_to("no-such-token-of-any-account", bad, FORM);
    cr_assert_eq(r.status, 401, "an unknown token is still told: %s", r.body);
    th_resp_free(&r);
    r = post_to(acct.webhook_token, bad, FORM);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "status"), "accepted");
    int64_t id = th_int(&r, "inbox_id");
    th_resp_free(&r);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM inbox WHERE id = %lld AND body = "
                            "'leads%%5Badd%%5D%%5B0%%5D%%5Bid%%5D=1&leads%%5Badd%%5D%%5B0%%5D%%5Bname%%5D="
                            "%%FF%%FE%%C3(%%D0%%97'",
                            (long long)id),
                 1, "the body is kept with its bytes outside ASCII percent-encoded");
    r = post_to(acct.webhook_token, bad, FORM);
    cr_assert_str_eq(th_str(&r, "status"), "duplicate", "the raw body is what is deduplicated: %s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_wait_sql_int(1, 10000, "SELECT count(*) FROM inbox WHERE id = %lld AND state = 'failed'"
                                           " AND error ILIKE '%%UTF-8%%'",
                                 (long long)id),
                 1, "the body fails in the inbox, as one that cannot be decoded");
}

/* The scheduler analyzes a table once it has changed by more rows than it had at its last ANALYZE (and by over
 * 1,000): after a burst into tables analyzed nearly empty, the apply path's cached plans were 5 times slower
 * until autovacuum came (migrations/0016). Two tables of this test's own, with autovacuum off: one grows past
 * the threshold and is analyzed within a few scheduler passes; the other stays under it and is not. */
Test(webhooks, tables_that_outgrow_their_statistics_are_analyzed)
{
    char big[64], small[64];
    snprintf(big, sizeof big, "stats_probe_big_%lld", (long long)acct.id);
    snprintf(small, sizeof small, "stats_probe_small_%lld", (long long)acct.id);
    const char *tables[] = {big, small};
    for (int i = 0; i < 2; i++) {
        th_sql_int("CREATE TABLE %s (x int) WITH (autovacuum_enabled = false)", tables[i]);
        th_sql_int("ANALYZE %s", tables[i]);
    }
    th_sql_int("INSERT INTO %s SELECT generate_series(1, 5000)", big);
    th_sql_int("INSERT INTO %s SELECT generate_series(1, 900)", small);
    int64_t analyzed = th_wait_sql_int(5000, (SCHED_ANALYZE_EVERY_S * 3 + 5) * 1000,
                                       "SELECT reltuples::int8 FROM pg_class WHERE oid = '%s'::regclass", big);
    cr_assert_eq(analyzed, 5000, "the table that grew from 0 to 5,000 rows was not analyzed (reltuples %lld)",
                 (long long)analyzed);
    cr_assert_eq(th_sql_int("SELECT reltuples::int8 FROM pg_class WHERE oid = '%s'::regclass", small), 0,
                 "900 changed rows are under the threshold: no ANALYZE");
    for (int i = 0; i < 2; i++)
        th_sql_int("DROP TABLE %s", tables[i]);
}

/* Shared buffers an EXPLAIN ANALYZE of the query touched (its own connection and transaction), the least of three
 * runs; and its plan (EXPLAIN, one line per node, into plan). */
static int64_t buffers_of(const char *query, char *plan, size_t plan_len)
{
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK);
    char sql[2048];
    snprintf(sql, sizeof sql, "EXPLAIN %s", query);
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    size_t used = 0;
    plan[0] = '\0';
    for (int i = 0; i < PQntuples(r) && used < plan_len; i++)
        used += (size_t)snprintf(plan + used, plan_len - used, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    snprintf(sql, sizeof sql,
             "CREATE FUNCTION pg_temp.buffers(q text) RETURNS bigint LANGUAGE plpgsql AS $f$"
             " DECLARE j json; n bigint; least_n bigint; BEGIN FOR i IN 1..3 LOOP"
             " EXECUTE 'EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ' || q INTO j;"
             " n := (j->0->'Plan'->>'Shared Hit Blocks')::bigint + (j->0->'Plan'->>'Shared Read Blocks')::bigint;"
             " least_n := least(least_n, n); END LOOP; RETURN least_n;"
             " END $f$; SELECT pg_temp.buffers($q$%s$q$)",
             query);
    r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return n;
}

/* After a quiet hour the last ANALYZE of inbox saw no pending body; then a burst arrives. The appliers' claims
 * and the wake-up lookup after each created deal must stay index lookups (they once scanned the whole backlog,
 * 0.3 s a lookup, until autovacuum analyzed the table: see migrations/0015). The statements are the store's
 * (src/store/inbox.c). */
Test(webhooks, a_burst_after_a_quiet_analyze_keeps_claims_and_wake_ups_index_lookups, .timeout = 120)
{
    /* nothing analyzes inbox during the test but the test: the scheduler's ANALYZE of grown tables (of every
     * server of the suite) waits for its lock, held here, and autovacuum is off for the table meanwhile */
    PGconn *guard = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(guard) == CONNECTION_OK);
    PGresult *g = PQexec(guard, "SELECT pg_advisory_lock(1263553603)");
    cr_assert(PQresultStatus(g) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(g));
    PQclear(g);
    th_sql_int("ALTER TABLE inbox SET (autovacuum_enabled = off); SELECT 1");
    /* an account with a history: 200,000 bodies applied */
    cr_assert_eq(th_sql_int("WITH i AS (INSERT INTO inbox (account_id, source, body, state, applied_at)"
                            " SELECT %lld, 'amocrm', 'leads%%5Bupdate%%5D%%5B0%%5D%%5Bid%%5D=' || g, 'applied', now()"
                            " FROM generate_series(1, 200000) g RETURNING 1) SELECT count(*) FROM i",
                            (long long)acct.id), 200000);
    PGconn *c = PQconnectdb(th_database(TEST_SUITE));
    cr_assert(PQstatus(c) == CONNECTION_OK);
    PGresult *r = PQexec(c, "ANALYZE inbox");
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    /* due in an hour, so that the appliers of this test's server leave them alone */
    cr_assert_eq(th_sql_int("WITH i AS (INSERT INTO inbox (account_id, source, body, state, next_attempt_at)"
                            " SELECT %lld, 'amocrm', 'leads%%5Badd%%5D%%5B0%%5D%%5Bid%%5D=' || g, 'pending',"
                            " now() + interval '1 hour' FROM generate_series(1, 30000) g RETURNING 1)"
                            " SELECT count(*) FROM i", (long long)acct.id), 30000);
    char q[512], any_plan[2048], of_plan[2048], lag_plan[2048], wake_plan[2048];
    int64_t any = buffers_of("SELECT id FROM inbox WHERE state = 'pending' AND source = 'amocrm'"
                             " AND next_attempt_at <= now() AND next_attempt_at > '-infinity'"
                             " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED", any_plan, sizeof any_plan);
    snprintf(q, sizeof q, "SELECT id FROM inbox WHERE state = 'pending' AND source = 'amocrm' AND account_id = %lld"
             " AND next_attempt_at <= now() AND id <> 0 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
             (long long)acct.id);
    int64_t of = buffers_of(q, of_plan, sizeof of_plan);
    /* the receipt's flow control reads the appliers' lag (src/store/receipt.c) */
    int64_t lag = buffers_of("SELECT coalesce((SELECT (extract(epoch FROM now() - next_attempt_at) * 1000)::int8"
                             " FROM inbox WHERE state = 'pending' AND source = 'amocrm' AND next_attempt_at <= now()"
                             " AND next_attempt_at > '-infinity' ORDER BY next_attempt_at, id LIMIT 1), 0)",
                             lag_plan, sizeof lag_plan);
    snprintf(q, sizeof q, "SELECT id FROM inbox WHERE account_id = %lld AND state = 'waiting'"
             " AND waits_for_kind = 'deal' AND waits_for_ext = '424242' ORDER BY event_at, id FOR UPDATE SKIP LOCKED",
             (long long)acct.id);
    int64_t wake = buffers_of(q, wake_plan, sizeof wake_plan);
    th_sql_int("WITH d AS (DELETE FROM inbox WHERE account_id = %lld AND state = 'pending' RETURNING 1)"
               " SELECT count(*) FROM d", (long long)acct.id);
    th_sql_int("ALTER TABLE inbox RESET (autovacuum_enabled); SELECT 1");
    PQfinish(guard);
    /* each is a lookup in the partial index made for it, which touches a handful of pages; a scan of the 30,000
     * bodies touches hundreds. The claim of any account and the lag start at the head of the due bodies of every
     * account, where the suite's other tests leave fresh dead entries: more pages, never hundreds. */
    cr_assert(strstr(any_plan, "using inbox_webhooks_due on inbox") != NULL, "%s", any_plan);
    cr_assert(strstr(of_plan, "using inbox_webhooks_due_of on inbox") != NULL, "%s", of_plan);
    cr_assert(strstr(lag_plan, "using inbox_webhooks_due on inbox") != NULL, "%s", lag_plan);
    cr_assert(strstr(wake_plan, "using inbox_waiting_for on inbox") != NULL, "%s", wake_plan);
    cr_assert_lt(any, 150, "claim of any account: %lld buffers\n%s", (long long)any, any_plan);
    cr_assert_lt(of, 60, "claim of one account: %lld buffers\n%s", (long long)of, of_plan);
    cr_assert_lt(lag, 150, "the appliers' lag: %lld buffers\n%s", (long long)lag, lag_plan);
    cr_assert_lt(wake, 60, "wake-up lookup: %lld buffers\n%s", (long long)wake, wake_plan);
}

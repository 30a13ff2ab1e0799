/* Rejection control over HTTP: the settings and their validation, roles; which losses get a review (REST,
 * events, amoCRM webhooks, created lost; reasons, "any", disabled, sampling, losses before enabling), exactly
 * one review per move into lost (same batch twice, repeated stage change, same webhook body twice, a deal
 * returned and lost again); the review's task; the decisions (return with its reopening, responsible, note
 * and follow-up task; confirm; their refusals); the task refusing REST completion; the stats (counts,
 * return share, recovered deals and revenue, median decision time, by manager, periods); and the scheduler's
 * sweep that makes the review of a judged loss that lacks one. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(rejection, .init = setup, .fini = th_server_stop);

#define V1       "/api/v1"
#define SETTINGS V1 "/rejection-control/settings"
#define REVIEWS  V1 "/rejection-control/reviews"
#define STATS    V1 "/rejection-control/stats"
#define LL(x)    ((long long)(x))
#define FORM     "application/x-www-form-urlencoded"
#define MSK      (3 * 3600) /* Europe/Moscow: UTC+3 all year */

/* ---- helpers ---- */

/* Waits until the wall clock has just entered a new second (so that a few quick requests share one). */
static void wait_new_second(void)
{
    time_t t0 = time(NULL);
    while (time(NULL) == t0)
        th_sleep_ms(5);
}

/* A JSON number (integer or real) equal to want. */
static void assert_number(json_t *o, const char *field, double want)
{
    json_t *v = json_object_get(o, field);
    cr_assert(json_is_number(v), "%s is not a number in %s", field, th_dump(o));
    cr_assert(json_number_value(v) == want, "%s: expected %.6f, got %.17g in %s", field, want,
              json_number_value(v), th_dump(o));
}

/* PUT the settings with the admin key, asserting 200; the reply's JSON (the caller decrefs). */
static json_t *put_settings(const char *body_fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *put_settings(const char *body_fmt, ...)
{
    char body[1024];
    TH_VFORMAT(body, body_fmt);
    struct th_resp r = th_put(w.acct.admin_key, SETTINGS, "%s", body);
    cr_assert_eq(r.status, 200, "settings %s: %s", body, r.body);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    return j;
}

/* Enables the rule for the given reasons (JSON: a list or "any") with the head as reviewer and due_hours. */
static void enable(const char *reasons, int due_hours)
{
    json_decref(put_settings("{\"enabled\":true,\"loss_reason_ids\":%s,\"reviewer_id\":%lld,\"due_hours\":%d}",
                             reasons, LL(w.head), due_hours));
}

static void enable_reason(int due_hours)
{
    char reasons[64];
    snprintf(reasons, sizeof reasons, "[%lld]", LL(w.loss_reason));
    enable(reasons, due_hours);
}

/* A deal created by REST in the main pipeline. */
static int64_t create_deal(const char *name, int64_t stage_id, int64_t manager_id, int64_t price)
{
    struct th_resp r = th_post(w.acct.admin_key, V1 "/deals",
                               "{\"name\":\"%s\",\"price\":%lld,\"pipeline_id\":%lld,\"stage_id\":%lld,"
                               "\"manager_id\":%lld}",
                               name, LL(price), LL(w.pipeline_id), LL(stage_id), LL(manager_id));
    cr_assert_eq(r.status, 201, "deal: %s", r.body);
    cr_assert_eq(th_int(&r, "stage_id"), stage_id, "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), manager_id, "%s", r.body);
    int64_t id = th_int(&r, "id");
    th_resp_free(&r);
    return id;
}

/* POST /deals/{id}/close lost (reason 0: none); returns the loss time (the reply's closed_at). */
static int64_t lose(int64_t deal, int64_t reason)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld/close", LL(deal));
    struct th_resp r = reason ? th_post(w.acct.admin_key, path, "{\"outcome\":\"lost\",\"loss_reason_id\":%lld}",
                                        LL(reason))
                              : th_post(w.acct.admin_key, path, "{\"outcome\":\"lost\"}");
    cr_assert_eq(r.status, 200, "close lost %lld: %s", LL(deal), r.body);
    cr_assert_str_eq(th_str(&r, "status"), "lost", "%s", r.body);
    int64_t at = th_parse_time(th_str(&r, "closed_at"));
    th_resp_free(&r);
    return at;
}

static void win(int64_t deal)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld/close", LL(deal));
    struct th_resp r = th_post(w.acct.admin_key, path, "{\"outcome\":\"won\"}");
    cr_assert_eq(r.status, 200, "close won %lld: %s", LL(deal), r.body);
    cr_assert_str_eq(th_str(&r, "status"), "won", "%s", r.body);
    th_resp_free(&r);
}

static void reopen(int64_t deal, int64_t stage)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld/reopen", LL(deal));
    struct th_resp r = th_post(w.acct.admin_key, path, "{\"stage_id\":%lld}", LL(stage));
    cr_assert_eq(r.status, 200, "reopen %lld: %s", LL(deal), r.body);
    th_resp_free(&r);
}

static void set_price(int64_t deal, int64_t price)
{
    char path[96];
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(deal));
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"price\":%lld}", LL(price));
    cr_assert_eq(r.status, 200, "patch price %lld: %s", LL(deal), r.body);
    th_resp_free(&r);
}

/* Reviews of a deal in the database (the table, whatever the API shows). */
static int64_t db_reviews(int64_t deal)
{
    return th_sql_int("SELECT count(*) FROM rejection_reviews WHERE account_id = %lld AND deal_id = %lld",
                      LL(w.acct.id), LL(deal));
}

static int64_t db_losses(int64_t deal)
{
    return th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id = %lld",
                      LL(w.acct.id), LL(deal));
}

static int64_t db_account_reviews(void)
{
    return th_count_rows("rejection_reviews", w.acct.id);
}

static int64_t db_control_tasks(int64_t deal)
{
    return th_sql_int("SELECT count(*) FROM tasks WHERE account_id = %lld AND deal_id = %lld"
                      " AND type = 'rejection_control'",
                      LL(w.acct.id), LL(deal));
}

/* Every review of the account by GET /rejection-control/reviews (query: "" or "&state=..."); caller decrefs. */
static json_t *list_reviews(const char *query)
{
    json_t *page = th_get_json(w.acct.admin_key, REVIEWS "?limit=500%s", query);
    json_t *items = json_incref(json_object_get(page, "items"));
    cr_assert(json_is_array(items), "no items: %s", th_dump(page));
    json_decref(page);
    return items;
}

/* The reviews of one deal as the API lists them, in id order (caller decrefs). */
static json_t *reviews_of(int64_t deal)
{
    json_t *all = list_reviews("");
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v)
    {
        if (th_jint(v, "deal_id") == deal) json_array_append(out, v);
    }
    json_decref(all);
    return out;
}

/* The one review of a deal (asserts there is exactly one); caller decrefs. */
static json_t *the_review(int64_t deal)
{
    json_t *list = reviews_of(deal);
    cr_assert_eq(json_array_size(list), 1, "deal %lld: expected exactly one review, got %s", LL(deal),
                 th_dump(list));
    json_t *v = json_incref(json_array_get(list, 0));
    json_decref(list);
    cr_assert_eq(db_reviews(deal), 1, "deal %lld: one review in the table", LL(deal));
    return v;
}

static json_t *get_task(int64_t id)
{
    return th_get_json(w.acct.admin_key, V1 "/tasks/%lld", LL(id));
}

static json_t *get_deal(int64_t id)
{
    return th_get_json(w.acct.admin_key, V1 "/deals/%lld", LL(id));
}

static json_t *get_review(int64_t id)
{
    return th_get_json(w.acct.admin_key, REVIEWS "/%lld", LL(id));
}

static struct th_resp decide(const char *key, int64_t review, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct th_resp decide(const char *key, int64_t review, const char *body_fmt, ...)
{
    char path[128], body[2048];
    snprintf(path, sizeof path, REVIEWS "/%lld/decision", LL(review));
    TH_VFORMAT(body, body_fmt);
    return th_request("POST", path, key, body, NULL, NULL);
}

/* Checks a review that was just made for a loss, and its task for the head. */
static void assert_new_review(json_t *v, int64_t deal, int64_t lost_by, int64_t reason, int64_t lost_at,
                              int due_hours, const char *deal_name)
{
    char want[32];
    cr_assert_eq(th_jint(v, "deal_id"), deal, "%s", th_dump(v));
    if (lost_by)
        cr_assert_eq(th_jint(v, "lost_by_manager_id"), lost_by, "lost_by_manager_id: %s", th_dump(v));
    else
        cr_assert(th_jnull(v, "lost_by_manager_id"), "lost_by_manager_id: %s", th_dump(v));
    if (reason)
        cr_assert_eq(th_jint(v, "loss_reason_id"), reason, "loss_reason_id: %s", th_dump(v));
    else
        cr_assert(th_jnull(v, "loss_reason_id"), "loss_reason_id: %s", th_dump(v));
    th_format_time(lost_at, want);
    cr_assert_str_eq(th_jstr(v, "lost_at"), want, "lost_at: %s", th_dump(v));
    cr_assert_str_eq(th_jstr(v, "state"), "pending", "%s", th_dump(v));
    cr_assert(th_jnull(v, "decided_at"), "%s", th_dump(v));
    cr_assert(th_jnull(v, "note"), "%s", th_dump(v));
    cr_assert(th_jnull(v, "returned_to_manager_id"), "%s", th_dump(v));
    cr_assert(th_jnull(v, "follow_up_task_id"), "%s", th_dump(v));
    cr_assert(th_jstr(v, "created_at") != NULL, "%s", th_dump(v));
    int64_t id = th_jint(v, "id");
    /* GET /reviews/{id} says the same */
    json_t *one = get_review(id);
    cr_assert(json_equal(one, v), "GET review %lld: %s vs the list's %s", LL(id), th_dump(one),
              json_dumps(v, 0));
    json_decref(one);

    json_t *t = get_task(th_jint(v, "task_id"));
    cr_assert_eq(th_jint(t, "deal_id"), deal, "%s", th_dump(t));
    cr_assert_eq(th_jint(t, "manager_id"), w.head, "the task is the reviewer's: %s", th_dump(t));
    cr_assert_str_eq(th_jstr(t, "type"), "rejection_control", "%s", th_dump(t));
    th_format_time(lost_at + (int64_t)due_hours * 3600, want);
    cr_assert_str_eq(th_jstr(t, "due_at"), want, "due at lost_at + %d h: %s", due_hours, th_dump(t));
    if (deal_name) {
        char text[256];
        snprintf(text, sizeof text, "Контроль отказа: проверить сделку «%s»", deal_name);
        cr_assert_str_eq(th_jstr(t, "text"), text, "%s", th_dump(t));
    }
    cr_assert(th_jnull(t, "completed_at"), "%s", th_dump(t));
    json_decref(t);
    cr_assert_eq(db_control_tasks(deal) >= 1, true);
}

/* Posts events (a JSON array) with the admin key and checks the counts. */
static void send_events(int accepted, int duplicates, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_events(int accepted, int duplicates, const char *body_fmt, ...)
{
    char body[8192];
    TH_VFORMAT(body, body_fmt);
    struct th_resp r = th_post_events(w.acct.admin_key, body);
    cr_assert_eq(th_int(&r, "accepted"), accepted, "accepted: %s", r.body);
    cr_assert_eq(th_int(&r, "duplicates"), duplicates, "duplicates: %s", r.body);
    th_resp_free(&r);
}

/* ---- amoCRM webhooks ---- */

static struct th_resp post_webhook(const char *body)
{
    return th_post_webhook(w.acct.webhook_token, body, NULL);
}

/* A leads[add] body: lead in amoCRM pipeline 6101001, stage 55012001, responsible 8800001, at t. */
static void lead_add_body(char *out, size_t len, int lead, int64_t t)
{
    th_lead_add_body(out, len, lead, 6101001, 8800001, t);
}

/* A leads[status] body: lead moves to 143 (lost) at t. */
static void lead_lost_body(char *out, size_t len, int lead, int64_t t)
{
    snprintf(out, len,
             "leads%%5Bstatus%%5D%%5B0%%5D%%5Bid%%5D=%d&leads%%5Bstatus%%5D%%5B0%%5D%%5Bstatus_id%%5D=143"
             "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bpipeline_id%%5D=6101001"
             "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bold_status_id%%5D=55012001"
             "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bresponsible_user_id%%5D=8800001"
             "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bmodified_user_id%%5D=8800001"
             "&leads%%5Bstatus%%5D%%5B0%%5D%%5Bupdated_at%%5D=%lld&account%%5Bsubdomain%%5D=acme",
             lead, LL(t));
}

/* ================================================================================================ settings */

Test(rejection, settings_default_when_never_set)
{
    json_t *s = th_get_json(w.acct.admin_key, SETTINGS);
    cr_assert(json_is_false(json_object_get(s, "enabled")), "%s", th_dump(s));
    json_t *reasons = json_object_get(s, "loss_reason_ids");
    cr_assert(json_is_array(reasons) && json_array_size(reasons) == 0, "%s", th_dump(s));
    cr_assert(th_jnull(s, "reviewer_id"), "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "due_hours"), 24, "%s", th_dump(s));
    assert_number(s, "target_return_share", 0.1);
    assert_number(s, "sample_share", 1);
    cr_assert(th_jnull(s, "enabled_since"), "%s", th_dump(s));
    json_decref(s);
    cr_assert_eq(th_count_rows("rejection_rules", w.acct.id), 0, "a GET stores nothing");
}

Test(rejection, settings_round_trip_and_put_replaces)
{
    int64_t r2 = th_loss_reason_new(w.acct.admin_key, "Нет бюджета", NULL);
    int64_t before = (int64_t)time(NULL);
    json_t *s = put_settings("{\"enabled\":true,\"loss_reason_ids\":[%lld,%lld],\"reviewer_id\":%lld,"
                             "\"due_hours\":48,\"target_return_share\":0.15,\"sample_share\":0.5}",
                             LL(w.loss_reason), LL(r2), LL(w.head));
    int64_t after = (int64_t)time(NULL);
    cr_assert(json_is_true(json_object_get(s, "enabled")), "%s", th_dump(s));
    json_t *reasons = json_object_get(s, "loss_reason_ids");
    cr_assert_eq(json_array_size(reasons), 2, "%s", th_dump(s));
    cr_assert_eq(json_integer_value(json_array_get(reasons, 0)), w.loss_reason, "%s", th_dump(s));
    cr_assert_eq(json_integer_value(json_array_get(reasons, 1)), r2, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "reviewer_id"), w.head, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "due_hours"), 48, "%s", th_dump(s));
    assert_number(s, "target_return_share", 0.15);
    assert_number(s, "sample_share", 0.5);
    int64_t since = th_parse_time(th_jstr(s, "enabled_since"));
    cr_assert(since >= before && since <= after, "enabled_since %s not the time of the PUT",
              th_jstr(s, "enabled_since"));
    /* GET says the same as the PUT's reply */
    json_t *g = th_get_json(w.acct.admin_key, SETTINGS);
    cr_assert(json_equal(g, s), "GET %s vs PUT %s", th_dump(g), json_dumps(s, 0));
    json_decref(g);
    char since_text[32];
    snprintf(since_text, sizeof since_text, "%s", th_jstr(s, "enabled_since"));
    json_decref(s);

    /* a PUT replaces everything: what is absent is back to its default; still enabled, so enabled_since stays */
    th_sleep_ms(1100);
    s = put_settings("{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}", LL(w.head));
    cr_assert_str_eq(th_jstr(s, "loss_reason_ids"), "any", "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "reviewer_id"), w.head, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "due_hours"), 24, "%s", th_dump(s));
    assert_number(s, "target_return_share", 0.1);
    assert_number(s, "sample_share", 1);
    cr_assert_str_eq(th_jstr(s, "enabled_since"), since_text, "no switch from off to on: %s", th_dump(s));
    json_decref(s);

    s = put_settings("{\"enabled\":false}");
    cr_assert(json_is_false(json_object_get(s, "enabled")), "%s", th_dump(s));
    reasons = json_object_get(s, "loss_reason_ids");
    cr_assert(json_is_array(reasons) && json_array_size(reasons) == 0, "%s", th_dump(s));
    cr_assert(th_jnull(s, "reviewer_id"), "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "due_hours"), 24, "%s", th_dump(s));
    assert_number(s, "target_return_share", 0.1);
    assert_number(s, "sample_share", 1);
    cr_assert_str_eq(th_jstr(s, "enabled_since"), since_text, "the latest switch on is still that one: %s",
                     th_dump(s));
    json_decref(s);
    g = th_get_json(w.acct.admin_key, SETTINGS);
    cr_assert(json_is_false(json_object_get(g, "enabled")), "%s", th_dump(g));
    cr_assert(th_jnull(g, "reviewer_id"), "%s", th_dump(g));
    json_decref(g);

    /* a new switch from off to on moves enabled_since */
    before = (int64_t)time(NULL);
    s = put_settings("{\"enabled\":true,\"loss_reason_ids\":[],\"reviewer_id\":%lld,\"target_return_share\":0,"
                     "\"sample_share\":0.1234}",
                     LL(w.head));
    after = (int64_t)time(NULL);
    int64_t since2 = th_parse_time(th_jstr(s, "enabled_since"));
    cr_assert(since2 >= before && since2 <= after && since2 > since, "enabled_since after re-enabling: %s",
              th_dump(s));
    assert_number(s, "target_return_share", 0);
    assert_number(s, "sample_share", 0.1234);
    json_decref(s);
    cr_assert_eq(th_count_rows("rejection_rules", w.acct.id), 1);
}

Test(rejection, settings_validation)
{
    struct {
        const char *body;
        const char *field;
    } bad[] = {
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\"}", "reviewer_id"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":null}", "reviewer_id"},
        {"{\"enabled\":false,\"reviewer_id\":999999999}", "reviewer_id"},
        {"{\"enabled\":\"yes\",\"reviewer_id\":%1$lld}", "enabled"},
        {"{\"reviewer_id\":%1$lld}", "enabled"},
        {"{\"enabled\":true,\"loss_reason_ids\":[999999999],\"reviewer_id\":%1$lld}", "loss_reason_ids"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"all\",\"reviewer_id\":%1$lld}", "loss_reason_ids"},
        {"{\"enabled\":true,\"loss_reason_ids\":[\"x\"],\"reviewer_id\":%1$lld}", "loss_reason_ids"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"target_return_share\":1.5}",
         "target_return_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"target_return_share\":-0.1}",
         "target_return_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,"
         "\"target_return_share\":0.12345}",
         "target_return_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"target_return_share\":\"0.1\"}",
         "target_return_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"sample_share\":1.5}",
         "sample_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"sample_share\":-0.1}",
         "sample_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"sample_share\":0.12345}",
         "sample_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"sample_share\":\"0.1\"}",
         "sample_share"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"due_hours\":0}", "due_hours"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"due_hours\":721}", "due_hours"},
        {"{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%1$lld,\"colour\":\"red\"}", "colour"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, bad[i].body, LL(w.head));
        struct th_resp r = th_put(w.acct.admin_key, SETTINGS, "%s", body);
        th_expect_field_error(&r, bad[i].field, body);
        th_resp_free(&r);
    }
    /* the reviewer must be a head: a manager is refused even with the rule disabled */
    struct th_resp r = th_put(w.acct.admin_key, SETTINGS,
                              "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}", LL(w.manager1));
    th_expect_field_error(&r, "reviewer_id", "reviewer is a manager");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, SETTINGS, "{\"enabled\":false,\"reviewer_id\":%lld}", LL(w.manager1));
    th_expect_field_error(&r, "reviewer_id", "reviewer is a manager, rule disabled");
    th_resp_free(&r);
    /* a loss reason of another account is unknown here */
    struct th_world other;
    struct th_world mine = w;
    th_world_new(&other);
    w = mine;
    r = th_put(w.acct.admin_key, SETTINGS, "{\"enabled\":true,\"loss_reason_ids\":[%lld],\"reviewer_id\":%lld}",
               LL(other.loss_reason), LL(w.head));
    th_expect_field_error(&r, "loss_reason_ids", "another account's loss reason");
    th_resp_free(&r);
    r = th_put(w.acct.admin_key, SETTINGS, "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}",
               LL(other.head));
    th_expect_field_error(&r, "reviewer_id", "another account's head");
    th_resp_free(&r);
    /* the limits themselves are fine */
    json_decref(put_settings("{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld,\"due_hours\":1,"
                             "\"target_return_share\":1,\"sample_share\":0}",
                             LL(w.head)));
    json_t *s = put_settings("{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld,\"due_hours\":720,"
                             "\"target_return_share\":0.0001,\"sample_share\":0.9999}",
                             LL(w.head));
    cr_assert_eq(th_jint(s, "due_hours"), 720);
    assert_number(s, "target_return_share", 0.0001);
    assert_number(s, "sample_share", 0.9999);
    json_decref(s);
    /* nothing of the refused PUTs was stored */
    s = th_get_json(w.acct.admin_key, SETTINGS);
    cr_assert_eq(th_jint(s, "due_hours"), 720, "%s", th_dump(s));
    json_decref(s);
}

Test(rejection, manager_keys_are_403_readonly_only_reads_head_may_do_all)
{
    enable_reason(24);
    int64_t deal = create_deal("Роли", w.stages[0], w.manager1, 100);
    lose(deal, w.loss_reason);
    json_t *v = the_review(deal);
    int64_t review = th_jint(v, "id");
    json_decref(v);
    char path[128], decision[128];
    snprintf(path, sizeof path, REVIEWS "/%lld", LL(review));
    snprintf(decision, sizeof decision, REVIEWS "/%lld/decision", LL(review));
    const char *gets[] = {SETTINGS, REVIEWS, path, STATS};
    const char *mkeys[] = {w.manager1_key, w.manager2_key};
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < 4; i++) {
            struct th_resp r = th_get(mkeys[k], "%s", gets[i]);
            th_expect_status(&r, 403, "forbidden", gets[i]);
            th_resp_free(&r);
        }
        struct th_resp r = th_put(mkeys[k], SETTINGS, "{\"enabled\":false}");
        th_expect_status(&r, 403, "forbidden", "manager PUT settings");
        th_resp_free(&r);
        r = th_post(mkeys[k], decision, "{\"decision\":\"confirm\"}");
        th_expect_status(&r, 403, "forbidden", "manager decision");
        th_resp_free(&r);
    }
    for (size_t i = 0; i < 4; i++) {
        struct th_resp r = th_get(w.readonly_key, "%s", gets[i]);
        th_expect_status(&r, 200, NULL, gets[i]);
        th_resp_free(&r);
        r = th_get(w.head_key, "%s", gets[i]);
        th_expect_status(&r, 200, NULL, gets[i]);
        th_resp_free(&r);
    }
    struct th_resp r = th_put(w.readonly_key, SETTINGS, "{\"enabled\":false}");
    th_expect_status(&r, 403, "forbidden", "readonly PUT settings");
    th_resp_free(&r);
    r = th_post(w.readonly_key, decision, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 403, "forbidden", "readonly decision");
    th_resp_free(&r);
    /* nothing changed */
    v = get_review(review);
    cr_assert_str_eq(th_jstr(v, "state"), "pending");
    json_decref(v);
    json_t *s = th_get_json(w.acct.admin_key, SETTINGS);
    cr_assert(json_is_true(json_object_get(s, "enabled")), "%s", th_dump(s));
    json_decref(s);
    /* a head key may change the settings and decide */
    r = th_put(w.head_key, SETTINGS, "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}",
               LL(w.head));
    th_expect_status(&r, 200, NULL, "head PUT settings");
    th_resp_free(&r);
    r = th_post(w.head_key, decision, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 200, NULL, "head decision");
    cr_assert_str_eq(th_str(&r, "state"), "confirmed", "%s", r.body);
    th_resp_free(&r);
}

/* ============================================================================================ which losses */

Test(rejection, a_rest_loss_with_a_reason_in_the_rule_gets_one_review_and_a_task_for_the_head)
{
    enable_reason(5);
    int64_t deal = create_deal("Окна на дачу", w.stages[1], w.manager1, 120000);
    int64_t lost_at = lose(deal, w.loss_reason);
    json_t *v = the_review(deal);
    assert_new_review(v, deal, w.manager1, w.loss_reason, lost_at, 5, "Окна на дачу");
    cr_assert_eq(db_control_tasks(deal), 1);
    cr_assert_eq(db_losses(deal), 1);
    cr_assert_eq(db_account_reviews(), 1);
    /* the loss as judged */
    cr_assert_eq(th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id = %lld"
                            " AND qualifies AND sampled AND lost_by_manager_id = %lld AND loss_reason_id = %lld"
                            " AND from_stage_id = %lld AND lost_at = to_timestamp(%lld)",
                            LL(w.acct.id), LL(deal), LL(w.manager1), LL(w.loss_reason), LL(w.stages[1]),
                            LL(lost_at)),
                 1);
    /* the task is listed among the head's open tasks */
    json_t *t = get_task(th_jint(v, "task_id"));
    cr_assert_str_eq(th_jstr(t, "state"), "open", "%s", th_dump(t));
    json_decref(t);
    json_decref(v);
    /* the sweep adds nothing */
    th_sleep_ms(1200);
    cr_assert_eq(db_reviews(deal), 1);
    cr_assert_eq(db_control_tasks(deal), 1);
}

Test(rejection, the_responsible_at_the_loss_is_lost_by_not_a_later_one)
{
    enable_reason(24);
    int64_t deal = create_deal("Двери", w.stages[0], w.manager2, 500);
    int64_t lost_at = lose(deal, w.loss_reason);
    /* a later change of responsible does not move lost_by_manager_id */
    char path[64];
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(deal));
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", LL(w.manager1));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_t *v = the_review(deal);
    assert_new_review(v, deal, w.manager2, w.loss_reason, lost_at, 24, "Двери");
    json_decref(v);
}

Test(rejection, a_reason_outside_the_rule_and_a_loss_without_reason_get_no_review)
{
    enable_reason(24);
    int64_t other = th_loss_reason_new(w.acct.admin_key, "Ушёл к конкурентам", NULL);
    int64_t d1 = create_deal("Вне правила", w.stages[0], w.manager1, 100);
    int64_t d2 = create_deal("Без причины", w.stages[0], w.manager1, 100);
    lose(d1, other);
    lose(d2, 0);
    cr_assert_eq(db_reviews(d1), 0);
    cr_assert_eq(db_reviews(d2), 0);
    /* judged all the same, as not qualifying */
    cr_assert_eq(th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id IN (%lld, %lld)"
                            " AND NOT qualifies",
                            LL(w.acct.id), LL(d1), LL(d2)),
                 2);
    th_sleep_ms(1200); /* the sweep does not make them either */
    cr_assert_eq(db_account_reviews(), 0);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM tasks WHERE account_id = %lld AND type = 'rejection_control'",
                            LL(w.acct.id)),
                 0);
    json_t *list = list_reviews("");
    cr_assert_eq(json_array_size(list), 0, "%s", th_dump(list));
    json_decref(list);
}

Test(rejection, any_reviews_every_loss_also_one_without_a_reason)
{
    enable("\"any\"", 24);
    int64_t other = th_loss_reason_new(w.acct.admin_key, "Передумал", NULL);
    int64_t d1 = create_deal("Любая 1", w.stages[2], w.manager1, 100);
    int64_t d2 = create_deal("Любая 2", w.stages[0], w.manager2, 100);
    int64_t d3 = create_deal("Любая 3", w.stages[1], w.manager2, 100);
    int64_t t1 = lose(d1, 0), t2 = lose(d2, other), t3 = lose(d3, w.loss_reason);
    json_t *v = the_review(d1);
    assert_new_review(v, d1, w.manager1, 0, t1, 24, "Любая 1");
    json_decref(v);
    v = the_review(d2);
    assert_new_review(v, d2, w.manager2, other, t2, 24, "Любая 2");
    json_decref(v);
    v = the_review(d3);
    assert_new_review(v, d3, w.manager2, w.loss_reason, t3, 24, "Любая 3");
    json_decref(v);
    cr_assert_eq(db_account_reviews(), 3);
}

Test(rejection, a_disabled_rule_reviews_nothing)
{
    char body[256];
    snprintf(body, sizeof body, "{\"enabled\":false,\"loss_reason_ids\":[%lld],\"reviewer_id\":%lld}",
             LL(w.loss_reason), LL(w.head));
    json_decref(put_settings("%s", body));
    int64_t d = create_deal("Выключено", w.stages[0], w.manager1, 100);
    lose(d, w.loss_reason);
    /* enabled, then disabled again */
    enable_reason(24);
    json_decref(put_settings("{\"enabled\":false,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld}", LL(w.head)));
    int64_t d2 = create_deal("Выключено 2", w.stages[0], w.manager1, 100);
    lose(d2, w.loss_reason);
    th_sleep_ms(1200);
    cr_assert_eq(db_reviews(d), 0);
    cr_assert_eq(db_reviews(d2), 0);
    cr_assert_eq(db_account_reviews(), 0);
}

Test(rejection, sample_share_zero_reviews_nothing_and_a_share_reviews_the_sampled_losses)
{
    json_decref(put_settings("{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld,\"sample_share\":0}",
                             LL(w.head)));
    int64_t d = create_deal("Выборка 0", w.stages[0], w.manager1, 100);
    lose(d, 0);
    cr_assert_eq(db_reviews(d), 0);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id = %lld"
                            " AND qualifies AND NOT sampled",
                            LL(w.acct.id), LL(d)),
                 1, "qualifies but is not sampled in");
    /* half: each loss reviewed exactly when it was drawn in */
    json_decref(put_settings(
        "{\"enabled\":true,\"loss_reason_ids\":\"any\",\"reviewer_id\":%lld,\"sample_share\":0.5}", LL(w.head)));
    for (int i = 0; i < 20; i++) {
        int64_t x = create_deal("Выборка", w.stages[0], w.manager1, 100);
        lose(x, 0);
        int64_t sampled = th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id = %lld"
                                     " AND qualifies AND sampled",
                                     LL(w.acct.id), LL(x));
        cr_assert_eq(db_losses(x), 1);
        cr_assert_eq(db_reviews(x), sampled, "deal %lld: review iff sampled", LL(x));
    }
    th_sleep_ms(1200);
    cr_assert_eq(db_account_reviews(),
                 th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND qualifies AND sampled",
                            LL(w.acct.id)));
}

/* =========================================================================================== exactly once */

Test(rejection, the_same_events_twice_and_a_repeated_loss_event_give_one_review)
{
    enable_reason(24);
    int64_t now = (int64_t)time(NULL);
    char created[32], lost[32], later[32];
    th_format_time(now - 600, created);
    th_format_time(now, lost);
    th_format_time(now + 60, later);
    const char *batch = "[{\"id\":\"x1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"EV1\","
                        "\"name\":\"Событие\",\"price\":3000,\"pipeline\":\"p1\",\"stage\":\"s2\",\"manager\":\"em1\"}},"
                        "{\"id\":\"x2\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"EV1\","
                        "\"stage\":\"lost\",\"loss_reason\":\"r1\"}}]";
    send_events(2, 0, batch, created, lost);
    send_events(0, 2, batch, created, lost);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "EV1"),
            em1 = th_id_by_ext(w.acct.admin_key, "managers", "em1");
    json_t *v = the_review(deal);
    assert_new_review(v, deal, em1, w.loss_reason, now, 24, "Событие");
    json_decref(v);
    /* the same loss again with a new event id while the deal is lost */
    send_events(1, 0,
                "[{\"id\":\"x3\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"EV1\","
                "\"stage\":\"lost\",\"loss_reason\":\"r1\"}}]",
                later);
    send_events(1, 0,
                "[{\"id\":\"x4\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"EV1\","
                "\"stage\":\"lost\",\"loss_reason\":\"r1\"}}]",
                lost);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "%s", th_dump(d));
    json_decref(d);
    th_sleep_ms(1200);
    v = the_review(deal);
    assert_new_review(v, deal, em1, w.loss_reason, now, 24, "Событие");
    json_decref(v);
    cr_assert_eq(db_control_tasks(deal), 1);
    cr_assert_eq(db_account_reviews(), 1);
}

Test(rejection, the_same_amocrm_webhook_body_twice_gives_one_review)
{
    enable("\"any\"", 24);
    int64_t now = (int64_t)time(NULL);
    char add[2048], lost[2048];
    lead_add_body(add, sizeof add, 40399001, now - 600);
    lead_lost_body(lost, sizeof lost, 40399001, now);
    struct th_resp r = post_webhook(add);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_wait_applied(w.acct.admin_key, 10000);
    r = post_webhook(lost);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "status"), "accepted", "%s", r.body);
    th_resp_free(&r);
    r = post_webhook(lost);
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_wait_applied(w.acct.admin_key, 10000);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "40399001"),
            u1 = th_id_by_ext(w.acct.admin_key, "managers", "8800001");
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "%s", th_dump(d));
    json_decref(d);
    json_t *v = the_review(deal);
    assert_new_review(v, deal, u1, 0, now, 24, "Lead 40399001");
    json_decref(v);

    /* the same body once more after its duplicate window: stored and applied again, still one review */
    th_sql_int("UPDATE webhook_seen SET seen_at = now() - interval '11 minutes' WHERE account_id = %lld",
               LL(w.acct.id));
    r = post_webhook(lost);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "status"), "accepted", "stored again after 10 minutes: %s", r.body);
    th_resp_free(&r);
    th_wait_applied(w.acct.admin_key, 10000);
    cr_assert_eq(th_inbox_count(w.acct.admin_key, "failed"), 0);
    th_sleep_ms(1200);
    v = the_review(deal);
    assert_new_review(v, deal, u1, 0, now, 24, "Lead 40399001");
    json_decref(v);
    cr_assert_eq(db_losses(deal), 1);
    cr_assert_eq(db_control_tasks(deal), 1);
}

Test(rejection, losses_before_the_rule_was_enabled_are_never_reviewed)
{
    int64_t d1 = create_deal("До включения 1", w.stages[0], w.manager1, 100);
    int64_t d2 = create_deal("До включения 2", w.stages[1], w.manager2, 100);
    lose(d1, w.loss_reason);
    lose(d2, 0);
    cr_assert_eq(db_account_reviews(), 0);
    th_sleep_ms(1100); /* enabling comes a second later than the losses */
    enable("\"any\"", 24);
    th_sleep_ms(1500); /* the sweep runs every 0.5 s: it does not judge old losses anew */
    cr_assert_eq(db_reviews(d1), 0);
    cr_assert_eq(db_reviews(d2), 0);
    cr_assert_eq(db_account_reviews(), 0);
    /* a loss after enabling is reviewed */
    int64_t d3 = create_deal("После включения", w.stages[0], w.manager1, 100);
    lose(d3, 0);
    cr_assert_eq(db_reviews(d3), 1);
    cr_assert_eq(db_account_reviews(), 1);
}

Test(rejection, a_loss_event_dated_before_enabled_since_is_not_reviewed)
{
    enable("\"any\"", 24);
    int64_t now = (int64_t)time(NULL);
    char created[32], lost[32];
    th_format_time(now - 7200, created);
    th_format_time(now - 3600, lost);
    send_events(2, 0,
                "[{\"id\":\"o1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"OLD1\","
                "\"name\":\"Старая\",\"price\":10,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":\"em1\"}},"
                "{\"id\":\"o2\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"OLD1\","
                "\"stage\":\"lost\",\"loss_reason\":\"r1\"}}]",
                created, lost);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "OLD1");
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "%s", th_dump(d));
    json_decref(d);
    cr_assert_eq(db_losses(deal), 1, "judged");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM rejection_losses WHERE account_id = %lld AND deal_id = %lld"
                            " AND NOT qualifies",
                            LL(w.acct.id), LL(deal)),
                 1);
    th_sleep_ms(1200);
    cr_assert_eq(db_reviews(deal), 0);
}

Test(rejection, a_deal_created_directly_in_lost_is_reviewed)
{
    enable("\"any\"", 3);
    int64_t now = (int64_t)time(NULL);
    char at[32];
    th_format_time(now, at);
    send_events(1, 0,
                "[{\"id\":\"c1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"CL1\","
                "\"name\":\"Сразу в отказ\",\"price\":10,\"pipeline\":\"p1\",\"stage\":\"lost\",\"manager\":\"em2\"}}]",
                at);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "CL1"),
            em2 = th_id_by_ext(w.acct.admin_key, "managers", "em2");
    json_t *v = the_review(deal);
    assert_new_review(v, deal, em2, 0, now, 3, "Сразу в отказ");
    /* lost from no stage: a return goes to the pipeline's first open stage */
    struct th_resp r =
        decide(w.acct.admin_key, th_jint(v, "id"), "{\"decision\":\"return\",\"note\":\"Позвонить\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_decref(v);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "open", "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[0], "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "manager_id"), em2, "%s", th_dump(d));
    json_decref(d);
}

/* ============================================================================================== decisions */

/* A deal of manager1 in stage (price 1000) lost with the rule's reason; returns its review id. */
static int64_t lost_deal_review(const char *name, int64_t stage, int64_t manager, int64_t *deal_out,
                                int64_t *lost_at)
{
    int64_t deal = create_deal(name, stage, manager, 1000);
    int64_t at = lose(deal, w.loss_reason);
    json_t *v = the_review(deal);
    int64_t id = th_jint(v, "id");
    json_decref(v);
    if (deal_out) *deal_out = deal;
    if (lost_at) *lost_at = at;
    return id;
}

/* The review is still pending, its task open, the deal still lost. */
static void assert_untouched(int64_t review, int64_t deal)
{
    json_t *v = get_review(review);
    cr_assert_str_eq(th_jstr(v, "state"), "pending", "%s", th_dump(v));
    cr_assert(th_jnull(v, "decided_at"), "%s", th_dump(v));
    json_t *t = get_task(th_jint(v, "task_id"));
    cr_assert(th_jnull(t, "completed_at"), "%s", th_dump(t));
    json_decref(t);
    json_decref(v);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "%s", th_dump(d));
    json_decref(d);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM tasks WHERE account_id = %lld AND deal_id = %lld AND type = 'follow_up'",
                            LL(w.acct.id), LL(deal)),
                 0);
    json_t *notes = th_get_json(w.acct.admin_key, V1 "/deals/%lld/notes", LL(deal));
    cr_assert_eq(json_array_size(json_object_get(notes, "items")), 0, "%s", th_dump(notes));
    json_decref(notes);
}

Test(rejection, a_return_is_refused_without_note_with_a_foreign_or_closed_stage_or_an_unknown_manager)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Отказы", w.stages[1], w.manager1, &deal, NULL);
    struct th_resp r = decide(w.acct.admin_key, review, "{\"decision\":\"return\"}");
    th_expect_field_error(&r, "note", "return without note");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":null}");
    th_expect_field_error(&r, "note", "return with a null note");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"\"}");
    th_expect_field_error(&r, "note", "return with an empty note");
    th_resp_free(&r);

    r = th_post(w.acct.admin_key, V1 "/pipelines",
                "{\"name\":\"Другая\",\"stages\":[{\"name\":\"Новый\",\"kind\":\"open\"}]}");
    cr_assert_eq(r.status, 201, "%s", r.body);
    int64_t foreign = json_integer_value(json_object_get(json_array_get(json_object_get(r.json, "stages"), 0), "id"));
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"stage_id\":%lld}",
               LL(foreign));
    th_expect_field_error(&r, "stage_id", "stage of another pipeline");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"stage_id\":%lld}",
               LL(w.won_stage));
    th_expect_field_error(&r, "stage_id", "the won stage");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"stage_id\":%lld}",
               LL(w.lost_stage));
    th_expect_field_error(&r, "stage_id", "the lost stage");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"stage_id\":999999999}");
    th_expect_field_error(&r, "stage_id", "unknown stage");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"manager_id\":999999999}");
    th_expect_field_error(&r, "manager_id", "unknown manager");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\",\"follow_up_due_at\":\"завтра\"}");
    th_expect_field_error(&r, "follow_up_due_at", "bad follow-up time");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"maybe\"}");
    th_expect_field_error(&r, "decision", "unknown decision");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"note\":\"Совет\"}");
    th_expect_field_error(&r, "decision", "no decision");
    th_resp_free(&r);
    assert_untouched(review, deal);
}

Test(rejection, a_return_reopens_the_deal_where_it_was_lost_for_the_manager_with_note_and_follow_up)
{
    enable_reason(24);
    int64_t deal, lost_at;
    int64_t review = lost_deal_review("Возврат", w.stages[1], w.manager1, &deal, &lost_at);
    /* the responsible changes after the loss: the return goes to the one responsible at the loss */
    char path[64];
    snprintf(path, sizeof path, V1 "/deals/%lld", LL(deal));
    struct th_resp r = th_patch(w.acct.admin_key, path, "{\"manager_id\":%lld}", LL(w.manager2));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_t *before = get_review(review);
    int64_t control_task = th_jint(before, "task_id");
    json_decref(before);

    int64_t t0 = (int64_t)time(NULL);
    r = decide(w.head_key, review, "{\"decision\":\"return\",\"note\":\"Предложите рассрочку\"}");
    int64_t t1 = (int64_t)time(NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *v = json_incref(r.json);
    th_resp_free(&r);
    cr_assert_eq(th_jint(v, "id"), review);
    cr_assert_str_eq(th_jstr(v, "state"), "returned", "%s", th_dump(v));
    cr_assert_str_eq(th_jstr(v, "note"), "Предложите рассрочку", "%s", th_dump(v));
    cr_assert_eq(th_jint(v, "returned_to_manager_id"), w.manager1, "%s", th_dump(v));
    cr_assert_eq(th_jint(v, "task_id"), control_task, "%s", th_dump(v));
    cr_assert_eq(th_jint(v, "lost_by_manager_id"), w.manager1, "%s", th_dump(v));
    int64_t decided = th_parse_time(th_jstr(v, "decided_at"));
    cr_assert(decided >= t0 && decided <= t1, "decided_at: %s", th_dump(v));
    json_t *g = get_review(review);
    cr_assert(json_equal(g, v), "GET %s vs reply %s", th_dump(g), json_dumps(v, 0));
    json_decref(g);

    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "open", "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[1], "reopened in the stage it was lost from: %s",
                 th_dump(d));
    cr_assert_eq(th_jint(d, "manager_id"), w.manager1, "%s", th_dump(d));
    cr_assert(th_jnull(d, "closed_at"), "%s", th_dump(d));
    json_decref(d);

    json_t *notes = th_get_json(w.acct.admin_key, V1 "/deals/%lld/notes", LL(deal));
    json_t *items = json_object_get(notes, "items");
    cr_assert_eq(json_array_size(items), 1, "%s", th_dump(notes));
    cr_assert_str_eq(th_jstr(json_array_get(items, 0), "text"), "Предложите рассрочку", "%s", th_dump(notes));
    json_decref(notes);

    json_t *f = get_task(th_jint(v, "follow_up_task_id"));
    cr_assert_eq(th_jint(f, "deal_id"), deal, "%s", th_dump(f));
    cr_assert_eq(th_jint(f, "manager_id"), w.manager1, "%s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "type"), "follow_up", "%s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "text"), "Предложите рассрочку", "%s", th_dump(f));
    char want[32];
    th_format_time(decided + 24 * 3600, want);
    cr_assert_str_eq(th_jstr(f, "due_at"), want, "due 24 h after the decision: %s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "state"), "open", "%s", th_dump(f));
    json_decref(f);

    json_t *t = get_task(control_task);
    cr_assert_str_eq(th_jstr(t, "state"), "done", "%s", th_dump(t));
    cr_assert_str_eq(th_jstr(t, "completed_at"), th_jstr(v, "decided_at"), "%s", th_dump(t));
    cr_assert_str_eq(th_jstr(t, "result"), "returned", "%s", th_dump(t));
    json_decref(t);

    /* decided already */
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 409, "already_decided", "confirm after return");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Ещё раз\"}");
    th_expect_status(&r, 409, "already_decided", "return after return");
    th_resp_free(&r);
    g = get_review(review);
    cr_assert(json_equal(g, v), "unchanged: %s vs %s", th_dump(g), json_dumps(v, 0));
    json_decref(g);
    json_decref(v);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM tasks WHERE account_id = %lld AND deal_id = %lld AND type = 'follow_up'",
                            LL(w.acct.id), LL(deal)),
                 1);
    cr_assert_eq(db_reviews(deal), 1, "a return is no loss");
}

Test(rejection, a_return_to_a_given_manager_and_stage_with_a_given_follow_up_time)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Возврат другому", w.stages[2], w.manager1, &deal, NULL);
    int64_t due = (int64_t)time(NULL) + 3 * 86400 + 1234;
    char due_text[32];
    th_format_time(due, due_text);
    struct th_resp r = decide(w.acct.admin_key, review,
                              "{\"decision\":\"return\",\"note\":\"Позвоните в пятницу\",\"manager_id\":%lld,"
                              "\"stage_id\":%lld,\"follow_up_due_at\":\"%s\"}",
                              LL(w.manager2), LL(w.stages[0]), due_text);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "state"), "returned", "%s", r.body);
    cr_assert_eq(th_int(&r, "returned_to_manager_id"), w.manager2, "%s", r.body);
    cr_assert_eq(th_int(&r, "lost_by_manager_id"), w.manager1, "%s", r.body);
    int64_t follow = th_int(&r, "follow_up_task_id");
    th_resp_free(&r);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "open", "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[0], "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "manager_id"), w.manager2, "%s", th_dump(d));
    json_decref(d);
    json_t *f = get_task(follow);
    cr_assert_eq(th_jint(f, "manager_id"), w.manager2, "%s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "type"), "follow_up", "%s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "text"), "Позвоните в пятницу", "%s", th_dump(f));
    cr_assert_str_eq(th_jstr(f, "due_at"), due_text, "%s", th_dump(f));
    json_decref(f);
    /* an RFC 3339 time with an offset is the same instant */
    int64_t deal2;
    int64_t review2 = lost_deal_review("Возврат со смещением", w.stages[0], w.manager2, &deal2, NULL);
    r = decide(w.acct.admin_key, review2,
               "{\"decision\":\"return\",\"note\":\"Смещение\",\"follow_up_due_at\":\"2030-05-01T12:00:00+03:00\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    f = get_task(th_int(&r, "follow_up_task_id"));
    th_resp_free(&r);
    cr_assert_str_eq(th_jstr(f, "due_at"), "2030-05-01T09:00:00Z", "%s", th_dump(f));
    cr_assert_eq(th_jint(f, "manager_id"), w.manager2, "%s", th_dump(f));
    json_decref(f);
}

Test(rejection, a_return_when_the_deal_was_won_meanwhile_is_409_deal_not_lost)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Выиграна сама", w.stages[1], w.manager1, &deal, NULL);
    reopen(deal, w.stages[2]);
    win(deal);
    struct th_resp r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Совет\"}");
    th_expect_status(&r, 409, "deal_not_lost", "return of a won deal");
    th_resp_free(&r);
    json_t *v = get_review(review);
    cr_assert_str_eq(th_jstr(v, "state"), "pending", "%s", th_dump(v));
    json_t *t = get_task(th_jint(v, "task_id"));
    cr_assert(th_jnull(t, "completed_at"), "%s", th_dump(t));
    json_decref(t);
    json_decref(v);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "won", "%s", th_dump(d));
    json_decref(d);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM tasks WHERE account_id = %lld AND deal_id = %lld AND type = 'follow_up'",
                            LL(w.acct.id), LL(deal)),
                 0);
    /* reopened (open): not lost either */
    int64_t deal2;
    int64_t review2 = lost_deal_review("Открыта снова", w.stages[1], w.manager1, &deal2, NULL);
    reopen(deal2, w.stages[0]);
    r = decide(w.acct.admin_key, review2, "{\"decision\":\"return\",\"note\":\"Совет\"}");
    th_expect_status(&r, 409, "deal_not_lost", "return of an open deal");
    th_resp_free(&r);
    /* a confirm is still possible */
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_str_eq(th_str(&r, "state"), "confirmed", "%s", r.body);
    th_resp_free(&r);
}

Test(rejection, confirm_completes_the_task_and_takes_no_return_fields)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Подтвердить", w.stages[0], w.manager2, &deal, NULL);
    struct th_resp r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\",\"stage_id\":%lld}",
                              LL(w.stages[0]));
    th_expect_field_error(&r, "stage_id", "confirm with stage_id");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\",\"manager_id\":%lld}", LL(w.manager1));
    th_expect_field_error(&r, "manager_id", "confirm with manager_id");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\",\"follow_up_due_at\":\"2030-01-01T00:00:00Z\"}");
    th_expect_field_error(&r, "follow_up_due_at", "confirm with follow_up_due_at");
    th_resp_free(&r);
    assert_untouched(review, deal);

    int64_t t0 = (int64_t)time(NULL);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    int64_t t1 = (int64_t)time(NULL);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *v = json_incref(r.json);
    th_resp_free(&r);
    cr_assert_str_eq(th_jstr(v, "state"), "confirmed", "%s", th_dump(v));
    int64_t decided = th_parse_time(th_jstr(v, "decided_at"));
    cr_assert(decided >= t0 && decided <= t1, "%s", th_dump(v));
    cr_assert(th_jnull(v, "returned_to_manager_id"), "%s", th_dump(v));
    cr_assert(th_jnull(v, "follow_up_task_id"), "%s", th_dump(v));
    json_t *t = get_task(th_jint(v, "task_id"));
    cr_assert_str_eq(th_jstr(t, "state"), "done", "%s", th_dump(t));
    cr_assert_str_eq(th_jstr(t, "result"), "confirmed", "%s", th_dump(t));
    cr_assert_str_eq(th_jstr(t, "completed_at"), th_jstr(v, "decided_at"), "%s", th_dump(t));
    json_decref(t);
    json_decref(v);
    json_t *d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "a confirm leaves the deal lost: %s", th_dump(d));
    json_decref(d);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 409, "already_decided", "confirm twice");
    th_resp_free(&r);
    r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Поздно\"}");
    th_expect_status(&r, 409, "already_decided", "return after confirm");
    th_resp_free(&r);
    d = get_deal(deal);
    cr_assert_str_eq(th_jstr(d, "status"), "lost", "%s", th_dump(d));
    json_decref(d);
}

Test(rejection, a_missing_or_foreign_review_is_404)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Чужая", w.stages[0], w.manager1, &deal, NULL);
    struct th_resp r = decide(w.acct.admin_key, 999999999, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 404, "not_found", "missing review");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, REVIEWS "/999999999");
    th_expect_status(&r, 404, "not_found", "GET missing review");
    th_resp_free(&r);
    struct th_account other;
    th_account_new(&other);
    r = decide(other.admin_key, review, "{\"decision\":\"confirm\"}");
    th_expect_status(&r, 404, "not_found", "another account's review");
    th_resp_free(&r);
    r = decide(other.admin_key, review, "{\"decision\":\"return\",\"note\":\"x\"}");
    th_expect_status(&r, 404, "not_found", "another account's review, return");
    th_resp_free(&r);
    r = th_get(other.admin_key, REVIEWS "/%lld", LL(review));
    th_expect_status(&r, 404, "not_found", "GET another account's review");
    th_resp_free(&r);
    r = th_get(other.admin_key, REVIEWS "?limit=500");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(json_array_size(json_object_get(r.json, "items")), 0, "%s", r.body);
    th_resp_free(&r);
    assert_untouched(review, deal);
}

Test(rejection, a_deal_returned_and_lost_again_gets_a_second_review)
{
    enable_reason(24);
    int64_t deal, lost1;
    int64_t review1 = lost_deal_review("Дважды", w.stages[1], w.manager1, &deal, &lost1);
    struct th_resp r = decide(w.acct.admin_key, review1,
                              "{\"decision\":\"return\",\"note\":\"Попробуйте ещё\",\"manager_id\":%lld}",
                              LL(w.manager2));
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_sleep_ms(1100);
    int64_t lost2 = lose(deal, w.loss_reason);
    cr_assert_gt(lost2, lost1);
    json_t *list = reviews_of(deal);
    cr_assert_eq(json_array_size(list), 2, "%s", th_dump(list));
    json_t *a = json_array_get(list, 0), *b = json_array_get(list, 1);
    cr_assert_eq(th_jint(a, "id"), review1, "%s", th_dump(list));
    cr_assert_str_eq(th_jstr(a, "state"), "returned", "%s", th_dump(list));
    assert_new_review(b, deal, w.manager2, w.loss_reason, lost2, 24, "Дважды");
    cr_assert_neq(th_jint(b, "task_id"), th_jint(a, "task_id"));
    json_decref(list);
    cr_assert_eq(db_control_tasks(deal), 2);
    cr_assert_eq(db_losses(deal), 2);
}

Test(rejection, a_deal_returned_and_lost_again_within_the_same_second_gets_a_second_review)
{
    enable_reason(24);
    int64_t deal = create_deal("Быстро дважды", w.stages[1], w.manager1, 1000);
    wait_new_second();
    int64_t lost1 = lose(deal, w.loss_reason);
    json_t *v = the_review(deal);
    struct th_resp r =
        decide(w.acct.admin_key, th_jint(v, "id"), "{\"decision\":\"return\",\"note\":\"Быстро\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_decref(v);
    int64_t lost2 = lose(deal, w.loss_reason);
    cr_assert_eq(lost2, lost1, "the test needs both losses in one second (took too long)");
    json_t *list = reviews_of(deal);
    cr_assert_eq(json_array_size(list), 2, "two moves into lost, two reviews: %s", th_dump(list));
    json_decref(list);
    cr_assert_eq(db_control_tasks(deal), 2);
}

Test(rejection, the_review_task_cannot_be_completed_or_deleted_by_rest)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Задача", w.stages[0], w.manager1, &deal, NULL);
    json_t *v = get_review(review);
    int64_t task = th_jint(v, "task_id");
    json_decref(v);
    char path[96];
    snprintf(path, sizeof path, V1 "/tasks/%lld/complete", LL(task));
    struct th_resp r = th_post(w.acct.admin_key, path, "{}");
    th_expect_status(&r, 409, "conflict", "complete the rejection_control task");
    th_resp_free(&r);
    r = th_post(w.head_key, path, "{\"result\":\"ok\"}");
    th_expect_status(&r, 409, "conflict", "complete the rejection_control task with the head key");
    th_resp_free(&r);
    snprintf(path, sizeof path, V1 "/tasks/%lld", LL(task));
    r = th_request("DELETE", path, w.acct.admin_key, NULL, NULL, NULL);
    th_expect_status(&r, 409, "conflict", "delete the rejection_control task");
    th_resp_free(&r);
    assert_untouched(review, deal);
    json_t *t = get_task(task);
    cr_assert_str_eq(th_jstr(t, "state"), "open", "%s", th_dump(t));
    json_decref(t);
    /* after the decision it is done, and still not completable again */
    r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    snprintf(path, sizeof path, V1 "/tasks/%lld/complete", LL(task));
    r = th_post(w.acct.admin_key, path, "{}");
    th_expect_status(&r, 409, NULL, "complete a decided review's task");
    th_resp_free(&r);
}

Test(rejection, the_review_list_filters_by_state_manager_and_period)
{
    enable_reason(24);
    int64_t d1, d2, d3;
    int64_t r1 = lost_deal_review("Список 1", w.stages[0], w.manager1, &d1, NULL);
    int64_t r2 = lost_deal_review("Список 2", w.stages[0], w.manager2, &d2, NULL);
    int64_t r3 = lost_deal_review("Список 3", w.stages[0], w.manager1, &d3, NULL);
    struct th_resp r = decide(w.acct.admin_key, r2, "{\"decision\":\"confirm\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_t *l = list_reviews("");
    cr_assert_eq(json_array_size(l), 3, "%s", th_dump(l));
    cr_assert_eq(th_jint(json_array_get(l, 0), "id"), r1);
    cr_assert_eq(th_jint(json_array_get(l, 1), "id"), r2);
    cr_assert_eq(th_jint(json_array_get(l, 2), "id"), r3);
    json_decref(l);
    l = list_reviews("&state=pending");
    cr_assert_eq(json_array_size(l), 2, "%s", th_dump(l));
    cr_assert_eq(th_jint(json_array_get(l, 0), "id"), r1);
    cr_assert_eq(th_jint(json_array_get(l, 1), "id"), r3);
    json_decref(l);
    l = list_reviews("&state=confirmed");
    cr_assert_eq(json_array_size(l), 1, "%s", th_dump(l));
    cr_assert_eq(th_jint(json_array_get(l, 0), "id"), r2);
    json_decref(l);
    l = list_reviews("&state=returned");
    cr_assert_eq(json_array_size(l), 0, "%s", th_dump(l));
    json_decref(l);
    char q[96];
    snprintf(q, sizeof q, "&manager_id=%lld", LL(w.manager1));
    l = list_reviews(q);
    cr_assert_eq(json_array_size(l), 2, "%s", th_dump(l));
    cr_assert_eq(th_jint(json_array_get(l, 0), "id"), r1);
    cr_assert_eq(th_jint(json_array_get(l, 1), "id"), r3);
    json_decref(l);
    char today[16], yesterday[16], tomorrow[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(today, now, MSK, 0);
    th_local_date(yesterday, now, MSK, -1);
    th_local_date(tomorrow, now, MSK, 1);
    snprintf(q, sizeof q, "&from=%s&to=%s", yesterday, tomorrow);
    l = list_reviews(q);
    cr_assert_eq(json_array_size(l), 3, "%s", th_dump(l));
    json_decref(l);
    snprintf(q, sizeof q, "&from=%s", tomorrow);
    l = list_reviews(q);
    cr_assert_eq(json_array_size(l), 0, "%s", th_dump(l));
    json_decref(l);
    snprintf(q, sizeof q, "&to=%s", yesterday);
    l = list_reviews(q);
    cr_assert_eq(json_array_size(l), 0, "%s", th_dump(l));
    json_decref(l);
    /* paging by id */
    json_t *page = th_get_json(w.acct.admin_key, REVIEWS "?limit=2");
    cr_assert_eq(json_array_size(json_object_get(page, "items")), 2, "%s", th_dump(page));
    const char *cursor = th_jstr(page, "next_cursor");
    cr_assert(cursor != NULL, "%s", th_dump(page));
    json_t *page2 = th_get_json(w.acct.admin_key, REVIEWS "?limit=2&cursor=%s", cursor);
    cr_assert_eq(json_array_size(json_object_get(page2, "items")), 1, "%s", th_dump(page2));
    cr_assert_eq(th_jint(json_array_get(json_object_get(page2, "items"), 0), "id"), r3);
    json_decref(page2);
    json_decref(page);
    r = th_get(w.acct.admin_key, REVIEWS "?state=open");
    th_expect_field_error(&r, "state", "unknown state");
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, REVIEWS "?from=yesterday");
    th_expect_field_error(&r, "from", "bad date");
    th_resp_free(&r);
    (void)today;
}

/* ================================================================================================== stats */

static json_t *stats(const char *from, const char *to)
{
    return th_get_json(w.acct.admin_key, STATS "?from=%s&to=%s", from, to);
}

static void assert_manager_row(json_t *s, size_t i, int64_t manager, int reviewed, int returned, int recovered)
{
    json_t *row = json_array_get(json_object_get(s, "by_manager"), i);
    cr_assert(row != NULL, "no by_manager[%zu]: %s", i, th_dump(s));
    cr_assert_eq(th_jint(row, "manager_id"), manager, "by_manager[%zu].manager_id: %s", i, th_dump(s));
    cr_assert_eq(th_jint(row, "reviewed"), reviewed, "by_manager[%zu].reviewed: %s", i, th_dump(s));
    cr_assert_eq(th_jint(row, "returned"), returned, "by_manager[%zu].returned: %s", i, th_dump(s));
    cr_assert_eq(th_jint(row, "recovered"), recovered, "by_manager[%zu].recovered: %s", i, th_dump(s));
}

/* Moves a review's decision to lost_at + delay_s (the stats' median is over decided_at - lost_at). */
static void set_decision_delay(int64_t review, int delay_s)
{
    th_sql_int("UPDATE rejection_reviews SET decided_at = lost_at + interval '%d seconds'"
               " WHERE account_id = %lld AND id = %lld",
               delay_s, LL(w.acct.id), LL(review));
}

Test(rejection, stats_count_returns_recoveries_revenue_median_and_managers)
{
    json_decref(put_settings("{\"enabled\":true,\"loss_reason_ids\":[%lld],\"reviewer_id\":%lld,"
                             "\"target_return_share\":0.25}",
                             LL(w.loss_reason), LL(w.head)));
    int64_t d1, d2, d3, d4;
    int64_t r1 = lost_deal_review("Статистика 1", w.stages[1], w.manager1, &d1, NULL);
    int64_t r2 = lost_deal_review("Статистика 2", w.stages[1], w.manager2, &d2, NULL);
    int64_t r3 = lost_deal_review("Статистика 3", w.stages[0], w.manager1, &d3, NULL);
    int64_t r4 = lost_deal_review("Статистика 4", w.stages[2], w.manager2, &d4, NULL);
    (void)r4;
    th_sleep_ms(1100); /* deal 1's return a second after its loss (the same second is a test of its own) */
    struct th_resp r = decide(w.acct.admin_key, r1, "{\"decision\":\"return\",\"note\":\"Скидка\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    int64_t k1 = th_parse_time(th_str(&r, "decided_at")) - th_parse_time(th_str(&r, "lost_at"));
    cr_assert(k1 >= 1 && k1 < 100, "deal 1 decided %lld s after its loss", LL(k1));
    th_resp_free(&r);
    r = decide(w.acct.admin_key, r2, "{\"decision\":\"return\",\"note\":\"Позвонить\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = decide(w.acct.admin_key, r3, "{\"decision\":\"confirm\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    /* deal 1 is won after its return at another price than at the loss */
    set_price(d1, 7300);
    win(d1);
    set_price(d1, 9999); /* a later change of price does not change the price at the win */
    /* the decisions took k1 (1 or 2 s, deal 1: left as it was, before its win), 100 s and 300 s: median 100 */
    set_decision_delay(r2, 100);
    set_decision_delay(r3, 300);

    char from[16], to[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(from, now, MSK, -1);
    th_local_date(to, now, MSK, 1);
    json_t *s = stats(from, to);
    cr_assert_eq(th_jint(s, "reviews"), 4, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "pending"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "decided"), 3, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "returned"), 2, "%s", th_dump(s));
    assert_number(s, "return_share", 0.6667);
    assert_number(s, "target_return_share", 0.25);
    cr_assert_eq(th_jint(s, "recovered"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "recovered_revenue"), 7300, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "median_decision_s"), 100, "%s", th_dump(s));
    json_t *bm = json_object_get(s, "by_manager");
    cr_assert_eq(json_array_size(bm), 2, "%s", th_dump(s));
    int64_t lo = w.manager1 < w.manager2 ? w.manager1 : w.manager2;
    int64_t hi = w.manager1 < w.manager2 ? w.manager2 : w.manager1;
    /* manager1: deals 1 (returned, recovered) and 3 (confirmed); manager2: 2 (returned) and 4 (pending) */
    assert_manager_row(s, 0, lo, 2, 1, lo == w.manager1 ? 1 : 0);
    assert_manager_row(s, 1, hi, 2, 1, hi == w.manager1 ? 1 : 0);
    json_decref(s);

    /* today alone gives the same (the losses are today in the account's zone) */
    char today[16];
    th_local_date(today, now, MSK, 0);
    s = stats(today, today);
    cr_assert_eq(th_jint(s, "reviews"), 4, "%s", th_dump(s));
    json_decref(s);
    /* no period: all of them */
    s = th_get_json(w.acct.admin_key, STATS);
    cr_assert_eq(th_jint(s, "reviews"), 4, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "recovered_revenue"), 7300, "%s", th_dump(s));
    json_decref(s);
    /* readonly reads the same */
    r = th_get(w.readonly_key, STATS "?from=%s&to=%s", from, to);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_assert_eq(th_int(&r, "recovered"), 1, "%s", r.body);
    th_resp_free(&r);
}

Test(rejection, stats_a_return_that_is_lost_again_before_the_win_is_not_recovered)
{
    enable_reason(24);
    int64_t deal;
    int64_t review = lost_deal_review("Снова отказ", w.stages[1], w.manager1, &deal, NULL);
    struct th_resp r = decide(w.acct.admin_key, review, "{\"decision\":\"return\",\"note\":\"Ещё попытка\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_sleep_ms(1100);
    lose(deal, w.loss_reason);
    reopen(deal, w.stages[1]);
    win(deal);
    char from[16], to[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(from, now, MSK, -1);
    th_local_date(to, now, MSK, 1);
    json_t *s = stats(from, to);
    cr_assert_eq(th_jint(s, "reviews"), 2, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "pending"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "decided"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "returned"), 1, "%s", th_dump(s));
    assert_number(s, "return_share", 1);
    cr_assert_eq(th_jint(s, "recovered"), 0, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "recovered_revenue"), 0, "%s", th_dump(s));
    cr_assert_eq(json_array_size(json_object_get(s, "by_manager")), 1, "%s", th_dump(s));
    assert_manager_row(s, 0, w.manager1, 2, 1, 0);
    json_decref(s);
}

Test(rejection, stats_a_return_decided_in_the_second_of_the_loss_then_won_is_recovered)
{
    enable_reason(24);
    int64_t deal = create_deal("Быстрый возврат", w.stages[1], w.manager1, 4100);
    wait_new_second();
    int64_t lost_at = lose(deal, w.loss_reason);
    json_t *v = the_review(deal);
    struct th_resp r =
        decide(w.acct.admin_key, th_jint(v, "id"), "{\"decision\":\"return\",\"note\":\"Сразу\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    int64_t decided = th_parse_time(th_str(&r, "decided_at"));
    th_resp_free(&r);
    json_decref(v);
    cr_assert_eq(decided, lost_at, "the test needs the decision in the second of the loss (took too long)");
    th_sleep_ms(1100);
    win(deal);
    char from[16], to[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(from, now, MSK, -1);
    th_local_date(to, now, MSK, 1);
    json_t *s = stats(from, to);
    cr_assert_eq(th_jint(s, "returned"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "recovered"), 1, "won after the return, no loss after the decision: %s",
                 th_dump(s));
    cr_assert_eq(th_jint(s, "recovered_revenue"), 4100, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "median_decision_s"), 0, "%s", th_dump(s));
    assert_manager_row(s, 0, w.manager1, 1, 1, 1);
    json_decref(s);
}

Test(rejection, stats_median_decision_time_in_whole_seconds_half_up)
{
    enable_reason(24);
    int64_t r1 = lost_deal_review("Медиана 1", w.stages[0], w.manager1, NULL, NULL);
    int64_t r2 = lost_deal_review("Медиана 2", w.stages[0], w.manager1, NULL, NULL);
    int64_t r3 = lost_deal_review("Медиана 3", w.stages[0], w.manager2, NULL, NULL);
    int64_t ids[] = {r1, r2, r3};
    for (int i = 0; i < 3; i++) {
        struct th_resp r = decide(w.acct.admin_key, ids[i], "{\"decision\":\"confirm\"}");
        cr_assert_eq(r.status, 200, "%s", r.body);
        th_resp_free(&r);
    }
    set_decision_delay(r1, 400);
    set_decision_delay(r2, 100);
    set_decision_delay(r3, 200);
    char from[16], to[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(from, now, MSK, -1);
    th_local_date(to, now, MSK, 1);
    json_t *s = stats(from, to);
    cr_assert_eq(th_jint(s, "median_decision_s"), 200, "median of 100, 200, 400: %s", th_dump(s));
    cr_assert_eq(th_jint(s, "decided"), 3, "%s", th_dump(s));
    assert_number(s, "return_share", 0);
    json_decref(s);
    /* two decided: 100 and 301 -> 200.5 -> 201 */
    th_sql_int("UPDATE rejection_reviews SET state = 'pending', decided_at = NULL WHERE account_id = %lld AND id = %lld",
               LL(w.acct.id), LL(r3));
    set_decision_delay(r1, 301);
    s = stats(from, to);
    cr_assert_eq(th_jint(s, "decided"), 2, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "pending"), 1, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "median_decision_s"), 201, "median of 100 and 301 rounded half up: %s",
                 th_dump(s));
    json_decref(s);
    /* 100 and 300 -> 200 exactly; 100 and 302 -> 201 */
    set_decision_delay(r1, 300);
    s = stats(from, to);
    cr_assert_eq(th_jint(s, "median_decision_s"), 200, "%s", th_dump(s));
    json_decref(s);
    set_decision_delay(r1, 302);
    s = stats(from, to);
    cr_assert_eq(th_jint(s, "median_decision_s"), 201, "%s", th_dump(s));
    json_decref(s);
}

Test(rejection, stats_of_a_period_without_losses_are_zeros_and_nulls)
{
    json_decref(put_settings("{\"enabled\":true,\"loss_reason_ids\":[%lld],\"reviewer_id\":%lld,"
                             "\"target_return_share\":0.12}",
                             LL(w.loss_reason), LL(w.head)));
    int64_t review = lost_deal_review("Вне периода", w.stages[0], w.manager1, NULL, NULL);
    struct th_resp r = decide(w.acct.admin_key, review, "{\"decision\":\"confirm\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    char from[16], to[16];
    int64_t now = (int64_t)time(NULL);
    th_local_date(from, now, MSK, -30);
    th_local_date(to, now, MSK, -2);
    const char *periods[][2] = {{from, to}, {"2020-01-01", "2020-01-31"}};
    for (int i = 0; i < 2; i++) {
        json_t *s = stats(periods[i][0], periods[i][1]);
        cr_assert_eq(th_jint(s, "reviews"), 0, "%s", th_dump(s));
        cr_assert_eq(th_jint(s, "pending"), 0, "%s", th_dump(s));
        cr_assert_eq(th_jint(s, "decided"), 0, "%s", th_dump(s));
        cr_assert_eq(th_jint(s, "returned"), 0, "%s", th_dump(s));
        cr_assert(th_jnull(s, "return_share"), "%s", th_dump(s));
        assert_number(s, "target_return_share", 0.12);
        cr_assert_eq(th_jint(s, "recovered"), 0, "%s", th_dump(s));
        cr_assert_eq(th_jint(s, "recovered_revenue"), 0, "%s", th_dump(s));
        cr_assert(th_jnull(s, "median_decision_s"), "%s", th_dump(s));
        json_t *bm = json_object_get(s, "by_manager");
        cr_assert(json_is_array(bm) && json_array_size(bm) == 0, "%s", th_dump(s));
        json_decref(s);
    }
    /* and with only a pending review: return_share and median null */
    lost_deal_review("Ждёт", w.stages[0], w.manager2, NULL, NULL);
    th_sql_int("UPDATE rejection_reviews SET state = 'pending', decided_at = NULL WHERE account_id = %lld AND id = %lld",
               LL(w.acct.id), LL(review));
    th_local_date(from, now, MSK, -1);
    th_local_date(to, now, MSK, 1);
    json_t *s = stats(from, to);
    cr_assert_eq(th_jint(s, "reviews"), 2, "%s", th_dump(s));
    cr_assert_eq(th_jint(s, "decided"), 0, "%s", th_dump(s));
    cr_assert(th_jnull(s, "return_share"), "%s", th_dump(s));
    cr_assert(th_jnull(s, "median_decision_s"), "%s", th_dump(s));
    json_decref(s);
    r = th_get(w.acct.admin_key, STATS "?from=%s&to=%s", to, from);
    th_expect_field_error(&r, "to", "to before from");
    th_resp_free(&r);
}

/* ================================================================================================== sweep */

Test(rejection, the_sweep_makes_the_missing_review_of_a_judged_loss)
{
    enable_reason(6);
    int64_t deal = create_deal("Потерянный отзыв", w.stages[2], w.manager2, 100);
    int64_t lost_at = lose(deal, 0); /* no reason: judged, does not qualify */
    cr_assert_eq(db_losses(deal), 1);
    cr_assert_eq(db_reviews(deal), 0);
    /* as if the server had died between judging the loss and making its review */
    th_sql_int("UPDATE rejection_losses SET qualifies = true, sampled = true WHERE account_id = %lld AND deal_id = %lld",
               LL(w.acct.id), LL(deal));
    double deadline = th_mono_now() + 3.0;
    while (db_reviews(deal) == 0 && th_mono_now() < deadline)
        th_sleep_ms(50);
    cr_assert_eq(db_reviews(deal), 1, "the sweep made the review within 3 s");
    th_sleep_ms(1200); /* and only one */
    json_t *v = the_review(deal);
    assert_new_review(v, deal, w.manager2, 0, lost_at, 6, "Потерянный отзыв");
    json_decref(v);
    cr_assert_eq(db_control_tasks(deal), 1);
    cr_assert_eq(db_account_reviews(), 1);
    /* it is an ordinary review: it can be decided */
    v = the_review(deal);
    struct th_resp r =
        decide(w.acct.admin_key, th_jint(v, "id"), "{\"decision\":\"return\",\"note\":\"Вернуть\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    json_decref(v);
    json_t *d = get_deal(deal);
    cr_assert_eq(th_jint(d, "stage_id"), w.stages[2], "%s", th_dump(d));
    cr_assert_eq(th_jint(d, "manager_id"), w.manager2, "%s", th_dump(d));
    json_decref(d);
}

Test(rejection, reviews_of_deleted_deals_are_not_shown)
{
    enable("\"any\"", 24);
    int64_t now = (int64_t)time(NULL);
    char created[32], lost[32], gone[32];
    th_format_time(now - 600, created);
    th_format_time(now, lost);
    th_format_time(now + 1, gone);
    send_events(2, 0,
                "[{\"id\":\"g1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"DEL1\","
                "\"name\":\"Удалят\",\"price\":10,\"pipeline\":\"p1\",\"stage\":\"s1\",\"manager\":\"em1\"}},"
                "{\"id\":\"g2\",\"type\":\"deal.stage_changed\",\"at\":\"%s\",\"data\":{\"deal\":\"DEL1\","
                "\"stage\":\"lost\"}}]",
                created, lost);
    int64_t deal = th_id_by_ext(w.acct.admin_key, "deals", "DEL1");
    json_t *v = the_review(deal);
    int64_t review = th_jint(v, "id");
    json_decref(v);
    send_events(1, 0,
                "[{\"id\":\"g3\",\"type\":\"deal.deleted\",\"at\":\"%s\",\"data\":{\"deal\":\"DEL1\"}}]", gone);
    json_t *l = list_reviews("");
    cr_assert_eq(json_array_size(l), 0, "%s", th_dump(l));
    json_decref(l);
    struct th_resp r = th_get(w.acct.admin_key, REVIEWS "/%lld", LL(review));
    th_expect_status(&r, 404, "not_found", "review of a deleted deal");
    th_resp_free(&r);
    json_t *s = th_get_json(w.acct.admin_key, STATS);
    cr_assert_eq(th_jint(s, "reviews"), 0, "%s", th_dump(s));
    json_decref(s);
}

/* Lead distribution over HTTP: settings and their validation, every manager's state and reason, round robin
 * and weighted shares for deals created by REST, events and amoCRM webhooks, the call cursor, working hours in
 * the account's zone (across midnight too), and deals that wait for an eligible manager. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "amocrm_samples.h"
#include "harness.h"

static struct th_world w;

static void setup(void)
{
    th_world_start(TEST_SUITE, &w);
}

TestSuite(distribution, .init = setup, .fini = th_server_stop);

#define V1 "/api/v1"

static void put_settings(const char *body)
{
    struct th_resp r = th_put(w.acct.admin_key, V1 "/distribution/settings", "%s", body);
    cr_assert_eq(r.status, 200, "settings %s: %s", body, r.body);
    th_resp_free(&r);
}

/* A deal created by REST without a manager: returns its manager (0 when none), and checks the reply's
 * distribution object. */
static int64_t new_lead(bool expect_assigned)
{
    struct th_resp r = th_post(w.acct.admin_key, V1 "/deals", "{\"name\":\"lead\",\"price\":100,\"pipeline_id\":%lld}",
                               (long long)w.pipeline_id);
    cr_assert_eq(r.status, 201, "%s", r.body);
    json_t *dist = json_object_get(r.json, "distribution");
    cr_assert(json_is_object(dist), "no distribution in %s", r.body);
    cr_assert_eq(json_is_true(json_object_get(dist, "assigned")), expect_assigned, "%s", r.body);
    if (expect_assigned)
        cr_assert(json_is_null(json_object_get(dist, "reason")), "%s", r.body);
    else
        cr_assert_str_eq(json_string_value(json_object_get(dist, "reason")), "no_eligible_manager");
    json_t *m = json_object_get(r.json, "manager_id");
    int64_t id = json_is_integer(m) ? json_integer_value(m) : 0;
    cr_assert_eq(id != 0, expect_assigned, "%s", r.body);
    th_resp_free(&r);
    return id;
}

static int64_t last_deal_id(void)
{
    return th_sql_int("SELECT max(id) FROM deals WHERE account_id = %lld", (long long)w.acct.id);
}

/* The reason GET /distribution gives for a manager ("" when eligible). */
static void expect_reason(json_t *dist, int64_t manager_id, const char *reason)
{
    json_t *ms = json_object_get(dist, "managers");
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m)
    {
        if (json_integer_value(json_object_get(m, "manager_id")) != manager_id) continue;
        json_t *r = json_object_get(m, "reason");
        if (reason == NULL) {
            cr_assert(json_is_null(r) && json_is_true(json_object_get(m, "eligible")),
                      "manager %lld should be eligible", (long long)manager_id);
        } else {
            cr_assert(json_is_false(json_object_get(m, "eligible")));
            cr_assert_str_eq(json_string_value(r), reason, "manager %lld", (long long)manager_id);
        }
        return;
    }
    cr_assert_fail("manager %lld not in GET /distribution", (long long)manager_id);
}

static json_t *get_distribution(void)
{
    struct th_resp r = th_get(w.acct.admin_key, V1 "/distribution");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *j = json_incref(r.json);
    th_resp_free(&r);
    return j;
}

Test(distribution, settings_default_round_trip_and_reset)
{
    struct th_resp r = th_get(w.readonly_key, V1 "/distribution/settings");
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.body, "{\"strategy\":\"weighted\",\"working_hours\":null,\"max_in_focus\":null}");
    th_resp_free(&r);
    put_settings("{\"strategy\":\"round_robin\",\"working_hours\":{\"mon\":[\"09:00-18:00\"],\"fri\":[\"22:00-02:00\"]},"
                 "\"max_in_focus\":2}");
    r = th_get(w.head_key, V1 "/distribution/settings");
    cr_assert_str_eq(r.body, "{\"strategy\":\"round_robin\",\"working_hours\":{\"mon\":[\"09:00-18:00\"],\"tue\":[],"
                             "\"wed\":[],\"thu\":[],\"fri\":[\"22:00-02:00\"],\"sat\":[],\"sun\":[]},\"max_in_focus\":2}");
    th_resp_free(&r);
    put_settings("{}"); /* PUT replaces: the defaults again */
    r = th_get(w.head_key, V1 "/distribution/settings");
    cr_assert_str_eq(r.body, "{\"strategy\":\"weighted\",\"working_hours\":null,\"max_in_focus\":null}");
    th_resp_free(&r);
}

Test(distribution, bad_settings_are_422_and_change_nothing)
{
    put_settings("{\"max_in_focus\":3}");
    struct {
        const char *body, *field;
    } cases[] = {
        {"{\"strategy\":\"random\"}", "strategy"},
        {"{\"max_in_focus\":-1}", "max_in_focus"},
        {"{\"max_in_focus\":\"2\"}", "max_in_focus"},
        {"{\"working_hours\":[\"09:00-18:00\"]}", "working_hours"},
        {"{\"working_hours\":{\"mon\":[\"9-18\"]}}", "working_hours.mon[0]"},
        {"{\"working_hours\":{\"monday\":[]}}", "working_hours.monday"},
        {"{\"working_hours\":{\"sun\":[\"10:00-10:00\"]}}", "working_hours.sun[0]"},
        {"{\"weights\":{}}", "weights"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct th_resp r = th_put(w.acct.admin_key, V1 "/distribution/settings", "%s", cases[i].body);
        cr_expect_eq(r.status, 422, "%s: %s", cases[i].body, r.body);
        json_t *e = json_array_get(json_object_get(r.json, "errors"), 0);
        cr_expect_str_eq(json_string_value(json_object_get(e, "field")), cases[i].field, "%s: %s", cases[i].body,
                         r.body);
        th_resp_free(&r);
    }
    struct th_resp r = th_get(w.acct.admin_key, V1 "/distribution/settings");
    cr_assert_eq(th_int(&r, "max_in_focus"), 3);
    th_resp_free(&r);
    r = th_put(w.manager1_key, V1 "/distribution/settings", "{}");
    cr_assert_eq(r.status, 403);
    th_resp_free(&r);
    r = th_put(w.readonly_key, V1 "/distribution/settings", "{}");
    cr_assert_eq(r.status, 403);
    th_resp_free(&r);
}

Test(distribution, every_manager_has_a_reason_in_product_order)
{
    int64_t inactive = th_manager_new(w.acct.admin_key, "Inactive", "manager"),
            disabled = th_manager_new(w.acct.admin_key, "Disabled", "manager"),
            pool = th_manager_new(w.acct.admin_key, "Pool", "manager");
    th_patch_manager(w.acct.admin_key, inactive, "{\"active\":false,\"distribution_enabled\":false}");
    th_patch_manager(w.acct.admin_key, disabled, "{\"distribution_enabled\":false}");
    th_sql_int("UPDATE managers SET pool_user = true, active = false WHERE id = %lld", (long long)pool);
    json_t *d = get_distribution();
    cr_assert_str_eq(json_string_value(json_object_get(d, "strategy")), "weighted");
    cr_assert_eq(json_integer_value(json_object_get(d, "awaiting")), 0);
    expect_reason(d, w.manager1, NULL);
    expect_reason(d, w.manager2, NULL);
    expect_reason(d, w.head, "not_a_manager");
    expect_reason(d, inactive, "inactive");
    expect_reason(d, disabled, "disabled");
    expect_reason(d, pool, "pool_user");
    json_decref(d);
    /* the manager objects say the same */
    struct th_resp r = th_get(w.manager1_key, V1 "/managers/%lld", (long long)disabled);
    cr_assert_eq(r.status, 200);
    cr_assert(json_is_false(json_object_get(r.json, "eligible")));
    th_resp_free(&r);
    r = th_get(w.manager1_key, V1 "/managers/%lld", (long long)w.manager2);
    cr_assert(json_is_true(json_object_get(r.json, "eligible")));
    cr_assert(json_is_false(json_object_get(r.json, "in_focus")));
    th_resp_free(&r);
    r = th_get(w.manager1_key, V1 "/distribution");
    cr_assert_eq(r.status, 403, "distribution is not a manager key's");
    th_resp_free(&r);
}

Test(distribution, equal_weights_rotate_by_id_and_the_head_never_gets_a_lead)
{
    for (int i = 0; i < 10; i++)
        cr_assert_eq(new_lead(true), i % 2 == 0 ? w.manager1 : w.manager2, "lead %d", i);
    /* every choice is logged with its reason, and the deal's first history row already has the manager */
    struct th_resp r = th_get(w.readonly_key, V1 "/distribution/assignments?kind=lead&limit=500");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 10);
    json_t *first = json_array_get(items, 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "reason")), "new_deal");
    cr_assert_str_eq(json_string_value(json_object_get(first, "strategy")), "weighted");
    cr_assert_eq(json_integer_value(json_object_get(first, "manager_id")), w.manager1);
    int64_t deal = json_integer_value(json_object_get(first, "deal_id"));
    th_resp_free(&r);
    r = th_get(w.acct.admin_key, V1 "/deals/%lld/history", (long long)deal);
    json_t *row = json_array_get(json_object_get(r.json, "items"), 0);
    cr_assert_eq(json_integer_value(json_object_get(row, "manager_id")), w.manager1, "%s", r.body);
    th_resp_free(&r);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM deals WHERE account_id = %lld AND creator_manager_id = %lld",
                            (long long)w.acct.id, (long long)w.head),
                 0);
}

Test(distribution, unequal_weights_give_exact_shares_over_1000_leads)
{
    int64_t third = th_manager_new(w.acct.admin_key, "Third", "manager");
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"weight\":3}");
    th_patch_manager(w.acct.admin_key, third, "{\"weight\":6}");
    int counts[3] = {0};
    for (int i = 0; i < 1000; i++) {
        int64_t m = new_lead(true);
        int k = m == w.manager1 ? 0 : m == w.manager2 ? 1 : m == third ? 2 : -1;
        cr_assert(k >= 0, "lead %d went to %lld", i, (long long)m);
        counts[k]++;
        if ((i + 1) % 10 == 0) /* a full cycle of weights 1 + 3 + 6 */
            cr_assert(counts[0] * 10 == (i + 1) && counts[1] * 10 == 3 * (i + 1) && counts[2] * 10 == 6 * (i + 1),
                      "after %d leads: %d %d %d", i + 1, counts[0], counts[1], counts[2]);
    }
    /* round robin ignores the weights */
    put_settings("{\"strategy\":\"round_robin\"}");
    int rr[3] = {0};
    for (int i = 0; i < 30; i++) {
        int64_t m = new_lead(true);
        rr[m == w.manager1 ? 0 : m == w.manager2 ? 1 : 2]++;
    }
    cr_assert(rr[0] == 10 && rr[1] == 10 && rr[2] == 10, "%d %d %d", rr[0], rr[1], rr[2]);
}

Test(distribution, a_given_manager_or_a_manager_key_skips_distribution)
{
    struct th_resp r = th_post(w.acct.admin_key, V1 "/deals", "{\"name\":\"x\",\"price\":1,\"pipeline_id\":%lld,"
                                                              "\"manager_id\":%lld}",
                               (long long)w.pipeline_id, (long long)w.manager2);
    cr_assert_eq(r.status, 201);
    cr_assert_null(json_object_get(r.json, "distribution"), "%s", r.body);
    th_resp_free(&r);
    r = th_post(w.manager2_key, V1 "/deals", "{\"name\":\"own\",\"price\":1,\"pipeline_id\":%lld}",
                (long long)w.pipeline_id);
    cr_assert_eq(r.status, 201);
    cr_assert_null(json_object_get(r.json, "distribution"), "%s", r.body);
    cr_assert_eq(th_int(&r, "manager_id"), w.manager2);
    th_resp_free(&r);
    cr_assert_eq(th_count_rows("assignments", w.acct.id), 0);
}

Test(distribution, calls_have_their_own_cursor)
{
    cr_assert_eq(new_lead(true), w.manager1);
    int64_t expect[] = {w.manager1, w.manager2, w.manager1};
    for (int i = 0; i < 3; i++) {
        struct th_resp r = th_post(w.head_key, V1 "/distribution/next", "{\"kind\":\"call\"}");
        cr_assert_eq(r.status, 200, "%s", r.body);
        cr_assert_eq(th_int(&r, "manager_id"), expect[i], "call %d: %s", i, r.body);
        cr_assert_str_eq(th_str(&r, "kind"), "call");
        th_resp_free(&r);
    }
    cr_assert_eq(new_lead(true), w.manager2, "the lead cursor did not move with the calls");
    struct th_resp r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"lead\"}");
    cr_assert_eq(th_int(&r, "manager_id"), w.manager1);
    th_resp_free(&r);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM assignments WHERE account_id = %lld AND reason = 'next'",
                            (long long)w.acct.id),
                 4);
    r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"meeting\"}");
    cr_assert_eq(r.status, 422);
    th_resp_free(&r);
    r = th_post(w.manager1_key, V1 "/distribution/next", "{\"kind\":\"call\"}");
    cr_assert_eq(r.status, 403);
    th_resp_free(&r);
    th_patch_manager(w.acct.admin_key, w.manager1, "{\"distribution_enabled\":false}");
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"active\":false}");
    r = th_post(w.acct.admin_key, V1 "/distribution/next", "{\"kind\":\"call\"}");
    cr_assert_eq(r.status, 409);
    cr_assert_str_eq(th_code(&r), "no_eligible_manager");
    th_resp_free(&r);
}

/* The account's local day (0 = Monday) and minute now, for a zone with a fixed offset in minutes. */
static void local_now(int offset_min, int *dow, int *minute)
{
    time_t t = time(NULL) + offset_min * 60;
    struct tm tm;
    gmtime_r(&t, &tm);
    *dow = (tm.tm_wday + 6) % 7;
    *minute = tm.tm_hour * 60 + tm.tm_min;
}

static const char *const days[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

Test(distribution, working_hours_are_read_in_the_accounts_zone_and_across_midnight)
{
    struct th_resp r = th_patch(w.acct.admin_key, V1 "/account", "{\"timezone\":\"Asia/Kamchatka\"}"); /* UTC+12 */
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    int dow, minute;
    local_now(12 * 60, &dow, &minute);
    char body[256];
    /* hours only on another day: everyone is off hours */
    snprintf(body, sizeof body, "{\"working_hours\":{\"%s\":[\"00:00-24:00\"]}}", days[(dow + 3) % 7]);
    put_settings(body);
    json_t *d = get_distribution();
    expect_reason(d, w.manager1, "off_hours");
    expect_reason(d, w.manager2, "off_hours");
    expect_reason(d, w.head, "not_a_manager");
    json_decref(d);
    cr_assert_eq(new_lead(false), 0);
    /* today in the account's zone, which is not today in UTC for half of the day */
    snprintf(body, sizeof body, "{\"working_hours\":{\"%s\":[\"00:00-24:00\"]}}", days[dow]);
    put_settings(body);
    d = get_distribution();
    expect_reason(d, w.manager1, NULL);
    json_decref(d);
    /* yesterday's night shift runs past midnight into now; the same range starting today does not cover now */
    if (minute + 1 < 23 * 60 + 59) {
        snprintf(body, sizeof body, "{\"working_hours\":{\"%s\":[\"23:59-%02d:%02d\"]}}", days[(dow + 6) % 7],
                 (minute + 1) / 60, (minute + 1) % 60);
        put_settings(body);
        d = get_distribution();
        expect_reason(d, w.manager1, NULL);
        json_decref(d);
        snprintf(body, sizeof body, "{\"working_hours\":{\"%s\":[\"23:59-%02d:%02d\"]}}", days[dow],
                 (minute + 1) / 60, (minute + 1) % 60);
        put_settings(body);
        d = get_distribution();
        expect_reason(d, w.manager1, "off_hours");
        json_decref(d);
    }
}

Test(distribution, a_deal_without_an_eligible_manager_waits_and_is_assigned_oldest_first)
{
    th_patch_manager(w.acct.admin_key, w.manager1, "{\"distribution_enabled\":false}");
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"distribution_enabled\":false}");
    cr_assert_eq(new_lead(false), 0);
    int64_t first = last_deal_id();
    cr_assert_eq(new_lead(false), 0);
    int64_t second = last_deal_id();
    json_t *d = get_distribution();
    cr_assert_eq(json_integer_value(json_object_get(d, "awaiting")), 2);
    json_decref(d);
    cr_assert_eq(th_count_rows("assignments", w.acct.id), 0);
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"distribution_enabled\":true}");
    /* the scheduler assigns both within a second or two, without a request */
    int64_t assigned =
        th_wait_sql_int(2, 3000, "SELECT count(*) FROM deals WHERE account_id = %lld AND manager_id = %lld",
                        (long long)w.acct.id, (long long)w.manager2);
    cr_assert_eq(assigned, 2, "waiting deals not assigned within 3 s");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM assignments WHERE account_id = %lld AND reason = 'awaited' AND "
                            "manager_id = %lld",
                            (long long)w.acct.id, (long long)w.manager2),
                 2);
    cr_assert_eq(th_sql_int("SELECT deal_id FROM assignments WHERE account_id = %lld ORDER BY id LIMIT 1",
                            (long long)w.acct.id),
                 first, "oldest first");
    cr_assert_eq(th_sql_int("SELECT creator_manager_id FROM deals WHERE account_id = %lld AND id = %lld",
                            (long long)w.acct.id, (long long)second),
                 w.manager2, "the manager counts as the creator");
    d = get_distribution();
    cr_assert_eq(json_integer_value(json_object_get(d, "awaiting")), 0);
    json_decref(d);
    /* the deal's history: created without a manager, then given to manager2 */
    struct th_resp r = th_get(w.acct.admin_key, V1 "/deals/%lld/history", (long long)first);
    json_t *items = json_object_get(r.json, "items");
    cr_assert_eq(json_array_size(items), 2, "%s", r.body);
    cr_assert(json_is_null(json_object_get(json_array_get(items, 0), "manager_id")));
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(items, 1), "manager_id")), w.manager2);
    th_resp_free(&r);
}

static void post_events(const char *events)
{
    struct th_resp r = th_post_events(w.acct.admin_key, events);
    cr_assert(th_int(&r, "accepted") >= 1, "%s", r.body);
    th_resp_free(&r);
}

static int64_t deal_manager(const char *ext)
{
    return th_sql_int("SELECT coalesce(manager_id, 0) FROM deals WHERE account_id = %lld AND external_id = '%s'",
                      (long long)w.acct.id, ext);
}

Test(distribution, live_events_are_distributed_history_is_not)
{
    char now[32], old[32];
    int64_t t = (int64_t)time(NULL);
    th_format_time(t, now);
    th_format_time(t - 25 * 3600, old);
    char body[1024];
    snprintf(body, sizeof body,
             "[{\"id\":\"e1\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"live\",\"name\":\"L\","
             "\"price\":1,\"pipeline\":\"p1\"}},"
             "{\"id\":\"e2\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"old\",\"name\":\"O\","
             "\"price\":1,\"pipeline\":\"p1\"}}]",
             now, old);
    post_events(body);
    cr_assert_eq(deal_manager("live"), w.manager1);
    cr_assert_eq(deal_manager("old"), 0, "an event older than 24 h is history: not distributed");
    json_t *d = get_distribution();
    cr_assert_eq(json_integer_value(json_object_get(d, "awaiting")), 0, "history does not wait either");
    json_decref(d);
    /* a live deal given to an amoCRM pool user is distributed, with that reason */
    snprintf(body, sizeof body,
             "[{\"id\":\"e3\",\"type\":\"manager.upserted\",\"at\":\"%s\",\"data\":{\"manager\":\"pool\","
             "\"name\":\"Pool\"}}]",
             now);
    post_events(body);
    th_sql_int("UPDATE managers SET pool_user = true WHERE account_id = %lld AND external_id = 'pool'",
               (long long)w.acct.id);
    snprintf(body, sizeof body,
             "[{\"id\":\"e4\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"pooled\",\"name\":\"P\","
             "\"price\":1,\"pipeline\":\"p1\",\"manager\":\"pool\"}}]",
             now);
    post_events(body);
    cr_assert_eq(deal_manager("pooled"), w.manager2);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM assignments a JOIN deals d ON d.account_id = a.account_id AND "
                            "d.id = a.deal_id WHERE a.account_id = %lld AND d.external_id = 'pooled' AND a.reason = "
                            "'pool_user'",
                            (long long)w.acct.id),
                 1);
    /* in one batch, the pool user's deals around another manager's: each is judged by its own manager */
    char body2[2048];
    snprintf(body2, sizeof body2,
             "[{\"id\":\"e5\",\"type\":\"manager.upserted\",\"at\":\"%s\",\"data\":{\"manager\":\"own\","
             "\"name\":\"Own\"}},"
             "{\"id\":\"e6\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"pooled2\","
             "\"name\":\"P\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"pool\"}},"
             "{\"id\":\"e7\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"kept\","
             "\"name\":\"K\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"own\"}},"
             "{\"id\":\"e8\",\"type\":\"deal.created\",\"at\":\"%s\",\"data\":{\"deal\":\"pooled3\","
             "\"name\":\"P\",\"price\":1,\"pipeline\":\"p1\",\"manager\":\"pool\"}}]",
             now, now, now, now);
    post_events(body2);
    int64_t pool = th_sql_int("SELECT id FROM managers WHERE account_id = %lld AND external_id = 'pool'",
                              (long long)w.acct.id);
    int64_t own = th_sql_int("SELECT id FROM managers WHERE account_id = %lld AND external_id = 'own'",
                             (long long)w.acct.id);
    cr_assert_eq(deal_manager("kept"), own, "a deal given to a manager who is not a pool user stays his");
    int64_t m2 = deal_manager("pooled2"), m3 = deal_manager("pooled3");
    cr_assert(m2 != 0 && m2 != pool && m3 != 0 && m3 != pool, "both pool user's deals are distributed: %lld %lld",
              (long long)m2, (long long)m3);
    cr_assert_eq(th_sql_int("SELECT count(*) FROM assignments WHERE account_id = %lld AND reason = 'pool_user'",
                            (long long)w.acct.id),
                 3);
}

Test(distribution, an_amocrm_lead_for_a_pool_user_is_distributed_and_written_back)
{
    /* the integration exists (its API is unreachable: writes stay in the outbox) */
    struct th_resp r = th_put(w.acct.admin_key, V1 "/integrations/amocrm",
                              "{\"subdomain\":\"acme\",\"base_url\":\"http://127.0.0.1:9\",\"access_token\":\"t\","
                              "\"pool_user_ids\":[8800001]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    th_patch_manager(w.acct.admin_key, w.manager2, "{\"external_id\":\"8800002\"}");
    r = th_post(w.acct.admin_key, V1 "/managers", "{\"name\":\"Pool\",\"role\":\"manager\",\"external_id\":\"8800001\","
                                                  "\"distribution_enabled\":false}");
    cr_assert_eq(r.status, 201);
    th_resp_free(&r);
    th_sql_int("UPDATE managers SET pool_user = true WHERE account_id = %lld AND external_id = '8800001'",
               (long long)w.acct.id);
    th_patch_manager(w.acct.admin_key, w.manager1, "{\"distribution_enabled\":false}");
    th_post_webhook_ok(w.acct.webhook_token, leads_add);
    int64_t m = th_wait_sql_int(w.manager2, 5000,
                                "SELECT coalesce(max(manager_id), 0) FROM deals WHERE account_id = %lld AND "
                                "external_id = '40310001'",
                                (long long)w.acct.id);
    cr_assert_eq(m, w.manager2, "the lead went to the only eligible manager");
    cr_assert_eq(th_sql_int("SELECT count(*) FROM outbox WHERE account_id = %lld AND kind = 'lead_responsible' AND "
                            "payload::jsonb = '{\"lead_id\":\"40310001\",\"responsible_user_id\":\"8800002\"}'",
                            (long long)w.acct.id),
                 1, "the choice is written back to amoCRM");
}

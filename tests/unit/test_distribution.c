/* Lead distribution's rules without a database: smooth weighted round robin fairness, eligibility reasons in
 * PRODUCT.md's order, and working hours in the account's zone (given as a local day and minute). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/distribution.h"

static struct dist_candidate manager(int64_t id, int weight)
{
    return (struct dist_candidate){
        .manager_id = id, .role = "manager", .active = true, .enabled = true, .weight = weight};
}

/* Runs `leads` picks over the candidates and checks, after every pick, that each manager's count is within one
 * lead of his exact share, and at every full cycle (sum of weights) exactly his share. */
static void check_fairness(struct dist_candidate *c, int n, bool weighted, int leads, int counts[])
{
    bool eligible[16];
    int total_weight = 0;
    for (int i = 0; i < n; i++) {
        eligible[i] = true;
        total_weight += weighted ? c[i].weight : 1;
        counts[i] = 0;
    }
    for (int k = 1; k <= leads; k++) {
        int pick = dist_pick(c, eligible, n, weighted);
        cr_assert(pick >= 0 && pick < n);
        counts[pick]++;
        for (int i = 0; i < n; i++) {
            double share = (double)k * (weighted ? c[i].weight : 1) / total_weight;
            cr_assert(fabs(counts[i] - share) < 1.0, "after %d leads manager %d has %d, share %.2f", k, i,
                      counts[i], share);
            if (k % total_weight == 0)
                cr_assert_eq(counts[i] * total_weight, k * (weighted ? c[i].weight : 1),
                             "cycle end at %d leads: manager %d has %d", k, i, counts[i]);
        }
    }
}

Test(distribution, equal_weights_over_1000_leads_are_a_plain_rotation)
{
    struct dist_candidate c[4] = {manager(3, 1), manager(5, 1), manager(8, 1), manager(9, 1)};
    int counts[4];
    check_fairness(c, 4, true, 1000, counts);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(counts[i], 250);
    /* and in order of id: 3, 5, 8, 9, 3, ... */
    struct dist_candidate d[3] = {manager(1, 1), manager(2, 1), manager(3, 1)};
    bool all[3] = {true, true, true};
    for (int k = 0; k < 9; k++)
        cr_assert_eq(dist_pick(d, all, 3, true), k % 3);
}

Test(distribution, unequal_weights_over_1000_leads_match_the_weights)
{
    struct dist_candidate c[4] = {manager(1, 1), manager(2, 2), manager(3, 3), manager(4, 4)};
    int counts[4];
    check_fairness(c, 4, true, 1000, counts);
    cr_assert_eq(counts[0], 100);
    cr_assert_eq(counts[1], 200);
    cr_assert_eq(counts[2], 300);
    cr_assert_eq(counts[3], 400);
}

Test(distribution, smooth_order_is_nginx_s)
{
    /* nginx's documented example: weights a=5, b=1, c=1 give a a b a c a a */
    struct dist_candidate c[3] = {manager(1, 5), manager(2, 1), manager(3, 1)};
    bool all[3] = {true, true, true};
    const int expect[] = {0, 0, 1, 0, 2, 0, 0};
    for (int k = 0; k < 7; k++)
        cr_assert_eq(dist_pick(c, all, 3, true), expect[k], "pick %d", k);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(c[i].current, 0, "a full cycle returns every current weight to 0");
}

Test(distribution, round_robin_ignores_weights)
{
    struct dist_candidate c[3] = {manager(1, 5), manager(2, 1), manager(3, 100)};
    int counts[3];
    check_fairness(c, 3, false, 999, counts);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(counts[i], 333);
}

Test(distribution, ties_go_to_the_lowest_id_and_ineligible_managers_are_skipped)
{
    struct dist_candidate c[3] = {manager(1, 2), manager(2, 2), manager(3, 2)};
    bool eligible[3] = {false, true, true};
    cr_assert_eq(dist_pick(c, eligible, 3, true), 1);
    cr_assert_eq(c[0].current, 0, "an ineligible manager's state does not move");
    cr_assert_eq(dist_pick(c, eligible, 3, true), 2);
    bool none[3] = {false, false, false};
    cr_assert_eq(dist_pick(c, none, 3, true), -1);
    cr_assert_eq(c[1].current, 0);
    cr_assert_eq(c[2].current, 0);
}

Test(distribution, reasons_come_in_product_order)
{
    struct dist_candidate m = manager(1, 1);
    cr_assert_null(dist_ineligible_reason(&m, false));
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "off_hours");
    m.in_focus = true;
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "in_focus");
    m.enabled = false;
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "disabled");
    m.active = false;
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "inactive");
    m.pool_user = true;
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "pool_user");
    m.role = "head";
    cr_assert_str_eq(dist_ineligible_reason(&m, true), "not_a_manager");
    m = manager(2, 1);
    m.role = "admin";
    cr_assert_str_eq(dist_ineligible_reason(&m, false), "not_a_manager");
}

static struct working_hours hours(const char *json)
{
    json_error_t e;
    json_t *v = json_loads(json, 0, &e);
    cr_assert_not_null(v, "%s", e.text);
    struct working_hours wh;
    struct so_error err = {0};
    cr_assert_eq(working_hours_parse(v, "working_hours", &wh, &err), SO_OK, "%s", json);
    json_decref(v);
    return wh;
}

#define MIN(h, m) ((h) * 60 + (m))
enum { MON, TUE, WED, THU, FRI, SAT, SUN };

Test(distribution, working_hours_start_inclusive_end_exclusive)
{
    struct working_hours wh = hours("{\"mon\":[\"09:00-13:00\",\"14:00-18:00\"]}");
    cr_assert_not(working_hours_contains(&wh, MON, MIN(8, 59)));
    cr_assert(working_hours_contains(&wh, MON, MIN(9, 0)));
    cr_assert(working_hours_contains(&wh, MON, MIN(12, 59)));
    cr_assert_not(working_hours_contains(&wh, MON, MIN(13, 0)), "lunch");
    cr_assert(working_hours_contains(&wh, MON, MIN(14, 0)));
    cr_assert_not(working_hours_contains(&wh, MON, MIN(18, 0)));
    cr_assert_not(working_hours_contains(&wh, TUE, MIN(10, 0)), "a missing day has no hours");
    struct working_hours none = {0};
    cr_assert(working_hours_contains(&none, SUN, MIN(3, 0)), "no working hours: always inside");
}

Test(distribution, a_range_across_midnight_belongs_to_its_start_day)
{
    struct working_hours wh = hours("{\"fri\":[\"22:00-02:00\"],\"sun\":[\"23:00-01:00\"]}");
    cr_assert_not(working_hours_contains(&wh, FRI, MIN(21, 59)));
    cr_assert(working_hours_contains(&wh, FRI, MIN(22, 0)));
    cr_assert(working_hours_contains(&wh, FRI, MIN(23, 59)));
    cr_assert(working_hours_contains(&wh, SAT, MIN(0, 0)), "Saturday 00:00 is Friday's night shift");
    cr_assert(working_hours_contains(&wh, SAT, MIN(1, 59)));
    cr_assert_not(working_hours_contains(&wh, SAT, MIN(2, 0)));
    cr_assert_not(working_hours_contains(&wh, FRI, MIN(1, 0)), "Friday 01:00 belongs to Thursday's range");
    cr_assert(working_hours_contains(&wh, MON, MIN(0, 30)), "Sunday's range runs into Monday");
    cr_assert_not(working_hours_contains(&wh, MON, MIN(1, 0)));
    struct working_hours day = hours("{\"tue\":[\"00:00-24:00\"]}");
    cr_assert(working_hours_contains(&day, TUE, 0));
    cr_assert(working_hours_contains(&day, TUE, MIN(23, 59)));
    cr_assert_not(working_hours_contains(&day, WED, 0));
}

Test(distribution, working_hours_round_trip_with_all_days)
{
    struct working_hours wh = hours("{\"wed\":[\"08:30-17:15\"]}");
    json_t *out = working_hours_json(&wh);
    char *text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    cr_assert_str_eq(text, "{\"fri\":[],\"mon\":[],\"sat\":[],\"sun\":[],\"thu\":[],\"tue\":[],\"wed\":[\"08:30-17:"
                           "15\"]}");
    free(text);
    json_decref(out);
}

Test(distribution, bad_working_hours_name_each_bad_part)
{
    const char *bad[] = {"[]",
                         "{\"monday\":[]}",
                         "{\"mon\":\"09:00-18:00\"}",
                         "{\"mon\":[\"9:00-18:00\"]}",
                         "{\"mon\":[\"09:00-18:60\"]}",
                         "{\"mon\":[\"24:00-02:00\"]}",
                         "{\"mon\":[\"09:00-09:00\"]}",
                         "{\"mon\":[\"09:00-25:00\"]}",
                         "{\"mon\":[\"09:00-24:01\"]}",
                         "{\"mon\":[\"09:00 18:00\"]}",
                         "{\"mon\":[9]}",
                         "{\"mon\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_loads(bad[i], 0, NULL);
        cr_assert_not_null(v);
        struct working_hours wh;
        struct so_error err = {0};
        cr_expect_eq(working_hours_parse(v, "working_hours", &wh, &err), ERR_VALIDATION, "%s accepted", bad[i]);
        cr_expect_not_null(err.errors, "%s: no field errors", bad[i]);
        so_error_clear(&err);
        json_decref(v);
    }
    json_t *v = json_loads("{\"mon\":[\"09:00-18:00\",\"x\"],\"tue\":[\"25:00-26:00\"]}", 0, NULL);
    struct working_hours wh;
    struct so_error err = {0};
    cr_assert_eq(working_hours_parse(v, "working_hours", &wh, &err), ERR_VALIDATION);
    cr_assert_eq(json_array_size(err.errors), 2, "both bad ranges are named");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(err.errors, 0), "field")),
                     "working_hours.mon[1]");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(err.errors, 1), "field")),
                     "working_hours.tue[0]");
    so_error_clear(&err);
    json_decref(v);
}

/* Found by fuzz_dates: an unknown day's name is cut to 16 bytes in the field name. Cut inside a character
 * ("Ť" is 2 bytes, the 16th and 17th), it was not UTF-8: jansson refused the field error, and the 422 named
 * no field. */
Test(distribution, an_unknown_day_cut_inside_a_character_is_still_named)
{
    json_t *v = json_loads("{\"f-27T09:30:10.o\xc5\xa4ri\":[\"21:00-03:00\"]}", 0, NULL);
    cr_assert_not_null(v);
    struct working_hours wh;
    struct so_error err = {0};
    cr_assert_eq(working_hours_parse(v, "working_hours", &wh, &err), ERR_VALIDATION);
    cr_assert_eq(json_array_size(err.errors), 1, "the unknown day is named");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(err.errors, 0), "field")),
                     "working_hours.f-27T09:30:10.o");
    so_error_clear(&err);
    json_decref(v);
}

/* Analytics arithmetic without a database: PRODUCT.md's rounding of ratios and averages, verdicts against
 * targets, and the checklist's findings in Russian. */
#include <criterion/criterion.h>
#include "salesops/domain.h"

Test(analytics, ratios_round_half_away_from_zero_to_4_decimals)
{
    int64_t q;
    cr_assert(domain_ratio4(1, 3, &q) && q == 3333);
    cr_assert(domain_ratio4(2, 3, &q) && q == 6667);
    cr_assert(domain_ratio4(1, 8, &q) && q == 1250);
    cr_assert(domain_ratio4(1, 20000, &q) && q == 1, "0.00005 rounds away from zero to 0.0001");
    cr_assert(domain_ratio4(-1, 20000, &q) && q == -1, "and -0.00005 to -0.0001");
    cr_assert(domain_ratio4(7, 5, &q) && q == 14000, "a ratio may exceed 1");
    cr_assert(domain_ratio4(0, 9, &q) && q == 0);
    cr_assert_not(domain_ratio4(3, 0, &q), "null when the denominator is 0");
}

Test(analytics, averages_are_whole_seconds_rounded_half_up)
{
    int64_t a;
    cr_assert(domain_avg_s(5, 2, &a) && a == 3, "2.5 -> 3");
    cr_assert(domain_avg_s(7, 3, &a) && a == 2, "2.33 -> 2");
    cr_assert(domain_avg_s(8, 3, &a) && a == 3, "2.67 -> 3");
    cr_assert_not(domain_avg_s(0, 0, &a));
}

static struct kpi_values one(int figure, bool present, int64_t v)
{
    struct kpi_values x = {0};
    x.present[figure] = present;
    x.v[figure] = v;
    return x;
}

Test(analytics, verdicts_for_min_and_max)
{
    int calls = kpi_figure_index("outgoing_calls"), missed = kpi_figure_index("missed_deals"),
        share = kpi_figure_index("on_time_share");
    cr_assert(calls >= 0 && missed >= 0 && share >= 0);
    cr_assert_eq(kpi_figure_index("no_such_figure"), -1);
    struct so_target min = {"outgoing_calls", 10, "min", 3}, max = {"missed_deals", 5, "max", 2},
                     ratio = {"on_time_share", 0.8, "min", 0.1};
    struct kpi_values v = one(calls, true, 10);
    cr_assert_str_eq(domain_verdict(&min, calls, &v), "ok", "value >= target");
    v = one(calls, true, 7);
    cr_assert_str_eq(domain_verdict(&min, calls, &v), "warn", "within warn_within below");
    v = one(calls, true, 6);
    cr_assert_str_eq(domain_verdict(&min, calls, &v), "bad");
    v = one(missed, true, 5);
    cr_assert_str_eq(domain_verdict(&max, missed, &v), "ok");
    v = one(missed, true, 7);
    cr_assert_str_eq(domain_verdict(&max, missed, &v), "warn");
    v = one(missed, true, 8);
    cr_assert_str_eq(domain_verdict(&max, missed, &v), "bad");
    v = one(share, true, 7000);
    cr_assert_str_eq(domain_verdict(&ratio, share, &v), "warn", "0.7 is within 0.1 of 0.8");
    v = one(share, true, 6999);
    cr_assert_str_eq(domain_verdict(&ratio, share, &v), "bad");
    v = one(share, false, 0);
    cr_assert_null(domain_verdict(&ratio, share, &v), "no value, no verdict");
    cr_assert_null(domain_verdict(NULL, share, &v), "no target, no verdict");
}

Test(analytics, findings_read_as_plain_russian)
{
    char buf[512];
    int without = kpi_figure_index("deals_without_tasks");
    domain_finding_text("Иванова Анна", without, true, 14, true, 6, buf, sizeof buf);
    cr_assert_str_eq(buf, "Иванова Анна: 14 сделок без задач, на 6 больше, чем неделей ранее");
    domain_finding_text("Петров Сергей", without, true, 1, true, -2, buf, sizeof buf);
    cr_assert_str_eq(buf, "Петров Сергей: 1 сделка без задач, на 2 меньше, чем неделей ранее");
    domain_finding_text("Петров Сергей", without, true, 22, true, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "Петров Сергей: 22 сделки без задач, столько же, сколько неделей ранее");
    domain_finding_text("Петров Сергей", without, true, 11, false, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "Петров Сергей: 11 сделок без задач, неделей ранее данных нет");
    domain_finding_text("Кузнецова Мария", kpi_figure_index("on_time_share"), true, 6250, true, -1250, buf,
                        sizeof buf);
    cr_assert_str_eq(buf, "Кузнецова Мария: доля задач в срок 62,5%, на 12,5 п.п. меньше, чем неделей ранее");
    domain_finding_text("Кузнецова Мария", kpi_figure_index("talk_time_s"), true, 8100, true, 900, buf,
                        sizeof buf);
    cr_assert_str_eq(buf, "Кузнецова Мария: время разговоров 2 ч 15 мин, на 15 мин больше, чем неделей ранее");
    domain_finding_text("Кузнецова Мария", kpi_figure_index("overdue_avg_s"), false, 0, false, 0, buf, sizeof buf);
    cr_assert_str_eq(buf, "Кузнецова Мария: средняя просрочка: нет данных, неделей ранее данных нет");
}

Test(analytics, a_row_becomes_values_with_nulls_where_the_definition_says_null)
{
    struct so_kpi_row k = {.deals_created = 8, .won = 1, .lost = 2, .tasks_due = 0, .overdue_total_s = 0,
                           .late_tasks = 0, .deals_without_tasks = 3, .deals_with_overdue_tasks = 2};
    struct kpi_values v;
    domain_kpi_values(&k, &v);
    int conv = kpi_figure_index("conversion"), close = kpi_figure_index("close_rate"),
        share = kpi_figure_index("on_time_share"), avg = kpi_figure_index("overdue_avg_s"),
        missed = kpi_figure_index("missed_deals");
    cr_assert(v.present[conv] && v.v[conv] == 1250);
    cr_assert(v.present[close] && v.v[close] == 3333);
    cr_assert_not(v.present[share], "no task due: on_time_share is null");
    cr_assert_not(v.present[avg], "no late task: overdue_avg_s is null");
    cr_assert(v.present[missed] && v.v[missed] == 5);
}

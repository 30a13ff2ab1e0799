/* Time parsing and formatting (timeutil.h). Expected epoch values were computed independently with
 * `date -u -d <time> +%s` and are written here as numbers. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>
#include "salesops/timeutil.h"

/* Text is held by value (not as a pointer) so that each parameter is self-contained in the test process. */
struct time_case {
    char text[48];
    long long epoch;
};

struct bad_text {
    char text[48];
};

/* ---- so_parse_time: accepted inputs ---- */

ParameterizedTestParameters(parse_time, accepts_rfc3339_with_exact_epoch)
{
    static struct time_case cases[] = {
        {"2026-01-31T09:00:00Z", 1769850000LL},
        {"2026-01-31T09:00:00+03:00", 1769839200LL},
        {"2026-01-31T09:00:00-05:30", 1769869800LL},
        {"2026-01-31T09:00:00+00:00", 1769850000LL},
        {"2026-01-31T00:00:00-00:00", 1769817600LL},
        {"2026-01-31t09:00:00z", 1769850000LL},           /* lowercase separators */
        {"2026-01-31T09:00:00.123456Z", 1769850000LL},    /* fraction truncated */
        {"2026-01-31T09:00:00.999999999Z", 1769850000LL}, /* never rounded up */
        {"2026-01-31T09:00:00.5+03:00", 1769839200LL},    /* fraction and offset */
        {"2026-01-01T01:00:00+03:00", 1767218400LL},      /* offset crosses into the previous year */
        {"2026-03-29T02:30:00+02:00", 1774744200LL},
        {"2024-02-29T00:00:00Z", 1709164800LL}, /* leap day */
        {"2024-02-29T23:59:59Z", 1709251199LL},
        {"2000-02-29T12:34:56Z", 951827696LL}, /* 2000 is a leap year (divisible by 400) */
        {"1999-12-31T23:59:59Z", 946684799LL},
        {"2000-01-01T00:00:00Z", 946684800LL},
        {"2038-01-19T03:14:08Z", 2147483648LL}, /* past 32-bit time_t */
        {"1970-01-01T00:00:00Z", 0LL},
        {"1970-01-02T00:00:00Z", 86400LL},
        {"1969-12-31T23:59:59Z", -1LL},
        {"9999-12-31T23:59:59Z", 253402300799LL},
        {"2016-12-31T23:59:60Z", 1483228799LL}, /* a leap second reads as the second before */
    };
    return cr_make_param_array(struct time_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct time_case *c, parse_time, accepts_rfc3339_with_exact_epoch)
{
    int64_t t = 12345;
    cr_assert(so_parse_time(c->text, &t), "rejected %s", c->text);
    cr_expect_eq(t, c->epoch, "%s: got %lld, expected %lld", c->text, (long long)t, c->epoch);
}

/* ---- so_parse_time: rejected inputs ---- */

ParameterizedTestParameters(parse_time, rejects_invalid_text)
{
    static struct bad_text cases[] = {
        {""},
        {"2026-01-31"},          /* a date is not a time */
        {"2026-01-31T09:00:00"}, /* no zone */
        {"2026-01-31T09:00Z"},   /* no seconds */
        {"2026-01-31T9:00:00Z"}, /* one-digit hour */
        {"2026-1-31T09:00:00Z"}, /* one-digit month */
        {"26-01-31T09:00:00Z"},  /* two-digit year */
        {"2026/01/31T09:00:00Z"},
        {"2026-01-31X09:00:00Z"}, /* bad separator */
        {"2023-02-29T00:00:00Z"}, /* not a leap year */
        {"1900-02-29T00:00:00Z"}, /* century, not a leap year */
        {"2026-02-30T00:00:00Z"},
        {"2026-04-31T00:00:00Z"},
        {"2026-01-32T00:00:00Z"},
        {"2026-01-00T00:00:00Z"},
        {"2026-00-10T00:00:00Z"},
        {"2026-13-01T00:00:00Z"},
        {"2026-01-31T24:00:00Z"},
        {"2026-01-31T23:60:00Z"},
        {"2026-01-31T23:59:61Z"},
        {"2026-01-31T09:00:00.Z"},    /* a dot needs digits */
        {"2026-01-31T09:00:00+0300"}, /* offset without colon */
        {"2026-01-31T09:00:00+03"},   /* short offset */
        {"2026-01-31T09:00:00+3:00"},
        {"2026-01-31T09:00:00+24:00"},
        {"2026-01-31T09:00:00+03:60"},
        {"2026-01-31T09:00:00Zjunk"}, /* trailing garbage */
        {"2026-01-31T09:00:00Z "},
        {"2026-01-31T09:00:00+03:00x"},
        {"2026-01-31T09:00:00+03:00Z"},
        {"2026-01-31T09:00:00.123"}, /* fraction without zone */
        {" 2026-01-31T09:00:00Z"},   /* leading space */
        {"+2026-01-31T09:00:00Z"},
        {"2026-01-31T09:00:00UTC"},
    };
    return cr_make_param_array(struct bad_text, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_text *c, parse_time, rejects_invalid_text)
{
    int64_t t = 777;
    cr_expect_not(so_parse_time(c->text, &t), "accepted \"%s\" as %lld", c->text, (long long)t);
}

Test(parse_time, leap_day_exists_only_in_leap_years)
{
    int64_t t = 0;
    cr_expect(so_parse_time("2024-02-29T12:00:00Z", &t));
    cr_expect_eq(t, 1709208000LL);
    cr_expect_not(so_parse_time("2023-02-29T12:00:00Z", &t));
    cr_expect_not(so_parse_time("2100-02-29T12:00:00Z", &t));
}

Test(parse_time, same_instant_in_different_offsets_is_equal)
{
    int64_t utc = 0, moscow = 0, india = 0, newyork = 0;
    cr_assert(so_parse_time("2026-01-31T09:00:00Z", &utc));
    cr_assert(so_parse_time("2026-01-31T12:00:00+03:00", &moscow));
    cr_assert(so_parse_time("2026-01-31T14:30:00+05:30", &india));
    cr_assert(so_parse_time("2026-01-31T04:00:00-05:00", &newyork));
    cr_expect_eq(moscow, utc);
    cr_expect_eq(india, utc);
    cr_expect_eq(newyork, utc);
}

/* ---- so_parse_date ---- */

struct date_case {
    char text[16];
    long long days;
};

ParameterizedTestParameters(parse_date, gives_days_since_epoch)
{
    static struct date_case cases[] = {
        {"1970-01-01", 0},     {"1970-01-02", 1},     {"1969-12-31", -1},    {"2026-01-31", 20484},
        {"2024-02-29", 19782}, {"2000-03-01", 11017}, {"2100-03-01", 47541}, {"1600-01-01", -135140},
    };
    return cr_make_param_array(struct date_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct date_case *c, parse_date, gives_days_since_epoch)
{
    int64_t days = 999999;
    cr_assert(so_parse_date(c->text, &days), "rejected %s", c->text);
    cr_expect_eq(days, c->days, "%s: got %lld, expected %lld", c->text, (long long)days, c->days);
}

Test(parse_date, rejects_invalid_dates_and_extra_text)
{
    static const char *const bad[] = {
        "",           "2023-02-29", "2100-02-29", "2026-02-30",           "2026-13-01",  "2026-00-01",
        "2026-01-00", "2026-01-32", "2026-1-31",  "2026-01-31T00:00:00Z", "2026-01-31 ", " 2026-01-31",
        "20260131",   "2026/01/31", "31.01.2026", "2026-01-3x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t days = 4242;
        cr_expect_not(so_parse_date(bad[i], &days), "accepted \"%s\" as %lld", bad[i], (long long)days);
    }
}

Test(parse_date, date_and_midnight_time_agree)
{
    int64_t days = 0, t = 0;
    cr_assert(so_parse_date("2026-01-31", &days));
    cr_assert(so_parse_time("2026-01-31T00:00:00Z", &t));
    cr_expect_eq(days * 86400, t);
}

/* ---- so_format_time ---- */

Test(format_time, writes_utc_with_z)
{
    char buf[32];
    so_format_time(1769850000LL, buf, sizeof buf);
    cr_expect_str_eq(buf, "2026-01-31T09:00:00Z");
    so_format_time(0, buf, sizeof buf);
    cr_expect_str_eq(buf, "1970-01-01T00:00:00Z");
    so_format_time(1709164800LL, buf, sizeof buf);
    cr_expect_str_eq(buf, "2024-02-29T00:00:00Z");
    so_format_time(253402300799LL, buf, sizeof buf);
    cr_expect_str_eq(buf, "9999-12-31T23:59:59Z");
}

Test(format_time, fits_in_21_bytes)
{
    char buf[21];
    memset(buf, 'x', sizeof buf);
    so_format_time(1769850000LL, buf, sizeof buf);
    cr_expect_str_eq(buf, "2026-01-31T09:00:00Z");
    cr_expect_eq(strlen(buf), 20u);
}

Test(format_time, offset_input_formats_back_in_utc)
{
    int64_t t = 0;
    char buf[32];
    cr_assert(so_parse_time("2026-01-31T09:00:00-05:30", &t));
    so_format_time(t, buf, sizeof buf);
    cr_expect_str_eq(buf, "2026-01-31T14:30:00Z");
}

Test(format_time, writes_four_digit_years)
{
    /* found by fuzz_dates: strftime's %Y wrote "26" for the year 26, which did not parse back */
    int64_t t;
    cr_assert(so_parse_time("0026-11-27T09:30:00z", &t));
    char buf[32];
    so_format_time(t, buf, sizeof buf);
    cr_assert_str_eq(buf, "0026-11-27T09:30:00Z");
    int64_t days;
    cr_assert(so_parse_date("0999-01-02", &days));
    so_format_date(days, buf, sizeof buf);
    cr_assert_str_eq(buf, "0999-01-02");
}

Test(format_time, round_trips_through_parse)
{
    static const long long times[] = {
        0LL,          1LL,          86400LL,      951827696LL,  1483228799LL, 1709164800LL,
        1709251199LL, 1769850000LL, 1767218400LL, 2147483648LL, 4102444800LL, 253402300799LL,
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char buf[32];
        int64_t back = -12345;
        so_format_time(times[i], buf, sizeof buf);
        cr_expect_eq(strlen(buf), 20u, "%lld -> %s", times[i], buf);
        cr_expect(so_parse_time(buf, &back), "%lld -> %s not parsed", times[i], buf);
        cr_expect_eq(back, times[i], "%lld -> %s -> %lld", times[i], buf, (long long)back);
    }
}

/* libFuzzer harness: the time and period parsers (src/core/timeutil.c: so_parse_time, so_parse_date, the date
 * formatting and weekday behind the checklist's weeks) and the working hours of distribution settings
 * (src/domain/distribution_rules.c: working_hours_parse, working_hours_json, working_hours_contains). The
 * first byte picks the parser; the rest is its input.
 *
 * With SALESOPS_FUZZ_STRICT=1 their contracts are checked, and a broken one aborts: a date that parses
 * formats back to the same text and has a weekday 1..7; a time that parses formats to a time that parses to
 * the same instant; working hours that parse come back from their JSON form unchanged, and every day and
 * minute is answered without a crash.
 *
 * Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fuzz_dates/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/distribution.h"
#include "salesops/timeutil.h"

static int strict = -1;

static void check(int ok)
{
    if (!ok && strict) abort();
}

static void dates(const char *s)
{
    int64_t days;
    if (!so_parse_date(s, &days)) return;
    char back[32];
    so_format_date(days, back, sizeof back);
    check(strcmp(back, s) == 0);
    int wd = so_iso_weekday(days);
    check(wd >= 1 && wd <= 7);
}

static void times(const char *s)
{
    int64_t t, again;
    if (!so_parse_time(s, &t)) return;
    char back[32];
    so_format_time(t, back, sizeof back);
    check(so_parse_time(back, &again) && again == t);
}

static void hours(const char *s, size_t len)
{
    json_t *v = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    if (v == NULL) return;
    struct working_hours wh, again;
    struct so_error err = {0};
    if (working_hours_parse(v, "working_hours", &wh, &err) == SO_OK) {
        json_t *out = working_hours_json(&wh);
        struct so_error err2 = {0};
        check(working_hours_parse(out, "working_hours", &again, &err2) == SO_OK &&
              memcmp(&wh, &again, sizeof wh) == 0);
        so_error_clear(&err2);
        json_decref(out);
        for (int d = 0; d < WH_DAYS; d++)
            for (int m = 0; m < 24 * 60; m += 7)
                (void)working_hours_contains(&wh, d, m);
    } else {
        check(err.code == ERR_VALIDATION && json_array_size(err.errors) > 0);
    }
    so_error_clear(&err);
    json_decref(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (strict < 0) strict = getenv("SALESOPS_FUZZ_STRICT") && strcmp(getenv("SALESOPS_FUZZ_STRICT"), "1") == 0;
    if (size < 1) return 0;
    char *s = malloc(size);
    if (s == NULL) return 0;
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0'; /* the parsers read C strings */
    switch (data[0] % 3) {
    case 0:
        dates(s);
        break;
    case 1:
        times(s);
        break;
    default:
        hours(s, size - 1);
    }
    free(s);
    return 0;
}

/* Declared field lists checked against JSON bodies (validate.h): every field type, unknown, missing and null
 * fields, several bad fields at once, and the small text checks (validate_text, json_text_depth,
 * parse_positive_id). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "salesops/validate.h"

#define MAX_SAFE_ID 9007199254740991LL /* 2^53 - 1 */

static const char *const statuses[] = {"open", "won", "lost", NULL};

enum { NAME, PRICE, MANAGER_ID, ACTIVE, DUE_AT, STATUS, DATA, FIELD_COUNT };

static const struct field_spec deal_spec[FIELD_COUNT] = {
    [NAME] = {"name", F_STRING, F_REQUIRED, 1, 5, NULL},
    [PRICE] = {"price", F_INT, 0, 0, 1000, NULL},
    [MANAGER_ID] = {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
    [ACTIVE] = {"active", F_BOOL, 0, 0, 0, NULL},
    [DUE_AT] = {"due_at", F_TIME, F_NULLABLE, 0, 0, NULL},
    [STATUS] = {"status", F_ENUM, 0, 0, 0, statuses},
    [DATA] = {"data", F_JSON, 0, 0, 0, NULL},
};

static json_t *parse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    cr_assert_not_null(j, "bad test JSON %s: %s", text, jerr.text);
    return j;
}

/* The message recorded for a field, or NULL when the field has no error. */
static const char *message_for(const struct so_error *err, const char *field)
{
    size_t i;
    json_t *e;
    json_array_foreach(err->errors, i, e)
    {
        const char *f = json_string_value(json_object_get(e, "field"));
        if (f != NULL && strcmp(f, field) == 0) return json_string_value(json_object_get(e, "message"));
    }
    return NULL;
}

static size_t error_count(const struct so_error *err)
{
    return json_array_size(err->errors);
}

/* Validates one field, given as a JSON value, against a spec of just that field. */
static enum so_err check_one(const struct field_spec *f, json_t *value_stolen, struct field_value *out,
                             struct so_error *err, json_t **body)
{
    *body = json_object();
    json_object_set_new(*body, f->name, value_stolen);
    return validate_fields(*body, f, 1, out, err);
}

/* ---- a valid body ---- */

Test(validate, valid_body_fills_every_value)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"name\":\"Ёлка\",\"price\":1000,\"manager_id\":9007199254740991,\"active\":false,"
                         "\"due_at\":\"2026-01-31T12:00:00+03:00\",\"status\":\"won\",\"data\":{\"a\":[1]}}");
    cr_assert_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), SO_OK, "%s", err.detail);
    cr_expect_eq(err.code, SO_OK);
    cr_expect_null(err.errors);
    for (int i = 0; i < FIELD_COUNT; i++) {
        cr_expect(v[i].present, "%s", deal_spec[i].name);
        cr_expect_not(v[i].is_null, "%s", deal_spec[i].name);
    }
    cr_expect_str_eq(v[NAME].s, "Ёлка");
    cr_expect_eq(v[PRICE].i, 1000);
    cr_expect_eq(v[MANAGER_ID].i, MAX_SAFE_ID);
    cr_expect_not(v[ACTIVE].b);
    cr_expect_eq(v[DUE_AT].i, 1769850000LL);
    cr_expect_eq(v[STATUS].i, 1);
    cr_expect_str_eq(v[STATUS].s, "won");
    cr_expect(json_is_object(v[DATA].j));
    cr_expect_eq(v[DATA].j, json_object_get(body, "data"));
    json_decref(body);
}

Test(validate, absent_optional_fields_are_not_present)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"name\":\"ab\"}");
    cr_assert_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), SO_OK);
    cr_expect(v[NAME].present);
    for (int i = PRICE; i < FIELD_COUNT; i++)
        cr_expect_not(v[i].present, "%s", deal_spec[i].name);
    json_decref(body);
}

Test(validate, null_body_reads_as_empty_object)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    /* with no required field it passes */
    cr_expect_eq(validate_fields(NULL, &deal_spec[PRICE], FIELD_COUNT - 1, v, &err), SO_OK);
    cr_expect_null(err.errors);
    /* with one, only that one is reported */
    cr_expect_eq(validate_fields(NULL, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(error_count(&err), 1u);
    cr_expect_not_null(message_for(&err, "name"));
    so_error_clear(&err);
}

/* ---- F_STRING ---- */

struct string_case {
    const char *text; /* UTF-8 */
    int64_t min, max;
    bool ok;
};

Test(validate, string_length_is_counted_in_code_points)
{
    static const struct string_case cases[] = {
        {"ab", 2, 4, true},      {"a", 2, 4, false},   {"abcd", 2, 4, true},
        {"abcde", 2, 4, false},  {"Ёлка", 4, 4, true}, /* 4 code points, 8 bytes */
        {"Ёлочка", 1, 5, false},                       /* 6 code points */
        {"Привет", 6, 6, true},  {"日本", 2, 2, true}, /* 3-byte characters */
        {"😀", 1, 1, true},                             /* a 4-byte character is one */
        {"😀😀", 1, 1, false},     {"", 0, 3, true},     {"", 1, 3, false},
        {"é", 1, 1, true}, /* precomposed U+00E9 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct string_case *c = &cases[i];
        struct field_spec f = {"name", F_STRING, 0, c->min, c->max, NULL};
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        enum so_err r = check_one(&f, json_string(c->text), &v, &err, &body);
        cr_expect_eq(r, c->ok ? SO_OK : ERR_VALIDATION, "\"%s\" in %lld..%lld", c->text, (long long)c->min,
                     (long long)c->max);
        if (c->ok) {
            cr_expect_str_eq(v.s, c->text);
        } else {
            cr_expect_eq(error_count(&err), 1u);
            cr_expect_not_null(message_for(&err, "name"), "\"%s\"", c->text);
        }
        json_decref(body);
        so_error_clear(&err);
    }
}

Test(validate, string_with_nul_is_rejected)
{
    struct field_spec f = {"text", F_STRING, 0, 0, 100, NULL};
    struct so_error err = {0};
    struct field_value v;
    json_t *body;
    cr_expect_eq(check_one(&f, json_stringn("ab\0cd", 5), &v, &err, &body), ERR_VALIDATION);
    const char *m = message_for(&err, "text");
    cr_assert_not_null(m);
    cr_expect_neq(strstr(m, "NUL"), NULL, "message \"%s\"", m);
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, string_field_rejects_other_types)
{
    static const char *const values[] = {"5", "true", "[]", "{}", "1.5"};
    struct field_spec f = {"name", F_STRING, 0, 0, 10, NULL};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, parse(values[i]), &v, &err, &body), ERR_VALIDATION, "%s", values[i]);
        cr_expect_not_null(message_for(&err, "name"), "%s", values[i]);
        json_decref(body);
        so_error_clear(&err);
    }
}

/* ---- F_INT, F_ID, F_BOOL ---- */

struct json_case {
    const char *json;
    bool ok;
    long long expect; /* .i (or .b) when ok */
};

static void run_json_cases(const struct field_spec *f, const struct json_case *cases, size_t n, bool is_bool)
{
    for (size_t i = 0; i < n; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        enum so_err r = check_one(f, parse(cases[i].json), &v, &err, &body);
        cr_expect_eq(r, cases[i].ok ? SO_OK : ERR_VALIDATION, "%s = %s", f->name, cases[i].json);
        if (cases[i].ok) {
            if (is_bool)
                cr_expect_eq(v.b, cases[i].expect != 0, "%s", cases[i].json);
            else
                cr_expect_eq(v.i, cases[i].expect, "%s", cases[i].json);
        } else {
            cr_expect_eq(error_count(&err), 1u, "%s", cases[i].json);
            cr_expect_not_null(message_for(&err, f->name), "%s", cases[i].json);
        }
        json_decref(body);
        so_error_clear(&err);
    }
}

Test(validate, int_must_be_an_integer_in_range)
{
    static const struct json_case cases[] = {
        {"-10", true, -10},  {"0", true, 0},     {"-11", false, 0}, {"1000", true, 1000},
        {"1001", false, 0},  {"5", true, 5},     {"1.5", false, 0}, {"5.0", false, 0},
        {"\"5\"", false, 0}, {"true", false, 0}, {"[5]", false, 0}, {"9223372036854775807", false, 0},
    };
    struct field_spec f = {"price", F_INT, 0, -10, 1000, NULL};
    run_json_cases(&f, cases, sizeof cases / sizeof cases[0], false);
}

Test(validate, int_range_bounds_are_inclusive)
{
    static const struct json_case cases[] = {
        {"1", true, 1}, {"500", true, 500}, {"0", false, 0}, {"501", false, 0}, {"-1", false, 0},
    };
    struct field_spec f = {"limit", F_INT, 0, 1, 500, NULL};
    run_json_cases(&f, cases, sizeof cases / sizeof cases[0], false);

    struct so_error err = {0};
    struct field_value v;
    json_t *body;
    check_one(&f, json_integer(501), &v, &err, &body);
    const char *m = message_for(&err, "limit");
    cr_assert_not_null(m);
    cr_expect_neq(strstr(m, "1"), NULL, "message \"%s\" names the range", m);
    cr_expect_neq(strstr(m, "500"), NULL, "message \"%s\" names the range", m);
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, id_is_positive_and_at_most_2_pow_53_minus_1)
{
    static const struct json_case cases[] = {
        {"1", true, 1},
        {"42", true, 42},
        {"9007199254740991", true, MAX_SAFE_ID},
        {"9007199254740992", false, 0},
        {"9223372036854775807", false, 0},
        {"0", false, 0},
        {"-1", false, 0},
        {"1.0", false, 0},
        {"\"1\"", false, 0},
        {"true", false, 0},
    };
    struct field_spec f = {"deal_id", F_ID, 0, 0, 0, NULL};
    run_json_cases(&f, cases, sizeof cases / sizeof cases[0], false);
}

Test(validate, bool_accepts_only_true_and_false)
{
    static const struct json_case cases[] = {
        {"true", true, 1}, {"false", true, 0}, {"1", false, 0}, {"0", false, 0}, {"\"true\"", false, 0},
    };
    struct field_spec f = {"active", F_BOOL, 0, 0, 0, NULL};
    run_json_cases(&f, cases, sizeof cases / sizeof cases[0], true);
}

/* ---- F_TIME ---- */

Test(validate, time_accepts_rfc3339_and_gives_epoch_seconds)
{
    static const struct {
        const char *text;
        long long epoch;
    } cases[] = {
        {"2026-01-31T09:00:00Z", 1769850000LL},      {"2026-01-31T09:00:00+03:00", 1769839200LL},
        {"2026-01-31T09:00:00-05:30", 1769869800LL}, {"2026-01-31T09:00:00.250Z", 1769850000LL},
        {"2024-02-29T00:00:00Z", 1709164800LL},
    };
    struct field_spec f = {"due_at", F_TIME, 0, 0, 0, NULL};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, json_string(cases[i].text), &v, &err, &body), SO_OK, "%s: %s",
                     cases[i].text, err.detail);
        cr_expect_eq(v.i, cases[i].epoch, "%s", cases[i].text);
        cr_expect_str_eq(v.s, cases[i].text);
        json_decref(body);
        so_error_clear(&err);
    }
}

Test(validate, time_rejects_invalid_dates_and_formats)
{
    static const char *const bad[] = {
        "2026-02-30T00:00:00Z", /* no such day */
        "2023-02-29T00:00:00Z",
        "2026-01-31",
        "2026-01-31T09:00:00",
        "31.01.2026 09:00",
        "2026-01-31T09:00:00Z trailing",
        "",
        "now",
    };
    struct field_spec f = {"due_at", F_TIME, 0, 0, 0, NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, json_string(bad[i]), &v, &err, &body), ERR_VALIDATION, "\"%s\"", bad[i]);
        cr_expect_not_null(message_for(&err, "due_at"), "\"%s\"", bad[i]);
        json_decref(body);
        so_error_clear(&err);
    }
    /* a number is not a time */
    struct so_error err = {0};
    struct field_value v;
    json_t *body;
    cr_expect_eq(check_one(&f, json_integer(1769850000), &v, &err, &body), ERR_VALIDATION);
    json_decref(body);
    so_error_clear(&err);
}

/* ---- F_ENUM ---- */

Test(validate, enum_gives_index_and_text)
{
    struct field_spec f = {"status", F_ENUM, 0, 0, 0, statuses};
    for (int k = 0; statuses[k] != NULL; k++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, json_string(statuses[k]), &v, &err, &body), SO_OK);
        cr_expect_eq(v.i, k);
        cr_expect_str_eq(v.s, statuses[k]);
        json_decref(body);
    }
}

Test(validate, enum_rejects_other_values_and_lists_the_allowed_ones)
{
    static const char *const bad[] = {"\"WON\"", "\"\"", "\"closed\"", "\"won \"", "1", "null"};
    struct field_spec f = {"status", F_ENUM, 0, 0, 0, statuses};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, parse(bad[i]), &v, &err, &body), ERR_VALIDATION, "%s", bad[i]);
        cr_expect_not_null(message_for(&err, "status"), "%s", bad[i]);
        json_decref(body);
        so_error_clear(&err);
    }

    struct so_error err = {0};
    struct field_value v;
    json_t *body;
    check_one(&f, json_string("closed"), &v, &err, &body);
    const char *m = message_for(&err, "status");
    cr_assert_not_null(m);
    cr_expect_neq(strstr(m, "open, won, lost"), NULL, "message \"%s\"", m);
    json_decref(body);
    so_error_clear(&err);
}

/* ---- F_JSON ---- */

Test(validate, json_field_takes_any_value_but_null)
{
    static const char *const values[] = {"{\"a\":1}", "[1,2]", "3", "2.5", "\"s\"", "true", "false"};
    struct field_spec f = {"data", F_JSON, 0, 0, 0, NULL};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        struct so_error err = {0};
        struct field_value v;
        json_t *body;
        cr_expect_eq(check_one(&f, parse(values[i]), &v, &err, &body), SO_OK, "%s", values[i]);
        cr_expect_eq(v.j, json_object_get(body, "data"), "%s", values[i]);
        json_decref(body);
    }
    struct so_error err = {0};
    struct field_value v;
    json_t *body;
    cr_expect_eq(check_one(&f, json_null(), &v, &err, &body), ERR_VALIDATION);
    json_decref(body);
    so_error_clear(&err);
}

/* ---- unknown, required, null ---- */

Test(validate, unknown_field_is_named)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"name\":\"ab\",\"colour\":\"red\"}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(err.code, ERR_VALIDATION);
    cr_expect_eq(error_count(&err), 1u);
    const char *m = message_for(&err, "colour");
    cr_assert_not_null(m);
    cr_expect_neq(strstr(m, "unknown"), NULL, "message \"%s\"", m);
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, field_names_are_case_sensitive)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"Name\":\"ab\"}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_not_null(message_for(&err, "Name"));
    cr_expect_not_null(message_for(&err, "name"));
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, required_missing_is_named)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"price\":5}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(error_count(&err), 1u);
    const char *m = message_for(&err, "name");
    cr_assert_not_null(m);
    cr_expect_neq(strstr(m, "required"), NULL, "message \"%s\"", m);
    cr_expect_not(v[NAME].present);
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, null_is_accepted_only_for_nullable_fields)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"name\":\"ab\",\"manager_id\":null,\"due_at\":null}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), SO_OK);
    cr_expect(v[MANAGER_ID].present);
    cr_expect(v[MANAGER_ID].is_null);
    cr_expect(v[DUE_AT].present);
    cr_expect(v[DUE_AT].is_null);
    cr_expect_null(err.errors);
    json_decref(body);

    static const char *const not_nullable[] = {"price", "active", "status", "data"};
    for (size_t i = 0; i < sizeof not_nullable / sizeof not_nullable[0]; i++) {
        char text[80];
        snprintf(text, sizeof text, "{\"name\":\"ab\",\"%s\":null}", not_nullable[i]);
        body = parse(text);
        cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION, "%s", text);
        cr_expect_eq(error_count(&err), 1u, "%s", text);
        const char *m = message_for(&err, not_nullable[i]);
        cr_expect_not_null(m, "%s", text);
        if (m) cr_expect_neq(strstr(m, "null"), NULL, "message \"%s\"", m);
        json_decref(body);
        so_error_clear(&err);
    }
}

Test(validate, null_for_required_field_is_one_error)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"name\":null}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(error_count(&err), 1u);
    cr_expect_not_null(message_for(&err, "name"));
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, body_must_be_an_object)
{
    static const char *const bodies[] = {"[]", "[{\"name\":\"ab\"}]", "\"name\"", "42", "true", "null"};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct so_error err = {0};
        struct field_value v[FIELD_COUNT];
        json_t *body = parse(bodies[i]);
        cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION, "%s", bodies[i]);
        cr_expect_eq(err.code, ERR_VALIDATION);
        cr_expect_eq(error_count(&err), 1u, "%s", bodies[i]);
        for (int k = 0; k < FIELD_COUNT; k++)
            cr_expect_not(v[k].present);
        json_decref(body);
        so_error_clear(&err);
    }
}

Test(validate, several_bad_fields_are_all_reported_by_name)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body =
        parse("{\"name\":\"\",\"price\":-5,\"manager_id\":0,\"active\":\"yes\","
              "\"due_at\":\"2026-02-30T00:00:00Z\",\"status\":\"closed\",\"extra\":1,\"data\":null}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(err.code, ERR_VALIDATION);
    static const char *const bad[] = {"name",   "price",  "manager_id", "active",
                                      "due_at", "status", "extra",      "data"};
    cr_expect_eq(error_count(&err), sizeof bad / sizeof bad[0]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not_null(message_for(&err, bad[i]), "%s not reported", bad[i]);
    /* every entry is {field, message} */
    size_t i;
    json_t *e;
    json_array_foreach(err.errors, i, e)
    {
        cr_expect(json_is_string(json_object_get(e, "field")));
        cr_expect(json_is_string(json_object_get(e, "message")));
    }
    json_decref(body);
    so_error_clear(&err);
}

Test(validate, missing_and_bad_fields_are_reported_together)
{
    struct so_error err = {0};
    struct field_value v[FIELD_COUNT];
    json_t *body = parse("{\"price\":\"cheap\",\"colour\":\"red\"}");
    cr_expect_eq(validate_fields(body, deal_spec, FIELD_COUNT, v, &err), ERR_VALIDATION);
    cr_expect_eq(error_count(&err), 3u);
    cr_expect_not_null(message_for(&err, "name"));
    cr_expect_not_null(message_for(&err, "price"));
    cr_expect_not_null(message_for(&err, "colour"));
    json_decref(body);
    so_error_clear(&err);
}

/* ---- validate_text ---- */

Test(validate_text, counts_code_points_and_rejects_nul)
{
    static const struct {
        const char *s;
        size_t bytes;
        int64_t min, max;
        bool ok;
    } cases[] = {
        {"", 0, 0, 0, true},        {"", 0, 1, 10, false},       {"abc", 3, 3, 3, true},
        {"abc", 3, 4, 10, false},   {"abc", 3, 1, 2, false},     {"Ёлка", 8, 4, 4, true},
        {"Ёлка", 8, 5, 8, false}, /* 8 bytes, but 4 characters */
        {"Москва", 12, 1, 6, true}, {"Москва", 12, 1, 5, false}, {"日本語", 9, 3, 3, true},
        {"😀", 4, 1, 1, true},       {"a\0b", 3, 0, 10, false}, /* NUL inside */
        {"ab\0", 3, 0, 10, false},                             /* NUL at the end of the counted bytes */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(validate_text(cases[i].s, cases[i].bytes, cases[i].min, cases[i].max), cases[i].ok,
                     "case %zu \"%s\" (%zu bytes) in %lld..%lld", i, cases[i].s, cases[i].bytes,
                     (long long)cases[i].min, (long long)cases[i].max);
}

/* ---- json_text_depth ---- */

Test(json_text_depth, counts_nesting_outside_strings)
{
    static const struct {
        const char *text;
        int depth;
    } cases[] = {
        {"", 0},
        {"123", 0},
        {"\"[[[{\"", 0},
        {"{}", 1},
        {"[]", 1},
        {"[][][]", 1},
        {"[[[]]]", 3},
        {"{\"a\":{\"b\":[1,{\"c\":2}]}}", 4},
        {"[{},[{}]]", 3},
        {"{\"a\":\"[[[[\"}", 1},              /* brackets in a string do not count */
        {"{\"a\":\"}}}}\",\"b\":[[1]]}", 3},  /* nor do closers in a string */
        {"{\"a\":\"x\\\"[[[\"}", 1},          /* escaped quote does not end the string */
        {"{\"a\":\"x\\\\\",\"b\":[[1]]}", 3}, /* escaped backslash before the closing quote */
        {"[\"\\\\\\\"[\",[2]]", 2},           /* \\ then \" inside one string */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(json_text_depth(cases[i].text, strlen(cases[i].text), 100), cases[i].depth, "%s",
                     cases[i].text);
}

Test(json_text_depth, stops_past_limit)
{
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    cr_expect_eq(json_text_depth(deep, sizeof deep, 1000), 100);
    int d = json_text_depth(deep, sizeof deep, 32);
    cr_expect_gt(d, 32);

    char limit_deep[64]; /* exactly 32 levels: at the limit, not past it */
    memset(limit_deep, '[', 32);
    memset(limit_deep + 32, ']', 32);
    cr_expect_eq(json_text_depth(limit_deep, sizeof limit_deep, 32), 32);
}

Test(json_text_depth, reads_only_len_bytes)
{
    const char *text = "[[]][[[[[[";
    cr_expect_eq(json_text_depth(text, 4, 100), 2);
}

/* ---- parse_positive_id ---- */

Test(parse_positive_id, accepts_decimal_ids_up_to_2_pow_53_minus_1)
{
    static const struct {
        const char *s;
        long long v;
    } cases[] = {{"1", 1}, {"42", 42}, {"1000000", 1000000}, {"9007199254740991", MAX_SAFE_ID}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 0;
        cr_expect(parse_positive_id(cases[i].s, &v), "%s rejected", cases[i].s);
        cr_expect_eq(v, cases[i].v, "%s", cases[i].s);
    }
}

Test(parse_positive_id, rejects_zero_signs_non_digits_and_too_large)
{
    static const char *const bad[] = {
        "0",
        "-1",
        "+1",
        "",
        " 1",
        "1 ",
        "1a",
        "a1",
        "0x10",
        "1.0",
        "1e3",
        "ext:D1",
        "9007199254740992",     /* 2^53 */
        "9999999999999999",     /* 16 digits, too big */
        "12345678901234567",    /* 17 digits */
        "99999999999999999999", /* would overflow int64 */
        "１",                   /* fullwidth digit */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = -7;
        cr_expect_not(parse_positive_id(bad[i], &v), "\"%s\" accepted as %lld", bad[i], (long long)v);
    }
    int64_t v = -7;
    cr_expect_not(parse_positive_id(NULL, &v));
}

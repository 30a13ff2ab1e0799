/* The closed set of error codes (error.h): statuses and codes per API.md, detail formatting, field errors,
 * and the problem+json body. */
#include <criterion/criterion.h>
#include <string.h>
#include "salesops/error.h"
#include "salesops/log.h"

/* Written from API.md, independently of the X-macro list. */
static const struct {
    int status;
    const char *code;
} expected[SO_ERR_COUNT] = {
    [SO_OK] = {200, "ok"},
    [ERR_MALFORMED] = {400, "malformed_request"},
    [ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [ERR_FORBIDDEN] = {403, "forbidden"},
    [ERR_NOT_FOUND] = {404, "not_found"},
    [ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [ERR_CONFLICT] = {409, "conflict"},
    [ERR_IDEMPOTENCY_CONFLICT] = {409, "idempotency_conflict"},
    [ERR_ALREADY_DECIDED] = {409, "already_decided"},
    [ERR_DEAL_NOT_LOST] = {409, "deal_not_lost"},
    [ERR_FOCUS_ACTIVE] = {409, "focus_active"},
    [ERR_FOCUS_CAP_REACHED] = {409, "focus_cap_reached"},
    [ERR_NO_ELIGIBLE_MANAGER] = {409, "no_eligible_manager"},
    [ERR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [ERR_VALIDATION] = {422, "validation_failed"},
    [ERR_RATE_LIMITED] = {429, "rate_limited"},
    [ERR_INTERNAL] = {500, "internal_error"},
    [ERR_DB_UNAVAILABLE] = {503, "db_unavailable"},
    [ERR_SHUTTING_DOWN] = {503, "shutting_down"},
};

static bool is_snake_case(const char *s)
{
    if (s == NULL || *s < 'a' || *s > 'z') return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || *s == '_' || (*s >= '0' && *s <= '9'))) return false;
    return true;
}

Test(errors, every_code_has_the_status_and_code_string_of_the_api)
{
    for (int e = 0; e < SO_ERR_COUNT; e++) {
        cr_assert_not_null(expected[e].code, "enum %d is missing from this test's table", e);
        cr_expect_eq(so_err_status((enum so_err)e), expected[e].status, "%s", expected[e].code);
        cr_expect_str_eq(so_err_code((enum so_err)e), expected[e].code);
    }
}

Test(errors, every_code_is_snake_case_unique_and_titled)
{
    for (int e = 0; e < SO_ERR_COUNT; e++) {
        const char *code = so_err_code((enum so_err)e);
        const char *title = so_err_title((enum so_err)e);
        cr_expect(is_snake_case(code), "code \"%s\"", code);
        cr_assert_not_null(title, "%s", code);
        cr_expect_gt(strlen(title), 0u, "%s has an empty title", code);
        for (int other = 0; other < e; other++)
            cr_expect_str_neq(so_err_code((enum so_err)other), code, "%s appears twice", code);
    }
}

Test(errors, titles_of_some_codes)
{
    cr_expect_str_eq(so_err_title(ERR_NOT_FOUND), "Not found");
    cr_expect_str_eq(so_err_title(ERR_METHOD_NOT_ALLOWED), "Method not allowed");
    cr_expect_str_eq(so_err_title(ERR_VALIDATION), "The request is not valid");
}

Test(errors, so_fail_sets_code_and_formats_detail)
{
    struct so_error err = {0};
    enum so_err r = so_fail(&err, ERR_NOT_FOUND, "deal %lld in %s", 42LL, "account");
    cr_expect_eq(r, ERR_NOT_FOUND);
    cr_expect_eq(err.code, ERR_NOT_FOUND);
    cr_expect_str_eq(err.detail, "deal 42 in account");
    cr_expect_null(err.errors);
    so_error_clear(&err);
}

Test(errors, so_fail_truncates_long_detail)
{
    struct so_error err = {0};
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    so_fail(&err, ERR_INTERNAL, "%s", big);
    cr_expect_eq(strlen(err.detail), sizeof err.detail - 1);
    so_error_clear(&err);
}

Test(errors, so_fail_keeps_earlier_field_errors)
{
    struct so_error err = {0};
    so_field_error(&err, "name", "is required");
    so_fail(&err, ERR_CONFLICT, "later failure");
    cr_expect_eq(err.code, ERR_CONFLICT);
    cr_expect_str_eq(err.detail, "later failure");
    cr_assert_not_null(err.errors);
    cr_expect_eq(json_array_size(err.errors), 1u);
    so_error_clear(&err);
}

Test(errors, so_field_error_accumulates_and_sets_validation)
{
    struct so_error err = {0};
    cr_expect_eq(so_field_error(&err, "name", "must be %d to %d characters long", 1, 200), ERR_VALIDATION);
    cr_expect_eq(so_field_error(&err, "price", "must be from %d to %d", 0, 100), ERR_VALIDATION);
    cr_expect_eq(so_field_error(&err, "status", "must be one of: %s", "open, won, lost"), ERR_VALIDATION);
    cr_expect_eq(err.code, ERR_VALIDATION);
    cr_assert(json_is_array(err.errors));
    cr_assert_eq(json_array_size(err.errors), 3u);

    static const char *const fields[] = {"name", "price", "status"};
    static const char *const messages[] = {"must be 1 to 200 characters long", "must be from 0 to 100",
                                           "must be one of: open, won, lost"};
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(err.errors, i);
        cr_assert(json_is_object(e));
        cr_expect_eq(json_object_size(e), 2u);
        cr_expect_str_eq(json_string_value(json_object_get(e, "field")), fields[i]);
        cr_expect_str_eq(json_string_value(json_object_get(e, "message")), messages[i]);
    }
    /* the detail names a bad field */
    cr_expect_neq(strstr(err.detail, "name"), NULL, "detail \"%s\"", err.detail);
    so_error_clear(&err);
}

Test(errors, so_field_error_turns_another_error_into_validation)
{
    struct so_error err = {0};
    so_fail(&err, ERR_NOT_FOUND, "deal 1");
    so_field_error(&err, "deal_id", "unknown id");
    cr_expect_eq(err.code, ERR_VALIDATION);
    cr_expect_eq(json_array_size(err.errors), 1u);
    cr_expect_neq(strstr(err.detail, "deal_id"), NULL, "detail \"%s\"", err.detail);
    so_error_clear(&err);
}

Test(errors, problem_has_type_title_status_detail_code)
{
    struct so_error err = {0};
    so_fail(&err, ERR_NOT_FOUND, "deal %d", 7);
    json_t *p = so_error_problem(&err);
    cr_assert(json_is_object(p));
    json_t *type = json_object_get(p, "type");
    cr_assert(json_is_string(type));
    cr_expect_gt(json_string_length(type), 0u);
    cr_expect_str_eq(json_string_value(json_object_get(p, "title")), "Not found");
    cr_expect(json_is_integer(json_object_get(p, "status")));
    cr_expect_eq(json_integer_value(json_object_get(p, "status")), 404);
    cr_expect_str_eq(json_string_value(json_object_get(p, "detail")), "deal 7");
    cr_expect_str_eq(json_string_value(json_object_get(p, "code")), "not_found");
    cr_expect_null(json_object_get(p, "errors"));
    cr_expect_eq(json_object_size(p), 5u);
    json_decref(p);
    so_error_clear(&err);
}

Test(errors, problem_for_every_code_carries_its_status_and_code)
{
    for (int e = 1; e < SO_ERR_COUNT; e++) {
        struct so_error err = {0};
        so_fail(&err, (enum so_err)e, "x");
        json_t *p = so_error_problem(&err);
        cr_assert(json_is_object(p), "%s", expected[e].code);
        cr_expect_eq(json_integer_value(json_object_get(p, "status")), expected[e].status);
        cr_expect_str_eq(json_string_value(json_object_get(p, "code")), expected[e].code);
        cr_expect_str_eq(json_string_value(json_object_get(p, "title")), so_err_title((enum so_err)e));
        cr_expect(json_is_string(json_object_get(p, "type")));
        json_decref(p);
        so_error_clear(&err);
    }
}

Test(errors, problem_types_differ_per_code)
{
    struct so_error a = {0}, b = {0};
    so_fail(&a, ERR_NOT_FOUND, "a");
    so_fail(&b, ERR_CONFLICT, "b");
    json_t *pa = so_error_problem(&a);
    json_t *pb = so_error_problem(&b);
    cr_expect_str_neq(json_string_value(json_object_get(pa, "type")),
                      json_string_value(json_object_get(pb, "type")));
    json_decref(pa);
    json_decref(pb);
    so_error_clear(&a);
    so_error_clear(&b);
}

Test(errors, problem_without_detail_still_has_a_detail_string)
{
    struct so_error err = {.code = ERR_RATE_LIMITED};
    json_t *p = so_error_problem(&err);
    cr_assert(json_is_object(p));
    cr_expect(json_is_string(json_object_get(p, "detail")));
    cr_expect_gt(json_string_length(json_object_get(p, "detail")), 0u);
    cr_expect_eq(json_integer_value(json_object_get(p, "status")), 429);
    json_decref(p);
}

Test(errors, validation_problem_lists_field_errors)
{
    struct so_error err = {0};
    so_field_error(&err, "name", "is required");
    so_field_error(&err, "colour", "unknown field");
    json_t *p = so_error_problem(&err);
    cr_assert(json_is_object(p));
    cr_expect_eq(json_integer_value(json_object_get(p, "status")), 422);
    cr_expect_str_eq(json_string_value(json_object_get(p, "code")), "validation_failed");
    json_t *errors = json_object_get(p, "errors");
    cr_assert(json_is_array(errors));
    cr_expect(json_equal(errors, err.errors));
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(errors, 1), "field")), "colour");
    /* the problem is a new reference: it outlives the error it was made from */
    so_error_clear(&err);
    cr_expect_eq(json_array_size(json_object_get(p, "errors")), 2u);
    json_decref(p);
}

Test(errors, clear_resets_everything_including_retry)
{
    struct so_error err = {0};
    so_field_error(&err, "name", "is required");
    err.retry = true;
    so_error_clear(&err);
    cr_expect_eq(err.code, SO_OK);
    cr_expect_null(err.errors);
    cr_expect_eq(err.detail[0], '\0');
    cr_expect_not(err.retry);

    /* clearing twice is harmless, and the error is reusable */
    so_error_clear(&err);
    so_fail(&err, ERR_CONFLICT, "again");
    cr_expect_eq(err.code, ERR_CONFLICT);
    cr_expect_str_eq(err.detail, "again");
    so_error_clear(&err);
    cr_expect_eq(err.code, SO_OK);
}

Test(errors, field_errors_after_clear_start_afresh)
{
    struct so_error err = {0};
    so_field_error(&err, "a", "bad");
    so_field_error(&err, "b", "bad");
    so_error_clear(&err);
    so_field_error(&err, "c", "bad");
    cr_assert_eq(json_array_size(err.errors), 1u);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(err.errors, 0), "field")), "c");
    cr_expect_neq(strstr(err.detail, "c"), NULL);
    so_error_clear(&err);
}

/* The access log renders its fields itself: every byte a client controls must come out as valid JSON. */
Test(log, json_escape_quotes_controls_and_high_bytes)
{
    char out[64];
    cr_assert_str_eq(log_json_escape(out, sizeof out, "/a\"b\\c"), "/a\\\"b\\\\c");
    cr_assert_str_eq(log_json_escape(out, sizeof out, "x\n\t\x01y"), "x\\u000a\\u0009\\u0001y");
    cr_assert_str_eq(log_json_escape(out, sizeof out, "\xd0\x98\xff"), "\\u00d0\\u0098\\u00ff");
    cr_assert_str_eq(log_json_escape(out, 8, "abcdefghij"), "abcdefg");
    cr_assert_str_eq(log_json_escape(out, 7, "abcde\"fg"), "abcde"); /* an escape is never cut in half */
    json_error_t e;
    char doc[96];
    snprintf(doc, sizeof doc, "\"%s\"", log_json_escape(out, sizeof out, "\"\\\n\x7f\x80 ok"));
    json_t *j = json_loads(doc, JSON_DECODE_ANY, &e);
    cr_assert(j != NULL, "%s: %s", doc, e.text);
    json_decref(j);
}

/* A field error may quote what the client sent: only its valid UTF-8 goes into the reply, so the entry is
 * never lost (jansson refuses a string that is not UTF-8). */
Test(errors, a_field_error_with_bytes_that_are_not_utf8_keeps_its_valid_start)
{
    struct so_error err = {0};
    so_field_error(&err, "status", "unknown value '%s'", "ab\xc5");  /* a character cut in two */
    so_field_error(&err, "working_hours.o\xc5", "unknown day");        /* the same in the field's name */
    so_field_error(&err, "q", "unknown value '%s'", "\xff\xfe tail"); /* not UTF-8 at all */
    cr_assert_eq(json_array_size(err.errors), 3);
    json_t *e0 = json_array_get(err.errors, 0), *e1 = json_array_get(err.errors, 1);
    json_t *e2 = json_array_get(err.errors, 2);
    cr_assert_str_eq(json_string_value(json_object_get(e0, "message")), "unknown value 'ab");
    cr_assert_str_eq(json_string_value(json_object_get(e1, "field")), "working_hours.o");
    cr_assert_str_eq(json_string_value(json_object_get(e1, "message")), "unknown day");
    cr_assert_str_eq(json_string_value(json_object_get(e2, "message")), "unknown value '");
    json_t *problem = so_error_problem(&err);
    cr_assert_not_null(problem);
    json_decref(problem);
    so_error_clear(&err);
}

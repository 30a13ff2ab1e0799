/* libFuzzer harness: a JSON request body as the server reads it (parse_json_body in src/http/server.c): the
 * nesting check (json_text_depth), json_loadb with JSON_REJECT_DUPLICATES, the retry with
 * JSON_DECODE_INT_AS_REAL and json_restore_integers for a number beyond 64 bits, then validate_fields against
 * the field tables of POST /deals, POST /calls and POST /pipelines (with its stages, as stage_items reads
 * them). A refusal is rendered as problem+json; everything is freed, so LeakSanitizer sees any leak.
 *
 * With SALESOPS_FUZZ_STRICT=1 the validate.h contract is checked too, and a broken one aborts: a body taken
 * has every required field, and every field's value is of its type and in its range; a refusal is
 * ERR_VALIDATION with at least one field error.
 *
 * Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fuzz_body/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/error.h"
#include "salesops/validate.h"

#define COUNT_OF(a)           (sizeof(a) / sizeof((a)[0]))
#define JSON_MAX_DEPTH        32 /* src/http/server.c */
#define NAME_MAX_CHARS        255
#define TEXT_MAX_CHARS        10000
#define EXTERNAL_ID_MAX_CHARS 128
#define PRICE_MAX             1000000000000000LL
#define MAX_SAFE_ID           9007199254740991LL
#define MAX_STAGES            100

/* POST /api/v1/deals (src/api/deals.c) */
static const struct field_spec deal_create[] = {
    {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    {"price", F_INT, F_REQUIRED, 0, PRICE_MAX, NULL},
    {"pipeline_id", F_ID, F_REQUIRED, 0, 0, NULL},
    {"stage_id", F_ID, F_NULLABLE, 0, 0, NULL},
    {"manager_id", F_ID, F_NULLABLE, 0, 0, NULL},
    {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
};

/* POST /api/v1/calls (src/api/calls.c) */
static const char *const directions[] = {"in", "out", NULL};
static const struct field_spec call_create[] = {
    {"manager_id", F_ID, F_REQUIRED, 0, 0, NULL},
    {"deal_id", F_ID, F_NULLABLE, 0, 0, NULL},
    {"direction", F_ENUM, F_REQUIRED, 0, 0, directions},
    {"started_at", F_TIME, F_REQUIRED, 0, 0, NULL},
    {"duration_s", F_INT, F_REQUIRED, 0, 86400, NULL},
    {"answered", F_BOOL, F_REQUIRED, 0, 0, NULL},
    {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
};

/* POST /api/v1/pipelines (src/api/pipelines.c) and each of its stages */
enum { P_NAME, P_EXTERNAL_ID, P_STAGES };
static const struct field_spec pipeline_create[] = {
    [P_NAME] = {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    [P_EXTERNAL_ID] = {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    [P_STAGES] = {"stages", F_JSON, F_REQUIRED, 0, 0, NULL},
};
static const char *const kinds[] = {"open", "won", "lost", NULL};
static const struct field_spec stage_spec[] = {
    {"name", F_STRING, F_REQUIRED, 1, NAME_MAX_CHARS, NULL},
    {"external_id", F_STRING, F_NULLABLE, 1, EXTERNAL_ID_MAX_CHARS, NULL},
    {"kind", F_ENUM, F_REQUIRED, 0, 0, kinds},
};

static bool strict;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *s = getenv("SALESOPS_FUZZ_STRICT");
    strict = s != NULL && strcmp(s, "1") == 0;
    return 0;
}

static void violation(const char *what, const char *field, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(stderr, "fuzz_body: contract broken: %s (field %s)\nfuzz_body: body: %.2000s\n", what,
            field ? field : "-", text ? text : "?");
    free(text);
    abort();
}

static int64_t code_points(const char *s, size_t bytes)
{
    int64_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* What validate.h promises of the values of a body it took. */
static void check_taken(json_t *body, const struct field_spec *spec, size_t count,
                        const struct field_value *v)
{
    for (size_t i = 0; i < count; i++) {
        const struct field_spec *f = &spec[i];
        const struct field_value *x = &v[i];
        if ((f->flags & F_REQUIRED) && !x->present) violation("a required field is missing", f->name, body);
        if (!x->present) continue;
        if (x->j != json_object_get(body, f->name)) violation("the value is not the body's", f->name, body);
        if (x->is_null) {
            if (!(f->flags & F_NULLABLE) || !json_is_null(x->j)) violation("null taken", f->name, body);
            continue;
        }
        bool ok = true;
        switch (f->type) {
        case F_STRING:
            ok = json_is_string(x->j) && x->s == json_string_value(x->j) &&
                 memchr(x->s, '\0', json_string_length(x->j)) == NULL &&
                 code_points(x->s, json_string_length(x->j)) >= f->min &&
                 code_points(x->s, json_string_length(x->j)) <= f->max;
            break;
        case F_INT:
            ok =
                json_is_integer(x->j) && x->i == json_integer_value(x->j) && x->i >= f->min && x->i <= f->max;
            break;
        case F_ID:
            ok =
                json_is_integer(x->j) && x->i == json_integer_value(x->j) && x->i >= 1 && x->i <= MAX_SAFE_ID;
            break;
        case F_BOOL:
            ok = json_is_boolean(x->j) && x->b == json_is_true(x->j);
            break;
        case F_TIME:
            ok = json_is_string(x->j) && x->i >= 86400 && x->i <= 253402300799LL;
            break;
        case F_ENUM:
            ok = json_is_string(x->j) && x->s != NULL && x->i >= 0 && f->choices[x->i] != NULL &&
                 strcmp(f->choices[x->i], x->s) == 0;
            break;
        case F_JSON:
            ok = x->j != NULL;
            break;
        }
        if (!ok) violation("a value taken is not of its type or out of its range", f->name, body);
    }
}

/* validate_fields as body_fields runs it, with the refusal rendered as the reply would be. */
static bool validate(json_t *body, const struct field_spec *spec, size_t count, struct field_value *v)
{
    struct so_error err = {0};
    enum so_err e = validate_fields(body, spec, count, v, &err);
    if (e == SO_OK) {
        if (strict) {
            if (err.code != SO_OK) violation("SO_OK returned with an error set", NULL, body);
            check_taken(body, spec, count, v);
        }
    } else {
        if (strict && (e != ERR_VALIDATION || err.code != ERR_VALIDATION || json_array_size(err.errors) == 0))
            violation("a refusal without a field error", NULL, body);
        json_t *problem = so_error_problem(&err);
        char *text = json_dumps(problem, JSON_COMPACT);
        free(text);
        json_decref(problem);
    }
    so_error_clear(&err);
    return e == SO_OK;
}

static void check_body(json_t *body)
{
    struct field_value deal[COUNT_OF(deal_create)], call[COUNT_OF(call_create)],
        pipeline[COUNT_OF(pipeline_create)];
    validate(body, deal_create, COUNT_OF(deal_create), deal);
    validate(body, call_create, COUNT_OF(call_create), call);
    if (validate(body, pipeline_create, COUNT_OF(pipeline_create), pipeline)) {
        json_t *stages = pipeline[P_STAGES].j;
        if (json_is_array(stages) && json_array_size(stages) <= MAX_STAGES) {
            size_t i;
            json_t *stage;
            json_array_foreach(stages, i, stage)
            {
                struct field_value sv[COUNT_OF(stage_spec)];
                validate(stage, stage_spec, COUNT_OF(stage_spec), sv);
            }
        }
    }
    /* NULL reads as {} */
    struct field_value none[COUNT_OF(deal_create)];
    validate(NULL, deal_create, COUNT_OF(deal_create), none);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    if (size == 0) {
        json_t *empty = json_object(); /* an empty body reads as {} */
        check_body(empty);
        json_decref(empty);
        return 0;
    }
    if (json_text_depth(text, size, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) return 0;
    json_error_t e;
    json_t *body = json_loadb(text, size, JSON_REJECT_DUPLICATES, &e);
    if (body == NULL && strstr(e.text, "too big") != NULL) {
        body = json_loadb(text, size, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &e);
        json_restore_integers(body);
    }
    if (body == NULL) return 0;
    check_body(body);
    json_decref(body);
    return 0;
}

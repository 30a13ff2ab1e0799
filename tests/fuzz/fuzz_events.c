/* libFuzzer harness: a POST /events body as the service reads it. The nesting check and json_loadb with
 * JSON_REJECT_DUPLICATES (src/api/events.c), then event_parse on the event, or on every event of an array,
 * with internal=false (POST /events, import) and internal=true (mapped amoCRM events). A refusal is rendered
 * as problem+json, as the handler does; everything is freed, so LeakSanitizer sees any leak.
 *
 * With SALESOPS_FUZZ_STRICT=1 the documented contracts are checked too, and a broken one aborts: an event
 * taken with internal=false is taken with internal=true (internal only adds fields), a refusal is
 * ERR_VALIDATION with a detail, and a taken event has its id, a known type and an `at` in range.
 *
 * Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fuzz_events/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/events.h"
#include "salesops/validate.h"

#define JSON_MAX_DEPTH 32 /* src/api/events.c */

static bool strict;
static volatile size_t sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *s = getenv("SALESOPS_FUZZ_STRICT");
    strict = s != NULL && strcmp(s, "1") == 0;
    return 0;
}

static void violation(const char *what, json_t *ev, const char *detail)
{
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fprintf(stderr, "fuzz_events: contract broken: %s\nfuzz_events: event: %.2000s\n", what,
            text ? text : "?");
    if (detail != NULL) fprintf(stderr, "fuzz_events: %s\n", detail);
    free(text);
    abort();
}

/* The strings of a parsed event are borrowed from ev: read them all while it lives. */
static void touch(const struct so_event *out)
{
    const char *const strs[] = {out->id,          out->deal,    out->pipeline,  out->stage,
                                out->loss_reason, out->manager, out->task,      out->call,
                                out->note,        out->name,    out->role,      out->task_type,
                                out->text,        out->result,  out->direction, out->actor};
    size_t total = 0;
    for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
        total += strs[k] ? strlen(strs[k]) : 0;
    sink += total; /* so that the reads are not optimised away */
    (void)event_type_name(out->type);
    (void)event_is_creation(out->type);
}

static enum so_err parse(json_t *ev, bool internal)
{
    struct so_event out;
    struct so_error err = {0};
    enum so_err e = event_parse(ev, internal, &out, &err);
    if (e == SO_OK) {
        if (strict && (out.type < 0 || out.type >= EV_TYPE_COUNT || out.id == NULL || out.id[0] == '\0' ||
                       out.at < 86400 || out.at > 253402300799LL || out.from_amocrm != internal))
            violation("event_parse took an event with a bad id, type or at", ev, NULL);
        touch(&out);
        char *body = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER); /* as take() stores it */
        free(body);
    } else {
        if (strict && (e != ERR_VALIDATION || err.code != ERR_VALIDATION || err.detail[0] == '\0' ||
                       json_array_size(err.errors) == 0))
            violation("event_parse refused an event without a validation error", ev, err.detail);
        json_t *problem = so_error_problem(&err);
        char *text = json_dumps(problem, JSON_COMPACT);
        free(text);
        json_decref(problem);
    }
    so_error_clear(&err);
    return e;
}

static void parse_both(json_t *ev)
{
    enum so_err external = parse(ev, false);
    enum so_err internal = parse(ev, true);
    if (strict && external == SO_OK && internal != SO_OK)
        violation("an event taken with internal=false is refused with internal=true", ev, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    if (json_text_depth(text, size, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) return 0;
    json_error_t e;
    json_t *root = json_loadb(text, size, JSON_REJECT_DUPLICATES, &e);
    if (root == NULL) return 0;
    if (json_is_array(root)) {
        size_t i;
        json_t *ev;
        json_array_foreach(root, i, ev)
        {
            if (i >= EVENTS_MAX_PER_REQUEST) break;
            parse_both(ev);
        }
    } else {
        parse_both(root); /* one NDJSON line, or a body that is not an array */
    }
    json_decref(root);
    return 0;
}

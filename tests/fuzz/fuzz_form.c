/* libFuzzer harness: an amoCRM webhook body as the service reads it. amo_form_lookup (the subdomain check of
 * the webhook handler), amo_form_decode, then amo_map_webhook on the decoded tree and event_parse of every
 * mapped event (the applier). Everything is freed, so LeakSanitizer sees any leak.
 *
 * With SALESOPS_FUZZ_STRICT=1 the documented contracts are checked too, and a broken one aborts (a crash
 * input): amo_form_lookup and amo_form_decode never read two different values from one body (amocrm.h,
 * form.c), the same body always maps to the same events (amocrm_map.h), and every mapped event is taken by
 * event_parse(internal=true) (the applier logs a refused one as "a bug of ours").
 *
 * Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fuzz_form/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/amocrm.h"
#include "salesops/amocrm_map.h"
#include "salesops/events.h"

#define RECEIVED_AT 1662012000 /* 2022-09-01T06:00:00Z */
#define LOOKUP_LEN  128        /* the webhook handler's buffer for account[subdomain] */

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

static void violation(const char *what, const uint8_t *data, size_t size, const char *more)
{
    fprintf(stderr, "fuzz_form: contract broken: %s\n", what);
    if (more != NULL) fprintf(stderr, "fuzz_form: %s\n", more);
    fprintf(stderr, "fuzz_form: body (%zu bytes): %.*s\n", size, (int)(size > 2000 ? 2000 : size),
            (const char *)data);
    abort();
}

/* amo_form_lookup into a buffer of exactly outlen bytes (so ASan sees a write past it). */
static int lookup(const uint8_t *data, size_t size, const char *key, size_t outlen, char **value)
{
    char *out = malloc(outlen);
    if (out == NULL) abort();
    int r = amo_form_lookup((const char *)data, size, key, out, outlen);
    if (r == 1 && memchr(out, '\0', outlen) == NULL) {
        fprintf(stderr, "fuzz_form: amo_form_lookup(%s) returned 1 without a NUL-terminated value\n", key);
        abort();
    }
    if (r < -1 || r > 1) {
        fprintf(stderr, "fuzz_form: amo_form_lookup(%s) returned %d\n", key, r);
        abort();
    }
    *value = out;
    return r;
}

/* account[key] of a decoded body as the lookup must have seen it. */
static void check_lookup_agrees(json_t *form, const char *sub, int r, const char *got, size_t outlen,
                                const uint8_t *data, size_t size)
{
    json_t *v = json_object_get(json_object_get(form, "account"), sub);
    const char *want = json_string_value(v);
    char more[400];
    bool ok;
    if (r == 1)
        ok = want != NULL && strcmp(want, got) == 0 && strlen(got) == json_string_length(v);
    else if (r == 0)
        ok = want == NULL;
    else /* -1 on a body that decodes: only a value too long for the buffer */
        ok = want != NULL && json_string_length(v) >= outlen;
    if (!ok) {
        snprintf(more, sizeof more, "account[%s]: lookup returned %d (\"%.100s\"), decode gave %s%.100s%s",
                 sub, r, r == 1 ? got : "", want ? "\"" : "", want ? want : "no string", want ? "\"" : "");
        violation("amo_form_lookup and amo_form_decode disagree", data, size, more);
    }
}

static void parse_mapped(json_t *events, const uint8_t *data, size_t size)
{
    size_t i;
    json_t *ev;
    json_array_foreach(events, i, ev)
    {
        struct so_event out;
        struct so_error err = {0};
        enum so_err e = event_parse(ev, true, &out, &err);
        if (e == SO_OK) {
            /* the strings are borrowed from ev: touch them while it lives */
            const char *const strs[] = {out.id,          out.deal,    out.pipeline,  out.stage,
                                        out.loss_reason, out.manager, out.task,      out.call,
                                        out.note,        out.name,    out.role,      out.task_type,
                                        out.text,        out.result,  out.direction, out.actor};
            size_t total = 0;
            for (size_t k = 0; k < sizeof strs / sizeof strs[0]; k++)
                total += strs[k] ? strlen(strs[k]) : 0;
            sink += total; /* so that the reads are not optimised away */
            (void)event_type_name(out.type);
        } else if (strict) {
            char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
            char more[1200];
            snprintf(more, sizeof more, "event %zu: %.700s\nrefused: %.400s", i, text ? text : "?",
                     err.detail);
            free(text);
            violation("a mapped event is refused by event_parse(internal=true)", data, size, more);
        }
        so_error_clear(&err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The webhook handler: the subdomain check, before anything is stored. */
    char *subdomain = NULL, *id = NULL, *lead = NULL, *tiny = NULL;
    int r_sub = lookup(data, size, "account[subdomain]", LOOKUP_LEN, &subdomain);
    int r_id = lookup(data, size, "account[id]", LOOKUP_LEN, &id);
    (void)lookup(data, size, "leads[add][0][id]", LOOKUP_LEN, &lead);
    int r_tiny = lookup(data, size, "account[subdomain]", 4, &tiny);

    /* The applier: decode, map, parse every mapped event. */
    struct so_error err = {0};
    json_t *form = amo_form_decode((const char *)data, size, &err);
    if (form == NULL) {
        if (err.code == SO_OK || err.detail[0] == '\0') {
            fprintf(stderr, "fuzz_form: amo_form_decode returned NULL without an error\n");
            abort();
        }
    } else if (!json_is_object(form)) {
        /* a body whose top-level keys are all indexes ("0=a&1=b") decodes to an array: the mapper refuses it
         */
        struct amo_map_stats stats;
        json_t *events = amo_map_webhook(form, RECEIVED_AT, "amo:1", &stats, &err);
        if (events != NULL || err.code != ERR_MALFORMED) {
            fprintf(stderr, "fuzz_form: amo_map_webhook took a body that is not an object\n");
            abort();
        }
        json_decref(form);
    } else {
        if (strict) {
            check_lookup_agrees(form, "subdomain", r_sub, subdomain, LOOKUP_LEN, data, size);
            check_lookup_agrees(form, "id", r_id, id, LOOKUP_LEN, data, size);
            check_lookup_agrees(form, "subdomain", r_tiny, tiny, 4, data, size);
        }
        struct amo_map_stats stats;
        json_t *events = amo_map_webhook(form, RECEIVED_AT, "amo:1", &stats, &err);
        if (events == NULL) {
            fprintf(stderr, "fuzz_form: amo_map_webhook failed on a decoded body: %s\n", err.detail);
            abort();
        }
        if (!json_is_array(events) || stats.events != (int)json_array_size(events) || stats.ignored < 0 ||
            stats.unknown < 0) {
            fprintf(stderr, "fuzz_form: amo_map_webhook stats do not match its events\n");
            abort();
        }
        parse_mapped(events, data, size);
        if (strict) {
            struct amo_map_stats again_stats;
            json_t *again = amo_map_webhook(form, RECEIVED_AT, "amo:1", &again_stats, &err);
            if (again == NULL || !json_equal(again, events) ||
                memcmp(&again_stats, &stats, sizeof stats) != 0)
                violation("the same body mapped twice gives different events", data, size, NULL);
            json_decref(again);
        }
        json_decref(events);
        json_decref(form);
    }
    so_error_clear(&err);
    free(subdomain);
    free(id);
    free(lead);
    free(tiny);
    return 0;
}

/* salesops import: streams an NDJSON file of events, checks each line with the same parser as POST /events,
 * COPYs the good ones into the database and applies them set-based in one transaction. Then the events that
 * had waited (from earlier requests) for what the import created are applied one by one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "internal.h"
#include "salesops/import.h"
#include "salesops/ingest.h"
#include "salesops/timeutil.h"

#define COPY_BUFFER (1 << 20)

struct copy_buf {
    char *data;
    size_t len;
};

static void put_text(struct copy_buf *b, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (c == '\\' || c == '\t' || c == '\n' || c == '\r') {
            b->data[b->len++] = '\\';
            c = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
        }
        b->data[b->len++] = c;
    }
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static enum so_err flush(struct db *db, struct copy_buf *b, struct so_error *err)
{
    if (b->len == 0) return SO_OK;
    enum db_rc rc = store_import_put(db, b->data, b->len);
    b->len = 0;
    return rc == DB_OK ? SO_OK : so_fail(err, ERR_DB_UNAVAILABLE, "the database refused the COPY data");
}

/* One line: parsed and checked, then written as a COPY row (seq, id, type, at, creation, data, body). */
static enum so_err take_line(struct db *db, struct copy_buf *b, const char *line, size_t len,
                             struct import_stats *stats, struct so_error *err)
{
    json_error_t je;
    json_t *ev = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    struct so_event parsed;
    struct so_error why = {0};
    if (ev == NULL || event_parse(ev, false, &parsed, &why) != SO_OK) {
        stats->rejected++;
        if (stats->rejected <= 10)
            fprintf(stderr, "import: line %lld rejected: %s\n", (long long)stats->lines,
                    ev ? why.detail : je.text);
        so_error_clear(&why);
        json_decref(ev);
        return SO_OK;
    }
    char *data = json_dumps(json_object_get(ev, "data"), JSON_COMPACT);
    char *body = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    size_t need = 2 * (strlen(data) + strlen(body) + strlen(parsed.id)) + 128;
    enum so_err e = SO_OK;
    if (b->len + need > COPY_BUFFER) e = flush(db, b, err);
    if (e == SO_OK && need > COPY_BUFFER) {
        stats->rejected++;
        fprintf(stderr, "import: line %lld rejected: too long\n", (long long)stats->lines);
    } else if (e == SO_OK) {
        char head[96], at[32];
        so_format_time(parsed.at, at, sizeof at);
        snprintf(head, sizeof head, "%lld\t", (long long)stats->lines);
        memcpy(b->data + b->len, head, strlen(head));
        b->len += strlen(head);
        put_text(b, parsed.id);
        snprintf(head, sizeof head, "\t%s\t%s\t%s\t", event_type_name(parsed.type), at,
                 event_is_creation(parsed.type) ? "t" : "f");
        memcpy(b->data + b->len, head, strlen(head));
        b->len += strlen(head);
        put_text(b, data);
        b->data[b->len++] = '\t';
        put_text(b, body);
        b->data[b->len++] = '\n';
        stats->valid++;
    }
    free(data);
    free(body);
    json_decref(ev);
    return e;
}

enum so_err domain_import(struct db *db, int64_t account_id, FILE *in, struct import_stats *stats,
                          struct so_error *err)
{
    memset(stats, 0, sizeof *stats);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct copy_buf b = {malloc(COPY_BUFFER), 0};
    if (b.data == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    enum db_rc rc = store_import_start(db, account_id);
    if (rc != DB_OK) {
        free(b.data);
        return so_fail(err, ERR_DB_UNAVAILABLE, "cannot start the import");
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    double last_report = 0;
    enum so_err e = SO_OK;
    while (e == SO_OK && (n = getline(&line, &cap, in)) >= 0) {
        stats->lines++;
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        if (len == 0) continue;
        e = take_line(db, &b, line, len, stats, err);
        double now = seconds_since(&t0);
        if (now - last_report >= 1.0) {
            last_report = now;
            fprintf(stderr, "import: %lld lines read, %lld events, %.0f events/s\n", (long long)stats->lines,
                    (long long)stats->valid, (double)stats->valid / now);
        }
    }
    free(line);
    if (e == SO_OK) e = flush(db, &b, err);
    free(b.data);
    fprintf(stderr, "import: %lld events read and checked in %.1f s; applying\n", (long long)stats->valid,
            seconds_since(&t0));
    char why[512] = "";
    if (e == SO_OK &&
        store_import_finish(db, account_id, &stats->accepted, &stats->duplicates, why, sizeof why) != DB_OK)
        e = so_fail(err, ERR_INTERNAL, "import failed: %s", why);
    if (e == SO_OK) {
        struct arena a = {0};
        int woken = 0;
        e = ingest_wake_existing(db, &a, account_id, &woken, err);
        stats->woken = woken;
        /* the imported losses that qualify for rejection control get their reviews and tasks now */
        while (e == SO_OK && domain_rejection_sweep(db, &a, 1000) == 1000) {
        }
        arena_release(&a);
    }
    stats->seconds = seconds_since(&t0);
    return e;
}

/* POST /events (a JSON array, or NDJSON) and the inbox endpoints. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common.h"
#include "handlers.h"
#include "salesops/ingest.h"

#define BATCH          500
#define JSON_MAX_DEPTH 32

static bool content_type_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    return ct != NULL && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* JSON with duplicate keys refused; a number beyond 64 bits is read as a real, so that the event check names
 * its field (422) instead of refusing the whole text. */
static json_t *load_json(const char *text, size_t len, json_error_t *e)
{
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, e);
    if (v == NULL && strstr(e->text, "too big") != NULL) {
        v = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, e);
        json_restore_integers(v);
    }
    return v;
}

/* Within one request the first event of an id (in request order) is kept; later ones are duplicates. */
static int by_id_then_index(const void *x, const void *y)
{
    const struct ingest_item *a = *(const struct ingest_item *const *)x,
                             *b = *(const struct ingest_item *const *)y;
    int c = strcmp(a->ev.id, b->ev.id);
    return c ? c : (a->index > b->index) - (a->index < b->index);
}

/* Keeps the first item of each id at the front of items; returns how many that is. */
static int drop_repeated_ids(struct so_req *req, struct ingest_item *items, int n)
{
    struct ingest_item **order = arena_alloc(req->arena, sizeof *order * ((size_t)n + 1));
    struct ingest_item *kept = arena_alloc(req->arena, sizeof *kept * ((size_t)n + 1));
    for (int i = 0; i < n; i++)
        order[i] = &items[i];
    qsort(order, (size_t)n, sizeof *order, by_id_then_index);
    for (int i = 0; i < n; i++)
        order[i]->duplicate = i > 0 && strcmp(order[i]->ev.id, order[i - 1]->ev.id) == 0;
    int count = 0;
    for (int i = 0; i < n; i++)
        if (!items[i].duplicate) kept[count++] = items[i];
    memcpy(items, kept, sizeof *items * (size_t)count);
    return count;
}

static void reject(json_t *rejected, int index, const char *id, const struct so_error *err)
{
    json_array_append_new(rejected,
                          json_pack("{s:i, s:o, s:{s:s, s:s}}", "index", index, "id", json_str_or_null(id),
                                    "error", "code", so_err_code(err->code), "message", err->detail));
}

/* One event object: parsed into items[*n] (kept alive in keep), or added to rejected. */
static void take(struct so_req *req, json_t *ev, int index, json_t *keep, json_t *rejected,
                 struct ingest_item *items, int *n)
{
    struct so_error err = {0};
    struct ingest_item *it = &items[*n];
    json_array_append(keep, ev);
    if (event_parse(ev, false, &it->ev, &err) != SO_OK) {
        json_t *id = json_object_get(ev, "id");
        reject(rejected, index, json_is_string(id) ? json_string_value(id) : NULL, &err);
        so_error_clear(&err);
        return;
    }
    char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    it->body = arena_strdup(req->arena, text ? text : "{}");
    free(text);
    it->index = index;
    (*n)++;
}

static bool too_many(struct so_req *req, size_t count)
{
    if (count <= EVENTS_MAX_PER_REQUEST) return false;
    reply_error(req, ERR_PAYLOAD_TOO_LARGE, "at most %d events per request", EVENTS_MAX_PER_REQUEST);
    return true;
}

void handle_events_post(struct so_req *req)
{
    bool ndjson = content_type_is(req->content_type, "application/x-ndjson");
    if (!ndjson && !content_type_is(req->content_type, "application/json")) {
        reply_error(req, ERR_UNSUPPORTED_MEDIA_TYPE,
                    "send a JSON array (application/json) or NDJSON"
                    " (application/x-ndjson)");
        return;
    }
    json_t *keep = json_array(), *rejected = json_array(), *array = NULL;
    struct ingest_item *items = NULL;
    int n = 0;
    if (!ndjson) {
        json_error_t e;
        if (json_text_depth(req->raw_body, req->raw_len, JSON_MAX_DEPTH) > JSON_MAX_DEPTH)
            reply_error(req, ERR_MALFORMED, "JSON nesting deeper than %d levels", JSON_MAX_DEPTH);
        else if ((array = load_json(req->raw_body, req->raw_len, &e)) == NULL)
            reply_error(req, ERR_MALFORMED, "invalid JSON at line %d, column %d: %s", e.line, e.column,
                        e.text);
        else if (!json_is_array(array))
            reply_error(req, ERR_MALFORMED, "the body must be a JSON array of events");
        else if (!too_many(req, json_array_size(array))) {
            items = arena_alloc(req->arena, sizeof *items * (json_array_size(array) + 1));
            size_t i;
            json_t *ev;
            json_array_foreach(array, i, ev) take(req, ev, (int)i, keep, rejected, items, &n);
        }
    } else {
        /* one event a line; blank lines skipped; a line that is not JSON is rejected on its own */
        size_t lines = 1;
        for (size_t i = 0; i < req->raw_len; i++)
            lines += req->raw_body[i] == '\n';
        items = arena_alloc(req->arena, sizeof *items * (lines + 1));
        int index = 0;
        const char *p = req->raw_body, *end = req->raw_body + req->raw_len;
        while (p < end && req->status == 0) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            size_t len = (size_t)(stop - p);
            while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            size_t lead = 0;
            while (lead < len && (p[lead] == ' ' || p[lead] == '\t'))
                lead++;
            if (len > lead) {
                if (too_many(req, (size_t)index + 1)) break;
                json_error_t e;
                json_t *ev = json_text_depth(p + lead, len - lead, JSON_MAX_DEPTH) > JSON_MAX_DEPTH
                                 ? NULL
                                 : load_json(p + lead, len - lead, &e);
                if (ev == NULL) {
                    struct so_error err = {0};
                    so_fail(&err, ERR_MALFORMED, "line %d is not a JSON event", index + 1);
                    reject(rejected, index, NULL, &err);
                } else {
                    take(req, ev, index, keep, rejected, items, &n);
                    json_decref(ev);
                }
                index++;
            }
            p = stop + 1;
        }
    }
    if (req->status == 0) {
        int unique = drop_repeated_ids(req, items, n);
        int accepted = 0, duplicates = n - unique;
        n = unique;
        ingest_sort(items, n);
        for (int start = 0; start < n; start += BATCH) {
            int size = n - start < BATCH ? n - start : BATCH;
            if (ingest_batch(req->db, req->arena, req->auth.account_id, "events", 0, items + start, size,
                             &req->err) != SO_OK) {
                reply_err(req);
                break;
            }
            for (int i = start; i < start + size; i++)
                items[i].duplicate ? duplicates++ : accepted++;
        }
        if (req->status == 0) {
            json_t *sorted = json_array(); /* rejected entries in request order */
            json_t *r;
            size_t i;
            json_array_foreach(rejected, i, r) json_array_append(sorted, r);
            reply_json_steal(req, 200,
                             json_pack("{s:i, s:i, s:o}", "accepted", accepted, "duplicates", duplicates,
                                       "rejected", sorted));
        }
    }
    json_decref(rejected);
    json_decref(keep);
    json_decref(array);
}

static json_t *render_inbox(const void *p)
{
    const struct so_inbox_row *r = p;
    return json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:i, s:o, s:o}", "id", (json_int_t)r->id,
                     "source", r->source, "event_id", json_str_or_null(r->event_id), "event_type",
                     json_str_or_null(r->event_type), "event_at", json_time(r->event_at), "parent_id",
                     json_id(r->parent_id), "state", r->state, "waits_for",
                     r->waits_kind
                         ? json_pack("{s:s, s:s}", "kind", r->waits_kind, "external_id", r->waits_for)
                         : json_null(),
                     "error", json_str_or_null(r->error), "attempts", r->attempts, "received_at",
                     json_time(r->received_at), "applied_at", json_time(r->applied_at));
}

void handle_inbox_list(struct so_req *req)
{
    static const char *const states[] = {"pending", "waiting", "failed", "ignored", "applied", NULL};
    struct so_page page;
    const char *state = NULL;
    if (!query_page(req, &page) || !query_enum(req, "state", states, &state)) return;
    struct so_inbox_row *rows;
    int count;
    enum db_rc rc = store_inbox_list(req->db, req->arena, req->auth.account_id, state, &page, &rows, &count);
    if (rc != DB_OK)
        reply_db(req, rc, "inbox", 0);
    else
        reply_items(req, rows, count, sizeof *rows, render_inbox, &page);
}

void handle_inbox_retry(struct so_req *req)
{
    int64_t id;
    if (!path_plain_id(req, 0, "inbox row", &id)) return;
    struct so_inbox_row row;
    enum db_rc rc = store_inbox_get(req->db, req->arena, req->auth.account_id, id, &row);
    if (rc != DB_OK) {
        reply_db(req, rc, "inbox row", id);
        return;
    }
    if (strcmp(row.state, "failed") != 0 && strcmp(row.state, "waiting") != 0) {
        reply_error(req, ERR_CONFLICT, "inbox row %lld is %s: only failed and waiting rows are retried",
                    (long long)id, row.state);
        return;
    }
    if (strcmp(row.source, "amocrm") == 0) { /* a webhook body: the applier takes it again */
        rc = store_inbox_retry(req->db, req->auth.account_id, id);
        if (rc == DB_NONE) {
            reply_error(req, ERR_CONFLICT, "inbox row %lld is being applied", (long long)id);
            return;
        }
    } else {
        struct so_error err = {0};
        if (ingest_retry(req->db, req->arena, req->auth.account_id, &row, &err) != SO_OK) {
            reply_domain_error(req, &err);
            return;
        }
        rc = DB_OK;
    }
    if (rc == DB_OK) rc = store_inbox_get(req->db, req->arena, req->auth.account_id, id, &row);
    if (rc != DB_OK)
        reply_db(req, rc, "inbox row", id);
    else
        reply_json_steal(req, 200, render_inbox(&row));
}

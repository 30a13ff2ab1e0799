/* The applier: turns stored amoCRM webhook bodies into events and applies them, one body a transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobs.h"
#include "salesops/amocrm.h"
#include "salesops/amocrm_map.h"
#include "salesops/ingest.h"
#include "salesops/log.h"
#include "salesops/store.h"

#define MAX_ATTEMPTS 8

/* Bodies applied in one transaction: one commit (one fsync) for several bodies of one account. */
#define BODIES_PER_TRANSACTION 25

struct body_ctx {
    struct arena arena;
    struct so_inbox_row row; /* the body being applied (on failure: the one to back off) */
    struct so_error err;
    bool claimed;
    int applied;
    int64_t applied_ids[BODIES_PER_TRANSACTION]; /* bodies applied: marked so at the end, in one statement */
    int applied_count;
    struct event_cache cache; /* the transaction's lookups */
};

/* A failure of the transaction as the job loop reads it: DB_ERROR (the body's own) is backed off. */
static enum db_rc body_failure(enum so_err e, const struct so_error *err)
{
    return err->retry ? DB_RETRY : e == ERR_DB_UNAVAILABLE ? DB_UNAVAILABLE : DB_ERROR;
}

/* Decodes and maps the claimed body; its events are stored and applied as children of the body's row. A body
 * whose events apply is marked applied with the others at the end; any other outcome is set here. */
static enum db_rc apply_body(struct db *db, struct body_ctx *c)
{
    enum db_rc rc = DB_OK;
    const struct so_inbox_row *row = &c->row;
    struct so_error why = {0};
    json_t *form = amo_form_decode(row->body, strlen(row->body), &why);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "amo:%lld", (long long)row->id);
    struct amo_map_stats stats = {0};
    json_t *events = form ? amo_map_webhook(form, row->received_at, prefix, &stats, &why) : NULL;
    json_decref(form);
    if (events == NULL) {
        rc = store_inbox_set_state(db, row->account_id, row->id, "failed", NULL, NULL, why.detail);
        so_error_clear(&why);
        return rc;
    }
    size_t n = json_array_size(events);
    struct ingest_item *items = arena_alloc(&c->arena, sizeof *items * (n + 1));
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(events, i);
        struct ingest_item *it = &items[count];
        memset(it, 0, sizeof *it);
        if (event_parse(ev, true, &it->ev, &why) != SO_OK) {
            /* a mapping the parser does not take is a bug of ours: keep the body for inspection */
            log_event_steal(LOG_ERROR, "mapped event refused",
                            json_pack("{s:I, s:s}", "inbox_id", (json_int_t)row->id, "error", why.detail));
            so_error_clear(&why);
            continue;
        }
        char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        it->body = arena_strdup(&c->arena, text ? text : "{}");
        free(text);
        it->index = count++;
    }
    ingest_sort(items, count);
    enum so_err e =
        ingest_in_tx(db, &c->arena, row->account_id, "amocrm_event", row->id, items, count, &c->cache, &c->err);
    if (e == SO_OK && count > 0) {
        c->applied_ids[c->applied_count++] = row->id;
    } else if (e == SO_OK) {
        char note[96];
        snprintf(note, sizeof note, "no events: %d entities ignored, %d unknown", stats.ignored, stats.unknown);
        rc = store_inbox_set_state(db, row->account_id, row->id, "ignored", NULL, NULL, note);
    }
    json_decref(events);
    if (e != SO_OK) return body_failure(e, &c->err);
    return rc;
}

/* Claims the oldest due body of any account, takes that account's ingest lock, claims more of its bodies up to
 * the batch size, and applies them in order. */
static enum db_rc apply_bodies(struct db *db, void *p)
{
    struct body_ctx *c = p;
    so_error_clear(&c->err);
    c->claimed = false;
    c->applied = 0;
    c->applied_count = 0;
    enum db_rc rc = store_inbox_claim_webhook(db, &c->arena, &c->row);
    if (rc != DB_OK) return rc;
    c->claimed = true;
    int64_t account_id = c->row.account_id;
    struct so_inbox_row *more = NULL;
    int more_count = 0;
    enum so_err e = ingest_tx_start(db, account_id, &c->cache, &c->err);
    if (e != SO_OK) return body_failure(e, &c->err);
    rc = store_inbox_claim_webhooks_of(db, &c->arena, account_id, BODIES_PER_TRANSACTION - 1, &more, &more_count);
    if (rc != DB_OK && rc != DB_NONE) return rc;
    for (int i = -1; i < more_count; i++) {
        if (i >= 0) c->row = more[i];
        if ((rc = apply_body(db, c)) != DB_OK) return rc;
        c->applied++;
    }
    return store_inbox_set_applied(db, &c->arena, account_id, c->applied_ids, c->applied_count);
}

int job_apply_webhooks(struct db *db, int max)
{
    int handled = 0;
    while (handled < max) {
        struct body_ctx c = {0};
        enum db_rc rc = db_tx(db, apply_bodies, &c);
        if (rc == DB_ERROR && c.claimed) /* a failure of this body: try it again later, then park it */
            store_inbox_backoff(db, c.row.account_id, c.row.id,
                                c.err.detail[0] ? c.err.detail : "could not apply", MAX_ATTEMPTS);
        so_error_clear(&c.err);
        arena_release(&c.arena);
        if (rc != DB_OK) break;
        handled += c.applied;
    }
    return handled;
}

int job_expire_waiting(struct db *db)
{
    static _Thread_local time_t last;
    time_t now = time(NULL);
    if (now - last < 60) return 0;
    last = now;
    int expired = 0;
    store_inbox_expire_waiting(db, &expired);
    store_webhook_seen_sweep(db);
    return expired;
}

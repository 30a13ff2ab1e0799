/* The applier: turns stored amoCRM webhook bodies into events and applies them, several bodies of one account a
 * transaction; several appliers apply one account's bodies at once. */
#include <stdatomic.h>
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


/* A claimed body, decoded and mapped before anything is applied, so that the keys of all its events are known. */
struct prepared {
    struct so_inbox_row row;
    json_t *events;             /* NULL: the body could not be decoded or mapped (why) */
    struct so_error why;
    struct amo_map_stats stats;
    struct ingest_item *items;
    int count;
};

struct body_ctx {
    struct arena arena;
    struct so_inbox_row row; /* the body being applied (on failure: the one to back off) */
    struct so_error err;
    bool claimed;
    int applied;
    int batch;            /* bodies claimed at most (SALESOPS_APPLY_BATCH) */
    int64_t *applied_ids; /* bodies applied: marked so at the end, in one statement */
    int applied_count;
    struct prepared *bodies; /* the bodies claimed (arena) */
    int body_count;
    struct event_cache cache; /* the transaction's lookups */
};

/* A failure of the transaction as the job loop reads it: DB_ERROR (the body's own) is backed off. */
static enum db_rc body_failure(enum so_err e, const struct so_error *err)
{
    return err->retry ? DB_RETRY : e == ERR_DB_UNAVAILABLE ? DB_UNAVAILABLE : DB_ERROR;
}

/* Decodes and maps a claimed body into events; returns how many. */
static int prepare_body(struct body_ctx *c, struct prepared *b)
{
    const struct so_inbox_row *row = &b->row;
    json_t *form = amo_form_decode(row->body, strlen(row->body), &b->why);
    char prefix[48];
    snprintf(prefix, sizeof prefix, "amo:%lld", (long long)row->id);
    b->events = form ? amo_map_webhook(form, row->received_at, prefix, &b->stats, &b->why) : NULL;
    json_decref(form);
    if (b->events == NULL) return 0;
    size_t n = json_array_size(b->events);
    b->items = arena_alloc(&c->arena, sizeof *b->items * (n + 1));
    if (b->items == NULL) {
        json_decref(b->events);
        b->events = NULL;
        so_fail(&b->why, ERR_INTERNAL, "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *ev = json_array_get(b->events, i);
        struct ingest_item *it = &b->items[b->count];
        memset(it, 0, sizeof *it);
        struct so_error bad = {0};
        if (event_parse(ev, true, &it->ev, &bad) != SO_OK) {
            /* a mapping the parser does not take is a bug of ours: keep the body for inspection */
            log_event_steal(LOG_ERROR, "mapped event refused",
                            json_pack("{s:I, s:s}", "inbox_id", (json_int_t)row->id, "error", bad.detail));
            so_error_clear(&bad);
            continue;
        }
        char *text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
        it->body = arena_strdup(&c->arena, text ? text : "{}");
        free(text);
        it->index = b->count++;
    }
    ingest_sort(b->items, b->count);
    return b->count;
}

static void release_bodies(struct body_ctx *c)
{
    for (int i = 0; i < c->body_count; i++) {
        json_decref(c->bodies[i].events);
        so_error_clear(&c->bodies[i].why);
    }
    c->body_count = 0;
}

/* Applies a prepared body, whose events are stored (as children of the body's row). A body whose events apply
 * is marked applied with the others at the end; any other outcome is set here. */
static enum db_rc apply_body(struct db *db, struct body_ctx *c, const struct prepared *b)
{
    const struct so_inbox_row *row = &b->row;
    c->row = *row;
    if (b->events == NULL)
        return store_inbox_set_state(db, row->account_id, row->id, "failed", NULL, NULL, b->why.detail);
    enum so_err e = ingest_apply_stored(db, &c->arena, row->account_id, "amocrm_event", b->items, b->count,
                                        &c->cache, &c->err);
    if (e != SO_OK) return body_failure(e, &c->err);
    if (b->count > 0) {
        c->applied_ids[c->applied_count++] = row->id;
        return DB_OK;
    }
    char note[96];
    snprintf(note, sizeof note, "no events: %d entities ignored, %d unknown", b->stats.ignored, b->stats.unknown);
    return store_inbox_set_state(db, row->account_id, row->id, "ignored", NULL, NULL, note);
}

/* Claims the oldest due body of any account and more of that account's bodies up to the batch size, decodes
 * them all, takes the account's ingest lock (shared: the other appliers apply its other bodies meanwhile) with
 * the keys of every deal and task they name, stores all their events in one statement, and applies them in
 * order. */
static enum db_rc apply_bodies(struct db *db, void *p)
{
    struct body_ctx *c = p;
    so_error_clear(&c->err);
    release_bodies(c);
    c->claimed = false;
    c->applied = 0;
    c->applied_count = 0;
    enum db_rc rc = store_inbox_claim_webhook(db, &c->arena, &c->row);
    if (rc != DB_OK) return rc;
    c->claimed = true;
    /* The bodies were stored durably when they were received, and their claim is part of this transaction: a
     * crash that loses its commit before the WAL is flushed leaves them pending, to be applied again. Anything
     * that leaves the database because of it (the connector's deliveries) is read by a transaction that commits
     * synchronously after this one's commit record, so it is not sent before this commit is durable. */
    if ((rc = store_tx_commit_async(db)) != DB_OK) return rc;
    int64_t account_id = c->row.account_id;
    struct so_inbox_row *more = NULL;
    int more_count = 0;
    rc = store_inbox_claim_webhooks_of(db, &c->arena, account_id, c->row.id, c->batch - 1, &more,
                                       &more_count);
    if (rc != DB_OK && rc != DB_NONE) return rc;
    c->bodies = arena_alloc(&c->arena, sizeof *c->bodies * (size_t)(more_count + 1));
    c->applied_ids = arena_alloc(&c->arena, sizeof *c->applied_ids * (size_t)(more_count + 1));
    if (c->bodies == NULL || c->applied_ids == NULL) return DB_ERROR;
    int events = 0;
    for (int i = -1; i < more_count; i++) {
        struct prepared *b = &c->bodies[c->body_count++];
        memset(b, 0, sizeof *b);
        b->row = i < 0 ? c->row : more[i];
        events += prepare_body(c, b);
    }
    int64_t *keys = arena_alloc(&c->arena, sizeof *keys * INGEST_KEYS_PER_EVENT * ((size_t)events + 1));
    if (keys == NULL) return DB_ERROR;
    int nkeys = 0;
    for (int i = 0; i < c->body_count; i++)
        nkeys += ingest_keys(account_id, c->bodies[i].items, c->bodies[i].count, keys + nkeys);
    enum so_err e = ingest_tx_start(db, &c->arena, account_id, keys, nkeys, &c->cache, &c->err);
    struct ingest_group *groups = arena_alloc(&c->arena, sizeof *groups * (size_t)c->body_count);
    if (groups == NULL) return DB_ERROR;
    int ngroups = 0;
    for (int i = 0; i < c->body_count; i++) {
        const struct prepared *b = &c->bodies[i];
        if (b->count > 0) groups[ngroups++] = (struct ingest_group){b->row.id, b->items, b->count};
    }
    if (e == SO_OK)
        e = ingest_store(db, &c->arena, account_id, "amocrm_event", groups, ngroups, &c->cache, &c->err);
    if (e != SO_OK) return body_failure(e, &c->err);
    for (int i = 0; i < c->body_count; i++) {
        if ((rc = apply_body(db, c, &c->bodies[i])) != DB_OK) return rc;
        c->applied++;
    }
    if ((e = event_cache_flush(db, &c->cache, &c->err)) != SO_OK) return body_failure(e, &c->err);
    return store_inbox_set_applied(db, &c->arena, account_id, c->applied_ids, c->applied_count);
}

/* The whole transaction's cost besides its bodies (the claims, the statements that store and mark them, the
 * rollup's refresh, the commit) is shared by the batch: applying a backlog of leads[add] bodies took 366-427 us of
 * CPU a body at 25 a transaction, 259-277 us at 100 (docs/BENCHMARKS.md). */
int job_apply_webhooks(struct db *db, int batch, int max)
{
    int handled = 0;
    while (handled < max) {
        struct body_ctx c = {.cache = {.optimistic = true}, .batch = batch};
        enum db_rc rc = db_tx(db, apply_bodies, &c);
        if (rc == DB_ERROR && c.claimed) /* a failure of this body: try it again later, then park it */
            store_inbox_backoff(db, c.row.account_id, c.row.id,
                                c.err.detail[0] ? c.err.detail : "could not apply", MAX_ATTEMPTS);
        so_error_clear(&c.err);
        release_bodies(&c);
        arena_release(&c.arena);
        if (rc != DB_OK) break;
        handled += c.applied;
    }
    return handled;
}

#define WAKE_EVERY_S 5

int job_wake_waiting(struct db *db)
{
    /* once a period in the process, whichever scheduler thread comes first (the query covers every account) */
    static atomic_llong last;
    long long now = (long long)time(NULL), was = atomic_load(&last);
    if (now - was < WAKE_EVERY_S || !atomic_compare_exchange_strong(&last, &was, now)) return 0;
    struct arena a = {0};
    int64_t *accounts;
    int count = 0, total = 0;
    if (store_inbox_accounts_woken(db, &a, 100, &accounts, &count) == DB_OK) {
        for (int i = 0; i < count; i++) {
            struct so_error err = {0};
            int applied = 0;
            if (ingest_wake_existing(db, &a, accounts[i], &applied, &err) != SO_OK)
                log_msg(LOG_ERROR, "waking the waiting events of account %lld: %s", (long long)accounts[i],
                        err.detail[0] ? err.detail : "database error");
            else if (applied > 0)
                log_msg(LOG_INFO, "account %lld: %d waiting events applied (their deal or task appeared)",
                        (long long)accounts[i], applied);
            so_error_clear(&err);
            total += applied;
        }
    }
    arena_release(&a);
    return total;
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

/* Stores events in the inbox and applies them; wakes the events that waited for what an event created. */
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "salesops/ingest.h"
#include "salesops/timeutil.h"

static int by_apply_order(const void *x, const void *y)
{
    const struct ingest_item *a = x, *b = y;
    if (a->ev.at != b->ev.at) return a->ev.at < b->ev.at ? -1 : 1;
    bool ca = event_is_creation(a->ev.type), cb = event_is_creation(b->ev.type);
    if (ca != cb) return ca ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

void ingest_sort(struct ingest_item *items, int count)
{
    qsort(items, (size_t)count, sizeof *items, by_apply_order);
}

/* FNV-1a, 64 bits, over the account, the kind and the external id. Two objects that share a key only wait for
 * each other. */
static int64_t object_key(int64_t account_id, char kind, const char *ext)
{
    uint64_t h = 14695981039346656037u;
    for (int i = 0; i < 8; i++) h = (h ^ (uint8_t)((uint64_t)account_id >> (8 * i))) * 1099511628211u;
    h = (h ^ (uint8_t)kind) * 1099511628211u;
    for (const char *p = ext; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211u;
    return (int64_t)h;
}

static int event_keys(int64_t account_id, const struct so_event *ev, int64_t *keys)
{
    int n = 0;
    if (ev->deal) keys[n++] = object_key(account_id, 'd', ev->deal);
    if (ev->task) keys[n++] = object_key(account_id, 't', ev->task);
    if (ev->call) keys[n++] = object_key(account_id, 'c', ev->call);
    if (ev->note) keys[n++] = object_key(account_id, 'n', ev->note);
    return n;
}

int ingest_keys(int64_t account_id, const struct ingest_item *items, int count, int64_t *keys)
{
    int n = 0;
    for (int i = 0; i < count; i++) n += event_keys(account_id, &items[i].ev, keys + n);
    return n;
}

static int by_key(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Sorts the keys, drops repeats and locks them in one statement. */
static enum db_rc lock_keys(struct db *db, struct arena *a, int64_t *keys, int count)
{
    qsort(keys, (size_t)count, sizeof *keys, by_key);
    int n = 0;
    for (int i = 0; i < count; i++)
        if (n == 0 || keys[i] != keys[n - 1]) keys[n++] = keys[i];
    return store_lock_ingest_keys(db, a, keys, n);
}

static enum so_err apply_stored(struct db *db, struct arena *a, int64_t account_id, int64_t row_id,
                                const struct so_event *ev, int depth, bool stored_applied,
                                struct event_cache *cache, struct so_error *err);
static enum so_err apply_row_at_depth(struct db *db, struct arena *a, int64_t account_id,
                                      const struct so_inbox_row *row, int depth, struct event_cache *cache,
                                      struct so_error *err);

/* Applies the events that waited for the deal or task this event created. */
static enum so_err wake(struct db *db, struct arena *a, int64_t account_id, const char *kind, const char *ext,
                        int depth, struct event_cache *cache, struct so_error *err)
{
    if (cache && cache->none_waiting) return SO_OK;
    struct so_inbox_row *rows;
    int count;
    enum db_rc rc = store_inbox_waiting_for(db, a, account_id, kind, ext, &rows, &count);
    if (rc != DB_OK) return domain_db_error(rc, err);
    for (int i = 0; i < count; i++) {
        enum so_err e = apply_row_at_depth(db, a, account_id, &rows[i], depth, cache, err);
        if (e != SO_OK) return e;
    }
    return SO_OK;
}

static const char *const outcome_state[] = {"applied", "waiting", "ignored"};

#define LIVE_WINDOW_S (24 * 3600)

/* Distribution applies to deals created live: amoCRM webhooks, and events dated within the last 24 hours;
 * never a history import. */
static bool is_live(const char *source, const struct so_event *ev)
{
    if (strcmp(source, "import") == 0) return false;
    return ev->from_amocrm || ev->at >= so_now() - LIVE_WINDOW_S;
}

/* One event in a savepoint (or, on a transaction's first attempt, in none: see event_cache.optimistic): a failure
 * of its own parks it as failed; a lost database or a serialization
 * conflict fails the whole transaction (which the caller may run again). A row stored as 'applied' in this
 * transaction (a new event: most are applied) is updated only when its outcome is another. */
static enum so_err apply_stored(struct db *db, struct arena *a, int64_t account_id, int64_t row_id,
                                const struct so_event *ev, int depth, bool stored_applied,
                                struct event_cache *cache, struct so_error *err)
{
    bool savepoint = !(cache && cache->optimistic);
    enum db_rc rc = savepoint ? store_savepoint(db) : DB_OK;
    if (rc != DB_OK) return domain_db_error(rc, err);
    struct event_result result;
    struct so_error own = {0};
    enum so_err e = event_apply(db, a, account_id, ev, cache, &result, &own);
    if (e == SO_OK && result.outcome == EVENT_APPLIED && depth < 4) {
        if (ev->type == EV_DEAL_CREATED)
            e = wake(db, a, account_id, "deal", ev->deal, depth + 1, cache, &own);
        else if (ev->type == EV_TASK_CREATED)
            e = wake(db, a, account_id, "task", ev->task, depth + 1, cache, &own);
    }
    if (e != SO_OK && (own.retry || e == ERR_DB_UNAVAILABLE)) {
        so_error_clear(err);
        *err = own;
        return e;
    }
    if (e != SO_OK && !savepoint) {
        /* nothing to roll back to: the transaction is run again, each event in a savepoint */
        cache->optimistic = false;
        so_error_clear(&own);
        so_error_clear(err);
        err->retry = true;
        return so_fail(err, ERR_CONFLICT, "an event failed; the batch is applied again, event by event");
    }
    if (e != SO_OK) {
        rc = store_savepoint_rollback(db);
        event_cache_clear(cache); /* it may hold placeholders the rollback removed */
        if (rc == DB_OK) rc = store_inbox_set_state(db, account_id, row_id, "failed", NULL, NULL, own.detail);
        so_error_clear(&own);
        return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
    }
    if (cache && result.outcome == EVENT_WAITING) cache->none_waiting = false;
    rc = savepoint ? store_savepoint_release(db) : DB_OK;
    if (rc == DB_OK && !(stored_applied && result.outcome == EVENT_APPLIED))
        rc = store_inbox_set_state(db, account_id, row_id, outcome_state[result.outcome], result.waits_kind,
                                   result.waits_for, NULL);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err ingest_apply_row(struct db *db, struct arena *a, int64_t account_id,
                             const struct so_inbox_row *row, struct so_error *err)
{
    return apply_row_at_depth(db, a, account_id, row, 0, NULL, err);
}

static enum so_err apply_row_at_depth(struct db *db, struct arena *a, int64_t account_id,
                                      const struct so_inbox_row *row, int depth, struct event_cache *cache,
                                      struct so_error *err)
{
    json_error_t je;
    json_t *body = json_loads(row->body, 0, &je);
    struct so_event ev;
    struct so_error own = {0};
    enum so_err e = body ? event_parse(body, strcmp(row->source, "amocrm_event") == 0, &ev, &own)
                         : so_fail(&own, ERR_MALFORMED, "stored event is not JSON");
    if (e != SO_OK) {
        enum db_rc rc = store_inbox_set_state(db, account_id, row->id, "failed", NULL, NULL, own.detail);
        so_error_clear(&own);
        json_decref(body);
        return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
    }
    ev.live = is_live(row->source, &ev);
    if (depth > 0) {
        /* woken by a creation: what it is about may be outside the keys the transaction locked first (a task
         * created for the new deal). Locked now; an event that waits for it is then looked for. */
        int64_t keys[INGEST_KEYS_PER_EVENT];
        enum db_rc rc = lock_keys(db, a, keys, event_keys(account_id, &ev, keys));
        if (rc != DB_OK) {
            json_decref(body);
            return domain_db_error(rc, err);
        }
        if (cache) cache->none_waiting = false;
    }
    e = apply_stored(db, a, account_id, row->id, &ev, depth, false, cache, err);
    json_decref(body);
    return e;
}

enum so_err ingest_tx_start(struct db *db, struct arena *a, int64_t account_id, int64_t *keys, int nkeys,
                            struct event_cache *cache, struct so_error *err)
{
    event_cache_clear(cache);
    bool any;
    enum db_rc rc = store_lock_account_ingest_shared(db, account_id);
    if (rc == DB_OK) rc = lock_keys(db, a, keys, nkeys);
    /* after the keys: a waiting event for one of them was committed before, or is never written */
    if (rc == DB_OK) rc = store_inbox_any_waiting(db, account_id, &any);
    if (rc != DB_OK) return domain_db_error(rc, err);
    cache->none_waiting = !any;
    return SO_OK;
}

struct batch_ctx {
    struct arena *a;
    int64_t account_id;
    const char *source;
    int64_t parent_id;
    struct ingest_item *items;
    int count;
    struct event_cache cache;
    struct so_error *err;
};

enum so_err ingest_store(struct db *db, struct arena *a, int64_t account_id, const char *source,
                         const struct ingest_group *groups, int ngroups, struct event_cache *cache,
                         struct so_error *err)
{
    int count = 0;
    for (int g = 0; g < ngroups; g++)
        count += groups[g].count;
    if (count == 0) return SO_OK;
    struct ingest_item **items = arena_alloc(a, sizeof *items * (size_t)count);
    struct so_inbox_row *rows = arena_alloc(a, sizeof *rows * (size_t)count);
    int64_t *ids = arena_alloc(a, sizeof *ids * (size_t)count);
    if (items == NULL || rows == NULL || ids == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    int n = 0;
    for (int g = 0; g < ngroups; g++)
        for (int i = 0; i < groups[g].count; i++, n++) {
            items[n] = &groups[g].items[i];
            rows[n] = (struct so_inbox_row){.source = source,
                                            .parent_id = groups[g].parent_id,
                                            .event_id = items[n]->ev.id,
                                            .event_type = event_type_name(items[n]->ev.type),
                                            .event_at = items[n]->ev.at,
                                            .body = items[n]->body};
        }
    enum db_rc rc = store_inbox_insert_many(db, account_id, rows, count, ids);
    if (rc != DB_OK) return domain_db_error(rc, err);
    const char **deals = arena_alloc(a, sizeof *deals * (size_t)count);
    if (deals == NULL) return so_fail(err, ERR_INTERNAL, "out of memory");
    int ndeals = 0;
    for (int i = 0; i < count; i++) {
        items[i]->row_id = ids[i];
        items[i]->duplicate = ids[i] == 0;
        if (!items[i]->duplicate && items[i]->ev.deal) deals[ndeals++] = items[i]->ev.deal;
    }
    return event_cache_deals_absent(db, a, account_id, cache, deals, ndeals, err);
}

enum so_err ingest_apply_stored(struct db *db, struct arena *a, int64_t account_id, const char *source,
                                struct ingest_item *items, int count, struct event_cache *cache,
                                struct so_error *err)
{
    for (int i = 0; i < count; i++) {
        struct ingest_item *it = &items[i];
        if (it->duplicate) continue;
        it->ev.live = is_live(source, &it->ev);
        enum so_err e = apply_stored(db, a, account_id, it->row_id, &it->ev, 0, true, cache, err);
        if (e != SO_OK) return e;
    }
    return SO_OK;
}

static enum db_rc batch_tx(struct db *db, void *p)
{
    struct batch_ctx *c = p;
    so_error_clear(c->err);
    int64_t *keys = arena_alloc(c->a, sizeof *keys * INGEST_KEYS_PER_EVENT * ((size_t)c->count + 1));
    if (keys == NULL) return domain_tx_outcome(so_fail(c->err, ERR_INTERNAL, "out of memory"), c->err);
    int nkeys = ingest_keys(c->account_id, c->items, c->count, keys);
    enum so_err e = ingest_tx_start(db, c->a, c->account_id, keys, nkeys, &c->cache, c->err);
    if (e != SO_OK) return domain_tx_outcome(e, c->err);
    struct ingest_group all = {.parent_id = c->parent_id, .items = c->items, .count = c->count};
    e = ingest_store(db, c->a, c->account_id, c->source, &all, 1, &c->cache, c->err);
    if (e == SO_OK)
        e = ingest_apply_stored(db, c->a, c->account_id, c->source, c->items, c->count, &c->cache, c->err);
    if (e == SO_OK) e = event_cache_flush(db, &c->cache, c->err);
    return domain_tx_outcome(e, c->err);
}

enum so_err ingest_batch(struct db *db, struct arena *a, int64_t account_id, const char *source,
                         int64_t parent_id, struct ingest_item *items, int count, struct so_error *err)
{
    struct batch_ctx c = {
        .a = a, .account_id = account_id, .source = source, .parent_id = parent_id, .items = items, .count = count,
        .err = err, .cache = {.optimistic = true}};
    enum db_rc rc = db_tx(db, batch_tx, &c);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

struct retry_ctx {
    struct arena *a;
    int64_t account_id;
    const struct so_inbox_row *row;
    struct so_error *err;
};

static enum db_rc retry_tx(struct db *db, void *p)
{
    struct retry_ctx *c = p;
    so_error_clear(c->err);
    enum db_rc rc = store_lock_account_ingest(db, c->account_id);
    /* read again under the lock: a batch may have applied the row since the caller read it */
    struct so_inbox_row row;
    if (rc == DB_OK) rc = store_inbox_get_locked(db, c->a, c->account_id, c->row->id, &row);
    if (rc != DB_OK) return rc;
    if (strcmp(row.state, "failed") != 0 && strcmp(row.state, "waiting") != 0) {
        so_fail(c->err, ERR_CONFLICT, "inbox row %lld is %s now: only failed and waiting rows are retried",
                (long long)row.id, row.state);
        return DB_ABORT;
    }
    return domain_tx_outcome(ingest_apply_row(db, c->a, c->account_id, &row, c->err), c->err);
}

enum so_err ingest_retry(struct db *db, struct arena *a, int64_t account_id, const struct so_inbox_row *row,
                         struct so_error *err)
{
    struct retry_ctx c = {a, account_id, row, err};
    enum db_rc rc = db_tx(db, retry_tx, &c);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

struct wake_ctx {
    struct arena *a;
    int64_t account_id;
    struct so_error *err;
    int applied;
};

static enum db_rc wake_existing_tx(struct db *db, void *p)
{
    struct wake_ctx *c = p;
    so_error_clear(c->err);
    c->applied = 0;
    enum db_rc rc = store_lock_account_ingest(db, c->account_id);
    struct so_inbox_row *rows;
    int count = 0;
    if (rc == DB_OK) rc = store_inbox_woken(db, c->a, c->account_id, &rows, &count);
    if (rc != DB_OK) return rc;
    for (int i = 0; i < count; i++)
        if (ingest_apply_row(db, c->a, c->account_id, &rows[i], c->err) != SO_OK)
            return domain_tx_outcome(c->err->code, c->err);
    c->applied = count;
    return DB_OK;
}

enum so_err ingest_wake_existing(struct db *db, struct arena *a, int64_t account_id, int *applied,
                                 struct so_error *err)
{
    struct wake_ctx c = {a, account_id, err, 0};
    enum db_rc rc = db_tx(db, wake_existing_tx, &c);
    *applied = c.applied;
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

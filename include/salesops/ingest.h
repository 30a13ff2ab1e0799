/* Ingest: events are stored in the inbox and applied in the same transaction, each in a savepoint of its
 * own, so that one failing event is parked as failed without undoing the others of its batch. An event
 * that must wait for its deal or task is applied as soon as that deal or task is created. */
#ifndef SALESOPS_INGEST_H
#define SALESOPS_INGEST_H
#include <stdbool.h>
#include "salesops/events.h"

struct ingest_item {
    struct so_event ev;
    const char *body; /* the event's JSON text, as stored */
    int index;        /* its place in the request */
    bool duplicate;   /* out: its id was seen before */
    int64_t row_id;   /* out: its inbox row (0 for a duplicate) */
};

/* Items stored together: the events of one webhook body (parent_id: the body's row), or of a request (0). */
struct ingest_group {
    int64_t parent_id;
    struct ingest_item *items;
    int count;
};

/* Sorts items into the order events are applied in: (at, creations first, arrival). */
void ingest_sort(struct ingest_item *items, int count);
/* Stores and applies one batch in one transaction. source: events | import | amocrm_event. */
enum so_err ingest_batch(struct db *db, struct arena *a, int64_t account_id, const char *source,
                         int64_t parent_id, struct ingest_item *items, int count, struct so_error *err);
/* Inside the caller's transaction, started with ingest_tx_start: stores the groups' events in the inbox, in one
 * statement and in order, and marks each item's row_id or duplicate; then notes in the cache which deals they
 * name do not exist yet (one statement). Then ingest_apply_stored applies a group's
 * items; the cache serves the whole transaction (the applier stores the events of all its bodies at once). The
 * cache may hold deals created by the events: event_cache_flush inserts them before the transaction ends. */
enum so_err ingest_store(struct db *db, struct arena *a, int64_t account_id, const char *source,
                         const struct ingest_group *groups, int ngroups, struct event_cache *cache,
                         struct so_error *err);
enum so_err ingest_apply_stored(struct db *db, struct arena *a, int64_t account_id, const char *source,
                                struct ingest_item *items, int count, struct event_cache *cache,
                                struct so_error *err);
/* The keys of what the items' events are about (their deals, tasks, calls and notes): at most
 * INGEST_KEYS_PER_EVENT an item, written to keys; returns how many. */
#define INGEST_KEYS_PER_EVENT 4
int ingest_keys(int64_t account_id, const struct ingest_item *items, int count, int64_t *keys);
/* Starts a transaction's ingest of an account: takes the account's ingest lock shared and the keys of the
 * events it will apply (sorted here, in one statement; several batches of one account are applied at once,
 * and never two events about one deal or task), clears the cache and notes whether any event of the account
 * waits (if none does, creations need not look for them). */
enum so_err ingest_tx_start(struct db *db, struct arena *a, int64_t account_id, int64_t *keys, int nkeys,
                            struct event_cache *cache, struct so_error *err);
/* Applies one stored event row again, in a transaction of its own (POST /webhooks/inbox/{id}/retry). The row is
 * read again under the account's lock: one that is no longer failed or waiting is ERR_CONFLICT. */
enum so_err ingest_retry(struct db *db, struct arena *a, int64_t account_id, const struct so_inbox_row *row,
                         struct so_error *err);
/* Applies, in a transaction of its own under the account's ingest lock (exclusive), every waiting event whose
 * deal or task exists now. A creation by an event wakes its waiting events at once; this serves the creations
 * that do not: an import, a REST command with an external id, the connector storing the amoCRM id of a task or
 * note it delivered. applied: how many were applied (or found applied, ignored or failed). */
enum so_err ingest_wake_existing(struct db *db, struct arena *a, int64_t account_id, int *applied,
                                 struct so_error *err);
/* Applies one stored inbox row again (retry, or the applier): inside the caller's transaction. */
enum so_err ingest_apply_row(struct db *db, struct arena *a, int64_t account_id,
                             const struct so_inbox_row *row, struct so_error *err);

#endif

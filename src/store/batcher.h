/* Batch threads (src/store/batcher.c): callers queue items; worker threads, each with its own database
 * connection, take everything queued (up to a limit) and do it in one statement, then call each item's done().
 * While a batch is in the database new items queue up for the next one: under load, batches grow by themselves;
 * an item that arrives alone is done alone, at once. Webhook receipt and deal reads use it. */
#ifndef SALESOPS_STORE_BATCHER_H
#define SALESOPS_STORE_BATCHER_H
#include <pthread.h>
#include "salesops/store.h"

#define BATCHER_MAX_WORKERS 8

struct batcher {
    /* set by the owner */
    int max_items;
    size_t max_bytes; /* of a batch's items (so_batch_item.bytes); a larger item goes alone */
    /* does the batch (count items linked by next): sets each item's rc and results */
    void (*run)(struct db *db, struct so_batch_item *batch, int count);
    /* optional: before a batch is taken, how many milliseconds to wait first (the batch then takes what queued
     * meanwhile), given how long the oldest queued item has waited; called without the lock */
    long (*pace)(const char *conninfo, long oldest_ms);
    /* the batcher's own */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct so_batch_item *head, *tail;
    int users, worker_count;
    bool stopping;
    char *conninfo;
    pthread_t workers[BATCHER_MAX_WORKERS];
    long batches, items; /* under lock */
};

#define BATCHER_INIT(max_items_, max_bytes_, run_, pace_)                                                      \
    {.max_items = (max_items_), .max_bytes = (max_bytes_), .run = (run_), .pace = (pace_),                    \
     .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER}

/* Starts `count` workers with their own connections (the first call; later ones, for the same database, only
 * count users; another database is refused: the workers serve one). batcher_stop, once for each start, lets
 * the last user's stop do what is queued and end them. Without workers, batcher_submit answers
 * DB_UNAVAILABLE at once. */
bool batcher_start(struct batcher *b, const char *conninfo, int count);
void batcher_stop(struct batcher *b);
void batcher_submit(struct batcher *b, struct so_batch_item *it);
/* Batches and items so far. */
void batcher_stats(struct batcher *b, long *batches, long *items);

#endif

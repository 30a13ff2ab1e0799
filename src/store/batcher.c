/* Batch threads: see batcher.h. */
#include <stdlib.h>
#include <string.h>
#include "batcher.h"
#include "db_internal.h"
#include "salesops/timeutil.h"

/* Takes the batch from the head of the queue (lock held); *count: its items. */
static struct so_batch_item *take_batch(struct batcher *b, int *count)
{
    struct so_batch_item *batch = b->head, *last = b->head;
    size_t bytes = last->bytes;
    int n = 1;
    while (last->next != NULL && n < b->max_items && bytes + last->next->bytes <= b->max_bytes) {
        last = last->next;
        bytes += last->bytes;
        n++;
    }
    b->head = last->next;
    if (b->head == NULL) b->tail = NULL;
    last->next = NULL;
    *count = n;
    return batch;
}

/* A worker: takes what is queued, does it, answers it; at a stop, only once the queue is empty. */
static void *worker_main(void *p)
{
    struct batcher *b = p;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (b->head == NULL && !b->stopping)
            pthread_cond_wait(&b->wake, &b->lock);
        if (b->head == NULL) break;
        if (b->pace != NULL && !b->stopping) {
            long oldest = (long)(so_monotonic_ms() - b->head->queued_ms);
            pthread_mutex_unlock(&b->lock);
            so_sleep_ms(b->pace(b->conninfo, oldest));
            pthread_mutex_lock(&b->lock);
            if (b->head == NULL) continue; /* another worker took them */
        }
        int n;
        struct so_batch_item *batch = take_batch(b, &n);
        b->batches++;
        b->items += n;
        pthread_mutex_unlock(&b->lock);
        struct db *db = db_thread(b->conninfo);
        if (db != NULL) b->run(db, batch, n);
        for (struct so_batch_item *it = batch, *next; it != NULL; it = next) {
            next = it->next; /* it is its owner's again once done() is called */
            if (db == NULL) it->rc = DB_UNAVAILABLE;
            it->done(it->ctx);
        }
        pthread_mutex_lock(&b->lock);
    }
    pthread_mutex_unlock(&b->lock);
    db_thread_release();
    return NULL;
}

bool batcher_start(struct batcher *b, const char *conninfo, int count)
{
    pthread_mutex_lock(&b->lock);
    if (b->users > 0 && strcmp(conninfo, b->conninfo) != 0) { /* one database per process */
        pthread_mutex_unlock(&b->lock);
        return false;
    }
    bool ok = true;
    if (b->users++ == 0) {
        b->stopping = false;
        b->conninfo = strdup(conninfo);
        if (count > BATCHER_MAX_WORKERS) count = BATCHER_MAX_WORKERS;
        for (b->worker_count = 0; b->conninfo != NULL && b->worker_count < count; b->worker_count++)
            if (pthread_create(&b->workers[b->worker_count], NULL, worker_main, b) != 0) break;
        ok = b->worker_count > 0;
    }
    pthread_mutex_unlock(&b->lock);
    if (!ok) batcher_stop(b);
    return ok;
}

void batcher_stop(struct batcher *b)
{
    pthread_mutex_lock(&b->lock);
    bool last = --b->users == 0;
    if (last) {
        b->stopping = true;
        pthread_cond_broadcast(&b->wake);
    }
    pthread_mutex_unlock(&b->lock);
    if (!last) return;
    for (int i = 0; i < b->worker_count; i++)
        pthread_join(b->workers[i], NULL);
    b->worker_count = 0;
    free(b->conninfo);
    b->conninfo = NULL;
}

void batcher_submit(struct batcher *b, struct so_batch_item *it)
{
    it->next = NULL;
    it->queued_ms = so_monotonic_ms();
    pthread_mutex_lock(&b->lock);
    bool running = b->worker_count > 0 && !b->stopping;
    if (running) {
        if (b->tail != NULL)
            b->tail->next = it;
        else
            b->head = it;
        b->tail = it;
        pthread_cond_signal(&b->wake);
    }
    pthread_mutex_unlock(&b->lock);
    if (!running) {
        it->rc = DB_UNAVAILABLE;
        it->done(it->ctx);
    }
}

void batcher_stats(struct batcher *b, long *batches, long *items)
{
    pthread_mutex_lock(&b->lock);
    *batches = b->batches;
    *items = b->items;
    pthread_mutex_unlock(&b->lock);
}

/* Webhook receipt with group commit. Every webhook body is stored by one INSERT before it is answered; at
 * high rates most of that INSERT's cost is the statement, the commit and the thread switches around it, not
 * the row. So the webhook handler hands its body to this queue and the server suspends the connection (its
 * worker thread goes on with other connections); writer threads, each with its own database connection,
 * store everything queued in one statement and one commit and call each body's done(), which resumes its
 * connection. While a batch is in the database new bodies queue up for the next one: under load, batches
 * grow by themselves; a body that arrives alone is stored alone, at once.
 *
 * Each body's outcome is the one a single-row statement would give (accepted with its inbox id, duplicate,
 * unknown token, another subdomain); when the statement fails, every body of its batch gets the error.
 * No NOTIFY here: PostgreSQL serialises every commit that carries one (a cluster-wide lock from NOTIFY to
 * commit), which cut single-row receipt from 11,816 to 3,374 a second in pgbench; the appliers poll twice a
 * second. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "db_internal.h"
#include "salesops/buf.h"
#include "salesops/crypto.h"

#define RECEIPT_MAX_BODIES 128
#define RECEIPT_MAX_BYTES  (4u << 20) /* a batch's bodies; a larger body goes alone */
#define RECEIPT_MAX_WRITERS 8

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_wake = PTHREAD_COND_INITIALIZER;
static struct so_receipt *queue_head, *queue_tail;
static int users, writer_count;
static bool stopping;
static char *writer_conninfo;
static pthread_t writers[RECEIPT_MAX_WRITERS];
static long stat_batches, stat_bodies; /* under queue_lock */
/* A burst: a batch this large means the bodies arrive faster than one commit each could store them */
#define RECEIPT_BURST_BODIES 4
#define RECEIPT_BURST_HOLD_MS 250
static atomic_llong burst_until_ms; /* monotonic */

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

bool receipt_burst(void)
{
    return mono_ms() < atomic_load(&burst_until_ms);
}

DB_STMT(stmt_inbox_receive_webhooks,
        "WITH input AS (SELECT t.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[])"
        "  WITH ORDINALITY AS t(token, body, hash, sent, store, ord)),"
        " acct AS (SELECT i.ord, a.id, coalesce(g.subdomain, '') AS sub, i.body, decode(i.hash, 'hex') AS hash,"
        "  i.sent, i.store FROM input i"
        "  LEFT JOIN accounts a ON a.webhook_token_hash = decode(i.token, 'hex')"
        "  LEFT JOIN amocrm_integrations g ON g.account_id = a.id),"
        /* keys in one order, so that two batches that share a body cannot deadlock */
        " fresh AS (INSERT INTO webhook_seen (account_id, body_hash, seen_at)"
        "  SELECT id, hash, now() FROM acct WHERE store AND id IS NOT NULL AND (sub = '' OR sent IS NULL OR sub = sent)"
        "  ORDER BY id, hash"
        "  ON CONFLICT (account_id, body_hash) DO UPDATE SET seen_at = now()"
        "  WHERE webhook_seen.seen_at < now() - interval '10 minutes' RETURNING account_id, body_hash),"
        " stored AS (INSERT INTO inbox (account_id, source, body, body_hash, state)"
        "  SELECT a.id, 'amocrm', a.body, a.hash, 'pending' FROM acct a"
        "  JOIN fresh f ON f.account_id = a.id AND f.body_hash = a.hash ORDER BY a.ord"
        "  RETURNING id, account_id, body_hash)"
        " SELECT a.id, a.sub, s.id FROM acct a"
        " LEFT JOIN stored s ON s.account_id = a.id AND s.body_hash = a.hash ORDER BY a.ord");

/* One element of a text[] literal: a SHA-256 in hex, quoted. */
static void put_hex(struct so_buf *b, const uint8_t *bytes)
{
    char hex[SO_SHA256_LEN * 2 + 3];
    hex[0] = '"';
    so_hex(bytes, SO_SHA256_LEN, hex + 1);
    hex[SO_SHA256_LEN * 2 + 1] = '"';
    so_buf_put(b, hex, SO_SHA256_LEN * 2 + 2);
}

/* One element of a text[] literal: NULL, or the text quoted with '"' and '\' escaped. */
static void put_element(struct so_buf *b, const char *s, size_t n)
{
    if (s == NULL) {
        so_buf_put(b, "NULL", 4);
        return;
    }
    so_buf_put(b, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '"' && s[i] != '\\') continue;
        so_buf_put(b, s + from, i - from);
        so_buf_put(b, "\\", 1);
        from = i;
    }
    so_buf_put(b, s + from, n - from);
    so_buf_put(b, "\"", 1);
}

static bool same_key(const struct so_receipt *a, const struct so_receipt *b)
{
    return a->store == b->store && memcmp(a->token_hash, b->token_hash, SO_SHA256_LEN) == 0 &&
           memcmp(a->body_hash, b->body_hash, SO_SHA256_LEN) == 0;
}

/* Stores a batch (a list linked by next) in one statement and sets each body's rc and out. A body whose key
 * came earlier in the batch is not sent: it gets the earlier one's account, and is a duplicate. */
static void store_batch(struct db *db, struct so_receipt *batch)
{
    struct so_buf col[5] = {0};
    int count = 0;
    for (int c = 0; c < 5; c++)
        so_buf_put(&col[c], "{", 1);
    for (struct so_receipt *r = batch; r != NULL; r = r->next) {
        r->same = NULL;
        for (struct so_receipt *e = batch; e != r && r->same == NULL; e = e->next)
            if (e->same == NULL && same_key(e, r)) r->same = e;
        if (r->same != NULL) continue;
        const char *sep = count++ ? "," : "";
        for (int c = 0; c < 5; c++)
            so_buf_put(&col[c], sep, strlen(sep));
        put_hex(&col[0], r->token_hash);
        put_element(&col[1], r->body, r->body_len);
        put_hex(&col[2], r->body_hash);
        put_element(&col[3], r->sent, r->sent ? strlen(r->sent) : 0);
        so_buf_put(&col[4], r->store ? "t" : "f", 1);
    }
    bool failed = false;
    struct db_params p = {0};
    for (int c = 0; c < 5; c++) {
        so_buf_put(&col[c], "}", 1);
        failed |= col[c].failed;
        p.values[p.count++] = col[c].data;
    }
    PGresult *res = NULL;
    enum db_rc rc = failed ? DB_ERROR : db_exec(db, &stmt_inbox_receive_webhooks, &p, &res);
    if (rc == DB_NONE || (rc == DB_OK && PQntuples(res) != count)) rc = DB_ERROR;
    int row = 0;
    for (struct so_receipt *r = batch; r != NULL; r = r->next) {
        r->rc = rc;
        if (rc != DB_OK) continue;
        r->out = (struct so_webhook_receipt){0};
        if (r->same != NULL) {
            r->out = r->same->out;
            r->out.inbox_id = 0;
            continue;
        }
        if (!PQgetisnull(res, row, 0)) {
            r->out.account_id = db_i64(res, row, 0);
            snprintf(r->out.subdomain, sizeof r->out.subdomain, "%s", PQgetvalue(res, row, 1));
            r->out.inbox_id = PQgetisnull(res, row, 2) ? 0 : db_i64(res, row, 2);
        }
        row++;
    }
    PQclear(res);
    for (int c = 0; c < 5; c++)
        so_buf_free(&col[c]);
}

/* Takes the batch from the head of the queue (queue_lock held); *count: its bodies. */
static struct so_receipt *take_batch(int *count)
{
    struct so_receipt *batch = queue_head, *last = queue_head;
    size_t bytes = last->body_len;
    int n = 1;
    while (last->next != NULL && n < RECEIPT_MAX_BODIES && bytes + last->next->body_len <= RECEIPT_MAX_BYTES) {
        last = last->next;
        bytes += last->body_len;
        n++;
    }
    queue_head = last->next;
    if (queue_head == NULL) queue_tail = NULL;
    last->next = NULL;
    *count = n;
    return batch;
}

/* A writer: takes what is queued, stores it, answers it; at a stop, only once the queue is empty. */
static void *writer_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&queue_lock);
    for (;;) {
        while (queue_head == NULL && !stopping)
            pthread_cond_wait(&queue_wake, &queue_lock);
        if (queue_head == NULL) break;
        int n;
        struct so_receipt *batch = take_batch(&n);
        stat_batches++;
        stat_bodies += n;
        if (n >= RECEIPT_BURST_BODIES) atomic_store(&burst_until_ms, mono_ms() + RECEIPT_BURST_HOLD_MS);
        pthread_mutex_unlock(&queue_lock);
        struct db *db = db_thread(writer_conninfo);
        if (db != NULL) store_batch(db, batch);
        for (struct so_receipt *r = batch, *next; r != NULL; r = next) {
            next = r->next; /* r is its owner's again once done() is called */
            if (db == NULL) r->rc = DB_UNAVAILABLE;
            r->done(r->ctx);
        }
        pthread_mutex_lock(&queue_lock);
    }
    pthread_mutex_unlock(&queue_lock);
    db_thread_release();
    return NULL;
}

bool receipt_start(const char *conninfo, int count)
{
    pthread_mutex_lock(&queue_lock);
    if (users > 0 && strcmp(conninfo, writer_conninfo) != 0) { /* one database per process */
        pthread_mutex_unlock(&queue_lock);
        return false;
    }
    bool ok = true;
    if (users++ == 0) {
        stopping = false;
        writer_conninfo = strdup(conninfo);
        if (count > RECEIPT_MAX_WRITERS) count = RECEIPT_MAX_WRITERS;
        for (writer_count = 0; writer_conninfo != NULL && writer_count < count; writer_count++)
            if (pthread_create(&writers[writer_count], NULL, writer_main, NULL) != 0) break;
        ok = writer_count > 0;
    }
    pthread_mutex_unlock(&queue_lock);
    if (!ok) receipt_stop();
    return ok;
}

void receipt_stop(void)
{
    pthread_mutex_lock(&queue_lock);
    bool last = --users == 0;
    if (last) {
        stopping = true;
        pthread_cond_broadcast(&queue_wake);
    }
    pthread_mutex_unlock(&queue_lock);
    if (!last) return;
    for (int i = 0; i < writer_count; i++)
        pthread_join(writers[i], NULL);
    writer_count = 0;
    free(writer_conninfo);
    writer_conninfo = NULL;
}

void receipt_submit(struct so_receipt *r)
{
    r->next = NULL;
    pthread_mutex_lock(&queue_lock);
    bool running = writer_count > 0 && !stopping;
    if (running) {
        if (queue_tail != NULL)
            queue_tail->next = r;
        else
            queue_head = r;
        queue_tail = r;
        pthread_cond_signal(&queue_wake);
    }
    pthread_mutex_unlock(&queue_lock);
    if (!running) {
        r->rc = DB_UNAVAILABLE;
        r->done(r->ctx);
    }
}

void store_receipt_stats(struct receipt_stats *out)
{
    pthread_mutex_lock(&queue_lock);
    *out = (struct receipt_stats){stat_batches, stat_bodies};
    pthread_mutex_unlock(&queue_lock);
}

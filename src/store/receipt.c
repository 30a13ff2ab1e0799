/* Webhook receipt with group commit. Every webhook body is stored by one INSERT before it is answered; at
 * high rates most of that INSERT's cost is the statement, the commit and the thread switches around it, not
 * the row. So the webhook handler hands its body to this queue and the server suspends the connection (its
 * worker thread goes on with other connections); writer threads (a batcher, batcher.h), each with its own
 * database connection, store everything queued in one statement and one commit and call each body's done(),
 * which resumes its connection. Under load, batches grow by themselves; a body that arrives alone is stored
 * alone, at once.
 *
 * Each body's outcome is the one a single-row statement would give (accepted with its inbox id, duplicate,
 * unknown token, another subdomain); when the statement fails, every body of its batch gets the error.
 * No NOTIFY here: PostgreSQL serialises every commit that carries one (a cluster-wide lock from NOTIFY to
 * commit), which cut single-row receipt from 11,816 to 3,374 a second in pgbench; the appliers poll twice a
 * second. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include "batcher.h"
#include "db_internal.h"
#include "salesops/buf.h"
#include "salesops/crypto.h"
#include "salesops/timeutil.h"

#define RECEIPT_MAX_BODIES 128
#define RECEIPT_MAX_BYTES  (4u << 20) /* a batch's bodies; a larger body goes alone */
/* A burst: a batch this large means the bodies arrive faster than one commit each could store them */
#define RECEIPT_BURST_BODIES 4
#define RECEIPT_BURST_HOLD_MS 250
static atomic_llong burst_until_ms; /* monotonic */

bool receipt_burst(void)
{
    return so_monotonic_ms() < atomic_load(&burst_until_ms);
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

static bool same_key(const struct so_receipt *a, const struct so_receipt *b)
{
    return a->store == b->store && memcmp(a->token_hash, b->token_hash, SO_SHA256_LEN) == 0 &&
           memcmp(a->body_hash, b->body_hash, SO_SHA256_LEN) == 0;
}

#define NEXT(r) ((struct so_receipt *)(r)->link.next)

/* Stores a batch (a list linked by link.next) in one statement and sets each body's rc and out. A body whose key
 * came earlier in the batch is not sent: it gets the earlier one's account, and is a duplicate. */
static void store_batch(struct db *db, struct so_batch_item *items, int n)
{
    (void)n;
    struct so_receipt *batch = (struct so_receipt *)items;
    struct so_buf col[5] = {0};
    int count = 0;
    for (struct so_receipt *r = batch; r != NULL; r = NEXT(r)) {
        r->same = NULL;
        for (struct so_receipt *e = batch; e != r && r->same == NULL; e = NEXT(e))
            if (e->same == NULL && same_key(e, r)) r->same = e;
        if (r->same != NULL) continue;
        db_array_row(col, 5, count++);
        put_hex(&col[0], r->token_hash);
        db_array_put_text(&col[1], r->body, r->body_len);
        put_hex(&col[2], r->body_hash);
        db_array_put_text(&col[3], r->sent, r->sent ? strlen(r->sent) : 0);
        so_buf_put(&col[4], r->store ? "t" : "f", 1);
    }
    struct db_params p = {0};
    PGresult *res;
    enum db_rc rc = db_array_exec(db, &stmt_inbox_receive_webhooks, col, 5, &p, count, &res);
    int row = 0;
    for (struct so_receipt *r = batch; r != NULL; r = NEXT(r)) {
        r->link.rc = rc;
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
}

static void batch_taken(int count)
{
    if (count >= RECEIPT_BURST_BODIES) atomic_store(&burst_until_ms, so_monotonic_ms() + RECEIPT_BURST_HOLD_MS);
}

static struct batcher writers = BATCHER_INIT(RECEIPT_MAX_BODIES, RECEIPT_MAX_BYTES, store_batch, batch_taken);

bool receipt_start(const char *conninfo, int count)
{
    return batcher_start(&writers, conninfo, count);
}

void receipt_stop(void)
{
    batcher_stop(&writers);
}

void receipt_submit(struct so_receipt *r)
{
    r->link.bytes = r->body_len;
    batcher_submit(&writers, &r->link);
}

void store_receipt_stats(struct receipt_stats *out)
{
    batcher_stats(&writers, &out->batches, &out->bodies);
}

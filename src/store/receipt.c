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

/* Flow control. Receiving a body costs a fraction of applying it: on shared cores, a burst received at full
 * speed leaves a backlog that takes several times the burst to apply, while the receipt takes the CPU the
 * appliers need. So the receipt keeps to the appliers. When the oldest due body has waited longer than the
 * configured lag (SALESOPS_WEBHOOK_PACE_LAG_MS, 1 s by default), each receipt batch first waits PACE_GAIN ms for
 * every second beyond it, and then takes everything that arrived meanwhile; once the appliers catch up it waits
 * no more. The wait moves by at most PACE_STEP_MS each PACE_SAMPLE_MS, so that the receipt's rate does not
 * swing with each applier transaction, and no body waits in the queue more than PACE_MAX_MS for it: however far
 * behind the appliers are (an account locked by an import, say), and however many bodies arrive, every body is
 * answered well within amoCRM's 2 s. The lag is read from the database, so every instance's appliers and
 * receipts count, at most once every PACE_SAMPLE_MS in the process and only when a batch is about to be
 * stored. */
#define PACE_GAIN      20
#define PACE_MAX_MS    250
#define PACE_SAMPLE_MS 100
#define PACE_STEP_MS   2
static atomic_int pace_lag_ms;       /* 0: no flow control */
static atomic_llong pace_sampled_ms; /* monotonic */
static atomic_long pace_ms;

/* The first due body in the claim's order: one index lookup, also under statistics that saw no pending body
 * (min() was planned as a scan of every due row then). */
DB_STMT(stmt_inbox_webhook_lag,
        "SELECT coalesce((SELECT (extract(epoch FROM now() - next_attempt_at) * 1000)::int8 FROM inbox"
        " WHERE state = 'pending' AND source = 'amocrm' AND next_attempt_at <= now()"
        " AND next_attempt_at > '-infinity' ORDER BY next_attempt_at, id LIMIT 1), 0)");

/* The wait that brings the lag to the target: it rises by at most PACE_STEP_MS a sample, and falls by as much
 * for every PACE_SAMPLE_MS since the last sample (after a quiet spell, the first batch does not wait for nothing). */
static long pace_next(long ms, long long lag, int target, long long since_ms)
{
    long want = lag > target ? (long)((lag - target) * PACE_GAIN / 1000) : 0;
    if (want > PACE_MAX_MS) want = PACE_MAX_MS;
    if (want > ms + PACE_STEP_MS) return ms + PACE_STEP_MS;
    long long down = PACE_STEP_MS * (since_ms / PACE_SAMPLE_MS);
    if (want < ms - down) return ms - (long)down;
    return want;
}

/* The batcher's pace hook: how long the next batch waits; no body waits more than PACE_MAX_MS in the queue for
 * it, however many arrive. */
static long pace(const char *conninfo, long oldest_ms)
{
    int target = atomic_load(&pace_lag_ms);
    if (target <= 0) return 0;
    long long now = so_monotonic_ms(), was = atomic_load(&pace_sampled_ms);
    if (now - was >= PACE_SAMPLE_MS && atomic_compare_exchange_strong(&pace_sampled_ms, &was, now)) {
        struct db *db = db_thread(conninfo);
        PGresult *r;
        if (db != NULL && db_exec(db, &stmt_inbox_webhook_lag, NULL, &r) == DB_OK) {
            long long lag = db_i64(r, 0, 0);
            PQclear(r);
            atomic_store(&pace_ms, pace_next(atomic_load(&pace_ms), lag, target, now - was));
        }
    }
    long ms = atomic_load(&pace_ms);
    return ms < PACE_MAX_MS - oldest_ms ? ms : PACE_MAX_MS - oldest_ms;
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

static struct batcher writers = BATCHER_INIT(RECEIPT_MAX_BODIES, RECEIPT_MAX_BYTES, store_batch, pace);

bool receipt_start(const char *conninfo, int count, int pace_lag)
{
    atomic_store(&pace_lag_ms, pace_lag);
    atomic_store(&pace_ms, 0);
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
    out->pace_ms = atomic_load(&pace_ms);
}

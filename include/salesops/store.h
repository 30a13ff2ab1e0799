/* The store: the only place with SQL. One function per statement, typed inputs and outputs.
 * Every function takes the account id and every statement filters by it. Results with strings are placed in
 * the caller's arena. This header does not expose libpq. */
#ifndef SALESOPS_STORE_H
#define SALESOPS_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "salesops/arena.h"
#include "salesops/types.h"

/* The four outcomes of a statement, plus the distinctions callers act on. */
enum db_rc {
    DB_OK = 0,      /* done; rows, if any, returned */
    DB_NONE,        /* no row */
    DB_RETRY,       /* serialization failure or deadlock: the transaction runner retries */
    DB_ERROR,       /* hard error (logged) */
    DB_UNAVAILABLE, /* the connection is gone: the request answers 503 */
    DB_UNIQUE,      /* unique violation */
    DB_ABORT,       /* a transaction callback gave up on purpose (its own error explains why) */
};

struct db;

/* An item queued for batch threads (src/store/batcher.c), the first member of the caller's request: the caller
 * sets done and ctx, and keeps the item and what it points to alive until done(ctx) is called, from a batch
 * thread, with rc (and the request's results) set. */
struct so_batch_item {
    void (*done)(void *ctx);
    void *ctx;
    enum db_rc rc;
    size_t bytes;               /* the batchers' own: its size in a batch */
    int64_t queued_ms;          /* the batchers' own: when it was queued (monotonic) */
    struct so_batch_item *next; /* the batchers' own */
};

/* Opens a connection (short connect timeout, so a dead server never hangs a request). NULL on failure. */
struct db *db_open(const char *conninfo, char *err, size_t errlen);
void db_close(struct db *db);
/* The statement_timeout of connections opened from now on, in ms (0: none; default 60 s). */
void db_set_statement_timeout(int ms);
/* The calling thread's own connection, opened on first use and reopened after the server went away.
 * NULL when the database cannot be reached now. Closed when the thread exits. */
struct db *db_thread(const char *conninfo);
/* The calling thread's connection to the read replica (DATABASE_READ_URL), kept like db_thread's. */
struct db *db_thread_read(const char *conninfo);
/* Closes the calling thread's connections now (used by threads that are about to end). */
void db_thread_release(void);
bool db_is_alive(struct db *db);

/* The connections of this process: open now; opened, failed to open, and replaced after they broke, since
 * the start. */
struct db_pool_stats {
    int open;
    long opened, failed, replaced;
};
void db_pool_stats(struct db_pool_stats *out);

/* Queue depths and ages across all accounts, for /metrics: each count reads a partial index. */
struct ops_gauges {
    int64_t inbox_pending, inbox_waiting, inbox_failed;
    double inbox_oldest_age_s; /* the oldest body or event not yet applied (pending or waiting); 0 if none */
    double applier_lag_s;      /* the oldest pending one that is due now: how far the appliers are behind */
    int64_t outbox_pending, outbox_dead;
    double outbox_oldest_age_s;
    int64_t loss_reads_pending, loss_reads_dead, call_reads_pending, call_reads_dead;
    int64_t distribution_waiting, focus_active, reviews_pending;
};
enum db_rc store_ops_gauges(struct db *db, struct ops_gauges *out);

/* The channel the inbox's appliers LISTEN on. */
#define STORE_INBOX_CHANNEL "salesops_inbox"
/* LISTEN on a channel, then wait up to timeout_ms for a notification on it (DB_OK when one came, DB_NONE on
 * timeout). notify sends one (outside a transaction it is delivered at once). */
enum db_rc db_listen(struct db *db, const char *channel);
enum db_rc db_wait_notify(struct db *db, int timeout_ms);
enum db_rc db_notify(struct db *db, const char *channel);

typedef enum db_rc (*db_tx_fn)(struct db *db, void *ctx);
/* BEGIN; fn; COMMIT, retrying fn from the start on serialization failures and deadlocks (bounded). */
enum db_rc db_tx(struct db *db, db_tx_fn fn, void *ctx);

/* Migrations (embedded in the binary), serialised across processes by an advisory lock. */
enum db_rc store_migrate(struct db *db, int *applied, char *err, size_t errlen);
/* DB_OK when every embedded migration is applied with the same checksum (later ones, of a newer binary, may
 * be there too); DB_NONE otherwise. */
enum db_rc store_migrations_current(struct db *db);
int store_migration_count(void);

/* Accounts and keys */
enum db_rc store_account_insert(struct db *db, const char *name, const char *timezone,
                                const uint8_t *webhook_token_hash, int64_t *id);
enum db_rc store_account_get(struct db *db, struct arena *a, int64_t account_id, struct so_account *out);
enum db_rc store_account_update(struct db *db, int64_t account_id, const char *name, const char *timezone);
enum db_rc store_timezone_exists(struct db *db, const char *timezone);
enum db_rc store_api_key_insert(struct db *db, int64_t account_id, const uint8_t *key_hash, enum so_role role,
                                int64_t manager_id, const char *name, int64_t now, struct so_api_key *out);
enum db_rc store_api_key_lookup(struct db *db, const uint8_t *key_hash, struct so_auth *out);
enum db_rc store_api_key_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                              struct so_api_key **items, int *count);
enum db_rc store_api_key_delete(struct db *db, int64_t account_id, int64_t id, int64_t now);

/* Objects named by an external id */
enum so_kind {
    KIND_MANAGER,
    KIND_DEAL,
    KIND_TASK,
    KIND_CALL,
    KIND_PIPELINE,
    KIND_LOSS_REASON
};
enum db_rc store_id_by_external(struct db *db, int64_t account_id, enum so_kind kind, const char *external_id,
                                int64_t *id);

/* Managers */
enum db_rc store_manager_insert(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                int64_t *id);
enum db_rc store_manager_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                             struct so_manager *out);
enum db_rc store_manager_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                              struct so_manager **items, int *count);
enum db_rc store_manager_update(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now);

/* Pipelines, stages, loss reasons */
/* crm: "amocrm" for a pipeline that came from amoCRM (its "142" and "143" name the won and lost stage), or
 * NULL. */
enum db_rc store_pipeline_insert(struct db *db, int64_t account_id, const char *name, const char *external_id,
                                 bool needs_setup, const char *crm, int64_t now, int64_t *id);
/* The pipeline's crm (see store_pipeline_insert) into crm (empty when none). */
enum db_rc store_pipeline_crm(struct db *db, int64_t account_id, int64_t id, char *crm, size_t len);
enum db_rc store_stage_insert(struct db *db, int64_t account_id, const struct so_stage *stage, int64_t *id);
enum db_rc store_pipeline_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                              struct so_pipeline *out);
enum db_rc store_pipeline_list(struct db *db, struct arena *a, int64_t account_id, const struct so_page *page,
                               struct so_pipeline **items, int *count);
enum db_rc store_pipeline_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                 const char *external_id);
enum db_rc store_stage_update(struct db *db, int64_t account_id, int64_t pipeline_id, int64_t stage_id,
                              const char *name, const char *external_id);
enum db_rc store_stage_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                           struct so_stage *out);
/* The stage of a pipeline with this external id. */
enum db_rc store_stage_by_external(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id,
                                   const char *external_id, struct so_stage *out);
/* Adds an open stage after the pipeline's last open stage (won and lost move one place on). */
enum db_rc store_stage_append_open(struct db *db, int64_t account_id, int64_t pipeline_id, const char *name,
                                   const char *external_id, bool needs_setup, int64_t *id);
/* The first stage of a pipeline of the given kind (by position). */
enum db_rc store_stage_first(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id,
                             enum stage_kind kind, struct so_stage *out);
enum db_rc store_loss_reason_insert(struct db *db, int64_t account_id, const char *name,
                                    const char *external_id, bool needs_setup, int64_t now, int64_t *id);
enum db_rc store_loss_reason_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                 struct so_loss_reason *out);
enum db_rc store_loss_reason_list(struct db *db, struct arena *a, int64_t account_id,
                                  const struct so_page *page, struct so_loss_reason **items, int *count);
enum db_rc store_loss_reason_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                    const char *external_id);

/* Deals, their history and notes */
struct so_deal_filter {
    int64_t manager_id;
    int64_t pipeline_id;
    int64_t stage_id;
    int status; /* -1: any, else enum deal_status */
    int64_t updated_since;
};
/* New deals, each with its creation change and creation history row (created_at is their time; the creator is
 * the first responsible), in one statement; their ids in ids (may be NULL), in the order given. */
enum db_rc store_deals_insert(struct db *db, int64_t account_id, const struct so_deal *deals, int count,
                              int64_t *ids);
/* for_update locks the row until the transaction ends. Deleted deals are not found. */
enum db_rc store_deal_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                          struct so_deal *out);
enum db_rc store_deal_list(struct db *db, struct arena *a, int64_t account_id, const struct so_deal_filter *f,
                           const struct so_page *page, struct so_deal **items, int *count);
/* The same read (not for update) done by reader threads (src/store/deals.c, a batcher): the reads queued
 * together are one statement. The caller sets link.done and link.ctx, account_id, id and arena (the deal's
 * strings; untouched by the caller until done). Results: link.rc (DB_NONE: no such deal) and out. */
struct so_deal_read {
    struct so_batch_item link; /* first */
    int64_t account_id, id;
    struct arena *arena;
    struct so_deal out;
};
bool deal_reads_start(const char *conninfo, int count);
void deal_reads_stop(void);
void deal_read_submit(struct so_deal_read *r);
/* Statements and reads so far, for /metrics. */
void store_deal_read_stats(long *batches, long *reads);
/* A deal, deleted or not. */
enum db_rc store_deal_get_any(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                              struct so_deal *out);
/* For each external id, whether no deal of the account (deleted ones included) has it, in one statement. */
enum db_rc store_deals_absent(struct db *db, int64_t account_id, const char *const *exts, int count, bool *absent);
/* A deal by external id (deleted deals too); DB_NONE when the account has no such deal. */
enum db_rc store_deal_get_any_by_external(struct db *db, struct arena *a, int64_t account_id,
                                          const char *external_id, struct so_deal *out);
/* Locks a deal (deleted or not) until the transaction ends; DB_NONE if there is none. */
enum db_rc store_deal_lock(struct db *db, int64_t account_id, int64_t id);
/* One entry of a deal's change log; 0 / NULL / false for what the change leaves as it is. */
struct so_deal_change_row {
    int64_t deal_id;
    int64_t at;
    bool creation;
    int64_t stage_id;
    int64_t loss_reason_id;
    bool set_manager;
    int64_t manager_id;
    bool set_price;
    int64_t price;
    const char *name;
};
enum db_rc store_deal_change_insert(struct db *db, int64_t account_id, const struct so_deal_change_row *row);
/* Derives the deal's current fields and its history rows at or after from_at from its change log. */
enum db_rc store_deal_rebuild(struct db *db, int64_t account_id, int64_t deal_id, int64_t from_at);
/* Sets the loss reason of the deal's latest move into a stage (when it was a loss); *at gets that move's
 * time. DB_NONE when the deal's latest move was not into lost. */
enum db_rc store_deal_loss_reason_set(struct db *db, int64_t account_id, int64_t deal_id,
                                      int64_t loss_reason_id, int64_t *at);
/* Marks a deal deleted (deleted_at = at) or restored (deleted_at = 0), if no later delete or restore was set.
 */
enum db_rc store_deal_set_deleted(struct db *db, int64_t account_id, int64_t deal_id, bool deleted,
                                  int64_t at);
enum db_rc store_history_list(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                              const struct so_page *page, struct so_history_row **items, int *count);
enum db_rc store_note_insert(struct db *db, int64_t account_id, const struct so_note *note, int64_t *id);
/* Inserts a note, or updates the text of the one with the same external id. */
enum db_rc store_note_upsert(struct db *db, int64_t account_id, const struct so_note *note, int64_t *id);
enum db_rc store_note_list(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                           const struct so_page *page, struct so_note **items, int *count);

/* Tasks and their history */
struct so_task_filter {
    int64_t manager_id;
    int64_t deal_id;
    const char *type;
    const char *state; /* open | overdue | done | deleted | NULL */
    int64_t now;
};
enum db_rc store_task_insert(struct db *db, int64_t account_id, const struct so_task *task, int64_t *id);
enum db_rc store_task_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                          struct so_task *out);
/* A task by external id, also of a deleted deal (events keep applying to it), locked; DB_NONE when the account
 * has no such task. */
enum db_rc store_task_get_any_by_external(struct db *db, struct arena *a, int64_t account_id,
                                          const char *external_id, struct so_task *out);
enum db_rc store_task_list(struct db *db, struct arena *a, int64_t account_id, const struct so_task_filter *f,
                           const struct so_page *page, struct so_task **items, int *count);
enum db_rc store_task_update(struct db *db, int64_t account_id, const struct so_task *task, int64_t now);
/* One entry of a task's change log: the responsible (if set_manager) and/or the due time (if due_at != 0). */
enum db_rc store_task_history_insert(struct db *db, int64_t account_id, int64_t task_id, int64_t at,
                                     bool creation, bool set_manager, int64_t manager_id, int64_t due_at);
/* Derives the task's current responsible and due time from its change log. */
enum db_rc store_task_rebuild(struct db *db, int64_t account_id, int64_t task_id);
/* Event-time updates, each taking effect only when no later event set the same field. */
enum db_rc store_task_set_text(struct db *db, int64_t account_id, int64_t task_id, const char *text,
                               int64_t at);
enum db_rc store_task_set_completed(struct db *db, int64_t account_id, int64_t task_id, const char *result,
                                    int64_t at);
enum db_rc store_task_set_deleted(struct db *db, int64_t account_id, int64_t task_id, int64_t at);

/* Calls */
struct so_call_filter {
    int64_t manager_id;
    int64_t deal_id;
};
enum db_rc store_call_insert(struct db *db, int64_t account_id, const struct so_call *call, int64_t *id);
/* Inserts a call, or updates the one with the same external id. */
enum db_rc store_call_upsert(struct db *db, int64_t account_id, const struct so_call *call, int64_t *id);
enum db_rc store_call_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                          struct so_call *out);
enum db_rc store_call_list(struct db *db, struct arena *a, int64_t account_id, const struct so_call_filter *f,
                           const struct so_page *page, struct so_call **items, int *count);

/* The account's ingest lock, held until the transaction ends. Batches of events take it shared, and with it the
 * keys of the deals and tasks they name (store_lock_ingest_keys): an event that waits for a deal and the event
 * that creates it are then never applied in two transactions at once, so no wake-up is missed. Work on the
 * whole account takes it exclusive: bulk import, a retry, distributing the deals that wait. */
enum db_rc store_lock_account_ingest(struct db *db, int64_t account_id);
enum db_rc store_lock_account_ingest_shared(struct db *db, int64_t account_id);
/* Locks the given advisory keys (bigint form) in the given order, until the transaction ends. Two transactions
 * that lock their keys sorted, in one call, cannot deadlock on them. */
enum db_rc store_lock_ingest_keys(struct db *db, struct arena *a, const int64_t *keys, int count);
/* The account's catalog lock, until the transaction ends: taken by events before they create or change a
 * manager, pipeline, stage or loss reason, so that two batches never create the same placeholder. */
enum db_rc store_lock_catalog(struct db *db, int64_t account_id);

/* Savepoints inside a transaction: one event's failure does not undo the others of its batch. */
enum db_rc store_savepoint(struct db *db);
/* The transaction commits without waiting for its WAL to be flushed (synchronous_commit off, for it alone): for
 * work that is derived from rows already stored durably and that a crash sends back to be done again. */
enum db_rc store_tx_commit_async(struct db *db);
enum db_rc store_savepoint_rollback(struct db *db);
enum db_rc store_savepoint_release(struct db *db);

/* The inbox */
struct so_inbox_row {
    int64_t id;
    int64_t account_id;
    const char *source; /* events | import | amocrm | amocrm_event */
    int64_t parent_id;
    const char *event_id;
    const char *event_type;
    int64_t event_at;
    const char *body;
    const char *state; /* pending | waiting | failed | ignored | applied */
    const char *waits_kind;
    const char *waits_for;
    int attempts;
    const char *error;
    int64_t received_at;
    int64_t applied_at;
};
/* Stores count event rows (source, parent_id, event_id, event_type, event_at, body) in one statement, in that
 * order, as applied; ids[i] is row i's id, or 0 when an event with its event_id is already stored (a duplicate,
 * also of a row earlier in the same call). */
enum db_rc store_inbox_insert_many(struct db *db, int64_t account_id, const struct so_inbox_row *rows, int count,
                                   int64_t *ids);
/* Sets the state (and what it waits for, or the error); applied rows get applied_at. */
enum db_rc store_inbox_set_state(struct db *db, int64_t account_id, int64_t id, const char *state,
                                 const char *waits_kind, const char *waits_for, const char *error);
/* The rows waiting for a deal or task with this external id, oldest event first, locked. */
enum db_rc store_inbox_waiting_for(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                                   const char *external_id, struct so_inbox_row **rows, int *count);
enum db_rc store_inbox_list(struct db *db, struct arena *a, int64_t account_id, const char *state,
                            const struct so_page *page, struct so_inbox_row **rows, int *count);
enum db_rc store_inbox_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                           struct so_inbox_row *out);
/* The same, locked until the transaction ends. */
enum db_rc store_inbox_get_locked(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                  struct so_inbox_row *out);
/* A webhook body received, in one statement: the token's account; then, when store is true and the body does
 * not name another amoCRM subdomain than the account's integration (sent_subdomain: the body's
 * account[subdomain], NULL if none), the body is stored unless the same body came in the last 10 minutes; a unique key makes two identical bodies
 * arriving together be stored once. The appliers poll for new bodies. */
struct so_webhook_receipt {
    int64_t account_id; /* 0: no account has this token */
    char subdomain[128]; /* the integration's subdomain, "" when none */
    int64_t inbox_id;    /* 0: not stored (another subdomain, or a duplicate) */
};
/* One body handed to the receipt writers (src/store/receipt.c), which store the bodies queued together in one
 * statement. store false: only the token is looked up. Results: link.rc and out. */
struct so_receipt {
    struct so_batch_item link; /* first */
    const uint8_t *token_hash, *body_hash; /* SHA-256 */
    bool store;
    const char *sent, *body; /* the body's account[subdomain] (NULL: none); the body, UTF-8 text */
    size_t body_len;
    struct so_webhook_receipt out;
    struct so_receipt *same; /* the writers' own */
};
/* Starts `count` writers with their own connections (the first call; later ones, for the same database, only
 * count users; another database is refused: the writers serve one);
 * receipt_stop, once for each start, lets the last user's stop store what is queued and end them. Without
 * writers, receipt_submit answers DB_UNAVAILABLE at once. */
/* pace_lag_ms: flow control (receipt.c); 0 turns it off. */
bool receipt_start(const char *conninfo, int count, int pace_lag_ms);
void receipt_stop(void);
void receipt_submit(struct so_receipt *r);
enum db_rc store_webhook_seen_sweep(struct db *db);
/* Webhook receipt stores the bodies that arrive together in one statement (src/store/receipt.c): how many
 * statements and bodies so far, for /metrics. */
struct receipt_stats {
    long batches, bodies;
    long pace_ms; /* how long each batch waits for the appliers (flow control), as last set */
};
void store_receipt_stats(struct receipt_stats *out);
/* The applier: claims the oldest due webhook body of any account (locked until the transaction ends). */
enum db_rc store_inbox_claim_webhook(struct db *db, struct arena *a, struct so_inbox_row *out);
/* Up to limit more due bodies of one account, oldest first, besides claimed_id, the one this transaction claimed
 * already (its own lock does not skip it; the applier applies several of one account in one transaction). */
enum db_rc store_inbox_claim_webhooks_of(struct db *db, struct arena *a, int64_t account_id, int64_t claimed_id,
                                         int limit, struct so_inbox_row **rows, int *count);
/* Whether any event of the account waits for a deal or task. */
enum db_rc store_inbox_any_waiting(struct db *db, int64_t account_id, bool *any);
/* Marks rows applied (applied_at now), in one statement. */
enum db_rc store_inbox_set_applied(struct db *db, struct arena *a, int64_t account_id, const int64_t *ids,
                                   int count);
/* A transient failure: tried again later with backoff, parked as failed after max_attempts. */
enum db_rc store_inbox_backoff(struct db *db, int64_t account_id, int64_t id, const char *error,
                               int max_attempts);
/* Events that waited 24 hours: failed, or ignored when they waited for a task (tasks on contacts never come).
 */
enum db_rc store_inbox_expire_waiting(struct db *db, int *expired);
/* Puts a failed or waiting row back to pending, due now (DB_NONE for a row in another state). */
enum db_rc store_inbox_retry(struct db *db, int64_t account_id, int64_t id);

/* amoCRM integrations (the access token is read only by the connector, never returned) */
struct so_integration {
    int64_t account_id;
    const char *subdomain;
    const char *base_url;
    const char *access_token; /* only from store_integration_claim_sync / store_integration_conn */
    int64_t *pool_user_ids;
    int pool_count;
    int64_t connected_at;
    int64_t last_sync_at;
    const char *sync_error;
};
/* Connects (or reconnects) the account: the next sync is due at once. */
enum db_rc store_integration_put(struct db *db, int64_t account_id, const char *subdomain,
                                 const char *base_url, const char *access_token, const int64_t *pool_user_ids,
                                 int pool_count);
enum db_rc store_integration_get(struct db *db, struct arena *a, int64_t account_id,
                                 struct so_integration *out);
/* With the token, for the connector. */
enum db_rc store_integration_conn(struct db *db, struct arena *a, int64_t account_id,
                                  struct so_integration *out);
/* Claims the integration whose sync is most overdue (its next sync moves an hour on); DB_NONE when none. */
enum db_rc store_integration_claim_sync(struct db *db, struct arena *a, struct so_integration *out);
enum db_rc store_integration_synced(struct db *db, int64_t account_id, const char *error);
/* Reserves the account's next request slot (7 a second); *wait_ms is how long to wait for it. */
enum db_rc store_integration_slot(struct db *db, int64_t account_id, int64_t *wait_ms);
/* Sync: upserts by amoCRM id; a user keeps the role and settings salesops gave it. */
enum db_rc store_sync_pipeline(struct db *db, int64_t account_id, const char *external_id, const char *name,
                               int64_t *id);
enum db_rc store_sync_stage(struct db *db, int64_t account_id, int64_t pipeline_id, const char *external_id,
                            const char *name, enum stage_kind kind, int position);
enum db_rc store_sync_loss_reason(struct db *db, int64_t account_id, const char *external_id,
                                  const char *name);
enum db_rc store_sync_user(struct db *db, int64_t account_id, const char *external_id, const char *name,
                           const char *email, bool active, bool admin, int64_t now);
/* Marks exactly the managers with these external ids as amoCRM pool users. */
enum db_rc store_sync_pool_users(struct db *db, int64_t account_id, const int64_t *ids, int count);

/* Losses whose reason is read through the amoCRM API. */
struct so_loss_read {
    int64_t account_id;
    int64_t deal_id;
    const char *lead_id;
    int64_t lost_at;
    int attempts;
};
enum db_rc store_loss_read_insert(struct db *db, int64_t account_id, int64_t deal_id, const char *lead_id,
                                  int64_t lost_at);
enum db_rc store_loss_read_claim(struct db *db, struct arena *a, struct so_loss_read *out);
/* state: done | pending (again after backoff_s) | dead */
enum db_rc store_loss_read_finish(struct db *db, const struct so_loss_read *r, const char *state,
                                  int backoff_s, const char *error);

/* Call notes whose duration and status are read through the amoCRM API. */
struct so_call_read {
    int64_t account_id;
    int64_t call_id;
    const char *lead_id;
    const char *note_id;
    int attempts;
};
enum db_rc store_call_read_insert(struct db *db, int64_t account_id, int64_t call_id, const char *lead_id,
                                  const char *note_id);
enum db_rc store_call_read_claim(struct db *db, struct arena *a, struct so_call_read *out);
enum db_rc store_call_read_finish(struct db *db, const struct so_call_read *r, const char *state,
                                  int backoff_s, const char *error);
enum db_rc store_call_set_details(struct db *db, int64_t account_id, int64_t call_id, int duration_s,
                                  bool answered);

/* The outbox of salesops' own writes to amoCRM. */
struct so_outbox_row {
    int64_t account_id;
    int64_t id;
    const char *kind; /* lead_responsible | lead_status | task_add | task_complete | note_add */
    int64_t object_id;
    const char *payload; /* JSON */
    int attempts;
};
/* state pending, or skipped (with why) for an object without an amoCRM id. */
enum db_rc store_outbox_insert(struct db *db, int64_t account_id, const char *kind, int64_t object_id,
                               const char *payload, const char *skipped_why);
/* Claims up to max due rows (they are leased for a minute). */
enum db_rc store_outbox_claim(struct db *db, struct arena *a, int max, struct so_outbox_row **rows,
                              int *count);
/* state: delivered | pending (again after backoff_s) | dead */
enum db_rc store_outbox_finish(struct db *db, int64_t account_id, int64_t id, const char *state,
                               int backoff_s, const char *error);
enum db_rc store_outbox_counts(struct db *db, int64_t account_id, int64_t *pending, int64_t *dead);
/* The amoCRM id of a task or note salesops created there. */
enum db_rc store_task_set_external(struct db *db, int64_t account_id, int64_t task_id,
                                   const char *external_id);
enum db_rc store_note_set_external(struct db *db, int64_t account_id, int64_t note_id,
                                   const char *external_id);
/* A task (of this type) or note of the deal with this text, sent to amoCRM in the last 10 minutes and not yet
 * given its amoCRM id: the webhook that reports it takes it over instead of creating another. */
enum db_rc store_task_match_inflight(struct db *db, int64_t account_id, int64_t deal_id, const char *type,
                                     const char *text, int64_t *task_id);
enum db_rc store_note_match_inflight(struct db *db, int64_t account_id, int64_t deal_id, const char *text,
                                     int64_t *note_id);

/* Bulk import: BEGIN, the account's ingest lock, a temp table and COPY; rows are sent as COPY text lines;
 * finish applies them all with salesops_import_apply() and commits. */
enum db_rc store_import_start(struct db *db, int64_t account_id);
enum db_rc store_import_put(struct db *db, const char *data, size_t len);
enum db_rc store_import_finish(struct db *db, int64_t account_id, int64_t *accepted, int64_t *duplicates,
                               char *err, size_t errlen);
/* Rows that waited for a deal or task which exists now (an import, a REST command or the amoCRM connector
 * created it, or gave it that external id). */
enum db_rc store_inbox_woken(struct db *db, struct arena *a, int64_t account_id, struct so_inbox_row **rows,
                             int *count);
/* Up to limit accounts that have such rows. */
enum db_rc store_inbox_accounts_woken(struct db *db, struct arena *a, int limit, int64_t **accounts, int *count);

/* Lead distribution. Settings come with the account's defaults when never set, and with the local day and
 * minute of `now` in the account's zone. */
enum db_rc store_dist_settings_get(struct db *db, struct arena *a, int64_t account_id, int64_t now,
                                   struct so_dist_settings *out);
enum db_rc store_dist_settings_put(struct db *db, int64_t account_id, const struct so_dist_settings *s,
                                   int64_t now);
/* Serialises the choices of one kind (lead | call) in an account until the transaction ends. */
enum db_rc store_dist_lock(struct db *db, int64_t account_id, const char *kind);
/* Every manager of the account by id, with his focus state and the kind's current weight. */
enum db_rc store_dist_candidates(struct db *db, struct arena *a, int64_t account_id, const char *kind,
                                 struct dist_candidate **out, int *count);
/* Stores the current weights of these candidates. */
enum db_rc store_dist_cursor_save(struct db *db, int64_t account_id, const char *kind,
                                  const struct dist_candidate *c, const bool *changed, int count);
enum db_rc store_assignment_insert(struct db *db, int64_t account_id, const struct so_assignment *as,
                                   int64_t *id);
struct so_assignment_filter {
    const char *kind;
    int64_t manager_id;
    int64_t deal_id;
};
enum db_rc store_assignment_list(struct db *db, struct arena *a, int64_t account_id,
                                 const struct so_assignment_filter *f, const struct so_page *page,
                                 struct so_assignment **items, int *count);
/* Deals waiting for an eligible manager (reason new_deal | pool_user), oldest first. */
enum db_rc store_dist_wait(struct db *db, int64_t account_id, int64_t deal_id, const char *reason,
                           int64_t queued_at);
enum db_rc store_dist_waiting_accounts(struct db *db, struct arena *a, int max, int64_t **ids, int *count);
struct so_dist_waiting {
    int64_t deal_id;
    const char *reason;
};
enum db_rc store_dist_waiting_list(struct db *db, struct arena *a, int64_t account_id, int max,
                                   struct so_dist_waiting **items, int *count);
enum db_rc store_dist_waiting_done(struct db *db, int64_t account_id, int64_t deal_id);
enum db_rc store_dist_waiting_count(struct db *db, int64_t account_id, int64_t *count);
/* Gives a deal created in this transaction its first manager: as responsible from its creation on (change
 * log, history) and as its creator. */
enum db_rc store_deal_assign_new(struct db *db, int64_t account_id, int64_t deal_id, int64_t manager_id);
/* The manager who counts as the deal's creator (the one distribution gave it to). */
enum db_rc store_deal_set_creator(struct db *db, int64_t account_id, int64_t deal_id, int64_t manager_id);

/* Focus mode */
enum db_rc store_focus_filter_put(struct db *db, int64_t account_id, const struct so_focus_filter *f,
                                  int64_t now);
enum db_rc store_focus_filter_get(struct db *db, struct arena *a, int64_t account_id, int64_t manager_id,
                                  struct so_focus_filter *out);
/* Serialises focus starts in an account (the cap) until the transaction ends. */
enum db_rc store_focus_lock(struct db *db, int64_t account_id);
/* The manager's active session (DB_NONE when none) and the number of managers in focus in the account. */
enum db_rc store_focus_state(struct db *db, int64_t account_id, int64_t manager_id, int64_t *active_session,
                             int *in_focus);
/* Starts a session with the filter and snapshots its queue; *total is the queue's length. */
enum db_rc store_focus_start(struct db *db, int64_t account_id, const struct so_focus_filter *f, int64_t now,
                             int64_t *session_id, int *total);
/* A session with its items in queue order. */
enum db_rc store_focus_session_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                                   bool for_update, struct so_focus_session *out);
struct so_focus_session_filter {
    int64_t manager_id;
    const char *from_date, *to_date; /* YYYY-MM-DD in the account's zone, both inclusive; NULL: open */
};
/* Newest first: page->after_id is the last id seen (0: from the newest). */
enum db_rc store_focus_session_list(struct db *db, struct arena *a, int64_t account_id,
                                    const struct so_focus_session_filter *f, const struct so_page *page,
                                    struct so_focus_session **items, int *count);
/* Marks an item done at `at`; DB_NONE when the deal is not in the session's queue. */
enum db_rc store_focus_mark_done(struct db *db, int64_t account_id, int64_t session_id, int64_t deal_id,
                                 int64_t at);
/* The manager acted on the deal at `at` (actor 0: the deal's responsible): his active sessions' items for it
 * are done. Returns the sessions. */
enum db_rc store_focus_activity(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                int64_t actor, int64_t at, int64_t **sessions, int *count);
/* The deal is no longer the session manager's (or is deleted): it leaves his active queues. */
enum db_rc store_focus_deal_left(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                                 int64_t **sessions, int *count);
/* Ends those of the sessions whose every item is done (queue_done, at `at`). */
enum db_rc store_focus_settle(struct db *db, struct arena *a, int64_t account_id, const int64_t *sessions,
                              int count, int64_t at, struct so_focus_end **ended, int *ended_count);
/* Ends an active session (DB_NONE when it has ended already). */
enum db_rc store_focus_end(struct db *db, int64_t account_id, int64_t session_id, const char *reason,
                           int64_t at);
/* Ends up to max sessions (of any account) whose time is up, at their ends_by. */
enum db_rc store_focus_timeouts(struct db *db, struct arena *a, int max, struct so_focus_end **ended,
                                int *count);

/* Rejection control */
/* The account's rule (the defaults when never set). */
enum db_rc store_rejection_rule_get(struct db *db, struct arena *a, int64_t account_id,
                                    struct so_rejection_rule *out);
/* Stores the rule; a switch from off to on sets enabled_since to now. */
enum db_rc store_rejection_rule_put(struct db *db, int64_t account_id, const struct so_rejection_rule *r,
                                    int64_t now);
/* Judges the deal's move into lost at lost_at (once; see salesops_rejection_judge). *ordinal: the move's
 * ordinal within its second when a review is due and does not exist yet, else 0. */
enum db_rc store_rejection_judge(struct db *db, int64_t account_id, int64_t deal_id, int64_t lost_at,
                                 int *ordinal);
/* Judges every move into lost of the deals an import touched (inside the import's transaction). */
enum db_rc store_rejection_judge_import(struct db *db, int64_t account_id);
enum db_rc store_rejection_loss_get(struct db *db, int64_t account_id, int64_t deal_id, int64_t lost_at,
                                    int ordinal, struct so_loss *out);
/* Claims up to max judged losses due a review that lack it (of any account), locked until the transaction
 * ends; account_ids[i] is the account of losses[i]. */
enum db_rc store_rejection_sweep_claim(struct db *db, struct arena *a, int max, int64_t **account_ids,
                                       struct so_loss **losses, int *count);
/* DB_NONE when the loss has its review already. */
enum db_rc store_review_insert(struct db *db, int64_t account_id, const struct so_loss *loss, int64_t now,
                               int64_t *id);
enum db_rc store_review_set_task(struct db *db, int64_t account_id, int64_t review_id, int64_t task_id);
/* Reviews of deleted deals are not found. */
enum db_rc store_review_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                            struct so_review *out);
struct so_review_filter {
    const char *state;
    int64_t manager_id; /* lost_by_manager_id */
    const char *from_date, *to_date; /* lost_at in the period, in the account's zone */
};
enum db_rc store_review_list(struct db *db, struct arena *a, int64_t account_id, const struct so_review_filter *f,
                             const struct so_page *page, struct so_review **items, int *count);
enum db_rc store_review_decide(struct db *db, int64_t account_id, const struct so_review *r);
struct so_rejection_stats {
    int64_t reviews, pending, decided, returned, recovered, recovered_revenue;
    const char *return_share;      /* numeric text, NULL when nothing is decided */
    const char *median_decision_s; /* NULL when nothing is decided */
};
struct so_rejection_manager_stats {
    int64_t manager_id;
    int64_t reviewed, returned, recovered;
};
enum db_rc store_rejection_stats(struct db *db, struct arena *a, int64_t account_id, const char *from_date,
                                 const char *to_date, struct so_rejection_stats *out,
                                 struct so_rejection_manager_stats **by_manager, int *manager_count);

/* Analytics (see migrations/0009_analytics.sql and 0013_analytics_rollup.sql). */
/* Folds the rollup deltas appended since the last fold, for up to `accounts` accounts; *rows = deltas folded. */
enum db_rc store_kpi_compact(struct db *db, int accounts, int64_t *rows);
/* Analyzes the tables that changed by more rows than they had when last analyzed (migrations/0016), so that
 * cached plans are remade from statistics that fit; *tables: how many. */
enum db_rc store_analyze_grown(struct db *db, int64_t *tables);
/* The primary's current WAL position (text), and whether a replica has replayed up to it (a primary always
 * has). */
enum db_rc store_wal_position(struct db *db, char *lsn, size_t len);
enum db_rc store_replayed(struct db *db, const char *lsn, bool *done);
/* The instants of a period of dates in the account's zone: [from 00:00, to + 1 00:00). */
enum db_rc store_period_bounds(struct db *db, int64_t account_id, const char *from_date, const char *to_date,
                               int64_t *start, int64_t *end);
struct so_kpi_row {
    int period; /* store_kpis_multi: the period's index (0-based) */
    int64_t manager_id;
    const char *name;
    int64_t talk_time_s, outgoing_calls, deals_created, won, won_revenue, lost, deals_without_tasks,
        deals_with_overdue_tasks, tasks_due, tasks_on_time, overdue_total_s, late_tasks;
};
/* One row per manager in reports, by id. */
enum db_rc store_kpis(struct db *db, struct arena *a, int64_t account_id, int64_t start, int64_t end,
                      int64_t as_of, struct so_kpi_row **rows, int *count);
/* The same for n periods at once ([starts[i], ends[i]) as of as_ofs[i]), in one pass over the rollup: rows by
 * period, then manager id. */
enum db_rc store_kpis_multi(struct db *db, struct arena *a, int64_t account_id, int n, const int64_t *starts,
                            const int64_t *ends, const int64_t *as_ofs, struct so_kpi_row **rows, int *count);
struct so_summary_totals {
    int64_t created, won, won_revenue, lost;
};
enum db_rc store_summary(struct db *db, int64_t account_id, int64_t start, int64_t end,
                         struct so_summary_totals *out);
struct so_funnel_stage {
    int64_t stage_id;
    const char *name;
    int position;
    int64_t entered, advanced, lost, in_stage;
};
struct so_funnel_reason {
    int64_t stage_id;
    int64_t loss_reason_id; /* 0: unknown */
    const char *name;
    int64_t count;
};
/* The pipeline's open stages in order with their counts; the lost deals by reason (per stage, count
 * descending, then reason id, unknown last); the pipeline's totals. */
enum db_rc store_funnel(struct db *db, struct arena *a, int64_t account_id, int64_t pipeline_id, int64_t start,
                        int64_t end, int64_t as_of, struct so_funnel_stage **stages, int *stage_count,
                        struct so_funnel_reason **reasons, int *reason_count, struct so_summary_totals *totals);

/* The account's checklist targets, by figure name; put replaces the whole set. */
enum db_rc store_targets_get(struct db *db, struct arena *a, int64_t account_id, struct so_target **items,
                             int *count);
enum db_rc store_targets_put(struct db *db, int64_t account_id, const struct so_target *items, int count,
                             int64_t now);
/* Today's date in the account's zone (YYYY-MM-DD). */
enum db_rc store_local_today(struct db *db, int64_t account_id, char *buf, size_t len);

/* Idempotency keys: begin claims (key, method, path) for this request. */
enum idem_state { IDEM_NEW, IDEM_REPLAY, IDEM_CONFLICT };
enum db_rc store_idem_begin(struct db *db, struct arena *a, int64_t account_id, int64_t key_id,
                            const char *method, const char *path, const char *idem_key,
                            const uint8_t *request_hash, enum idem_state *state, int *status,
                            const char **body);
enum db_rc store_idem_finish(struct db *db, int64_t account_id, int64_t key_id, const char *method,
                             const char *path, const char *idem_key, int status, const char *body);
enum db_rc store_idem_abandon(struct db *db, int64_t account_id, int64_t key_id, const char *method,
                              const char *path, const char *idem_key);

#endif

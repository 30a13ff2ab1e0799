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

/* Opens a connection (short connect timeout, so a dead server never hangs a request). NULL on failure. */
struct db *db_open(const char *conninfo, char *err, size_t errlen);
void db_close(struct db *db);
/* The calling thread's own connection, opened on first use and reopened after the server went away.
 * NULL when the database cannot be reached now. Closed when the thread exits. */
struct db *db_thread(const char *conninfo);
/* Closes the calling thread's connection now (used by threads that are about to end). */
void db_thread_release(void);
bool db_is_alive(struct db *db);

typedef enum db_rc (*db_tx_fn)(struct db *db, void *ctx);
/* BEGIN; fn; COMMIT, retrying fn from the start on serialization failures and deadlocks (bounded). */
enum db_rc db_tx(struct db *db, db_tx_fn fn, void *ctx);

/* Migrations (embedded in the binary), serialised across processes by an advisory lock. */
enum db_rc store_migrate(struct db *db, int *applied, char *err, size_t errlen);
/* DB_OK when every embedded migration is applied with the same checksum; DB_NONE otherwise. */
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
enum so_kind { KIND_MANAGER, KIND_DEAL, KIND_TASK, KIND_CALL, KIND_PIPELINE, KIND_LOSS_REASON };
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
enum db_rc store_pipeline_insert(struct db *db, int64_t account_id, const char *name, const char *external_id,
                                 bool needs_setup, int64_t now, int64_t *id);
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
enum db_rc store_deal_insert(struct db *db, int64_t account_id, const struct so_deal *deal,
                             int64_t creator_manager_id, int64_t *id);
/* for_update locks the row until the transaction ends. Deleted deals are not found. */
enum db_rc store_deal_get(struct db *db, struct arena *a, int64_t account_id, int64_t id, bool for_update,
                          struct so_deal *out);
enum db_rc store_deal_list(struct db *db, struct arena *a, int64_t account_id, const struct so_deal_filter *f,
                           const struct so_page *page, struct so_deal **items, int *count);
/* Writes the current fields (name, price, stage, status, manager, loss reason, closed_at, updated_at). */
enum db_rc store_deal_update(struct db *db, int64_t account_id, const struct so_deal *deal);
enum db_rc store_history_insert(struct db *db, int64_t account_id, const struct so_history_row *row);
enum db_rc store_history_list(struct db *db, struct arena *a, int64_t account_id, int64_t deal_id,
                              const struct so_page *page, struct so_history_row **items, int *count);
enum db_rc store_note_insert(struct db *db, int64_t account_id, const struct so_note *note, int64_t *id);
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
enum db_rc store_task_list(struct db *db, struct arena *a, int64_t account_id, const struct so_task_filter *f,
                           const struct so_page *page, struct so_task **items, int *count);
enum db_rc store_task_update(struct db *db, int64_t account_id, const struct so_task *task, int64_t now);
enum db_rc store_task_history_insert(struct db *db, int64_t account_id, int64_t task_id, int64_t at,
                                     int64_t manager_id, int64_t due_at);

/* Calls */
struct so_call_filter {
    int64_t manager_id;
    int64_t deal_id;
};
enum db_rc store_call_insert(struct db *db, int64_t account_id, const struct so_call *call, int64_t *id);
enum db_rc store_call_get(struct db *db, struct arena *a, int64_t account_id, int64_t id,
                          struct so_call *out);
enum db_rc store_call_list(struct db *db, struct arena *a, int64_t account_id, const struct so_call_filter *f,
                           const struct so_page *page, struct so_call **items, int *count);

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

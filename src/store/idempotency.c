/* Idempotency keys: (account, key, method, path, Idempotency-Key) -> stored status and body for 24 hours. */
#include "db_internal.h"
#include "salesops/crypto.h"

/* Claims the key: a fresh row (or one older than 24 h, which is taken over) means "run the request". */
DB_STMT(stmt_idem_claim,
        "INSERT INTO idempotency_keys (account_id, api_key_id, method, path, key, request_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6::bytea)"
        " ON CONFLICT (account_id, api_key_id, method, path, key) DO UPDATE"
        " SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, created_at = now()"
        " WHERE idempotency_keys.created_at < now() - interval '24 hours'"
        " RETURNING 1");
DB_STMT(stmt_idem_get,
        "SELECT request_hash = $6::bytea, status, body FROM idempotency_keys"
        " WHERE account_id = $1 AND api_key_id = $2 AND method = $3 AND path = $4 AND key = $5");
DB_STMT(stmt_idem_finish, "UPDATE idempotency_keys SET status = $6, body = $7 WHERE account_id = $1"
                          " AND api_key_id = $2 AND method = $3 AND path = $4 AND key = $5");
DB_STMT(stmt_idem_abandon, "DELETE FROM idempotency_keys WHERE account_id = $1 AND api_key_id = $2"
                           " AND method = $3 AND path = $4 AND key = $5 AND status IS NULL");

static void key_params(struct db_params *p, int64_t account_id, int64_t key_id, const char *method,
                       const char *path, const char *idem_key)
{
    dbp_int(p, account_id);
    dbp_int(p, key_id);
    dbp_str(p, method);
    dbp_str(p, path);
    dbp_str(p, idem_key);
}

enum db_rc store_idem_begin(struct db *db, struct arena *a, int64_t account_id, int64_t key_id,
                            const char *method, const char *path, const char *idem_key,
                            const uint8_t *request_hash, enum idem_state *state, int *status,
                            const char **body)
{
    struct db_params p = {0};
    key_params(&p, account_id, key_id, method, path, idem_key);
    dbp_bytes_hex(&p, request_hash, SO_SHA256_LEN);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_idem_claim, &p, &r);
    PQclear(r);
    if (rc == DB_OK) {
        *state = IDEM_NEW;
        return DB_OK;
    }
    if (rc != DB_NONE) return rc;
    rc = db_exec(db, &stmt_idem_get, &p, &r);
    if (rc == DB_NONE) { /* deleted meanwhile: the other request failed; let the client retry */
        *state = IDEM_CONFLICT;
        return DB_OK;
    }
    if (rc != DB_OK) return rc;
    bool same = db_bool(r, 0, 0);
    bool done = !PQgetisnull(r, 0, 1);
    if (same && done) {
        *state = IDEM_REPLAY;
        *status = db_int(r, 0, 1);
        *body = db_str(a, r, 0, 2);
    } else {
        *state = IDEM_CONFLICT;
    }
    PQclear(r);
    return DB_OK;
}

enum db_rc store_idem_finish(struct db *db, int64_t account_id, int64_t key_id, const char *method,
                             const char *path, const char *idem_key, int status, const char *body)
{
    struct db_params p = {0};
    key_params(&p, account_id, key_id, method, path, idem_key);
    dbp_int(&p, status);
    dbp_str(&p, body);
    return db_run(db, &stmt_idem_finish, &p);
}

enum db_rc store_idem_abandon(struct db *db, int64_t account_id, int64_t key_id, const char *method,
                              const char *path, const char *idem_key)
{
    struct db_params p = {0};
    key_params(&p, account_id, key_id, method, path, idem_key);
    return db_run(db, &stmt_idem_abandon, &p);
}

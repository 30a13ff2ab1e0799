/* Accounts, API keys, managers, pipelines and loss reasons: the account's set-up. */
#include <stdio.h>
#include <string.h>
#include "salesops/crypto.h"
#include "internal.h"

static const char *const role_names[] = {"admin", "head", "manager", "readonly"};

const char *so_role_name(enum so_role role)
{
    return role < ROLE_COUNT ? role_names[role] : "unknown";
}

int so_role_parse(const char *name, enum so_role *out)
{
    for (int i = 0; i < ROLE_COUNT; i++)
        if (strcmp(name, role_names[i]) == 0) {
            *out = (enum so_role)i;
            return 0;
        }
    return -1;
}

const char *so_stage_kind_name(enum stage_kind kind)
{
    static const char *const names[] = {"open", "won", "lost"};
    return names[kind];
}

const char *so_deal_status_name(enum deal_status status)
{
    static const char *const names[] = {"open", "won", "lost"};
    return names[status];
}

const char *so_task_state(const struct so_task *task, int64_t now)
{
    if (task->deleted_at) return "deleted";
    if (task->completed_at) return "done";
    return task->due_at < now ? "overdue" : "open";
}

enum so_err domain_db_error(enum db_rc rc, struct so_error *err)
{
    switch (rc) {
    case DB_UNAVAILABLE:
        return so_fail(err, ERR_DB_UNAVAILABLE, "the database is unavailable; try again shortly");
    case DB_UNIQUE:
        return so_fail(err, ERR_CONFLICT, "external_id is already used by another object of this kind");
    case DB_NONE:
        return so_fail(err, ERR_NOT_FOUND, "not found");
    case DB_RETRY:
        err->retry = true;
        return so_fail(err, ERR_CONFLICT, "a concurrent change got in the way; try again");
    case DB_ABORT:
        return err->code != SO_OK ? err->code : so_fail(err, ERR_INTERNAL, "aborted");
    default:
        return so_fail(err, ERR_INTERNAL, "database error");
    }
}

struct account_tx {
    const char *name, *timezone;
    const uint8_t *token_hash, *key_hash;
    int64_t now;
    int64_t account_id;
};

static enum db_rc account_create_tx(struct db *db, void *p)
{
    struct account_tx *t = p;
    struct so_api_key key;
    enum db_rc rc = store_account_insert(db, t->name, t->timezone, t->token_hash, &t->account_id);
    if (rc == DB_OK)
        rc = store_api_key_insert(db, t->account_id, t->key_hash, ROLE_ADMIN, 0, "admin (account create)",
                                  t->now, &key);
    return rc;
}

enum db_rc domain_tx_outcome(enum so_err e, struct so_error *err)
{
    if (e == SO_OK) return DB_OK;
    /* a lost connection or a retryable failure must reach the transaction runner as such */
    if (err->retry) return DB_RETRY;
    if (e == ERR_DB_UNAVAILABLE) return DB_UNAVAILABLE;
    return DB_ABORT;
}

enum so_err domain_account_create(struct db *db, const char *name, const char *timezone, int64_t now,
                                  struct account_created *out, struct so_error *err)
{
    enum db_rc rc = store_timezone_exists(db, timezone);
    if (rc == DB_NONE) return so_field_error(err, "timezone", "unknown IANA time zone '%s'", timezone);
    if (rc != DB_OK) return domain_db_error(rc, err);
    if (so_new_secret("sok_", out->api_key, sizeof out->api_key) != 0 ||
        so_new_secret("whk_", out->webhook_token, sizeof out->webhook_token) != 0)
        return so_fail(err, ERR_INTERNAL, "no randomness available");
    uint8_t token_hash[SO_SHA256_LEN], key_hash[SO_SHA256_LEN];
    so_sha256(out->webhook_token, strlen(out->webhook_token), token_hash);
    so_sha256(out->api_key, strlen(out->api_key), key_hash);
    struct account_tx t = {name, timezone, token_hash, key_hash, now, 0};
    rc = db_tx(db, account_create_tx, &t);
    if (rc != DB_OK) return domain_db_error(rc, err);
    out->account_id = t.account_id;
    return SO_OK;
}

enum so_err domain_account_update(struct db *db, int64_t account_id, const char *name, const char *timezone,
                                  struct so_error *err)
{
    if (timezone != NULL) {
        enum db_rc rc = store_timezone_exists(db, timezone);
        if (rc == DB_NONE) return so_field_error(err, "timezone", "unknown IANA time zone '%s'", timezone);
        if (rc != DB_OK) return domain_db_error(rc, err);
    }
    enum db_rc rc = store_account_update(db, account_id, name, timezone);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_api_key_create(struct db *db, struct arena *a, int64_t account_id, enum so_role role,
                                  int64_t manager_id, const char *name, int64_t now, struct so_api_key *out,
                                  char plain_key[64], struct so_error *err)
{
    if (role == ROLE_MANAGER && manager_id == 0)
        return so_field_error(err, "manager_id", "is required for a manager key");
    if (role != ROLE_MANAGER && manager_id != 0)
        return so_field_error(err, "manager_id", "is only for manager keys");
    if (manager_id != 0) {
        struct so_manager m;
        enum db_rc rc = store_manager_get(db, a, account_id, manager_id, &m);
        if (rc == DB_NONE)
            return so_field_error(err, "manager_id", "no manager %lld in this account",
                                  (long long)manager_id);
        if (rc != DB_OK) return domain_db_error(rc, err);
    }
    if (so_new_secret("sok_", plain_key, 64) != 0)
        return so_fail(err, ERR_INTERNAL, "no randomness available");
    uint8_t hash[SO_SHA256_LEN];
    so_sha256(plain_key, strlen(plain_key), hash);
    enum db_rc rc = store_api_key_insert(db, account_id, hash, role, manager_id, name, now, out);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_manager_create(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                  int64_t *id, struct so_error *err)
{
    enum db_rc rc = store_manager_insert(db, account_id, m, now, id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_manager_update(struct db *db, int64_t account_id, const struct so_manager *m, int64_t now,
                                  struct so_error *err)
{
    struct so_manager row = *m;
    row.needs_setup = false;
    enum db_rc rc = store_manager_update(db, account_id, &row, now);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

struct pipeline_tx {
    int64_t account_id;
    const char *name, *external_id;
    const struct stage_input *stages;
    int stage_count;
    int64_t now;
    int64_t id;
};

/* Open stages keep their given order; a pipeline without a won or lost stage gets one, after the open ones.
 */
static enum db_rc pipeline_create_tx(struct db *db, void *p)
{
    struct pipeline_tx *t = p;
    enum db_rc rc =
        store_pipeline_insert(db, t->account_id, t->name, t->external_id, false, NULL, t->now, &t->id);
    bool has_won = false, has_lost = false;
    int position = 0;
    for (int pass = 0; pass < 3 && rc == DB_OK; pass++) {
        for (int i = 0; i < t->stage_count && rc == DB_OK; i++) {
            if ((int)t->stages[i].kind != pass) continue;
            struct so_stage s = {.pipeline_id = t->id,
                                 .external_id = t->stages[i].external_id,
                                 .name = t->stages[i].name,
                                 .kind = t->stages[i].kind,
                                 .position = ++position};
            int64_t sid;
            rc = store_stage_insert(db, t->account_id, &s, &sid);
            has_won |= s.kind == STAGE_WON;
            has_lost |= s.kind == STAGE_LOST;
        }
        if (rc == DB_OK && pass == STAGE_WON && !has_won) {
            struct so_stage s = {.pipeline_id = t->id,
                                 .name = "Успешно реализовано",
                                 .kind = STAGE_WON,
                                 .position = ++position};
            int64_t sid;
            rc = store_stage_insert(db, t->account_id, &s, &sid);
        }
        if (rc == DB_OK && pass == STAGE_LOST && !has_lost) {
            struct so_stage s = {.pipeline_id = t->id,
                                 .name = "Закрыто и не реализовано",
                                 .kind = STAGE_LOST,
                                 .position = ++position};
            int64_t sid;
            rc = store_stage_insert(db, t->account_id, &s, &sid);
        }
    }
    return rc;
}

enum so_err domain_pipeline_create(struct db *db, int64_t account_id, const char *name,
                                   const char *external_id, const struct stage_input *stages, int stage_count,
                                   int64_t now, int64_t *id, struct so_error *err)
{
    int won = 0, lost = 0;
    for (int i = 0; i < stage_count; i++) {
        won += stages[i].kind == STAGE_WON;
        lost += stages[i].kind == STAGE_LOST;
        for (int k = 0; k < i; k++)
            if (stages[i].external_id && stages[k].external_id &&
                strcmp(stages[i].external_id, stages[k].external_id) == 0)
                return so_field_error(err, "stages", "external_id '%s' is used twice", stages[i].external_id);
    }
    if (won > 1 || lost > 1)
        return so_field_error(err, "stages", "a pipeline has at most one won and one lost stage");
    if (stage_count - won - lost < 1)
        return so_field_error(err, "stages", "a pipeline needs at least one open stage");
    struct pipeline_tx t = {account_id, name, external_id, stages, stage_count, now, 0};
    enum db_rc rc = db_tx(db, pipeline_create_tx, &t);
    if (rc != DB_OK) return domain_db_error(rc, err);
    *id = t.id;
    return SO_OK;
}

struct pipeline_update_tx {
    int64_t account_id, id;
    const char *name, *external_id;
    const struct stage_rename *renames;
    int rename_count;
    struct so_error *err;
};

static enum db_rc pipeline_update_tx(struct db *db, void *p)
{
    struct pipeline_update_tx *t = p;
    enum db_rc rc = store_pipeline_update(db, t->account_id, t->id, t->name, t->external_id);
    for (int i = 0; i < t->rename_count && rc == DB_OK; i++) {
        rc = store_stage_update(db, t->account_id, t->id, t->renames[i].id, t->renames[i].name,
                                t->renames[i].external_id);
        if (rc == DB_NONE) {
            so_field_error(t->err, "stages", "stage %lld is not a stage of this pipeline",
                           (long long)t->renames[i].id);
            return DB_ABORT;
        }
    }
    return rc;
}

enum so_err domain_pipeline_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                   const char *external_id, const struct stage_rename *renames,
                                   int rename_count, struct so_error *err)
{
    struct pipeline_update_tx t = {account_id, id, name, external_id, renames, rename_count, err};
    enum db_rc rc = db_tx(db, pipeline_update_tx, &t);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_loss_reason_create(struct db *db, int64_t account_id, const char *name,
                                      const char *external_id, int64_t now, int64_t *id, struct so_error *err)
{
    enum db_rc rc = store_loss_reason_insert(db, account_id, name, external_id, false, now, id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

enum so_err domain_loss_reason_update(struct db *db, int64_t account_id, int64_t id, const char *name,
                                      const char *external_id, struct so_error *err)
{
    enum db_rc rc = store_loss_reason_update(db, account_id, id, name, external_id);
    return rc == DB_OK ? SO_OK : domain_db_error(rc, err);
}

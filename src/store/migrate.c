/* Forward-only migrations embedded in the binary, applied in order, each in its own transaction and recorded
 * with a checksum. A changed applied file is refused. Concurrent runs serialise on an advisory lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_internal.h"
#include "salesops/crypto.h"
#include "salesops/embedded.h"
#include "salesops/log.h"

#define MIGRATION_LOCK "7365616c65736f70" /* "salesops" */

static void checksum_hex(const struct so_embedded *m, char out[2 * SO_SHA256_LEN + 1])
{
    uint8_t h[SO_SHA256_LEN];
    so_sha256(m->text, m->length, h);
    for (int i = 0; i < SO_SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", h[i]);
}

int store_migration_count(void)
{
    int n = 0;
    while (so_migrations[n].name != NULL)
        n++;
    return n;
}

DB_STMT(stmt_migration_checksum, "SELECT checksum FROM schema_migrations WHERE name = $1");
DB_STMT(stmt_migration_record, "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)");

static enum db_rc ensure_table(struct db *db)
{
    return db_simple(db, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                         " name text PRIMARY KEY, checksum text NOT NULL,"
                         " applied_at timestamptz NOT NULL DEFAULT now())");
}

/* DB_OK: applied with this checksum; DB_NONE: not applied; DB_ABORT: applied with another checksum. */
static enum db_rc migration_state(struct db *db, const struct so_embedded *m, const char *sum)
{
    struct db_params p = {0};
    dbp_str(&p, m->name);
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_migration_checksum, &p, &r);
    if (rc != DB_OK) return rc;
    bool same = strcmp(PQgetvalue(r, 0, 0), sum) == 0;
    PQclear(r);
    return same ? DB_OK : DB_ABORT;
}

enum db_rc store_migrate(struct db *db, int *applied, char *err, size_t errlen)
{
    *applied = 0;
    enum db_rc rc = db_simple(db, "SELECT pg_advisory_lock(x'" MIGRATION_LOCK "'::int8)");
    if (rc != DB_OK) {
        snprintf(err, errlen, "cannot take the migration lock");
        return rc;
    }
    rc = ensure_table(db);
    for (int i = 0; rc == DB_OK && so_migrations[i].name != NULL; i++) {
        const struct so_embedded *m = &so_migrations[i];
        char sum[2 * SO_SHA256_LEN + 1];
        checksum_hex(m, sum);
        enum db_rc state = migration_state(db, m, sum);
        if (state == DB_OK) continue;
        if (state == DB_ABORT) {
            snprintf(err, errlen, "migration %s was changed after it was applied (checksum differs)",
                     m->name);
            rc = DB_ABORT;
            break;
        }
        if (state != DB_NONE) {
            rc = state;
            break;
        }
        char *sql = malloc(m->length + 1);
        if (sql == NULL) {
            rc = DB_ERROR;
            break;
        }
        memcpy(sql, m->text, m->length);
        sql[m->length] = '\0';
        rc = db_simple(db, "BEGIN");
        if (rc == DB_OK) rc = db_simple(db, sql);
        free(sql);
        if (rc == DB_OK) {
            struct db_params p = {0};
            dbp_str(&p, m->name);
            dbp_str(&p, sum);
            rc = db_run(db, &stmt_migration_record, &p);
        }
        if (rc == DB_OK) rc = db_simple(db, "COMMIT");
        if (rc != DB_OK) {
            db_simple(db, "ROLLBACK");
            snprintf(err, errlen, "migration %s failed: %s", m->name, PQerrorMessage(db_conn(db)));
            break;
        }
        log_event_steal(LOG_INFO, "migration applied", json_pack("{s:s}", "name", m->name));
        (*applied)++;
    }
    if (rc != DB_OK && rc != DB_ABORT && err[0] == '\0')
        snprintf(err, errlen, "%s", PQerrorMessage(db_conn(db)));
    db_simple(db, "SELECT pg_advisory_unlock(x'" MIGRATION_LOCK "'::int8)");
    return rc;
}

DB_STMT(stmt_migrations_applied, "SELECT name, checksum FROM schema_migrations ORDER BY name");

enum db_rc store_migrations_current(struct db *db)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, &stmt_migrations_applied, NULL, &r);
    if (rc != DB_OK) return rc == DB_ERROR ? DB_NONE : rc; /* no table yet: not current */
    int n = PQntuples(r);
    int expected = store_migration_count();
    /* a database ahead of this binary (a newer one migrated it: a rolling upgrade) is current for it too:
     * migrations are forward-only and never change what earlier ones made */
    bool current = n >= expected;
    for (int i = 0; current && i < expected; i++) {
        char sum[2 * SO_SHA256_LEN + 1];
        checksum_hex(&so_migrations[i], sum);
        current =
            strcmp(PQgetvalue(r, i, 0), so_migrations[i].name) == 0 && strcmp(PQgetvalue(r, i, 1), sum) == 0;
    }
    PQclear(r);
    return current ? DB_OK : DB_NONE;
}

/* Bulk import through COPY into a temp table, applied set-based by salesops_import_apply() (migrations). */
#include <stdio.h>
#include <string.h>
#include "db_internal.h"

enum db_rc store_import_start(struct db *db, int64_t account_id)
{
    /* an import of millions of events runs longer than the service's statement limit */
    enum db_rc rc = db_simple(db, "SET statement_timeout = 0");
    if (rc == DB_OK) rc = db_simple(db, "BEGIN");
    if (rc == DB_OK) rc = store_lock_account_ingest(db, account_id);
    if (rc == DB_OK)
        rc = db_simple(
            db, "CREATE TEMP TABLE import_events (seq bigint, event_id text, type text, at timestamptz,"
                " creation boolean, data jsonb, body text) ON COMMIT DROP");
    if (rc != DB_OK) return rc;
    PGresult *r = PQexec(db_conn(db), "COPY import_events FROM STDIN");
    rc = PQresultStatus(r) == PGRES_COPY_IN ? DB_OK : DB_ERROR;
    PQclear(r);
    return rc;
}

enum db_rc store_import_put(struct db *db, const char *data, size_t len)
{
    return PQputCopyData(db_conn(db), data, (int)len) == 1 ? DB_OK : DB_ERROR;
}

enum db_rc store_import_finish(struct db *db, int64_t account_id, int64_t *accepted, int64_t *duplicates,
                               char *err, size_t errlen)
{
    PGconn *conn = db_conn(db);
    enum db_rc rc = PQputCopyEnd(conn, NULL) == 1 ? DB_OK : DB_ERROR;
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK) rc = DB_ERROR;
        if (rc != DB_OK && err[0] == '\0') snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    if (rc == DB_OK) {
        char account[24];
        snprintf(account, sizeof account, "%lld", (long long)account_id);
        const char *params[] = {account};
        r = PQexecParams(conn, "SELECT accepted, duplicates FROM salesops_import_apply($1)", 1, NULL, params,
                         NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            *accepted = db_i64(r, 0, 0);
            *duplicates = db_i64(r, 0, 1);
        } else {
            snprintf(err, errlen, "%s", PQresultErrorMessage(r));
            rc = DB_ERROR;
        }
        PQclear(r);
    }
    /* moves into lost the import brought are judged by rejection control like any other */
    if (rc == DB_OK && (rc = store_rejection_judge_import(db, account_id)) != DB_OK && err[0] == '\0')
        snprintf(err, errlen, "judging the imported losses failed");
    if (rc == DB_OK)
        rc = db_simple(db, "COMMIT");
    else
        db_simple(db, "ROLLBACK");
    if (rc != DB_OK && err[0] == '\0') snprintf(err, errlen, "%s", PQerrorMessage(conn));
    return rc;
}

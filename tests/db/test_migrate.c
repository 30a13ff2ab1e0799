/* Migrations: applied once, recorded with a checksum, a changed file refused; /readyz follows them. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <string.h>
#include "harness.h"
#include "salesops/store.h"

static struct db *open_or_fail(const char *conninfo)
{
    char err[512] = "";
    struct db *db = db_open(conninfo, err, sizeof err);
    cr_assert(db != NULL, "%s", err);
    return db;
}

static void sql_on(const char *conninfo, const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

Test(migrate, fresh_database_gets_every_migration_then_nothing_more)
{
    struct db *db = open_or_fail(th_scratch_database("migrate_fresh"));
    cr_assert_eq(store_migrations_current(db), DB_NONE);
    char err[512] = "";
    int applied = -1;
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    cr_assert_eq(applied, store_migration_count());
    cr_assert_eq(store_migrations_current(db), DB_OK);
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    cr_assert_eq(applied, 0);
    db_close(db);
}

Test(migrate, a_database_a_newer_binary_migrated_is_current_and_migrate_leaves_it)
{
    const char *conninfo = th_scratch_database("migrate_ahead");
    struct db *db = open_or_fail(conninfo);
    char err[512] = "";
    int applied;
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    sql_on(conninfo, "INSERT INTO schema_migrations (name, checksum) VALUES ('9999_from_the_future.sql', 'x')");
    cr_assert_eq(store_migrations_current(db), DB_OK); /* an older instance stays ready in a rolling upgrade */
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    cr_assert_eq(applied, 0);
    db_close(db);
}

Test(migrate, changed_applied_file_is_refused_with_its_name)
{
    const char *conninfo = th_scratch_database("migrate_tampered");
    struct db *db = open_or_fail(conninfo);
    char err[512] = "";
    int applied;
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    sql_on(conninfo, "UPDATE schema_migrations SET checksum = 'tampered' WHERE name = '0001_core.sql'");
    err[0] = '\0';
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_ABORT);
    cr_assert(strstr(err, "0001_core.sql") != NULL, "%s", err);
    cr_assert(strstr(err, "changed") != NULL, "%s", err);
    cr_assert_eq(store_migrations_current(db), DB_NONE);
    db_close(db);
}

Test(migrate, readyz_is_503_until_the_schema_is_current)
{
    const char *conninfo = th_scratch_database("migrate_readyz");
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", conninfo);
    th_server_start_on(copy);
    struct th_resp r = th_get(NULL, "/readyz");
    cr_assert_eq(r.status, 503, "%s", r.body);
    cr_assert_str_eq(th_code(&r), "db_unavailable");
    th_resp_free(&r);
    struct db *db = open_or_fail(copy);
    char err[512] = "";
    int applied;
    cr_assert_eq(store_migrate(db, &applied, err, sizeof err), DB_OK, "%s", err);
    db_close(db);
    r = th_get(NULL, "/readyz");
    cr_assert_eq(r.status, 200, "%s", r.body);
    th_resp_free(&r);
    r = th_get(NULL, "/healthz");
    cr_assert_eq(r.status, 200);
    th_resp_free(&r);
    th_server_stop();
}

/* Connections, prepared statements and the transaction runner. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "db_internal.h"
#include "salesops/buf.h"
#include "salesops/crypto.h"
#include "salesops/log.h"

struct db {
    PGconn *conn;
    bool prepared[DB_MAX_STATEMENTS];
    bool broken;
};

static atomic_int next_slot = 0;

/* The pool's state for /metrics: connections open now, and counts since the start. */
static atomic_int conns_open = 0;
static atomic_long conns_opened = 0, conns_failed = 0, conns_replaced = 0;

/* The longest statement of connections opened from now on, in ms (0: none). */
static atomic_int statement_timeout_ms = 60000;

struct db *db_open(const char *conninfo, char *err, size_t errlen)
{
    const char *keys[] = {"dbname",
                          "connect_timeout",
                          "keepalives_idle",
                          "keepalives_interval",
                          "keepalives_count",
                          "application_name",
                          NULL};
    const char *values[] = {conninfo, "3", "10", "5", "3", "salesops", NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        atomic_fetch_add(&conns_failed, 1);
        if (err != NULL) snprintf(err, errlen, "%s", conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        return NULL;
    }
    struct db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        PQfinish(conn);
        if (err != NULL) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    db->conn = conn;
    atomic_fetch_add(&conns_open, 1);
    atomic_fetch_add(&conns_opened, 1);
    char set[200];
    /* a hung process must not hold its locks (claimed webhook bodies, an account's ingest lock) for long; JIT
     * compiling takes tens of milliseconds, longer than any of our statements runs (the analytics reads the
     * rollup: JIT turned a 70-ms month report into 110 ms) */
    snprintf(set, sizeof set,
             "SET TIME ZONE 'UTC'; SET statement_timeout = %d; SET idle_in_transaction_session_timeout = '60s';"
             " SET jit = off",
             atomic_load(&statement_timeout_ms));
    PGresult *r = PQexec(conn, set);
    PQclear(r);
    return db;
}

void db_pool_stats(struct db_pool_stats *out)
{
    out->open = atomic_load(&conns_open);
    out->opened = atomic_load(&conns_opened);
    out->failed = atomic_load(&conns_failed);
    out->replaced = atomic_load(&conns_replaced);
}

void db_set_statement_timeout(int ms)
{
    atomic_store(&statement_timeout_ms, ms < 0 ? 0 : ms);
}

void db_close(struct db *db)
{
    if (db == NULL) return;
    atomic_fetch_sub(&conns_open, 1);
    PQfinish(db->conn);
    free(db);
}

PGconn *db_conn(struct db *db)
{
    return db->conn;
}

bool db_is_alive(struct db *db)
{
    return db != NULL && !db->broken && PQstatus(db->conn) == CONNECTION_OK;
}

/* Each thread has its own connection to the primary and, for analytics with DATABASE_READ_URL, one to the
 * replica. */
static pthread_key_t thread_key, read_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_db_free(void *p)
{
    db_close(p);
}
static void thread_key_make(void)
{
    pthread_key_create(&thread_key, thread_db_free);
    pthread_key_create(&read_key, thread_db_free);
}

static struct db *thread_conn(pthread_key_t key, const char *conninfo, const char *what)
{
    struct db *db = pthread_getspecific(key);
    if (db != NULL && db_is_alive(db)) return db;
    if (db != NULL) {
        atomic_fetch_add(&conns_replaced, 1);
        db_close(db);
        pthread_setspecific(key, NULL);
    }
    char err[256];
    db = db_open(conninfo, err, sizeof err);
    if (db == NULL) {
        char *nl = strchr(err, '\n');
        if (nl != NULL) *nl = '\0';
        log_msg(LOG_WARN, "%s unreachable: %s", what, err);
        return NULL;
    }
    pthread_setspecific(key, db);
    return db;
}

struct db *db_thread(const char *conninfo)
{
    pthread_once(&thread_key_once, thread_key_make);
    return thread_conn(thread_key, conninfo, "database");
}

struct db *db_thread_read(const char *conninfo)
{
    pthread_once(&thread_key_once, thread_key_make);
    return thread_conn(read_key, conninfo, "read replica");
}

void db_thread_release(void)
{
    pthread_once(&thread_key_once, thread_key_make);
    pthread_key_t keys[] = {thread_key, read_key};
    for (int i = 0; i < 2; i++) {
        db_close(pthread_getspecific(keys[i]));
        pthread_setspecific(keys[i], NULL);
    }
}

void dbp_int(struct db_params *p, int64_t v)
{
    snprintf(p->buf[p->count], sizeof p->buf[0], "%lld", (long long)v);
    p->values[p->count] = p->buf[p->count];
    p->count++;
}

void dbp_id(struct db_params *p, int64_t v)
{
    if (v == 0)
        p->values[p->count++] = NULL;
    else
        dbp_int(p, v);
}

void dbp_fixed4(struct db_params *p, double v)
{
    snprintf(p->buf[p->count], sizeof p->buf[0], "%.4f", v);
    p->values[p->count] = p->buf[p->count];
    p->count++;
}

void dbp_str(struct db_params *p, const char *s)
{
    p->values[p->count++] = s;
}

void dbp_bool(struct db_params *p, bool v)
{
    p->values[p->count++] = v ? "t" : "f";
}

void dbp_bytes_hex(struct db_params *p, const uint8_t *bytes, size_t len)
{
    /* bytea hex input: \x + two digits a byte; up to 10 bytes fit the inline buffer, longer use static
     * storage per slot, so keep hashes at 32 bytes and use a wider buffer for them. */
    static _Thread_local char wide[DB_MAX_PARAMS][2 + 2 * 64 + 1];
    char *out = wide[p->count];
    if (len > 64) len = 64;
    out[0] = '\\';
    out[1] = 'x';
    so_hex(bytes, len, out + 2);
    p->values[p->count++] = out;
}

void dbp_page(struct db_params *p, const struct so_page *page)
{
    dbp_int(p, page->after_id);
    dbp_int(p, page->limit + 1);
}

static enum db_rc classify(struct db *db, PGresult *r, const char *what)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return DB_OK;
    if (PQstatus(db->conn) != CONNECTION_OK) {
        db->broken = true;
        return DB_UNAVAILABLE;
    }
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL) {
        if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) return DB_RETRY;
        if (strcmp(state, "23505") == 0) return DB_UNIQUE;
        if (strcmp(state, "57014") == 0) { /* statement_timeout: one heavy call must not hold the database */
            log_event_steal(LOG_WARN, "statement timed out", json_pack("{s:s}", "statement", what));
            return DB_ERROR;
        }
        /* admin shutdown, crash shutdown, cannot connect now: the server is going away */
        if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0) {
            db->broken = true;
            return DB_UNAVAILABLE;
        }
    }
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(db->conn);
    json_t *fields = json_pack("{s:s, s:s?, s:s?}", "statement", what, "sqlstate", state, "error", msg);
    log_event_steal(LOG_ERROR, "database error", fields);
    return DB_ERROR;
}

static enum db_rc prepare(struct db *db, struct db_stmt *stmt, int *slot_out)
{
    int slot = atomic_load(&stmt->slot);
    if (slot == 0) {
        int fresh = atomic_fetch_add(&next_slot, 1) + 1;
        int expected = 0;
        if (!atomic_compare_exchange_strong(&stmt->slot, &expected, fresh)) fresh = expected;
        slot = fresh;
    }
    if (slot >= DB_MAX_STATEMENTS) {
        log_msg(LOG_ERROR, "too many statements: raise DB_MAX_STATEMENTS");
        return DB_ERROR;
    }
    *slot_out = slot;
    if (db->prepared[slot]) return DB_OK;
    PGresult *r = PQprepare(db->conn, stmt->name, stmt->sql, 0, NULL);
    enum db_rc rc = classify(db, r, stmt->name);
    PQclear(r);
    if (rc == DB_OK) db->prepared[slot] = true;
    return rc;
}

enum db_rc db_exec(struct db *db, struct db_stmt *stmt, const struct db_params *p, PGresult **res)
{
    *res = NULL;
    if (db->broken) return DB_UNAVAILABLE;
    int slot;
    enum db_rc rc = prepare(db, stmt, &slot);
    if (rc != DB_OK) return rc;
    PGresult *r = PQexecPrepared(db->conn, stmt->name, p ? p->count : 0, p ? p->values : NULL, NULL, NULL, 0);
    rc = classify(db, r, stmt->name);
    if (rc != DB_OK) {
        PQclear(r);
        return rc;
    }
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0) {
        PQclear(r);
        return DB_NONE;
    }
    *res = r;
    return DB_OK;
}

enum db_rc db_run(struct db *db, struct db_stmt *stmt, const struct db_params *p)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, stmt, p, &r);
    PQclear(r);
    return rc;
}

enum db_rc db_returning_id(struct db *db, struct db_stmt *stmt, const struct db_params *p, int64_t *id)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, stmt, p, &r);
    if (rc == DB_OK) {
        *id = db_i64(r, 0, 0);
        PQclear(r);
    }
    return rc;
}

enum db_rc db_simple(struct db *db, const char *sql)
{
    if (db->broken) return DB_UNAVAILABLE;
    PGresult *r = PQexec(db->conn, sql);
    enum db_rc rc = classify(db, r, "simple");
    PQclear(r);
    return rc;
}

int64_t db_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int db_int(const PGresult *r, int row, int col)
{
    return (int)db_i64(r, row, col);
}

bool db_bool(const PGresult *r, int row, int col)
{
    return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

const char *db_str(struct arena *a, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return NULL;
    return arena_strndup(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

enum db_rc db_list(struct db *db, struct arena *a, struct db_stmt *stmt, const struct db_params *p,
                   size_t size, db_row_fn fill, void **items, int *count)
{
    *items = NULL;
    *count = 0;
    PGresult *r;
    enum db_rc rc = db_exec(db, stmt, p, &r);
    if (rc == DB_NONE) return DB_OK;
    if (rc != DB_OK) return rc;
    int n = PQntuples(r);
    char *out = arena_alloc(a, size * (size_t)n + 1);
    if (out == NULL) {
        PQclear(r);
        return DB_ERROR;
    }
    memset(out, 0, size * (size_t)n);
    for (int i = 0; i < n; i++)
        fill(a, r, i, out + size * (size_t)i);
    PQclear(r);
    *items = out;
    *count = n;
    return DB_OK;
}

enum db_rc db_one(struct db *db, struct arena *a, struct db_stmt *stmt, const struct db_params *p,
                  db_row_fn fill, void *item)
{
    PGresult *r;
    enum db_rc rc = db_exec(db, stmt, p, &r);
    if (rc != DB_OK) return rc;
    fill(a, r, 0, item);
    PQclear(r);
    return DB_OK;
}

enum db_rc db_tx(struct db *db, db_tx_fn fn, void *ctx)
{
    enum db_rc rc = DB_ERROR;
    for (int attempt = 0; attempt < 8; attempt++) {
        rc = db_simple(db, "BEGIN");
        if (rc != DB_OK) return rc;
        rc = fn(db, ctx);
        if (rc == DB_OK) rc = db_simple(db, "COMMIT");
        if (rc == DB_OK) return DB_OK;
        if (rc != DB_UNAVAILABLE) db_simple(db, "ROLLBACK");
        if (rc != DB_RETRY) return rc;
    }
    return rc;
}

enum db_rc db_listen(struct db *db, const char *channel)
{
    char *quoted = PQescapeIdentifier(db->conn, channel, strlen(channel));
    if (quoted == NULL) return DB_ERROR;
    char sql[128];
    snprintf(sql, sizeof sql, "LISTEN %s", quoted);
    PQfreemem(quoted);
    return db_simple(db, sql);
}

DB_STMT(stmt_notify, "SELECT pg_notify($1, '')");

enum db_rc db_notify(struct db *db, const char *channel)
{
    struct db_params p = {0};
    dbp_str(&p, channel);
    return db_run(db, &stmt_notify, &p);
}

enum db_rc db_wait_notify(struct db *db, int timeout_ms)
{
    if (db->broken) return DB_UNAVAILABLE;
    int fd = PQsocket(db->conn);
    if (fd < 0) return DB_UNAVAILABLE;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int ready = poll(&pfd, 1, timeout_ms);
    if (ready > 0 && PQconsumeInput(db->conn) == 0) {
        db->broken = true;
        return DB_UNAVAILABLE;
    }
    bool got = false;
    PGnotify *n;
    while ((n = PQnotifies(db->conn)) != NULL) {
        got = true;
        PQfreemem(n);
    }
    return got ? DB_OK : DB_NONE;
}

char *db_id_array(struct arena *a, const int64_t *ids, int count)
{
    char *out = arena_alloc(a, (size_t)count * 21 + 3);
    if (out == NULL) return NULL;
    size_t n = 0;
    out[n++] = '{';
    for (int i = 0; i < count; i++)
        n += (size_t)sprintf(out + n, "%s%lld", i ? "," : "", (long long)ids[i]);
    out[n++] = '}';
    out[n] = '\0';
    return out;
}

void db_array_put_text(struct so_buf *b, const char *s, size_t n)
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

void db_array_put_int(struct so_buf *b, int64_t v)
{
    so_buf_printf(b, "%lld", (long long)v);
}

void db_array_put_id(struct so_buf *b, int64_t v)
{
    if (v == 0)
        so_buf_put(b, "NULL", 4);
    else
        db_array_put_int(b, v);
}

void db_array_row(struct so_buf *cols, int ncols, int row)
{
    for (int c = 0; c < ncols; c++)
        so_buf_put(&cols[c], row == 0 ? "{" : ",", 1);
}

static bool db_array_params(struct so_buf *cols, int ncols, struct db_params *p)
{
    bool ok = true;
    for (int c = 0; c < ncols; c++) {
        if (cols[c].len == 0)
            so_buf_put(&cols[c], "{}", 2);
        else
            so_buf_put(&cols[c], "}", 1);
        ok &= !cols[c].failed;
        p->values[p->count++] = cols[c].data;
    }
    return ok;
}

static void db_array_free(struct so_buf *cols, int ncols)
{
    for (int c = 0; c < ncols; c++)
        so_buf_free(&cols[c]);
}

enum db_rc db_array_exec(struct db *db, struct db_stmt *stmt, struct so_buf *cols, int ncols, struct db_params *p,
                         int rows, PGresult **res)
{
    *res = NULL;
    enum db_rc rc = db_array_params(cols, ncols, p) ? db_exec(db, stmt, p, res) : DB_ERROR;
    db_array_free(cols, ncols);
    if (rc == DB_OK && PQntuples(*res) == rows) return DB_OK;
    PQclear(*res);
    *res = NULL;
    return rc == DB_OK || rc == DB_NONE ? DB_ERROR : rc;
}

int db_parse_id_array(struct arena *a, const char *text, int64_t **ids)
{
    int count = 0;
    size_t len = strlen(text);
    *ids = arena_alloc(a, sizeof(int64_t) * (len / 2 + 1));
    if (*ids == NULL) return 0;
    for (const char *p = text; *p;) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end != p) (*ids)[count++] = v;
        p = *end ? end + 1 : end;
    }
    return count;
}

void db_fill_i64(struct arena *a, const PGresult *r, int row, void *item)
{
    (void)a;
    *(int64_t *)item = db_i64(r, row, 0);
}

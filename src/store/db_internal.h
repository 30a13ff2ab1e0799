/* Inside the store only: statements, parameters and result access over libpq. */
#ifndef SALESOPS_DB_INTERNAL_H
#define SALESOPS_DB_INTERNAL_H
#include <libpq-fe.h>
#include <stdatomic.h>
#include "salesops/store.h"

#define DB_MAX_PARAMS     24
#define DB_MAX_STATEMENTS 256

/* A statement is prepared once per connection, on first use. `slot` is assigned on first use too. */
struct db_stmt {
    const char *name;
    const char *sql;
    atomic_int slot;
};
#define DB_STMT(var, sql_text) static struct db_stmt var = {#var, sql_text, 0}

struct db_params {
    int count;
    const char *values[DB_MAX_PARAMS];
    char buf[DB_MAX_PARAMS][24];
};
void dbp_int(struct db_params *p, int64_t v);
/* 0 becomes NULL: ids and times use 0 for "none". */
void dbp_id(struct db_params *p, int64_t v);
void dbp_str(struct db_params *p, const char *s); /* NULL stays NULL */
void dbp_fixed4(struct db_params *p, double v);   /* a number with 4 decimals, for numeric columns */
void dbp_bool(struct db_params *p, bool v);
void dbp_bytes_hex(struct db_params *p, const uint8_t *bytes, size_t len); /* as a bytea literal */

/* Runs a prepared statement. On DB_OK, *res holds the result (free with PQclear); DB_NONE when a statement
 * that returns rows returned none (res is cleared then). */
enum db_rc db_exec(struct db *db, struct db_stmt *stmt, const struct db_params *p, PGresult **res);
/* For statements without a result the caller needs. */
enum db_rc db_run(struct db *db, struct db_stmt *stmt, const struct db_params *p);
/* Runs an INSERT ... RETURNING id and reads the id. */
enum db_rc db_returning_id(struct db *db, struct db_stmt *stmt, const struct db_params *p, int64_t *id);
/* Plain SQL without parameters (migrations, BEGIN/COMMIT). */
enum db_rc db_simple(struct db *db, const char *sql);
PGconn *db_conn(struct db *db);

int64_t db_i64(const PGresult *r, int row, int col);
int db_int(const PGresult *r, int row, int col);
bool db_bool(const PGresult *r, int row, int col);
const char *db_str(struct arena *a, const PGresult *r, int row, int col);

/* Runs stmt and turns its rows into an array of `size`-byte items with `fill(arena, res, row, item)`. */
typedef void (*db_row_fn)(struct arena *a, const PGresult *r, int row, void *item);
enum db_rc db_list(struct db *db, struct arena *a, struct db_stmt *stmt, const struct db_params *p,
                   size_t size, db_row_fn fill, void **items, int *count);
/* Runs stmt and fills one item from its first row (DB_NONE if none). */
enum db_rc db_one(struct db *db, struct arena *a, struct db_stmt *stmt, const struct db_params *p,
                  db_row_fn fill, void *item);
/* Page parameters: limit + 1 rows are fetched so the caller can tell whether there is a next page. */
void dbp_page(struct db_params *p, const struct so_page *page);

/* A db_row_fn for a single int8 column into an int64_t item. */
void db_fill_i64(struct arena *a, const PGresult *r, int row, void *item);
/* "{1,2,3}" from ids (an int8[] literal), in the arena; and back. */
char *db_id_array(struct arena *a, const int64_t *ids, int count);
int db_parse_id_array(struct arena *a, const char *text, int64_t **ids);
struct so_buf;
/* One element of a text[] literal: NULL, or the n bytes of s quoted, with '"' and '\' escaped. */
void db_array_put_text(struct so_buf *b, const char *s, size_t n);
/* One element of an int8[] literal: v; or, for an id, NULL when v is 0 (none). */
void db_array_put_int(struct so_buf *b, int64_t v);
void db_array_put_id(struct so_buf *b, int64_t v);
/* Array parameters built row by row, one literal per column (for unnest($1::text[], $2::int8[], ...)): before a
 * row's elements, db_array_row opens each literal (row 0) or adds the separator. db_array_exec closes them, adds
 * them to p after its other parameters, runs stmt and frees them: DB_OK when the statement answered exactly rows
 * rows, in *res (the caller clears it); otherwise the failure (DB_ERROR when the literals could not be built or
 * the rows are not as many), *res NULL. */
void db_array_row(struct so_buf *cols, int ncols, int row);
enum db_rc db_array_exec(struct db *db, struct db_stmt *stmt, struct so_buf *cols, int ncols, struct db_params *p,
                         int rows, PGresult **res);

/* Times: columns are read as epoch seconds with this expression in SQL. */
#define EPOCH(col) "floor(extract(epoch from " col "))::int8"

#endif

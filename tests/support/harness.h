/* Test harness: a real PostgreSQL database per test binary (created on first use and migrated), a fresh
 * account per test, the real server in-process on an ephemeral port, and a libcurl client. */
#ifndef SALESOPS_TEST_HARNESS_H
#define SALESOPS_TEST_HARNESS_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "salesops/config.h"

struct th_account {
    int64_t id;
    char admin_key[64];
    char webhook_token[64];
};

struct th_resp {
    long status;
    char *body;
    json_t *json; /* parsed body, or NULL */
    char content_type[128];
    char request_id[64];
    char allow[64];
};

/* The conninfo of this binary's own database (named after suite), created and migrated on first use. */
const char *th_database(const char *suite);
/* A new empty database (dropped first if it exists), not migrated; for tests that need a database of their
 * own. */
const char *th_scratch_database(const char *name);
/* Starts the server on the given database. */
const char *th_server_start_on(const char *database);
/* Starts the server for suite (database + ephemeral port); returns the base URL "http://127.0.0.1:PORT". */
const char *th_server_start(const char *suite);
void th_server_stop(void);
const struct so_config *th_config(void);
/* A new account in the suite's database. */
void th_account_new(struct th_account *out);
/* A key of another role for the account (manager_id only for role manager). */
void th_key_new(const struct th_account *acct, const char *role, int64_t manager_id, char out[64]);

/* One request. body may be NULL; content_type NULL means application/json when there is a body.
 * extra_header may be NULL ("Name: value"). */
struct th_resp th_request(const char *method, const char *path, const char *key, const char *body,
                          const char *content_type, const char *extra_header);
struct th_resp th_get(const char *key, const char *path_fmt, ...) __attribute__((format(printf, 2, 3)));
struct th_resp th_post(const char *key, const char *path, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct th_resp th_patch(const char *key, const char *path, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct th_resp th_put(const char *key, const char *path, const char *body_fmt, ...)
    __attribute__((format(printf, 3, 4)));
void th_resp_free(struct th_resp *r);

/* Field helpers on a response's JSON object. */
int64_t th_int(const struct th_resp *r, const char *field);
const char *th_str(const struct th_resp *r, const char *field);
/* The "code" of a problem+json reply, or "" */
const char *th_code(const struct th_resp *r);
/* Counts rows of a table for an account directly in the database (to check that nothing was stored). */
int64_t th_count_rows(const char *table, int64_t account_id);
/* Runs one SQL statement in the suite's database (tests that move time, such as a session's end); returns the
 * first column of the first row as an integer (0 when none). */
int64_t th_sql_int(const char *sql_fmt, ...) __attribute__((format(printf, 1, 2)));

/* Setup used by the HTTP suites: creates the server and an account with a pipeline, two managers, a head
 * and a loss reason. */
struct th_world {
    struct th_account acct;
    int64_t pipeline_id;
    int64_t stages[3]; /* the open stages, in order */
    int64_t won_stage, lost_stage;
    int64_t manager1, manager2, head;
    int64_t loss_reason;
    char manager1_key[64], manager2_key[64], head_key[64], readonly_key[64];
};
void th_world_new(struct th_world *w);

#endif

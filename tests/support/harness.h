/* Test harness: a real PostgreSQL database per test binary (created on first use and migrated), a fresh
 * account per test, the real server in-process on an ephemeral port, and a libcurl client. */
#ifndef SALESOPS_TEST_HARNESS_H
#define SALESOPS_TEST_HARNESS_H
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "salesops/config.h"

/* In a printf-like function, formats its own arguments after fmt into the char array buf (truncated). */
#define TH_VFORMAT(buf, fmt)                                                                                 \
    do {                                                                                                     \
        va_list th_ap_;                                                                                      \
        va_start(th_ap_, fmt);                                                                               \
        vsnprintf(buf, sizeof buf, fmt, th_ap_);                                                             \
        va_end(th_ap_);                                                                                      \
    } while (0)

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
/* POSTs body to the amoCRM webhook of token (content_type NULL: the form encoding amoCRM sends). */
struct th_resp th_post_webhook(const char *token, const char *body, const char *content_type);
/* The same, asserting 200 within amoCRM's 2 s; returns how long the answer took (s). */
double th_post_webhook_ok(const char *token, const char *body);
/* An amoCRM leads[add] body: the lead in pipeline and stage 55012001, price 1000, responsible user, created and
 * updated at t. */
void th_lead_add_body(char *out, size_t len, int lead, int pipeline, int user, int64_t t);
/* Holds the account's ingest lock exclusively, on a connection of its own, as a bulk import does: the account's
 * appliers claim their bodies and wait for it. th_release_ingest commits and closes the connection. */
struct pg_conn *th_hold_ingest(int64_t account_id);
void th_release_ingest(struct pg_conn *held);
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
/* The .init of the suites that run on a world: starts the server for suite and makes a new world in w (the
 * .fini is th_server_stop). */
void th_world_start(const char *suite, struct th_world *w);
/* A new manager (role "manager" or "head") by key, asserting 201; its id. */
int64_t th_manager_new(const char *key, const char *name, const char *role);
/* A new loss reason by key (ext NULL: no external_id), asserting 201; its id. */
int64_t th_loss_reason_new(const char *key, const char *name, const char *ext);
/* PATCH /api/v1/managers/{id} with body by key, asserting 200. */
void th_patch_manager(const char *key, int64_t id, const char *body);

/* ---- time ---- */

/* t (Unix seconds) as YYYY-MM-DDTHH:MM:SSZ. */
void th_format_time(int64_t t, char out[32]);
/* A YYYY-MM-DDTHH:MM:SSZ time (exactly that form: asserts it) as Unix seconds; asserts s is not NULL. */
int64_t th_parse_time(const char *s);
/* The date (YYYY-MM-DD), shifted by days, of the instant at in a zone offset_s seconds east of UTC with no
 * DST (Europe/Moscow: 3 * 3600). */
void th_local_date(char out[16], int64_t at, int offset_s, int days);
/* Sleeps ms milliseconds (the whole time, even when interrupted). */
void th_sleep_ms(long ms);
/* The monotonic clock in seconds. */
double th_mono_now(void);

/* ---- JSON ---- */

/* j as compact JSON for failure messages (a static buffer, truncated: one use per message). */
const char *th_dump(json_t *j);
/* The integer field of o (asserts it is one). */
int64_t th_jint(json_t *o, const char *field);
/* The string field of o, or NULL. */
const char *th_jstr(json_t *o, const char *field);
/* The field of o is there and null. */
bool th_jnull(json_t *o, const char *field);

/* ---- requests ---- */

/* GET path (printf) by key, asserting 200; the reply's JSON (the caller decrefs). */
json_t *th_get_json(const char *key, const char *path_fmt, ...) __attribute__((format(printf, 2, 3)));
/* The id of /api/v1/<kind>/ext:<ext> by key (asserts 200). */
int64_t th_id_by_ext(const char *key, const char *kind, const char *ext);
/* A POST without any body (path printf). */
struct th_resp th_post_empty(const char *key, const char *path_fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The reply has this status and, when code is not NULL, this problem code; what names the case. */
void th_expect_status(const struct th_resp *r, long status, const char *code, const char *what);
/* The reply is 422 validation_failed with an error for field. */
void th_expect_field_error(const struct th_resp *r, const char *field, const char *what);
/* POSTs events (a JSON array) to /api/v1/events by key, asserting 200 and that none was rejected; the reply
 * (the caller checks accepted and duplicates, and frees it). */
struct th_resp th_post_events(const char *key, const char *json);
/* The rows of the webhook inbox in state (GET /api/v1/webhooks/inbox?state=...&limit=500 by key). */
int64_t th_inbox_count(const char *key, const char *state);
/* Waits until nothing received is left to apply (no inbox row pending or waiting); asserts it happens within
 * timeout_ms. */
void th_wait_applied(const char *key, int timeout_ms);
/* Runs the SQL (printf) every 50 ms, as th_sql_int, until it gives expected or timeout_ms has passed; returns
 * the last value (the caller asserts it). */
int64_t th_wait_sql_int(int64_t expected, int timeout_ms, const char *sql_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

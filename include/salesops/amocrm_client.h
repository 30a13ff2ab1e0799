/* The amoCRM (Kommo) REST API v4 client: one function per remote operation, each a blocking libcurl call that
 * fills typed results and says how the call ended in a closed set of outcomes.
 *
 * No global state: curl_global_init() is the caller's job, done once before any thread calls in. Every
 * function may be called from several threads at once. The access token goes only into the Authorization
 * header: it is never logged and never copied into amo_result.error. */
#ifndef SALESOPS_AMOCRM_CLIENT_H
#define SALESOPS_AMOCRM_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct amo_conn {
    const char *base_url;     /* "https://example.amocrm.ru", no trailing path needed */
    const char *access_token; /* long-lived token, sent as "Authorization: Bearer <token>" */
    long timeout_ms;          /* whole call, per HTTP request; <= 0 means AMO_DEFAULT_TIMEOUT_MS */
};

#define AMO_DEFAULT_TIMEOUT_MS 10000L

enum amo_outcome {
    AMO_OK,
    AMO_RETRY,     /* 429, 408, 5xx, timeout, connection error: try again later (honour retry_after_s) */
    AMO_AUTH,      /* 401/403: the token is wrong, revoked or lacks rights */
    AMO_NOT_FOUND, /* 404 (or 204 for a single object): the object is not there */
    AMO_BAD,       /* other 4xx, a redirect, an unreadable answer, or bad arguments: retrying will not help */
};

struct amo_result {
    enum amo_outcome outcome;
    long status;          /* HTTP status of the last answer, 0 when none came */
    double retry_after_s; /* from Retry-After (seconds or HTTP-date), 0 if none */
    char error[256];      /* "" on AMO_OK; never contains the token */
};

/* "ok", "retry", "auth", "not_found", "bad" */
const char *amo_outcome_name(enum amo_outcome outcome);

struct amo_status {
    int64_t id;
    char *name;
    int sort;
    int type; /* 1 = unsorted ("Неразобранное"), 0 = a normal stage */
};

struct amo_pipeline {
    int64_t id;
    char *name;
    int sort;
    struct amo_status *statuses; /* in the order amoCRM gives them, including 142 and 143 */
    size_t status_count;
};

struct amo_loss_reason {
    int64_t id;
    char *name;
    int sort;
};

struct amo_user {
    int64_t id;
    char *name;
    char *email; /* "" when amoCRM has none */
    bool is_active;
    bool is_admin;
};

/* The list readers follow `_links.next` until the last page (a 204 answer is an empty page); the next page is
 * always asked of conn->base_url, whatever host the link names, so the token goes nowhere else. On success
 * *out is a new array (NULL when count is 0) for the matching free function; on any other outcome *out is
 * NULL and *count 0. */

/* GET /api/v4/leads/pipelines */
enum amo_outcome amo_get_pipelines(const struct amo_conn *conn, struct amo_pipeline **out, size_t *count,
                                   struct amo_result *res);
void amo_pipelines_free(struct amo_pipeline *pipelines, size_t count);

/* GET /api/v4/leads/loss_reasons */
enum amo_outcome amo_get_loss_reasons(const struct amo_conn *conn, struct amo_loss_reason **out,
                                      size_t *count, struct amo_result *res);
void amo_loss_reasons_free(struct amo_loss_reason *reasons, size_t count);

/* GET /api/v4/users?limit=250 (rights.is_active, rights.is_admin) */
enum amo_outcome amo_get_users(const struct amo_conn *conn, struct amo_user **out, size_t *count,
                               struct amo_result *res);
void amo_users_free(struct amo_user *users, size_t count);

/* GET /api/v4/leads/{id}?with=loss_reason. *loss_reason_id is 0 and name_buf "" when the lead has none;
 * the name is cut at a UTF-8 character boundary to fit name_len (name_buf may be NULL when name_len is 0). */
enum amo_outcome amo_get_lead_loss_reason(const struct amo_conn *conn, int64_t lead_id,
                                          int64_t *loss_reason_id, char *name_buf, size_t name_len,
                                          struct amo_result *res);

/* PATCH /api/v4/leads/{id} with only the fields that are not 0; all three 0 is AMO_BAD without a request. */
enum amo_outcome amo_patch_lead(const struct amo_conn *conn, int64_t lead_id, int64_t status_id,
                                int64_t pipeline_id, int64_t responsible_user_id, struct amo_result *res);

/* POST /api/v4/tasks [{text, complete_till, entity_id, entity_type: "leads", responsible_user_id,
 * task_type_id}] (responsible_user_id and task_type_id left out when 0); *new_task_id from
 * _embedded.tasks[0].id. */
enum amo_outcome amo_add_task(const struct amo_conn *conn, int64_t lead_id, int64_t responsible_user_id,
                              int64_t task_type_id, const char *text, int64_t complete_till_unix,
                              int64_t *new_task_id, struct amo_result *res);

/* PATCH /api/v4/tasks/{id} {is_completed: true, result: {text}} (result left out when text is NULL or ""). */
enum amo_outcome amo_complete_task(const struct amo_conn *conn, int64_t task_id, const char *result_text,
                                   struct amo_result *res);

/* POST /api/v4/leads/{id}/notes [{note_type: "common", params: {text}}]; *new_note_id from
 * _embedded.notes[0].id. */
enum amo_outcome amo_add_note(const struct amo_conn *conn, int64_t lead_id, const char *text,
                              int64_t *new_note_id, struct amo_result *res);

/* GET /api/v4/leads/{lead_id}/notes/{note_id}: *duration_s from params.duration (0 when absent), *answered
 * when params.call_status is 4. A note that is not a call (call_in/call_out) is AMO_BAD. */
enum amo_outcome amo_get_call_note(const struct amo_conn *conn, int64_t lead_id, int64_t note_id,
                                   long *duration_s, bool *answered, struct amo_result *res);

#endif

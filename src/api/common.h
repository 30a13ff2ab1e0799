/* Helpers shared by the handlers: path ids, query parameters, pages, body fields, rendering. */
#ifndef SALESOPS_API_COMMON_H
#define SALESOPS_API_COMMON_H
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include "salesops/domain.h"
#include "salesops/http.h"
#include "salesops/store.h"
#include "salesops/timeutil.h"
#include "salesops/types.h"
#include "salesops/validate.h"

#define COUNT_OF(a)           (sizeof(a) / sizeof((a)[0]))
#define NAME_MAX_CHARS        255
#define TEXT_MAX_CHARS        10000
#define EXTERNAL_ID_MAX_CHARS 128

/* Path parameter idx as an id; "ext:<external_id>" is looked up for kinds that have one. Replies 404 and
 * returns false when there is no such object in the key's account. */
bool path_id(struct so_req *req, int idx, enum so_kind kind, int64_t *id);
/* Path parameter idx as a plain id, for objects without an external id (404 otherwise). */
bool path_plain_id(struct so_req *req, int idx, const char *what, int64_t *id);
/* Query parameters: absent leaves *out as it is; a bad value replies 422 and returns false. */
bool query_id(struct so_req *req, const char *name, int64_t *out);
bool query_time(struct so_req *req, const char *name, int64_t *out);
bool query_enum(struct so_req *req, const char *name, const char *const *choices, const char **out);
/* from and to: dates YYYY-MM-DD in the account's zone, both inclusive, to >= from, at most 400 days; each
 * may be absent unless required. */
bool query_period(struct so_req *req, bool required, const char **from, const char **to);
/* limit (1..500, default 50) and cursor. */
bool query_page(struct so_req *req, struct so_page *page);
/* A manager key lists only his own objects: narrows *manager_id to him, or replies an empty page (and returns
 * false) when the query asked for another manager. */
bool scope_to_own(struct so_req *req, int64_t *manager_id, const struct so_page *page);
/* Validates the body against spec; replies 422 and returns false on a bad field. */
bool body_fields(struct so_req *req, const struct field_spec *spec, size_t count, struct field_value *out);
/* Replies with the domain's error. */
void reply_domain_error(struct so_req *req, struct so_error *err);
/* Replies {"items": items, "next_cursor": ...}; count is the number of rows fetched (limit + 1 means there is
 * more) and items holds at most limit of them. cursor_id/cursor_at are the last item's keys. */
void reply_page(struct so_req *req, json_t *items, int count, const struct so_page *page, int64_t cursor_id,
                int64_t cursor_at);
/* Renders items (structs of `size` bytes whose first member is the int64 id) as a page; count as above. */
typedef json_t *(*render_fn)(const void *item);
void reply_items(struct so_req *req, const void *items, int count, size_t size, render_fn render,
                 const struct so_page *page);
/* The same reply, written as JSON text item by item with write (no JSON objects built). */
typedef void (*write_fn)(struct so_buf *b, const void *item);
void reply_items_text(struct so_req *req, const void *items, int count, size_t size, write_fn write,
                      const struct so_page *page);
/* Replies 200 with the JSON text in b (500 if it could not be built); frees b. */
void reply_buf(struct so_req *req, struct so_buf *b);
/* Replies with the store's failure (503 or 500), or 404 for DB_NONE. */
void reply_db(struct so_req *req, enum db_rc rc, const char *what, int64_t id);

json_t *json_time(int64_t t); /* null for 0 */
json_t *json_id(int64_t id);  /* null for 0 */
json_t *json_str_or_null(const char *s);

json_t *render_account(const struct so_account *a);
json_t *render_api_key(const struct so_api_key *k);
json_t *render_manager(const struct so_manager *m);
json_t *render_stage(const struct so_stage *s);
json_t *render_pipeline(const struct so_pipeline *p);
json_t *render_loss_reason(const struct so_loss_reason *l);
json_t *render_deal(const struct so_deal *d);
/* The same object as render_deal, written as JSON text straight into b (hot read paths; the two are
 * compared by tests/unit/test_render.c). */
struct so_buf;
void write_deal(struct so_buf *b, const void *deal);
json_t *render_history_row(const struct so_history_row *h);
json_t *render_note(const struct so_note *n);
json_t *render_task(const struct so_task *t, int64_t now);
json_t *render_call(const struct so_call *c);
json_t *render_assignment(const struct so_assignment *x);
json_t *render_focus_filter(const struct so_focus_filter *f);
json_t *render_focus_session(const struct so_focus_session *s);
json_t *json_id_array(const int64_t *ids, int count);

#endif

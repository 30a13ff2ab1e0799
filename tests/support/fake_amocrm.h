/* A fake amoCRM REST API v4 for tests: libmicrohttpd on 127.0.0.1 with an ephemeral port, answering the
 * routes salesops uses with the shapes of the public API (shared/amocrm/FORMAT.md) from state the test sets.
 *
 * Every request is recorded (method, raw path and query, body, Authorization and Content-Type headers),
 * before anything else happens to it, for assertions. The test can make the next requests fail with a status,
 * answer garbage or wait, and can turn on amoCRM's rate limit. A request without "Authorization: Bearer
 * <token>" (FAKE_AMO_TOKEN unless changed) gets 401.
 *
 * Routes: GET /api/v4/leads/pipelines, /api/v4/leads/loss_reasons, /api/v4/users (paged: page, limit, and
 * `_links.next` while more remain; a page past the end is 204), GET and PATCH /api/v4/leads/{id} (GET takes
 * with=loss_reason; an unknown lead is 404), POST /api/v4/leads/{id}/notes, GET
 * /api/v4/leads/{id}/notes/{note_id}, POST /api/v4/tasks, PATCH /api/v4/tasks/{id}. Bodies are validated as
 * amoCRM does (400 with `validation-errors`). Anything else is 404 (405 for a known path with another
 * method).
 *
 * All functions are thread-safe. */
#ifndef SALESOPS_TEST_FAKE_AMOCRM_H
#define SALESOPS_TEST_FAKE_AMOCRM_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_AMO_TOKEN      "fake-amo-token-7c1e9d40b2"
#define FAKE_AMO_ACCOUNT_ID 31000001
/* The ids the fake gives to created tasks and notes, counting up from these. */
#define FAKE_AMO_FIRST_TASK_ID 70000001
#define FAKE_AMO_FIRST_NOTE_ID 90000001

struct fake_amo;

struct fake_amo_request {
    char method[16];
    char path[512];          /* raw, as sent: "/api/v4/leads/40310001" */
    char query[1024];        /* raw, without '?': "with=loss_reason", "" when none */
    char authorization[512]; /* the Authorization header, "" when none */
    char content_type[128];  /* the Content-Type header, "" when none */
    char *body;              /* NUL-terminated, "" when none */
    size_t body_len;
};

/* NULL when the daemon cannot start. */
struct fake_amo *fake_amo_start(void);
/* "http://127.0.0.1:PORT", valid until fake_amo_stop. */
const char *fake_amo_url(const struct fake_amo *fa);
/* Wakes delayed requests, stops the daemon and frees everything (recorded requests too). NULL is a no-op. */
void fake_amo_stop(struct fake_amo *fa);

/* The token the fake accepts ("Authorization: Bearer <token>"). */
void fake_amo_set_token(struct fake_amo *fa, const char *token);

/* State. The *_json setters take a JSON array of objects exactly as amoCRM lists them (the items of
 * `_embedded.pipelines`, `_embedded.loss_reasons`, `_embedded.users`); false when the text is not a JSON
 * array. */
bool fake_amo_set_pipelines_json(struct fake_amo *fa, const char *json_array);
bool fake_amo_set_loss_reasons_json(struct fake_amo *fa, const char *json_array);
bool fake_amo_set_users_json(struct fake_amo *fa, const char *json_array);
/* A lead as GET /api/v4/leads/{id} answers it (a JSON object; its "id" is set to lead_id). */
bool fake_amo_set_lead_json(struct fake_amo *fa, int64_t lead_id, const char *json_object);
/* A lead with the usual fields and these values (replaces one of the same id). */
void fake_amo_set_lead(struct fake_amo *fa, int64_t lead_id, int64_t pipeline_id, int64_t status_id,
                       int64_t responsible_user_id);
/* Sets the lead's loss_reason_id (0 = none, null in answers), creating the lead closed as lost (143) if
 * needed. With with=loss_reason the lead embeds the reason of that id from the loss reasons list. */
void fake_amo_set_lead_loss_reason(struct fake_amo *fa, int64_t lead_id, int64_t loss_reason_id);
/* An open task on a lead, as if made in amoCRM. */
void fake_amo_set_task(struct fake_amo *fa, int64_t task_id, int64_t lead_id, const char *text);
/* A call note on a lead: note_type "call_in" or "call_out", params {uniq, duration, source, phone,
 * call_status}. */
void fake_amo_set_call_note(struct fake_amo *fa, int64_t lead_id, int64_t note_id, const char *note_type,
                            long duration_s, int call_status);
/* Any note, as amoCRM answers it (a JSON object; its "id" and "entity_id" are set). */
bool fake_amo_set_note_json(struct fake_amo *fa, int64_t lead_id, int64_t note_id, const char *json_object);

/* The fake's current objects (new references, NULL when there is none), to check what writes did. */
json_t *fake_amo_lead_copy(struct fake_amo *fa, int64_t lead_id);
json_t *fake_amo_task_copy(struct fake_amo *fa, int64_t task_id);
json_t *fake_amo_note_copy(struct fake_amo *fa, int64_t note_id);

/* Pages of the lists hold at most this many items (0, the default: the request's limit, else 50, at most
 * 250, as amoCRM). */
void fake_amo_set_page_size(struct fake_amo *fa, size_t page_size);
/* Writes `_links` hrefs with this base instead of the fake's own URL (a link to another host). */
void fake_amo_set_links_base(struct fake_amo *fa, const char *base);

/* Misbehaviour, each for the next `count` requests (0 turns it off), checked in this order: delay, fail,
 * answer (garbage), rate limit, token. */
/* Waits ms before answering (woken early by fake_amo_stop). */
void fake_amo_delay_next(struct fake_amo *fa, int count, long ms);
/* Answers `status` (a problem+json body; none for 204) with a Retry-After header when retry_after is not
 * NULL ("2" or an HTTP-date). */
void fake_amo_fail_next(struct fake_amo *fa, int count, unsigned status, const char *retry_after);
/* Answers `status` with exactly this body (Content-Type application/json when it starts with '{' or '[', else
 * text/html): a garbled answer, or an error the test words itself. */
void fake_amo_answer_next(struct fake_amo *fa, int count, unsigned status, const char *body);
/* fake_amo_answer_next with 200 (NULL body: an nginx error page). */
void fake_amo_garbage_next(struct fake_amo *fa, int count, const char *body);
/* More than per_second requests within one second get 429 with "Retry-After: 1" (0 turns it off; refused
 * requests do not count). */
void fake_amo_set_rate_limit(struct fake_amo *fa, int per_second);

/* Recorded requests, in arrival order. A record stays valid until fake_amo_clear_requests or fake_amo_stop.
 */
size_t fake_amo_request_count(struct fake_amo *fa);
const struct fake_amo_request *fake_amo_request(struct fake_amo *fa, size_t i);
/* The last one, or NULL. */
const struct fake_amo_request *fake_amo_last_request(struct fake_amo *fa);
/* The body parsed as JSON (a new reference), NULL when it is not JSON. */
json_t *fake_amo_request_json(const struct fake_amo_request *req);
void fake_amo_clear_requests(struct fake_amo *fa);

#endif

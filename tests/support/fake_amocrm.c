/* The fake amoCRM API (see fake_amocrm.h). One thread per connection, so a delayed answer holds up only its
 * own request; one mutex guards all state, and a condition variable lets fake_amo_stop cut delays short. */
#include "fake_amocrm.h"
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY_BYTES  (1024u * 1024u)
#define MAX_RATE_WINDOW 256
#define DEFAULT_PAGE    50
#define MAX_PAGE        250

struct fake_amo {
    struct MHD_Daemon *daemon;
    char url[64];

    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    bool stopping;

    char token[512];
    char links_base[256];
    size_t page_size;
    json_t *pipelines; /* arrays of items */
    json_t *loss_reasons;
    json_t *users;
    json_t *leads; /* objects keyed by the id in decimal */
    json_t *tasks;
    json_t *notes;
    int64_t next_task_id;
    int64_t next_note_id;

    int delay_count;
    long delay_ms;
    int fail_count;
    unsigned fail_status;
    char *fail_retry_after;
    int answer_count;
    unsigned answer_status;
    char *answer_body;
    int rate_limit;
    struct timespec recent[MAX_RATE_WINDOW]; /* arrival times of the last accepted requests, a ring */
    size_t recent_next;
    size_t recent_len;

    struct fake_amo_request **requests;
    size_t request_count;
    size_t request_cap;
};

/* One request on its way in: made by the URI logger, filled while the body arrives. */
struct pending {
    char *uri;
    bool started;
    char *body;
    size_t len;
    size_t cap;
    bool too_big;
};

struct reply {
    unsigned status;
    char *body; /* heap, or NULL for none */
    const char *content_type;
    char retry_after[64];
};

/* ---- small helpers ------------------------------------------------------------------------------------ */

static void copy_str(char *dst, size_t dstlen, const char *src)
{
    snprintf(dst, dstlen, "%s", src ? src : "");
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void id_key(char out[24], int64_t id)
{
    snprintf(out, 24, "%lld", (long long)id);
}

static json_t *load_json(const char *text)
{
    return text ? json_loads(text, 0, NULL) : NULL;
}

static void reply_json_steal(struct reply *r, unsigned status, json_t *doc)
{
    r->status = status;
    r->body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    r->content_type = status >= 400 ? "application/problem+json" : "application/hal+json";
    json_decref(doc);
}

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

static void reply_problem(struct reply *r, unsigned status, const char *detail)
{
    char type[64];
    snprintf(type, sizeof type, "https://httpstatus.es/%u", status);
    reply_json_steal(r, status,
                     json_pack("{s:s, s:s, s:i, s:s}", "title", reason_phrase(status), "type", type, "status",
                               (int)status, "detail", detail));
}

/* amoCRM's 400 for a body that does not validate: the first error of the first item. */
static void reply_invalid(struct reply *r, size_t item, const char *path, const char *code,
                          const char *detail)
{
    char request_id[24];
    snprintf(request_id, sizeof request_id, "%zu", item);
    json_t *doc =
        json_pack("{s:[{s:s, s:[{s:s, s:s, s:s}]}], s:s, s:s, s:i, s:s}", "validation-errors", "request_id",
                  request_id, "errors", "code", code, "path", path, "detail", detail, "title", "Bad Request",
                  "type", "https://httpstatus.es/400", "status", 400, "detail", "Request validation failed");
    reply_json_steal(r, 400, doc);
}

static json_t *link_to(const struct fake_amo *fa, const char *path_query)
{
    char href[1024];
    snprintf(href, sizeof href, "%s%s", fa->links_base[0] ? fa->links_base : fa->url, path_query);
    return json_pack("{s:s}", "href", href);
}

static json_t *self_links(const struct fake_amo *fa, const char *path_query)
{
    return json_pack("{s:o}", "self", link_to(fa, path_query));
}

static struct timespec now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts;
}

static double seconds_between(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* Matches path against a pattern where "{}" stands for a positive decimal id. */
static bool match(const char *path, const char *pattern, int64_t ids[2])
{
    int k = 0;
    while (*pattern != '\0') {
        if (pattern[0] == '{' && pattern[1] == '}') {
            if (*path < '1' || *path > '9' || k >= 2) return false;
            long long v = 0;
            while (*path >= '0' && *path <= '9') {
                if (v > (INT64_MAX - 9) / 10) return false;
                v = v * 10 + (*path++ - '0');
            }
            ids[k++] = v;
            pattern += 2;
        } else if (*path++ != *pattern++) {
            return false;
        }
    }
    return *path == '\0';
}

static bool positive_integer(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0;
}

/* ---- the API ------------------------------------------------------------------------------------------ */

static void reply_list(struct fake_amo *fa, struct MHD_Connection *c, const char *path, const char *key,
                       json_t *items, struct reply *r)
{
    const char *page_arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
    const char *limit_arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    char *end = NULL;
    long page = page_arg ? strtol(page_arg, &end, 10) : 1;
    if (page_arg && (*end != '\0' || page < 1)) {
        reply_problem(r, 400, "page must be a positive integer");
        return;
    }
    long limit = limit_arg ? strtol(limit_arg, &end, 10) : DEFAULT_PAGE;
    if (limit_arg && (*end != '\0' || limit < 1)) {
        reply_problem(r, 400, "limit must be a positive integer");
        return;
    }
    if (limit > MAX_PAGE) limit = MAX_PAGE;
    size_t size = fa->page_size ? fa->page_size : (size_t)limit;
    size_t total = json_array_size(items);
    size_t start = (size_t)(page - 1) * size;
    if (start >= total) {
        r->status = 204;
        return;
    }
    json_t *slice = json_array();
    for (size_t i = start; i < total && i < start + size; i++)
        json_array_append(slice, json_array_get(items, i));
    char self[256], next[256];
    snprintf(self, sizeof self, "%s?page=%ld&limit=%ld", path, page, limit);
    snprintf(next, sizeof next, "%s?page=%ld&limit=%ld", path, page + 1, limit);
    json_t *links = json_pack("{s:o}", "self", link_to(fa, self));
    if (start + size < total) json_object_set_new(links, "next", link_to(fa, next));
    reply_json_steal(r, 200,
                     json_pack("{s:I, s:i, s:o, s:{s:o}}", "_total_items", (json_int_t)total, "_page",
                               (int)page, "_links", links, "_embedded", key, slice));
}

static json_t *find_by_id(json_t *items, int64_t id)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item)
    {
        json_t *v = json_object_get(item, "id");
        if (json_is_integer(v) && json_integer_value(v) == id) return item;
    }
    return NULL;
}

static bool wants(struct MHD_Connection *c, const char *what)
{
    const char *with = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "with");
    if (with == NULL) return false;
    size_t n = strlen(what);
    for (const char *p = with; (p = strstr(p, what)) != NULL; p += n)
        if ((p == with || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return true;
    return false;
}

static void get_lead(struct fake_amo *fa, struct MHD_Connection *c, int64_t lead_id, struct reply *r)
{
    char key[24];
    id_key(key, lead_id);
    json_t *stored = json_object_get(fa->leads, key);
    if (stored == NULL) {
        reply_problem(r, 404, "Lead not found");
        return;
    }
    json_t *lead = json_deep_copy(stored);
    json_t *embedded = json_object_get(lead, "_embedded");
    if (!json_is_object(embedded)) {
        embedded = json_pack("{s:[], s:[]}", "tags", "companies");
        json_object_set_new(lead, "_embedded", embedded);
    }
    json_t *reason_id = json_object_get(lead, "loss_reason_id");
    if (wants(c, "loss_reason") && positive_integer(reason_id)) {
        json_t *reason = find_by_id(fa->loss_reasons, json_integer_value(reason_id));
        if (reason != NULL) json_object_set_new(embedded, "loss_reason", json_pack("[O]", reason));
    }
    reply_json_steal(r, 200, lead);
}

/* A status change must name a status of the pipeline it lands in, when the test has set pipelines. */
static bool status_in_pipeline(struct fake_amo *fa, int64_t pipeline_id, int64_t status_id)
{
    if (json_array_size(fa->pipelines) == 0) return true;
    json_t *pipeline = find_by_id(fa->pipelines, pipeline_id);
    json_t *statuses = json_object_get(json_object_get(pipeline, "_embedded"), "statuses");
    return find_by_id(statuses, status_id) != NULL;
}

static void patch_lead(struct fake_amo *fa, int64_t lead_id, json_t *body, struct reply *r)
{
    char key[24];
    id_key(key, lead_id);
    json_t *lead = json_object_get(fa->leads, key);
    if (lead == NULL) {
        reply_problem(r, 404, "Lead not found");
        return;
    }
    if (!json_is_object(body)) {
        reply_problem(r, 400, "The body must be a lead object");
        return;
    }
    static const char *const id_fields[] = {"status_id", "pipeline_id", "responsible_user_id",
                                            "loss_reason_id", "price"};
    for (size_t i = 0; i < sizeof id_fields / sizeof id_fields[0]; i++) {
        json_t *v = json_object_get(body, id_fields[i]);
        if (v != NULL && !json_is_integer(v) &&
            !(strcmp(id_fields[i], "loss_reason_id") == 0 && json_is_null(v))) {
            reply_invalid(r, 0, id_fields[i], "InvalidType", "This value should be of type int.");
            return;
        }
    }
    json_t *name = json_object_get(body, "name");
    if (name != NULL && !json_is_string(name)) {
        reply_invalid(r, 0, "name", "InvalidType", "This value should be of type string.");
        return;
    }
    json_t *status = json_object_get(body, "status_id");
    if (status != NULL) {
        json_t *pipeline = json_object_get(body, "pipeline_id");
        if (pipeline == NULL) pipeline = json_object_get(lead, "pipeline_id");
        if (!status_in_pipeline(fa, json_integer_value(pipeline), json_integer_value(status))) {
            reply_invalid(r, 0, "status_id", "NotSupportedChoice",
                          "The value you selected is not a valid choice.");
            return;
        }
    }
    static const char *const fields[] = {"status_id",      "pipeline_id", "responsible_user_id",
                                         "loss_reason_id", "price",       "name"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *v = json_object_get(body, fields[i]);
        if (v != NULL) json_object_set(lead, fields[i], v);
    }
    json_int_t now = (json_int_t)time(NULL);
    json_object_set_new(lead, "updated_at", json_integer(now));
    char self[64];
    snprintf(self, sizeof self, "/api/v4/leads/%lld", (long long)lead_id);
    reply_json_steal(r, 200,
                     json_pack("{s:I, s:I, s:o}", "id", (json_int_t)lead_id, "updated_at", now, "_links",
                               self_links(fa, self)));
}

static void add_tasks(struct fake_amo *fa, json_t *body, struct reply *r)
{
    if (!json_is_array(body) || json_array_size(body) == 0) {
        reply_problem(r, 400, "The body must be a non-empty array of tasks");
        return;
    }
    size_t i;
    json_t *task;
    json_array_foreach(body, i, task)
    {
        if (!json_is_object(task)) {
            reply_invalid(r, i, "", "InvalidType", "This value should be an object.");
            return;
        }
        const char *text = json_string_value(json_object_get(task, "text"));
        if (text == NULL || text[0] == '\0') {
            reply_invalid(r, i, "text", "NotBlank", "This value should not be blank.");
            return;
        }
        if (!positive_integer(json_object_get(task, "complete_till"))) {
            reply_invalid(r, i, "complete_till", "InvalidType", "This value should be of type int.");
            return;
        }
        json_t *entity_type = json_object_get(task, "entity_type");
        json_t *entity_id = json_object_get(task, "entity_id");
        if (entity_type != NULL) {
            const char *t = json_string_value(entity_type);
            if (t == NULL ||
                (strcmp(t, "leads") != 0 && strcmp(t, "contacts") != 0 && strcmp(t, "companies") != 0)) {
                reply_invalid(r, i, "entity_type", "NotSupportedChoice",
                              "The value you selected is not a valid choice.");
                return;
            }
            if (!positive_integer(entity_id)) {
                reply_invalid(r, i, "entity_id", "InvalidType", "This value should be of type int.");
                return;
            }
        }
        static const char *const ints[] = {"responsible_user_id", "task_type_id"};
        for (size_t k = 0; k < 2; k++) {
            json_t *v = json_object_get(task, ints[k]);
            if (v != NULL && !json_is_integer(v)) {
                reply_invalid(r, i, ints[k], "InvalidType", "This value should be of type int.");
                return;
            }
        }
    }
    json_t *created = json_array();
    json_int_t now = (json_int_t)time(NULL);
    json_array_foreach(body, i, task)
    {
        int64_t id = fa->next_task_id++;
        json_t *stored = json_deep_copy(task);
        json_object_set_new(stored, "id", json_integer(id));
        json_object_set_new(stored, "is_completed", json_false());
        json_object_set_new(stored, "result", json_array());
        json_object_set_new(stored, "created_at", json_integer(now));
        json_object_set_new(stored, "updated_at", json_integer(now));
        json_object_set_new(stored, "account_id", json_integer(FAKE_AMO_ACCOUNT_ID));
        if (json_object_get(stored, "task_type_id") == NULL)
            json_object_set_new(stored, "task_type_id", json_integer(1));
        char key[24], self[64], request_id[24];
        id_key(key, id);
        json_object_set_new(fa->tasks, key, stored);
        snprintf(self, sizeof self, "/api/v4/tasks/%lld", (long long)id);
        snprintf(request_id, sizeof request_id, "%zu", i);
        json_array_append_new(created, json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "request_id",
                                                 request_id, "_links", self_links(fa, self)));
    }
    reply_json_steal(r, 200,
                     json_pack("{s:o, s:{s:o}}", "_links", self_links(fa, "/api/v4/tasks"), "_embedded",
                               "tasks", created));
}

static void patch_task(struct fake_amo *fa, int64_t task_id, json_t *body, struct reply *r)
{
    char key[24];
    id_key(key, task_id);
    json_t *task = json_object_get(fa->tasks, key);
    if (task == NULL) {
        reply_problem(r, 404, "Task not found");
        return;
    }
    if (!json_is_object(body)) {
        reply_problem(r, 400, "The body must be a task object");
        return;
    }
    json_t *completed = json_object_get(body, "is_completed");
    if (completed != NULL && !json_is_boolean(completed)) {
        reply_invalid(r, 0, "is_completed", "InvalidType", "This value should be of type bool.");
        return;
    }
    json_t *result = json_object_get(body, "result");
    if (result != NULL && !(json_is_object(result) && json_is_string(json_object_get(result, "text")))) {
        reply_invalid(r, 0, "result.text", "InvalidType", "This value should be of type string.");
        return;
    }
    json_t *text = json_object_get(body, "text");
    if (text != NULL && !json_is_string(text)) {
        reply_invalid(r, 0, "text", "InvalidType", "This value should be of type string.");
        return;
    }
    json_object_update(task, body);
    json_int_t now = (json_int_t)time(NULL);
    json_object_set_new(task, "updated_at", json_integer(now));
    char self[64];
    snprintf(self, sizeof self, "/api/v4/tasks/%lld", (long long)task_id);
    reply_json_steal(r, 200,
                     json_pack("{s:I, s:I, s:o}", "id", (json_int_t)task_id, "updated_at", now, "_links",
                               self_links(fa, self)));
}

static void add_notes(struct fake_amo *fa, int64_t lead_id, json_t *body, struct reply *r)
{
    if (!json_is_array(body) || json_array_size(body) == 0) {
        reply_problem(r, 400, "The body must be a non-empty array of notes");
        return;
    }
    size_t i;
    json_t *note;
    json_array_foreach(body, i, note)
    {
        if (!json_is_object(note)) {
            reply_invalid(r, i, "", "InvalidType", "This value should be an object.");
            return;
        }
        const char *type = json_string_value(json_object_get(note, "note_type"));
        if (type == NULL) {
            reply_invalid(r, i, "note_type", "NotBlank", "This value should not be blank.");
            return;
        }
        json_t *params = json_object_get(note, "params");
        if (params != NULL && !json_is_object(params)) {
            reply_invalid(r, i, "params", "InvalidType", "This value should be an object.");
            return;
        }
        const char *text = json_string_value(json_object_get(params, "text"));
        if (strcmp(type, "common") == 0 && (text == NULL || text[0] == '\0')) {
            reply_invalid(r, i, "params.text", "NotBlank", "This value should not be blank.");
            return;
        }
    }
    json_t *created = json_array();
    json_int_t now = (json_int_t)time(NULL);
    json_array_foreach(body, i, note)
    {
        int64_t id = fa->next_note_id++;
        json_t *stored = json_deep_copy(note);
        json_object_set_new(stored, "id", json_integer(id));
        json_object_set_new(stored, "entity_id", json_integer(lead_id));
        json_object_set_new(stored, "created_at", json_integer(now));
        json_object_set_new(stored, "updated_at", json_integer(now));
        json_object_set_new(stored, "account_id", json_integer(FAKE_AMO_ACCOUNT_ID));
        char key[24], self[96], request_id[24];
        id_key(key, id);
        json_object_set_new(fa->notes, key, stored);
        snprintf(self, sizeof self, "/api/v4/leads/%lld/notes/%lld", (long long)lead_id, (long long)id);
        snprintf(request_id, sizeof request_id, "%zu", i);
        json_array_append_new(created, json_pack("{s:I, s:I, s:s, s:o}", "id", (json_int_t)id, "entity_id",
                                                 (json_int_t)lead_id, "request_id", request_id, "_links",
                                                 self_links(fa, self)));
    }
    char self[64];
    snprintf(self, sizeof self, "/api/v4/leads/%lld/notes", (long long)lead_id);
    reply_json_steal(
        r, 200, json_pack("{s:o, s:{s:o}}", "_links", self_links(fa, self), "_embedded", "notes", created));
}

static void get_note(struct fake_amo *fa, int64_t lead_id, int64_t note_id, struct reply *r)
{
    char key[24];
    id_key(key, note_id);
    json_t *note = json_object_get(fa->notes, key);
    json_t *entity = json_object_get(note, "entity_id");
    if (note == NULL || !json_is_integer(entity) || json_integer_value(entity) != lead_id) {
        reply_problem(r, 404, "Note not found");
        return;
    }
    reply_json_steal(r, 200, json_deep_copy(note));
}

/* Called with the lock held. */
static void route(struct fake_amo *fa, struct MHD_Connection *c, const char *method, const char *path,
                  const struct pending *p, struct reply *r)
{
    int64_t ids[2] = {0, 0};
    bool get = strcmp(method, "GET") == 0, patch = strcmp(method, "PATCH") == 0,
         post = strcmp(method, "POST") == 0;
    json_t *body = NULL;
    if ((patch || post)) {
        json_error_t err;
        body = json_loadb(p->body ? p->body : "", p->len, 0, &err);
        if (body == NULL) {
            char detail[256];
            snprintf(detail, sizeof detail, "The body is not JSON: %s", err.text);
            {
                reply_problem(r, 400, detail);
                return;
            }
        }
    }
    if (strcmp(path, "/api/v4/leads/pipelines") == 0) {
        if (get) reply_list(fa, c, path, "pipelines", fa->pipelines, r);
    } else if (strcmp(path, "/api/v4/leads/loss_reasons") == 0) {
        if (get) reply_list(fa, c, path, "loss_reasons", fa->loss_reasons, r);
    } else if (strcmp(path, "/api/v4/users") == 0) {
        if (get) reply_list(fa, c, path, "users", fa->users, r);
    } else if (strcmp(path, "/api/v4/tasks") == 0) {
        if (post) add_tasks(fa, body, r);
    } else if (match(path, "/api/v4/tasks/{}", ids)) {
        if (patch) patch_task(fa, ids[0], body, r);
    } else if (match(path, "/api/v4/leads/{}", ids)) {
        if (get) get_lead(fa, c, ids[0], r);
        if (patch) patch_lead(fa, ids[0], body, r);
    } else if (match(path, "/api/v4/leads/{}/notes", ids)) {
        if (post) add_notes(fa, ids[0], body, r);
    } else if (match(path, "/api/v4/leads/{}/notes/{}", ids)) {
        if (get) get_note(fa, ids[0], ids[1], r);
    } else {
        reply_problem(r, 404, "No such route");
    }
    if (r->status == 0) reply_problem(r, 405, "Method not allowed");
    json_decref(body);
}

/* ---- the daemon --------------------------------------------------------------------------------------- */

static void record(struct fake_amo *fa, struct MHD_Connection *c, const char *method, const struct pending *p)
{
    struct fake_amo_request *req = calloc(1, sizeof *req);
    if (req == NULL) return;
    copy_str(req->method, sizeof req->method, method);
    const char *uri = p->uri ? p->uri : "";
    size_t path_len = strcspn(uri, "?");
    snprintf(req->path, sizeof req->path, "%.*s", (int)path_len, uri);
    copy_str(req->query, sizeof req->query, uri[path_len] == '?' ? uri + path_len + 1 : "");
    copy_str(req->authorization, sizeof req->authorization,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    copy_str(req->content_type, sizeof req->content_type,
             MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
    req->body_len = p->too_big ? 0 : p->len;
    req->body = malloc(req->body_len + 1);
    if (req->body == NULL) {
        free(req);
        return;
    }
    if (req->body_len) memcpy(req->body, p->body, req->body_len);
    req->body[req->body_len] = '\0';
    if (fa->request_count == fa->request_cap) {
        size_t cap = fa->request_cap ? fa->request_cap * 2 : 32;
        struct fake_amo_request **grown = realloc(fa->requests, cap * sizeof(struct fake_amo_request *));
        if (grown == NULL) {
            free(req->body);
            free(req);
            return;
        }
        fa->requests = grown;
        fa->request_cap = cap;
    }
    fa->requests[fa->request_count++] = req;
}

/* Called with the lock held: true when this request is one too many in the last second. */
static bool over_rate_limit(struct fake_amo *fa)
{
    if (fa->rate_limit <= 0) return false;
    size_t window = (size_t)fa->rate_limit < MAX_RATE_WINDOW ? (size_t)fa->rate_limit : MAX_RATE_WINDOW;
    struct timespec now = now_monotonic();
    if (fa->recent_len >= window) {
        size_t oldest = (fa->recent_next + MAX_RATE_WINDOW - window) % MAX_RATE_WINDOW;
        if (seconds_between(fa->recent[oldest], now) < 1.0) return true;
    }
    fa->recent[fa->recent_next] = now;
    fa->recent_next = (fa->recent_next + 1) % MAX_RATE_WINDOW;
    if (fa->recent_len < MAX_RATE_WINDOW) fa->recent_len++;
    return false;
}

/* Called with the lock held; returns with it held. */
static void wait_ms(struct fake_amo *fa, long ms)
{
    struct timespec deadline = now_monotonic();
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!fa->stopping && seconds_between(now_monotonic(), deadline) > 0)
        pthread_cond_timedwait(&fa->wake, &fa->lock, &deadline);
}

static bool token_ok(struct fake_amo *fa, struct MHD_Connection *c)
{
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    static const char prefix[] = "Bearer ";
    return auth != NULL && strncmp(auth, prefix, sizeof prefix - 1) == 0 &&
           strcmp(auth + sizeof prefix - 1, fa->token) == 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r)
{
    size_t len = r->body ? strlen(r->body) : 0;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, r->body ? r->body : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (resp == NULL) return MHD_NO;
    if (r->body && r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->retry_after[0]) MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
    enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct pending *p = calloc(1, sizeof *p);
    if (p != NULL) p->uri = strdup(uri ? uri : "");
    return p;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct pending *p = *req_cls;
    if (p == NULL) return;
    free(p->uri);
    free(p->body);
    free(p);
    *req_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    (void)url;
    (void)version;
    struct fake_amo *fa = cls;
    struct pending *p = *req_cls;
    if (p == NULL) return MHD_NO;
    if (!p->started) {
        p->started = true;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (p->too_big || n > MAX_BODY_BYTES - p->len) {
            p->too_big = true;
            return MHD_YES;
        }
        if (p->len + n + 1 > p->cap) {
            size_t cap = p->cap ? p->cap : 1024;
            while (cap < p->len + n + 1)
                cap *= 2;
            char *grown = realloc(p->body, cap);
            if (grown == NULL) return MHD_NO;
            p->body = grown;
            p->cap = cap;
        }
        memcpy(p->body + p->len, upload_data, n);
        p->len += n;
        p->body[p->len] = '\0';
        return MHD_YES;
    }

    struct reply r = {0};
    pthread_mutex_lock(&fa->lock);
    record(fa, c, method, p);
    if (fa->delay_count > 0) {
        fa->delay_count--;
        wait_ms(fa, fa->delay_ms);
    }
    if (fa->fail_count > 0) {
        fa->fail_count--;
        if (fa->fail_status == 204 || fa->fail_status == 304)
            r.status = fa->fail_status;
        else
            reply_problem(&r, fa->fail_status, "Injected failure");
        copy_str(r.retry_after, sizeof r.retry_after, fa->fail_retry_after);
    } else if (fa->answer_count > 0) {
        fa->answer_count--;
        r.status = fa->answer_status;
        r.body = strdup(fa->answer_body ? fa->answer_body : "");
        r.content_type = fa->answer_body && (fa->answer_body[0] == '{' || fa->answer_body[0] == '[')
                             ? "application/json"
                             : "text/html";
    } else if (over_rate_limit(fa)) {
        reply_problem(&r, 429, "Too many requests");
        copy_str(r.retry_after, sizeof r.retry_after, "1");
    } else if (!token_ok(fa, c)) {
        reply_problem(&r, 401, "Unauthorized");
    } else if (p->too_big) {
        reply_problem(&r, 413, "Request body too large");
    } else {
        const char *uri = p->uri ? p->uri : "";
        char path[512];
        snprintf(path, sizeof path, "%.*s", (int)strcspn(uri, "?"), uri);
        route(fa, c, method, path, p, &r);
    }
    pthread_mutex_unlock(&fa->lock);
    enum MHD_Result ret = send_reply(c, &r);
    free(r.body);
    return ret;
}

struct fake_amo *fake_amo_start(void)
{
    struct fake_amo *fa = calloc(1, sizeof *fa);
    if (fa == NULL) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&fa->wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&fa->lock, NULL);
    copy_str(fa->token, sizeof fa->token, FAKE_AMO_TOKEN);
    fa->pipelines = json_array();
    fa->loss_reasons = json_array();
    fa->users = json_array();
    fa->leads = json_object();
    fa->tasks = json_object();
    fa->notes = json_object();
    fa->next_task_id = FAKE_AMO_FIRST_TASK_ID;
    fa->next_note_id = FAKE_AMO_FIRST_NOTE_ID;

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fa->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                         on_request, fa, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_URI_LOG_CALLBACK, on_uri, fa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                         fa, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        fa->daemon ? MHD_get_daemon_info(fa->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (info == NULL || info->port == 0) {
        fake_amo_stop(fa);
        return NULL;
    }
    snprintf(fa->url, sizeof fa->url, "http://127.0.0.1:%u", (unsigned)info->port);
    return fa;
}

const char *fake_amo_url(const struct fake_amo *fa)
{
    return fa->url;
}

void fake_amo_clear_requests(struct fake_amo *fa)
{
    pthread_mutex_lock(&fa->lock);
    for (size_t i = 0; i < fa->request_count; i++) {
        free(fa->requests[i]->body);
        free(fa->requests[i]);
    }
    fa->request_count = 0;
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_stop(struct fake_amo *fa)
{
    if (fa == NULL) return;
    pthread_mutex_lock(&fa->lock);
    fa->stopping = true;
    pthread_cond_broadcast(&fa->wake);
    pthread_mutex_unlock(&fa->lock);
    if (fa->daemon != NULL) MHD_stop_daemon(fa->daemon);
    fake_amo_clear_requests(fa);
    free(fa->requests);
    json_decref(fa->pipelines);
    json_decref(fa->loss_reasons);
    json_decref(fa->users);
    json_decref(fa->leads);
    json_decref(fa->tasks);
    json_decref(fa->notes);
    free(fa->fail_retry_after);
    free(fa->answer_body);
    pthread_cond_destroy(&fa->wake);
    pthread_mutex_destroy(&fa->lock);
    free(fa);
}

void fake_amo_set_token(struct fake_amo *fa, const char *token)
{
    pthread_mutex_lock(&fa->lock);
    copy_str(fa->token, sizeof fa->token, token);
    pthread_mutex_unlock(&fa->lock);
}

static bool set_list(struct fake_amo *fa, json_t **slot, const char *json_array)
{
    json_t *items = load_json(json_array);
    if (!json_is_array(items)) {
        json_decref(items);
        return false;
    }
    pthread_mutex_lock(&fa->lock);
    json_decref(*slot);
    *slot = items;
    pthread_mutex_unlock(&fa->lock);
    return true;
}

bool fake_amo_set_pipelines_json(struct fake_amo *fa, const char *json_array)
{
    return set_list(fa, &fa->pipelines, json_array);
}

bool fake_amo_set_loss_reasons_json(struct fake_amo *fa, const char *json_array)
{
    return set_list(fa, &fa->loss_reasons, json_array);
}

bool fake_amo_set_users_json(struct fake_amo *fa, const char *json_array)
{
    return set_list(fa, &fa->users, json_array);
}

/* Called with the lock held. */
static void put_object(json_t *map, int64_t id, json_t *obj_steal)
{
    char key[24];
    id_key(key, id);
    json_object_set_new(obj_steal, "id", json_integer(id));
    json_object_set_new(map, key, obj_steal);
}

bool fake_amo_set_lead_json(struct fake_amo *fa, int64_t lead_id, const char *json_object)
{
    json_t *lead = load_json(json_object);
    if (!json_is_object(lead)) {
        json_decref(lead);
        return false;
    }
    pthread_mutex_lock(&fa->lock);
    put_object(fa->leads, lead_id, lead);
    pthread_mutex_unlock(&fa->lock);
    return true;
}

static json_t *lead_new(const struct fake_amo *fa, int64_t lead_id, int64_t pipeline_id, int64_t status_id,
                        int64_t responsible_user_id)
{
    char name[48], self[64];
    snprintf(name, sizeof name, "Сделка #%lld", (long long)lead_id);
    snprintf(self, sizeof self, "/api/v4/leads/%lld", (long long)lead_id);
    json_int_t now = (json_int_t)time(NULL);
    return json_pack("{s:I, s:s, s:i, s:I, s:i, s:I, s:I, s:n, s:i, s:i, s:I, s:I, s:n, s:n, s:b, s:n, s:i, "
                     "s:o, s:{s:[], s:[]}}",
                     "id", (json_int_t)lead_id, "name", name, "price", 0, "responsible_user_id",
                     (json_int_t)responsible_user_id, "group_id", 0, "status_id", (json_int_t)status_id,
                     "pipeline_id", (json_int_t)pipeline_id, "loss_reason_id", "created_by", 0, "updated_by",
                     0, "created_at", now, "updated_at", now, "closed_at", "closest_task_at", "is_deleted", 0,
                     "custom_fields_values", "account_id", FAKE_AMO_ACCOUNT_ID, "_links",
                     self_links(fa, self), "_embedded", "tags", "companies");
}

void fake_amo_set_lead(struct fake_amo *fa, int64_t lead_id, int64_t pipeline_id, int64_t status_id,
                       int64_t responsible_user_id)
{
    pthread_mutex_lock(&fa->lock);
    put_object(fa->leads, lead_id, lead_new(fa, lead_id, pipeline_id, status_id, responsible_user_id));
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_set_lead_loss_reason(struct fake_amo *fa, int64_t lead_id, int64_t loss_reason_id)
{
    char key[24];
    id_key(key, lead_id);
    pthread_mutex_lock(&fa->lock);
    json_t *lead = json_object_get(fa->leads, key);
    if (lead == NULL) {
        lead = lead_new(fa, lead_id, 0, 143, 0);
        put_object(fa->leads, lead_id, lead);
    }
    json_object_set_new(lead, "loss_reason_id",
                        loss_reason_id > 0 ? json_integer(loss_reason_id) : json_null());
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_set_task(struct fake_amo *fa, int64_t task_id, int64_t lead_id, const char *text)
{
    json_int_t now = (json_int_t)time(NULL);
    pthread_mutex_lock(&fa->lock);
    put_object(fa->tasks, task_id,
               json_pack("{s:s, s:I, s:s, s:i, s:i, s:b, s:[], s:I, s:I, s:I, s:i}", "text", text ? text : "",
                         "entity_id", (json_int_t)lead_id, "entity_type", "leads", "task_type_id", 1,
                         "responsible_user_id", 0, "is_completed", 0, "result", "complete_till", now + 86400,
                         "created_at", now, "updated_at", now, "account_id", FAKE_AMO_ACCOUNT_ID));
    pthread_mutex_unlock(&fa->lock);
}

static void put_note(struct fake_amo *fa, int64_t lead_id, int64_t note_id, json_t *note_steal)
{
    char self[96];
    snprintf(self, sizeof self, "/api/v4/leads/%lld/notes/%lld", (long long)lead_id, (long long)note_id);
    json_object_set_new(note_steal, "entity_id", json_integer(lead_id));
    if (json_object_get(note_steal, "_links") == NULL)
        json_object_set_new(note_steal, "_links", self_links(fa, self));
    put_object(fa->notes, note_id, note_steal);
}

void fake_amo_set_call_note(struct fake_amo *fa, int64_t lead_id, int64_t note_id, const char *note_type,
                            long duration_s, int call_status)
{
    json_int_t now = (json_int_t)time(NULL);
    char uniq[48];
    snprintf(uniq, sizeof uniq, "call-%lld", (long long)note_id);
    pthread_mutex_lock(&fa->lock);
    put_note(fa, lead_id, note_id,
             json_pack("{s:i, s:i, s:I, s:I, s:i, s:i, s:s, s:{s:s, s:I, s:s, s:s, s:s, s:i}, s:i}",
                       "created_by", 0, "updated_by", 0, "created_at", now, "updated_at", now,
                       "responsible_user_id", 0, "group_id", 0, "note_type",
                       note_type ? note_type : "call_in", "params", "uniq", uniq, "duration",
                       (json_int_t)duration_s, "source", "fake telephony", "link", "", "phone",
                       "+79990000000", "call_status", call_status, "account_id", FAKE_AMO_ACCOUNT_ID));
    pthread_mutex_unlock(&fa->lock);
}

bool fake_amo_set_note_json(struct fake_amo *fa, int64_t lead_id, int64_t note_id, const char *json_object)
{
    json_t *note = load_json(json_object);
    if (!json_is_object(note)) {
        json_decref(note);
        return false;
    }
    pthread_mutex_lock(&fa->lock);
    put_note(fa, lead_id, note_id, note);
    pthread_mutex_unlock(&fa->lock);
    return true;
}

static json_t *copy_of(struct fake_amo *fa, json_t *map, int64_t id)
{
    char key[24];
    id_key(key, id);
    pthread_mutex_lock(&fa->lock);
    json_t *copy = json_deep_copy(json_object_get(map, key));
    pthread_mutex_unlock(&fa->lock);
    return copy;
}

json_t *fake_amo_lead_copy(struct fake_amo *fa, int64_t lead_id)
{
    return copy_of(fa, fa->leads, lead_id);
}

json_t *fake_amo_task_copy(struct fake_amo *fa, int64_t task_id)
{
    return copy_of(fa, fa->tasks, task_id);
}

json_t *fake_amo_note_copy(struct fake_amo *fa, int64_t note_id)
{
    return copy_of(fa, fa->notes, note_id);
}

void fake_amo_set_page_size(struct fake_amo *fa, size_t page_size)
{
    pthread_mutex_lock(&fa->lock);
    fa->page_size = page_size;
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_set_links_base(struct fake_amo *fa, const char *base)
{
    pthread_mutex_lock(&fa->lock);
    copy_str(fa->links_base, sizeof fa->links_base, base);
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_delay_next(struct fake_amo *fa, int count, long ms)
{
    pthread_mutex_lock(&fa->lock);
    fa->delay_count = count;
    fa->delay_ms = ms;
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_fail_next(struct fake_amo *fa, int count, unsigned status, const char *retry_after)
{
    pthread_mutex_lock(&fa->lock);
    fa->fail_count = count;
    fa->fail_status = status;
    free(fa->fail_retry_after);
    fa->fail_retry_after = dup_or_null(retry_after);
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_answer_next(struct fake_amo *fa, int count, unsigned status, const char *body)
{
    pthread_mutex_lock(&fa->lock);
    fa->answer_count = count;
    fa->answer_status = status;
    free(fa->answer_body);
    fa->answer_body = dup_or_null(body);
    pthread_mutex_unlock(&fa->lock);
}

void fake_amo_garbage_next(struct fake_amo *fa, int count, const char *body)
{
    fake_amo_answer_next(fa, count, 200,
                         body ? body
                              : "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                                "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                                "</body>\r\n</html>\r\n");
}

void fake_amo_set_rate_limit(struct fake_amo *fa, int per_second)
{
    pthread_mutex_lock(&fa->lock);
    fa->rate_limit = per_second;
    fa->recent_len = 0;
    fa->recent_next = 0;
    pthread_mutex_unlock(&fa->lock);
}

size_t fake_amo_request_count(struct fake_amo *fa)
{
    pthread_mutex_lock(&fa->lock);
    size_t n = fa->request_count;
    pthread_mutex_unlock(&fa->lock);
    return n;
}

const struct fake_amo_request *fake_amo_request(struct fake_amo *fa, size_t i)
{
    pthread_mutex_lock(&fa->lock);
    const struct fake_amo_request *req = i < fa->request_count ? fa->requests[i] : NULL;
    pthread_mutex_unlock(&fa->lock);
    return req;
}

const struct fake_amo_request *fake_amo_last_request(struct fake_amo *fa)
{
    pthread_mutex_lock(&fa->lock);
    const struct fake_amo_request *req = fa->request_count ? fa->requests[fa->request_count - 1] : NULL;
    pthread_mutex_unlock(&fa->lock);
    return req;
}

json_t *fake_amo_request_json(const struct fake_amo_request *req)
{
    return req ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
}

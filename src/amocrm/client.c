/* The amoCRM REST API v4 client over libcurl (see amocrm_client.h). Every public function makes its own easy
 * handle, so there is no shared state between calls or threads. Answers are read through small field tables
 * (declare, then parse once); any answer that does not fit them is AMO_BAD with the place that did not fit.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "salesops/amocrm_client.h"

#define AMO_MAX_ANSWER_BYTES ((size_t)32 * 1024 * 1024)
/* A runaway `_links.next` chain ends here rather than never. */
#define AMO_MAX_PAGES        1000
#define AMO_USERS_PAGE_LIMIT 250

const char *amo_outcome_name(enum amo_outcome outcome)
{
    switch (outcome) {
    case AMO_OK:
        return "ok";
    case AMO_RETRY:
        return "retry";
    case AMO_AUTH:
        return "auth";
    case AMO_NOT_FOUND:
        return "not_found";
    case AMO_BAD:
        return "bad";
    }
    return "unknown";
}

/* ---- results ---------------------------------------------------------------------------------------- */

static void result_reset(struct amo_result *res)
{
    memset(res, 0, sizeof *res);
    res->outcome = AMO_OK;
}

static enum amo_outcome fail(struct amo_result *res, enum amo_outcome outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum amo_outcome fail(struct amo_result *res, enum amo_outcome outcome, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    res->outcome = outcome;
    return outcome;
}

/* The error text is built from what the server said and what curl said; neither should ever hold the token,
 * but a proxy or a hostile server could echo it, so it is cut out here whatever its source. */
static void scrub_token(struct amo_result *res, const char *token)
{
    if (token == NULL || token[0] == '\0') return;
    size_t tlen = strlen(token);
    static const char mask[] = "[token]";
    char out[sizeof res->error];
    size_t o = 0;
    const char *s = res->error;
    while (*s != '\0' && o + 1 < sizeof out) {
        if (strncmp(s, token, tlen) == 0) {
            for (size_t i = 0; mask[i] != '\0' && o + 1 < sizeof out; i++)
                out[o++] = mask[i];
            s += tlen;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    memcpy(res->error, out, o + 1);
}

/* What the server said goes into the error as one line. */
static void flatten(struct amo_result *res)
{
    for (char *s = res->error; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = ' ';
}

/* Every public function ends here: the outcome is mirrored into res and the error scrubbed. */
static enum amo_outcome finish(const struct amo_conn *conn, struct amo_result *res, enum amo_outcome outcome)
{
    res->outcome = outcome;
    if (outcome == AMO_OK) res->error[0] = '\0';
    if (conn != NULL) scrub_token(res, conn->access_token);
    flatten(res);
    return outcome;
}

/* ---- one HTTP exchange ------------------------------------------------------------------------------ */

struct answer_buffer {
    char *data;
    size_t len;
    size_t cap;
    bool too_big;
};

struct exchange {
    const struct amo_conn *conn;
    struct amo_result *res;
    CURL *curl;
    char *auth_header; /* "Authorization: Bearer ..." */
    char label[160];   /* "GET /api/v4/users?limit=250": what errors are about; never the base URL */
    struct answer_buffer answer;
    double retry_after_s;
    char curl_error[CURL_ERROR_SIZE];
};

static size_t on_answer_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct answer_buffer *b = userdata;
    size_t n = size * nmemb;
    if (n > AMO_MAX_ANSWER_BYTES - b->len) {
        b->too_big = true;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (grown == NULL) return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* Retry-After is delta-seconds or an HTTP-date. Headers of every answer on the way (100 Continue) pass
 * here, so a new status line starts over. */
static size_t on_answer_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct exchange *x = userdata;
    size_t n = size * nmemb;
    static const char name[] = "Retry-After:";
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        x->retry_after_s = 0;
    } else if (n > sizeof name - 1 && strncasecmp(ptr, name, sizeof name - 1) == 0) {
        char value[96];
        size_t start = sizeof name - 1;
        while (start < n && (ptr[start] == ' ' || ptr[start] == '\t'))
            start++;
        size_t end = n;
        while (end > start && (ptr[end - 1] == '\r' || ptr[end - 1] == '\n' || ptr[end - 1] == ' '))
            end--;
        size_t vlen = end - start;
        if (vlen == 0 || vlen >= sizeof value) return n;
        memcpy(value, ptr + start, vlen);
        value[vlen] = '\0';
        if (strspn(value, "0123456789") == vlen) {
            x->retry_after_s = strtod(value, NULL);
        } else {
            time_t when = curl_getdate(value, NULL);
            if (when != (time_t)-1) {
                double delta = difftime(when, time(NULL));
                x->retry_after_s = delta > 0 ? delta : 0;
            }
        }
    }
    return n;
}

static bool has_control_chars(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static bool exchange_open(struct exchange *x, const struct amo_conn *conn, struct amo_result *res)
{
    memset(x, 0, sizeof *x);
    x->conn = conn;
    x->res = res;
    if (conn == NULL || conn->base_url == NULL || conn->base_url[0] == '\0') {
        fail(res, AMO_BAD, "amoCRM base_url is not set");
        return false;
    }
    if (strncmp(conn->base_url, "https://", 8) != 0 && strncmp(conn->base_url, "http://", 7) != 0) {
        fail(res, AMO_BAD, "amoCRM base_url must start with https:// or http://");
        return false;
    }
    if (conn->access_token == NULL || conn->access_token[0] == '\0') {
        fail(res, AMO_AUTH, "amoCRM access token is not set");
        return false;
    }
    /* A line break in the token would let it write headers of its own. */
    if (has_control_chars(conn->access_token)) {
        fail(res, AMO_AUTH, "amoCRM access token has control characters");
        return false;
    }
    static const char prefix[] = "Authorization: Bearer ";
    size_t len = sizeof prefix + strlen(conn->access_token);
    x->auth_header = malloc(len);
    x->curl = curl_easy_init();
    if (x->auth_header == NULL || x->curl == NULL) {
        fail(res, AMO_RETRY, "out of memory");
        return false;
    }
    snprintf(x->auth_header, len, "%s%s", prefix, conn->access_token);
    return true;
}

static void wipe(char *s)
{
    if (s != NULL) explicit_bzero(s, strlen(s));
}

static void exchange_close(struct exchange *x)
{
    if (x->curl != NULL) curl_easy_cleanup(x->curl);
    wipe(x->auth_header);
    free(x->auth_header);
    free(x->answer.data);
    memset(x, 0, sizeof *x);
}

static enum amo_outcome outcome_of_status(long status)
{
    if (status == 401 || status == 403) return AMO_AUTH;
    if (status == 404) return AMO_NOT_FOUND;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) return AMO_RETRY;
    return AMO_BAD;
}

/* Transport failures are worth retrying unless they say the configuration itself is wrong. */
static enum amo_outcome outcome_of_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_WRITE_ERROR:
        return AMO_BAD;
    default:
        return AMO_RETRY;
    }
}

/* For an error answer: amoCRM's problem+json title and detail, and the first validation error. */
static void describe_problem(const struct answer_buffer *b, char *out, size_t outlen)
{
    out[0] = '\0';
    if (b->len == 0) return;
    json_t *doc = json_loadb(b->data, b->len, 0, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return;
    }
    const char *title = json_string_value(json_object_get(doc, "title"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    json_t *verr = json_array_get(json_object_get(doc, "validation-errors"), 0);
    json_t *first = json_array_get(json_object_get(verr, "errors"), 0);
    const char *vpath = json_string_value(json_object_get(first, "path"));
    const char *vdetail = json_string_value(json_object_get(first, "detail"));
    int n = snprintf(out, outlen, "%s%s%s", title ? title : "", title && detail ? ": " : "",
                     detail ? detail : "");
    if (n >= 0 && (size_t)n < outlen && vdetail != NULL)
        snprintf(out + n, outlen - (size_t)n, "%s%s%s%s", n > 0 ? "; " : "", vpath ? vpath : "",
                 vpath ? ": " : "", vdetail);
    json_decref(doc);
}

/* One request to base_url + path_query. On AMO_OK *answer is the parsed JSON, or NULL when the answer had no
 * body (204); a 2xx answer that is not JSON is AMO_BAD. */
static enum amo_outcome exchange_do(struct exchange *x, const char *method, const char *path_query,
                                    const json_t *body, json_t **answer)
{
    struct amo_result *res = x->res;
    *answer = NULL;
    res->status = 0;
    res->retry_after_s = 0;
    x->retry_after_s = 0;
    x->answer.len = 0;
    x->answer.too_big = false;
    x->curl_error[0] = '\0';
    snprintf(x->label, sizeof x->label, "%s %s", method, path_query);

    const char *base = x->conn->base_url;
    size_t base_len = strlen(base);
    while (base_len > 0 && base[base_len - 1] == '/')
        base_len--;
    size_t url_len = base_len + strlen(path_query) + 1;
    char *url = malloc(url_len);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *headers = NULL, *grown;
    const char *header_lines[] = {x->auth_header, "Accept: application/json", "User-Agent: salesops",
                                  "Expect:", body ? "Content-Type: application/json" : NULL};
    enum amo_outcome outcome = AMO_RETRY;
    if (url == NULL || (body != NULL && payload == NULL)) goto out_of_memory;
    snprintf(url, url_len, "%.*s%s", (int)base_len, base, path_query);
    for (size_t i = 0; i < sizeof header_lines / sizeof header_lines[0]; i++) {
        if (header_lines[i] == NULL) continue;
        grown = curl_slist_append(headers, header_lines[i]);
        if (grown == NULL) goto out_of_memory;
        headers = grown;
    }

    long timeout_ms = x->conn->timeout_ms > 0 ? x->conn->timeout_ms : AMO_DEFAULT_TIMEOUT_MS;
    CURL *c = x->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect could carry the token elsewhere */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->curl_error);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x->answer);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_answer_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(payload ? strlen(payload) : 0));
    }

    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    res->status = status;
    res->retry_after_s = x->retry_after_s;
    if (rc != CURLE_OK) {
        if (x->answer.too_big)
            outcome = fail(res, AMO_BAD, "%s: answer larger than %zu bytes", x->label, AMO_MAX_ANSWER_BYTES);
        else
            outcome = fail(res, outcome_of_curl(rc), "%s: %s", x->label,
                           x->curl_error[0] ? x->curl_error : curl_easy_strerror(rc));
        goto out;
    }
    if (status < 200 || status > 299) {
        char problem[160];
        describe_problem(&x->answer, problem, sizeof problem);
        outcome = fail(res, outcome_of_status(status), "%s: HTTP %ld%s%s%s", x->label, status,
                       problem[0] ? " (" : "", problem, problem[0] ? ")" : "");
        goto out;
    }
    if (status == 204 || x->answer.len == 0) {
        outcome = AMO_OK;
        goto out;
    }
    json_error_t jerr;
    *answer = json_loadb(x->answer.data, x->answer.len, 0, &jerr);
    if (*answer == NULL) {
        outcome = fail(res, AMO_BAD, "%s: HTTP %ld answer is not JSON (%s at line %d column %d)", x->label,
                       status, jerr.text, jerr.line, jerr.column);
        goto out;
    }
    outcome = AMO_OK;
    goto out;
out_of_memory:
    outcome = fail(res, AMO_RETRY, "%s: out of memory", x->label);
out:
    for (struct curl_slist *h = headers; h != NULL; h = h->next)
        wipe(h->data);
    curl_slist_free_all(headers);
    free(payload);
    free(url);
    res->outcome = outcome;
    return outcome;
}

/* ---- reading answers through field tables ----------------------------------------------------------- */

enum field_kind {
    FIELD_ID,             /* integer > 0 into int64_t */
    FIELD_INT,            /* integer in int range into int */
    FIELD_STRING,         /* string, copied into char * */
    FIELD_STRING_OR_NULL, /* string, or null or absent as "" */
    FIELD_BOOL,           /* true or false into bool */
};

struct field {
    const char *path; /* dotted: "rights.is_active" */
    enum field_kind kind;
    size_t offset;
};

static json_t *lookup(json_t *value, const char *path)
{
    char segment[64];
    while (value != NULL && *path != '\0') {
        size_t n = strcspn(path, ".");
        if (n >= sizeof segment) return NULL;
        memcpy(segment, path, n);
        segment[n] = '\0';
        value = json_object_get(value, segment);
        path += n;
        if (*path == '.') path++;
    }
    return value;
}

/* Fills out (a zeroed struct) from obj; where names obj in errors ("users[2]"). Strings already copied stay
 * in out for its free function when this fails. */
static bool read_fields(const struct exchange *x, json_t *obj, const char *where, const struct field *fields,
                        size_t field_count, void *out)
{
    if (!json_is_object(obj)) {
        fail(x->res, AMO_BAD, "%s: %s is not an object", x->label, where);
        return false;
    }
    for (size_t i = 0; i < field_count; i++) {
        const struct field *f = &fields[i];
        json_t *v = lookup(obj, f->path);
        char *dest = (char *)out + f->offset;
        const char *expected = NULL;
        switch (f->kind) {
        case FIELD_ID:
            if (!json_is_integer(v) || json_integer_value(v) <= 0) {
                expected = "a positive integer";
                break;
            }
            *(int64_t *)(void *)dest = (int64_t)json_integer_value(v);
            break;
        case FIELD_INT:
            if (!json_is_integer(v) || json_integer_value(v) < INT_MIN || json_integer_value(v) > INT_MAX) {
                expected = "an integer";
                break;
            }
            *(int *)(void *)dest = (int)json_integer_value(v);
            break;
        case FIELD_STRING:
        case FIELD_STRING_OR_NULL: {
            const char *s = json_string_value(v);
            if (s == NULL && f->kind == FIELD_STRING_OR_NULL && (v == NULL || json_is_null(v))) s = "";
            if (s == NULL) {
                expected = "a string";
                break;
            }
            char *copy = strdup(s);
            if (copy == NULL) {
                fail(x->res, AMO_RETRY, "%s: out of memory", x->label);
                return false;
            }
            *(char **)(void *)dest = copy;
            break;
        }
        case FIELD_BOOL:
            if (!json_is_boolean(v)) {
                expected = "true or false";
                break;
            }
            *(bool *)(void *)dest = json_is_true(v);
            break;
        }
        if (expected != NULL) {
            fail(x->res, AMO_BAD, "%s: %s.%s is %s, expected %s", x->label, where, f->path,
                 v == NULL ? "missing" : "of the wrong type", expected);
            return false;
        }
    }
    return true;
}

#define FIELDS(table) (table), (sizeof(table) / sizeof((table)[0]))

static const struct field pipeline_fields[] = {
    {"id", FIELD_ID, offsetof(struct amo_pipeline, id)},
    {"name", FIELD_STRING, offsetof(struct amo_pipeline, name)},
    {"sort", FIELD_INT, offsetof(struct amo_pipeline, sort)},
};

static const struct field status_fields[] = {
    {"id", FIELD_ID, offsetof(struct amo_status, id)},
    {"name", FIELD_STRING, offsetof(struct amo_status, name)},
    {"sort", FIELD_INT, offsetof(struct amo_status, sort)},
    {"type", FIELD_INT, offsetof(struct amo_status, type)},
};

static const struct field loss_reason_fields[] = {
    {"id", FIELD_ID, offsetof(struct amo_loss_reason, id)},
    {"name", FIELD_STRING, offsetof(struct amo_loss_reason, name)},
    {"sort", FIELD_INT, offsetof(struct amo_loss_reason, sort)},
};

static const struct field user_fields[] = {
    {"id", FIELD_ID, offsetof(struct amo_user, id)},
    {"name", FIELD_STRING, offsetof(struct amo_user, name)},
    {"email", FIELD_STRING_OR_NULL, offsetof(struct amo_user, email)},
    {"rights.is_active", FIELD_BOOL, offsetof(struct amo_user, is_active)},
    {"rights.is_admin", FIELD_BOOL, offsetof(struct amo_user, is_admin)},
};

/* ---- the list readers ------------------------------------------------------------------------------- */

struct list_spec {
    const char *path;         /* "/api/v4/users" */
    const char *first_query;  /* query of the first page, or NULL */
    const char *embedded_key; /* the array under _embedded */
    size_t item_size;
    bool (*read_item)(const struct exchange *x, json_t *item, const char *where, void *out);
    void (*free_item)(void *item);
};

static void free_items(const struct list_spec *spec, void *items, size_t count)
{
    if (items == NULL) return;
    for (size_t i = 0; i < count; i++)
        spec->free_item((char *)items + i * spec->item_size);
    free(items);
}

/* The path and query of a `_links.next` href, if it names another page of the same list. Only the path and
 * query are kept: the page is asked of base_url, so the token never follows a link to another host. */
static bool next_page(const struct list_spec *spec, const char *href, char *out, size_t outlen)
{
    const char *p = href;
    const char *scheme_end = strstr(href, "://");
    if (scheme_end != NULL) {
        p = strchr(scheme_end + 3, '/');
        if (p == NULL) return false;
    }
    if (*p != '/') return false;
    size_t plen = strlen(spec->path);
    if (strncmp(p, spec->path, plen) != 0) return false;
    const char *rest = p + plen;
    if (*rest == '/') rest++;
    if (*rest != '?' && *rest != '\0') return false;
    if (has_control_chars(p) || strlen(p) >= outlen) return false;
    memcpy(out, p, strlen(p) + 1);
    return true;
}

static enum amo_outcome read_list(const struct amo_conn *conn, const struct list_spec *spec, void **out,
                                  size_t *count, struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    *out = NULL;
    *count = 0;
    struct exchange x;
    enum amo_outcome outcome = AMO_BAD;
    void *items = NULL;
    size_t n = 0, cap = 0;
    json_t *answer = NULL;
    char path_query[512];
    if (!exchange_open(&x, conn, res)) {
        outcome = res->outcome;
        goto out;
    }
    snprintf(path_query, sizeof path_query, "%s%s%s", spec->path, spec->first_query ? "?" : "",
             spec->first_query ? spec->first_query : "");
    for (int page = 1;; page++) {
        outcome = exchange_do(&x, "GET", path_query, NULL, &answer);
        if (outcome != AMO_OK) goto out;
        if (answer == NULL) break; /* 204: nothing (more) to list */
        outcome = AMO_BAD;
        json_t *list = lookup(answer, "_embedded");
        list = json_object_get(list, spec->embedded_key);
        if (!json_is_array(list)) {
            fail(res, AMO_BAD, "%s: answer has no _embedded.%s array", x.label, spec->embedded_key);
            goto out;
        }
        size_t arrived = json_array_size(list);
        if (arrived > cap - n) {
            size_t want = n + arrived;
            size_t grown_cap = cap ? cap : 16;
            while (grown_cap < want)
                grown_cap *= 2;
            void *grown = realloc(items, grown_cap * spec->item_size);
            if (grown == NULL) {
                outcome = fail(res, AMO_RETRY, "%s: out of memory", x.label);
                goto out;
            }
            items = grown;
            cap = grown_cap;
        }
        for (size_t i = 0; i < arrived; i++) {
            void *item = (char *)items + n * spec->item_size;
            memset(item, 0, spec->item_size);
            char where[64];
            snprintf(where, sizeof where, "%s[%zu]", spec->embedded_key, n);
            n++; /* counted before reading, so a half-read item is freed too */
            if (!spec->read_item(&x, json_array_get(list, i), where, item)) {
                outcome = res->outcome;
                goto out;
            }
        }
        const char *href = json_string_value(lookup(answer, "_links.next.href"));
        if (href == NULL) break;
        char next[sizeof path_query];
        if (!next_page(spec, href, next, sizeof next)) {
            fail(res, AMO_BAD, "%s: _links.next is not a page of %s", x.label, spec->path);
            goto out;
        }
        if (strcmp(next, path_query) == 0 || page >= AMO_MAX_PAGES) {
            fail(res, AMO_BAD, "%s: _links.next does not lead to an end", x.label);
            goto out;
        }
        memcpy(path_query, next, sizeof next);
        json_decref(answer);
        answer = NULL;
    }
    outcome = AMO_OK;
    *out = n > 0 ? items : NULL;
    *count = n;
    if (n == 0) free(items);
    items = NULL;
out:
    json_decref(answer);
    free_items(spec, items, n);
    exchange_close(&x);
    return finish(conn, res, outcome);
}

static void free_status(struct amo_status *s)
{
    free(s->name);
}

static void free_pipeline(void *item)
{
    struct amo_pipeline *p = item;
    free(p->name);
    for (size_t i = 0; i < p->status_count; i++)
        free_status(&p->statuses[i]);
    free(p->statuses);
}

static bool read_pipeline(const struct exchange *x, json_t *item, const char *where, void *out)
{
    struct amo_pipeline *p = out;
    if (!read_fields(x, item, where, FIELDS(pipeline_fields), p)) return false;
    json_t *statuses = lookup(item, "_embedded.statuses");
    if (!json_is_array(statuses)) {
        fail(x->res, AMO_BAD, "%s: %s has no _embedded.statuses array", x->label, where);
        return false;
    }
    size_t count = json_array_size(statuses);
    if (count == 0) return true;
    p->statuses = calloc(count, sizeof *p->statuses);
    if (p->statuses == NULL) {
        fail(x->res, AMO_RETRY, "%s: out of memory", x->label);
        return false;
    }
    for (size_t i = 0; i < count; i++) {
        char status_where[96];
        snprintf(status_where, sizeof status_where, "%s._embedded.statuses[%zu]", where, i);
        p->status_count = i + 1;
        if (!read_fields(x, json_array_get(statuses, i), status_where, FIELDS(status_fields),
                         &p->statuses[i]))
            return false;
    }
    return true;
}

static const struct list_spec pipelines_spec = {
    "/api/v4/leads/pipelines", NULL, "pipelines", sizeof(struct amo_pipeline), read_pipeline, free_pipeline,
};

enum amo_outcome amo_get_pipelines(const struct amo_conn *conn, struct amo_pipeline **out, size_t *count,
                                   struct amo_result *res)
{
    void *items = NULL;
    enum amo_outcome outcome = read_list(conn, &pipelines_spec, &items, count, res);
    *out = items;
    return outcome;
}

void amo_pipelines_free(struct amo_pipeline *pipelines, size_t count)
{
    free_items(&pipelines_spec, pipelines, count);
}

static void free_loss_reason(void *item)
{
    free(((struct amo_loss_reason *)item)->name);
}

static bool read_loss_reason(const struct exchange *x, json_t *item, const char *where, void *out)
{
    return read_fields(x, item, where, FIELDS(loss_reason_fields), out);
}

static const struct list_spec loss_reasons_spec = {
    "/api/v4/leads/loss_reasons",
    NULL,
    "loss_reasons",
    sizeof(struct amo_loss_reason),
    read_loss_reason,
    free_loss_reason,
};

enum amo_outcome amo_get_loss_reasons(const struct amo_conn *conn, struct amo_loss_reason **out,
                                      size_t *count, struct amo_result *res)
{
    void *items = NULL;
    enum amo_outcome outcome = read_list(conn, &loss_reasons_spec, &items, count, res);
    *out = items;
    return outcome;
}

void amo_loss_reasons_free(struct amo_loss_reason *reasons, size_t count)
{
    free_items(&loss_reasons_spec, reasons, count);
}

static void free_user(void *item)
{
    struct amo_user *u = item;
    free(u->name);
    free(u->email);
}

static bool read_user(const struct exchange *x, json_t *item, const char *where, void *out)
{
    return read_fields(x, item, where, FIELDS(user_fields), out);
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)
/* The largest page amoCRM gives, so an account of a few hundred users is one or two requests. */
static const struct list_spec users_spec = {
    "/api/v4/users", "limit=" STRINGIFY(AMO_USERS_PAGE_LIMIT), "users", sizeof(struct amo_user), read_user,
    free_user,
};

enum amo_outcome amo_get_users(const struct amo_conn *conn, struct amo_user **out, size_t *count,
                               struct amo_result *res)
{
    void *items = NULL;
    enum amo_outcome outcome = read_list(conn, &users_spec, &items, count, res);
    *out = items;
    return outcome;
}

void amo_users_free(struct amo_user *users, size_t count)
{
    free_items(&users_spec, users, count);
}

/* ---- single objects --------------------------------------------------------------------------------- */

/* Copies s into buf, cut at a UTF-8 character boundary when it does not fit. */
static void copy_utf8(char *buf, size_t buflen, const char *s)
{
    if (buf == NULL || buflen == 0) return;
    size_t n = strlen(s);
    if (n >= buflen) {
        n = buflen - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
}

static bool positive_integer(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0;
}

/* The id an add answered with: _embedded.<key>[0].id */
static bool read_created_id(const struct exchange *x, json_t *answer, const char *key, int64_t *id)
{
    json_t *first = json_array_get(json_object_get(json_object_get(answer, "_embedded"), key), 0);
    json_t *v = json_object_get(first, "id");
    if (!positive_integer(v)) {
        fail(x->res, AMO_BAD, "%s: answer has no _embedded.%s[0].id", x->label, key);
        return false;
    }
    *id = (int64_t)json_integer_value(v);
    return true;
}

static bool positive_id(struct amo_result *res, const char *what, int64_t id)
{
    if (id > 0) return true;
    fail(res, AMO_BAD, "%s id %lld is not a valid amoCRM id", what, (long long)id);
    return false;
}

/* An integer given as a number or as a string of digits (amoCRM's params are not always typed). */
static bool loose_integer(json_t *v, long *out)
{
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = (long)json_real_value(v);
        return true;
    }
    const char *s = json_string_value(v);
    if (s == NULL || *s == '\0') return false;
    char *end = NULL;
    long n = strtol(s, &end, 10);
    if (*end != '\0') return false;
    *out = n;
    return true;
}

enum amo_outcome amo_get_lead_loss_reason(const struct amo_conn *conn, int64_t lead_id,
                                          int64_t *loss_reason_id, char *name_buf, size_t name_len,
                                          struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    *loss_reason_id = 0;
    copy_utf8(name_buf, name_len, "");
    struct exchange x;
    json_t *answer = NULL;
    enum amo_outcome outcome = AMO_BAD;
    char path[96];
    if (!positive_id(res, "lead", lead_id)) goto out;
    if (!exchange_open(&x, conn, res)) {
        outcome = res->outcome;
        goto out_closed;
    }
    snprintf(path, sizeof path, "/api/v4/leads/%lld?with=loss_reason", (long long)lead_id);
    outcome = exchange_do(&x, "GET", path, NULL, &answer);
    if (outcome != AMO_OK) goto out_closed;
    if (answer == NULL) {
        outcome = fail(res, AMO_NOT_FOUND, "%s: HTTP %ld, no such lead", x.label, res->status);
        goto out_closed;
    }
    outcome = AMO_BAD;
    if (!json_is_object(answer)) {
        fail(res, AMO_BAD, "%s: answer is not a lead object", x.label);
        goto out_closed;
    }
    json_t *id = json_object_get(answer, "loss_reason_id");
    json_t *embedded = json_array_get(lookup(answer, "_embedded.loss_reason"), 0);
    if (id != NULL && !json_is_null(id) && !(json_is_integer(id) && json_integer_value(id) >= 0)) {
        fail(res, AMO_BAD, "%s: loss_reason_id is not an integer", x.label);
        goto out_closed;
    }
    int64_t reason = json_is_integer(id) ? (int64_t)json_integer_value(id) : 0;
    if (reason == 0 && json_is_integer(json_object_get(embedded, "id")))
        reason = (int64_t)json_integer_value(json_object_get(embedded, "id"));
    if (reason > 0) {
        const char *name = json_string_value(json_object_get(embedded, "name"));
        copy_utf8(name_buf, name_len, name ? name : "");
    }
    *loss_reason_id = reason;
    outcome = AMO_OK;
out_closed:
    exchange_close(&x);
out:
    json_decref(answer);
    return finish(conn, res, outcome);
}

/* The shared body of the calls that send JSON and want nothing back but success (or an id). */
static enum amo_outcome send_json(const struct amo_conn *conn, const char *method, const char *path,
                                  json_t *body_steal, const char *created_key, int64_t *created_id,
                                  struct amo_result *res)
{
    struct exchange x;
    json_t *answer = NULL;
    enum amo_outcome outcome;
    if (body_steal == NULL) {
        /* json_pack refuses text that is not UTF-8 (or fails for want of memory) */
        outcome =
            fail(res, AMO_BAD, "%s %s: cannot build the request body (is the text UTF-8?)", method, path);
        goto out;
    }
    if (!exchange_open(&x, conn, res)) {
        outcome = res->outcome;
        goto out_closed;
    }
    outcome = exchange_do(&x, method, path, body_steal, &answer);
    if (outcome != AMO_OK) goto out_closed;
    if (created_key != NULL) {
        if (!read_created_id(&x, answer, created_key, created_id)) outcome = AMO_BAD;
    } else if (answer != NULL && !positive_integer(json_object_get(answer, "id"))) {
        /* a PATCH answers {id, updated_at, _links}; an empty answer is taken as done too */
        outcome = fail(res, AMO_BAD, "%s: answer is not the changed object", x.label);
    }
out_closed:
    exchange_close(&x);
out:
    json_decref(body_steal);
    json_decref(answer);
    return finish(conn, res, outcome);
}

enum amo_outcome amo_patch_lead(const struct amo_conn *conn, int64_t lead_id, int64_t status_id,
                                int64_t pipeline_id, int64_t responsible_user_id, struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    if (!positive_id(res, "lead", lead_id)) return finish(conn, res, AMO_BAD);
    if (status_id < 0 || pipeline_id < 0 || responsible_user_id < 0)
        return finish(conn, res,
                      fail(res, AMO_BAD, "lead %lld: negative id in the change", (long long)lead_id));
    if (status_id == 0 && pipeline_id == 0 && responsible_user_id == 0)
        return finish(conn, res, fail(res, AMO_BAD, "lead %lld: nothing to change", (long long)lead_id));
    json_t *body = json_object();
    if (body != NULL) {
        if (status_id) json_object_set_new(body, "status_id", json_integer(status_id));
        if (pipeline_id) json_object_set_new(body, "pipeline_id", json_integer(pipeline_id));
        if (responsible_user_id)
            json_object_set_new(body, "responsible_user_id", json_integer(responsible_user_id));
    }
    char path[64];
    snprintf(path, sizeof path, "/api/v4/leads/%lld", (long long)lead_id);
    return send_json(conn, "PATCH", path, body, NULL, NULL, res);
}

enum amo_outcome amo_add_task(const struct amo_conn *conn, int64_t lead_id, int64_t responsible_user_id,
                              int64_t task_type_id, const char *text, int64_t complete_till_unix,
                              int64_t *new_task_id, struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    *new_task_id = 0;
    if (!positive_id(res, "lead", lead_id)) return finish(conn, res, AMO_BAD);
    if (text == NULL || text[0] == '\0')
        return finish(conn, res, fail(res, AMO_BAD, "lead %lld: a task needs a text", (long long)lead_id));
    if (complete_till_unix <= 0)
        return finish(conn, res,
                      fail(res, AMO_BAD, "lead %lld: a task needs a due time", (long long)lead_id));
    if (responsible_user_id < 0 || task_type_id < 0)
        return finish(conn, res,
                      fail(res, AMO_BAD, "lead %lld: negative id in the task", (long long)lead_id));
    json_t *task =
        json_pack("{s:s, s:I, s:I, s:s}", "text", text, "complete_till", (json_int_t)complete_till_unix,
                  "entity_id", (json_int_t)lead_id, "entity_type", "leads");
    if (task != NULL && responsible_user_id > 0)
        json_object_set_new(task, "responsible_user_id", json_integer(responsible_user_id));
    if (task != NULL && task_type_id > 0)
        json_object_set_new(task, "task_type_id", json_integer(task_type_id));
    json_t *body = task ? json_pack("[o]", task) : NULL;
    return send_json(conn, "POST", "/api/v4/tasks", body, "tasks", new_task_id, res);
}

enum amo_outcome amo_complete_task(const struct amo_conn *conn, int64_t task_id, const char *result_text,
                                   struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    if (!positive_id(res, "task", task_id)) return finish(conn, res, AMO_BAD);
    json_t *body = json_pack("{s:b}", "is_completed", 1);
    if (body != NULL && result_text != NULL && result_text[0] != '\0') {
        json_t *result = json_pack("{s:s}", "text", result_text);
        if (result == NULL || json_object_set_new(body, "result", result) != 0) {
            json_decref(body);
            body = NULL;
        }
    }
    char path[64];
    snprintf(path, sizeof path, "/api/v4/tasks/%lld", (long long)task_id);
    return send_json(conn, "PATCH", path, body, NULL, NULL, res);
}

enum amo_outcome amo_add_note(const struct amo_conn *conn, int64_t lead_id, const char *text,
                              int64_t *new_note_id, struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    *new_note_id = 0;
    if (!positive_id(res, "lead", lead_id)) return finish(conn, res, AMO_BAD);
    if (text == NULL || text[0] == '\0')
        return finish(conn, res, fail(res, AMO_BAD, "lead %lld: a note needs a text", (long long)lead_id));
    json_t *body = json_pack("[{s:s, s:{s:s}}]", "note_type", "common", "params", "text", text);
    char path[64];
    snprintf(path, sizeof path, "/api/v4/leads/%lld/notes", (long long)lead_id);
    return send_json(conn, "POST", path, body, "notes", new_note_id, res);
}

static bool is_call_note_type(json_t *type)
{
    const char *s = json_string_value(type);
    if (s != NULL) return strcmp(s, "call_in") == 0 || strcmp(s, "call_out") == 0;
    long n = 0;
    return json_is_integer(type) && loose_integer(type, &n) && (n == 10 || n == 11);
}

enum amo_outcome amo_get_call_note(const struct amo_conn *conn, int64_t lead_id, int64_t note_id,
                                   long *duration_s, bool *answered, struct amo_result *res)
{
    struct amo_result scratch;
    if (res == NULL) res = &scratch;
    result_reset(res);
    *duration_s = 0;
    *answered = false;
    struct exchange x;
    json_t *answer = NULL;
    enum amo_outcome outcome = AMO_BAD;
    char path[96];
    if (!positive_id(res, "lead", lead_id) || !positive_id(res, "note", note_id)) goto out;
    if (!exchange_open(&x, conn, res)) {
        outcome = res->outcome;
        goto out_closed;
    }
    snprintf(path, sizeof path, "/api/v4/leads/%lld/notes/%lld", (long long)lead_id, (long long)note_id);
    outcome = exchange_do(&x, "GET", path, NULL, &answer);
    if (outcome != AMO_OK) goto out_closed;
    if (answer == NULL) {
        outcome = fail(res, AMO_NOT_FOUND, "%s: HTTP %ld, no such note", x.label, res->status);
        goto out_closed;
    }
    outcome = AMO_BAD;
    json_t *type = json_object_get(answer, "note_type");
    if (!is_call_note_type(type)) {
        const char *name = json_string_value(type);
        fail(res, AMO_BAD, "%s: note is %s%.40s%s, not a call", x.label, name ? "\"" : "",
             name ? name : "of no call type", name ? "\"" : "");
        goto out_closed;
    }
    json_t *params = json_object_get(answer, "params");
    json_t *duration = json_object_get(params, "duration");
    json_t *status = json_object_get(params, "call_status");
    long seconds = 0, call_status = 0;
    if (duration != NULL && !json_is_null(duration) && !loose_integer(duration, &seconds)) {
        fail(res, AMO_BAD, "%s: params.duration is not a number", x.label);
        goto out_closed;
    }
    if (status != NULL && !json_is_null(status) && !loose_integer(status, &call_status)) {
        fail(res, AMO_BAD, "%s: params.call_status is not a number", x.label);
        goto out_closed;
    }
    *duration_s = seconds > 0 ? seconds : 0;
    *answered = call_status == 4;
    outcome = AMO_OK;
out_closed:
    exchange_close(&x);
out:
    json_decref(answer);
    return finish(conn, res, outcome);
}

/* The libmicrohttpd daemon: a thread pool with epoll, one database connection per pool thread, body
 * accumulation with limits, routing, auth, JSON parsing, idempotency keys, replies and the access log. */
#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "salesops/auth.h"
#include "salesops/crypto.h"
#include "salesops/http.h"
#include "salesops/log.h"
#include "salesops/metrics.h"
#include "salesops/store.h"
#include "salesops/timeutil.h"
#include "salesops/validate.h"

/* Replies: ratios have at most 4 decimals, so 15 significant digits print them exactly (0.1, not
 * 0.10000000000000001). */
#define SO_JSON_REPLY_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))

#define JSON_MAX_DEPTH 32

/* Threads that store received webhook bodies, each with its own database connection (src/store/receipt.c). */
#define RECEIPT_WRITERS 2
/* One reader: its batches grow while a statement runs (up to 64 reads). A second reader took the reads that
 * arrived while the first was busy in batches of one or two: 35,000 GETs/s against 53,000 (BENCHMARKS.md). */
#define DEAL_READERS 1
/* A connection's memory pool: the request head and the reply's headers (bodies are streamed through it).
 * libmicrohttpd clears the unused part of the pool after each keep-alive request: at 64 KiB that memset cost
 * more than anything else on the GET path (BENCHMARKS.md). */
#define CONNECTION_MEMORY (16 * 1024)

/* Per-key rate limiting: a token bucket per API key, in this instance (so N instances allow N times the rate).
 * Slots are picked by key id; a key that lands on a slot another key holds takes it over with a full bucket. */
#define RATE_SLOTS 4096
#define RATE_LOCKS 64
#define RATE_PROBE 8
struct rate_slot {
    int64_t key_id;
    double tokens;
    int64_t last_ms;
};

/* Slow clients: a request head (request line and headers) must arrive within connection_timeout_s of the
 * connection opening, or of its previous request's end. Trickled bytes do not extend that, unlike MHD's own
 * timeout, which counts only silence. A watchdog thread shuts the socket of a connection that misses it. */
struct conn_watch {
    struct conn_watch *prev, *next;
    MHD_socket fd;
    int64_t waiting_since_ms; /* 0 while a request is being read or handled */
};

struct so_server {
    struct MHD_Daemon *daemon;
    pthread_mutex_t watch_lock;
    struct conn_watch watched; /* the list's head */
    pthread_t watchdog;
    bool watchdog_started;
    atomic_bool watchdog_stop;
    const struct so_config *cfg;
    const struct so_route *routes;
    size_t route_count;
    atomic_bool shutting_down;
    atomic_int in_flight; /* requests begun and not completed */
    int port;
    struct rate_slot rate[RATE_SLOTS];
    pthread_mutex_t rate_lock[RATE_LOCKS];
    struct so_metrics *metrics;
    atomic_int connections; /* open now */
};

/* Takes one token from the key's bucket; false (and the seconds until one is back) when it is empty. */
static bool rate_allow(struct so_server *srv, int64_t key_id, int *retry_after_s)
{
    double rate = srv->cfg->rate_limit_per_s;
    double burst = srv->cfg->rate_limit_burst > 0 ? srv->cfg->rate_limit_burst : 2 * rate;
    /* a key's slot is one of RATE_PROBE neighbours under one lock: its own, else the one idle longest */
    size_t i = (size_t)((uint64_t)key_id * 2654435761u % (RATE_SLOTS / RATE_PROBE)) * RATE_PROBE;
    pthread_mutex_t *lock = &srv->rate_lock[i / RATE_PROBE % RATE_LOCKS];
    int64_t now = so_monotonic_ms();
    pthread_mutex_lock(lock);
    struct rate_slot *b = NULL, *oldest = &srv->rate[i];
    for (size_t k = i; k < i + RATE_PROBE && b == NULL; k++) {
        if (srv->rate[k].key_id == key_id) b = &srv->rate[k];
        else if (srv->rate[k].last_ms < oldest->last_ms) oldest = &srv->rate[k];
    }
    if (b == NULL) {
        b = oldest;
        *b = (struct rate_slot){key_id, burst, now};
    }
    b->tokens += (double)(now - b->last_ms) / 1000 * rate;
    if (b->tokens > burst) b->tokens = burst;
    b->last_ms = now;
    bool ok = b->tokens >= 1;
    if (ok) b->tokens -= 1;
    double wait = ok ? 0 : (1 - b->tokens) / rate;
    pthread_mutex_unlock(lock);
    *retry_after_s = (int)wait + 1;
    return ok;
}

struct conn_ctx {
    struct so_req req;
    struct so_server *srv;
    int retry_after_s; /* for a 429 */
    struct arena arena;
    struct MHD_Connection *connection;
    char *body;
    size_t len, cap, limit;
    bool too_large;
    const char *allow; /* for a 405 reply */
    const struct so_route *route; /* NULL when none matched */
    struct timespec started;
    bool suspended; /* a deferred reply is being waited for */
};

void so_req_defer(struct so_req *req, void *ctx, void (*start)(struct so_req *req),
                  void (*finish)(struct so_req *req))
{
    req->defer_ctx = ctx;
    req->defer_start = start;
    req->defer_finish = finish;
}

void so_req_resume(struct so_req *req)
{
    struct conn_ctx *c = req->server_ctx;
    MHD_resume_connection(c->connection);
}

const char *so_req_query(struct so_req *req, const char *name)
{
    struct conn_ctx *c = req->server_ctx;
    return MHD_lookup_connection_value(c->connection, MHD_GET_ARGUMENT_KIND, name);
}

const char *so_req_header(struct so_req *req, const char *name)
{
    struct conn_ctx *c = req->server_ctx;
    return MHD_lookup_connection_value(c->connection, MHD_HEADER_KIND, name);
}

void reply_json_steal(struct so_req *req, int status, json_t *body)
{
    json_decref(req->reply);
    req->reply = body;
    req->status = body != NULL ? status : 500;
    if (body == NULL) so_fail(&req->err, ERR_INTERNAL, "out of memory");
}

void reply_text(struct so_req *req, int status, const char *content_type, const char *text, size_t len)
{
    free(req->reply_text);
    req->reply_text = malloc(len + 1);
    if (req->reply_text == NULL) {
        reply_error(req, ERR_INTERNAL, "out of memory");
        return;
    }
    memcpy(req->reply_text, text, len);
    req->reply_text[len] = '\0';
    req->reply_text_len = len;
    req->reply_type = content_type;
    req->status = status;
}

void reply_err(struct so_req *req)
{
    if (req->err.code == SO_OK) so_fail(&req->err, ERR_INTERNAL, "internal error");
    json_decref(req->reply);
    req->reply = so_error_problem(&req->err);
    req->status = so_err_status(req->err.code);
}

void reply_error(struct so_req *req, enum so_err code, const char *fmt, ...)
{
    req->err.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->err.detail, sizeof req->err.detail, fmt, ap);
    va_end(ap);
    reply_err(req);
}

static bool request_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 40) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
    return true;
}


static bool method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0;
}

static bool is_json_type(const char *ct)
{
    if (ct == NULL) return false;
    static const char json[] = "application/json";
    if (strncasecmp(ct, json, sizeof json - 1) != 0) return false;
    char next = ct[sizeof json - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Parses the body of a JSON route into req->body. */
static bool parse_json_body(struct so_req *req)
{
    if (req->raw_len == 0) {
        req->body = json_object();
        return true;
    }
    if (!is_json_type(req->content_type)) {
        reply_error(req, ERR_UNSUPPORTED_MEDIA_TYPE, "send the body as application/json");
        return false;
    }
    if (json_text_depth(req->raw_body, req->raw_len, JSON_MAX_DEPTH) > JSON_MAX_DEPTH) {
        reply_error(req, ERR_MALFORMED, "JSON nesting deeper than %d levels", JSON_MAX_DEPTH);
        return false;
    }
    json_error_t e;
    req->body = json_loadb(req->raw_body, req->raw_len, JSON_REJECT_DUPLICATES, &e);
    /* A number beyond 64 bits is valid JSON: read it as a real, so that the field check names it (422). */
    if (req->body == NULL && strstr(e.text, "too big") != NULL) {
        req->body =
            json_loadb(req->raw_body, req->raw_len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &e);
        json_restore_integers(req->body);
    }
    if (req->body == NULL) {
        const char *why = strstr(e.text, "JSON_ALLOW_NUL") ? "\\u0000 is not allowed in strings" : e.text;
        reply_error(req, ERR_MALFORMED, "invalid JSON at line %d, column %d: %s", e.line, e.column, why);
        return false;
    }
    return true;
}

static enum so_err map_db(enum db_rc rc, struct so_error *err)
{
    if (rc == DB_UNAVAILABLE) return so_fail(err, ERR_DB_UNAVAILABLE, "the database is unavailable");
    return so_fail(err, ERR_INTERNAL, "database error");
}

/* Runs the handler, honouring an Idempotency-Key on POST. */
static void run_handler(struct so_req *req, const struct so_route *route)
{
    const char *idem =
        strcmp(req->method, "POST") == 0 && req->authenticated ? so_req_header(req, "Idempotency-Key") : NULL;
    if (idem == NULL) {
        route->handler(req);
        return;
    }
    if (!validate_text(idem, strlen(idem), 1, 200)) {
        so_field_error(&req->err, "Idempotency-Key", "must be 1 to 200 characters");
        reply_err(req);
        return;
    }
    uint8_t hash[SO_SHA256_LEN];
    so_sha256(req->raw_body, req->raw_len, hash);
    enum idem_state state;
    int status = 0;
    const char *stored = NULL;
    enum db_rc rc = store_idem_begin(req->db, req->arena, req->auth.account_id, req->auth.key_id, req->method,
                                     req->path, idem, hash, &state, &status, &stored);
    if (rc != DB_OK) {
        map_db(rc, &req->err);
        reply_err(req);
        return;
    }
    if (state == IDEM_CONFLICT) {
        reply_error(req, ERR_IDEMPOTENCY_CONFLICT,
                    "this Idempotency-Key was used with another body, or its request is still running");
        return;
    }
    if (state == IDEM_REPLAY) {
        json_error_t e;
        json_t *body = stored ? json_loads(stored, 0, &e) : NULL;
        if (body != NULL)
            reply_json_steal(req, status, body);
        else
            reply_text(req, status, "application/json", "", 0);
        return;
    }
    route->handler(req);
    if (req->status == 0 && req->err.code != SO_OK) reply_err(req);
    if (req->status >= 500) {
        store_idem_abandon(req->db, req->auth.account_id, req->auth.key_id, req->method, req->path, idem);
        return;
    }
    char *text = req->reply ? json_dumps(req->reply, SO_JSON_REPLY_FLAGS) : NULL;
    store_idem_finish(req->db, req->auth.account_id, req->auth.key_id, req->method, req->path, idem,
                      req->status, text);
    free(text);
}

static void handle(struct so_server *srv, struct conn_ctx *c)
{
    struct so_req *req = &c->req;
    const char *params[SO_MAX_PATH_PARAMS];
    char allow[64];
    bool known;
    const struct so_route *route = router_match(srv->routes, srv->route_count, req->method, req->path, params,
                                                &req->param_count, allow, sizeof allow, &known);
    if (route == NULL) {
        if (known) {
            reply_error(req, ERR_METHOD_NOT_ALLOWED, "%s is not allowed here; allowed: %s", req->method,
                        allow);
            c->allow = arena_strdup(req->arena, allow);
        } else {
            reply_error(req, ERR_NOT_FOUND, "no such path: %s", req->path);
        }
        return;
    }
    req->route = route->pattern;
    c->route = route;
    for (int i = 0; i < req->param_count; i++) {
        const char *end = strchr(params[i], '/');
        req->params[i] = end ? arena_strndup(req->arena, params[i], (size_t)(end - params[i]))
                             : arena_strdup(req->arena, params[i]);
    }
    bool needs_db = !(route->flags & ROUTE_NO_DB);
    if (needs_db || route->roles != 0) {
        req->db = db_thread(srv->cfg->database_url);
        if (req->db == NULL && needs_db) {
            reply_error(req, ERR_DB_UNAVAILABLE, "the database is unavailable");
            return;
        }
    }
    if (route->roles != 0) {
        if (auth_resolve(req->db, so_req_header(req, "Authorization"), &req->auth, &req->err) != SO_OK) {
            reply_err(req);
            return;
        }
        req->authenticated = true;
        if (!(route->roles & ROLE_BIT(req->auth.role))) {
            reply_error(req, ERR_FORBIDDEN, "a %s key may not %s %s", so_role_name(req->auth.role),
                        req->method, route->pattern);
            return;
        }
        if (srv->cfg->rate_limit_per_s > 0 && !rate_allow(srv, req->auth.key_id, &c->retry_after_s)) {
            reply_error(req, ERR_RATE_LIMITED, "more than %d requests a second with this key: retry in %d s",
                        srv->cfg->rate_limit_per_s, c->retry_after_s);
            return;
        }
    }
    if (c->too_large) {
        reply_error(req, ERR_PAYLOAD_TOO_LARGE, "the body is larger than %zu bytes", c->limit);
        return;
    }
    if ((route->flags & ROUTE_JSON_BODY) && method_has_body(req->method) && !parse_json_body(req)) return;
    run_handler(req, route);
}

static void access_log(struct conn_ctx *c, double ms)
{
    struct so_req *req = &c->req;
    enum log_level level = req->status >= 500 ? LOG_WARN : LOG_INFO;
    if (!log_enabled(level)) return;
    /* rendered with snprintf, not jansson: one line per request, no allocation */
    /* The webhook path carries its secret token: log the route pattern, never the path, for such routes. */
    const char *path = req->route && strstr(req->route, "{webhook_token}") ? req->route : req->path;
    char method[32], escaped_path[512], line[1024];
    int n = snprintf(line, sizeof line,
                     "\"request_id\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"duration_ms\":%.3f",
                     req->request_id, log_json_escape(method, sizeof method, req->method),
                     log_json_escape(escaped_path, sizeof escaped_path, path), req->status, ms);
    if (n > 0 && (size_t)n < sizeof line && req->authenticated) {
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"account_id\":%lld,\"key_id\":%lld",
                      (long long)req->auth.account_id, (long long)req->auth.key_id);
        if (req->auth.manager_id && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, ",\"manager_id\":%lld", (long long)req->auth.manager_id);
    }
    if (n > 0 && (size_t)n < sizeof line && req->err.code != SO_OK)
        snprintf(line + n, sizeof line - (size_t)n, ",\"error\":\"%s\"", so_err_code(req->err.code));
    log_line(level, "request", line);
}

static enum MHD_Result send_reply(struct MHD_Connection *connection, struct conn_ctx *c)
{
    struct so_req *req = &c->req;
    if (req->status == 0) reply_err(req);
    const char *type = "application/json; charset=utf-8";
    char *text;
    size_t len;
    if (req->reply_text != NULL) {
        text = req->reply_text;
        len = req->reply_text_len;
        req->reply_text = NULL;
        type = req->reply_type;
    } else if (req->reply != NULL) {
        text = json_dumps(req->reply, SO_JSON_REPLY_FLAGS);
        len = text ? strlen(text) : 0;
        if (req->status >= 400) type = "application/problem+json; charset=utf-8";
    } else {
        text = NULL;
        len = 0;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(text);
        return MHD_NO;
    }
    if (len > 0 || req->status != 204) MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "X-Request-Id", req->request_id);
    if (req->status == 405 && c->allow != NULL) MHD_add_response_header(resp, "Allow", c->allow);
    if (req->status == 429) {
        char retry[16];
        snprintf(retry, sizeof retry, "%d", c->retry_after_s > 0 ? c->retry_after_s : 1);
        MHD_add_response_header(resp, "Retry-After", retry);
    }
    if (type != NULL && strncmp(type, "text/html", 9) == 0) {
        /* the page: its own scripts and styles only, never framed, no referrer */
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'self'");
        MHD_add_response_header(resp, "X-Frame-Options", "DENY");
        MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    }
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* shutting down: no more requests on this connection */
    if (atomic_load(&c->srv->shutting_down)) MHD_add_response_header(resp, "Connection", "close");
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double s = (double)(now.tv_sec - c->started.tv_sec) + (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
    metrics_observe(c->srv->metrics, c->route, req->status, s);
    access_log(c, s * 1e3);
    enum MHD_Result r = MHD_queue_response(connection, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return r;
}

static void watch_set(struct so_server *srv, struct MHD_Connection *connection, int64_t waiting_since_ms)
{
    const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn_watch *w = info ? info->socket_context : NULL;
    if (w == NULL) return;
    pthread_mutex_lock(&srv->watch_lock);
    w->waiting_since_ms = waiting_since_ms;
    pthread_mutex_unlock(&srv->watch_lock);
}

static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct so_server *srv = cls;
    atomic_fetch_add(&srv->connections, toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_watch *w = info ? calloc(1, sizeof *w) : NULL;
        if (w == NULL) return;
        w->fd = info->connect_fd;
        w->waiting_since_ms = so_monotonic_ms();
        pthread_mutex_lock(&srv->watch_lock);
        w->next = srv->watched.next;
        w->prev = &srv->watched;
        srv->watched.next->prev = w;
        srv->watched.next = w;
        pthread_mutex_unlock(&srv->watch_lock);
        *socket_context = w;
        return;
    }
    struct conn_watch *w = *socket_context; /* closed: MHD closes the socket only after this */
    if (w == NULL) return;
    pthread_mutex_lock(&srv->watch_lock);
    w->prev->next = w->next;
    w->next->prev = w->prev;
    pthread_mutex_unlock(&srv->watch_lock);
    free(w);
    *socket_context = NULL;
}

static void *watchdog(void *p)
{
    struct so_server *srv = p;
    int64_t limit_ms = (int64_t)(srv->cfg->connection_timeout_s > 0 ? srv->cfg->connection_timeout_s : 15) * 1000;
    while (!atomic_load(&srv->watchdog_stop)) {
        so_sleep_ms(250);
        int64_t now = so_monotonic_ms();
        pthread_mutex_lock(&srv->watch_lock);
        for (struct conn_watch *w = srv->watched.next; w != &srv->watched; w = w->next) {
            if (w->waiting_since_ms == 0 || now - w->waiting_since_ms <= limit_ms) continue;
            shutdown(w->fd, SHUT_RDWR); /* MHD sees the end of the stream and closes the connection */
            w->waiting_since_ms = 0;
        }
        pthread_mutex_unlock(&srv->watch_lock);
    }
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    struct so_server *srv = cls;
    struct conn_ctx *c = *con_cls;
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c == NULL) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &c->started);
        c->connection = connection;
        c->srv = srv;
        atomic_fetch_add(&srv->in_flight, 1);
        watch_set(srv, connection, 0); /* the head is in */
        c->req.arena = &c->arena;
        c->req.cfg = srv->cfg;
        c->req.method = method;
        c->req.path = url;
        c->req.server_ctx = c;
        c->req.now = so_now();
        c->req.shutting_down = atomic_load(&srv->shutting_down);
        const char *rid = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "X-Request-Id");
        if (rid != NULL && request_id_ok(rid))
            snprintf(c->req.request_id, sizeof c->req.request_id, "%s", rid);
        else
            so_request_id(c->req.request_id);
        c->req.content_type = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Type");
        c->limit =
            strcmp(url, "/api/v1/events") == 0 ? srv->cfg->max_events_body_bytes : srv->cfg->max_body_bytes;
        const char *cl = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > c->limit) c->too_large = true;
        *con_cls = c;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (c->too_large) return MHD_YES;
        if (c->len + n > c->limit) {
            c->too_large = true;
            free(c->body);
            c->body = NULL;
            c->len = c->cap = 0;
            return MHD_YES;
        }
        if (c->len + n + 1 > c->cap) {
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n + 1)
                cap *= 2;
            char *grown = realloc(c->body, cap);
            if (grown == NULL) return MHD_NO;
            c->body = grown;
            c->cap = cap;
        }
        memcpy(c->body + c->len, upload_data, n);
        c->len += n;
        return MHD_YES;
    }
    if (c->suspended) { /* resumed: the deferred work is done */
        c->suspended = false;
        c->req.defer_finish(&c->req);
        return send_reply(connection, c);
    }
    c->req.raw_body = c->body ? c->body : "";
    if (c->body) c->body[c->len] = '\0';
    c->req.raw_len = c->len;
    handle(srv, c);
    if (c->req.defer_start != NULL && c->req.status == 0) {
        /* suspended before the work is handed over, so that its resume cannot come first */
        c->suspended = true;
        MHD_suspend_connection(connection);
        c->req.defer_start(&c->req);
        return MHD_YES;
    }
    return send_reply(connection, c);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    struct conn_ctx *c = *con_cls;
    if (c == NULL) return;
    atomic_fetch_sub(&c->srv->in_flight, 1);
    watch_set(c->srv, connection, so_monotonic_ms()); /* waiting for the next request's head */
    json_decref(c->req.body);
    json_decref(c->req.reply);
    json_decref(c->req.err.errors);
    free(c->req.reply_text);
    free(c->body);
    arena_release(&c->arena);
    free(c);
    *con_cls = NULL;
}

struct so_server *server_start(const struct so_config *cfg, const struct so_route *routes, size_t route_count,
                               char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char port[8];
    snprintf(port, sizeof port, "%d", cfg->listen_port);
    int gai = getaddrinfo(cfg->listen_host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", cfg->listen_host, gai_strerror(gai));
        return NULL;
    }
    struct so_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->cfg = cfg;
    srv->routes = routes;
    srv->route_count = route_count;
    srv->metrics = metrics_new(routes, route_count);
    if (srv->metrics == NULL) {
        freeaddrinfo(ai);
        free(srv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < RATE_LOCKS; i++)
        pthread_mutex_init(&srv->rate_lock[i], NULL);
    pthread_mutex_init(&srv->watch_lock, NULL);
    srv->watched.next = srv->watched.prev = &srv->watched;
    bool receipt = receipt_start(cfg->database_url, RECEIPT_WRITERS, cfg->webhook_pace_lag_ms);
    if (!receipt || !deal_reads_start(cfg->database_url, DEAL_READERS)) {
        snprintf(err, errlen, "cannot start the %s (threads, or another database in this process)",
                 receipt ? "deal readers" : "webhook receipt writers");
        if (receipt) receipt_stop();
        freeaddrinfo(ai);
        metrics_free(srv->metrics);
        free(srv);
        return NULL;
    }
    /* ITC: a graceful shutdown stops accepting (MHD_quiesce_daemon) and lets requests in flight finish */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->listen_port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->connection_timeout_s > 0 ? cfg->connection_timeout_s : 15),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)(cfg->per_ip_connections > 0 ? cfg->per_ip_connections : 0),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)4000,
        /* only when asked: passing it with 0 would also drop the SO_REUSEADDR MHD sets by default */
        cfg->reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, (unsigned)1, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (srv->daemon == NULL) {
        snprintf(err, errlen, "cannot listen on %s:%d", cfg->listen_host, cfg->listen_port);
        receipt_stop();
        deal_reads_stop();
        metrics_free(srv->metrics);
        free(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : cfg->listen_port;
    srv->watchdog_started = pthread_create(&srv->watchdog, NULL, watchdog, srv) == 0;
    if (!srv->watchdog_started) log_msg(LOG_WARN, "no watchdog for slow clients: cannot start its thread");
    return srv;
}

int server_port(const struct so_server *srv)
{
    return srv->port;
}

void server_begin_shutdown(struct so_server *srv)
{
    atomic_store(&srv->shutting_down, true); /* /readyz answers 503 from now on */
}

/* How long no request must be in flight before the drain ends. A worker thread busy with one request has not
 * read the head of a request that waits on another of its connections, so that request is not counted yet; it
 * is read within milliseconds of the worker finishing (seen: the second of two batches sent together was cut
 * when the first completed). */
#define DRAIN_SETTLE_MS 250

bool server_drain(struct so_server *srv, int grace_s)
{
    MHD_socket listener = MHD_quiesce_daemon(srv->daemon); /* no new connections */
    if (listener != MHD_INVALID_SOCKET) close(listener);
    int64_t deadline = so_monotonic_ms() + (int64_t)grace_s * 1000, idle_since = -1;
    for (int64_t now = so_monotonic_ms(); now < deadline; now = so_monotonic_ms()) {
        if (atomic_load(&srv->in_flight) > 0)
            idle_since = -1;
        else if (idle_since < 0)
            idle_since = now;
        else if (now - idle_since >= DRAIN_SETTLE_MS)
            break;
        so_sleep_ms(20);
    }
    return atomic_load(&srv->in_flight) == 0;
}

void server_stop(struct so_server *srv)
{
    if (srv == NULL) return;
    atomic_store(&srv->shutting_down, true);
    receipt_stop(); /* stores and answers what is queued: no connection stays suspended */
    deal_reads_stop();
    MHD_stop_daemon(srv->daemon); /* every connection is closed (and unwatched) before it returns */
    atomic_store(&srv->watchdog_stop, true);
    if (srv->watchdog_started) pthread_join(srv->watchdog, NULL);
    for (int i = 0; i < RATE_LOCKS; i++)
        pthread_mutex_destroy(&srv->rate_lock[i]);
    pthread_mutex_destroy(&srv->watch_lock);
    metrics_free(srv->metrics);
    free(srv);
}

void server_metrics_render(struct so_req *req, struct so_buf *out)
{
    struct so_server *srv = ((struct conn_ctx *)req->server_ctx)->srv;
    metrics_render(srv->metrics, out);
    so_buf_printf(out,
                  "# HELP salesops_http_requests_in_flight Requests begun and not yet completed.\n"
                  "# TYPE salesops_http_requests_in_flight gauge\n"
                  "salesops_http_requests_in_flight %d\n"
                  "# HELP salesops_http_connections Client connections open now.\n"
                  "# TYPE salesops_http_connections gauge\n"
                  "salesops_http_connections %d\n",
                  atomic_load(&srv->in_flight), atomic_load(&srv->connections));
    metrics_render_process(out);
}

/* What a handler sees of an HTTP request, and how it answers. No libmicrohttpd here: the server fills this
 * struct and turns the reply into a response. */
#ifndef SALESOPS_HTTP_H
#define SALESOPS_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "salesops/arena.h"
#include "salesops/config.h"
#include "salesops/error.h"
#include "salesops/types.h"

#define SO_MAX_PATH_PARAMS 4

struct db;

struct so_req {
    struct arena *arena;
    const struct so_config *cfg;
    const char *method;
    const char *path;
    const char *route; /* the matched pattern, e.g. /api/v1/deals/{id} */
    const char *params[SO_MAX_PATH_PARAMS];
    int param_count;
    const char *content_type;
    const char *raw_body; /* NUL-terminated copy; raw_len bytes */
    size_t raw_len;
    json_t *body; /* parsed JSON body (for JSON routes), borrowed */
    struct so_auth auth;
    bool authenticated;
    char request_id[48];
    int64_t now;
    struct db *db; /* this worker's connection; NULL for routes that need none */
    bool shutting_down;

    /* the reply */
    int status;
    json_t *reply;    /* owned: JSON body */
    char *reply_text; /* owned (malloc): a non-JSON body */
    size_t reply_text_len;
    const char *reply_type; /* Content-Type of reply_text */
    struct so_error err;    /* when status is 0 and err.code is set, the reply is problem+json */

    void *server_ctx; /* the server's own connection state */

    /* Set by so_req_defer: the handler's state across the wait, and the server's calls. */
    void *defer_ctx;
    void (*defer_start)(struct so_req *req);
    void (*defer_finish)(struct so_req *req);
};

/* A handler whose work is done by another thread (webhook receipt, deal reads) defers its reply: once the
 * handler returns, the server suspends the connection (its worker thread goes on with other connections) and
 * calls start(req), which hands the work over (ctx: the handler's state, in req->defer_ctx). When the work is
 * done, whoever did it calls so_req_resume(req) from any thread; finish(req) then makes the reply on the
 * connection's own thread. Only for keyless routes and for GETs (an Idempotency-Key, which only POSTs carry,
 * is not honoured across the wait). */
void so_req_defer(struct so_req *req, void *ctx, void (*start)(struct so_req *req),
                  void (*finish)(struct so_req *req));
void so_req_resume(struct so_req *req);

typedef void (*so_handler)(struct so_req *req);

#define ROUTE_PUBLIC    0u /* no key needed */
#define ROUTE_JSON_BODY 1u /* the body must be JSON (an empty body reads as {}) */
#define ROUTE_NO_DB     2u /* served without a database connection */
#define ROUTE_RAW_BODY  4u /* the handler reads raw_body itself */

struct so_route {
    const char *method;
    const char *pattern; /* segments in braces are parameters: /api/v1/deals/{id} */
    unsigned roles;      /* ROLE_BIT() mask of roles allowed; 0 for public routes */
    unsigned flags;
    so_handler handler;
};

/* The value of a query parameter, or NULL. */
const char *so_req_query(struct so_req *req, const char *name);
/* A request header, or NULL. */
const char *so_req_header(struct so_req *req, const char *name);

/* Replies: a JSON object (stolen), or an error. */
void reply_json_steal(struct so_req *req, int status, json_t *body);
void reply_error(struct so_req *req, enum so_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Replies with the error already collected in req->err (or the given one if none). */
void reply_err(struct so_req *req);
void reply_text(struct so_req *req, int status, const char *content_type, const char *text, size_t len);

/* The Prometheus text of the server that serves req: requests, latencies, connections, process memory. */
struct so_buf;
void server_metrics_render(struct so_req *req, struct so_buf *out);

/* Routing, for the server and the tests: the first route of the method whose pattern matches the path (its
 * {name} segments in params), or NULL. path_known: some route matches the path; when none of the method does,
 * allow lists the methods that do (for a 405), cut to allow_len; after a match it is left empty. */
const struct so_route *router_match(const struct so_route *routes, size_t count, const char *method,
                                    const char *path, const char **params, int *param_count, char *allow,
                                    size_t allow_len, bool *path_known);

/* The server. */
struct so_server;
struct so_server *server_start(const struct so_config *cfg, const struct so_route *routes, size_t route_count,
                               char *err, size_t errlen);
int server_port(const struct so_server *srv);
/* Marks the server as shutting down: /readyz answers 503 from now on. */
void server_begin_shutdown(struct so_server *srv);
/* Stops accepting connections and waits up to grace_s for the requests in flight; true when they all ended. */
bool server_drain(struct so_server *srv, int grace_s);
void server_stop(struct so_server *srv);

#endif

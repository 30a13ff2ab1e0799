/* The closed set of error codes: (enum, HTTP status, code string, title), defined once. */
#ifndef SALESOPS_ERROR_H
#define SALESOPS_ERROR_H
#include <jansson.h>
#include <stdbool.h>

#define SO_ERRORS(X)                                                                                         \
    X(SO_OK, 200, "ok", "OK")                                                                                \
    X(ERR_MALFORMED, 400, "malformed_request", "The request body could not be read")                         \
    X(ERR_UNAUTHORIZED, 401, "unauthorized", "A valid API key is required")                                  \
    X(ERR_FORBIDDEN, 403, "forbidden", "This key may not do that")                                           \
    X(ERR_NOT_FOUND, 404, "not_found", "Not found")                                                          \
    X(ERR_METHOD_NOT_ALLOWED, 405, "method_not_allowed", "Method not allowed")                               \
    X(ERR_CONFLICT, 409, "conflict", "The request conflicts with the current state")                         \
    X(ERR_IDEMPOTENCY_CONFLICT, 409, "idempotency_conflict", "Idempotency key reused")                       \
    X(ERR_ALREADY_DECIDED, 409, "already_decided", "The review is already decided")                          \
    X(ERR_DEAL_NOT_LOST, 409, "deal_not_lost", "The deal is no longer lost")                                 \
    X(ERR_FOCUS_ACTIVE, 409, "focus_active", "The manager already has an active focus session")              \
    X(ERR_FOCUS_CAP_REACHED, 409, "focus_cap_reached", "Too many managers are in focus")                     \
    X(ERR_NO_ELIGIBLE_MANAGER, 409, "no_eligible_manager", "No manager is eligible")                         \
    X(ERR_PAYLOAD_TOO_LARGE, 413, "payload_too_large", "The request body is too large")                      \
    X(ERR_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type", "Unsupported Content-Type")                 \
    X(ERR_VALIDATION, 422, "validation_failed", "The request is not valid")                                  \
    X(ERR_RATE_LIMITED, 429, "rate_limited", "Too many requests")                                            \
    X(ERR_INTERNAL, 500, "internal_error", "Internal error")                                                 \
    X(ERR_DB_UNAVAILABLE, 503, "db_unavailable", "The database is unavailable")                              \
    X(ERR_SHUTTING_DOWN, 503, "shutting_down", "The service is shutting down")

enum so_err {
#define SO_ERR_ENUM(e, status, code, title) e,
    SO_ERRORS(SO_ERR_ENUM)
#undef SO_ERR_ENUM
        SO_ERR_COUNT
};

struct so_error {
    enum so_err code;
    char detail[400];
    json_t *errors; /* owned: [{field, message}] for ERR_VALIDATION */
    bool retry;     /* the failure was a serialization conflict: the transaction may be run again */
};

int so_err_status(enum so_err e);
const char *so_err_code(enum so_err e);
const char *so_err_title(enum so_err e);

/* Set the error (keeps earlier field errors); returns e so that callers can `return so_fail(...)`. */
enum so_err so_fail(struct so_error *err, enum so_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Add one field error and make the error ERR_VALIDATION. */
enum so_err so_field_error(struct so_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void so_error_clear(struct so_error *err);
/* The problem+json body for the error (new reference). */
json_t *so_error_problem(const struct so_error *err);

#endif

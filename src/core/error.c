#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "salesops/error.h"
#include "salesops/validate.h"

static const struct {
    int status;
    const char *code;
    const char *title;
} table[] = {
#define SO_ERR_ROW(e, status, code, title) {status, code, title},
    SO_ERRORS(SO_ERR_ROW)
#undef SO_ERR_ROW
};

int so_err_status(enum so_err e)
{
    return table[e].status;
}
const char *so_err_code(enum so_err e)
{
    return table[e].code;
}
const char *so_err_title(enum so_err e)
{
    return table[e].title;
}

enum so_err so_fail(struct so_error *err, enum so_err e, const char *fmt, ...)
{
    err->code = e;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
    return e;
}

enum so_err so_field_error(struct so_error *err, const char *field, const char *fmt, ...)
{
    char msg[300], name[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* both may quote what the client sent, or cut it: only their valid UTF-8 goes into the JSON reply (jansson
     * refuses anything else, and the entry would be lost) */
    msg[utf8_valid_prefix(msg, strlen(msg))] = '\0';
    snprintf(name, sizeof name, "%s", field);
    name[utf8_valid_prefix(name, strlen(name))] = '\0';
    field = name;
    if (err->errors == NULL) err->errors = json_array();
    json_array_append_new(err->errors, json_pack("{s:s, s:s}", "field", field, "message", msg));
    /* the detail may be cut, and so inside a character: it too ends where its valid UTF-8 does */
    if ((err->code != ERR_VALIDATION || err->detail[0] == '\0') &&
        snprintf(err->detail, sizeof err->detail, "%s: %s", field, msg) >= (int)sizeof err->detail)
        err->detail[utf8_valid_prefix(err->detail, strlen(err->detail))] = '\0';
    err->code = ERR_VALIDATION;
    return ERR_VALIDATION;
}

void so_error_clear(struct so_error *err)
{
    json_decref(err->errors);
    err->errors = NULL;
    err->code = SO_OK;
    err->retry = false;
    err->detail[0] = '\0';
}

json_t *so_error_problem(const struct so_error *err)
{
    char type[96];
    snprintf(type, sizeof type, "urn:salesops:problem:%s", so_err_code(err->code));
    json_t *p =
        json_pack("{s:s, s:s, s:i, s:s, s:s}", "type", type, "title", so_err_title(err->code), "status",
                  so_err_status(err->code), "detail", err->detail[0] ? err->detail : so_err_title(err->code),
                  "code", so_err_code(err->code));
    if (p != NULL && err->errors != NULL) json_object_set(p, "errors", err->errors);
    return p;
}

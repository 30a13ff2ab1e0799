/* Path ids, query parameters, pages and body fields: checked at the edge, with 404 or 422 on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common.h"
#include "salesops/buf.h"

bool path_id(struct so_req *req, int idx, enum so_kind kind, int64_t *id)
{
    const char *s = req->params[idx];
    if (strncmp(s, "ext:", 4) == 0 && s[4] != '\0' && strlen(s + 4) <= EXTERNAL_ID_MAX_CHARS * 4) {
        enum db_rc rc = store_id_by_external(req->db, req->auth.account_id, kind, s + 4, id);
        if (rc == DB_OK) return true;
        if (rc != DB_NONE) {
            reply_db(req, rc, "object", 0);
            return false;
        }
    } else if (parse_positive_id(s, id)) {
        return true;
    }
    reply_error(req, ERR_NOT_FOUND, "no such object: %s", s);
    return false;
}

bool path_plain_id(struct so_req *req, int idx, const char *what, int64_t *id)
{
    if (parse_positive_id(req->params[idx], id)) return true;
    reply_error(req, ERR_NOT_FOUND, "no %s %s", what, req->params[idx]);
    return false;
}

bool query_id(struct so_req *req, const char *name, int64_t *out)
{
    const char *v = so_req_query(req, name);
    if (v == NULL) return true;
    if (parse_positive_id(v, out)) return true;
    so_field_error(&req->err, name, "must be a positive integer id");
    reply_err(req);
    return false;
}

bool query_time(struct so_req *req, const char *name, int64_t *out)
{
    const char *v = so_req_query(req, name);
    if (v == NULL) return true;
    if (so_parse_time(v, out) && *out > 0) return true;
    so_field_error(&req->err, name, "must be an RFC 3339 time such as 2026-01-31T09:00:00Z");
    reply_err(req);
    return false;
}

bool query_enum(struct so_req *req, const char *name, const char *const *choices, const char **out)
{
    const char *v = so_req_query(req, name);
    if (v == NULL) return true;
    for (int i = 0; choices[i] != NULL; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = choices[i];
            return true;
        }
    so_field_error(&req->err, name, "unknown value '%.40s'", v);
    reply_err(req);
    return false;
}

#define PERIOD_MAX_DAYS 400

bool query_period(struct so_req *req, bool required, const char **from, const char **to)
{
    const char *f = so_req_query(req, "from"), *t = so_req_query(req, "to");
    int64_t fd = 0, td = 0;
    bool ok = true;
    if (f != NULL && !so_parse_date(f, &fd)) ok = !so_field_error(&req->err, "from", "must be a date YYYY-MM-DD");
    if (t != NULL && !so_parse_date(t, &td)) ok = !so_field_error(&req->err, "to", "must be a date YYYY-MM-DD");
    if (required && f == NULL) ok = !so_field_error(&req->err, "from", "is required");
    if (required && t == NULL) ok = !so_field_error(&req->err, "to", "is required");
    if (ok && f != NULL && t != NULL && td < fd) ok = !so_field_error(&req->err, "to", "must not be before from");
    if (ok && f != NULL && t != NULL && td - fd + 1 > PERIOD_MAX_DAYS)
        ok = !so_field_error(&req->err, "to", "a period is at most %d days", PERIOD_MAX_DAYS);
    if (!ok) {
        reply_err(req);
        return false;
    }
    *from = f;
    *to = t;
    return true;
}

/* Cursors are opaque to clients: "<id>" or "<at>.<id>" in base64url. */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void encode_cursor(const char *plain, char *out, size_t outlen)
{
    size_t n = strlen(plain), o = 0;
    for (size_t i = 0; i < n && o + 5 < outlen; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)plain[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(unsigned char)plain[i + 1] << 8;
        if (i + 2 < n) v |= (uint32_t)(unsigned char)plain[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

static bool decode_cursor(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(b64, in[i]);
        if (p == NULL || in[i] == '\0') return false;
        acc = (acc << 6) | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= outlen) return false;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return true;
}

bool query_page(struct so_req *req, struct so_page *page)
{
    page->limit = 50;
    page->after_id = 0;
    page->after_at = 0;
    const char *limit = so_req_query(req, "limit");
    if (limit != NULL) {
        int64_t v = 0;
        if (!parse_positive_id(limit, &v) || v > 500) {
            so_field_error(&req->err, "limit", "must be a whole number from 1 to 500");
            reply_err(req);
            return false;
        }
        page->limit = (int)v;
    }
    const char *cursor = so_req_query(req, "cursor");
    if (cursor != NULL) {
        char plain[64];
        long long at = 0, id = 0;
        char tail;
        bool ok = strlen(cursor) < 80 && decode_cursor(cursor, plain, sizeof plain);
        if (ok && strchr(plain, '.') != NULL)
            ok = sscanf(plain, "%lld.%lld%c", &at, &id, &tail) == 2;
        else if (ok)
            ok = sscanf(plain, "%lld%c", &id, &tail) == 1;
        if (!ok || id < 1) {
            so_field_error(&req->err, "cursor", "is not a cursor this service returned");
            reply_err(req);
            return false;
        }
        page->after_id = id;
        page->after_at = at;
    }
    return true;
}

/* The next page's cursor into enc, or false when this is the last page. */
static bool next_cursor(int count, const struct so_page *page, int64_t cursor_id, int64_t cursor_at, char enc[80])
{
    if (count <= page->limit) return false;
    char plain[48];
    if (cursor_at)
        snprintf(plain, sizeof plain, "%lld.%lld", (long long)cursor_at, (long long)cursor_id);
    else
        snprintf(plain, sizeof plain, "%lld", (long long)cursor_id);
    encode_cursor(plain, enc, 80);
    return true;
}

void reply_page(struct so_req *req, json_t *items, int count, const struct so_page *page, int64_t cursor_id,
                int64_t cursor_at)
{
    char enc[80];
    json_t *next = next_cursor(count, page, cursor_id, cursor_at, enc) ? json_string(enc) : json_null();
    reply_json_steal(req, 200, json_pack("{s:o, s:o}", "items", items, "next_cursor", next));
}

void reply_buf(struct so_req *req, struct so_buf *b)
{
    if (b->failed || b->data == NULL)
        reply_error(req, ERR_INTERNAL, "out of memory");
    else
        reply_text(req, 200, "application/json; charset=utf-8", b->data, b->len);
    so_buf_free(b);
}

void reply_items_text(struct so_req *req, const void *items, int count, size_t size, write_fn write,
                      const struct so_page *page)
{
    struct so_buf b = {0};
    so_buf_put(&b, "{\"items\":[", 10);
    int shown = count > page->limit ? page->limit : count;
    int64_t last = 0;
    for (int i = 0; i < shown; i++) {
        const void *item = (const char *)items + size * (size_t)i;
        if (i > 0) so_buf_put(&b, ",", 1);
        write(&b, item);
        last = *(const int64_t *)item;
    }
    char enc[80];
    if (next_cursor(count, page, last, 0, enc))
        so_buf_printf(&b, "],\"next_cursor\":\"%s\"}", enc);
    else
        so_buf_put(&b, "],\"next_cursor\":null}", 21);
    reply_buf(req, &b);
}

bool body_fields(struct so_req *req, const struct field_spec *spec, size_t count, struct field_value *out)
{
    if (validate_fields(req->body, spec, count, out, &req->err) == SO_OK) return true;
    reply_err(req);
    return false;
}

void reply_domain_error(struct so_req *req, struct so_error *err)
{
    if (err != &req->err) {
        json_decref(req->err.errors);
        req->err = *err;
        err->errors = NULL;
    }
    reply_err(req);
}

void reply_db(struct so_req *req, enum db_rc rc, const char *what, int64_t id)
{
    if (rc == DB_NONE)
        reply_error(req, ERR_NOT_FOUND, "no %s %lld", what, (long long)id);
    else if (rc == DB_UNAVAILABLE)
        reply_error(req, ERR_DB_UNAVAILABLE, "the database is unavailable; try again shortly");
    else
        reply_error(req, ERR_INTERNAL, "could not read %s", what);
}

void reply_items(struct so_req *req, const void *items, int count, size_t size, render_fn render,
                 const struct so_page *page)
{
    json_t *list = json_array();
    int shown = count > page->limit ? page->limit : count;
    int64_t last = 0;
    for (int i = 0; i < shown; i++) {
        const void *item = (const char *)items + size * (size_t)i;
        json_array_append_new(list, render(item));
        last = *(const int64_t *)item;
    }
    reply_page(req, list, count, page, last, 0);
}

bool scope_to_own(struct so_req *req, int64_t *manager_id, const struct so_page *page)
{
    if (req->auth.role != ROLE_MANAGER) return true;
    if (*manager_id != 0 && *manager_id != req->auth.manager_id) {
        reply_page(req, json_array(), 0, page, 0, 0);
        return false;
    }
    *manager_id = req->auth.manager_id;
    return true;
}

/* The amoCRM webhook form encoding: bracketed keys, every value a string. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/amocrm.h"
#include "salesops/validate.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (which has room for n + 1 bytes). Returns the length, or -1. */
static long url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) return -1;
            int hi = hexval(s[i + 1]);
            int lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

/* Splits a decoded key "a[b][0]" into segments; returns the count or -1 when malformed or too deep. */
static int split_key(char *key, char **segments, int max)
{
    char *open = strchr(key, '[');
    int n = 0;
    if (open == NULL) {
        segments[n++] = key;
        return key[0] ? n : -1;
    }
    if (open == key) return -1;
    *open = '\0';
    segments[n++] = key;
    char *p = open + 1; /* just after a '[' */
    for (;;) {
        char *close = strchr(p, ']');
        /* `a[]` (append, in PHP) has no place in amoCRM bodies and would make a key "" */
        if (close == NULL || close == p || n >= max) return -1;
        *close = '\0';
        segments[n++] = p;
        if (close[1] == '\0') return n;
        if (close[1] != '[') return -1;
        p = close + 2;
    }
}

static bool is_index(const char *s)
{
    if (*s == '\0' || strlen(s) > 6) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

static int cmp_index(const void *a, const void *b)
{
    long x = strtol(*(const char *const *)a, NULL, 10), y = strtol(*(const char *const *)b, NULL, 10);
    return (x > y) - (x < y);
}

/* Objects whose keys are all indexes become arrays in index order, depth first. */
static json_t *arrays_from_indexes(json_t *node)
{
    if (!json_is_object(node)) return json_incref(node);
    size_t n = json_object_size(node);
    const char *key;
    json_t *value;
    bool all_index = n > 0;
    json_object_foreach(node, key, value) all_index = all_index && is_index(key);
    if (!all_index) {
        json_t *out = json_object();
        json_object_foreach(node, key, value)
        {
            if (out != NULL && json_object_set_new(out, key, arrays_from_indexes(value)) != 0) {
                json_decref(out);
                out = NULL;
            }
        }
        return out;
    }
    const char **keys = malloc(n * sizeof *keys);
    if (keys == NULL) return NULL;
    size_t i = 0;
    json_object_foreach(node, key, value) keys[i++] = key;
    qsort(keys, n, sizeof *keys, cmp_index);
    json_t *out = json_array();
    for (i = 0; i < n && out != NULL; i++) {
        if (json_array_append_new(out, arrays_from_indexes(json_object_get(node, keys[i]))) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(keys);
    return out;
}

static enum so_err put(json_t *root, char **seg, int n, const char *value, struct so_error *err)
{
    json_t *node = root;
    for (int i = 0; i < n - 1; i++) {
        json_t *next = json_object_get(node, seg[i]);
        if (next == NULL) {
            next = json_object();
            if (json_object_set_new(node, seg[i], next) != 0)
                return so_fail(err, ERR_INTERNAL, "out of memory");
        } else if (!json_is_object(next)) {
            return so_fail(err, ERR_MALFORMED, "key '%s' is both a value and a group", seg[i]);
        }
        node = next;
    }
    json_t *old = json_object_get(node, seg[n - 1]);
    if (old != NULL && json_is_object(old))
        return so_fail(err, ERR_MALFORMED, "key '%s' is both a group and a value", seg[n - 1]);
    /* A repeated key is refused rather than "last one wins": amo_form_lookup (the subdomain check before the
     * body is stored) and this decoder must never read two different values from one body. */
    if (old != NULL) return so_fail(err, ERR_MALFORMED, "key '%s' is repeated", seg[n - 1]);
    if (json_object_set_new(node, seg[n - 1], json_string(value)) != 0)
        return so_fail(err, ERR_INTERNAL, "out of memory");
    return SO_OK;
}

json_t *amo_form_decode(const char *body, size_t len, struct so_error *err)
{
    if (len == 0) body = ""; /* no arithmetic on a NULL body */
    json_t *root = json_object();
    char *buf = malloc(len + 1);
    if (root == NULL || buf == NULL) {
        json_decref(root);
        free(buf);
        so_fail(err, ERR_INTERNAL, "out of memory");
        return NULL;
    }
    size_t pairs = 0, start = 0;
    enum so_err e = SO_OK;
    while (start <= len && e == SO_OK) {
        const char *amp = memchr(body + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - body) : len;
        if (end > start) {
            if (++pairs > AMO_FORM_MAX_PAIRS) {
                e = so_fail(err, ERR_MALFORMED, "more than %d fields", AMO_FORM_MAX_PAIRS);
                break;
            }
            const char *eq = memchr(body + start, '=', end - start);
            size_t klen = eq ? (size_t)(eq - body) - start : end - start;
            long kn = url_decode(body + start, klen, buf);
            if (kn < 0 || !utf8_valid(buf, (size_t)kn)) {
                e = so_fail(err, ERR_MALFORMED, "field %zu: the key is not valid percent-encoded UTF-8",
                            pairs);
                break;
            }
            char *key = strdup(buf);
            if (key == NULL) {
                e = so_fail(err, ERR_INTERNAL, "out of memory");
                break;
            }
            const char *vstart = eq ? eq + 1 : body + end;
            long vn = url_decode(vstart, (size_t)(body + end - vstart), buf);
            char *seg[AMO_FORM_MAX_DEPTH + 1];
            int n = split_key(key, seg, AMO_FORM_MAX_DEPTH + 1);
            if (vn < 0 || !utf8_valid(buf, (size_t)vn))
                e = so_fail(err, ERR_MALFORMED, "field %zu: the value is not valid percent-encoded UTF-8",
                            pairs);
            else if (n < 0)
                e = so_fail(err, ERR_MALFORMED,
                            "field %zu: the key is malformed or nested deeper than %d levels", pairs,
                            AMO_FORM_MAX_DEPTH);
            else
                e = put(root, seg, n, buf, err);
            free(key);
        }
        start = end + 1;
    }
    free(buf);
    if (e != SO_OK) {
        json_decref(root);
        return NULL;
    }
    json_t *out = arrays_from_indexes(root);
    json_decref(root);
    if (out == NULL) so_fail(err, ERR_INTERNAL, "out of memory");
    return out;
}

int amo_form_lookup(const char *body, size_t len, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key), start = 0;
    if (len == 0 || klen == 0) return 0;
    char *buf = malloc(len + 1);
    if (buf == NULL) return -1;
    int found = 0;
    /* Reads the whole body, like amo_form_decode: a key without '=' has the value "", and a repeated key
     * is an error, so the two never disagree about a value. */
    while (start < len && found >= 0) {
        const char *amp = memchr(body + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - body) : len;
        const char *eq = memchr(body + start, '=', end - start);
        const char *kend = eq ? eq : body + end;
        long kn = end > start ? url_decode(body + start, (size_t)(kend - body) - start, buf) : -1;
        if (kn == (long)klen && memcmp(buf, key, klen) == 0) {
            const char *v = eq ? eq + 1 : body + end;
            long vn = url_decode(v, (size_t)(body + end - v), buf);
            if (found == 1 || vn < 0 || (size_t)vn >= outlen ||
                !utf8_valid(buf, (size_t)vn)) {
                found = -1;
            } else {
                memcpy(out, buf, (size_t)vn + 1);
                found = 1;
            }
        }
        start = end + 1;
    }
    free(buf);
    return found;
}

/* A growable text buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/buf.h"

/* Room for extra more bytes and a NUL; false (and failed set) when it cannot be had. */
static bool reserve(struct so_buf *b, size_t extra)
{
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
        b->failed = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void so_buf_printf(struct so_buf *b, const char *fmt, ...)
{
    if (b->failed) return;
    size_t room = b->data ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap); /* most writes fit at once */
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < room) {
        b->len += (size_t)n;
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void so_buf_free(struct so_buf *b)
{
    free(b->data);
    *b = (struct so_buf){0};
}

void so_buf_put(struct so_buf *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void so_buf_json_string(struct so_buf *b, const char *s)
{
    if (s == NULL) {
        so_buf_put(b, "null", 4);
        return;
    }
    static const char hex[] = "0123456789ABCDEF"; /* jansson writes \u001F */
    so_buf_put(b, "\"", 1);
    const char *run = s; /* bytes that need no escape are copied in runs */
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        so_buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        switch (ch) {
        case '"': so_buf_put(b, "\\\"", 2); break;
        case '\\': so_buf_put(b, "\\\\", 2); break;
        case '\b': so_buf_put(b, "\\b", 2); break;
        case '\f': so_buf_put(b, "\\f", 2); break;
        case '\n': so_buf_put(b, "\\n", 2); break;
        case '\r': so_buf_put(b, "\\r", 2); break;
        case '\t': so_buf_put(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            so_buf_put(b, u, 6);
        }
        }
    }
    so_buf_put(b, run, (size_t)(s - run));
    so_buf_put(b, "\"", 1);
}

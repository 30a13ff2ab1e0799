/* A growable text buffer for replies built piece by piece (the Prometheus text, for one). */
#ifndef SALESOPS_BUF_H
#define SALESOPS_BUF_H
#include <stdbool.h>
#include <stddef.h>

struct so_buf {
    char *data; /* NUL-terminated; NULL until something is written */
    size_t len, cap;
    bool failed; /* an allocation failed: the text is incomplete */
};

void so_buf_printf(struct so_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void so_buf_free(struct so_buf *b);
/* Appends n bytes as they are. */
void so_buf_put(struct so_buf *b, const char *s, size_t n);
/* s as a JSON string, quoted, escaped as jansson's json_dumps does ("null" for NULL). */
void so_buf_json_string(struct so_buf *b, const char *s);

#endif

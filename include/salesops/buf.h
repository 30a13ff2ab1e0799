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

#endif

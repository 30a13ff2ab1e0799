/* A per-request bump allocator: everything a request reads from the store lives here and is released at
 * once when the request ends. Allocation failure returns NULL; callers report 500, never abort. */
#ifndef SALESOPS_ARENA_H
#define SALESOPS_ARENA_H
#include <stddef.h>

struct arena_block;
struct arena {
    struct arena_block *head;
};

void *arena_alloc(struct arena *a, size_t size);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_release(struct arena *a);

#endif

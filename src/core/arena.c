/* A bump allocator. Each thread keeps one spare block of the standard size, so that a request's first block
 * is not a fresh malloc of 8 KiB (over glibc's per-thread cache) every time. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/arena.h"

#define ARENA_BLOCK 8192

struct arena_block {
    struct arena_block *next;
    size_t used, size;
    max_align_t data[];
};

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static void spare_key_make(void)
{
    pthread_key_create(&spare_key, free);
}

void *arena_alloc(struct arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct arena_block *b = a->head;
    if (b == NULL || b->size - b->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        pthread_once(&spare_once, spare_key_make);
        b = cap == ARENA_BLOCK ? pthread_getspecific(spare_key) : NULL;
        if (b != NULL)
            pthread_setspecific(spare_key, NULL);
        else
            b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->size = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? arena_alloc(a, (size_t)n + 1) : NULL;
    if (p != NULL) vsnprintf(p, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return p;
}

void arena_release(struct arena *a)
{
    struct arena_block *b = a->head;
    pthread_once(&spare_once, spare_key_make);
    while (b != NULL) {
        struct arena_block *next = b->next;
        if (b->size == ARENA_BLOCK && pthread_getspecific(spare_key) == NULL)
            pthread_setspecific(spare_key, b);
        else
            free(b);
        b = next;
    }
    a->head = NULL;
}

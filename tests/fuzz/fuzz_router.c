/* libFuzzer harness: router_match over the real route table (so_api_routes) with an arbitrary method and
 * path, as the server's handle() calls it, then the captured parameters cut at the next '/' as handle() does.
 * The input is "METHOD PATH": the method up to the first space, the path after it (no space: all method,
 * empty path). Method and path are copies of exactly their size, so ASan sees a read past either end; the
 * Allow list gets a buffer of exactly allow_len bytes: the server's 64, then a small one taken from the
 * input's size to reach the truncation.
 *
 * Always checked (a break aborts): the Allow list is NUL-terminated inside its buffer, a match is a route of
 * the table with the request's method, path_known is set when a route matched, there are at most
 * SO_MAX_PATH_PARAMS parameters, and each points into the path at the start of a segment.
 *
 * Built and run by scripts/fuzz.sh; seeds in tests/fuzz/corpus/fuzz_router/. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "salesops/api.h"
#include "salesops/http.h"

#define SERVER_ALLOW_LEN 64 /* src/http/server.c handle() */

static char *copy(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL) abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void broken(const char *what, const char *method, const char *path)
{
    fprintf(stderr, "fuzz_router: %s\nfuzz_router: method \"%.200s\", path \"%.2000s\"\n", what, method,
            path);
    abort();
}

static const struct so_route *match(const char *method, const char *path, size_t allow_len, bool *known)
{
    const char *params[SO_MAX_PATH_PARAMS];
    int count = -1;
    char *allow = allow_len > 0 ? malloc(allow_len) : NULL;
    if (allow_len > 0 && allow == NULL) abort();
    if (allow != NULL) memset(allow, 'x', allow_len);
    const struct so_route *r = router_match(so_api_routes, so_api_route_count, method, path, params, &count,
                                            allow, allow_len, known);
    if (allow != NULL && memchr(allow, '\0', allow_len) == NULL)
        broken("the Allow list is not NUL-terminated inside its buffer", method, path);
    if (r != NULL) {
        size_t path_len = strlen(path);
        if (r < so_api_routes || r >= so_api_routes + so_api_route_count)
            broken("the match is not a route of the table", method, path);
        if (strcmp(r->method, method) != 0) broken("the match has another method", method, path);
        if (!*known) broken("a route matched but path_known is false", method, path);
        if (count < 0 || count > SO_MAX_PATH_PARAMS) broken("a bad parameter count", method, path);
        for (int i = 0; i < count; i++) {
            if (params[i] <= path || params[i] > path + path_len || params[i][-1] != '/')
                broken("a parameter does not point at a segment of the path", method, path);
            /* as handle() copies it */
            const char *end = strchr(params[i], '/');
            char *value = end ? strndup(params[i], (size_t)(end - params[i])) : strdup(params[i]);
            if (value == NULL) abort();
            if (value[0] == '\0') broken("an empty parameter", method, path);
            free(value);
        }
    }
    free(allow);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *space = memchr(data, ' ', size);
    size_t mlen = space ? (size_t)(space - data) : size;
    char *method = copy(data, mlen);
    char *path = space ? copy(space + 1, size - mlen - 1) : copy(data, 0);
    bool known = false, known_small = false;
    const struct so_route *r = match(method, path, SERVER_ALLOW_LEN, &known);
    const struct so_route *r_small = match(method, path, size % 24, &known_small);
    if (r != r_small || known != known_small)
        broken("the result depends on the size of the Allow buffer", method, path);
    free(method);
    free(path);
    return 0;
}

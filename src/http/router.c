/* The route table is matched segment by segment; a {name} segment matches any non-empty segment. */
#include <string.h>
#include "salesops/http.h"

/* One pass over both strings, no lookahead: a request is matched against many patterns. */
static bool match_pattern(const char *pattern, const char *path, const char **params, int *count)
{
    int n = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/') return false;
        pattern++;
        path++;
        if (*pattern == '{') {
            if (*path == '\0' || *path == '/' || n >= SO_MAX_PATH_PARAMS) return false;
            params[n++] = path; /* the caller cuts it at the next '/' */
            while (*pattern && *pattern != '/')
                pattern++;
            while (*path && *path != '/')
                path++;
            continue;
        }
        while (*pattern && *pattern != '/' && *pattern == *path) {
            pattern++;
            path++;
        }
        if ((*pattern && *pattern != '/') || (*path && *path != '/')) return false;
    }
    if (*pattern || *path) return false;
    *count = n;
    return true;
}

const struct so_route *router_match(const struct so_route *routes, size_t count, const char *method,
                                    const char *path, const char **params, int *param_count, char *allow,
                                    size_t allow_len, bool *path_known)
{
    *path_known = false;
    if (allow_len > 0) allow[0] = '\0';
    /* the usual case first: the first route of the method that matches, and no Allow list to build */
    for (size_t i = 0; i < count; i++) {
        if (strcmp(routes[i].method, method) != 0) continue;
        const char *p[SO_MAX_PATH_PARAMS];
        int n = 0;
        if (!match_pattern(routes[i].pattern, path, p, &n)) continue;
        *path_known = true;
        memcpy(params, p, sizeof p);
        *param_count = n;
        return &routes[i];
    }
    /* none: whether the path is known (405 with the methods allowed) or not (404) */
    for (size_t i = 0; i < count; i++) {
        const char *p[SO_MAX_PATH_PARAMS];
        int n = 0;
        if (!match_pattern(routes[i].pattern, path, p, &n)) continue;
        *path_known = true;
        if (allow_len > 0 && strstr(allow, routes[i].method) == NULL) {
            if (allow[0]) strncat(allow, ", ", allow_len - strlen(allow) - 1);
            strncat(allow, routes[i].method, allow_len - strlen(allow) - 1);
        }
    }
    return NULL;
}

/* The route table is matched segment by segment; a {name} segment matches any non-empty segment. */
#include <string.h>
#include "salesops/http.h"

static bool match_pattern(const char *pattern, const char *path, const char **params, int *count)
{
    int n = 0;
    while (*pattern && *path) {
        if (*pattern != '/' || *path != '/') return false;
        pattern++;
        path++;
        const char *pend = strchr(pattern, '/');
        const char *send = strchr(path, '/');
        size_t plen = pend ? (size_t)(pend - pattern) : strlen(pattern);
        size_t slen = send ? (size_t)(send - path) : strlen(path);
        if (plen > 0 && pattern[0] == '{') {
            if (slen == 0 || n >= SO_MAX_PATH_PARAMS) return false;
            params[n++] = path; /* the caller cuts it at the next '/' */
        } else if (plen != slen || strncmp(pattern, path, plen) != 0) {
            return false;
        }
        pattern += plen;
        path += slen;
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
    const struct so_route *found = NULL;
    for (size_t i = 0; i < count; i++) {
        const char *p[SO_MAX_PATH_PARAMS];
        int n = 0;
        if (!match_pattern(routes[i].pattern, path, p, &n)) continue;
        *path_known = true;
        if (allow_len > 0 && strstr(allow, routes[i].method) == NULL) {
            if (allow[0]) strncat(allow, ", ", allow_len - strlen(allow) - 1);
            strncat(allow, routes[i].method, allow_len - strlen(allow) - 1);
        }
        if (found == NULL && strcmp(routes[i].method, method) == 0) {
            found = &routes[i];
            memcpy(params, p, sizeof p);
            *param_count = n;
        }
    }
    return found;
}

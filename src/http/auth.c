/* API key checks. Keys are stored as SHA-256 hashes only. A per-thread cache keeps a positive answer for at
 * most one second, so a deleted key stops working within a second (API.md). */
#include <string.h>
#include <strings.h>
#include "salesops/auth.h"
#include "salesops/crypto.h"
#include "salesops/hashcache.h"

#define CACHE_TTL_MS 1000

static _Thread_local struct so_hashcache cache;

enum so_err auth_resolve(struct db *db, const char *authorization, struct so_auth *out, struct so_error *err)
{
    static const char bearer[] = "Bearer ";
    if (authorization == NULL)
        return so_fail(err, ERR_UNAUTHORIZED, "send the API key as 'Authorization: Bearer <key>'");
    /* the scheme name is case-insensitive (RFC 9110) */
    if (strncasecmp(authorization, bearer, sizeof bearer - 1) != 0 ||
        authorization[sizeof bearer - 1] == '\0')
        return so_fail(err, ERR_UNAUTHORIZED, "the Authorization header must be 'Bearer <key>'");
    const char *key = authorization + sizeof bearer - 1;
    size_t len = strlen(key);
    if (len > 200) return so_fail(err, ERR_UNAUTHORIZED, "unknown API key");
    uint8_t hash[SO_SHA256_LEN];
    so_sha256(key, len, hash);
    if (so_hashcache_get(&cache, hash, out, sizeof *out)) return SO_OK;
    if (db == NULL) return so_fail(err, ERR_DB_UNAVAILABLE, "the database is unavailable");
    switch (store_api_key_lookup(db, hash, out)) {
    case DB_OK:
        so_hashcache_put(&cache, hash, out, sizeof *out, CACHE_TTL_MS);
        return SO_OK;
    case DB_NONE:
        return so_fail(err, ERR_UNAUTHORIZED, "unknown API key");
    case DB_UNAVAILABLE:
        return so_fail(err, ERR_DB_UNAVAILABLE, "the database is unavailable");
    default:
        return so_fail(err, ERR_INTERNAL, "could not check the API key");
    }
}

void auth_cache_clear(void)
{
    so_hashcache_clear(&cache);
}

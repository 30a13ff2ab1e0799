/* API key checks. Keys are stored as SHA-256 hashes only. A per-thread cache keeps a positive answer for at
 * most one second, so a deleted key stops working within a second (API.md). */
#include <string.h>
#include <strings.h>
#include <time.h>
#include "salesops/auth.h"
#include "salesops/crypto.h"

#define CACHE_SLOTS  64
#define CACHE_TTL_MS 1000

struct cache_entry {
    uint8_t hash[SO_SHA256_LEN];
    struct so_auth auth;
    int64_t expires_ms;
    bool used;
};

static _Thread_local struct cache_entry cache[CACHE_SLOTS];

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    struct cache_entry *slot = &cache[hash[0] % CACHE_SLOTS];
    int64_t now = monotonic_ms();
    if (slot->used && slot->expires_ms > now && so_bytes_equal(slot->hash, hash, sizeof hash)) {
        *out = slot->auth;
        return SO_OK;
    }
    if (db == NULL) return so_fail(err, ERR_DB_UNAVAILABLE, "the database is unavailable");
    switch (store_api_key_lookup(db, hash, out)) {
    case DB_OK:
        memcpy(slot->hash, hash, sizeof hash);
        slot->auth = *out;
        slot->expires_ms = now + CACHE_TTL_MS;
        slot->used = true;
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
    memset(cache, 0, sizeof cache);
}

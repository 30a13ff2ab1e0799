/* A small cache of answers keyed by a SHA-256 hash, with a time to live. */
#include <string.h>
#include "salesops/hashcache.h"
#include "salesops/timeutil.h"

bool so_hashcache_get(struct so_hashcache *c, const uint8_t key[SO_SHA256_LEN], void *value, size_t len)
{
    if (len > SO_HASHCACHE_VALUE) return false;
    const size_t i = key[0] % SO_HASHCACHE_SLOTS;
    if (!c->slot[i].used || c->slot[i].expires_ms <= so_monotonic_ms() ||
        !so_bytes_equal(c->slot[i].key, key, SO_SHA256_LEN))
        return false;
    memcpy(value, c->slot[i].value, len);
    return true;
}

void so_hashcache_put(struct so_hashcache *c, const uint8_t key[SO_SHA256_LEN], const void *value, size_t len,
                      int ttl_ms)
{
    if (len > SO_HASHCACHE_VALUE) return;
    const size_t i = key[0] % SO_HASHCACHE_SLOTS;
    memcpy(c->slot[i].key, key, SO_SHA256_LEN);
    memcpy(c->slot[i].value, value, len);
    c->slot[i].expires_ms = so_monotonic_ms() + ttl_ms;
    c->slot[i].used = true;
}

void so_hashcache_clear(struct so_hashcache *c)
{
    memset(c, 0, sizeof *c);
}

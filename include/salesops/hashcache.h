/* A small cache of answers keyed by a SHA-256 hash (of an API key, of a webhook token), with a time to live.
 * Meant to be _Thread_local: no locks. A slot holds one answer; a newer one replaces it. */
#ifndef SALESOPS_HASHCACHE_H
#define SALESOPS_HASHCACHE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "salesops/crypto.h"

#define SO_HASHCACHE_SLOTS 64
#define SO_HASHCACHE_VALUE 160 /* the largest answer, in bytes */

struct so_hashcache {
    struct {
        uint8_t key[SO_SHA256_LEN];
        int64_t expires_ms;
        bool used;
        _Alignas(8) unsigned char value[SO_HASHCACHE_VALUE];
    } slot[SO_HASHCACHE_SLOTS];
};

/* Copies a live answer for key into value (len bytes); false when there is none. */
bool so_hashcache_get(struct so_hashcache *c, const uint8_t key[SO_SHA256_LEN], void *value, size_t len);
void so_hashcache_put(struct so_hashcache *c, const uint8_t key[SO_SHA256_LEN], const void *value, size_t len,
                      int ttl_ms);
void so_hashcache_clear(struct so_hashcache *c);

#endif

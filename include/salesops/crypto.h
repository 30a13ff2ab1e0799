#ifndef SALESOPS_CRYPTO_H
#define SALESOPS_CRYPTO_H
#include <stddef.h>
#include <stdint.h>

#define SO_SHA256_LEN 32
void so_sha256(const void *data, size_t len, uint8_t out[SO_SHA256_LEN]);
/* A new secret: prefix + 40 lowercase hex characters of randomness. Returns 0 or -1. */
int so_new_secret(const char *prefix, char *out, size_t len);
/* A request id: 24 hex digits, unique in practice, cheap (a per-thread generator, not a secret). */
#define SO_REQUEST_ID_LEN 24
void so_request_id(char out[SO_REQUEST_ID_LEN + 1]);
/* n bytes as 2n lowercase hex digits and a NUL. */
void so_hex(const uint8_t *raw, size_t n, char *out);
/* Constant-time comparison. */
int so_bytes_equal(const void *a, const void *b, size_t len);

#endif

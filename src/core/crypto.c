#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include "salesops/crypto.h"

void so_sha256(const void *data, size_t len, uint8_t out[SO_SHA256_LEN])
{
    unsigned int n = SO_SHA256_LEN;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

int so_new_secret(const char *prefix, char *out, size_t len)
{
    uint8_t raw[20];
    size_t plen = strlen(prefix);
    if (len < plen + 2 * sizeof raw + 1 || RAND_bytes(raw, sizeof raw) != 1) return -1;
    memcpy(out, prefix, plen);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + plen + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

int so_bytes_equal(const void *a, const void *b, size_t len)
{
    const unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

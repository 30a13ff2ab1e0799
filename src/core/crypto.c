#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "salesops/crypto.h"

static const char hex_digits[] = "0123456789abcdef";

/* OpenSSL 3 looks the digest up (under locks) on every call given EVP_sha256(): fetch it once. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void so_sha256(const void *data, size_t len, uint8_t out[SO_SHA256_LEN])
{
    pthread_once(&sha256_once, sha256_fetch);
    unsigned int n = SO_SHA256_LEN;
    EVP_Digest(data, len, out, &n, sha256_md ? sha256_md : EVP_sha256(), NULL);
}

void so_hex(const uint8_t *raw, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[raw[i] >> 4];
        out[2 * i + 1] = hex_digits[raw[i] & 15];
    }
    out[2 * n] = '\0';
}

/* splitmix64: a per-thread sequence seeded once from the system's randomness; ids, not secrets */
void so_request_id(char out[SO_REQUEST_ID_LEN + 1])
{
    static _Thread_local uint64_t state;
    static _Thread_local int seeded;
    if (!seeded) {
        if (RAND_bytes((unsigned char *)&state, sizeof state) != 1) state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
        seeded = 1;
    }
    uint8_t raw[SO_REQUEST_ID_LEN / 2];
    for (size_t i = 0; i < sizeof raw; i += 8) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        memcpy(raw + i, &z, sizeof raw - i < 8 ? sizeof raw - i : 8);
    }
    so_hex(raw, sizeof raw, out);
}

int so_new_secret(const char *prefix, char *out, size_t len)
{
    uint8_t raw[20];
    size_t plen = strlen(prefix);
    if (len < plen + 2 * sizeof raw + 1 || RAND_bytes(raw, sizeof raw) != 1) return -1;
    memcpy(out, prefix, plen);
    so_hex(raw, sizeof raw, out + plen);
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

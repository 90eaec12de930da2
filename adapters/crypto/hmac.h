/* hmac: HMAC-SHA256 (RFC 2104) for JWT signatures and Stripe webhook signatures. */
#ifndef HEX_HMAC_H
#define HEX_HMAC_H

#include <stddef.h>

#define CRYPTO_HMAC_SHA256_LEN 32

/* out gets the 32-byte MAC of msg[0..len) under key[0..keylen). */
void crypto_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t len,
                        unsigned char out[CRYPTO_HMAC_SHA256_LEN]);

/* The same MAC as 64 lower-case hex digits and a NUL (Stripe's "v1=" form). */
void crypto_hmac_sha256_hex(const void *key, size_t keylen, const void *msg, size_t len,
                            char out[2 * CRYPTO_HMAC_SHA256_LEN + 1]);

/* Writes in[0..n) as 2n lower-case hex digits and a NUL to out (size 2n + 1). */
void crypto_hmac_hex_encode(const void *in, size_t n, char *out);

#endif

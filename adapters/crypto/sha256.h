/* sha256: a plain digest, for fingerprints (not for passwords). */
#ifndef HEX_SHA256_H
#define HEX_SHA256_H

#include <stddef.h>

/* out gets 64 lower-case hex digits and a NUL. */
void crypto_sha256_hex(const void *data, size_t len, char out[65]);

#endif

/*
 * random_ids: the id_source port with UUID version 7 (RFC 9562): a 48-bit Unix
 * millisecond time stamp then 74 random bits, so ids sort roughly by creation time and
 * index well, and cannot be guessed. Also the kernel CSPRNG for other random needs.
 */
#ifndef HEX_RANDOM_IDS_H
#define HEX_RANDOM_IDS_H

#include <stddef.h>

#include "core/ports/id_source.h"

/* Stateless and thread-safe; self is NULL. */
struct id_source random_ids_port(void);

/* Writes a new UUIDv7 in canonical lower-case text and a NUL to out. */
void random_ids_new(char out[HEX_ID_LEN + 1]);

/* Fills buf with n bytes from getrandom(); aborts if the kernel cannot give them. */
void crypto_random_bytes(void *buf, size_t n);

/* Writes nbytes random bytes as 2 * nbytes lower-case hex digits and a NUL to out. */
void crypto_random_hex(char *out, size_t nbytes);

#endif

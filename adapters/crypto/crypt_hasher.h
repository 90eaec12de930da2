/*
 * crypt_hasher: the password_hasher port on libxcrypt's yescrypt ("$y$..." hashes that
 * carry their own salt and cost). Thread-safe: every call has its own scratch memory.
 */
#ifndef HEX_CRYPT_HASHER_H
#define HEX_CRYPT_HASHER_H

#include <pthread.h>

#include "core/ports/password_hasher.h"
#include "core/user.h"

#define CRYPT_HASHER_COST_MAX 11

struct crypt_hasher {
	unsigned long cost; /* 1..CRYPT_HASHER_COST_MAX, 0 = libxcrypt's default (5) */
	pthread_mutex_t dummy_lock;
	char dummy[HEX_HASH_MAX]; /* "" until crypt_hasher_dummy_hash() first runs */
};

/*
 * cost applies to new hashes only; verification always uses the cost stored in the
 * hash, so a changed setting never locks anyone out. A cost above the maximum makes
 * every hash() fail with HEX_INTERNAL (the daemon's config check refuses it first).
 */
void crypt_hasher_init(struct crypt_hasher *h, unsigned long cost);

/*
 * hash: HEX_INVALID for a password over HEX_PASSWORD_MAX bytes (refused before any
 * work), HEX_INTERNAL if libxcrypt fails or out is too small.
 * verify: HEX_OK on a match; HEX_UNAUTHENTICATED on a mismatch, an over-long password,
 * or a stored hash that is not a well-formed yescrypt hash ("*0", "", "plain", other
 * methods); HEX_INTERNAL if libxcrypt fails for another reason. yescrypt reports its own
 * out-of-memory like a malformed hash (EINVAL), so that case is a refusal too, logged
 * as "password_hash_unusable".
 */
struct password_hasher crypt_hasher_port(struct crypt_hasher *h);

/*
 * A valid hash, at h's cost, of a random password nobody knows: verifying a login for an
 * unknown email against it costs the same as for a real account. Computed on the first
 * call and then reused; the string lives as long as h. NULL if libxcrypt failed (logged).
 */
const char *crypt_hasher_dummy_hash(struct crypt_hasher *h);

#endif

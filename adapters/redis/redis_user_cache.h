/*
 * redis_user_cache: the user_cache port over Redis. Key `hex:user:v1:<id>`, value a
 * compact versioned text encoding of struct user (which holds no password material),
 * written with SET ... EX ttl. A value that does not decode is a miss and is deleted.
 * A delete that fails is remembered (process-wide, up to 256 keys) and retried before
 * the next cache command of any thread; until it succeeds gets answer HEX_UNAVAILABLE,
 * so a write is never followed by a read of the stale entry from this process.
 */
#ifndef HEX_REDIS_USER_CACHE_H
#define HEX_REDIS_USER_CACHE_H

#include <stdint.h>

#include "adapters/redis/redis_conn.h"
#include "core/ports/user_cache.h"

/* Every entry's key starts with this; the rest is the user id. */
#define REDIS_USER_CACHE_KEY_PREFIX "hex:user:v1:"

struct redis_user_cache {
	struct redis_conn *conn; /* borrowed; one per thread, like the cache itself */
	int ttl_s;               /* HEX_CACHE_TTL; <= 0 stores nothing */
};

/* The port over c; c must outlive it. */
struct user_cache redis_user_cache_port(struct redis_user_cache *c);

/* Process-wide counters since start: get hits, get misses, failed gets/puts/dels. */
void redis_user_cache_stats(uint64_t *hits, uint64_t *misses, uint64_t *errors);

/* For the asynchronous reader (redis_async_cache.c), which shares format and counters. */
enum redis_cache_result { REDIS_CACHE_HIT = 0, REDIS_CACHE_MISS, REDIS_CACHE_ERROR };
void redis_user_cache_count(enum redis_cache_result result);
/* Decodes v[0..len) into out if it is a well-formed value for user id. */
bool redis_user_cache_decode(const char *v, size_t len, const char *id, struct user *out);
/* Writes the key of user id (n >= 64); false for a malformed id. */
bool redis_user_cache_key(const char *id, char *key, size_t n);
/* True while this process still owes Redis a delete that failed: reads must then go
 * through the synchronous path, which retries it first. */
bool redis_user_cache_has_pending(void);

#endif

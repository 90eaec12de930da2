/*
 * user_cache_admin: what an operator does to the user cache as a whole: count what it
 * holds and throw entries away. The cache is rebuildable, so a flush loses nothing but
 * speed: the next read of each user rebuilds its entry from the repository.
 */
#ifndef HEX_PORT_USER_CACHE_ADMIN_H
#define HEX_PORT_USER_CACHE_ADMIN_H

#include "core/user.h"

/* What the cache did for this process since it started. */
struct user_cache_counters {
	uint64_t hits, misses, errors;
};

struct user_cache_admin_ops {
	/* How many users are cached now. HEX_UNAVAILABLE if the cache cannot be reached. */
	enum hex_status (*count)(void *self, long *out);
	/* Drops the entry of user id, or every user's when id is NULL; *deleted gets how many
	 * entries went. HEX_UNAVAILABLE if the cache failed (some may be gone). */
	enum hex_status (*flush)(void *self, const char *id, long *deleted);
	void (*counters)(void *self, struct user_cache_counters *out);
};

struct user_cache_admin {
	const struct user_cache_admin_ops *ops; /* NULL ops: no cache configured */
	void *self;
};

#endif

/*
 * user_cache: a rebuildable cache of users by id. Never holds password material.
 * Failures are not errors for the caller: a cache that is down behaves as a miss.
 */
#ifndef HEX_PORT_USER_CACHE_H
#define HEX_PORT_USER_CACHE_H

#include "core/user.h"

struct user_cache_ops {
	/* HEX_OK on a hit, HEX_NOT_FOUND on a miss, HEX_UNAVAILABLE if the cache failed. */
	enum hex_status (*get)(void *self, const char *id, struct user *out);
	void (*put)(void *self, const struct user *u);
	/*
	 * Called after every committed write of the user. HEX_UNAVAILABLE when the delete
	 * failed (the entry may be stale until its TTL); callers that can retry later do.
	 */
	enum hex_status (*del)(void *self, const char *id);
};

struct user_cache {
	const struct user_cache_ops *ops; /* NULL ops: no cache configured */
	void *self;
};

#endif

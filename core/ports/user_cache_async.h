/*
 * user_cache_async: a non-blocking read of the user cache for an event-loop thread, so
 * that the hottest path (an authenticated read served from the cache) needs no hand-off
 * to a worker thread. Only reads: every write still goes through user_service.
 */
#ifndef HEX_PORT_USER_CACHE_ASYNC_H
#define HEX_PORT_USER_CACHE_ASYNC_H

#include "core/user.h"

/* st: HEX_OK with u on a hit, HEX_NOT_FOUND on a miss, HEX_UNAVAILABLE on failure. */
typedef void (*user_cache_async_fn)(void *arg, enum hex_status st, const struct user *u);

struct user_cache_async_ops {
	/*
	 * Starts a lookup; done runs exactly once later on the caller's loop thread.
	 * False when a lookup cannot start now (not connected, backing off): done never
	 * runs then, and the caller takes the synchronous path.
	 */
	bool (*get)(void *self, const char *id, user_cache_async_fn done, void *arg);
};

struct user_cache_async {
	const struct user_cache_async_ops *ops; /* NULL ops: none configured */
	void *self;
};

#endif

/*
 * redis_async_cache: the user_cache_async port on one event loop: a hiredis async
 * connection attached to the loop's event_base, so that many lookups share one
 * connection and are pipelined. A lookup older than timeout_ms drops the connection
 * (every pending lookup then answers HEX_UNAVAILABLE) and a back-off starts; callers
 * take the synchronous path meanwhile. One instance per loop thread; not thread-safe.
 */
#ifndef HEX_REDIS_ASYNC_CACHE_H
#define HEX_REDIS_ASYNC_CACHE_H

#include "core/hex.h"
#include "core/ports/user_cache_async.h"

struct event_base;
struct redis_async_cache;

/* NULL + err on a malformed URL; the server need not be up. */
struct redis_async_cache *redis_async_cache_new(struct event_base *base, const char *url,
                                                int timeout_ms, struct hex_err *err);
/* Pending lookups answer HEX_UNAVAILABLE first. NULL ok. */
void redis_async_cache_free(struct redis_async_cache *c);
struct user_cache_async redis_async_cache_port(struct redis_async_cache *c);

#endif

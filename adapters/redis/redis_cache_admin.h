/*
 * redis_cache_admin: the user_cache_admin port over the keys redis_user_cache writes
 * (REDIS_USER_CACHE_KEY_PREFIX<id>). It walks them with SCAN MATCH, never KEYS, so that
 * counting or flushing a large cache never blocks Redis for the API's reads; a flush
 * deletes each SCAN batch with one DEL. Keys of any other prefix are never touched.
 *
 * count() adds up what the walk returns: exact on a quiet cache; SCAN may return a key
 * twice while Redis resizes its table, so under writes it is an estimate. flush()'s
 * count is exact (a key deleted twice counts once). Not thread-safe: one port per
 * redis_conn, one redis_conn per thread.
 */
#ifndef HEX_REDIS_CACHE_ADMIN_H
#define HEX_REDIS_CACHE_ADMIN_H

#include "adapters/redis/redis_conn.h"
#include "core/ports/user_cache_admin.h"

/* Keys asked for per SCAN step (a hint to Redis) and so deleted per DEL, at most. */
#define REDIS_CACHE_ADMIN_BATCH 500

/* The port over c (borrowed: it must outlive the port). */
struct user_cache_admin redis_cache_admin_port(struct redis_conn *c);

#endif

/* cache_service: the operators' use cases of the user cache (CACHE STATS, CACHE FLUSH). */
#ifndef HEX_CACHE_SERVICE_H
#define HEX_CACHE_SERVICE_H

#include "core/ports/user_cache_admin.h"

struct cache_service {
	struct user_cache_admin admin; /* NULL ops: no cache configured */
};

struct cache_stats {
	struct user_cache_counters counters;
	long keys; /* users cached now */
};

/* HEX_UNAVAILABLE when no cache is configured or it cannot be reached. */
enum hex_status cache_service_stats(struct cache_service *s, struct cache_stats *out,
                                    struct hex_err *err) HEX_MUST_CHECK;

/*
 * Drops user_id's cached entry, or every cached user when user_id is NULL; *deleted gets
 * how many went. HEX_INVALID naming "user_id" when it is not a UUID; HEX_UNAVAILABLE as
 * for stats.
 */
enum hex_status cache_service_flush(struct cache_service *s, const char *user_id, long *deleted,
                                    struct hex_err *err) HEX_MUST_CHECK;

#endif

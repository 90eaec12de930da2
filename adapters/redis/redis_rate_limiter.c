/* redis_rate_limiter.c: fixed-window attempt counting in Redis. */
#include "adapters/redis/redis_rate_limiter.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/xmalloc.h"

static _Atomic uint64_t stat_allowed;
static _Atomic uint64_t stat_limited;
static _Atomic uint64_t stat_errors;

static enum hex_status limiter_hit(void *self, const char *key, int limit, int window_s,
                                   int *retry_after_s)
{
	struct redis_conn *conn = self;
	enum hex_status st = HEX_OK;
	redisReply *replies[2] = {NULL, NULL};
	char *rkey = NULL;
	if (limit <= 0 || window_s <= 0)
		goto out;

	/* Wall time, not monotonic: every process must pick the same window. */
	int64_t now = (int64_t)time(NULL);
	int64_t window = now / window_s;
	rkey = xasprintf("hex:rl:%s:%lld", key, (long long)window);
	char ttl[16];
	snprintf(ttl, sizeof ttl, "%d", window_s);
	const char *incr[] = {"INCR", rkey};
	/* NX: only the first hit of a window sets the expiry; later hits must not extend it. */
	const char *expire[] = {"EXPIRE", rkey, ttl, "NX"};
	const struct redis_cmd cmds[] = {{2, incr, NULL}, {4, expire, NULL}};
	if (redis_conn_pipeline(conn, cmds, 2, replies) != HEX_OK ||
	    replies[0]->type != REDIS_REPLY_INTEGER) {
		atomic_fetch_add_explicit(&stat_errors, 1, memory_order_relaxed);
		goto out;
	}
	if (replies[0]->integer > limit) {
		st = HEX_RATE_LIMITED;
		if (retry_after_s != NULL)
			*retry_after_s = (int)((window + 1) * window_s - now);
	}
out:
	atomic_fetch_add_explicit(st == HEX_OK ? &stat_allowed : &stat_limited, 1,
	                          memory_order_relaxed);
	for (size_t i = 0; i < 2; i++)
		if (replies[i] != NULL)
			freeReplyObject(replies[i]);
	free(rkey);
	return st;
}

static const struct rate_limiter_ops redis_rate_limiter_ops = {
    .hit = limiter_hit,
};

struct rate_limiter redis_rate_limiter_port(struct redis_conn *conn)
{
	return (struct rate_limiter){.ops = &redis_rate_limiter_ops, .self = conn};
}

void redis_rate_limiter_stats(uint64_t *allowed, uint64_t *limited, uint64_t *errors)
{
	*allowed = atomic_load_explicit(&stat_allowed, memory_order_relaxed);
	*limited = atomic_load_explicit(&stat_limited, memory_order_relaxed);
	*errors = atomic_load_explicit(&stat_errors, memory_order_relaxed);
}

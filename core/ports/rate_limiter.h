/* rate_limiter: counts attempts per key in fixed windows, shared by every hexd process. */
#ifndef HEX_PORT_RATE_LIMITER_H
#define HEX_PORT_RATE_LIMITER_H

#include "core/hex.h"

struct rate_limiter_ops {
	/*
	 * Counts one attempt for key in the current window of window_s seconds.
	 * HEX_OK if the count is within limit; HEX_RATE_LIMITED if over it, with
	 * *retry_after_s set to the seconds left in the window. A limiter that cannot
	 * reach its store answers HEX_OK (fails open) and counts the error.
	 */
	enum hex_status (*hit)(void *self, const char *key, int limit, int window_s,
	                       int *retry_after_s);
};

struct rate_limiter {
	const struct rate_limiter_ops *ops; /* NULL ops: no limiting */
	void *self;
};

#endif

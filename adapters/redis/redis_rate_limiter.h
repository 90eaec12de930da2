/*
 * redis_rate_limiter: the rate_limiter port over Redis, a fixed window shared by every
 * hexd process: one pipeline of `INCR hex:rl:<key>:<window number>` and
 * `EXPIRE <that key> <window> NX` (Redis >= 7.0) per attempt. Windows are aligned on
 * wall-clock multiples of window_s, so processes agree when their clocks do.
 * When Redis fails the limiter fails open (HEX_OK) and counts the error.
 */
#ifndef HEX_REDIS_RATE_LIMITER_H
#define HEX_REDIS_RATE_LIMITER_H

#include <stdint.h>

#include "adapters/redis/redis_conn.h"
#include "core/ports/rate_limiter.h"

/* The port over conn (borrowed, must outlive the port). A limit or window <= 0 is off. */
struct rate_limiter redis_rate_limiter_port(struct redis_conn *conn);

/* Process-wide counters since start: attempts allowed, refused, and Redis failures. */
void redis_rate_limiter_stats(uint64_t *allowed, uint64_t *limited, uint64_t *errors);

#endif

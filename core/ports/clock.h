/* clock: wall time, injectable so that tests control expiry. */
#ifndef HEX_PORT_CLOCK_H
#define HEX_PORT_CLOCK_H

#include <stdint.h>

struct clock_ops {
	int64_t (*now_us)(void *self); /* microseconds since the Unix epoch, UTC */
};

struct clock {
	const struct clock_ops *ops;
	void *self;
};

#endif

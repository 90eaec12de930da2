/* system_clock.c: wall time in microseconds since the Unix epoch. */
#include "adapters/crypto/system_clock.h"

#include <time.h>

static int64_t system_clock_now_us(void *self)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const struct clock_ops system_clock_ops = {
    .now_us = system_clock_now_us,
};

struct clock system_clock_port(void)
{
	return (struct clock){.ops = &system_clock_ops, .self = NULL};
}

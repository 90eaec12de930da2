/* system_clock: the clock port on the real wall clock (CLOCK_REALTIME). */
#ifndef HEX_SYSTEM_CLOCK_H
#define HEX_SYSTEM_CLOCK_H

#include "core/ports/clock.h"

/* Stateless and thread-safe; self is NULL. */
struct clock system_clock_port(void);

#endif

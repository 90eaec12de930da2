/* readiness: whether this process can serve requests now (its database answers). */
#ifndef HEX_PORT_READINESS_H
#define HEX_PORT_READINESS_H

#include "core/hex.h"

struct readiness_ops {
	/* HEX_OK when ready, HEX_UNAVAILABLE (with err) when a dependency is down. */
	enum hex_status (*check)(void *self, struct hex_err *err);
};

struct readiness {
	const struct readiness_ops *ops;
	void *self;
};

#endif

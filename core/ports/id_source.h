/* id_source: new unique ids (random UUIDs in production). */
#ifndef HEX_PORT_ID_SOURCE_H
#define HEX_PORT_ID_SOURCE_H

#include "core/user.h"

struct id_source_ops {
	/* Writes a canonical lower-case UUID text and its NUL to out. */
	void (*new_id)(void *self, char out[HEX_ID_LEN + 1]);
};

struct id_source {
	const struct id_source_ops *ops;
	void *self;
};

#endif

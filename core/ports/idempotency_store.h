/*
 * idempotency_store: the first answer to a client's Idempotency-Key, per user and route,
 * kept 24 hours, so that a retry gets exactly the same bytes back.
 */
#ifndef HEX_PORT_IDEMPOTENCY_STORE_H
#define HEX_PORT_IDEMPOTENCY_STORE_H

#include "core/hex.h"

#define HEX_FINGERPRINT_LEN 64 /* hex SHA-256 */

struct idempotent_answer {
	char fingerprint[HEX_FINGERPRINT_LEN + 1];
	int status;
	char *body; /* owned by the caller once returned: free() it */
};

struct idempotency_store_ops {
	/* HEX_OK and *out for a stored answer younger than 24 h, HEX_NOT_FOUND if none. */
	enum hex_status (*find)(void *self, const char *user_id, const char *route, const char *key,
	                        struct idempotent_answer *out);
	/* Stores the answer unless one is there already (the first one wins). */
	enum hex_status (*save)(void *self, const char *user_id, const char *route, const char *key,
	                        const char *fingerprint, int status, const char *body);
};

struct idempotency_store {
	const struct idempotency_store_ops *ops; /* NULL ops: keys are not remembered */
	void *self;
};

#endif

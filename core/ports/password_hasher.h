/* password_hasher: a slow, salted key-derivation function. */
#ifndef HEX_PORT_PASSWORD_HASHER_H
#define HEX_PORT_PASSWORD_HASHER_H

#include "core/hex.h"

struct password_hasher_ops {
	/* Writes a self-describing hash string (salt and cost inside) to out. */
	enum hex_status (*hash)(void *self, const char *password, char *out, size_t out_len);
	/* HEX_OK if password matches hash, HEX_UNAUTHENTICATED if not. */
	enum hex_status (*verify)(void *self, const char *password, const char *hash);
};

struct password_hasher {
	const struct password_hasher_ops *ops;
	void *self;
};

#endif

/* listeners: which setting names the address of each HTTP listener. */
#ifndef HEX_LISTENERS_H
#define HEX_LISTENERS_H

#include "adapters/http/http_routes.h"
#include "daemon/config.h"

struct listener_def {
	enum config_key key; /* its address; empty: its routes go to the API listener */
	const char *field;   /* the key's name, for errors */
	const char *env;
};

extern const struct listener_def listener_defs[LISTEN_COUNT];

#endif

/* http_routes: the route table of the v1 listener, and matching a request against it. */
#ifndef HEX_HTTP_ROUTES_H
#define HEX_HTTP_ROUTES_H

#include "adapters/http/http_exchange.h"

enum http_auth { AUTH_NONE = 0, AUTH_BEARER };
enum http_body { BODY_NONE = 0, BODY_JSON };
/* IDEM_KEYED: the route remembers its first answer to each Idempotency-Key. */
enum http_idempotency { IDEM_NONE = 0, IDEM_KEYED };

/* Which listener serves a route; a server serves a set of them (a bit mask). */
enum http_listener { LISTEN_API = 0, LISTEN_PAYMENTS, LISTEN_METRICS, LISTEN_COUNT };

/*
 * Where a route runs: on the loop thread (trivial, no I/O), the worker pool, or the
 * small pool for routes that hash passwords, so that slow hashes never starve reads.
 * POOL_LOOP_FIRST has no threads: its handler first runs on the loop thread once the
 * caller is known from the asynchronous cache, and may hand itself to the default pool
 * with http_defer() when it needs services (svc is NULL on the loop).
 */
enum http_pool {
	POOL_INLINE = 0,
	POOL_DEFAULT,
	POOL_KDF,
	POOL_GATEWAY, /* routes that call the payment gateway */
	POOL_LOOP_FIRST,
	POOL_COUNT
};

struct http_route {
	enum http_method method;
	const char *pattern; /* segments; ":name" matches one segment */
	enum http_auth auth;
	enum http_body body;
	enum http_pool pool;
	http_handler_fn handler;
	enum http_listener listener;
	enum http_idempotency idempotency;
};

#define HTTP_ROUTES_MAX 64

enum http_match { MATCH_OK, MATCH_NO_PATH, MATCH_NO_METHOD };

/*
 * Finds the route for method and path. MATCH_OK: *route and params (owned copies) are
 * set. MATCH_NO_METHOD: allow gets the comma-separated methods the path supports.
 */
enum http_match http_routes_match(unsigned listeners, enum http_method method, const char *path,
                                  const struct http_route **route, char *params[HTTP_MAX_PARAMS],
                                  char *allow, size_t allow_len);
/* Position of r in the table (0..http_routes_count()-1), for per-route metrics. */
int http_routes_index(const struct http_route *r);
int http_routes_count(void);
const struct http_route *http_routes_at(int i);
const char *http_method_name(enum http_method m);

#endif

/*
 * http_exchange: one HTTP request and its reply as it travels from the loop thread
 * (which owns the connection) to a worker thread (which runs the use case) and back.
 * The worker touches only the plain fields; `req` belongs to the loop thread.
 * Every handler path ends in exactly one http_reply_* call.
 */
#ifndef HEX_HTTP_EXCHANGE_H
#define HEX_HTTP_EXCHANGE_H

#include "adapters/http/http_trace.h"
#include "core/services.h"

#include <jansson.h>

struct evhttp_request;
struct http_server;
struct http_route;

enum http_method { HTTP_GET = 0, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OTHER };

#define HTTP_REQUEST_ID_MAX 128
#define HTTP_MAX_PARAMS     2
#define HTTP_MAX_HEADERS    4

struct http_header {
	const char *name; /* static string */
	char *value;      /* owned */
};

struct http_exchange {
	/* The request, read-only once queued. */
	enum http_method method;
	char *path;  /* owned, decoded, without the query */
	char *query; /* owned raw query string, or NULL */
	const struct http_route *route;
	char *params[HTTP_MAX_PARAMS]; /* owned values of the route's :params */
	char *authorization;           /* owned header copies, or NULL */
	char *idempotency_key;
	char *stripe_signature;
	char *accept;
	char *body; /* owned, NUL-terminated, body_len bytes */
	size_t body_len;
	char request_id[HTTP_REQUEST_ID_MAX + 1];
	struct http_trace trace;
	char client_addr[64];

	/* Filled in the worker before the handler runs. */
	json_t *json;            /* parsed body of a JSON route */
	struct principal caller; /* valid on routes with bearer auth */
	bool authenticated;      /* caller already admitted on the loop thread */
	bool cache_missed;       /* the loop's async read missed: skip the cache */
	bool deferred;           /* a loop-first handler asked for a worker */
	bool unrecorded;         /* not in the access log and metrics (the guard counted it) */

	/* The reply. */
	int status;       /* 0 until a reply is set */
	char *reply_body; /* owned; NULL for no body */
	size_t reply_len;
	const char *content_type; /* static; NULL means JSON */
	struct http_header headers[HTTP_MAX_HEADERS];
	int nheaders;

	/* Loop-thread plumbing. */
	struct evhttp_request *req;
	struct http_server *server;
	int64_t start_us;
	struct http_exchange *next;
};

typedef void (*http_handler_fn)(struct http_exchange *x, struct hex_services *svc);

/* Sets a JSON reply; steals body (which may be NULL for an empty reply). */
void http_reply_json(struct http_exchange *x, int status, json_t *body);
void http_reply_empty(struct http_exchange *x, int status);
/* A non-JSON reply; takes ownership of the malloc'd body. content_type is static. */
void http_reply_text(struct http_exchange *x, int status, const char *content_type, char *body,
                     size_t len);
/* Maps st through the one status table; err gives message, field and Retry-After. */
void http_reply_error(struct http_exchange *x, enum hex_status st, const struct hex_err *err);
/* An error with an HTTP-only code (405, 413, 415, 404 route). */
void http_reply_error_code(struct http_exchange *x, int status, const char *code,
                           const char *message);
/* Adds a response header; name must be a static string. */
void http_reply_header(struct http_exchange *x, const char *name, const char *value);

/* From a loop-first handler running without services: run me on a worker instead. */
void http_defer(struct http_exchange *x);

void http_exchange_free(struct http_exchange *x);

#endif

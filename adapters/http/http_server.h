/*
 * http_server: the evhttp primary adapter. The loop thread accepts, reads and routes
 * requests, and sends replies; use cases run on worker threads through an executor,
 * and finished exchanges come back to the loop through a locked queue and one event.
 */
#ifndef HEX_HTTP_SERVER_H
#define HEX_HTTP_SERVER_H

#include "adapters/http/http_conn_guard.h"
#include "adapters/http/http_routes.h"
#include "core/ports/token_signer.h"
#include "core/ports/user_cache_async.h"

struct event_base;

typedef void (*http_job_fn)(void *job, void *ctx);

/* Runs jobs on worker threads; ctx handed to the job is that worker's hex_services. */
struct http_executor_ops {
	/* False when the pool's queue is full: the request gets a fast 503. */
	bool (*submit)(void *self, enum http_pool pool, http_job_fn fn, void *job);
};

struct http_executor {
	const struct http_executor_ops *ops;
	void *self;
};

struct http_server_config {
	const char *listen; /* "host:port" */
	unsigned listeners; /* routes served: bits of (1 << enum http_listener) */
	size_t body_limit;
	size_t header_limit; /* request line and headers, bytes */
	int idle_timeout_s;  /* a connection silent this long is closed */
	/* Optional: request deadlines and the per-address cap (one guard per loop). */
	struct http_conn_guard *guard;
	/* Optional: the proxies whose X-Forwarded-For names the client. */
	const struct http_proxies *proxies;
	bool access_log; /* one log line per request */
	bool metrics;    /* per-route counters, histograms and latency windows */
	/* Optional: admit bearer callers on the loop thread from the cache, without a
	 * worker hand-off. Both set, or neither. */
	struct user_cache_async cache_async;
	struct token_signer signer;
};

/*
 * A server on base accepting from listen_fd (see http_listen_socket; the caller keeps
 * and closes it). Several loops may serve the same fd. The base must have pthreads
 * enabled. NULL + err on failure.
 */
struct http_server *http_server_new(struct event_base *base, const struct http_server_config *cfg,
                                    struct http_executor exec, int listen_fd, struct hex_err *err);
/* Closes the listening socket; connections already open are still served. */
void http_server_stop_accepting(struct http_server *s);
/* Requests received and not yet answered. */
int http_server_in_flight(struct http_server *s);
/* Closes every connection; call once in_flight is 0 (or the drain timed out). */
void http_server_free(struct http_server *s);

#endif

/*
 * admin_server: the admin port's transport (docs/ADMIN.md). Its own thread runs a
 * libevent loop that accepts operators on TCP and/or a unix socket, checks AUTH, reads
 * one command line at a time, answers the commands the server owns (QUIT, SUBSCRIBE,
 * UNSUBSCRIBE) itself and hands every other verb to a worker through an executor; the
 * worker's reply comes back to the loop, which writes it. Subscriptions stream latency
 * ticks and log lines.
 */
#ifndef HEX_ADMIN_SERVER_H
#define HEX_ADMIN_SERVER_H

#include "adapters/admin/admin_call.h"
#include "core/latency_window.h"

typedef void (*admin_job_fn)(void *job, void *ctx);

/* Runs jobs on worker threads; ctx handed to the job is that worker's hex_services. */
struct admin_executor_ops {
	/* False when no worker can take the job now: the command gets `busy`. */
	bool (*submit)(void *self, admin_job_fn fn, void *job);
};

struct admin_executor {
	const struct admin_executor_ops *ops;
	void *self;
};

/* The latency feed: calls fn for every route with traffic in the last `seconds`
 * (http_metrics_latency has this shape). */
typedef void (*admin_latency_row_fn)(const char *method, const char *route,
                                     const struct latency_stats *s, void *arg);
typedef void (*admin_latency_fn)(int seconds, admin_latency_row_fn fn, void *arg);

struct admin_server_config {
	int listen_fd;           /* a listening TCP socket (the server takes it), or -1 */
	const char *socket_path; /* a unix socket to create (mode 0600), or NULL / "" */
	const char *token;       /* HEX_ADMIN_TOKEN: non-empty */
	struct admin_executor exec;
	struct admin_process process; /* handed to the verbs in their admin_env */
	admin_latency_fn latency;     /* NULL: latency ticks carry no routes */
	/* Limits; 0 takes the protocol's value (64, 10000 ms, 1 MiB). */
	int max_connections;
	int auth_timeout_ms;
	size_t max_pending_output;
};

/*
 * Creates the unix socket (replacing a stale socket file, refusing any other file),
 * starts the thread and returns the running server; NULL + err (field "socket_path")
 * on failure, the listen_fd closed either way by then.
 */
struct admin_server *admin_server_start(const struct admin_server_config *cfg, struct hex_err *err);

/*
 * Closes every connection and the listeners, unlinks the socket file, joins the thread,
 * waits for commands still running on workers (their replies are dropped) and frees.
 * The executor must still run jobs until this returns. NULL ok.
 */
void admin_server_stop(struct admin_server *s);

#endif

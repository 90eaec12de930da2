/*
 * serve_loop: one event-loop thread of hexd: its event_base, its HTTP servers (all
 * accepting from the listening sockets shared by every loop), its own asynchronous
 * cache reader, and its part of a graceful drain.
 */
#ifndef HEX_SERVE_LOOP_H
#define HEX_SERVE_LOOP_H

#include "adapters/http/http_server.h"
#include "daemon/app.h"

struct serve_loop;

struct serve_loop_config {
	struct app *app;
	struct http_executor exec;
	int index;
	/* This loop's listening socket of each listener, or -1: its routes are then served
	 * on the LISTEN_API socket, which is always there. */
	int fds[LISTEN_COUNT];
	struct http_addr_count *conn_counts; /* shared by every loop: the per-address cap */
};

/* NULL and a line on stderr on failure. */
struct serve_loop *serve_loop_new(const struct serve_loop_config *cfg);
struct event_base *serve_loop_base(struct serve_loop *l);
/* Runs the loop on the calling thread until it has drained (or was stopped). */
void serve_loop_run(struct serve_loop *l);
/* Thread-safe: stop accepting, answer what is in flight, then return from run. */
void serve_loop_drain(struct serve_loop *l);
/* Thread-safe: return from run now. */
void serve_loop_stop(struct serve_loop *l);
int serve_loop_in_flight(struct serve_loop *l);
/* Answers pending cache lookups (they go to the pools): before the pools stop. */
void serve_loop_close_cache(struct serve_loop *l);
/* After the pools stopped. NULL ok. */
void serve_loop_free(struct serve_loop *l);

#endif

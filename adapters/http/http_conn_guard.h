/*
 * http_conn_guard: the per-connection limits evhttp 2.1 lacks. evhttp's own timeout is
 * per read, so a client trickling a byte every few seconds keeps a connection forever
 * (slowloris). The guard gives each request a deadline from its first byte to its last,
 * and caps the connections one client address holds open. A connection over either
 * limit gets a short JSON answer (408 or 503) when nothing else is being written to it,
 * and is shut down; evhttp then closes it the way it closes a vanished client.
 *
 * It watches each connection's input buffer (evhttp_set_bevcb) and learns the
 * connection from the callbacks evhttp installs on it, so it needs no change to evhttp.
 */
#ifndef HEX_HTTP_CONN_GUARD_H
#define HEX_HTTP_CONN_GUARD_H

#include "adapters/http/http_addr_count.h"
#include "adapters/http/http_proxies.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct evhttp;
struct evhttp_request;

struct http_conn_guard_config {
	int request_timeout_s;              /* first byte to last byte of one request; 0 = none */
	int max_per_addr;                   /* open connections per client address; 0 = no cap */
	struct http_addr_count *counts;     /* shared by the loops; needed with max_per_addr */
	const struct http_proxies *proxies; /* addresses the cap does not apply to */
};

struct http_conn_guard;

/*
 * One guard per loop thread (its base), shared by every server of that loop. cfg is
 * copied; counts and proxies must outlive the guard.
 */
struct http_conn_guard *http_conn_guard_new(struct event_base *base,
                                            const struct http_conn_guard_config *cfg);
/* Guards every connection http accepts from now on; http runs on the guard's base. */
void http_conn_guard_attach(struct http_conn_guard *g, struct evhttp *http);
/*
 * Loop thread: req was read whole and is about to be answered; its deadline is off. False
 * when its connection was already refused or timed out: the request must not run (its
 * bytes had arrived with the ones that broke the limit). g may be NULL (no guard), as in
 * the call below.
 */
bool http_conn_guard_request_read(struct http_conn_guard *g, struct evhttp_request *req);
/* Loop thread: the reply to req was handed to evhttp. */
void http_conn_guard_reply_sent(struct http_conn_guard *g, struct evhttp_request *req);
/* After evhttp_free() of every server attached (which closes their connections). */
void http_conn_guard_free(struct http_conn_guard *g);

/* Connections shut for a request deadline, and refused over the address cap. */
void http_conn_guard_stats(uint64_t *timed_out, uint64_t *refused);

#endif

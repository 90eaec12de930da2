/* http_conn_guard.c: request deadlines and a per-address cap around evhttp connections. */
#include "adapters/http/http_conn_guard.h"

#include "core/logger.h"
#include "core/xmalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BUCKET_BITS 12
#define BUCKETS     (1u << BUCKET_BITS)

static _Atomic uint64_t stat_timed_out;
static _Atomic uint64_t stat_refused;
/* An attack would otherwise write a line per connection: one per second at most. */
static int64_t last_timeout_log_s, last_refused_log_s;

/*
 * The guard of the loop running on this thread. An input buffer's callback gets only its
 * bufferevent (libevent 2.1 offers no way from a buffer to its owner, and a per-connection
 * allocation made before the first byte could not be freed: evhttp only tells about
 * connections it was told about). One guard per loop thread makes this exact.
 */
static _Thread_local struct http_conn_guard *thread_guard;

/* One connection that has sent at least one byte. Loop thread only. */
struct conn {
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct http_conn_guard *guard;
	struct event *deadline;
	char addr[HTTP_ADDR_MAX];
	bool counted;   /* holds one count of addr */
	bool started;   /* a request's first byte came, its last has not */
	bool in_flight; /* a request was read and is not answered yet */
	bool shut;
	struct conn *next; /* bucket chain */
};

struct http_conn_guard {
	struct event_base *base;
	struct http_conn_guard_config cfg;
	const struct timeval *timeout; /* a common timeout: O(1) to arm and disarm */
	struct conn *buckets[BUCKETS];
};

static struct conn **bucket(struct http_conn_guard *g, const void *evcon)
{
	/* Fibonacci hashing: the high bits of the product are the well-mixed ones. */
	uint64_t h = (uint64_t)(uintptr_t)evcon * 0x9e3779b97f4a7c15u;
	return &g->buckets[h >> (64 - BUCKET_BITS)];
}

static struct conn *find(struct http_conn_guard *g, const struct evhttp_connection *evcon)
{
	struct conn *c = *bucket(g, evcon);
	while (c != NULL && c->evcon != evcon)
		c = c->next;
	return c;
}

/* Writes a whole, short reply straight to the socket, then shuts the connection. */
static void shut(struct conn *c, int status, const char *reason, const char *code,
                 const char *message)
{
	if (c->shut)
		return;
	c->shut = true;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd < 0)
		return;
	/* Only when evhttp is not writing: two replies must never interleave. */
	if (!c->in_flight && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		char body[256], reply[512];
		int blen = snprintf(body, sizeof body, "{\"error\":\"%s\",\"code\":\"%s\"}\n",
		                    message, code);
		int n =
		    snprintf(reply, sizeof reply,
		             "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
		             "Content-Length: %d\r\nConnection: close\r\n%s\r\n%s",
		             status, reason, blen, status == 503 ? "Retry-After: 1\r\n" : "", body);
		/* Best effort: a client too slow to take it loses nothing it was owed. */
		if (n > 0 && (size_t)n < sizeof reply)
			(void)!send(fd, reply, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	shutdown(fd, SHUT_RDWR);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd, (void)what;
	struct conn *c = arg;
	/* The server is the slow one (answering, or writing a reply the client reads
	 * slowly while it has sent its next request): not a slow request. */
	if (c->in_flight || evbuffer_get_length(bufferevent_get_output(c->bev)) > 0) {
		evtimer_add(c->deadline, c->guard->timeout);
		return;
	}
	uint64_t n = atomic_fetch_add_explicit(&stat_timed_out, 1, memory_order_relaxed) + 1;
	if (logger_every(&last_timeout_log_s, 1))
		log_warn("http_request_timeout",
		         "closed a connection from %s: its request took over %d s to arrive "
		         "(%llu so far)",
		         c->addr, c->guard->cfg.request_timeout_s, (unsigned long long)n);
	shut(c, 408, "Request Timeout", "request_timeout", "the request was not received in time");
}

/* evhttp frees the connection: the last we hear of it. */
static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct conn *c = arg;
	struct http_conn_guard *g = c->guard;
	for (struct conn **p = bucket(g, evcon); *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	if (c->counted)
		http_addr_count_remove(g->cfg.counts, c->addr);
	if (c->deadline != NULL)
		event_free(c->deadline);
	free(c);
}

/* The first byte of a connection: register it, and apply the address cap. */
static struct conn *conn_new(struct http_conn_guard *g, struct bufferevent *bev,
                             struct evhttp_connection *evcon)
{
	struct conn *c = xcalloc(1, sizeof *c);
	c->evcon = evcon;
	c->bev = bev;
	c->guard = g;
	char *host = NULL;
	ev_uint16_t port = 0;
	evhttp_connection_get_peer(evcon, &host, &port);
	hex_strlcpy(c->addr, host != NULL ? host : "", sizeof c->addr);
	if (g->cfg.request_timeout_s > 0)
		c->deadline = evtimer_new(g->base, on_deadline, c);
	struct conn **head = bucket(g, evcon);
	c->next = *head;
	*head = c;
	evhttp_connection_set_closecb(evcon, on_close, c);

	if (g->cfg.max_per_addr > 0 && !http_proxies_has(g->cfg.proxies, c->addr)) {
		c->counted = true;
		int open = http_addr_count_add(g->cfg.counts, c->addr);
		if (open > g->cfg.max_per_addr) {
			uint64_t n =
			    atomic_fetch_add_explicit(&stat_refused, 1, memory_order_relaxed) + 1;
			if (logger_every(&last_refused_log_s, 1))
				log_warn("http_connection_refused",
				         "refused a connection from %s: it holds %d already (limit "
				         "%d; %llu refused so far)",
				         c->addr, open - 1, g->cfg.max_per_addr,
				         (unsigned long long)n);
			shut(c, 503, "Service Unavailable", "too_many_connections",
			     "too many connections from this address");
		}
	}
	return c;
}

/* Bytes went into (or out of) a connection's input buffer. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	struct bufferevent *bev = arg;
	struct http_conn_guard *g = thread_guard;
	if (info->n_added == 0 || g == NULL)
		return;
	bufferevent_data_cb readcb = NULL;
	void *cbarg = NULL;
	bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
	if (readcb == NULL || cbarg == NULL) /* not (or no longer) evhttp's */
		return;
	struct conn *c = find(g, cbarg);
	if (c == NULL)
		c = conn_new(g, bev, cbarg);
	if (c->shut || c->started)
		return;
	c->started = true;
	if (c->deadline != NULL)
		evtimer_add(c->deadline, g->timeout);
}

/* evhttp asks for each new connection's bufferevent: the socket one it would make. */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	thread_guard = arg;
	struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev != NULL)
		evbuffer_add_cb(bufferevent_get_input(bev), on_input, bev);
	return bev;
}

struct http_conn_guard *http_conn_guard_new(struct event_base *base,
                                            const struct http_conn_guard_config *cfg)
{
	struct http_conn_guard *g = xcalloc(1, sizeof *g);
	g->base = base;
	g->cfg = *cfg;
	struct timeval tv = {cfg->request_timeout_s, 0};
	g->timeout = event_base_init_common_timeout(base, &tv);
	return g;
}

void http_conn_guard_attach(struct http_conn_guard *g, struct evhttp *http)
{
	if (g->cfg.request_timeout_s > 0 || g->cfg.max_per_addr > 0)
		evhttp_set_bevcb(http, new_bev, g);
}

static struct conn *conn_of(struct http_conn_guard *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	return g != NULL && evcon != NULL ? find(g, evcon) : NULL;
}

bool http_conn_guard_request_read(struct http_conn_guard *g, struct evhttp_request *req)
{
	struct conn *c = conn_of(g, req);
	if (c == NULL)
		return true;
	if (c->shut)
		return false;
	c->in_flight = true;
	c->started = false;
	if (c->deadline != NULL)
		evtimer_del(c->deadline);
	return true;
}

void http_conn_guard_reply_sent(struct http_conn_guard *g, struct evhttp_request *req)
{
	struct conn *c = conn_of(g, req);
	if (c == NULL)
		return;
	c->in_flight = false;
	/* Bytes of the next request that came meanwhile start its clock now. */
	if (!c->shut && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
		c->started = true;
		if (c->deadline != NULL)
			evtimer_add(c->deadline, g->timeout);
	}
}

void http_conn_guard_free(struct http_conn_guard *g)
{
	if (g == NULL)
		return;
	/* evhttp_free closed every connection, and on_close forgot each: this frees only
	 * what a caller that broke that order left (their connections are gone too). */
	for (size_t i = 0; i < BUCKETS; i++)
		for (struct conn *c = g->buckets[i], *next; c != NULL; c = next) {
			next = c->next;
			if (c->counted)
				http_addr_count_remove(g->cfg.counts, c->addr);
			if (c->deadline != NULL)
				event_free(c->deadline);
			free(c);
		}
	if (thread_guard == g)
		thread_guard = NULL;
	free(g);
}

void http_conn_guard_stats(uint64_t *timed_out, uint64_t *refused)
{
	*timed_out = atomic_load_explicit(&stat_timed_out, memory_order_relaxed);
	*refused = atomic_load_explicit(&stat_refused, memory_order_relaxed);
}

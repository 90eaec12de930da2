/* serve_loop.c: one loop thread: servers, cache reader, drain. */
#include "daemon/serve_loop.h"

#include "adapters/http/http_metrics.h"
#include "adapters/redis/redis_async_cache.h"
#include "core/logger.h"
#include "core/xmalloc.h"
#include "daemon/listeners.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/*
 * Once nothing is in flight the last replies may still sit in libevent's output
 * buffers: keep the loop running a little longer so that they reach the socket before
 * evhttp_free closes the connections (always within the drain deadline).
 */
#define DRAIN_FLUSH_MS 200

struct serve_loop {
	int index;
	struct app *app;
	struct event_base *base;
	struct http_server *servers[LISTEN_COUNT]; /* NULL where the API server serves */
	struct redis_async_cache *cache_async;
	struct http_conn_guard *guard; /* one per loop: see http_conn_guard.h */
	struct event *drain_ev, *drain_timer, *log_timer;
	int64_t drain_deadline_ms, flush_until_ms;
};

static int64_t monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int serve_loop_in_flight(struct serve_loop *l)
{
	int n = 0;
	for (int i = 0; i < LISTEN_COUNT; i++)
		n += l->servers[i] != NULL ? http_server_in_flight(l->servers[i]) : 0;
	return n;
}

/* Access-log lines are buffered per loop: written at most every LOG_FLUSH_MS. */
#define LOG_FLUSH_MS 10

static void on_log_tick(evutil_socket_t fd, short what, void *arg)
{
	logger_flush();
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct serve_loop *l = arg;
	int64_t now = monotonic_ms();
	int left = serve_loop_in_flight(l);
	if (left > 0 && now < l->drain_deadline_ms)
		return;
	if (left > 0) {
		log_warn("drain_timeout", "loop %d: %d requests still in flight at the deadline",
		         l->index, left);
	} else if (l->flush_until_ms == 0) {
		l->flush_until_ms = now + DRAIN_FLUSH_MS;
		if (l->flush_until_ms > l->drain_deadline_ms)
			l->flush_until_ms = l->drain_deadline_ms;
	}
	if (left == 0 && now >= l->flush_until_ms) {
		/* Close this loop's idle keep-alive connections now: while other loops still
		 * drain, a client must not send its next request where nobody reads it (it gets a
		 * closed connection instead, which a proxy retries elsewhere). */
		for (int i = 0; i < LISTEN_COUNT; i++) {
			http_server_free(l->servers[i]);
			l->servers[i] = NULL;
		}
	}
	if (left > 0 || now >= l->flush_until_ms)
		event_base_loopexit(l->base, NULL);
}

/* Runs on the loop's own thread, woken by serve_loop_drain from any thread. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct serve_loop *l = arg;
	for (int i = 0; i < LISTEN_COUNT; i++)
		if (l->servers[i] != NULL)
			http_server_stop_accepting(l->servers[i]);
	l->drain_deadline_ms =
	    monotonic_ms() + 1000 * config_int(&l->app->cfg, CFG_SHUTDOWN_TIMEOUT);
	struct timeval tick = {0, 20 * 1000};
	event_add(l->drain_timer, &tick);
}

void serve_loop_drain(struct serve_loop *l)
{
	event_active(l->drain_ev, 0, 0);
}

void serve_loop_stop(struct serve_loop *l)
{
	event_base_loopexit(l->base, NULL);
}

static bool start_servers(struct serve_loop *l, const struct serve_loop_config *c)
{
	struct config *cfg = &l->app->cfg;
	struct hex_err err = {0};
	l->guard = http_conn_guard_new(
	    l->base, &(struct http_conn_guard_config){
	                 .request_timeout_s = (int)config_int(cfg, CFG_HTTP_REQUEST_TIMEOUT),
	                 .max_per_addr = (int)config_int(cfg, CFG_HTTP_CONNS_PER_ADDR),
	                 .counts = c->conn_counts,
	                 .proxies = &l->app->proxies,
	             });
	struct http_server_config hc = {
	    .body_limit = (size_t)config_int(cfg, CFG_BODY_LIMIT),
	    .header_limit = (size_t)config_int(cfg, CFG_HEADER_LIMIT),
	    .idle_timeout_s = (int)config_int(cfg, CFG_HTTP_IDLE_TIMEOUT),
	    .access_log = config_bool(cfg, CFG_ACCESS_LOG),
	    .metrics = config_bool(cfg, CFG_METRICS),
	    .guard = l->guard,
	    .proxies = &l->app->proxies,
	};
	const char *redis_url = config_str(cfg, CFG_REDIS_URL);
	if (redis_url[0] != '\0' && c->fds[LISTEN_API] >= 0) { /* for bearer routes only */
		l->cache_async = redis_async_cache_new(
		    l->base, redis_url, (int)config_int(cfg, CFG_REDIS_TIMEOUT_MS), &err);
		if (l->cache_async == NULL) {
			fprintf(stderr, "hexd: HEX_REDIS_URL: %s\n", err.message);
			return false;
		}
		hc.cache_async = redis_async_cache_port(l->cache_async);
		hc.signer = jwt_signer_port(&l->app->signer);
	}
	/* Listeners without a socket of their own are served by the API one. */
	unsigned orphans = 0;
	for (int i = 0; i < LISTEN_COUNT; i++)
		if (c->fds[i] < 0)
			orphans |= 1u << i;
	for (int i = 0; i < LISTEN_COUNT; i++) {
		if (c->fds[i] < 0)
			continue;
		hc.listen = config_str(cfg, listener_defs[i].key);
		hc.listeners = 1u << i | (i == LISTEN_API ? orphans : 0);
		l->servers[i] = http_server_new(l->base, &hc, c->exec, c->fds[i], &err);
		if (l->servers[i] == NULL) {
			fprintf(stderr, "hexd: %s: %s\n", listener_defs[i].env, err.message);
			return false;
		}
	}
	return true;
}

struct serve_loop *serve_loop_new(const struct serve_loop_config *c)
{
	struct serve_loop *l = xcalloc(1, sizeof *l);
	l->index = c->index;
	l->app = c->app;
	l->base = event_base_new();
	if (l->base == NULL) {
		fprintf(stderr, "hexd: cannot create an event loop\n");
		free(l);
		return NULL;
	}
	l->drain_ev = event_new(l->base, -1, 0, on_drain, l);
	l->drain_timer = event_new(l->base, -1, EV_PERSIST, on_drain_tick, l);
	l->log_timer = event_new(l->base, -1, EV_PERSIST, on_log_tick, l);
	struct timeval flush = {0, LOG_FLUSH_MS * 1000};
	event_add(l->log_timer, &flush);
	if (!start_servers(l, c)) {
		serve_loop_close_cache(l);
		serve_loop_free(l);
		return NULL;
	}
	return l;
}

struct event_base *serve_loop_base(struct serve_loop *l)
{
	return l->base;
}

void serve_loop_run(struct serve_loop *l)
{
	char name[16];
	snprintf(name, sizeof name, "loop-%d", l->index);
	pthread_setname_np(pthread_self(), name);
	http_metrics_bind_loop(l->index);
	event_base_dispatch(l->base);
	logger_flush();
}

void serve_loop_close_cache(struct serve_loop *l)
{
	if (l == NULL)
		return;
	redis_async_cache_free(l->cache_async);
	l->cache_async = NULL;
}

void serve_loop_free(struct serve_loop *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < LISTEN_COUNT; i++)
		http_server_free(l->servers[i]);
	http_conn_guard_free(l->guard);
	if (l->drain_ev != NULL)
		event_free(l->drain_ev);
	if (l->drain_timer != NULL)
		event_free(l->drain_timer);
	if (l->log_timer != NULL)
		event_free(l->log_timer);
	if (l->base != NULL)
		event_base_free(l->base);
	free(l);
}

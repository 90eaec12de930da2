/* serve.c: `hexd serve`: migrate, start the pools and listeners, run until a signal. */
#include "daemon/commands.h"

#include "adapters/http/http_metrics.h"
#include "adapters/http/http_server.h"
#include "adapters/redis/redis_async_cache.h"
#include "adapters/postgres/pg_conn.h"
#include "adapters/postgres/pg_migrate.h"
#include "core/logger.h"
#include "daemon/daemon_metrics.h"
#include "daemon/worker_pool.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct server {
	struct app *app;
	struct event_base *base;
	struct worker_pool *pools[POOL_COUNT];
	struct http_server *http;
	struct http_server *metrics_http;      /* only when metrics_listen is set */
	struct redis_async_cache *cache_async; /* the loop's own cache reader */
	struct event *sig_term, *sig_int, *drain_timer;
	int64_t drain_deadline_ms, flush_until_ms;
	bool draining;
};

static bool executor_submit(void *self, enum http_pool pool, http_job_fn fn, void *job)
{
	struct server *s = self;
	return worker_pool_submit(s->pools[pool], fn, job);
}

static const struct http_executor_ops executor_ops = {.submit = executor_submit};

static void on_libevent_log(int severity, const char *msg)
{
	logger_write(severity >= EVENT_LOG_ERR    ? LOGGER_ERROR
	             : severity >= EVENT_LOG_WARN ? LOGGER_WARN
	                                          : LOGGER_DEBUG,
	             "libevent", "%s", msg);
}

static int64_t monotonic_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/*
 * Once nothing is in flight the last replies may still sit in libevent's output
 * buffers: keep the loop running a little longer so that they reach the socket before
 * evhttp_free closes the connections (always within the drain deadline).
 */
#define DRAIN_FLUSH_MS 200

static int in_flight(struct server *s)
{
	return http_server_in_flight(s->http) +
	       (s->metrics_http != NULL ? http_server_in_flight(s->metrics_http) : 0);
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int64_t now = monotonic_ms();
	int left = in_flight(s);
	if (left > 0 && now < s->drain_deadline_ms)
		return;
	if (left > 0) {
		log_warn("drain_timeout", "%d requests still in flight at the drain deadline",
		         left);
	} else if (s->flush_until_ms == 0) {
		s->flush_until_ms = now + DRAIN_FLUSH_MS;
		if (s->flush_until_ms > s->drain_deadline_ms)
			s->flush_until_ms = s->drain_deadline_ms;
	}
	if (left > 0 || now >= s->flush_until_ms)
		event_base_loopexit(s->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	if (s->draining) {
		log_warn("shutdown_forced", "second signal: stopping now");
		event_base_loopexit(s->base, NULL);
		return;
	}
	s->draining = true;
	log_info("shutdown", "signal %d: no new connections; draining %d in-flight requests",
	         (int)sig, in_flight(s));
	http_server_stop_accepting(s->http);
	if (s->metrics_http != NULL)
		http_server_stop_accepting(s->metrics_http);
	s->drain_deadline_ms =
	    monotonic_ms() + 1000 * config_int(&s->app->cfg, CFG_SHUTDOWN_TIMEOUT);
	struct timeval tick = {0, 20 * 1000};
	event_add(s->drain_timer, &tick);
}

static bool start_pools(struct server *s)
{
	struct config *cfg = &s->app->cfg;
	int queue = (int)config_int(cfg, CFG_QUEUE_MAX);
	s->pools[POOL_DEFAULT] = worker_pool_new("api", (int)config_int(cfg, CFG_WORKERS), queue,
	                                         app_worker_new, app_worker_free, s->app);
	s->pools[POOL_KDF] = worker_pool_new("kdf", (int)config_int(cfg, CFG_KDF_WORKERS), queue,
	                                     app_kdf_worker_new, app_worker_free, s->app);
	return s->pools[POOL_DEFAULT] != NULL && s->pools[POOL_KDF] != NULL;
}

static bool migrate_at_start(struct app *app)
{
	struct pg_conn *c = app_db_open(app);
	if (c == NULL)
		return false;
	struct hex_err err = {0};
	int applied = 0;
	enum hex_status st = pg_migrate(c, &applied, &err);
	pg_conn_free(c);
	if (st != HEX_OK) {
		fprintf(stderr, "hexd: migration failed: %s\n", err.message);
		return false;
	}
	return true;
}

static bool start_listeners(struct server *s)
{
	struct config *cfg = &s->app->cfg;
	struct hex_err err = {0};
	const char *metrics_listen = config_str(cfg, CFG_METRICS_LISTEN);
	bool separate_metrics = metrics_listen[0] != '\0';
	struct http_server_config hc = {
	    .listen = config_str(cfg, CFG_HTTP_LISTEN),
	    .listeners = 1u << LISTEN_API | (separate_metrics ? 0 : 1u << LISTEN_METRICS),
	    .body_limit = (size_t)config_int(cfg, CFG_BODY_LIMIT),
	    .access_log = config_bool(cfg, CFG_ACCESS_LOG),
	    .metrics = config_bool(cfg, CFG_METRICS),
	};
	const char *redis_url = config_str(cfg, CFG_REDIS_URL);
	if (redis_url[0] != '\0') {
		s->cache_async = redis_async_cache_new(
		    s->base, redis_url, (int)config_int(cfg, CFG_REDIS_TIMEOUT_MS), &err);
		if (s->cache_async == NULL) {
			fprintf(stderr, "hexd: HEX_REDIS_URL: %s\n", err.message);
			return false;
		}
		hc.cache_async = redis_async_cache_port(s->cache_async);
		hc.signer = jwt_signer_port(&s->app->signer);
	}
	struct http_executor exec = {&executor_ops, s};
	s->http = http_server_new(s->base, &hc, exec, &err);
	if (s->http == NULL) {
		fprintf(stderr, "hexd: HEX_HTTP_LISTEN: %s\n", err.message);
		return false;
	}
	if (separate_metrics) {
		hc.listen = metrics_listen;
		hc.listeners = 1u << LISTEN_METRICS;
		s->metrics_http = http_server_new(s->base, &hc, exec, &err);
		if (s->metrics_http == NULL) {
			fprintf(stderr, "hexd: HEX_METRICS_LISTEN: %s\n", err.message);
			return false;
		}
	}
	log_info("listening", "hexd %s serving v1 on http://%s, metrics on http://%s/metrics",
	         HEX_VERSION, config_str(cfg, CFG_HTTP_LISTEN),
	         separate_metrics ? metrics_listen : config_str(cfg, CFG_HTTP_LISTEN));
	return true;
}

int cmd_serve(struct app *app, int argc, char **argv)
{
	int rc = 1;
	struct server s = {.app = app};
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(on_libevent_log);
	evthread_use_pthreads();
	hex_strlcpy(app->dummy_hash, crypt_hasher_dummy_hash(&app->hasher), sizeof app->dummy_hash);
	if (!migrate_at_start(app))
		return 1;
	s.base = event_base_new();
	if (!start_pools(&s)) {
		fprintf(stderr, "hexd: could not start the workers (see the log above)\n");
		goto out;
	}
	if (!start_listeners(&s))
		goto out;
	http_metrics_register();
	daemon_metrics_register(s.pools, POOL_COUNT);
	s.sig_term = evsignal_new(s.base, SIGTERM, on_signal, &s);
	s.sig_int = evsignal_new(s.base, SIGINT, on_signal, &s);
	s.drain_timer = event_new(s.base, -1, EV_PERSIST, on_drain_tick, &s);
	event_add(s.sig_term, NULL);
	event_add(s.sig_int, NULL);
	event_base_dispatch(s.base);
	rc = 0;
	log_info("stopped", "hexd stopped");
out:
	/* The cache reader first (its pending lookups go to the pools), then the workers
	 * (a job still running may hand its reply to the server), then the servers. */
	redis_async_cache_free(s.cache_async);
	for (int i = 0; i < POOL_COUNT; i++)
		worker_pool_free(s.pools[i]);
	http_server_free(s.http);
	http_server_free(s.metrics_http);
	if (s.sig_term != NULL)
		event_free(s.sig_term);
	if (s.sig_int != NULL)
		event_free(s.sig_int);
	if (s.drain_timer != NULL)
		event_free(s.drain_timer);
	if (s.base != NULL)
		event_base_free(s.base);
	return rc;
}

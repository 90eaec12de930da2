/* serve.c: `hexd serve`: migrate, start the pools, the loops and their listeners, run
 * until a signal, then drain. */
#include "daemon/commands.h"

#include "adapters/admin/admin_server.h"
#include "adapters/http/http_listen.h"
#include "adapters/http/http_metrics.h"
#include "core/logger.h"
#include "daemon/admin_stats.h"
#include "daemon/daemon_metrics.h"
#include "daemon/event_workers.h"
#include "daemon/listeners.h"
#include "daemon/serve_loop.h"
#include "daemon/worker_pool.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define LOOPS_MAX HTTP_METRICS_LOOPS_MAX

struct server {
	struct app *app;
	struct worker_pool *pools[POOL_COUNT];
	struct serve_loop *loops[LOOPS_MAX];
	pthread_t threads[LOOPS_MAX];
	int nloops, nthreads;
	int fds[LOOPS_MAX][LISTEN_COUNT]; /* one socket per loop and listener */
	struct event *sig_term, *sig_int;
	bool draining;
	struct event_workers *events;   /* the worker role */
	struct worker_pool *admin_pool; /* the admin port's workers, when it is on */
	struct admin_server *admin;
	struct http_addr_count *conn_counts; /* open connections per client address */
};

static bool has_role(const struct app *app, const char *role)
{
	const char *roles = config_str(&app->cfg, CFG_ROLES);
	return strcmp(roles, "api,worker") == 0 || strcmp(roles, role) == 0;
}

static bool executor_submit(void *self, enum http_pool pool, http_job_fn fn, void *job)
{
	struct server *s = self;
	return s->pools[pool] != NULL && worker_pool_submit(s->pools[pool], fn, job);
}

static const struct http_executor_ops executor_ops = {.submit = executor_submit};

static void on_libevent_log(int severity, const char *msg)
{
	logger_write(severity >= EVENT_LOG_ERR    ? LOGGER_ERROR
	             : severity >= EVENT_LOG_WARN ? LOGGER_WARN
	                                          : LOGGER_DEBUG,
	             "libevent", "%s", msg);
}

/* On loop 0, which owns the signals. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;
	if (s->draining) {
		log_warn("shutdown_forced", "second signal: stopping now");
		for (int i = 0; i < s->nloops; i++)
			serve_loop_stop(s->loops[i]);
		return;
	}
	s->draining = true;
	int in_flight = 0;
	for (int i = 0; i < s->nloops; i++)
		in_flight += serve_loop_in_flight(s->loops[i]);
	log_info("shutdown", "signal %d: no new connections; draining %d in-flight requests",
	         (int)sig, in_flight);
	for (int i = 0; i < s->nloops; i++)
		serve_loop_drain(s->loops[i]);
	/*
	 * The loops accept from duplicates of these sockets, so while ours stay open the
	 * kernel keeps completing handshakes that nobody will ever answer. Closed, a new
	 * connection is refused at once and a balancer in front (config/nginx.conf) sends
	 * the request to another instance, even a POST, since this one never saw it.
	 */
	for (int i = 0; i < LOOPS_MAX; i++)
		for (int l = 0; l < LISTEN_COUNT; l++)
			if (s->fds[i][l] >= 0) {
				close(s->fds[i][l]);
				s->fds[i][l] = -1;
			}
}

/* Each pool: its name, its size setting and how its threads start. */
static const struct {
	enum http_pool pool;
	const char *name;
	enum config_key threads;
	worker_init_fn init;
} pool_defs[] = {
    {POOL_DEFAULT, "api", CFG_WORKERS, app_worker_new},
    {POOL_KDF, "kdf", CFG_KDF_WORKERS, app_kdf_worker_new},
    {POOL_GATEWAY, "gateway", CFG_GATEWAY_WORKERS, app_worker_new},
};

/* A headless worker serves no route that needs a pool (only /metrics, on the loop). */
static bool start_pools(struct server *s)
{
	struct config *cfg = &s->app->cfg;
	if (!has_role(s->app, "api"))
		return true;
	int queue = (int)config_int(cfg, CFG_QUEUE_MAX);
	for (size_t i = 0; i < sizeof pool_defs / sizeof pool_defs[0]; i++) {
		s->pools[pool_defs[i].pool] =
		    worker_pool_new(pool_defs[i].name, (int)config_int(cfg, pool_defs[i].threads),
		                    queue, pool_defs[i].init, app_worker_free, s->app);
		if (s->pools[pool_defs[i].pool] == NULL)
			return false;
	}
	return true;
}

/*
 * Every loop gets its own SO_REUSEPORT socket per address, so the kernel spreads new
 * connections over the loops. A first plain bind proves nobody else holds the address.
 */
static bool open_listeners(struct server *s, int nloops)
{
	struct config *cfg = &s->app->cfg;
	struct hex_err err = {0};
	for (int l = 0; l < LISTEN_COUNT; l++) {
		const char *addr = config_str(cfg, listener_defs[l].key);
		if (addr[0] == '\0')
			continue; /* served on the API listener */
		if (l != LISTEN_METRICS && !has_role(s->app, "api"))
			continue; /* a headless worker serves only its metrics */
		int probe = http_listen_socket(addr, listener_defs[l].field, false, &err);
		if (probe >= 0)
			close(probe);
		for (int i = 0; probe >= 0 && i < nloops; i++) {
			s->fds[i][l] = http_listen_socket(addr, listener_defs[l].field, true, &err);
			if (s->fds[i][l] < 0)
				probe = -1;
		}
		if (probe < 0) {
			fprintf(stderr, "hexd: %s: %s\n", listener_defs[l].env, err.message);
			return false;
		}
	}
	return true;
}

static bool admin_submit(void *self, admin_job_fn fn, void *job)
{
	return worker_pool_submit(self, fn, job);
}

static const struct admin_executor_ops admin_executor_ops = {.submit = admin_submit};

/*
 * The admin port (docs/ADMIN.md), in any role: on when HEX_ADMIN_TOKEN is set and there
 * is an address or a socket. Its own workers, so that an operator's slow query never
 * holds a request, and its own thread. False (with one line naming the key) stops
 * start-up.
 */
static bool start_admin(struct server *s)
{
	struct config *cfg = &s->app->cfg;
	const char *addr = config_str(cfg, CFG_ADMIN_LISTEN);
	const char *path = config_str(cfg, CFG_ADMIN_SOCKET);
	struct hex_err err = {0};
	int fd = -1;
	if (config_str(cfg, CFG_ADMIN_TOKEN)[0] == '\0' || (addr[0] == '\0' && path[0] == '\0'))
		return true;
	if (addr[0] != '\0' && (fd = http_listen_socket(addr, "admin_listen", false, &err)) < 0) {
		fprintf(stderr, "hexd: HEX_ADMIN_LISTEN: %s\n", err.message);
		return false;
	}
	int threads = (int)config_int(cfg, CFG_ADMIN_WORKERS);
	/* At most one command per connection runs or waits: 64 places are enough. */
	s->admin_pool =
	    worker_pool_new("admin", threads, 64, app_worker_new, app_worker_free, s->app);
	if (s->admin_pool == NULL) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "hexd: could not start the admin workers (see the log above)\n");
		return false;
	}
	struct worker_pool *pools[POOL_COUNT + 1];
	memcpy(pools, s->pools, sizeof s->pools);
	pools[POOL_COUNT] = s->admin_pool;
	struct admin_server_config c = {
	    .listen_fd = fd,
	    .socket_path = path,
	    .token = config_str(cfg, CFG_ADMIN_TOKEN),
	    .exec = {&admin_executor_ops, s->admin_pool},
	    .process = admin_stats_process(config_str(cfg, CFG_ROLES), pools, POOL_COUNT + 1),
	    .latency = http_metrics_latency,
	};
	s->admin = admin_server_start(&c, &err);
	if (s->admin == NULL) {
		fprintf(stderr, "hexd: %s: %s\n",
		        err.field != NULL && strcmp(err.field, "socket_path") == 0
		            ? "HEX_ADMIN_SOCKET"
		            : "HEX_ADMIN_LISTEN",
		        err.message);
		return false;
	}
	log_info("admin_listening", "admin port on %s%s%s", addr[0] != '\0' ? addr : "",
	         addr[0] != '\0' && path[0] != '\0' ? " and " : "", path);
	return true;
}

/* Before the pools: a command still on an admin worker finishes first. */
static void stop_admin(struct server *s)
{
	admin_server_stop(s->admin);
	s->admin = NULL;
	worker_pool_free(s->admin_pool);
	s->admin_pool = NULL;
}

/* HEX_LOOPS=0: one loop per CPU core, at most 4 (beyond that the workers need them). */
static int loop_count(struct app *app)
{
	long n = config_int(&app->cfg, CFG_LOOPS);
	if (n == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		n = n < 1 ? 1 : n > 4 ? 4 : n;
	}
	return n > LOOPS_MAX ? LOOPS_MAX : (int)n;
}

static bool start_loops(struct server *s)
{
	int n = loop_count(s->app);
	s->conn_counts = http_addr_count_new();
	for (int i = 0; i < n; i++) {
		struct serve_loop_config c = {.app = s->app,
		                              .exec = {&executor_ops, s},
		                              .index = i,
		                              .conn_counts = s->conn_counts};
		memcpy(c.fds, s->fds[i], sizeof c.fds);
		s->loops[i] = serve_loop_new(&c);
		if (s->loops[i] == NULL)
			return false;
		s->nloops++;
	}
	return true;
}

static void *loop_thread(void *arg)
{
	serve_loop_run(arg);
	return NULL;
}

int cmd_serve(struct app *app, int argc, char **argv)
{
	int rc = 1;
	struct server s = {.app = app};
	memset(s.fds, -1, sizeof s.fds);
	signal(SIGPIPE, SIG_IGN);
	event_set_log_callback(on_libevent_log);
	evthread_use_pthreads();
	hex_strlcpy(app->dummy_hash, crypt_hasher_dummy_hash(&app->hasher), sizeof app->dummy_hash);
	int applied = 0;
	if (!migrate_database(app, &applied) || !open_listeners(&s, loop_count(app)))
		goto out;
	if (has_role(app, "api") && !app_start_gateway(app))
		goto out;
	if (app->keys.stripe_webhook_secret[0] == '\0')
		log_warn("webhooks_off", "HEX_STRIPE_WEBHOOK_SECRET is not set: Stripe webhooks "
		                         "are refused with 503");
	if (!start_pools(&s)) {
		fprintf(stderr, "hexd: could not start the workers (see the log above)\n");
		goto out;
	}
	if (!start_admin(&s) || !start_loops(&s))
		goto out;
	if (has_role(app, "worker") && (s.events = event_workers_start(app)) == NULL &&
	    config_str(&app->cfg, CFG_REDIS_URL)[0] != '\0')
		goto out;
	http_metrics_register();
	daemon_metrics_register(s.pools, POOL_COUNT);
	struct event_base *base0 = serve_loop_base(s.loops[0]);
	s.sig_term = evsignal_new(base0, SIGTERM, on_signal, &s);
	s.sig_int = evsignal_new(base0, SIGINT, on_signal, &s);
	event_add(s.sig_term, NULL);
	event_add(s.sig_int, NULL);
	for (int i = 1; i < s.nloops; i++) {
		if (pthread_create(&s.threads[i], NULL, loop_thread, s.loops[i]) != 0) {
			log_error("loop_start_failed", "could not start loop thread %d", i);
			break;
		}
		s.nthreads = i;
	}
	const char *api = config_str(&app->cfg, CFG_HTTP_LISTEN);
	const char *metrics = config_str(&app->cfg, CFG_METRICS_LISTEN);
	if (has_role(app, "api"))
		log_info("listening",
		         "hexd %s serving v1 on http://%s, v2 on http://%s, metrics on "
		         "http://%s/metrics (%d loops, %ld workers, %ld kdf workers)",
		         HEX_VERSION, api, config_str(&app->cfg, CFG_PAYMENTS_LISTEN),
		         metrics[0] != '\0' ? metrics : api, s.nthreads + 1,
		         config_int(&app->cfg, CFG_WORKERS),
		         config_int(&app->cfg, CFG_KDF_WORKERS));
	else
		log_info("listening", "hexd %s running as a worker (no API)%s%s%s", HEX_VERSION,
		         metrics[0] != '\0' ? ", metrics on http://" : "", metrics,
		         metrics[0] != '\0' ? "/metrics" : "");
	if (s.nthreads + 1 == s.nloops) {
		serve_loop_run(s.loops[0]);
		rc = 0;
	} else {
		for (int i = 1; i <= s.nthreads; i++)
			serve_loop_stop(s.loops[i]);
	}
	for (int i = 1; i <= s.nthreads; i++)
		pthread_join(s.threads[i], NULL);
out:
	stop_admin(&s);
	event_workers_stop(s.events);
	if (rc == 0)
		log_info("stopped", "hexd stopped");
	/* Cache readers first (their pending lookups go to the pools), then the workers
	 * (a job still running may hand its reply to its loop), then the loops. */
	for (int i = 0; i < s.nloops; i++)
		serve_loop_close_cache(s.loops[i]);
	for (int i = 0; i < POOL_COUNT; i++)
		worker_pool_free(s.pools[i]);
	app_stop_gateway(app);
	if (s.sig_term != NULL)
		event_free(s.sig_term);
	if (s.sig_int != NULL)
		event_free(s.sig_int);
	for (int i = 0; i < s.nloops; i++)
		serve_loop_free(s.loops[i]);
	http_addr_count_free(s.conn_counts);
	for (int i = 0; i < LOOPS_MAX; i++)
		for (int l = 0; l < LISTEN_COUNT; l++)
			if (s.fds[i][l] >= 0)
				close(s.fds[i][l]);
	return rc;
}

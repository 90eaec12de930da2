/* daemon_metrics.c: worker pools, Redis cache and rate limiter, and process series. */
#include "daemon/daemon_metrics.h"

#include "adapters/redis/redis_conn.h"
#include "adapters/http/http_conn_guard.h"
#include "adapters/redis/redis_rate_limiter.h"
#include "adapters/redis/redis_user_cache.h"
#include "core/metrics.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct {
	struct worker_pool **pools;
	int n;
} registered;

static void collect_pools(struct metrics_writer *w, void *arg)
{
	static const struct {
		const char *name, *type, *help;
	} series[] = {
	    {"hex_pool_threads", "gauge", "worker threads per pool"},
	    {"hex_pool_queue_depth", "gauge", "requests waiting for a worker"},
	    {"hex_pool_busy_threads", "gauge", "workers running a request now"},
	    {"hex_pool_rejected_total", "counter", "requests refused with 503: queue full"},
	};
	struct worker_pool_stats st[8];
	int n = registered.n < 8 ? registered.n : 8;
	for (int i = 0; i < n; i++)
		if (registered.pools[i] != NULL)
			worker_pool_stats(registered.pools[i], &st[i]);
	for (size_t k = 0; k < sizeof series / sizeof series[0]; k++) {
		metrics_write_help(w, series[k].name, series[k].type, series[k].help);
		for (int i = 0; i < n; i++) {
			if (registered.pools[i] == NULL)
				continue;
			char labels[64];
			snprintf(labels, sizeof labels, "pool=\"%s\"",
			         worker_pool_name(registered.pools[i]));
			double v = k == 0   ? st[i].threads
			           : k == 1 ? st[i].queued
			           : k == 2 ? st[i].busy
			                    : (double)st[i].rejected;
			metrics_write_value(w, series[k].name, labels, v);
		}
	}
}

static void collect_redis(struct metrics_writer *w, void *arg)
{
	uint64_t hits, misses, errors, allowed, limited, lerrors;
	redis_user_cache_stats(&hits, &misses, &errors);
	redis_rate_limiter_stats(&allowed, &limited, &lerrors);
	struct redis_conn_stats cs;
	redis_conn_stats(&cs);
	metrics_write_help(w, "hex_user_cache_requests_total", "counter",
	                   "user cache lookups by result (error = Redis failed, read fell back)");
	metrics_write_value(w, "hex_user_cache_requests_total", "result=\"hit\"", (double)hits);
	metrics_write_value(w, "hex_user_cache_requests_total", "result=\"miss\"", (double)misses);
	metrics_write_value(w, "hex_user_cache_requests_total", "result=\"error\"", (double)errors);
	metrics_write_help(w, "hex_login_rate_limit_total", "counter",
	                   "login and token-refresh rate-limit decisions (error = Redis failed, "
	                   "allowed)");
	metrics_write_value(w, "hex_login_rate_limit_total", "result=\"allowed\"", (double)allowed);
	metrics_write_value(w, "hex_login_rate_limit_total", "result=\"limited\"", (double)limited);
	metrics_write_value(w, "hex_login_rate_limit_total", "result=\"error\"", (double)lerrors);
	metrics_write_help(w, "hex_redis_connection_failures_total", "counter",
	                   "Redis connects, timeouts and I/O errors that dropped a connection");
	metrics_write_value(w, "hex_redis_connection_failures_total", NULL, (double)cs.failures);
}

/* Counts open descriptors and, among them, sockets (listeners, clients, PG, Redis). */
static void count_fds(int *fds, int *sockets)
{
	*fds = *sockets = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		(*fds)++;
		char target[64];
		ssize_t n = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
		if (n > 0 && strncmp(target, "socket:", 7) == 0)
			(*sockets)++;
	}
	closedir(d);
}

static void collect_process(struct metrics_writer *w, void *arg)
{
	long pages_total = 0, pages_rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
			pages_rss = 0;
		fclose(f);
	}
	int fds, sockets;
	count_fds(&fds, &sockets);
	metrics_write_help(w, "process_resident_memory_bytes", "gauge", "resident set size");
	metrics_write_value(w, "process_resident_memory_bytes", NULL,
	                    (double)pages_rss * (double)sysconf(_SC_PAGESIZE));
	metrics_write_help(w, "process_open_fds", "gauge", "open file descriptors");
	metrics_write_value(w, "process_open_fds", NULL, fds);
	metrics_write_help(w, "hex_open_sockets", "gauge",
	                   "open sockets: client connections, listeners, PostgreSQL and Redis");
	metrics_write_value(w, "hex_open_sockets", NULL, sockets);
}

static void collect_connections(struct metrics_writer *w, void *arg)
{
	uint64_t timed_out, refused;
	http_conn_guard_stats(&timed_out, &refused);
	metrics_write_help(w, "hex_http_connections_closed_total", "counter",
	                   "client connections hexd closed on a limit (timeout = a request not "
	                   "received within HEX_HTTP_REQUEST_TIMEOUT, refused = over "
	                   "HEX_HTTP_CONNS_PER_ADDR)");
	metrics_write_value(w, "hex_http_connections_closed_total", "reason=\"timeout\"",
	                    (double)timed_out);
	metrics_write_value(w, "hex_http_connections_closed_total", "reason=\"refused\"",
	                    (double)refused);
}

void daemon_metrics_register(struct worker_pool **pools, int n)
{
	registered.pools = pools;
	registered.n = n;
	metrics_add_collector(collect_pools, NULL);
	metrics_add_collector(collect_redis, NULL);
	metrics_add_collector(collect_process, NULL);
	metrics_add_collector(collect_connections, NULL);
}

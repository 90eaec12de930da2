/*
 * admin_stats.c: STATS without its "events" part: what /metrics shows about pools,
 * the cache and the process, as one JSON object for an operator.
 */
#include "daemon/admin_stats.h"

#include "adapters/redis/redis_user_cache.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
	const char *roles;
	struct worker_pool *pools[ADMIN_STATS_POOLS_MAX];
	int npools;
	struct timespec started;
} facts;

static long rss_bytes(void)
{
	long pages_total = 0, pages_rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL)
		return 0;
	if (fscanf(f, "%ld %ld", &pages_total, &pages_rss) != 2)
		pages_rss = 0;
	fclose(f);
	return pages_rss * sysconf(_SC_PAGESIZE);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the one opendir holds */
}

/*
 * HTTP requests answered since start: the sum of the hex_http_requests_total series,
 * read from the same collectors as /metrics (http_metrics keeps its counts per loop and
 * per route and shows them only there).
 */
static double requests_total(void)
{
	static const char series[] = "hex_http_requests_total{";
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	double total = 0;
	for (char *line = w.buf, *end; line != NULL && *line != '\0'; line = end) {
		end = strchr(line, '\n');
		if (end != NULL)
			*end++ = '\0';
		char *space = strrchr(line, ' ');
		if (strncmp(line, series, sizeof series - 1) == 0 && space != NULL)
			total += strtod(space + 1, NULL);
	}
	metrics_writer_free(&w);
	return total;
}

static json_t *roles_array(const char *roles)
{
	json_t *a = json_array();
	char *copy = xstrdup(roles);
	char *save = NULL;
	for (char *r = strtok_r(copy, ",", &save); r != NULL; r = strtok_r(NULL, ",", &save))
		json_array_append_new(a, json_string(r));
	free(copy);
	return a;
}

static json_t *pools_array(void)
{
	json_t *a = json_array();
	for (int i = 0; i < facts.npools; i++) {
		if (facts.pools[i] == NULL)
			continue;
		struct worker_pool_stats st;
		worker_pool_stats(facts.pools[i], &st);
		json_array_append_new(a, json_pack("{s:s,s:i,s:i,s:i,s:I}", "name",
		                                   worker_pool_name(facts.pools[i]), "threads",
		                                   st.threads, "busy", st.busy, "queued", st.queued,
		                                   "rejected", (json_int_t)st.rejected));
	}
	return a;
}

static json_t *stats(void *self)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t hits, misses, errors;
	redis_user_cache_stats(&hits, &misses, &errors);
	return json_pack(
	    "{s:s,s:i,s:I,s:o,s:I,s:i,s:I,s:o,s:{s:I,s:I,s:I}}", "version", HEX_VERSION, "pid",
	    (int)getpid(), "uptime_s", (json_int_t)(now.tv_sec - facts.started.tv_sec), "roles",
	    roles_array(facts.roles), "rss_bytes", (json_int_t)rss_bytes(), "open_fds", open_fds(),
	    "requests_total", (json_int_t)requests_total(), "pools", pools_array(), "cache", "hits",
	    (json_int_t)hits, "misses", (json_int_t)misses, "errors", (json_int_t)errors);
}

static const struct admin_process_ops stats_ops = {.stats = stats};

struct admin_process admin_stats_process(const char *roles, struct worker_pool *const *pools, int n)
{
	facts.roles = roles;
	facts.npools = n < ADMIN_STATS_POOLS_MAX ? n : ADMIN_STATS_POOLS_MAX;
	for (int i = 0; i < facts.npools; i++)
		facts.pools[i] = pools[i];
	clock_gettime(CLOCK_MONOTONIC, &facts.started);
	return (struct admin_process){&stats_ops, &facts};
}

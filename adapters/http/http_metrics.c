/* http_metrics.c: per-route series and the /metrics handler. */
#include "adapters/http/http_metrics.h"

#include "adapters/http/http_handlers.h"
#include "core/metrics.h"
#include "core/xmalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>
#include <time.h>

#define STATUS_SLOTS 16

struct route_stats {
	struct metrics_histogram latency;
	struct {
		int status;
		uint64_t n;
	} statuses[STATUS_SLOTS];
	struct latency_window window;
};

/* Per loop: one per route, plus one for requests that matched none. */
static struct loop_stats {
	pthread_mutex_t mu;
	struct route_stats routes[HTTP_ROUTES_MAX + 1];
} loops[HTTP_METRICS_LOOPS_MAX] = {
    [0 ... HTTP_METRICS_LOOPS_MAX - 1] = {.mu = PTHREAD_MUTEX_INITIALIZER},
};
static _Thread_local int loop_index;

void http_metrics_bind_loop(int index)
{
	loop_index = index >= 0 && index < HTTP_METRICS_LOOPS_MAX ? index : 0;
}

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void http_metrics_record(const struct http_route *route, int status, int64_t duration_us)
{
	struct loop_stats *l = &loops[loop_index];
	struct route_stats *s =
	    &l->routes[route != NULL ? http_routes_index(route) : HTTP_ROUTES_MAX];
	pthread_mutex_lock(&l->mu);
	metrics_histogram_observe(&s->latency, duration_us);
	for (int i = 0; i < STATUS_SLOTS; i++) {
		if (s->statuses[i].status == 0)
			s->statuses[i].status = status;
		if (s->statuses[i].status == status) {
			s->statuses[i].n++;
			break;
		}
	}
	latency_window_record(&s->window, wall_us(), duration_us, status);
	pthread_mutex_unlock(&l->mu);
}

/* Route i's series summed over every loop. */
static void merged(int i, struct route_stats *out)
{
	memset(out, 0, sizeof *out);
	for (int k = 0; k < HTTP_METRICS_LOOPS_MAX; k++) {
		struct loop_stats *l = &loops[k];
		const struct route_stats *s = &l->routes[i];
		pthread_mutex_lock(&l->mu);
		for (int b = 0; b < METRICS_BUCKETS; b++)
			out->latency.buckets[b] += s->latency.buckets[b];
		out->latency.count += s->latency.count;
		out->latency.sum_us += s->latency.sum_us;
		for (int j = 0; j < STATUS_SLOTS && s->statuses[j].status != 0; j++) {
			for (int m = 0; m < STATUS_SLOTS; m++) {
				if (out->statuses[m].status == 0)
					out->statuses[m].status = s->statuses[j].status;
				if (out->statuses[m].status == s->statuses[j].status) {
					out->statuses[m].n += s->statuses[j].n;
					break;
				}
			}
		}
		latency_window_merge(&out->window, &s->window);
		pthread_mutex_unlock(&l->mu);
	}
}

static void route_labels(int i, char *out, size_t n)
{
	const struct http_route *r = i < http_routes_count() ? http_routes_at(i) : NULL;
	snprintf(out, n, "method=\"%s\",route=\"%s\"", r ? http_method_name(r->method) : "ANY",
	         r ? r->pattern : "unmatched");
}

static void collect(struct metrics_writer *w, void *arg)
{
	int n = http_routes_count();
	char labels[160], with_status[200];
	struct route_stats *all = xcalloc(HTTP_ROUTES_MAX + 1, sizeof *all);
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++)
		if (i < n || i == HTTP_ROUTES_MAX)
			merged(i, &all[i]);
	metrics_write_help(w, "hex_http_requests_total", "counter",
	                   "HTTP requests answered, by route pattern and status");
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if (all[i].latency.count == 0)
			continue;
		route_labels(i, labels, sizeof labels);
		for (int k = 0; k < STATUS_SLOTS && all[i].statuses[k].status != 0; k++) {
			snprintf(with_status, sizeof with_status, "%s,status=\"%d\"", labels,
			         all[i].statuses[k].status);
			metrics_write_value(w, "hex_http_requests_total", with_status,
			                    (double)all[i].statuses[k].n);
		}
	}
	metrics_write_help(w, "hex_http_request_duration_seconds", "histogram",
	                   "time from a request read to its reply queued, by route pattern");
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if (all[i].latency.count == 0)
			continue;
		route_labels(i, labels, sizeof labels);
		metrics_write_histogram(w, "hex_http_request_duration_seconds", labels,
		                        &all[i].latency);
	}
	free(all);
}

void http_metrics_register(void)
{
	metrics_add_collector(collect, NULL);
}

void http_metrics_latency(int seconds, http_latency_fn fn, void *arg)
{
	int n = http_routes_count();
	int64_t now = wall_us();
	struct route_stats *r = xmalloc(sizeof *r);
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if (i >= n && i != HTTP_ROUTES_MAX)
			continue;
		merged(i, r);
		struct latency_stats s;
		latency_window_read(&r->window, now, seconds, &s);
		if (s.count == 0)
			continue;
		const struct http_route *route = i < n ? http_routes_at(i) : NULL;
		fn(route ? http_method_name(route->method) : "ANY",
		   route ? route->pattern : "unmatched", &s, arg);
	}
	free(r);
}

void http_metrics_show(struct http_exchange *x, struct hex_services *svc)
{
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	http_reply_text(x, 200, "text/plain; version=0.0.4; charset=utf-8", w.buf, w.len);
}

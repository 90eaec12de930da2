/* http_metrics.c: per-route series and the /metrics handler. */
#include "adapters/http/http_metrics.h"

#include "adapters/http/http_handlers.h"
#include "core/metrics.h"

#include <stdio.h>
#include <time.h>

#define STATUS_SLOTS 16

struct route_stats {
	struct metrics_histogram latency;
	struct {
		_Atomic int status;
		_Atomic uint64_t n;
	} statuses[STATUS_SLOTS];
	struct latency_window window;
};

/* One per route, plus one for requests that matched none. */
static struct route_stats stats[HTTP_ROUTES_MAX + 1];

static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct route_stats *stats_of(const struct http_route *route)
{
	return &stats[route != NULL ? http_routes_index(route) : HTTP_ROUTES_MAX];
}

void http_metrics_record(const struct http_route *route, int status, int64_t duration_us)
{
	struct route_stats *s = stats_of(route);
	metrics_histogram_observe(&s->latency, duration_us);
	for (int i = 0; i < STATUS_SLOTS; i++) {
		int seen = atomic_load_explicit(&s->statuses[i].status, memory_order_relaxed);
		if (seen == 0) /* single writer: claiming a free slot needs no CAS */
			atomic_store_explicit(&s->statuses[i].status, status, memory_order_relaxed);
		if (seen == 0 || seen == status) {
			atomic_fetch_add_explicit(&s->statuses[i].n, 1, memory_order_relaxed);
			break;
		}
	}
	latency_window_record(&s->window, wall_us(), duration_us, status);
}

static void route_labels(int i, char *out, size_t n)
{
	const struct http_route *r = i < http_routes_count() ? http_routes_at(i) : NULL;
	snprintf(out, n, "method=\"%s\",route=\"%s\"", r ? http_method_name(r->method) : "ANY",
	         r ? r->pattern : "unmatched");
}

static bool route_used(int i)
{
	return atomic_load_explicit(&stats[i].latency.count, memory_order_relaxed) > 0;
}

static void collect(struct metrics_writer *w, void *arg)
{
	int n = http_routes_count();
	char labels[160], with_status[200];
	metrics_write_help(w, "hex_http_requests_total", "counter",
	                   "HTTP requests answered, by route pattern and status");
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if ((i >= n && i != HTTP_ROUTES_MAX) || !route_used(i))
			continue;
		route_labels(i, labels, sizeof labels);
		for (int k = 0; k < STATUS_SLOTS; k++) {
			int status = atomic_load(&stats[i].statuses[k].status);
			if (status == 0)
				break;
			snprintf(with_status, sizeof with_status, "%s,status=\"%d\"", labels,
			         status);
			metrics_write_value(w, "hex_http_requests_total", with_status,
			                    (double)atomic_load(&stats[i].statuses[k].n));
		}
	}
	metrics_write_help(w, "hex_http_request_duration_seconds", "histogram",
	                   "time from a request read to its reply queued, by route pattern");
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if ((i >= n && i != HTTP_ROUTES_MAX) || !route_used(i))
			continue;
		route_labels(i, labels, sizeof labels);
		metrics_write_histogram(w, "hex_http_request_duration_seconds", labels,
		                        &stats[i].latency);
	}
}

void http_metrics_register(void)
{
	metrics_add_collector(collect, NULL);
}

void http_metrics_latency(int seconds, http_latency_fn fn, void *arg)
{
	int n = http_routes_count();
	int64_t now = wall_us();
	for (int i = 0; i <= HTTP_ROUTES_MAX; i++) {
		if (i >= n && i != HTTP_ROUTES_MAX)
			continue;
		struct latency_stats s;
		latency_window_read(&stats[i].window, now, seconds, &s);
		if (s.count == 0)
			continue;
		const struct http_route *r = i < n ? http_routes_at(i) : NULL;
		fn(r ? http_method_name(r->method) : "ANY", r ? r->pattern : "unmatched", &s, arg);
	}
}

void http_metrics_show(struct http_exchange *x, struct hex_services *svc)
{
	struct metrics_writer w;
	metrics_writer_init(&w);
	metrics_collect(&w);
	http_reply_text(x, 200, "text/plain; version=0.0.4; charset=utf-8", w.buf, w.len);
}

/*
 * http_metrics: per-route request counters by status, latency histograms and rolling
 * latency windows. Each loop thread writes its own set under its own mutex (never
 * contended on the hot path); readers merge every loop's set.
 */
#ifndef HEX_HTTP_METRICS_H
#define HEX_HTTP_METRICS_H

#include "adapters/http/http_routes.h"
#include "core/latency_window.h"

#define HTTP_METRICS_LOOPS_MAX 8

/* The calling thread is loop `index` (0..HTTP_METRICS_LOOPS_MAX-1): once, at its start. */
void http_metrics_bind_loop(int index);

/* route NULL: a request that matched no route. */
void http_metrics_record(const struct http_route *route, int status, int64_t duration_us);

/* Registers the HTTP series with the metrics collector list (once, at start-up). */
void http_metrics_register(void);

typedef void (*http_latency_fn)(const char *method, const char *route,
                                const struct latency_stats *s, void *arg);
/* Calls fn for every route with traffic in the last `seconds`, all loops merged. */
void http_metrics_latency(int seconds, http_latency_fn fn, void *arg);

#endif

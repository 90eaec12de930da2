/*
 * http_metrics: per-route request counters by status, latency histograms and rolling
 * latency windows. Written only by the loop thread that sends replies (no locks on the
 * hot path); read by /metrics and by the admin port on the same thread.
 */
#ifndef HEX_HTTP_METRICS_H
#define HEX_HTTP_METRICS_H

#include "adapters/http/http_routes.h"
#include "core/latency_window.h"

/* route NULL: a request that matched no route. */
void http_metrics_record(const struct http_route *route, int status, int64_t duration_us);

/* Registers the HTTP series with the metrics collector list (once, at start-up). */
void http_metrics_register(void);

typedef void (*http_latency_fn)(const char *method, const char *route,
                                const struct latency_stats *s, void *arg);
/* Calls fn for every route with traffic in the last `seconds`. Loop thread only. */
void http_metrics_latency(int seconds, http_latency_fn fn, void *arg);

#endif

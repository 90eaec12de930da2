/* metrics.c: histograms, the collector list and the Prometheus text writer. */
#include "core/metrics.h"

#include "core/xmalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int64_t metrics_bucket_bounds_us[METRICS_BUCKETS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000,
};

struct metrics_histogram metrics_db_query;
struct metrics_histogram metrics_redis_command;

void metrics_histogram_observe(struct metrics_histogram *h, int64_t us)
{
	if (us < 0)
		us = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		if (us <= metrics_bucket_bounds_us[i]) {
			atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void metrics_writer_init(struct metrics_writer *w)
{
	w->cap = 16384;
	w->len = 0;
	w->buf = xmalloc(w->cap);
	w->buf[0] = '\0';
}

void metrics_writer_free(struct metrics_writer *w)
{
	free(w->buf);
	w->buf = NULL;
}

void metrics_printf(struct metrics_writer *w, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(w->buf + w->len, w->cap - w->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			abort();
		if ((size_t)n < w->cap - w->len) {
			w->len += (size_t)n;
			return;
		}
		w->cap = (w->cap + (size_t)n) * 2;
		w->buf = xrealloc(w->buf, w->cap);
	}
}

void metrics_write_help(struct metrics_writer *w, const char *name, const char *type,
                        const char *help)
{
	metrics_printf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_write_value(struct metrics_writer *w, const char *name, const char *labels, double v)
{
	if (labels != NULL && labels[0] != '\0')
		metrics_printf(w, "%s{%s} %.17g\n", name, labels, v);
	else
		metrics_printf(w, "%s %.17g\n", name, v);
}

void metrics_write_histogram(struct metrics_writer *w, const char *name, const char *labels,
                             const struct metrics_histogram *h)
{
	/* Read count first: buckets observed later can only make the sum of buckets larger,
	 * and the cumulative values are clamped to it so that +Inf == _count holds. */
	uint64_t count = atomic_load_explicit(&h->count, memory_order_relaxed);
	const char *sep = labels != NULL && labels[0] != '\0' ? "," : "";
	const char *lab = labels != NULL ? labels : "";
	uint64_t cum = 0;
	for (int i = 0; i < METRICS_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (cum > count)
			cum = count;
		metrics_printf(w, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, lab, sep,
		               (double)metrics_bucket_bounds_us[i] / 1e6, (unsigned long long)cum);
	}
	metrics_printf(w, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, lab, sep,
	               (unsigned long long)count);
	double sum = (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6;
	if (lab[0] != '\0') {
		metrics_printf(w, "%s_sum{%s} %.6f\n%s_count{%s} %llu\n", name, lab, sum, name, lab,
		               (unsigned long long)count);
	} else {
		metrics_printf(w, "%s_sum %.6f\n%s_count %llu\n", name, sum, name,
		               (unsigned long long)count);
	}
}

#define MAX_COLLECTORS 16

static struct {
	metrics_collect_fn fn;
	void *arg;
} collectors[MAX_COLLECTORS];
static int ncollectors;

void metrics_add_collector(metrics_collect_fn fn, void *arg)
{
	if (ncollectors == MAX_COLLECTORS)
		abort(); /* a programming error: raise MAX_COLLECTORS */
	collectors[ncollectors].fn = fn;
	collectors[ncollectors++].arg = arg;
}

void metrics_collect(struct metrics_writer *w)
{
	metrics_write_help(w, "hex_db_query_duration_seconds", "histogram",
	                   "PostgreSQL statement latency, as seen by hexd");
	metrics_write_histogram(w, "hex_db_query_duration_seconds", NULL, &metrics_db_query);
	metrics_write_help(w, "hex_redis_command_duration_seconds", "histogram",
	                   "Redis command latency, as seen by hexd");
	metrics_write_histogram(w, "hex_redis_command_duration_seconds", NULL,
	                        &metrics_redis_command);
	for (int i = 0; i < ncollectors; i++)
		collectors[i].fn(w, collectors[i].arg);
}
